"""Helpers for Jupyter: plots with real axes, rows of spectrograms with players, the metrics table.

What they display is rendered by :mod:`vae_tfp.apps.render` (also used by the command line and the
HTML report); this module adds the plotting and the IPython display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import tf_keras as keras

from ..config import SpectrogramConfig
from .render import card_html, metrics_table_html, pyplot, training_players_html, training_status_html
from ..audio.spectrogram import DEFAULT_INVERSION, Inversion


def plot_waveform(audio: np.ndarray, sample_rate: int, *, ax=None, title: str | None = None):
    """Waveform with a time axis in seconds. Returns the axes."""
    plt = pyplot()
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

    plt = pyplot()
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
    plt = pyplot()
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


def show_row(specs: Sequence[np.ndarray], config: SpectrogramConfig, *, audios: Sequence[np.ndarray] | None = None,
             titles: Sequence[str] | None = None, captions: Sequence[str] | None = None, invert: bool = True,
             inversion: Inversion = DEFAULT_INVERSION):
    """Displays spectrograms side by side with a player under each (Jupyter).

    Args:
        specs: Images [n_bins, n_frames, 1] in [0, 1].
        config: Their spectrogram settings.
        audios: The audio to play under each; by default the images are inverted (batched
            Griffin-Lim) when ``invert`` is true.
        titles, captions: Text above and below each card.
        inversion: How the images become audio when inverting.

    Returns:
        The HTML string displayed.
    """
    from IPython.display import HTML, display

    if audios is None and invert:
        from ..audio.spectrogram import griffin_lim_tf

        audios = list(griffin_lim_tf(np.stack(specs), config, inversion=inversion))
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


def show_metrics(result: dict, *, components: bool = False) -> str:
    """Displays :func:`metrics_table_html` in Jupyter; returns the HTML."""
    from IPython.display import HTML, display

    markup = metrics_table_html(result, components=components)
    display(HTML(markup))
    return markup


def show_stages(model_dir, images: np.ndarray, *, n_samples: int = 4, seed: int = 0,
                inversion: Inversion = DEFAULT_INVERSION) -> dict[str, np.ndarray]:
    """Before / after the adversarial stage, side by side with players (Jupyter): each real clip
    beside its reconstruction by the stage-1 and the stage-2 decoder, then the same prior draws
    decoded by both.

    Args:
        model_dir: A model folder that went through the adversarial stage (``vae-tfp sharpen``).
        images: Real clips [n, H, W, 1] to reconstruct.

    Returns:
        ``{"stage 1": reconstructions, "stage 2": ..., "samples stage 1": ..., "samples stage 2": ...}``.
    """
    from ..model.saving import read_model_info
    from .generate import compare_stages

    out = compare_stages(model_dir, images, n_samples=n_samples, seed=seed)
    config = read_model_info(model_dir).spectrogram_config
    show_row([im for i in range(len(images)) for im in (images[i], out["stage 1"][i], out["stage 2"][i])], config,
             titles=[t for i in range(len(images)) for t in (f"real {i}", "stage 1", "stage 2")], inversion=inversion)
    show_row([im for i in range(n_samples) for im in (out["samples stage 1"][i], out["samples stage 2"][i])], config,
             titles=[t for i in range(n_samples) for t in (f"sample {i}, stage 1", "stage 2")], inversion=inversion)
    return out


class TrainingPanel(keras.callbacks.Callback):
    """Hear it learn, in Jupyter: a panel that updates in place while ``train`` runs.

    A Keras callback: pass it to :func:`vae_tfp.model.training.train` (``callbacks=[panel]``).
    After every epoch it reads the run's history and previews from the model folder
    (:mod:`vae_tfp.model.previews`) and redraws, in place, the epoch, the verdict (still
    improving / plateaued), the numbers and the curves; the players (this epoch's previews beside
    the first's) are redrawn only when a new preview arrives, so a clip being played is not cut
    off by the next epoch. ``panel.refresh()`` redraws it from the folder at any time (e.g. for a
    run that finished earlier); ``panel.widget`` is the ``ipywidgets.VBox``.

    Args:
        model_dir: The run's model folder.
        clips: Reconstructions and prior samples shown per preview.
    """

    def __init__(self, model_dir, *, clips: int = 2):
        import ipywidgets as widgets

        super().__init__()
        self.model_dir, self.clips = Path(model_dir), clips
        self.status, self.players = widgets.HTML(training_status_html([])), widgets.HTML("")
        self.widget = widgets.VBox([self.status, self.players])
        self.widget.add_class("vae-tfp-training-panel")
        self.epochs, self.running, self._shown, self._previewed = None, False, False, None

    def show(self) -> "TrainingPanel":
        """Displays the widget (once) and returns the panel."""
        from IPython.display import display

        if not self._shown:
            display(self.widget)
            self._shown = True
        return self

    def refresh(self) -> None:
        """Redraws the panel from the model folder."""
        import json

        from ..model.previews import read_previews
        from ..model.saving import CHECKPOINTS, HISTORY

        history = []
        for file in (self.model_dir / CHECKPOINTS / HISTORY, self.model_dir / HISTORY):
            try:
                history = json.loads(file.read_text())
                break
            except (OSError, ValueError):
                continue
        history = [h for h in history if h.get("stage", 1) == 1]
        self.status.value = training_status_html(history, epochs=self.epochs, running=self.running)
        previews = read_previews(self.model_dir)
        key = previews and [e["epoch"] for e in previews["entries"]]
        if key != self._previewed:
            self.players.value, self._previewed = training_players_html(previews, clips=self.clips), key

    def on_train_begin(self, logs=None):
        self.epochs, self.running = self.params.get("epochs"), True
        self.show()
        self.refresh()

    def on_epoch_end(self, epoch, logs=None):
        self.refresh()

    def on_train_end(self, logs=None):
        self.running = False
        self.refresh()
