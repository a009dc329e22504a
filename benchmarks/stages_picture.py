"""A picture of a model folder before and after the adversarial stage: 4 real held-out clips, their
reconstructions by the stage-1 and the stage-2 decoder, and 4 prior draws decoded by both (one row
each). Writes a PNG and prints one JSON object with its path.

    python benchmarks/stages_picture.py --model outputs/demo_sharp --data data/notes --out benchmarks/results/demo_stages.png
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit  # noqa: E402


def main():
    import numpy as np

    from vae_tfp.apps.generate import compare_stages
    from vae_tfp.apps.notebook import plot_grid
    from vae_tfp.data.dataset import open_dataset

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = open_dataset(args.data)
    clips = data.load(args.split)
    x = clips[np.linspace(0, len(clips) - 1, 4).astype(int)]
    out = compare_stages(args.model, x, n_samples=4, seed=args.seed)
    rows = {"real (held out)": x, "reconstruction, stage 1": out["stage 1"], "reconstruction, stage 2": out["stage 2"],
            "prior sample, stage 1": out["samples stage 1"], "prior sample, stage 2": out["samples stage 2"]}
    fig = plot_grid([im for row in rows.values() for im in row], data.config,
                    titles=[f"{name} {i}" for name in rows for i in range(4)], ncols=4, size=2.6)
    fig.savefig(args.out, dpi=80)
    emit("stages_picture", {"benchmark": "stages_picture", "model": args.model, "data": args.data,
                            "split": args.split, "png": args.out, "rows": list(rows)}, save=False)


if __name__ == "__main__":
    main()
