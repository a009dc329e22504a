"""tf.data input pipeline alone: examples/s of ``make_tf_dataset`` over a prepared split, first
epoch (read from the .npy shards) and cached epochs, against what training consumes.

    python benchmarks/input_pipeline.py --data data/notes --batch-size 8
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.data.dataset import open_dataset

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="train")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    n = open_dataset(args.data).manifest["splits"][args.split]["n_clips"]
    out = {"benchmark": "input_pipeline", "machine": machine(), "data": args.data, "split": args.split,
           "n_examples": n, "batch_size": args.batch_size, "results": {}}
    for cache in (False, True):
        ds = open_dataset(args.data).tf_dataset(args.split, batch_size=args.batch_size, cache=cache)
        rates = []
        for _ in range(args.epochs):
            t0, count = time.perf_counter(), 0
            for batch in ds:
                count += int(batch.shape[0])
            rates.append(count / (time.perf_counter() - t0))
        out["results"]["cached" if cache else "uncached"] = {
            "first_epoch_examples_per_s": round(rates[0], 1),
            "later_epochs_examples_per_s": round(sum(rates[1:]) / max(1, len(rates) - 1), 1)}
    emit("input_pipeline", out)


if __name__ == "__main__":
    main()
