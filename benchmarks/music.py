"""Music, not only notes (issue #21): a model's held-out table on a real-music dataset, and a picture.

For each model folder: ``evaluate`` on the split (recon_gain, KL per clip and per dimension in use,
the reconstructions' loudness / onset contour correlations and their chance level) and the
generation table with the judges (``--samples`` prior samples per temperature: two-sample accuracy
on the audio statistics, FAD-musicnn, the time-structure distances, each beside the real floor and
the bad baselines); then a PNG of 4 held-out clips, their reconstructions and 4 prior samples.

    python benchmarks/music.py --data data/singularity --models outputs/music [--samples 256] [--name music]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, emit, machine  # noqa: E402


def picture(model, data, split: str, out: Path, *, n: int = 4, seed: int = 0) -> None:
    """Rows: held-out clips, their reconstructions, prior samples (T = 1); loudness contour drawn on each."""
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.apps.generate import decode, reconstruct
    from vae_tfp.model.prior import sample_prior
    from vae_tfp.apps.notebook import plot_spectrogram
    from vae_tfp.apps.render import figure
    from vae_tfp.evaluation.time_structure import levels_db, loudness_contour

    data = open_dataset(data)
    real_all = data.load(split)
    real = real_all[np.linspace(0, len(real_all) - 1, n).astype(int)]
    rows = {"real (held-out)": real, "reconstruction": reconstruct(model, real),
            "prior sample": decode(model, sample_prior(model, n, seed=seed))}
    config = model.spectrogram_config
    fig = figure(figsize=(4 * n, 3.2 * len(rows)))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        loud = loudness_contour(levels_db(images, config))
        for c in range(n):
            ax = plot_spectrogram(images[c], config, ax=axes[r, c], title=f"{name} {c}", colorbar=False)
            twin = ax.twinx()
            twin.plot(np.arange(loud.shape[1]) * config.hop_length / config.sample_rate, loud[c], c="c", lw=0.8)
            twin.set_ylim(-62, 0)
            twin.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=60)


def main(argv=None) -> None:
    from vae_tfp.model.saving import load_model
    from vae_tfp.evaluation.diagnostics import evaluate_saved

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--name", default="music")
    args = p.parse_args(argv)
    out = {"machine": machine(), "data": args.data, "split": args.split, "models": {}}
    for folder in args.models:
        t = time.perf_counter()
        result = evaluate_saved(folder, args.data, args.split, samples=args.samples, judges=True,
                                log=lambda m: print(m, file=sys.stderr, flush=True))  # stdout: the JSON only
        result["seconds"] = round(time.perf_counter() - t, 1)
        png = RESULTS / f"{args.name}_{Path(folder).name}.png"
        picture(load_model(folder), args.data, args.split, png)
        result["picture"] = str(png.relative_to(Path(__file__).parent.parent)) if png.is_relative_to(Path(__file__).parent.parent) else str(png)
        kl = np.asarray(result["kl_per_dim"])
        result["kl_dims_over_half_nat"] = int((kl > 0.5).sum())
        out["models"][folder] = result
    emit(args.name, out)


if __name__ == "__main__":
    main()
