"""Multi-step jobs shared by the command line and the notebooks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .audio import find_audio_files, write_wav
from .config import SpectrogramConfig, spectrogram_preset
from .errors import DatasetError, VaeTfpError
from .metrics import roundtrip_file, summarize
from .phase import DEFAULT_PHASE_INIT
from .spectrogram import DEFAULT_GRIFFIN_LIM_ITERS


def roundtrip_files(
    files: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: SpectrogramConfig,
    *,
    n_iter: int = DEFAULT_GRIFFIN_LIM_ITERS, phase_init: str = DEFAULT_PHASE_INIT,
    max_clips: int | None = 4,
    log=print,
) -> dict:
    """Round trip of each file's first clips; writes ``<stem>_original.wav``,
    ``<stem>_roundtrip.wav`` and ``metrics.json`` into ``out``.

    A file that cannot be used is recorded with its reason and the rest proceed.

    Returns:
        ``{"files": [...per file metrics...], "skipped": [...], "summary": {...}, "metrics_path": str}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_file, skipped, all_sc, all_lsd, seconds = [], [], [], [], []
    for path in files:
        try:
            t0 = time.perf_counter()
            results = roundtrip_file(path, config, n_iter=n_iter, phase_init=phase_init, max_clips=max_clips)
            seconds.append((time.perf_counter() - t0) / len(results))
        except VaeTfpError as err:
            skipped.append({"path": os.fspath(path), "reason": str(err)})
            log(f"skipped {err}")
            continue
        stem = _unique_stem(Path(path), out)
        original = write_wav(out / f"{stem}_original.wav", np.concatenate([r.audio for _, r in results]),
                             config.sample_rate)
        rebuilt = write_wav(out / f"{stem}_roundtrip.wav", np.concatenate([r.audio_rt for _, r in results]),
                            config.sample_rate)
        clips = [{"offset": off, **r.metrics()} for off, r in results]
        all_sc += [c["spectral_convergence"] for c in clips]
        all_lsd += [c["log_spectral_distance_db"] for c in clips]
        per_file.append({"path": os.fspath(path), "original": original.name, "roundtrip": rebuilt.name,
                         "clips": clips})
    summary = {}
    if per_file:
        summary = {"spectral_convergence": summarize(all_sc), "log_spectral_distance_db": summarize(all_lsd),
                   "seconds_per_clip": float(np.mean(seconds)), "griffin_lim_iters": n_iter, "phase_init": phase_init}
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps({"spectrogram_config": config.to_dict(), "summary": summary,
                                        "files": per_file, "skipped": skipped}, indent=1))
    return {"files": per_file, "skipped": skipped, "summary": summary, "metrics_path": os.fspath(metrics_path)}


def _unique_stem(path: Path, out: Path) -> str:
    stem, k = path.stem, 1
    while (out / f"{stem}_original.wav").exists():
        k += 1
        stem = f"{path.stem}-{k}"
    return stem


def ensure_demo_data(data_dir: str | os.PathLike, *, spec: str = "default", workers: int = 1,
                     log=print) -> dict[str, Path]:
    """Renders the embedded audio and prepares its datasets, reusing what is already complete.

    Returns:
        ``{"audio": folder, "notes": dataset, "chorales": dataset}``.
    """
    from .dataset import dataset_config, prepare_dataset
    from .demo_data import render_demo_data

    data_dir = Path(data_dir)
    config = spectrogram_preset(spec)
    audio = data_dir / "demo_audio"
    marker = audio / ".complete"
    if not marker.exists():
        t0 = time.perf_counter()
        render_demo_data(audio, progress=False)
        marker.write_text("rendered by vae_tfp.demo_data\n")
        log(f"rendered embedded audio into {audio} in {time.perf_counter() - t0:.1f} s")
    out = {"audio": audio}
    for name in ("notes", "chorales"):
        folder = data_dir / (name if spec == "default" else f"{name}-{spec}")
        reuse = (folder / "manifest.json").exists() and dataset_config(folder) == config
        if not reuse:
            t0 = time.perf_counter()
            prepare_dataset([audio / name], folder, config, workers=workers, overwrite=True, progress=False, log=log)
            log(f"prepared {folder} in {time.perf_counter() - t0:.1f} s")
        out[name] = folder
    return out


