"""Helpers for notebooks and HTML reports: plots with real axes, and spectrograms with players.

A spectrogram "card" is a self-contained HTML snippet (a PNG and a WAV, both base64-embedded),
so the same code shows a row of players in Jupyter and writes a static report page.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import numpy as np

from .config import SpectrogramConfig
from .phase import DEFAULT_PHASE_INIT
from .spectrogram import DEFAULT_GRIFFIN_LIM_ITERS


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget"):
        try:
            import IPython

            if IPython.get_ipython() is None:
                matplotlib.use("Agg")
        except ImportError:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_waveform(audio: np.ndarray, sample_rate: int, *, ax=None, title: str | None = None):
    """Waveform with a time axis in seconds. Returns the axes."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(10, 2))[1]
    t = np.arange(len(audio)) / sample_rate
    ax.plot(t, audio, linewidth=0.5)
    ax.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, t[-1] if len(t) else 1), ylim=(-1, 1))
    if title:
        ax.set_title(title)
    return ax


def plot_spectrogram(spec: np.ndarray, config: SpectrogramConfig, *, ax=None, title: str | None = None,
                     colorbar: bool = True):
    """An image in [0, 1] with Hz / seconds axes (librosa.display) and a dB colour bar."""
    import librosa
    import librosa.display

    plt = _plt()
    image = np.asarray(spec)[..., 0] if np.ndim(spec) == 3 else np.asarray(spec)
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    db = config.min_db + image * config.db_range
    freqs = librosa.fft_frequencies(sr=config.sample_rate, n_fft=config.n_fft)[: config.n_bins]
    times = librosa.frames_to_time(np.arange(image.shape[1]), sr=config.sample_rate, hop_length=config.hop_length)
    mesh = librosa.display.specshow(db, x_coords=times, y_coords=freqs, x_axis="s", y_axis="hz", ax=ax,
                                    vmin=config.min_db, vmax=config.max_db, cmap="magma")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, format="%+.0f dB")
    if title:
        ax.set_title(title)
    return ax


def plot_grid(specs: Sequence[np.ndarray], config: SpectrogramConfig, *, titles: Sequence[str] | None = None,
              ncols: int = 4, size: float = 2.5):
    """A grid of spectrogram images (no axes), for a quick look at a dataset. Returns the figure."""
    plt = _plt()
    n = len(specs)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(specs[i])[..., 0] if np.ndim(specs[i]) == 3 else specs[i], origin="lower",
                      aspect="auto", cmap="magma", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def spectrogram_png(spec: np.ndarray, *, width: int = 256) -> bytes:
    """An image in [0, 1] as PNG bytes (low frequencies at the bottom, magma colours)."""
    import matplotlib.image

    image = np.asarray(spec)[..., 0] if np.ndim(spec) == 3 else np.asarray(spec)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, np.flipud(np.clip(image, 0, 1)), cmap="magma", vmin=0, vmax=1, format="png")
    return buffer.getvalue()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio → 16-bit WAV bytes (peak-limited like :func:`vae_tfp.audio.write_wav`)."""
    import soundfile as sf

    audio = np.nan_to_num(np.asarray(audio, np.float32).reshape(-1))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    buffer = io.BytesIO()
    sf.write(buffer, audio, int(sample_rate), format="WAV", subtype="PCM_16")
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


def show_row(specs: Sequence[np.ndarray], config: SpectrogramConfig, *, audios: Sequence[np.ndarray] | None = None,
             titles: Sequence[str] | None = None, captions: Sequence[str] | None = None, invert: bool = True,
             n_iter: int = DEFAULT_GRIFFIN_LIM_ITERS, phase_init: str = DEFAULT_PHASE_INIT):
    """Displays spectrograms side by side with a player under each (Jupyter).

    Args:
        specs: Images [n_bins, n_frames, 1] in [0, 1].
        config: Their spectrogram settings.
        audios: The audio to play under each; by default the images are inverted (batched
            Griffin-Lim) when ``invert`` is true.
        titles, captions: Text above and below each card.
        n_iter: Griffin-Lim iterations when inverting.

    Returns:
        The HTML string displayed.
    """
    from IPython.display import HTML, display

    if audios is None and invert:
        from .spectrogram import griffin_lim_tf

        audios = list(griffin_lim_tf(np.stack(specs), config, n_iter=n_iter, phase_init=phase_init))
    cards = [card_html(s, None if audios is None else audios[i], config.sample_rate,
                       title=titles[i] if titles else "", caption=captions[i] if captions else "")
             for i, s in enumerate(specs)]
    markup = "<div>" + "".join(cards) + "</div>"
    display(HTML(markup))
    return markup


def label_counts(clips: Sequence[dict]) -> dict[str, int]:
    """Clips per label, most frequent first."""
    counts: dict[str, int] = {}
    for c in clips:
        counts[c["label"]] = counts.get(c["label"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


CALIBRATION_ROWS = ("real (held-out)", "dataset mean")


def metrics_table_html(result: dict, *, components: bool = False) -> str:
    """The generation table of :func:`vae_tfp.sample_metrics.evaluate_samples` as HTML.

    The calibration rows — the real floor (green) and the dataset-mean collapse baseline (red) —
    come first and are coloured, so that every other row reads between them.
    """
    from .sample_metrics import table_rows

    header, cells = table_rows(result, components=components)
    colours = {"real (held-out)": "#e3f4e3", "dataset mean": "#f8e1e1"}
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
    return (f"<table style='border-collapse:collapse;font:12px sans-serif'><tr>{head}</tr>{body}</table>"
            f"<p style='font:12px sans-serif'>{html.escape(note)}</p>")


def show_metrics(result: dict, *, components: bool = False) -> str:
    """Displays :func:`metrics_table_html` in Jupyter; returns the HTML."""
    from IPython.display import HTML, display

    markup = metrics_table_html(result, components=components)
    display(HTML(markup))
    return markup
