"""`seed` and `default` trained on the same embedded split for the same number of examples, in
one run: held-out neg-ELBO, recon_gain, active units, training examples/s, parameters and FLOPs.

    python benchmarks/seed_vs_default.py --data data/notes --epochs 3
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.cost import count_flops
    from vae_tfp.evaluation.diagnostics import evaluate_saved
    from vae_tfp.model.training import train

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--split", default="test")
    ap.add_argument("--presets", nargs="+", default=["default", "seed"])
    ap.add_argument("--out", default=None, help="keep the models here")
    ap.add_argument("--jit", action="store_true", help="XLA-compile both train steps")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="seed-vs-default-"))
    n_train = open_dataset(args.data).manifest["splits"]["train"]["n_clips"]
    out = {"benchmark": "seed_vs_default", "machine": machine(), "data": args.data, "epochs": args.epochs,
           "batch_size": args.batch_size, "jit_compile": args.jit,
           "train_examples_seen": (n_train // args.batch_size if args.jit else -(-n_train // args.batch_size))
           * args.batch_size * args.epochs, "split": args.split,
           "results": {}}
    for preset in args.presets:
        cfg = model_preset(preset)
        t0 = time.perf_counter()
        history = train(args.data, root / preset, cfg, epochs=args.epochs, batch_size=args.batch_size, verbose=2,
                        tensorboard=False, jit_compile=args.jit)
        wall = time.perf_counter() - t0
        fit_seconds = sum(h["seconds"] for h in history)
        r = evaluate_saved(root / preset, args.data, args.split)
        r.pop("kl_per_dim")
        flops = count_flops(cfg)
        r.update(parameters=cfg.parameter_estimate(), forward_macs_per_example=flops["forward_macs"],
                 train_flops_per_example=flops["train_flops"], likelihood=cfg.likelihood,
                 train_examples_per_s=round(n_train * args.epochs / fit_seconds, 3), wall_seconds=round(wall, 1))
        out["results"][preset] = r
        emit("seed_vs_default_partial", out)
    if {"seed", "default"} <= set(out["results"]):
        s, d = out["results"]["seed"], out["results"]["default"]
        out["default_beats_seed"] = {"neg_elbo": d["neg_elbo_nats"] < s["neg_elbo_nats"],
                                     "recon_gain": d["recon_gain"] > s["recon_gain"],
                                     "speedup_examples_per_s": round(d["train_examples_per_s"] / s["train_examples_per_s"], 2)}
    emit("seed_vs_default", out)


if __name__ == "__main__":
    main()
