"""A static HTML report of a model: samples, reconstructions beside the round-trip ceiling,
an interpolation, and the model's metrics. ``index.html`` links PNG and WAV files in
sub-folders of the report folder, so it opens in any browser from disk.
"""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path
from typing import Sequence

from ..audio.io import find_audio_files
from ..files import write_json_atomic
from .render import card_html, metrics_table_html
from .operations import op_generate, op_interpolate, op_reconstruct
from ..model.saving import read_model_info
from ..audio.spectrogram import DEFAULT_INVERSION, Inversion


def _cards(items: Sequence[dict], folder: str, prefix: str = "") -> list[str]:
    cards = []
    for item in items:
        caption = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in item.items()
                            if k in ("spectral_convergence", "log_spectral_distance_db", "t"))
        cards.append(card_html(None, None, 0, title=prefix + item["name"], caption=caption,
                               image_src=f"{folder}/{item['png']}" if "png" in item else None,
                               audio_src=f"{folder}/{item['wav']}" if "wav" in item else None))
    return cards


def _section(title: str, cards: Sequence[str], note: str = "", level: int = 2) -> str:
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<h{level}>{html.escape(title)}</h{level}>{note_html}<div>{''.join(cards)}</div>"


@dataclasses.dataclass(frozen=True)
class ReportModel:
    """One model shown in a report: its folder, the files it reconstructs (say which are held out
    and which it never saw in ``note``), the two clips it interpolates between, a heading."""

    model_dir: str | os.PathLike
    title: str
    files: Sequence[str | os.PathLike] = ()
    interpolate: tuple[str, str] | None = None
    note: str = ""


def model_sections(model: ReportModel, out: Path, folder: str, *, n_samples: int = 8, seed: int = 0,
                   inversion: Inversion = DEFAULT_INVERSION, level: int = 2) -> list[str]:
    """HTML sections for one model (files written under ``out/folder``): prior samples, reconstructions
    beside the round-trip ceiling, an interpolation; for a folder that went through the adversarial
    stage, the same draws and reconstructions by the stage-1 decoder beside the stage-2 one."""
    sharpened = "adversarial" in read_model_info(model.model_dir).raw
    where = lambda name: f"{folder}/{name}" if folder else name  # noqa: E731
    sections = []
    samples = op_generate(model.model_dir, out / where("samples"), n=n_samples, seed=seed, inversion=inversion,
                          progress=False)
    how = f"z drawn from the trained Gaussian mixture, decoded (mean), phase by {inversion.describe()}."
    if sharpened:
        before = op_generate(model.model_dir, out / where("samples_stage1"), n=n_samples, seed=seed, inversion=inversion,
                             progress=False, stage=1)
        cards = [c for b, a in zip(_cards(before["items"], where("samples_stage1"), "stage 1: "),
                                   _cards(samples["items"], where("samples"), "stage 2: ")) for c in (b, a)]
        sections.append(_section("Samples from the prior, before / after the adversarial stage", cards,
                                 "The same draws decoded by the stage-1 decoder and by the decoder the adversarial "
                                 "stage fine-tuned. " + how, level))
    else:
        sections.append(_section("Samples from the prior", _cards(samples["items"], where("samples")), how, level))
    if model.files:
        rec = op_reconstruct(model.model_dir, model.files, out / where("reconstructions"), max_clips=2,
                             inversion=inversion, log=lambda _: None, beside_stage1=sharpened)
        cards = _cards(rec["items"], where("reconstructions"))
        sections.append(_section("Reconstructions", cards,
                                 "For each file: the original, the round-trip ceiling of the representation (its own "
                                 "spectrogram inverted)" + (", the stage-1 reconstruction" if sharpened else "")
                                 + " and the model's reconstruction. " + model.note, level))
    if model.interpolate:
        itp = op_interpolate(model.model_dir, model.interpolate[0], model.interpolate[1], out / where("interpolation"),
                             steps=8, inversion=inversion)
        sections.append(_section(f"Interpolation: {itp['a']} → {itp['b']}", _cards(itp["items"], where("interpolation")),
                                 f"Distance to A grows on {itp['monotone_fraction']:.0%} of the steps.", level))
    return sections


def write_report(model_dir, out, *, files: Sequence[str | os.PathLike] = (), interpolate: tuple[str, str] | None = None,
                 n_samples: int = 8, seed: int = 0, metrics: dict | None = None,
                 inversion: Inversion = DEFAULT_INVERSION, title: str | None = None,
                 sample_metrics: dict | None = None, lead: Sequence[ReportModel] = (),
                 model_title: str | None = None) -> Path:
    """Writes ``out/index.html`` with generated samples, reconstructions of ``files`` and an
    interpolation between the clips ``interpolate`` (files or ``DATASET:INDEX``), and with
    ``sample_metrics`` (:func:`vae_tfp.evaluation.sample_metrics.evaluate_samples`) the generation table.
    ``lead`` models come first (each under its own heading and in its own sub-folder), then the
    model of ``model_dir`` under ``model_title`` with its table.

    Returns:
        The path of ``index.html``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = read_model_info(model_dir)
    cfg = info.raw
    table = {"model": os.fspath(model_dir), "preset": cfg["model_config"]["name"],
             "likelihood": cfg["model_config"]["likelihood"], "latent_dim": cfg["model_config"]["latent_dim"],
             "spectrogram": f"{info.spectrogram_config.n_bins}x{info.spectrogram_config.n_frames} @ "
                            f"{info.spectrogram_config.sample_rate} Hz",
             "inversion": inversion.describe(), **(metrics or {})}
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in table.items())
    table_html, sections = f"<table>{rows}</table>", []
    for i, other in enumerate(lead):
        sections.append(f"<h2>{html.escape(other.title)}</h2>")
        sections += model_sections(other, out, f"lead{i}_{Path(other.model_dir).name}", n_samples=n_samples,
                                   seed=seed, inversion=inversion, level=3)
    level = 3 if lead else 2
    if lead:  # the model's own heading and table follow the lead models
        sections.append(f"<h2>{html.escape(model_title or os.fspath(model_dir))}</h2>{table_html}")
        table_html = ""
    if sample_metrics:
        sections.append(f"<h{level}>Generation metrics</h{level}><p>Prior samples, reconstructions and interpolation "
                        "midpoints scored against the real training clips, between the real floor and the dataset-mean "
                        "baseline.</p>" + metrics_table_html(sample_metrics))
    sections += model_sections(ReportModel(model_dir, "", files, interpolate), out, "", n_samples=n_samples,
                               seed=seed, inversion=inversion, level=level)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title or 'vae_tfp report')}</title>"
            "<style>body{font:14px sans-serif;margin:2em;max-width:1200px} td{padding:2px 12px}</style></head><body>"
            f"<h1>{html.escape(title or 'vae_tfp report')}</h1>{table_html}{''.join(sections)}</body></html>")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    write_json_atomic(out / "report.json", {"model": os.fspath(model_dir), "metrics": metrics or {},
                                            "sample_metrics": sample_metrics,
                                            "lead": [os.fspath(m.model_dir) for m in lead]}, default=float)
    return index


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def default_report_inputs(audio_dir) -> tuple[list[Path], tuple[str, str] | None]:
    """Two files of the embedded audio to reconstruct, and two to interpolate between."""
    notes = find_audio_files(Path(audio_dir) / "notes")
    chorales = find_audio_files(Path(audio_dir) / "chorales")
    files = [f for f in (notes[len(notes) // 3] if notes else None, chorales[0] if chorales else None) if f]
    pair = (os.fspath(notes[0]), os.fspath(notes[-1])) if len(notes) > 1 else None
    return files, pair
