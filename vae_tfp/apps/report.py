"""A static HTML report of a model: samples, reconstructions beside the round-trip ceiling,
an interpolation, and the model's metrics. ``index.html`` links PNG and WAV files in
sub-folders of the report folder, so it opens in any browser from disk.
"""

from __future__ import annotations

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


def _section(title: str, result: dict, folder: str, note: str = "") -> str:
    cards = []
    for item in result["items"]:
        caption = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in item.items()
                            if k in ("spectral_convergence", "log_spectral_distance_db", "t"))
        cards.append(card_html(None, None, 0, title=item["name"], caption=caption,
                               image_src=f"{folder}/{item['png']}" if "png" in item else None,
                               audio_src=f"{folder}/{item['wav']}" if "wav" in item else None))
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<h2>{html.escape(title)}</h2>{note_html}<div>{''.join(cards)}</div>"


def write_report(model_dir, out, *, files: Sequence[str | os.PathLike] = (), interpolate: tuple[str, str] | None = None,
                 n_samples: int = 8, seed: int = 0, metrics: dict | None = None,
                 inversion: Inversion = DEFAULT_INVERSION,
                 title: str | None = None, sample_metrics: dict | None = None) -> Path:
    """Writes ``out/index.html`` with generated samples, reconstructions of ``files`` and an
    interpolation between the clips ``interpolate`` (files or ``DATASET:INDEX``), and with
    ``sample_metrics`` (:func:`vae_tfp.evaluation.sample_metrics.evaluate_samples`) the generation table.

    Returns:
        The path of ``index.html``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = read_model_info(model_dir)
    sections = []
    if sample_metrics:
        sections.append("<h2>Generation metrics</h2><p>Prior samples, reconstructions and interpolation midpoints "
                        "scored against the real training clips, between the real floor and the dataset-mean "
                        "baseline.</p>" + metrics_table_html(sample_metrics))
    samples = op_generate(model_dir, out / "samples", n=n_samples, seed=seed, inversion=inversion)
    sections.append(_section("Samples from the prior", samples, "samples",
                             f"z drawn from the trained Gaussian mixture, decoded (mean), phase by "
                             f"{inversion.describe()}."))
    if files:
        rec = op_reconstruct(model_dir, files, out / "reconstructions", max_clips=2, inversion=inversion)
        sections.append(_section("Reconstructions", rec, "reconstructions",
                                 "For each file: the original, the round-trip ceiling of the representation "
                                 "(its own spectrogram inverted), and the model's reconstruction."))
    if interpolate:
        itp = op_interpolate(model_dir, interpolate[0], interpolate[1], out / "interpolation", steps=8,
                             inversion=inversion)
        sections.append(_section(f"Interpolation: {itp['a']} → {itp['b']}", itp, "interpolation",
                                 f"Distance to A grows on {itp['monotone_fraction']:.0%} of the steps."))
    cfg = info.raw
    table = {"model": os.fspath(model_dir), "preset": cfg["model_config"]["name"],
             "likelihood": cfg["model_config"]["likelihood"], "latent_dim": cfg["model_config"]["latent_dim"],
             "spectrogram": f"{info.spectrogram_config.n_bins}x{info.spectrogram_config.n_frames} @ "
                            f"{info.spectrogram_config.sample_rate} Hz",
             "inversion": inversion.describe(), **(metrics or {})}
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in table.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title or 'vae_tfp report')}</title>"
            "<style>body{font:14px sans-serif;margin:2em;max-width:1200px} td{padding:2px 12px}</style></head><body>"
            f"<h1>{html.escape(title or 'vae_tfp report')}</h1><table>{rows}</table>{''.join(sections)}</body></html>")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    write_json_atomic(out / "report.json", {"model": os.fspath(model_dir), "metrics": metrics or {},
                                            "sample_metrics": sample_metrics}, default=float)
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
