"""Hear it learn: previews of a training run, and a verdict on whether it still improves.

Every few epochs (:meth:`Previews.due`: every ``every``-th, the first and the run's last)
:class:`Previews` decodes a fixed set of prior draws
(the same seed every time) and reconstructs fixed validation clips, inverts them to audio and
writes them three ways:

* WAVs and PNGs under ``MODEL/previews/epoch_NNNN/``, indexed by ``MODEL/previews/previews.json``;
  bounded: the first previewed epoch, the best (by validation neg-ELBO) and the last
  ``keep`` are kept, the others deleted. The real clips are in ``MODEL/previews/real/``.
* TensorBoard audio and images (``previews/*``) beside the diagnostics;
* ``samples_fd`` in the epoch's history record: how far the audio statistics of 32 decoded prior
  draws (:func:`vae_tfp.evaluation.sample_metrics.audio_statistics`) are from those of a fixed
  subset of training clips, the distribution the prior learns (:class:`StatisticsDistance`: a
  Fréchet distance on their first principal components). Beside it, fixed for the run:
  ``samples_fd_floor`` (another, disjoint subset of training clips: real against real) and
  ``samples_fd_mean_image`` (the dataset's mean image: the smear a collapsed model draws). A progress signal that needs only a few dozen clips; the
  judges of ``evaluate --samples`` (a two-sample classifier, FAD) need more clips than a
  validation split may have, and cost more than an epoch.

:func:`verdict` reads the history: still improving, or plateaued for K epochs, on validation
neg-ELBO and ``samples_fd``. Notebook 03's panel (:class:`vae_tfp.apps.notebook.TrainingPanel`)
shows all of it while ``train`` runs.

With ``every="auto"`` (the default) a preview runs whenever the previews' seconds so far, with
this one and the run's last, stay within ``COST_BUDGET`` of the run's training seconds
(:func:`within_budget`): every epoch where previews are cheap beside an epoch, every few epochs
where they are not. The first and the last epoch are always previewed.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..audio.io import write_wav
from ..audio.spectrogram import DEFAULT_INVERSION, Inversion
from ..errors import ConfigError
from ..evaluation.sample_metrics import audio_statistics, frechet_distance
from ..files import remove, write_json_atomic
from .saving import PREVIEWS as FOLDER

INDEX = "previews.json"
REAL = "real"
PREVIEW_CLIPS = 4  # prior draws and reconstructions heard per preview
METRIC_SAMPLES = 32  # prior draws behind samples_fd
PNG_SIZE = 256  # the previews' pictures are pooled to at most this many pixels a side (the panel shows 256)
KEEP_LAST = 3
COST_BUDGET = 0.10  # "auto": previews take at most this share of the training time
PLATEAU_EPOCHS = 5  # no improvement for this many epochs: plateaued
MIN_IMPROVEMENT = 1e-3  # relative: smaller gains are noise, not progress
STAT_COMPONENTS = 6  # principal components of the audio statistics behind samples_fd
STAT_MIN_SCALE_DB = 0.1  # a statistic the real clips hold constant counts differences above a tenth of a dB
VERDICT_METRICS = {"val_neg_elbo": "validation neg-ELBO", "samples_fd": "samples' audio-statistics distance"}


def within_budget(spent: float, cost: float, trained: float, budget: float = COST_BUDGET) -> bool:
    """``"auto"``: whether one more preview costing ``cost`` seconds keeps all previews' seconds
    (``spent``) within ``budget`` of the seconds spent training (``trained``)."""
    return spent + cost <= budget * trained


def check_every(every) -> int | str | None:
    """``every`` as :func:`vae_tfp.model.training.train` takes it: ``"auto"``, a positive number of
    epochs, or 0 / None (off)."""
    if every in (None, 0, "0", "off"):
        return None
    if every == "auto":
        return "auto"
    if isinstance(every, str) and every.strip().isdigit():
        every = int(every)
    if isinstance(every, int) and not isinstance(every, bool) and every >= 1:
        return every
    raise ConfigError(f"previews={every!r} must be 'auto', a positive number of epochs, or 0 for none")


def reference_sets(data, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``samples_fd``'s reference and real floor: two disjoint random halves of a seeded subset of
    at most ``2 * METRIC_SAMPLES`` training clips of a prepared dataset."""
    rows = np.random.default_rng(seed).permutation(data.sample("train", 2 * METRIC_SAMPLES, seed=seed + 1))
    half = len(rows) // 2
    reference, floor = (data.load("train", rows=np.sort(part)) for part in (rows[:half], rows[half:2 * half]))
    return reference, floor


