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


def spectrogram_png(spec: np.ndarray, *, max_size: int | None = None) -> bytes:
    """An image in [0, 1] as PNG bytes (low frequencies at the bottom, magma colours); with
    ``max_size``, mean-pooled by a whole factor until neither side exceeds it."""
    import matplotlib.image

    image = np.asarray(spec)[..., 0] if np.ndim(spec) == 3 else np.asarray(spec)
    if max_size and max(image.shape) > max_size:
        f = -(-max(image.shape) // max_size)
        h, w = image.shape[0] // f * f, image.shape[1] // f * f
        image = image[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
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


# --- hear it learn: the training panel --------------------------------------------------------

VERDICT_COLOURS = {"improving": "#e3f4e3", "plateaued": "#fbeecb", "starting": "#eeeeee"}


def _file_src(path: str, mime: str) -> str:
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()


def training_curves_png(history: list[dict]) -> bytes:
    """Validation neg-ELBO and ``samples_fd`` (with its real floor and the mean-image smear) per epoch."""
    fig = figure(figsize=(9, 2.4), dpi=80)
    left, right = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    key = "val_neg_elbo" if any("val_neg_elbo" in h for h in history) else "neg_elbo"
    left.plot(epochs, [h.get(key) for h in history], marker=".")
    left.set(title=key.replace("_", " ") + " (nats / clip)", xlabel="epoch")
    seen = [h for h in history if h.get("samples_fd") is not None]
    if seen:
        right.plot([h["epoch"] for h in seen], [h["samples_fd"] for h in seen], marker="o", label="prior samples")
        right.axhline(seen[-1]["samples_fd_floor"], ls="--", c="g", label="real floor")
        right.axhline(seen[-1]["samples_fd_mean_image"], ls="--", c="r", label="mean image")
        right.legend(fontsize=7)
    right.set(title="samples' audio-statistics distance (lower is better)", xlabel="epoch", yscale="log")
    for ax in (left, right):
        ax.title.set_fontsize(9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def training_panel_html(history: list[dict], previews: dict | None, *, epochs: int | None = None,
                        clips: int = 2, running: bool = True) -> str:
    """Notebook 03's panel: :func:`training_status_html` above :func:`training_players_html`.

    Args:
        history: The run's history records (``checkpoints/history.json``).
        previews: :func:`vae_tfp.model.previews.read_previews` of the model folder, or None.
        epochs: The run's total epochs, if known.
        clips: Reconstructions and prior samples shown from each preview.
        running: Whether training still runs (the header says so).
    """
    return ("<div class='vae-tfp-training-panel'>" + training_status_html(history, epochs=epochs, running=running)
            + training_players_html(previews, clips=clips) + "</div>")


def training_status_html(history: list[dict], *, epochs: int | None = None, running: bool = True) -> str:
    """The epoch, the verdict (still improving / plateaued), the numbers and the curves."""
    if not history:
        return "<div style='font:13px sans-serif'>waiting for the first epoch…</div>"
    last = history[-1]
    state = last.get("verdict", {}).get("state", "starting")
    of = f" of {epochs}" if epochs else ""
    head = (f"<div style='font:14px sans-serif;margin:4px 0'><b>epoch {last['epoch']}{of}</b> · "
            f"{'training…' if running else 'done'} · {last.get('seconds', 0):.1f} s per epoch"
            + (f" · previews {last['preview_seconds']:.1f} s" if last.get("preview_seconds") is not None else "")
            + "</div>"
            f"<div style='font:13px sans-serif;padding:4px 8px;background:{VERDICT_COLOURS.get(state, '#eee')}'>"
            f"{html.escape(last.get('verdict', {}).get('text', ''))}</div>")
    numbers = [("val neg-ELBO", last.get("val_neg_elbo", last.get("neg_elbo"))), ("recon_gain", last.get("recon_gain")),
               ("active units", last.get("active_units"))]
    seen = [h for h in history if h.get("samples_fd") is not None]
    if seen:
        numbers += [("samples FD", seen[-1]["samples_fd"]), ("real floor", seen[-1]["samples_fd_floor"]),
                    ("mean image", seen[-1]["samples_fd_mean_image"])]
    table = ("<table style='font:12px sans-serif;border-collapse:collapse;margin:4px 0'><tr>"
             + "".join(f"<th style='padding:2px 8px'>{html.escape(k)}</th>" for k, _ in numbers) + "</tr><tr>"
             + "".join(f"<td style='padding:2px 8px;text-align:right'>{'' if v is None else f'{v:.4g}'}</td>"
                       for _, v in numbers) + "</tr></table>")
    curves = ("<img style='max-width:720px' src='data:image/png;base64,"
              + base64.b64encode(training_curves_png(history)).decode() + "'>")
    return head + table + curves


def training_players_html(previews: dict | None, *, clips: int = 2) -> str:
    """Players for the latest preview beside the first's: each fixed validation clip, then its
    reconstruction then and now; the same prior draws decoded then and now. Empty before any preview."""
    entries = (previews or {}).get("entries", [])
    if not entries:
        return ""
    first, now = entries[0], entries[-1]

    def card(item, title):
        return card_html(None, None, 0, title=title, image_src=_file_src(item["png"], "image/png"),
                         audio_src=_file_src(item["wav"], "audio/wav"))

    recon = "".join(card(real, f"real clip {i}") + card(first["reconstructions"][i], f"epoch {first['epoch']}")
                    + (card(now["reconstructions"][i], f"epoch {now['epoch']}") if now is not first else "")
                    for i, real in enumerate(previews["real"][:clips]))
    samples = "".join(card(first["samples"][i], f"draw {i}, epoch {first['epoch']}")
                      + (card(now["samples"][i], f"draw {i}, epoch {now['epoch']}") if now is not first else "")
                      for i in range(min(clips, len(first["samples"]))))
    return ("<div style='font:13px sans-serif;margin-top:6px'><b>Reconstructions</b> of fixed validation "
            "clips: the real clip, the first preview, the latest</div><div>" + recon + "</div>"
            "<div style='font:13px sans-serif;margin-top:6px'><b>Prior samples</b>, the same draws "
            "decoded then and now</div><div>" + samples + "</div>")
