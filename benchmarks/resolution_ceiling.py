"""What resolution recon_gain needs: the recon_gain of the data itself averaged over blocks.

A decoder that reproduced each image perfectly at a coarser resolution (block means, then
repeated back to full size) would score exactly this. Frequency x time block sizes; 4x4 is a
perfect 128x128 image shown at 512x512. Beside recon_gain, the time structure such an image
keeps: the median per-clip correlation of its loudness and onset contours with the real clip's
(``vae_tfp.evaluation.time_structure``; 1 x 32 blocks hold what a decoder with 16 columns of constant values
could draw at best).

    python benchmarks/resolution_ceiling.py --data data/notes
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

BLOCKS = [(2, 2), (4, 4), (8, 8), (2, 1), (4, 1), (8, 1), (16, 1), (1, 4), (1, 8), (1, 16), (1, 32), (1, 64), (1, 128),
          (4, 32)]


def block_mean(x, fh: int, fw: int):
    """[n, H, W] → the mean of each fh x fw block, repeated back to [n, H, W]."""
    import numpy as np

    n, h, w = x.shape
    means = x.reshape(n, h // fh, fh, w // fw, fw).mean(axis=(2, 4))
    return np.repeat(np.repeat(means, fh, axis=1), fw, axis=2)


def main():
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.time_structure import correlation_summary

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--name", default="resolution_ceiling")
    args = ap.parse_args()
    data = open_dataset(args.data)
    x = data.load(args.split)[..., 0].astype("float64")
    mse_mean = float(((x - data.mean_image()[..., 0]) ** 2).mean())
    h, w = x.shape[1:]
    rows = []
    for fh, fw in BLOCKS:
        if h % fh or w % fw:
            continue
        mse = float(((x - block_mean(x, fh, fw)) ** 2).mean())
        corr = correlation_summary(x, block_mean(x, fh, fw), data.config)
        rows.append({"frequency_bins": fh, "time_frames": fw, "recon_gain": round(mse_mean / mse, 3),
                     "loudness_corr": round(corr["loudness_corr"], 3), "onset_corr": round(corr["onset_corr"], 3)})
    emit(args.name, {"benchmark": "resolution_ceiling", "machine": machine(), "data": args.data,
                     "split": args.split, "n_examples": len(x), "image": [h, w], "blocks": rows})


if __name__ == "__main__":
    main()
