"""Rendering for notebooks, reports and the command line: spectrogram PNGs, WAV bytes, HTML cards
with a player under each image, and the generation-metrics table.

A spectrogram "card" is a self-contained HTML snippet (a PNG and a WAV, both base64-embedded,
or links to files), so the same code shows a row of players in Jupyter
(:mod:`vae_tfp.apps.notebook`) and writes a static report page (:mod:`vae_tfp.apps.report`). Nothing here
needs IPython.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from ..audio.io import limit_peak


def pyplot():
    """``matplotlib.pyplot`` as the user has it: the backend is never switched (matplotlib picks
    Agg by itself where there is no display). Files are drawn on :func:`figure` instead."""
    import matplotlib.pyplot as plt

    return plt


def figure(**kwargs):
    """A ``matplotlib.figure.Figure`` outside pyplot (no backend, no global state), for files."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def spectrogram_png(spec: np.ndarray, *, width: int = 256) -> bytes:
    """An image in [0, 1] as PNG bytes (low frequencies at the bottom, magma colours)."""
    import matplotlib.image

    image = np.asarray(spec)[..., 0] if np.ndim(spec) == 3 else np.asarray(spec)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, np.flipud(np.clip(image, 0, 1)), cmap="magma", vmin=0, vmax=1, format="png")
    return buffer.getvalue()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio → 16-bit WAV bytes, peak-limited as :func:`vae_tfp.audio.io.write_wav` writes files."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, limit_peak(audio), int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def card_html(spec: np.ndarray | None, audio: np.ndarray | None, sample_rate: int, *, title: str = "",
              caption: str = "", audio_src: str | None = None, image_src: str | None = None) -> str:
    """One spectrogram image with an ``<audio>`` player under it, as a self-contained HTML snippet.

    ``audio_src`` / ``image_src`` link files instead of embedding them (for reports on disk).
    """
    parts = ['<div style="display:inline-block;margin:4px;vertical-align:top;width:260px;font:12px sans-serif">']
    if title:
        parts.append(f"<div><b>{html.escape(title)}</b></div>")
    if image_src is None and spec is not None:
        image_src = "data:image/png;base64," + base64.b64encode(spectrogram_png(spec)).decode()
    if image_src:
        parts.append(f'<img src="{html.escape(image_src)}" style="width:256px;height:160px;image-rendering:auto">')
    if audio_src is None and audio is not None:
        audio_src = "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio, sample_rate)).decode()
    if audio_src:
        parts.append(f'<audio controls preload="metadata" src="{html.escape(audio_src)}" style="width:256px"></audio>')
    if caption:
        parts.append(f"<div>{html.escape(caption)}</div>")
    parts.append("</div>")
    return "".join(parts)


CALIBRATION_ROWS = ("real (held-out)", "dataset mean", "white noise")


def metrics_table_html(result: dict, *, components: bool = False) -> str:
    """The generation table of :func:`vae_tfp.evaluation.sample_metrics.evaluate_samples` as HTML.

    The calibration rows — the real floor (green) and the dataset-mean collapse baseline (red) —
    come first and are coloured, so that every other row reads between them.
    """
    from ..evaluation.sample_metrics import table_rows

    header, cells = table_rows(result, components=components)
    colours = {"real (held-out)": "#e3f4e3", "dataset mean": "#f8e1e1", "white noise": "#f8e1e1"}
    head = "".join(f"<th style='padding:2px 8px;text-align:right'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr style='background:{colours.get(c[0], 'transparent')}'>"
        + "".join(f"<td style='padding:2px 8px;text-align:{'left' if i == 0 else 'right'}'>{html.escape(v)}</td>"
                  for i, v in enumerate(c)) + "</tr>" for c in cells)
    ref = result.get("reference", {})
    note = (f"Against {ref.get('n', '?')} {ref.get('split', 'training')} clips, on {ref.get('embedding', '')}. "
            "FID lower is better (scored at the size of the held-out set); IS and confidence higher; NDB/K lower; "
            "precision and recall higher; brightness_ratio near 1; nn_ratio near the real row's "
            "(far below it: copies of training clips).")
    if "judges" in result:
        j = result["judges"]
        note += (f" The pretrained judges hear {j['n']} clips per set after inversion: fad_musicnn lower is better; "
                 "two_sample and two_sample_musicnn are a classifier's accuracy at telling the set from held-out "
                 "clips (0.5: indistinguishable); inversion_sc is how far an image is from the magnitude of its own "
                 "audio (the real row's is the floor); pitch_acc against the clips' pitch, pitch_entropy lower and "
                 "single_pitch higher for clear notes.")
    return (f"<table style='border-collapse:collapse;font:12px sans-serif'><tr>{head}</tr>{body}</table>"
            f"<p style='font:12px sans-serif'>{html.escape(note)}</p>")