class StatisticsDistance:
    """The Fréchet distance of two sets of clips' audio statistics, seen from a reference set.

    The statistics (:func:`vae_tfp.evaluation.sample_metrics.audio_statistics`, 102 per clip) are
    standardised by the reference's spread and projected on its first ``STAT_COMPONENTS``
    principal components (scikit-learn's PCA), so that a few dozen clips estimate the covariances;
    the distance of a set to the reference is then :func:`frechet_distance` there. Unlike the
    features' marginal distributions, it sees how they vary together.
    """

    def __init__(self, reference: np.ndarray):
        from sklearn.decomposition import PCA

        reference = np.asarray(reference, np.float64)
        self.mean, self.scale = reference.mean(0), np.maximum(reference.std(0), STAT_MIN_SCALE_DB)
        n = min(STAT_COMPONENTS, len(reference) - 1, reference.shape[1])
        if n < 1:
            raise ConfigError(f"previews need at least 2 validation clips to compare samples with (got {len(reference)})")
        self.pca = PCA(n, random_state=0).fit(self._standardise(reference))
        self.reference = self.pca.transform(self._standardise(reference))

    def _standardise(self, feats):
        return (np.asarray(feats, np.float64) - self.mean) / self.scale

    def __call__(self, feats: np.ndarray) -> float:
        return frechet_distance(self.reference, self.pca.transform(self._standardise(feats)))


