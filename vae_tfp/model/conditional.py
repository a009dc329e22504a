"""Label-conditioned generation: p(z | field=value, ...) from the codes of the clips that carry the values.

:func:`fit_conditional` encodes a prepared split (streamed) and writes ``conditional_prior.npz`` in
the model folder, its own file: per clip, the posterior means and scales, the responsibilities of
the trained mixture's components for its codes, and the value of every label field the dataset
has (the folder ``label`` and metadata such as ``instrument``, ``pitch``, ``velocity``). Any set of
conditions then selects the clips that carry all of them, jointly, and :func:`sample_conditional`
draws latents by one of two methods:

- ``em`` (default): a small diagonal mixture (at most 8 components) fitted by EM to draws from the
  selected clips' posteriors;
- ``components``: the trained mixture's own components, weighted by their mean responsibility for
  the selected clips' codes (the prior the decoder was trained against, re-weighted). Components
  shared by several labels blur them: it samples the label less often than ``em``.

Conditions that no clip carries are refused with the values that exist (and, for numbers, the
nearest ones), given the other conditions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ..config import CONDITIONAL_METHODS
from ..data.dataset import DatasetLike, label_value, open_dataset
from ..errors import ConfigError, DatasetError, ModelFileError

tfd = tfp.distributions

FILE = "conditional_prior.npz"
FORMAT = "vae_tfp.conditional_prior/1"
METHODS = CONDITIONAL_METHODS
# On the committed demo model, the share of conditional samples the dataset classifier assigns to the
# requested instrument: em 0.89, components 0.67 (pitch: 0.99 and 0.67); benchmarks/conditional.py.
DEFAULT_METHOD = METHODS[0]
DRAWS_PER_CLIP = 8  # posterior draws per clip behind its responsibilities and the EM fit


def fit_conditional(model_dir: str | os.PathLike, data: DatasetLike, *, split: str = "train", seed: int = 0) -> dict:
    """Encodes ``split`` of ``data`` and writes :data:`FILE` into ``model_dir``; returns a summary
    (``n_clips`` and ``fields``: each field's values with their clip counts)."""
    from ..evaluation.classifier import label_heads
    from ..files import write_bytes_atomic
    from .networks import posterior_stats
    from .saving import load_model

    model = load_model(model_dir, parts=("encoder", "prior"))
    data = open_dataset(data)
    data.check_config(model.spectrogram_config, model_dir)
    clips = data.split_clips(split)
    if not clips:
        raise DatasetError(f"{data.path}: split {split!r} is empty; nothing to condition on")
    heads = label_heads(clips)
    if not heads:
        raise DatasetError(f"{data.path}: the clips of split {split!r} carry no label with two or more values")
    means, scales = (np.concatenate(parts) for parts in zip(*(posterior_stats(model.encoder, batch, 32)
                                                               for batch in data.batches(split, 256))))
    arrays = {
        "format": np.array(FORMAT), "data_sha256": np.array(data.sha256), "split": np.array(split),
        "means": means.astype(np.float32), "scales": scales.astype(np.float32),
        "responsibilities": responsibilities(model.prior, means, scales, seed=seed),
        "fields": np.array(list(heads)),
        "values": np.array([[str(label_value(c, f)) for c in clips] for f in heads]),
    }
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(Path(model_dir) / FILE, buffer.getvalue())
    return {"file": os.fspath(Path(model_dir) / FILE), "n_clips": len(clips),
            "fields": {f: {str(v): int(sum(str(label_value(c, f)) == str(v) for c in clips)) for v in classes}
                       for f, classes in heads.items()}}


def responsibilities(prior, means: np.ndarray, scales: np.ndarray, *, seed: int = 0,
                     draws: int = DRAWS_PER_CLIP) -> np.ndarray:
    """Per clip, the mixture components' mean responsibility for draws from its posterior: [n, K]."""
    rng = np.random.default_rng(seed)
    z = means[:, None] + scales[:, None] * rng.standard_normal((len(means), draws, means.shape[1]))
    flat = tf.constant(z.reshape(-1, 1, means.shape[1]), tf.float32)
    log_joint = prior.components_distribution.log_prob(flat) + tf.math.log_softmax(
        prior.mixture_distribution.logits_parameter())
    r = tf.nn.softmax(log_joint, axis=-1).numpy().reshape(len(means), draws, -1)
    return r.mean(axis=1).astype(np.float32)


class ConditionalPrior:
    """A model folder's :data:`FILE`, read once: its fields, values and per-clip statistics."""

    def __init__(self, path: Path, arrays: Mapping[str, np.ndarray]):
        self.path = path
        self.fields = [str(f) for f in arrays["fields"]]
        self.values = {f: arrays["values"][i].astype(str) for i, f in enumerate(self.fields)}
        self.means, self.scales = arrays["means"], arrays["scales"]
        self.responsibilities = arrays["responsibilities"]

    def known(self, field: str, mask: np.ndarray | None = None) -> list[str]:
        """The values of ``field`` among the clips of ``mask`` (all by default), numbers in numeric order."""
        return sorted(set(self.values[field][mask if mask is not None else slice(None)]), key=value_order)

    def select(self, where: Mapping[str, Any]) -> np.ndarray:
        """The clips carrying every condition of ``where``; ConfigError naming what exists otherwise."""
        if not where:
            raise ConfigError("a condition is needed, e.g. where={'instrument': 'violin'}")
        mask = np.ones(len(self.means), bool)
        for field, value in where.items():
            if field not in self.values:
                raise ConfigError(f"{self.path}: no label field {field!r}; fields are {', '.join(self.fields)}")
            others = mask.copy()
            mask &= self.values[field] == str(value)
            if not mask.any():
                known = self.known(field, others)
                near = _nearest(str(value), known)
                given = " given " + ", ".join(f"{f}={v}" for f, v in where.items() if f != field) if len(where) > 1 else ""
                raise ConfigError(f"{self.path}: no clip has {field}={value}{given}; {field} takes "
                                  f"{_listing(known)}{f' (nearest: {near})' if near else ''}")
        return mask

    def direction(self, field: str, *, within: str | None = None) -> np.ndarray:
        """The change of the latent per unit of a numeric ``field`` (e.g. one semitone of ``pitch``):
        least squares of the clips' posterior means on the field's value, after removing each
        ``within`` group's means (e.g. per instrument, so that timbre does not leak in)."""
        if field not in self.values:
            raise ConfigError(f"{self.path}: no label field {field!r}; fields are {', '.join(self.fields)}")
        try:
            x = self.values[field].astype(float)
        except ValueError:
            raise ConfigError(f"{self.path}: {field} is not numeric; it has no direction") from None
        z = self.means.astype(np.float64).copy()
        groups = self.values[within] if within else np.zeros(len(x), str)
        for g in set(groups):
            member = groups == g
            x[member] -= x[member].mean()
            z[member] -= z[member].mean(axis=0)
        if not (x ** 2).sum():
            raise ConfigError(f"{self.path}: {field} does not vary{f' within a {within}' if within else ''}")
        return ((x[:, None] * z).sum(axis=0) / (x ** 2).sum()).astype(np.float32)

    def sample(self, prior, n: int, where: Mapping[str, Any], *, method: str | None = None, seed: int = 0,
               temperature: float = 1.0) -> np.ndarray:
        """``n`` latents [n, D] conditioned on ``where`` by ``method`` (default :data:`DEFAULT_METHOD`;
        see the module docstring)."""
        method = method or DEFAULT_METHOD
        if method not in METHODS:
            raise ConfigError(f"method={method!r} must be one of {', '.join(METHODS)}")
        mask = self.select(where)
        comp = prior.components_distribution
        if method == "components":
            weights = self.responsibilities[mask].mean(axis=0)
            loc, scale = comp.mean(), comp.stddev()
        else:
            from .prior_fit import fit_mixture

            rng = np.random.default_rng(seed)
            means, scales = self.means[mask], self.scales[mask]
            draws = (means[:, None] + scales[:, None] * rng.standard_normal((len(means), DRAWS_PER_CLIP,
                                                                             means.shape[1]))).reshape(-1, means.shape[1])
            mixture = fit_mixture(draws, max(1, min(8, len(means) // 2)), seed=seed, n_init=1)
            weights, loc, scale = mixture["weights"], mixture["locs"], mixture["scales"]
        dist = tfd.MixtureSameFamily(tfd.Categorical(probs=tf.constant(weights / weights.sum(), tf.float32)),
                                     tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale * temperature))
        return dist.sample(n, seed=tf.constant([seed, 1], tf.int32)).numpy().astype(np.float32)


def load_conditional(model_dir: str | os.PathLike) -> ConditionalPrior:
    """The model folder's conditional prior; ModelFileError saying how to make one when it has none."""
    path = Path(model_dir) / FILE
    if not path.is_file():
        raise ModelFileError(f"{model_dir}: no {FILE}; run `vae-tfp fit-conditional {model_dir} DATA` to condition "
                             f"on the labels of a prepared dataset")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path}: cannot read ({err})") from None
    if str(arrays.get("format")) != FORMAT:
        raise ModelFileError(f"{path}: format {arrays.get('format')!s} is not {FORMAT}; run `vae-tfp fit-conditional` "
                             f"again")
    return ConditionalPrior(path, arrays)


def sample_conditional(model, n: int, where: Mapping[str, Any], *, method: str | None = None, seed: int = 0,
                       temperature: float = 1.0) -> np.ndarray:
    """``n`` latents of a loaded model (with its prior) conditioned on ``where``, e.g. ``{"instrument": "violin"}``."""
    return load_conditional(model.info.path).sample(model.prior, n, where, method=method, seed=seed,
                                                    temperature=temperature)


def parse_where(items) -> dict[str, str]:
    """``["instrument=violin", "pitch=60"]`` → ``{"instrument": "violin", "pitch": "60"}``; ConfigError naming a bad item."""
    where = {}
    for item in items or ():
        field, sep, value = item.partition("=")
        if not sep or not field or not value:
            raise ConfigError(f"--where {item!r} must be FIELD=VALUE, e.g. instrument=violin")
        where[field] = value
    return where


def value_order(v: str) -> tuple:
    """Sort key of label values: numbers first, in numeric order (``"9"`` before ``"10"``), then text."""
    return (not _is_number(v), float(v) if _is_number(v) else 0.0, v)


def _is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _nearest(value: str, known: list[str]) -> str:
    if not _is_number(value):
        return ""
    numbers = [k for k in known if _is_number(k)]
    return ", ".join(sorted(numbers, key=lambda k: abs(float(k) - float(value)))[:3])


def _listing(values: list[str], limit: int = 12) -> str:
    return ", ".join(values) if len(values) <= limit else ", ".join(values[:limit]) + f", ... ({len(values)} in all)"
