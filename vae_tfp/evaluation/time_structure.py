"""Time structure of spectrogram images: does a clip keep the onsets, loudness and phrasing of music?

Pixel losses and pooled-pixel embeddings average over time: a smear with the right spectral
envelope scores well on them. These metrics look along the time axis only, on levels in dB with
everything below ``AUDIBLE_FLOOR_DB`` raised to it (real spectrograms hold exact zeros below
``min_db`` that no decoder draws):

* the **loudness contour** of a clip: the mean level over bins, per frame (dB);
* the **onset contour**: the mean positive level change over bins, per frame — the spectral flux
  of librosa's ``onset_strength``, on the image itself (dB per frame).

Reconstructions are scored pairwise: the per-clip Pearson correlation of the real and the
reconstructed contour (:func:`contour_correlations`; a constant contour, such as the dataset mean
image's, correlates 0). The chance level is a real clip against a *different* real clip.

Sets without a partner (prior samples) are scored by the distribution of per-clip statistics
(:func:`clip_statistics`: onset rate, loudness range, mean spectral flux) against the real
training clips', as a Wasserstein-1 distance in units of the real statistic's spread
(:func:`statistics_distance`).
"""

from __future__ import annotations

import numpy as np

AUDIBLE_FLOOR_DB = -60.0  # levels below this are raised to it before any statistic of sound
TIME_STATISTICS = ("onset_rate", "loudness_range_db", "spectral_flux_db")
ONSET_PROMINENCE_DB = 1.0  # an onset: a peak of the onset contour this many dB per frame above its surroundings
ONSET_MIN_GAP_SECONDS = 0.05  # and at least this far from the previous one
CHUNK = 64  # clips converted to float64 dB at a time: memory stays flat whatever the set's size


def _chunked(fn, *arrays):
    """``fn`` over ``CHUNK`` clips of each array at a time, its (array or dict of arrays) outputs concatenated."""
    parts = [fn(*(a[i:i + CHUNK] for a in arrays)) for i in range(0, max(len(arrays[0]), 1), CHUNK)]
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def levels_db(images: np.ndarray, config) -> np.ndarray:
    """Images [n, bins, frames(, 1)] in [0, 1] → levels in dB, floored at ``AUDIBLE_FLOOR_DB``: float64 [n, bins, frames]."""
    x = np.asarray(images, np.float64)
    x = x[..., 0] if x.ndim == 4 else x
    return np.maximum(config.min_db + x * config.db_range, AUDIBLE_FLOOR_DB)


def loudness_contour(levels: np.ndarray) -> np.ndarray:
    """Mean level over bins per frame: [n, frames] dB, from :func:`levels_db`."""
    return levels.mean(axis=1)


def onset_contour(levels: np.ndarray) -> np.ndarray:
    """Mean positive frame-to-frame level change over bins: [n, frames - 1] dB per frame."""
    return np.maximum(np.diff(levels, axis=2), 0).mean(axis=1)


def _rowwise_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; 0 where either is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / norm
    return np.where(norm > 1e-12, r, 0.0)


def contour_correlations(real: np.ndarray, other: np.ndarray, config) -> dict[str, np.ndarray]:
    """Per clip, the correlation of the loudness and onset contours of ``real[i]`` and ``other[i]``.

    Returns:
        ``{"loudness_corr": [n], "onset_corr": [n]}``.
    """
    if len(real) != len(other):
        raise ValueError(f"contour correlations pair clips: got {len(real)} and {len(other)}")

    def chunk(r, o):
        a, b = levels_db(r, config), levels_db(o, config)
        return {"loudness_corr": _rowwise_correlation(loudness_contour(a), loudness_contour(b)),
                "onset_corr": _rowwise_correlation(onset_contour(a), onset_contour(b))}

    return _chunked(chunk, real, other)


def correlation_summary(real: np.ndarray, other: np.ndarray, config, *, seed: int = 0) -> dict[str, float]:
    """Medians of :func:`contour_correlations` of the pairs, and of the chance level: each real clip
    against a different real clip (``*_chance``; needs two clips)."""
    out = {k: float(np.median(v)) for k, v in contour_correlations(real, other, config).items()}
    if len(real) >= 2:
        rng = np.random.default_rng(seed)
        shift = rng.integers(1, len(real))  # a derangement: clip i against clip i + shift
        chance = contour_correlations(real, np.roll(real, shift, axis=0), config)
        out.update({f"{k}_chance": float(np.median(v)) for k, v in chance.items()})
    return out


def clip_statistics(images: np.ndarray, config) -> np.ndarray:
    """Per clip: onsets per second, loudness range (95th minus 5th percentile of the loudness
    contour, dB) and mean spectral flux (mean absolute level change, dB per frame): float64 [n, 3].

    Onsets are the peaks of the onset contour with a prominence of ``ONSET_PROMINENCE_DB`` and
    ``ONSET_MIN_GAP_SECONDS`` apart (``scipy.signal.find_peaks``; an absolute threshold, so that a
    smear's small wiggles do not count as onsets, which a per-clip normalisation as in
    ``librosa.onset.onset_detect`` would let them — and its numba peak picker segfaulted here
    once, most likely numba's cache race of :mod:`vae_tfp.audio.numba_cache`).
    """
    from scipy.signal import find_peaks

    gap = max(1, round(ONSET_MIN_GAP_SECONDS * config.sample_rate / config.hop_length))

    def chunk(images):
        levels = levels_db(images, config)
        loud, onset = loudness_contour(levels), onset_contour(levels)
        flux = np.abs(np.diff(levels, axis=2)).mean(axis=(1, 2))
        # a sound already on at the first frame started before the clip: not an onset of this clip
        rates = np.array([len(find_peaks(envelope, prominence=ONSET_PROMINENCE_DB, distance=gap)[0])
                          for envelope in onset], float).reshape(-1) / config.clip_seconds
        spread = np.percentile(loud, 95, axis=1) - np.percentile(loud, 5, axis=1)
        return np.stack([rates, spread, flux], axis=1)

    return _chunked(chunk, np.asarray(images))


def statistics_distance(reference: np.ndarray, stats: np.ndarray) -> dict[str, float]:
    """How far the per-clip statistics ``stats`` [m, 3] are distributed from ``reference`` [n, 3].

    Returns:
        The set's median of each statistic, each statistic's Wasserstein-1 distance to the
        reference over the reference's standard deviation (``*_w1``), and ``time_w1``, their mean.
    """
    from scipy.stats import wasserstein_distance

    out = {}
    for j, name in enumerate(TIME_STATISTICS):
        scale = max(float(reference[:, j].std()), 1e-9)
        out[name] = float(np.median(stats[:, j]))
        out[f"{name}_w1"] = float(wasserstein_distance(reference[:, j], stats[:, j])) / scale
    out["time_w1"] = float(np.mean([out[f"{name}_w1"] for name in TIME_STATISTICS]))
    return out
