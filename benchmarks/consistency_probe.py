"""Could stage 2 train against inversion inconsistency in-graph? What Griffin-Lim needs to tell.

A decoder could be pushed towards images that are the magnitude of some signal by a loss on the
spectral convergence after inverting its own output — inside the train step, so with the
TensorFlow Griffin-Lim and no PGHI (a NumPy heap integration that neither XLA nor a GPU runs). The
loss is only worth its cost if that in-graph measure, like ``evaluate``'s ``inversion_sc`` (PGHI
start, 32 fast Griffin-Lim iterations), tells real clips from reconstructions. This prints the
median spectral convergence of held-out real clips and of the model's reconstructions after
``n`` iterations from each starting phase, and the seconds per image.

    python benchmarks/consistency_probe.py --model saved_models/demo --data data/notes
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--iterations", default="0,8,32", help="comma-separated Griffin-Lim iteration counts")
    parser.add_argument("--starts", default="pghi,random,zeros", help="comma-separated starting phases")
    parser.add_argument("--name", default="consistency_probe")
    args = parser.parse_args()

    import numpy as np

    from vae_tfp.audio.metrics import inversion_consistency
    from vae_tfp.audio.spectrogram import Inversion
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.saving import load_model

    data = open_dataset(args.data)
    real = data.load(args.split, limit=args.clips)
    vae = load_model(args.model)
    recon = vae.decoder(vae.encoder(real).mean()).mean().numpy()
    rows = []
    for start in args.starts.split(","):
        for n_iter in (int(n) for n in args.iterations.split(",")):
            inversion = Inversion(n_iter=n_iter, phase_init=start)
            row = {"start": start, "n_iter": n_iter}
            for name, images in (("real", real), ("reconstructions", recon)):
                began = time.perf_counter()
                row[name] = float(np.median(inversion_consistency(images, data.config, inversion=inversion)))
                row[f"{name}_seconds_per_image"] = (time.perf_counter() - began) / len(images)
            row["ratio"] = row["reconstructions"] / max(row["real"], 1e-12)
            rows.append(row)
            print(f"{start:>6} start, {n_iter:3d} iterations: real {row['real']:.3f}, "
                  f"reconstructions {row['reconstructions']:.3f}", file=sys.stderr)
    emit(args.name, {"machine": machine(), "model": args.model, "data": args.data, "split": args.split,
                     "clips": len(real), "rows": rows})


if __name__ == "__main__":
    main()
