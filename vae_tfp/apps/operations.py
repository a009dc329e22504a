"""The listening and exploring operations behind the ``vae-tfp`` sub-commands.

Each takes a saved model folder, writes WAVs, PNGs and a ``results.json`` into an output folder,
and returns a summary whose ``results.json`` lists every file written (paths relative to it).
Clips can be named as audio files (their first clip; any format, rate or channel count) or as
``DATASET:INDEX``, a clip of a prepared dataset by its manifest index.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio.io import write_wav
from ..data.dataset import MANIFEST, DatasetLike, open_dataset
from ..errors import ConfigError, DatasetError, VaeTfpError
from ..files import DISK_FULL_FREE_BYTES, free_bytes, human_size, write_json_atomic
from .generate import decode, encode, file_clips, to_audio
from ..model.prior import sample_prior
from .latent import interpolate, label_vector, plot_projection, project, weighted_average
from ..audio.metrics import log_spectral_distance, roundtrip, spectral_convergence
from .render import figure, spectrogram_png
from ..model.saving import load_model
from ..audio.spectrogram import DEFAULT_INVERSION, Inversion


class _Writer:
    """Writes items (image + audio) into a folder and collects them for ``results.json``."""

    def __init__(self, out: str | os.PathLike, config):
        self.out, self.config, self.items = Path(out), config, []
        self.out.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, image: np.ndarray | None, audio: np.ndarray | None, **info) -> dict:
        item = {"name": name, **info}
        if image is not None:
            (self.out / f"{name}.png").write_bytes(spectrogram_png(image))
            item["png"] = f"{name}.png"
        if audio is not None:
            write_wav(self.out / f"{name}.wav", audio, self.config.sample_rate)
            item["wav"] = f"{name}.wav"
        self.items.append(item)
        return item

    def finish(self, **summary) -> dict:
        result = {**summary, "items": self.items, "out": os.fspath(self.out)}
        result["results_path"] = os.fspath(write_json_atomic(self.out / "results.json", result, default=float))
        return result


INSTRUMENT_METHODS = ("conditional", "direction")


def instrument_latents(model, cond, where: dict, keys: Sequence[int], *, method: str = "conditional",
                       pitch_field: str = "pitch", seed: int = 0) -> tuple[list[int], np.ndarray]:
    """The notes to render for one timbre ``where`` across ``keys``: ``(their pitches, latents [n, D])``.

    ``conditional``: a draw of p(z | where, pitch) at every pitch the data has for that timbre
    within the keys (and the nearest one beyond each end that the keys need); the sampler plays
    the keys between them by resampling the nearest note. ``direction``: one note per key, a
    single conditional draw (at the available pitch nearest the middle) moved along the pitch
    direction (:meth:`~vae_tfp.model.conditional.ConditionalPrior.direction`, within the first
    field of ``where``) by the semitones to each key.
    """
    if method not in INSTRUMENT_METHODS:
        raise ConfigError(f"method={method!r} must be one of {', '.join(INSTRUMENT_METHODS)}")
    where = {k: v for k, v in where.items() if k != pitch_field}
    if pitch_field not in cond.fields:
        raise ConfigError(f"{cond.path}: no {pitch_field!r} field to play an instrument along; fields are "
                          f"{', '.join(cond.fields)}")
    available = sorted(int(float(v)) for v in cond.known(pitch_field, cond.select(where) if where else None))
    lo, hi = min(keys), max(keys)

    def draw(pitch: int) -> np.ndarray:
        return cond.sample(model.prior, 1, {**where, pitch_field: pitch}, seed=seed)[0]

    if method == "direction":
        step = cond.direction(pitch_field, within=next(iter(where), None))
        anchor = min(available, key=lambda a: abs(a - (lo + hi) / 2))
        z0 = draw(anchor)
        return list(keys), np.stack([z0 + (k - anchor) * step for k in keys])
    notes = sorted({min(available, key=lambda a: abs(a - k)) for k in keys})
    return notes, np.stack([draw(p) for p in notes])


def sfz_tune(error_cents: float) -> int:
    """The SFZ ``tune`` (cents) of a note measured ``error_cents`` off its pitch: only the deviation
    from the nearest semitone is tuned away. A larger error is more often the pitch tracker's octave
    (or fifth) than the note's, and retuning by it would break the note; an unvoiced note is left as is."""
    if not np.isfinite(error_cents):
        return 0
    return int(round(-(error_cents - 100 * round(error_cents / 100))))


