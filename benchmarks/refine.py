"""The amortisation gap: how much closer held-out clips reconstruct when their codes are refined.

For each learning rate and number of steps, the split's clips (a seeded subset of ``--clips``) are
encoded (posterior means), refined by :func:`vae_tfp.model.refine.refine_codes` (Adam on each
clip's ``-log p(x|z) - log p(z)``), decoded, and scored as ``evaluate`` scores reconstructions:
``recon_gain`` (MSE against the mean training image over MSE against the reconstruction), the
loudness and onset contour correlations, with the seconds per clip, how far the codes moved, and
their median log-density under the prior (a refined code must stay where the prior has mass).
Step 0 is the encoder alone; ``--data`` on the training split gives the gap on seen clips.

    python benchmarks/refine.py --model saved_models/music --data data/singularity --name refine_music
    python benchmarks/refine.py --model saved_models/demo --data data/notes --name refine_demo
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    import numpy as np

    from vae_tfp.apps.generate import decode, encode
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.time_structure import correlation_summary
    from vae_tfp.model.refine import refine_codes
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--splits", nargs="+", default=["test"])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 10, 25, 50, 100])
    ap.add_argument("--learning-rates", type=float, nargs="+", default=[0.01, 0.03])
    ap.add_argument("--name", default="refine")
    args = ap.parse_args()
    model, data = load_model(args.model), open_dataset(args.data)
    data.check_config(model.spectrogram_config, args.model)
    mean_image = data.mean_image("train")[None]
    rows = []
    for split in args.splits:
        x = data.load(split, rows=data.sample(split, args.clips, seed=0)).astype(np.float32)
        means, _ = encode(model, x)
        mse_mean = float(np.mean((x - mean_image) ** 2))
        for lr in args.learning_rates:
            for steps in args.steps:
                if steps == 0 and lr != args.learning_rates[0]:
                    continue
                t0 = time.perf_counter()
                codes = refine_codes(model.decoder, model.prior, x, means, steps=steps, learning_rate=lr)
                seconds = time.perf_counter() - t0
                recons = decode(model, codes)
                rows.append({"split": split, "learning_rate": lr if steps else None, "steps": steps,
                             "recon_gain": mse_mean / float(np.mean((x - recons) ** 2)),
                             **correlation_summary(x, recons, data.config),
                             "seconds_per_clip": round(seconds / len(x), 3),
                             "code_shift": float(np.sqrt(((codes - means) ** 2).sum(-1)).mean()),
                             "prior_log_density": float(np.median(model.prior.log_prob(codes).numpy()))})
                print({k: v for k, v in rows[-1].items() if "chance" not in k}, file=sys.stderr, flush=True)
    emit(args.name, {"benchmark": "refine", "machine": machine(), "model": args.model, "data": args.data,
                     "clips": args.clips, "rows": rows})


if __name__ == "__main__":
    main()
