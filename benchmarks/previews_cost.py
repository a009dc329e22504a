"""What hearing it learn costs: the previews' seconds (decoding 64 prior draws and 4
reconstructions, inverting 8 clips to audio, writing WAVs, PNGs and TensorBoard, the audio
statistics behind ``samples_fd``) against the epoch's own seconds (training, validation and
diagnostics), on one model trained with ``--previews`` (``auto``: the default of ``train``).

    python benchmarks/previews_cost.py --previews 1 --epochs 4 --name previews_cost_every_epoch
    python benchmarks/previews_cost.py --previews auto --epochs 16

``amortized_share`` is the previews' seconds over the epochs' seconds for the whole run (the
first and the last epoch are always previewed); ``median_share`` is one preview's seconds over
its epoch's, for the previewed epochs after the first (whose preview includes tracing).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    import numpy as np

    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.previews import COST_BUDGET
    from vae_tfp.model.training import train

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--previews", default="auto")
    ap.add_argument("--name", default="previews_cost")
    args = ap.parse_args()

    data = open_dataset(args.data)
    model_dir = tempfile.mkdtemp(prefix="previews_cost_")
    try:
        t0 = time.perf_counter()
        history = train(data, os.path.join(model_dir, "m"), model_preset(args.preset), epochs=args.epochs,
                        batch_size=args.batch_size, previews=args.previews, verbose=0,
                        log=lambda _: None)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)
    epochs = [{"epoch": h["epoch"], "epoch_seconds": h["seconds"], "preview_seconds": h.get("preview_seconds", 0.0),
               "samples_fd": h.get("samples_fd"), "verdict": h["verdict"]["state"]} for h in history]
    previewed = [e for e in epochs if e["samples_fd"] is not None]
    later = previewed[1:] or previewed
    emit(args.name, {
        "data": str(data.path), "train_clips": data.n_clips("train"), "val_clips": data.n_clips("val"),
        "preset": args.preset, "batch_size": args.batch_size, "previews": args.previews,
        "wall_seconds": round(wall, 1), "epochs": epochs,
        "previewed_epochs": [e["epoch"] for e in previewed],
        "median_epoch_seconds": float(np.median([e["epoch_seconds"] for e in epochs])),
        "median_preview_seconds": float(np.median([e["preview_seconds"] for e in later])),
        "median_share": float(np.median([e["preview_seconds"] / e["epoch_seconds"] for e in later])),
        "first_preview_seconds": previewed[0]["preview_seconds"],
        "amortized_share": sum(e["preview_seconds"] for e in epochs) / sum(e["epoch_seconds"] for e in epochs),
        "budget": COST_BUDGET,
        "samples_fd_floor": history[-1]["samples_fd_floor"], "samples_fd_mean_image": history[-1]["samples_fd_mean_image"],
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