def write_sfz(path: str | os.PathLike, regions: Sequence[dict], *, comment: str = "") -> Path:
    """An SFZ instrument: one region per sample, ``{"sample": file name relative to the SFZ file,
    "lokey", "hikey", "pitch_keycenter", "tune" (cents)}``.

    Written by hand: the format is a few lines of text, and no maintained Python library writes it."""
    lines = [f"// {comment}" if comment else "// vae_tfp instrument", "<control>", "default_path=",
             "<global> loop_mode=no_loop ampeg_release=0.2"]
    lines += [f"<region> sample={r['sample']} lokey={r['lokey']} hikey={r['hikey']} "
              f"pitch_keycenter={r['pitch_keycenter']} tune={int(r.get('tune', 0))}" for r in regions]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def op_instrument(model_dir, out, *, where: dict, pitches: Sequence[int], method: str = "conditional",
                  seed: int = 0, inversion: Inversion = DEFAULT_INVERSION, check_pitch: bool = True) -> dict:
    """Renders one timbre across a range of keys (:func:`instrument_latents`): a WAV and a PNG per
    note, each note's pitch (pYIN) against the pitch it was asked for in cents, and an SFZ file
    in which every key plays the nearest note, tuned by its measured error (``results.json``)."""
    from ..audio.metrics import estimate_pitch
    from ..model.conditional import load_conditional

    if not where:
        raise ConfigError("an instrument needs a timbre, e.g. --where instrument=violin")
    model = load_model(model_dir, parts=("decoder", "prior"))
    cond = load_conditional(model_dir)
    keys = [int(p) for p in pitches]
    notes, z = instrument_latents(model, cond, where, keys, method=method, seed=seed)
    images = decode(model, z)
    audio = to_audio(model, images, inversion=inversion, seed=seed)
    name = "_".join(str(v) for k, v in where.items() if k != "pitch") or "instrument"
    w = _Writer(out, model.spectrogram_config)
    np.save(w.out / "latents.npy", z)  # to render again, or judge, without sampling
    errors = []
    for note, image, clip in zip(notes, images, audio):
        info = {"pitch": note}
        if check_pitch:
            midi = estimate_pitch(clip, model.spectrogram_config.sample_rate)
            info.update(estimated_midi=round(midi, 3), error_cents=round(100 * (midi - note), 1))
            errors.append(abs(100 * (midi - note)))
        w.add(f"{name}_{note:03d}", image, clip, **info)
    regions = []
    for item in w.items:  # each key to its nearest note
        mine = [k for k in keys if min(notes, key=lambda n: (abs(n - k), n)) == item["pitch"]]
        if mine:
            tune = sfz_tune(item.get("error_cents", 0.0))
            regions.append({"sample": item["wav"], "lokey": min(mine), "hikey": max(mine),
                            "pitch_keycenter": item["pitch"], "tune": round(tune)})
    sfz = write_sfz(w.out / f"{name}.sfz", regions, comment=f"vae_tfp: {model_dir}, {where}, method {method}")
    summary = {"operation": "instrument", "model": os.fspath(model_dir), "where": where, "method": method,
               "seed": seed, "keys": [min(keys), max(keys)], "notes": len(notes), "sfz": os.fspath(sfz),
               "farthest_key_from_its_note": max(abs(k - min(notes, key=lambda n: abs(n - k))) for k in keys)}
    if errors:
        finite = np.array([e for e in errors if np.isfinite(e)])
        octave = np.abs(finite - 1200 * np.round(finite / 1200))  # the error folded into one octave
        summary.update(pitch_error_cents_median=round(float(np.median(finite)), 1) if len(finite) else None,
                       within_50_cents=round(float((finite <= 50).sum() / len(errors)), 3),
                       within_50_cents_any_octave=round(float((octave <= 50).sum() / len(errors)), 3),
                       within_100_cents=round(float((finite <= 100).sum() / len(errors)), 3),
                       unvoiced=int(len(errors) - len(finite)))
    return w.finish(**summary)


def resolve_clip(model, ref: str) -> tuple[np.ndarray, str]:
    """``FILE`` (its first clip) or ``DATASET:INDEX`` → (image [H, W, 1], label for humans)."""
    path = Path(ref)
    if not path.exists() and ":" in ref:
        folder, _, index = ref.rpartition(":")
        try:
            i = int(index)
        except ValueError:
            raise ConfigError(f"{ref!r}: expected an audio file or DATASET:INDEX") from None
        data = open_dataset(folder)
        if not 0 <= i < len(data.clips):
            raise DatasetError(f"{ref}: index {i} out of range (0..{len(data.clips) - 1})")
        clip = data.clips[i]
        data.check_config(model.spectrogram_config, "the model")
        # the manifest says where the clip lives: read one row of one shard, not the whole split
        image = np.asarray(data.image(clip), np.float32)[..., None]
        return image, f"{clip['label']} ({Path(clip['source']).name} @ {clip['offset']:.2f} s)"
    _, images, _ = file_clips(model, path, max_clips=1)
    return images[0], path.name


