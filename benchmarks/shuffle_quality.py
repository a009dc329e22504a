"""What the bounded shuffle buffer costs in shuffle quality (issue #25), against an exact shuffle.

A numbered dataset laid out like a prepared music collection (shards of 128 rows, 60 consecutive
clips per source file, as a 6-minute song cut into 5.9-s clips) is read for one epoch by
``PreparedDataset.tf_dataset`` with chunks of 16 rows (8 MB of 512x512) or fewer, and shuffle
buffers of several sizes. Per batch of 16: how many pairs of clips come from the same source file (exact shuffle:
about 120 x 59 / n), and how far clips move from their place in the split (mean |displacement| / n;
exact: 1/3).

    python benchmarks/shuffle_quality.py --clips 20000 --chunk-rows 16 4
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
from common import emit, machine  # noqa: E402


def main():
    import numpy as np

    from test_input import numbered_dataset  # the tests' numbered dataset: position in pixel [0, 0]
    from vae_tfp.data import dataset as dataset_module

    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=20000)
    ap.add_argument("--per-file", type=int, default=60)
    ap.add_argument("--buffers", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--chunk-rows", type=int, nargs="+", default=[16], help="rows read at a time (512x512: 8 MB = 16)")
    args = ap.parse_args()
    # float16 holds integers exactly up to 2048: the position is split over two pixels
    with tempfile.TemporaryDirectory() as tmp:
        data = numbered_dataset(Path(tmp) / "ds", [128] * (args.clips // 128))
        n = data.n_clips("train")
        for k, shard in enumerate(data.shard_files("train")):
            images = np.load(shard)
            pos = np.arange(k * 128, k * 128 + len(images))
            images[:, 0, 0], images[:, 0, 1] = pos // 1024, pos % 1024
            np.save(shard, images)
        out = {"benchmark": "shuffle_quality", "machine": machine(), "clips": n, "clips_per_source_file": args.per_file,
               "batch_size": args.batch_size, "results": {}}
        runs = {"exact (cached)": dict(cache=True)}
        runs.update({f"buffer {b}": dict(memory_budget=0, shuffle_buffer=b) for b in args.buffers})
        runs["no shuffle"] = dict(shuffle=False)
        for rows in args.chunk_rows:
            dataset_module.CHUNK_BYTES = rows * 2 * 64 * 64  # as many rows as this many bytes of 512x512 images
            for name, kw in runs.items():
                if rows != args.chunk_rows[0] and not name.startswith("buffer"):
                    continue
                order = np.concatenate([(b.numpy()[:, 0, 0, 0] * 1024 + b.numpy()[:, 0, 1, 0]).astype(np.int64)
                                        for b in data.tf_dataset("train", batch_size=args.batch_size, seed=0, **kw)])
                assert sorted(order) == list(range(n))
                full = order[: len(order) // args.batch_size * args.batch_size].reshape(-1, args.batch_size)
                source = full // args.per_file
                same = np.mean([sum(np.bincount(s) * (np.bincount(s) - 1) // 2) for s in source])
                out["results"][f"{name}, chunks of {rows} rows" if name.startswith("buffer") else name] = {
                    "same_source_pairs_per_batch": round(float(same), 3),
                    "mean_displacement_over_n": round(float(np.abs(order - np.arange(n)).mean() / n), 3),
                    "images_in_memory": kw.get("shuffle_buffer", n if kw.get("cache") else 0)}
    emit("shuffle_quality", out)


if __name__ == "__main__":
    main()
