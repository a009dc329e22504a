"""The collapse and prior-hole diagnostics, and held-out evaluation of a model.

Diagnostics (computed on validation data):

* ``kl_per_dim``: Monte-Carlo KL of each posterior marginal q(z_i|x) against the prior's
  marginal, a 1-D mixture (nats, averaged over examples).
* ``active_units``: dimensions whose posterior mean varies across examples with variance > 0.01.
* ``recon_gain``: MSE(x, mean training image) / MSE(x, reconstruction). A collapsed model, whose
  reconstructions are all the dataset average, scores about 1.

Prior-hole diagnostics (generation samples the prior, so the prior must cover the codes):

* ``codes_log_density`` / ``prior_samples_log_density``: median log p(z) under the prior of the
  validation codes (z ~ q(z|x)) and of the prior's own samples. When the prior fits the codes the
  two agree; codes far below the prior's own samples lie outside the prior (a prior hole).
* ``prior_hole_gap``: the second minus the first (nats).
* ``code_spread_ratio``: per dimension, the std of the codes over the std of the prior's marginal
  (median over dimensions; ``code_std`` and ``prior_std`` hold them per dimension).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import tensorflow as tf

from ..data.dataset import SUBSET_CLIPS, DatasetLike, open_dataset
from ..errors import DatasetError
from ..model.networks import map_batches, posterior_stats, reconstruction_mean
from .time_structure import correlation_summary

ACTIVE_UNIT_VARIANCE = 0.01
COLLAPSE_ACTIVE_UNITS = 2
COLLAPSE_RECON_GAIN = 1.2
PRIOR_HOLE_NATS_PER_DIM = 0.5  # codes this much less likely than the prior's own samples, per dimension
PRIOR_SPREAD_RANGE = (0.5, 2.0)  # median code std / prior std outside this: prior too narrow or too wide
PRIOR_DIAGNOSTIC_SAMPLES = 512
PRIOR_DIAGNOSTICS = ("codes_log_density", "prior_samples_log_density", "prior_hole_gap", "code_spread_ratio",
                     "code_std", "prior_std")
TIME_DIAGNOSTICS = ("loudness_corr", "onset_corr", "loudness_corr_chance", "onset_corr_chance")


def kl_per_dimension(means: np.ndarray, stds: np.ndarray, prior, *, samples: int = 16, seed: int = 0) -> np.ndarray:
    """KL(q(z_i|x) || p(z_i)) per latent dimension (nats, mean over examples; Monte Carlo).

    Args:
        means, stds: Posterior marginals [n, D].
        prior: The mixture prior; its per-dimension marginal is a 1-D Gaussian mixture
            (:func:`vae_tfp.model.prior.prior_marginals`, with the mixture's weights).
    """
    import tensorflow_probability as tfp

    from ..model.prior import prior_marginals

    q = tfp.distributions.Normal(means.astype(np.float32), stds.astype(np.float32))  # batch [n, D]
    z = q.sample(samples, seed=seed)  # [S, n, D]
    kl = q.log_prob(z) - prior_marginals(prior).log_prob(z)
    return tf.reduce_mean(kl, axis=[0, 1]).numpy()


def prior_fit_diagnostics(codes: np.ndarray, prior, *, n_samples: int = PRIOR_DIAGNOSTIC_SAMPLES,
                          seed: int = 0) -> dict:
    """How well the prior covers ``codes`` [n, D] (samples of the aggregate posterior); see the module docstring."""
    from ..model.prior import mixture_components, mixture_weights

    codes = np.asarray(codes, np.float32)
    samples = prior.sample(n_samples, seed=seed)
    codes_ld = float(np.median(prior.log_prob(codes).numpy()))
    samples_ld = float(np.median(prior.log_prob(samples).numpy()))
    w, (locs, scales) = mixture_weights(prior)[:, None], mixture_components(prior)
    mean = (w * locs).sum(0)
    prior_std = np.sqrt(np.maximum((w * (scales**2 + locs**2)).sum(0) - mean**2, 1e-12))
    code_std = codes.std(axis=0)
    return {"codes_log_density": codes_ld, "prior_samples_log_density": samples_ld,
            "prior_hole_gap": samples_ld - codes_ld,
            "code_spread_ratio": float(np.median(code_std / prior_std)),
            "code_std": code_std.tolist(), "prior_std": prior_std.tolist()}


def prior_hole_warning(diag: dict) -> str | None:
    """A loud message when the codes lie outside the prior's mass (or the prior's mass lies where no codes are)."""
    problems = []
    d = len(diag["code_std"])
    if diag["prior_hole_gap"] > PRIOR_HOLE_NATS_PER_DIM * d:
        problems.append(f"validation codes have median log p(z) {diag['codes_log_density']:.1f} nats against "
                        f"{diag['prior_samples_log_density']:.1f} for the prior's own samples")
    low, high = PRIOR_SPREAD_RANGE
    ratio = diag["code_spread_ratio"]
    if not low <= ratio <= high:
        problems.append(f"codes spread {ratio:.2f}x the prior's std (median over dimensions)")
    if not problems:
        return None
    return ("PRIOR HOLE? " + "; ".join(problems) + " — samples of the prior will not look like the data "
            "(refit it: `vae-tfp fit-prior MODEL DATA`)")


def diagnostics(encoder, decoder, prior, x: np.ndarray, train_mean: np.ndarray, *, batch_size: int = 32,
                seed: int = 0, config=None) -> dict:
    """Collapse and prior-hole diagnostics on images ``x`` [n, H, W, 1]; see the module docstring.

    With the spectrogram ``config`` also the reconstructions' time structure: the median per-clip
    correlation of their loudness and onset contours with the real clips' (``loudness_corr``,
    ``onset_corr``) and its chance level (``*_chance``: a real clip against another;
    :func:`vae_tfp.evaluation.time_structure.correlation_summary`).
    """
    if not len(x):
        raise DatasetError("diagnostics need at least one image; got an empty array")
    means, stds = posterior_stats(encoder, x, batch_size)
    # codes drawn from the posterior marginals (the aggregate posterior the prior should cover)
    codes = means + stds * np.random.default_rng(seed).standard_normal(means.shape).astype(np.float32)
    variance = means.var(axis=0)
    return {
        **reconstruction_scores(x, _decode_means(decoder, means, batch_size), train_mean, config=config, seed=seed),
        "active_units": int((variance > ACTIVE_UNIT_VARIANCE).sum()),
        "latent_variance": variance.tolist(),
        "kl_per_dim": kl_per_dimension(means, stds, prior).tolist(),
        **prior_fit_diagnostics(codes, prior, seed=seed),
    }


def _decode_means(decoder, codes: np.ndarray, batch_size: int) -> np.ndarray:
    return map_batches(lambda b, _: reconstruction_mean(decoder(b, training=False)).numpy(), codes, batch_size)


def reconstruction_scores(x: np.ndarray, recons: np.ndarray, train_mean: np.ndarray, *, config=None,
                          seed: int = 0) -> dict[str, float]:
    """``recon_mse``, ``mean_image_mse``, ``recon_gain`` of reconstructions ``recons`` of ``x`` and,
    with the spectrogram ``config``, their time structure (``loudness_corr``, ``onset_corr`` and the chance levels)."""
    mse_recon = float(np.mean((x - recons) ** 2))
    mse_mean = float(np.mean((x - train_mean[None]) ** 2))
    return {**({} if config is None else correlation_summary(x, recons, config, seed=seed)),
            "recon_mse": mse_recon, "mean_image_mse": mse_mean, "recon_gain": mse_mean / max(mse_recon, 1e-12)}


def collapse_warning(diag: dict) -> str | None:
    """A loud message when the diagnostics look like posterior collapse, else None."""
    problems = []
    if diag["active_units"] <= COLLAPSE_ACTIVE_UNITS:
        problems.append(f"only {diag['active_units']} active latent units")
    if diag["recon_gain"] < COLLAPSE_RECON_GAIN:
        problems.append(f"recon_gain {diag['recon_gain']:.2f} < {COLLAPSE_RECON_GAIN} (reconstructions are "
                        f"barely better than the dataset mean)")
    return "POSTERIOR COLLAPSE? " + "; ".join(problems) if problems else None


def evaluate(encoder, decoder, prior, data: DatasetLike, split: str = "test", *, batch_size: int = 32,
             kl_samples: int = 4, seed: int = 0, max_clips: int | None = SUBSET_CLIPS,
             refine_steps: int = 0, refined_sink: dict | None = None) -> dict[str, Any]:
    """Held-out metrics of a model on a dataset split.

    Returns:
        ``neg_elbo_nats`` (per example), ``bits_per_dim``, ``recon_nll_nats``, ``kl_nats``
        (Monte Carlo with ``kl_samples`` samples, beta = 1, no free nats), ``active_units``,
        ``latent_dim``, ``recon_gain``, ``recon_mse``, ``n_examples``, ``kl_per_dim``, the
        prior-hole diagnostics, and the reconstructions' time structure: ``loudness_corr`` and
        ``onset_corr`` (median per-clip contour correlation) and their ``*_chance`` levels (see
        :func:`diagnostics`). With ``refine_steps`` > 0 also ``"refined"``: ``recon_gain``,
        ``recon_mse``, ``loudness_corr``, ``onset_corr`` and ``seconds`` when each code is refined by
        that many steps on its clip's posterior (:func:`vae_tfp.model.refine.refine_codes`); a
        ``refined_sink`` dict then receives ``steps``, ``rows`` and the refined reconstructions
        (``images``), for the generation table to score without refining again.
    """
    data = open_dataset(data)
    rows = data.sample(split, max_clips, seed=seed)
    x = data.load(split, rows=rows)  # a seeded subset of a large split
    if not len(x):
        raise DatasetError(f"{data.path}: split {split!r} is empty: nothing to evaluate")
    def terms(batch, start):
        q = encoder(batch, training=False)
        z = q.sample(kl_samples, seed=(seed, start))  # [S, b, D]; a stateless seed per batch, no global state
        return (tf.reduce_mean(q.log_prob(z) - prior.log_prob(z), axis=0).numpy(),
                -decoder(z[0], training=False).log_prob(batch).numpy())

    kl, recon_nll = map_batches(terms, x, batch_size)
    recon_nll, kl = float(recon_nll.mean()), float(kl.mean())
    diag = diagnostics(encoder, decoder, prior, x, data.mean_image("train"), batch_size=batch_size, config=data.config)
    dims = int(np.prod(x.shape[1:]))
    neg_elbo = recon_nll + kl
    refined = {}
    if refine_steps:
        refined["refined"], images = refined_reconstruction(encoder, decoder, prior, x, data.mean_image("train"),
                                                            refine_steps, batch_size=batch_size, config=data.config,
                                                            seed=seed)
        if refined_sink is not None:
            refined_sink.update(steps=refine_steps, rows=rows, images=images)
    return {
        "split": split, "n_examples": int(len(x)), "n_clips_in_split": data.n_clips(split), "latent_dim": len(diag["kl_per_dim"]),
        "neg_elbo_nats": neg_elbo, "bits_per_dim": neg_elbo / (dims * math.log(2)),
        "recon_nll_nats": recon_nll, "kl_nats": kl,
        "active_units": diag["active_units"], "recon_gain": diag["recon_gain"], "recon_mse": diag["recon_mse"],
        "kl_per_dim": diag["kl_per_dim"],
        **{k: diag[k] for k in PRIOR_DIAGNOSTICS[:4]},
        **{k: diag[k] for k in TIME_DIAGNOSTICS if k in diag},
        **refined,
    }


def refined_reconstruction(encoder, decoder, prior, x: np.ndarray, train_mean: np.ndarray, steps: int, *,
                           batch_size: int = 32, config=None, seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """``x``'s reconstructions from codes refined by ``steps`` optimiser steps, and their scores:
    recon_gain, recon_mse (with ``config`` the time-structure correlations), how far the codes moved
    and the seconds it took."""
    from ..model.refine import refine_codes

    t0 = time.perf_counter()
    means, _ = posterior_stats(encoder, x, batch_size)
    codes = refine_codes(decoder, prior, x, means, steps=steps)
    recons = _decode_means(decoder, codes, batch_size)
    seconds = time.perf_counter() - t0
    scores = reconstruction_scores(x, recons, train_mean, config=config, seed=seed)
    return {"steps": int(steps), **{k: scores[k] for k in ("recon_gain", "recon_mse", "loudness_corr", "onset_corr")
                                    if k in scores},
            "code_shift": float(np.sqrt(((codes - means) ** 2).sum(-1)).mean()), "seconds": round(seconds, 1)}, recons


def evaluate_saved(model_dir, data: DatasetLike, split: str = "test", *, samples: int = 0,
                   temperatures=(1.0, 0.8, 0.6), judges: bool | None = None, log=print, refine_steps: int = 0,
                   **kwargs) -> dict[str, Any]:
    """:func:`evaluate` for a saved model folder (checks that the dataset matches the model).

    With ``samples`` > 0 the result also holds ``"samples"``: the generation table of
    :func:`vae_tfp.evaluation.sample_metrics.evaluate_samples` with that many prior samples per temperature.
    ``refine_steps`` > 0 adds the refined reconstructions (``"refined"``; and a table row of them).
    """
    from ..model.saving import load_model

    model = load_model(model_dir)
    data = open_dataset(data)
    data.check_config(model.spectrogram_config, model_dir)
    refined = {}
    result = evaluate(model.encoder, model.decoder, model.prior, data, split, refine_steps=refine_steps,
                      refined_sink=refined, **kwargs)
    if samples:
        from .sample_metrics import evaluate_samples

        result["samples"] = evaluate_samples(model, data, split=split, n_samples=samples,
                                             temperatures=temperatures, judges=judges, log=log,
                                             refine_steps=refine_steps, refined=refined)
    return result