GENERATE_BATCH = 64  # samples decoded, inverted and written at a time: memory stays flat in n


def op_generate(model_dir, out, *, n: int = 8, seed: int = 0, component: int | None = None,
                temperature: float = 1.0, inversion: Inversion = DEFAULT_INVERSION, batch_size: int = GENERATE_BATCH, progress: bool = True,
                stage: int | None = None, where: dict | None = None, method: str | None = None) -> dict:
    """Samples the prior (optionally one component, or scaled, or conditioned on labels ``where``
    by ``method``: :mod:`vae_tfp.model.conditional`), decodes the mean, inverts to audio.
    ``stage`` picks the decoder of a folder that went through the adversarial stage (1: before it).

    Written to disk ``batch_size`` samples at a time, so memory does not grow with ``n`` (but
    for the latents and ``results.json``'s list, ~1 KB a sample). Free space is checked before
    each batch; a disk that fills stops the run with one :class:`VaeTfpError` and the samples
    already written listed in ``results.json``.
    """
    from tqdm.auto import tqdm

    model = load_model(model_dir, parts=("decoder", "prior"), stage=stage)
    z = sample_prior(model, n, seed=seed, component=component, temperature=temperature, where=where, method=method)
    w = _Writer(out, model.spectrogram_config)
    summary = dict(operation="generate", model=os.fspath(model_dir), seed=seed, component=component,
                   **({"where": where, "method": method} if where else {}),
                   temperature=temperature, griffin_lim_iters=inversion.n_iter, phase_init=inversion.phase_init)
    per_sample = 2 * 44 + 2 * model.spectrogram_config.clip_samples  # a WAV; PNGs are measured as they come
    for start in tqdm(range(0, n, batch_size), disable=not progress or n <= batch_size, desc="generate",
                      unit="batch"):
        batch = z[start:start + batch_size]
        free, need = free_bytes(w.out), len(batch) * per_sample + DISK_FULL_FREE_BYTES
        if free is not None and free < need:
            w.finish(**summary, stopped=f"disk full after {start} of {n} samples")
            raise VaeTfpError(f"{w.out}: disk full ({human_size(free)} free, ~{human_size(need)} needed for the next "
                              f"{len(batch)} samples and 1 MB to spare); {start} of {n} samples written and listed in "
                              f"results.json")
        images = decode(model, batch)
        # the first batch is what generate() draws for n <= batch_size; later ones their own seed
        audio = to_audio(model, images, inversion=inversion, seed=seed + start)
        for i in range(len(batch)):
            item = w.add(f"sample_{start + i:02d}", images[i], audio[i], z=batch[i].round(4).tolist())
            if start == 0 and i == 0:
                per_sample = sum((w.out / item[k]).stat().st_size for k in ("png", "wav"))
    return w.finish(**summary)


