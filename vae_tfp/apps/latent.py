"""Moving around the latent space: interpolation, averages, label vectors, 2-D maps.

All functions work on NumPy latents [n, D] (posterior means from :func:`vae_tfp.apps.generate.encode`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, *, spherical: bool = False) -> np.ndarray:
    """``steps`` latents from ``a`` to ``b`` inclusive, [steps, D].

    Spherical interpolation (slerp) keeps the norm profile of Gaussian samples, which linear
    interpolation shrinks in the middle.
    """
    if steps < 2:
        raise ConfigError(f"steps={steps} must be at least 2")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not spherical:
        return ((1 - t) * a + t * b).astype(np.float32)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return ((1 - t) * a + t * b).astype(np.float32)
    omega = np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def weighted_average(latents: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of latents [n, D] → [D]; weights are normalised to sum to 1."""
    latents = np.asarray(latents, np.float32)
    w = np.ones(len(latents)) if weights is None else np.asarray(weights, np.float64)
    if len(w) != len(latents) or not np.all(np.isfinite(w)) or w.sum() == 0:
        raise ConfigError(f"weights {list(w)} must be {len(latents)} finite numbers with a non-zero sum")
    return (w[:, None] * latents).sum(0).astype(np.float32) / np.float32(w.sum())


def label_vector(latents: np.ndarray, labels: Sequence[str], positive: str, negative: str) -> np.ndarray:
    """Mean latent of label ``positive`` minus mean latent of label ``negative``, [D]."""
    labels = np.asarray(labels)
    for lab in (positive, negative):
        if not np.any(labels == lab):
            raise ConfigError(f"label {lab!r} not found; labels are {sorted(set(labels.tolist()))}")
    return (latents[labels == positive].mean(0) - latents[labels == negative].mean(0)).astype(np.float32)


def principal_directions(latents: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k principal directions of latents [n, D] (scikit-learn's PCA): ``(mean [D], directions
    [k, D] unit, std [k])``, the std being each direction's spread in the data."""
    from sklearn.decomposition import PCA

    latents = np.asarray(latents, np.float64)
    if latents.ndim != 2 or len(latents) < 2:
        raise ConfigError(f"principal directions need at least 2 latents [n, D], got shape {latents.shape}")
    pca = PCA(n_components=min(k, *latents.shape), svd_solver="full").fit(latents)
    return (pca.mean_.astype(np.float32), pca.components_.astype(np.float32),
            np.sqrt(pca.explained_variance_).astype(np.float32))


def project(latents: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """2-D map of latents [n, D] → [n, 2] with PCA or UMAP."""
    latents = np.asarray(latents, np.float32)
    if method == "pca":
        mean, dirs, _ = principal_directions(latents, 2)
        out = (latents - mean) @ dirs.T
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    if method == "umap":
        import umap

        n_neighbors = max(2, min(15, len(latents) - 1))
        return umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed).fit_transform(latents)
    raise ConfigError(f"method={method!r} must be 'pca' or 'umap'")


def plot_projection(points: np.ndarray, labels: Sequence[str], *, title: str = "", ax=None):
    """Scatter of a 2-D map coloured by label. Returns the axes."""
    import matplotlib

    from .render import pyplot

    ax = ax or pyplot().subplots(figsize=(7, 6))[1]
    labels = np.asarray(labels)
    cmap = matplotlib.colormaps["tab20" if len(set(labels)) > 10 else "tab10"]
    for i, lab in enumerate(sorted(set(labels.tolist()))):
        sel = labels == lab
        ax.scatter(points[sel, 0], points[sel, 1], s=12, color=cmap(i % cmap.N), label=lab)
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2 if len(set(labels)) > 12 else 1)
    ax.set_title(title)
    return ax
