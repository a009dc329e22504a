"""Ex-post fit of the mixture prior to the codes (Ghosh et al., ICLR 2020).

After training, the aggregate posterior — the codes of the training clips, drawn from q(z|x) —
is what the decoder has learned to turn into spectrograms. Sampling a prior that misses it
decodes latents the decoder never saw ("prior holes"). :func:`fit_prior` fits the model's
K-component diagonal Gaussian mixture to those codes by EM with scikit-learn's
``GaussianMixture`` (weights, means and variances), and writes it into the prior's variables:
the prior stays the same ``tfd.MixtureSameFamily`` in its own file, only its values change.
"""

from __future__ import annotations

import os
import time
from typing import Iterable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ..data.dataset import DatasetLike, open_dataset
from ..errors import ConfigError, DatasetError
from .prior import make_prior, prior_variables
from .networks import map_batches

# Floor of a component's variance: keeps EM from collapsing a component onto one clip's codes.
MIN_VARIANCE = 1e-4
# EM runs on at most this many codes (a seeded sample of them): 12 500 clips x 8 draws; beyond it,
# more codes refine 64 components of 32-D Gaussians no further and cost EM time linearly.
MAX_EM_CODES = 100_000


def aggregate_posterior(encoder, images: np.ndarray, *, samples_per_clip: int = 8, seed: int = 0,
                        batch_size: int = 32) -> np.ndarray:
    """Draws codes z ~ q(z|x) for every image: NumPy [n * samples_per_clip, D]."""
    def codes(batch, start):
        q = encoder(batch, training=False)
        return q.sample(samples_per_clip, seed=seed + start).numpy().reshape(-1, q.event_shape[-1])

    return map_batches(codes, np.asarray(images, np.float32), batch_size)


def fit_mixture(codes: np.ndarray, num_modes: int, *, seed: int = 0, n_init: int = 3) -> dict[str, np.ndarray]:
    """EM fit of a diagonal Gaussian mixture: ``{"weights" [K], "locs" [K, D], "scales" [K, D]}``."""
    from sklearn.mixture import GaussianMixture

    codes = np.asarray(codes, np.float64)
    if len(codes) < num_modes:
        raise ConfigError(f"{len(codes)} codes cannot fit a {num_modes}-component mixture")
    gm = GaussianMixture(num_modes, covariance_type="diag", reg_covar=MIN_VARIANCE, n_init=n_init,
                         random_state=seed, max_iter=500).fit(codes)
    return {"weights": gm.weights_.astype(np.float32), "locs": gm.means_.astype(np.float32),
            "scales": np.sqrt(gm.covariances_).astype(np.float32)}


def assign_mixture(prior, mixture: dict[str, np.ndarray]) -> None:
    """Writes fitted weights, means and scales into the prior's variables (logits, locs, raw scales)."""
    v = prior_variables(prior)
    v["logits"].assign(np.log(np.maximum(mixture["weights"], 1e-12)).astype(np.float32))
    v["locs"].assign(mixture["locs"])
    v["scales_raw"].assign(tfp.math.softplus_inverse(tf.constant(mixture["scales"], tf.float32)))


def codes_nll(prior, codes: np.ndarray) -> float:
    """Mean negative log-density of codes under the prior (nats per code)."""
    return float(-tf.reduce_mean(prior.log_prob(np.asarray(codes, np.float32))).numpy())


def fit_prior(model, images: np.ndarray | Iterable[np.ndarray], *, num_modes: int | None = None,
              samples_per_clip: int = 8, seed: int = 0) -> dict:
    """Refits ``model.prior`` in place to the codes of ``images`` [n, H, W, 1] (or an iterable of
    such batches, streamed: memory holds one batch and the codes; EM fits a seeded sample of at
    most :data:`MAX_EM_CODES` of them).

    Args:
        model: Anything with ``encoder``, ``prior`` and ``config`` (a loaded model or a VAE).
        num_modes: Components of the refitted mixture; default the model's. Another number
            replaces ``model.prior`` by a new mixture of that size (the caller records it in the
            model's config).

    Returns:
        A record: codes' NLL under the prior before and after, the weights, counts and seconds.
    """
    if model.encoder is None or model.prior is None:
        raise ConfigError("fitting the prior needs the model's encoder and prior")
    t0 = time.perf_counter()
    parts, n_clips = [], 0
    for batch in [images] if isinstance(images, np.ndarray) else images:
        # seeded by the clip's position in the set, as in one array
        parts.append(aggregate_posterior(model.encoder, np.asarray(batch, np.float32),
                                         samples_per_clip=samples_per_clip, seed=seed + n_clips))
        n_clips += len(batch)
    if not n_clips:
        raise DatasetError("no images to fit the prior to")
    codes = np.concatenate(parts)
    em_codes = codes if len(codes) <= MAX_EM_CODES else \
        codes[np.random.default_rng(seed).choice(len(codes), MAX_EM_CODES, replace=False)]
    before = codes_nll(model.prior, codes)
    k = num_modes or model.config.num_modes
    mixture = fit_mixture(em_codes, k, seed=seed)
    if k != model.prior.mixture_distribution.logits_parameter().shape[-1]:
        model.prior = make_prior(model.config.latent_dim, k)
        if hasattr(model, "_prior_vars"):  # a VAE: its prior term trains the new variables (recompile to go on)
            model._prior_vars = list(model.prior.trainable_variables)
    assign_mixture(model.prior, mixture)
    return {"method": "sklearn GaussianMixture (EM, diagonal) on z ~ q(z|x)", "num_modes": k, "n_clips": n_clips,
            "n_codes": int(len(codes)), "n_codes_em": int(len(em_codes)), "seed": seed, "codes_nll_before": before,
            "codes_nll_after": codes_nll(model.prior, codes), "weights": mixture["weights"].round(4).tolist(),
            "seconds": round(time.perf_counter() - t0, 2)}


def fit_prior_saved(model_dir: str | os.PathLike, data: DatasetLike, *, split: str = "train",
                    num_modes: int | None = None, samples_per_clip: int = 8, seed: int = 0) -> dict:
    """:func:`fit_prior` on a saved model folder and a prepared dataset's split; rewrites the prior file
    (and, with another ``num_modes``, the ``num_modes`` of its ``config.json``).

    Raises:
        ModelFileError: the folder is not a model, or lacks its encoder or prior.
        DatasetError: the split is empty or missing.
        ConfigError: the dataset was prepared with another spectrogram config.
    """
    from .saving import load_model, replace_prior

    model = load_model(model_dir, parts=("encoder", "prior"))
    data = open_dataset(data)
    data.check_config(model.spectrogram_config, model_dir)
    if not data.n_clips(split):
        raise DatasetError(f"{data.path}: split {split!r} is empty; nothing to fit the prior to")
    record = fit_prior(model, data.batches(split, 256), num_modes=num_modes, samples_per_clip=samples_per_clip,
                       seed=seed)
    record.update(data=os.fspath(data.path), split=split)
    config = model.config.replace(num_modes=record["num_modes"])
    replace_prior(model_dir, model.prior, record=record, model_config=config)
    return record