def op_reconstruct(model_dir, files: Sequence[str | os.PathLike], out, *, max_clips: int | None = 4,
                   inversion: Inversion = DEFAULT_INVERSION, log=print, stage: int | None = None,
                   beside_stage1: bool = False, refine_steps: int = 0) -> dict:
    """Any audio file → clips → encode → decode → audio, beside the original and the round-trip
    ceiling (the original's image inverted directly), with their metrics (``stage`` as
    :func:`op_generate`). ``beside_stage1``: for a folder that went through the adversarial stage,
    also the same codes decoded by the stage-1 decoder (``NAME_reconstruction_stage1``).
    ``refine_steps``: the codes refined on each clip (:func:`~vae_tfp.apps.generate.encode`)."""
    model = load_model(model_dir, parts=("encoder", "decoder") + (("prior",) if refine_steps else ()), stage=stage)
    before = load_model(model_dir, parts=("decoder",), stage=1) if beside_stage1 else None
    config = model.spectrogram_config
    w = _Writer(out, config)
    skipped = []
    for f in files:
        try:
            audio, images, offsets = file_clips(model, f, max_clips=max_clips)
        except VaeTfpError as err:
            skipped.append({"path": os.fspath(f), "reason": str(err)})
            log(f"skipped {err}")
            continue
        means, _ = encode(model, images, refine_steps=refine_steps)
        ceiling = roundtrip(audio, config, inversion=inversion, batched=True)
        stem = Path(f).stem
        w.add(f"{stem}_original", _concat_images(images), audio.reshape(-1), source=os.fspath(f), offsets=offsets)
        w.add(f"{stem}_roundtrip", _concat_images(np.stack([c.spec for c in ceiling])),
              np.concatenate([c.audio_rt for c in ceiling]),
              spectral_convergence=float(np.mean([c.spectral_convergence for c in ceiling])),
              log_spectral_distance_db=float(np.mean([c.log_spectral_distance for c in ceiling])))
        for name, decoder in ((f"{stem}_reconstruction_stage1", before), (f"{stem}_reconstruction", model)):
            if decoder is None:
                continue
            recon = decode(decoder, means)
            w.add(name, _concat_images(recon), to_audio(model, recon, inversion=inversion).reshape(-1),
                  spectral_convergence=float(np.mean([spectral_convergence(a, b, config) for a, b in zip(images, recon)])),
                  log_spectral_distance_db=float(np.mean([log_spectral_distance(a, b, config)
                                                          for a, b in zip(images, recon)])))
    if not w.items:
        raise VaeTfpError(f"no file could be reconstructed ({'; '.join(s['reason'] for s in skipped)})")
    return w.finish(operation="reconstruct", model=os.fspath(model_dir), skipped=skipped)


def _concat_images(images: np.ndarray) -> np.ndarray:
    """Clips side by side in time: [n, H, W, 1] → [H, n * W, 1]."""
    return np.concatenate(list(images), axis=1)


def op_encode(model_dir, sources: Sequence[str | os.PathLike], out_npz, *, split: str | None = None,
              refine_steps: int = 0) -> dict:
    """Posterior means and scales of audio files' clips or of prepared datasets, into an ``.npz``
    with the source manifest (``source``, ``offset``, ``label`` arrays); ``refine_steps``: the means
    refined on each clip (:func:`~vae_tfp.apps.generate.encode`)."""
    model = load_model(model_dir, parts=("encoder", "decoder", "prior") if refine_steps else ("encoder",))
    means, scales, src, offs, labels = [], [], [], [], []
    for s in sources:
        s = Path(s)
        if (s / MANIFEST).exists():
            m, sd, clips = encode_dataset(model, s, split, refine_steps=refine_steps)
            means.append(m), scales.append(sd)
            src += [c["source"] for c in clips]
            offs += [c["offset"] for c in clips]
            labels += [c["label"] for c in clips]
        else:
            _, images, offsets = file_clips(model, s)
            m, sd = encode(model, images, refine_steps=refine_steps)
            means.append(m), scales.append(sd)
            src += [os.fspath(s)] * len(images)
            offs += list(offsets)
            labels += [s.stem] * len(images)
    if not src:
        raise VaeTfpError(f"nothing to encode in {[os.fspath(s) for s in sources]}")
    out_npz = Path(out_npz)
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_npz, means=np.concatenate(means), scales=np.concatenate(scales), source=np.array(src),
             offset=np.array(offs, np.float64), label=np.array(labels))
    return {"operation": "encode", "path": os.fspath(out_npz), "n": len(src),
            "latent_dim": model.config.latent_dim}


def op_interpolate(model_dir, a: str, b: str, out, *, steps: int = 8, spherical: bool = False,
                   inversion: Inversion = DEFAULT_INVERSION) -> dict:
    """Decodes ``steps`` points from clip A's latent to clip B's: audio per step and one sweep."""
    model = load_model(model_dir, parts=("encoder", "decoder"))
    (img_a, name_a), (img_b, name_b) = resolve_clip(model, a), resolve_clip(model, b)
    za, _ = encode(model, img_a[None])
    zb, _ = encode(model, img_b[None])
    z = interpolate(za[0], zb[0], steps, spherical=spherical)
    images = decode(model, z)
    audio = to_audio(model, images, inversion=inversion)
    w = _Writer(out, model.spectrogram_config)
    for i in range(steps):
        w.add(f"step_{i:02d}", images[i], audio[i], t=i / (steps - 1))
    w.add("sweep", _concat_images(images), audio.reshape(-1))
    distances = [float(np.sqrt(np.mean((im - images[0]) ** 2))) for im in images]
    return w.finish(operation="interpolate", a=name_a, b=name_b, spherical=spherical,
                    distance_to_a=distances, monotone_fraction=monotone_fraction(distances))


