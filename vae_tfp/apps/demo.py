"""The jobs on the embedded data: its datasets, ``make demo``'s end-to-end run, and the tiny
setup behind the notebooks' ``SMOKE`` switch (and the tests).

The audio itself is rendered by :mod:`vae_tfp.data.demo_data`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

from ..audio.io import find_audio_files
from ..config import spectrogram_preset


def ensure_demo_data(data_dir: str | os.PathLike, *, spec: str = "default", workers: int = 1,
                     log=print) -> dict[str, Path]:
    """Renders the embedded audio and prepares its datasets, reusing what is already complete.

    Returns:
        ``{"audio": folder, "notes": dataset, "chorales": dataset}``.
    """
    from ..data.dataset import dataset_folder

    data_dir = Path(data_dir)
    config = spectrogram_preset(spec)
    audio = _render_once(data_dir / "demo_audio", log=log)
    out = {"audio": audio}
    for name in ("notes", "chorales"):
        out[name] = _prepare_once([audio / name], dataset_folder(data_dir, name, spec), config, workers=workers,
                                  log=log)
    return out


def _render_once(audio: Path, *, log, **subset) -> Path:
    """``audio`` if the embedded audio was rendered into it completely, else rendered there
    (``subset``: :func:`~vae_tfp.data.demo_data.render_demo_data`'s choice of instruments, pitches ...)."""
    from ..data.demo_data import render_demo_data

    marker = audio / ".complete"
    if not marker.exists():
        t0 = time.perf_counter()
        render_demo_data(audio, progress=False, **subset)
        marker.write_text("rendered by vae_tfp.data.demo_data\n")
        log(f"rendered embedded audio into {audio} in {time.perf_counter() - t0:.1f} s")
    return audio


def _prepare_once(sources, folder: Path, config, *, workers: int, log, clip_hop: float | None = None,
                  check_sources=None) -> Path:
    """``folder`` if it is a dataset of ``config`` already, else prepared from ``sources`` (after
    ``check_sources()``, which may refuse)."""
    from ..data.dataset import MANIFEST, open_dataset, prepare_dataset

    if (folder / MANIFEST).exists() and open_dataset(folder).config == config:
        return folder
    if check_sources is not None:
        check_sources()
    t0 = time.perf_counter()
    prepare_dataset(sources, folder, config, clip_hop=clip_hop, workers=workers, overwrite=True, progress=False,
                    log=log)
    log(f"prepared {folder} in {time.perf_counter() - t0:.1f} s")
    return folder


# The music the committed `music` model was trained on: a Debian package of free game music.
MUSIC_PACKAGE = "singularity-music"  # 007-2: the soundtrack of Endgame: Singularity, Max McCracken, CC BY-SA 3.0
MUSIC_SOURCE = Path("/usr/share/games/singularity/music")
MUSIC_CLIP_HOP = 3.0  # seconds between clip starts: 977 / 103 / 193 clips, split by track


def ensure_music_data(data_dir: str | os.PathLike, *, source: str | os.PathLike = MUSIC_SOURCE, workers: int = 1,
                      log=print) -> Path:
    """Prepares the committed ``music`` model's corpus (Debian's ``singularity-music``) into
    ``data_dir/singularity`` at the ``default`` spectrogram, reusing a complete one.

    Raises:
        DatasetError: The package is not installed (the message says how to install it).
    """
    from ..data.dataset import dataset_folder
    from ..errors import DatasetError

    source = Path(source)

    def installed():
        if not find_audio_files(source):
            raise DatasetError(f"{source}: no music found; install it with `apt-get install {MUSIC_PACKAGE}` "
                               f"(CC BY-SA 3.0), or set DATASET to a prepared folder of your own music")

    return _prepare_once([source], dataset_folder(data_dir, "singularity"), spectrogram_preset("default"),
                         workers=workers, log=log, clip_hop=MUSIC_CLIP_HOP, check_sources=installed)


COMMITTED_MODELS = ("saved_models/demo", "saved_models/music")  # what `make demo`'s report opens with


def committed_report_models(model_dirs: Sequence[str | os.PathLike], audio_dir: str | os.PathLike,
                            music_source: str | os.PathLike = MUSIC_SOURCE) -> list:
    """The committed models a demo report opens with (those of ``model_dirs`` that exist), each with
    a held-out file of its own data, an unseen file (a chorale; neither model trained on them) and an
    interpolation between two held-out files."""
    from ..data.dataset import files_in_split
    from ..model.saving import read_model_info
    from .report import ReportModel

    audio_dir = Path(audio_dir)
    chorales = find_audio_files(audio_dir / "chorales")
    models = []
    for folder in map(Path, model_dirs):
        if not (folder / "config.json").is_file():
            continue
        info = read_model_info(folder)
        music = info.model_config.name == "music"
        source = Path(music_source) if music else audio_dir / "notes"
        held = files_in_split([source], "test") if source.is_dir() else []
        picks = held[:: max(1, len(held) // 2)][:2]
        stage2 = " after the adversarial stage" if "adversarial" in info.raw else ""
        what = "Debian's singularity-music (CC BY-SA 3.0)" if music else "the embedded notes"
        models.append(ReportModel(
            folder, f"The committed model {folder} ({info.model_config.name} preset, "
                    f"{info.spectrogram_config.n_bins}x{info.spectrogram_config.n_frames}{stage2}), trained on {what}",
            files=picks[:1] + chorales[:1], interpolate=tuple(map(os.fspath, picks)) if len(picks) == 2 else None,
            note=(f"{picks[0].name}: held out of its training (test split); " if picks else "")
            + (f"{chorales[0].name}: a Bach chorale, unlike anything it was trained on." if chorales else "")))
    return models


def run_demo(out: str | os.PathLike, *, data_dir: str | os.PathLike = "data", spec: str = "small",
             preset: str = "small", epochs: int = 30, workers: int = 1, roundtrip_files_per_set: int = 8,
             sample_metrics_n: int = 256, committed: Sequence[str | os.PathLike] = COMMITTED_MODELS,
             log=print) -> dict:
    """The main job on the embedded data, end to end.

    Renders and prepares the embedded data, measures the representation's round trip, trains a
    short run of a CPU preset (resuming the previous run in ``out``) and refits its prior to the codes,
    evaluates it on the held-out split — reconstruction and, with ``sample_metrics_n`` prior
    samples, the generation metrics — and writes ``out/index.html``: first the ``committed``
    512x512 models (samples, reconstructions of a held-out and an unseen file, an interpolation;
    before / after for a model sharpened by the adversarial stage), then this run's model with
    its metrics table, samples, reconstructions and an interpolation.

    Returns:
        A summary with the output paths, the round-trip metrics and the evaluation.
    """
    from ..config import model_preset
    from ..data.dataset import open_dataset
    from ..audio.metrics import roundtrip_files
    from .report import default_report_inputs, write_report
    from ..evaluation.diagnostics import evaluate_saved
    from ..model.training import train

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
    notes = open_dataset(data["notes"])
    train(notes, model_dir, model_preset(preset), epochs=epochs, resume=(model_dir / "checkpoints").exists(),
          fit_prior=True, verbose=2, log=log)
    train_seconds = time.perf_counter() - t1
    metrics = evaluate_saved(model_dir, notes, "test", samples=sample_metrics_n, log=log)
    metrics.pop("kl_per_dim", None)
    samples = metrics.pop("samples", None)
    files, pair = default_report_inputs(data["audio"])
    lead = committed_report_models(committed, data["audio"])
    log(f"report: the committed models {[os.fspath(m.model_dir) for m in lead]}, then this run's")
    index = write_report(model_dir, out, files=files, interpolate=pair,
                         metrics={**metrics, "train_seconds": round(train_seconds, 1)}, sample_metrics=samples,
                         title="vae_tfp demo", lead=lead,
                         model_title=f"This run: the {preset} preset, {epochs} epochs on this machine's CPU "
                                     f"({train_seconds / 60:.0f} min) — a short run, not the committed model")
    return {"report": os.fspath(index), "model": os.fspath(model_dir),
            "datasets": {k: os.fspath(v) for k, v in data.items()},
            "roundtrip": rt["metrics_path"], "roundtrip_summary": rt["summary"], "evaluation": metrics,
            "sample_metrics": {r["set"]: {k: v for k, v in r.items() if k != "set"} for r in samples["rows"]
                               if not r["set"].startswith("component ")} if samples else None,
            "seconds": round(time.perf_counter() - t0, 1)}


# A folder holding a complete smoke setup that every notebook's SMOKE run reuses (set by the tests,
# so that the notebooks share one setup instead of building three).
SMOKE_DIR_ENV = "VAE_TFP_SMOKE_DIR"


def smoke_setup(root: str | os.PathLike | None = None, *, epochs: int = 2, train_model: bool = True,
                log=lambda _: None) -> dict[str, Path]:
    """A tiny end-to-end setup in seconds, for notebook smoke runs and tests: three instruments'
    notes rendered at 8 kHz, prepared with the ``tiny`` preset, a ``tiny`` model trained on them,
    and a copy of it through one epoch of the adversarial stage.

    What ``root`` already holds is reused: the rendered audio, a dataset of the ``tiny`` config,
    a model trained for at least ``epochs`` epochs and its sharpened copy.

    Args:
        root: The folder; default ``$VAE_TFP_SMOKE_DIR`` if set, else a new temporary folder.

    Returns:
        ``{"audio": folder, "notes": dataset, "model": model folder, "sharpened": model folder}``
        (the model folders only with ``train_model``).
    """
    import json
    import shutil
    import tempfile

    from ..config import model_preset
    from ..model.saving import CONFIG, HISTORY
    from ..model.training import train

    root = Path(root or os.environ.get(SMOKE_DIR_ENV) or tempfile.mkdtemp(prefix="vae_tfp_smoke_"))
    config = spectrogram_preset("tiny")
    audio = _render_once(root / "demo_audio", log=log, sample_rate=config.sample_rate,
                         instruments={"piano": 0, "violin": 40, "flute": 73}, pitches=(48, 55, 60, 67, 72),
                         velocities=(100,), n_chorales=1)
    notes = _prepare_once([audio / "notes"], root / "notes-tiny", config, workers=1, log=log)
    if not train_model:
        return {"audio": audio, "notes": notes}
    model = root / "model-tiny"
    trained = len(json.loads((model / HISTORY).read_text())) if (model / CONFIG).exists() else 0
    sharpened = root / "model-tiny-sharpened"
    if trained < epochs:
        train(notes, model, model_preset("tiny"), epochs=epochs, batch_size=8,
              resume=(model / "checkpoints").exists(), verbose=0, tensorboard=False, log=log)
        shutil.rmtree(sharpened, ignore_errors=True)
    if not (sharpened / CONFIG).exists() or "adversarial" not in json.loads((sharpened / CONFIG).read_text()):
        from ..model.adversarial import train_adversarial

        shutil.rmtree(sharpened, ignore_errors=True)
        shutil.copytree(model, sharpened, ignore=shutil.ignore_patterns("checkpoints"))
        train_adversarial(notes, sharpened, epochs=1, batch_size=8, verbose=0, tensorboard=False, log=log)
    return {"audio": audio, "notes": notes, "model": model, "sharpened": sharpened}
