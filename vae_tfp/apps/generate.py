"""Using a trained model: encode, decode, sample the prior, reconstruct audio files.

All functions take a :class:`~vae_tfp.model.saving.LoadedModel` (or anything with ``encoder``,
``decoder``, ``prior`` and ``spectrogram_config``) and work in batches. Images are float32
[n, n_bins, n_frames, 1] in [0, 1]; latents are float32 [n, latent_dim].
"""

from __future__ import annotations

import os

import numpy as np

from ..audio.io import first_clips
from ..errors import ConfigError
from ..model.networks import map_batches, posterior_stats, reconstruction_mean
from ..model.prior import sample_prior
from ..audio.spectrogram import DEFAULT_INVERSION, Inversion, griffin_lim_tf, spectrogram


def encode(model, images: np.ndarray, *, batch_size: int = 32, refine_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and marginal standard deviations of images, NumPy [n, D] each.

    ``refine_steps`` > 0: the means are then refined by that many optimiser steps on each clip's
    own posterior (:func:`vae_tfp.model.refine.refine_codes`; needs the decoder and the prior),
    which closes the encoder's amortisation gap on clips unlike its training data.
    """
    if model.encoder is None:
        raise ConfigError("this model was loaded without its encoder (load it with parts including 'encoder')")
    images = np.asarray(images, np.float32)
    means, stds = posterior_stats(model.encoder, images, batch_size)
    if refine_steps:
        from ..model.refine import refine_codes

        if model.decoder is None or model.prior is None:
            raise ConfigError("refining codes needs the model's decoder and prior (load it with all its parts)")
        means = refine_codes(model.decoder, model.prior, images, means, steps=refine_steps)
    return means, stds


def decode(model, z: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    """Latents [n, D] → mean images [n, H, W, 1] in [0, 1]."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != model.config.latent_dim:
        raise ConfigError(f"latents of shape {z.shape} do not match latent_dim={model.config.latent_dim}")
    return map_batches(lambda b, _: reconstruction_mean(model.decoder(b, training=False)).numpy(), z, batch_size)


def to_audio(model, images: np.ndarray, *, inversion: Inversion = DEFAULT_INVERSION, seed: int = 0) -> np.ndarray:
    """Images → audio [n, clip_samples] with the batched TF Griffin-Lim."""
    if not len(images):
        return np.zeros((0, model.spectrogram_config.clip_samples), np.float32)
    return griffin_lim_tf(images, model.spectrogram_config, inversion=inversion, seed=seed)


def generate(model, n: int, *, seed: int = 0, component: int | None = None, temperature: float = 1.0,
             inversion: Inversion = DEFAULT_INVERSION, where: dict | None = None,
             method: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples the prior (or p(z | labels ``where``): :func:`~vae_tfp.model.prior.sample_prior`),
    decodes (mean) and inverts: returns ``(z, images, audio)``."""
    z = sample_prior(model, n, seed=seed, component=component, temperature=temperature, where=where, method=method)
    images = decode(model, z)
    return z, images, to_audio(model, images, inversion=inversion, seed=seed)


def file_clips(model, path: str | os.PathLike, *, max_clips: int | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """A file's consecutive clips: ``(audio [n, samples], images [n, H, W, 1], offsets)``."""
    config = model.spectrogram_config
    clips = first_clips(path, config, max_clips)
    audio = np.stack([c.audio for c in clips])
    return audio, spectrogram(audio, config), [c.offset for c in clips]


def reconstruct(model, images: np.ndarray, *, refine_steps: int = 0) -> np.ndarray:
    """Encode (posterior mean, refined by ``refine_steps``: :func:`encode`) then decode (mean):
    images → reconstructed images."""
    means, _ = encode(model, images, refine_steps=refine_steps)
    return decode(model, means)


def compare_stages(model_dir, images: np.ndarray, *, n_samples: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A folder that went through the adversarial stage, before and after: ``images`` reconstructed
    (posterior means) by the stage-1 and the stage-2 decoder, and the same prior draws decoded by both.

    Returns:
        ``{"stage 1": reconstructions, "stage 2": ..., "samples stage 1": ..., "samples stage 2": ...}``.
    """
    from ..model.saving import load_model

    after = load_model(model_dir, stage=2)
    before = load_model(model_dir, parts=("decoder",), stage=1)
    means, _ = encode(after, images)
    z = sample_prior(after, n_samples, seed=seed)
    return {"stage 1": decode(before, means), "stage 2": decode(after, means),
            "samples stage 1": decode(before, z), "samples stage 2": decode(after, z)}