def monotone_fraction(distances: Sequence[float]) -> float:
    """Fraction of consecutive steps along which the distance to the start does not decrease."""
    d = np.asarray(distances)
    return float(np.mean(np.diff(d) >= -1e-6)) if len(d) > 1 else 1.0


def op_arithmetic(model_dir, clips: Sequence[str], out, *, weights: Sequence[float] | None = None,
                  data=None, add: str | None = None, subtract: str | None = None, amount: float = 1.0,
                  inversion: Inversion = DEFAULT_INVERSION) -> dict:
    """Latent arithmetic.

    * Weighted average of the clips' latents (``weights``, default equal).
    * With ``data``, ``add`` and ``subtract`` labels: the label vector mean(add) - mean(subtract)
      over the dataset's clips, times ``amount``, added to each clip's latent.
    """
    model = load_model(model_dir, parts=("encoder", "decoder"))
    resolved = [resolve_clip(model, c) for c in clips]
    images = np.stack([r[0] for r in resolved])
    z, _ = encode(model, images)
    w = _Writer(out, model.spectrogram_config)
    results: dict = {"operation": "arithmetic", "clips": [r[1] for r in resolved]}
    originals = to_audio(model, decode(model, z), inversion=inversion)
    for i, (img, name) in enumerate(resolved):
        w.add(f"clip_{i:02d}", img, originals[i], clip=name)
    if len(z) > 1:
        avg = weighted_average(z, weights)
        img = decode(model, avg[None])
        w.add("average", img[0], to_audio(model, img, inversion=inversion)[0],
              weights=list(weights or [1.0] * len(z)))
    if add or subtract:
        if not (data and add and subtract):
            raise ConfigError("label arithmetic needs --data, --add and --subtract")
        latents, _, clips = encode_dataset(model, data)
        vec = label_vector(latents, [c["label"] for c in clips], add, subtract) * amount
        moved = decode(model, z + vec[None])
        moved_audio = to_audio(model, moved, inversion=inversion)
        for i in range(len(z)):
            w.add(f"clip_{i:02d}_plus_{add}_minus_{subtract}", moved[i], moved_audio[i])
        results.update(add=add, subtract=subtract, amount=amount, vector_norm=float(np.linalg.norm(vec)))
    return w.finish(**results)


def encode_dataset(model, data: DatasetLike, split: str | None = None, *,
                   refine_steps: int = 0) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Posterior means and scales [n, D] of a prepared dataset's clips (one split, or every split
    in manifest order), with their manifest entries (``refine_steps``: as :func:`~vae_tfp.apps.generate.encode`)."""
    data = open_dataset(data)
    means, scales, clips = [], [], []
    for name in (list(data.splits) if split is None else [split]):
        for images in data.batches(name, 256):  # streamed: memory holds one batch of images
            m, sd = encode(model, images, refine_steps=refine_steps)
            means.append(m), scales.append(sd)
        clips.extend(data.split_clips(name))
    if not clips:
        empty = np.zeros((0, model.config.latent_dim), np.float32)
        return empty, empty, []
    return np.concatenate(means), np.concatenate(scales), clips


def op_project(model_dir, data, out, *, method: str = "umap", split: str | None = None, seed: int = 0) -> dict:
    """2-D map of a dataset's latent means coloured by label: ``map_<method>.png`` and ``.csv``."""
    model = load_model(model_dir, parts=("encoder",))
    data = open_dataset(data)
    latents, _, clips = encode_dataset(model, data, split)
    if not clips:
        raise DatasetError(f"{data.path}: no clips to project{f' in split {split!r}' if split else ''}")
    labels = [c["label"] for c in clips]
    points = project(latents, method, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ax = plot_projection(points, labels, title=f"{method.upper()} of latent means ({len(points)} clips)",
                         ax=figure(figsize=(7, 6)).subplots())
    ax.figure.savefig(out / f"map_{method}.png", dpi=120, bbox_inches="tight")
    with open(out / f"map_{method}.csv", "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["x", "y", "label", "source"])
        rows.writerows([f"{x:.6f}", f"{y:.6f}", c["label"], f"{c['source']}@{c['offset']}"]
                       for (x, y), c in zip(points, clips))
    return {"operation": "project", "method": method, "n": len(points), "png": os.fspath(out / f"map_{method}.png"),
            "csv": os.fspath(out / f"map_{method}.csv")}
