"""Are samples new and varied, and are interpolations smooth? On a trained model and its dataset.

* novelty: median distance of each sample to its nearest training image, over the median
  nearest-neighbour distance between training images (copies of training data would be << 1);
* diversity: mean pairwise distance between samples over that between training images
  (a single mode would be ~0);
* smoothness: along A → B (20 random pairs of held-out clips, 10 steps), the fraction of steps
  where the decoded image's distance to the first step does not decrease.

Distances are RMS over pixels of the [0, 1] images.

    python benchmarks/sample_quality.py --model saved_models/demo --data data/notes
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def rms_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise RMS distances between rows of a [n, P] and b [m, P]."""
    aa, bb = (a ** 2).sum(1)[:, None], (b ** 2).sum(1)[None]
    return np.sqrt(np.maximum(aa + bb - 2 * a @ b.T, 0) / a.shape[1])


def main():
    from vae_tfp.dataset import load_numpy
    from vae_tfp.generate import decode, encode, sample_prior
    from vae_tfp.latent import interpolate
    from vae_tfp.operations import monotone_fraction
    from vae_tfp.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="saved_models/demo")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="sample_quality")
    args = ap.parse_args()
    model = load_model(args.model)
    train = load_numpy(args.data, "train")
    flat_train = train.reshape(len(train), -1).astype(np.float64)
    samples = decode(model, sample_prior(model, args.n, seed=args.seed)).reshape(args.n, -1).astype(np.float64)
    tt = rms_dist(flat_train, flat_train)
    np.fill_diagonal(tt, np.inf)
    train_nn = np.median(tt.min(1))
    np.fill_diagonal(tt, np.nan)
    train_pair = np.nanmean(tt)
    sample_nn = np.median(rms_dist(samples, flat_train).min(1))
    ss = rms_dist(samples, samples)
    sample_pair = ss[np.triu_indices(args.n, 1)].mean()
    held = load_numpy(args.data, "test")
    held = held if len(held) >= 2 else train
    means, _ = encode(model, held)
    rng = np.random.default_rng(args.seed)
    fractions = []
    for _ in range(args.pairs):
        i, j = rng.choice(len(held), 2, replace=False)
        images = decode(model, interpolate(means[i], means[j], args.steps))
        flat = images.reshape(args.steps, -1)
        fractions.append(monotone_fraction(np.sqrt(((flat - flat[0]) ** 2).mean(1))))
    emit(args.name, {
        "benchmark": "sample_quality", "machine": machine(), "model": args.model, "data": args.data,
        "n_samples": args.n, "n_train": len(train),
        "novelty": {"sample_to_train_nn_median": sample_nn, "train_to_train_nn_median": train_nn,
                    "ratio": sample_nn / train_nn},
        "diversity": {"sample_pairwise_mean": sample_pair, "train_pairwise_mean": train_pair,
                      "ratio": sample_pair / train_pair},
        "interpolation": {"pairs": args.pairs, "steps": args.steps, "monotone_fraction_mean": float(np.mean(fractions)),
                          "monotone_fraction_min": float(np.min(fractions))},
    })


if __name__ == "__main__":
    main()