def prepare_audio_dir(audio_dir: str | os.PathLike, data_dir: str | os.PathLike, *, spec: str = "default",
                      workers: int = 1, log=print) -> Path:
    """Prepares a folder of the user's audio (sub-folders as labels) into ``data_dir/NAME-SPEC``.

    Reused when it is already prepared from the same folder with the same spectrogram preset;
    prepared again when the folder or the preset changed (so rerunning a notebook is cheap and
    changing its ``AUDIO_DIR`` re-prepares).

    Returns:
        The dataset folder.
    """
    from .dataset import load_manifest, prepare_dataset

    source = Path(audio_dir).resolve()
    if not source.is_dir():
        raise DatasetError(f"{audio_dir}: not a folder of audio files")
    folder = Path(data_dir) / f"{source.name}-{spec}"
    config = spectrogram_preset(spec)
    if (folder / "manifest.json").exists():
        manifest = load_manifest(folder)
        if manifest.get("sources") == [os.fspath(source)] and manifest["spectrogram_config"] == config.to_dict():
            return folder
        log(f"{folder}: prepared from another folder or preset; preparing {source} again")
    t0 = time.perf_counter()
    prepare_dataset([source], folder, config, workers=workers, overwrite=True, progress=True, log=log)
    log(f"prepared {folder} from {source} in {time.perf_counter() - t0:.1f} s")
    return folder


def run_demo(out: str | os.PathLike, *, data_dir: str | os.PathLike = "data", spec: str = "small",
             preset: str = "small", epochs: int = 30, workers: int = 1, roundtrip_files_per_set: int = 8,
             sample_metrics_n: int = 256, log=print) -> dict:
    """The main job on the embedded data, end to end.

    Renders and prepares the embedded data, measures the representation's round trip, trains a
    short run of a CPU preset (resuming a previous demo run) and refits its prior to the codes,
    evaluates it on the held-out split — reconstruction and, with ``sample_metrics_n`` prior
    samples, the generation metrics — and writes ``out/index.html`` with the metrics table,
    samples, reconstructions and an interpolation.

    Returns:
        A summary with the output paths, the round-trip metrics and the evaluation.
    """
    from .report import default_report_inputs, write_report
    from .config import model_preset
    from .training import evaluate_saved, train

    t0 = time.perf_counter()
    out = Path(out)
    data = ensure_demo_data(data_dir, spec=spec, workers=workers, log=log)
    config = spectrogram_preset(spec)
    picks = []
    for name in ("notes", "chorales"):
        files = find_audio_files(data["audio"] / name)
        step = max(1, len(files) // roundtrip_files_per_set)
        picks += files[::step][:roundtrip_files_per_set]
    rt = roundtrip_files(picks, out / "roundtrip", config, max_clips=2, log=log)
    log(f"round trip: median spectral convergence {rt['summary']['spectral_convergence']['median']:.3f}")

    model_dir = out / "model"
    t1 = time.perf_counter()
    train(data["notes"], model_dir, model_preset(preset), epochs=epochs, resume=(model_dir / "checkpoints").exists(),
          fit_prior=True, verbose=2, log=log)
    train_seconds = time.perf_counter() - t1
    metrics = evaluate_saved(model_dir, data["notes"], "test", samples=sample_metrics_n, log=log)
    metrics.pop("kl_per_dim", None)
    samples = metrics.pop("samples", None)
    files, pair = default_report_inputs(data["audio"])
    index = write_report(model_dir, out, files=files, interpolate=pair,
                         metrics={**metrics, "train_seconds": round(train_seconds, 1)}, sample_metrics=samples,
                         title=f"vae_tfp demo: {preset} preset on the embedded notes")
    return {"report": os.fspath(index), "model": os.fspath(model_dir),
            "datasets": {k: os.fspath(v) for k, v in data.items()},
            "roundtrip": rt["metrics_path"], "roundtrip_summary": rt["summary"], "evaluation": metrics,
            "sample_metrics": {r["set"]: {k: v for k, v in r.items() if k != "set"} for r in samples["rows"]
                               if not r["set"].startswith("component ")} if samples else None,
            "seconds": round(time.perf_counter() - t0, 1)}


def smoke_setup(root: str | os.PathLike, *, epochs: int = 2, train_model: bool = True,
                log=lambda _: None) -> dict[str, Path]:
    """A tiny end-to-end setup in seconds, for notebook smoke runs and tests: three instruments'
    notes rendered at 8 kHz, prepared with the ``tiny`` preset, and a ``tiny`` model trained on them.

    Returns:
        ``{"audio": folder, "notes": dataset, "model": model folder}`` (the model folder only
        with ``train_model``).
    """
    from .config import model_preset
    from .dataset import prepare_dataset
    from .demo_data import render_demo_data
    from .training import train

    root = Path(root)
    config = spectrogram_preset("tiny")
    audio = root / "demo_audio"
    render_demo_data(audio, sample_rate=config.sample_rate, instruments={"piano": 0, "violin": 40, "flute": 73},
                     pitches=(48, 55, 60, 67, 72), velocities=(100,), n_chorales=1, progress=False)
    notes = root / "notes-tiny"
    prepare_dataset([audio / "notes"], notes, config, overwrite=True, progress=False, log=log)
    if not train_model:
        return {"audio": audio, "notes": notes}
    model = root / "model-tiny"
    train(notes, model, model_preset("tiny"), epochs=epochs, batch_size=8, resume=(model / "checkpoints").exists(),
          verbose=0, tensorboard=False, log=log)
    return {"audio": audio, "notes": notes, "model": model}