class Previews:
    """Decodes, inverts and writes the previews of a run; see the module docstring.

    Args:
        model_dir: The run's model folder.
        real: Fixed validation clips [n, H, W, 1]; the first ``n_clips`` are reconstructed.
        reference: Training clips [m, H, W, 1] the prior samples are compared with (``samples_fd``).
        floor: Other training clips [k, H, W, 1]: the real floor of ``samples_fd``.
        mean_image: The dataset's mean image [H, W, 1], the smear baseline.
        every: ``"auto"`` or a number of epochs.
        start: The epoch the run resumes after (later previews on disk are removed).
        n_clips, keep, seed, inversion: Clips per preview, last previews kept, the prior draws'
            seed, the inversion to audio.
        writer: A TensorBoard summary writer, or None.
    """

    def __init__(self, model_dir, real: np.ndarray, reference: np.ndarray, floor: np.ndarray,
                 mean_image: np.ndarray, config, *,
                 every="auto", start: int = 0, n_clips: int = PREVIEW_CLIPS, keep: int = KEEP_LAST, seed: int = 0,
                 inversion: Inversion = DEFAULT_INVERSION, writer=None):
        self.every, self.config, self.seed, self.inversion = check_every(every), config, seed, inversion
        if self.every is None:
            raise ConfigError("Previews need an interval; use previews=0 in train() for none")
        self.n_clips, self.keep, self.writer = n_clips, max(1, int(keep)), writer
        self.folder = Path(model_dir) / FOLDER
        self.real = np.asarray(real[:n_clips], np.float32)
        # samples_fd needs a spread of real clips to compare with: none below 2 clips (previews still play)
        self.distance = StatisticsDistance(audio_statistics(reference, config)) if min(len(reference), len(floor)) >= 2 \
            else None
        self.baselines = {} if self.distance is None else {
            "samples_fd_floor": self.distance(audio_statistics(floor, config)),
            "samples_fd_mean_image": self.distance(audio_statistics(mean_image[None], config))}
        self.entries = [e for e in self._read_index() if e["epoch"] <= start]
        # "auto": the seconds this run spent training and previewing, and the last preview's cost
        self.trained, self.spent, self.last_cost = 0.0, 0.0, 0.0
        self._prune(best_epoch=None, keep_epochs={e["epoch"] for e in self.entries})
        self._write_real()

    # --- when -----------------------------------------------------------------------------

    def due(self, epoch: int, last_epoch: int, epoch_seconds: float = 0.0) -> bool:
        """Whether 1-based ``epoch`` gets a preview (``last_epoch``: the run's final epoch;
        ``epoch_seconds``: the epoch's training time, called once per epoch)."""
        self.trained += epoch_seconds
        if epoch == 1 or epoch == last_epoch:  # the first, heard against the later ones; the run's last
            return True
        if self.every == "auto":  # keeping room for the run's last preview
            return within_budget(self.spent + self.last_cost, self.last_cost, self.trained)
        return epoch % self.every == 0  # a fixed interval

    # --- what -----------------------------------------------------------------------------

    def __call__(self, vae, epoch: int, record: dict) -> dict:
        """Decodes, inverts and writes the previews of 1-based ``epoch``; adds ``samples_fd``,
        its baselines and ``preview_seconds`` to ``record`` and returns the index entry."""
        from ..apps.generate import decode, reconstruct, to_audio
        from ..model.prior import sample_prior

        t0 = time.perf_counter()
        z = sample_prior(vae, max(METRIC_SAMPLES, self.n_clips), seed=self.seed)
        samples = decode(vae, z)
        # The encoder draws its posterior sample's seeds from the VAE's generator: put its state back,
        # so that training never depends on when previews ran ("auto" follows the wall clock).
        noise = getattr(vae, "noise", None)
        state = None if noise is None else tf.identity(noise.state)
        recons = reconstruct(vae, self.real)
        if noise is not None:
            noise.state.assign(state)
        audio = to_audio(vae, np.concatenate([samples[:self.n_clips], recons]), inversion=self.inversion,
                         seed=self.seed)
        sample_audio, recon_audio = audio[:self.n_clips], audio[self.n_clips:]
        fd = None if self.distance is None else self.distance(audio_statistics(samples, self.config))
        folder = self.folder / f"epoch_{epoch:04d}"
        remove(folder)
        files = {"samples": self._write(folder, "sample", samples[:self.n_clips], sample_audio),
                 "reconstructions": self._write(folder, "reconstruction", recons, recon_audio)}
        if self.writer is not None:
            self._tensorboard(epoch, samples[:self.n_clips], sample_audio, recon_audio, fd)
        seconds = time.perf_counter() - t0
        record.update(samples_fd=fd, **self.baselines, preview_seconds=round(seconds, 2))
        entry = {"epoch": epoch, "folder": folder.name, **files, "samples_fd": fd,
                 "val_neg_elbo": record.get("val_neg_elbo", record.get("neg_elbo"))}
        self.entries = [e for e in self.entries if e["epoch"] != epoch] + [entry]
        self.spent, self.last_cost = self.spent + seconds, seconds
        best = min(self.entries, key=lambda e: e["val_neg_elbo"])["epoch"]
        self._prune(best_epoch=best)
        write_json_atomic(self.folder / INDEX, {"real": self._real_files, "baselines": self.baselines,
                                                "every": self.every,
                                                "entries": self.entries})
        return entry

    def _write(self, folder: Path, stem: str, images, audio) -> list[dict]:
        from ..apps.render import spectrogram_png

        out = []
        for i, (image, clip) in enumerate(zip(images, audio)):
            wav = write_wav(folder / f"{stem}_{i}.wav", clip, self.config.sample_rate)
            png = folder / f"{stem}_{i}.png"
            png.write_bytes(spectrogram_png(image, max_size=PNG_SIZE))
            out.append({"wav": f"{folder.name}/{wav.name}", "png": f"{folder.name}/{png.name}"})
        return out

    def _write_real(self) -> None:
        """The real clips, as the reconstructions are heard: their images inverted the same way."""
        from ..audio.spectrogram import griffin_lim_tf

        folder = self.folder / REAL
        remove(folder)
        audio = griffin_lim_tf(self.real, self.config, inversion=self.inversion, seed=self.seed) if len(self.real) \
            else np.zeros((0, self.config.clip_samples), np.float32)
        self._real_files = self._write(folder, "real", self.real, audio)

    def _prune(self, *, best_epoch: int | None, keep_epochs: set | None = None) -> None:
        """Keeps the first, the best and the last ``keep`` previews; deletes the other folders."""
        epochs = sorted(e["epoch"] for e in self.entries)
        if keep_epochs is None:
            keep_epochs = set(epochs[:1]) | set(epochs[-self.keep:]) | ({best_epoch} - {None})
        self.entries = [e for e in self.entries if e["epoch"] in keep_epochs]
        if self.folder.is_dir():
            for path in self.folder.glob("epoch_*"):
                if path.name not in {e["folder"] for e in self.entries}:
                    shutil.rmtree(path, ignore_errors=True)

    def _read_index(self) -> list[dict]:
        try:
            return list(json.loads((self.folder / INDEX).read_text())["entries"])
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _tensorboard(self, epoch, samples, sample_audio, recon_audio, fd) -> None:
        rate = self.config.sample_rate
        with self.writer.as_default():
            tf.summary.audio("previews/prior_samples", sample_audio[..., None], rate, step=epoch,
                             max_outputs=len(sample_audio))
            tf.summary.audio("previews/reconstructions", recon_audio[..., None], rate, step=epoch,
                             max_outputs=len(recon_audio))
            tf.summary.image("previews/prior_sample_images", np.asarray(samples)[:, ::-1], step=epoch,
                             max_outputs=len(samples))
            if fd is not None:
                tf.summary.scalar("previews/samples_fd", fd, step=epoch)
            for key, value in self.baselines.items():
                tf.summary.scalar(f"previews/{key}", value, step=epoch)
        self.writer.flush()


def read_previews(model_dir) -> dict | None:
    """``MODEL/previews/previews.json`` with absolute paths, or None before the first preview."""
    folder = Path(model_dir) / FOLDER
    try:
        index = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    for group in [index["real"]] + [e[k] for e in index["entries"] for k in ("samples", "reconstructions")]:
        for item in group:
            item.update(wav=str(folder / item["wav"]), png=str(folder / item["png"]))
    return index


def verdict(history: list[dict], *, patience: int = PLATEAU_EPOCHS) -> dict:
    """Is it done? Per metric of ``VERDICT_METRICS`` in the history: its best epoch and the epochs
    since; ``state`` is ``"improving"`` while any of them improved (by more than
    ``MIN_IMPROVEMENT`` relative) within the last ``patience`` epochs, else ``"plateaued"``;
    ``text`` says it in one line."""
    if not history:
        return {"state": "starting", "text": "no epoch yet", "metrics": {}}
    last = history[-1]["epoch"]
    metrics = {}
    for key in VERDICT_METRICS:
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None and math.isfinite(h[key])]
        if not points:
            continue
        best_epoch, best = points[0]
        for epoch, value in points[1:]:
            if value < best - MIN_IMPROVEMENT * max(abs(best), 1e-9):
                best_epoch, best = epoch, value
        metrics[key] = {"best": best, "best_epoch": best_epoch, "since_best": last - best_epoch}
    if not metrics:
        return {"state": "starting", "text": "no validation metric yet", "metrics": {}}
    improving = [k for k, m in metrics.items() if m["since_best"] < patience]
    since = min(m["since_best"] for m in metrics.values())

    def part(key):
        m = metrics[key]
        when = "this epoch" if not m["since_best"] else f"epoch {m['best_epoch']}"
        return f"{VERDICT_METRICS[key]} best {m['best']:.4g} at {when}"

    if improving:
        state = "improving"
        text = "still improving: " + "; ".join(part(k) for k in metrics)
    else:
        state = "plateaued"
        text = (f"plateaued for {since} epochs: " + "; ".join(part(k) for k in metrics)
                + " — more epochs are unlikely to help")
    return {"state": state, "text": text, "patience": patience, "metrics": metrics}
