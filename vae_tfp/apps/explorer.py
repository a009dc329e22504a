"""An ipywidgets latent-space explorer: sliders along the top principal directions of the
latent means and along label directions, from a starting point picked in a dropdown (the centre
of all codes, or of the codes of one label value: ``instrument=violin``); every change re-decodes
and plays the result."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .generate import decode, to_audio
from .latent import label_vector, principal_directions
from .render import card_html
from ..model.conditional import value_order
from ..audio.spectrogram import Inversion


class LatentExplorer:
    """Builds the widget; ``z(values)`` gives the latent for slider values (testable headless).

    Args:
        model: A loaded model with decoder.
        latents: Posterior means [n, D] defining the directions (e.g. the training set).
        labels: Their labels, for label directions.
        label_pairs: ``(positive, negative)`` label pairs; each adds a slider along
            ``mean(positive) - mean(negative)`` (0 = the centre, 1 = one full label vector).
        k: Principal directions (sliders in units of the data's standard deviation along each).
        inversion: How each update becomes audio (16 Griffin-Lim iterations: fewer is snappier).
        conditions: ``{field: one value per latent}`` (e.g. a conditional prior's ``values``):
            each value adds a starting point, the mean of the latents that carry it, to the
            dropdown; ``origin`` holds the one in use.
    """

    ALL = "centre of all codes"

    def __init__(self, model, latents: np.ndarray, labels: Sequence[str] | None = None, *,
                 label_pairs: Sequence[tuple[str, str]] = (), k: int = 4,
                 inversion: Inversion = Inversion(n_iter=16), conditions: Mapping[str, Sequence] | None = None):
        self.model, self.inversion = model, inversion
        self.center, dirs, std = principal_directions(latents, k)
        self.directions = [(f"PC{i + 1}", dirs[i] * std[i]) for i in range(len(dirs))]
        for pos, neg in label_pairs:
            self.directions.append((f"{pos}−{neg}", label_vector(latents, labels, pos, neg)))
        self.origins = {self.ALL: self.center}
        for field, values in (conditions or {}).items():
            values = np.asarray([str(v) for v in values])
            for value in sorted(set(values), key=value_order):
                self.origins[f"{field}={value}"] = latents[values == value].mean(axis=0)
        self.origin = self.ALL
        self._widget = None

    def z(self, values: Sequence[float]) -> np.ndarray:
        """The latent [D] for one value per direction, from the starting point ``origin``."""
        z = self.origins[self.origin].copy()
        for value, (_, vec) in zip(values, self.directions):
            z = z + np.float32(value) * vec
        return z

    def render_html(self, values: Sequence[float]) -> str:
        image = decode(self.model, self.z(values)[None])
        audio = to_audio(self.model, image, inversion=self.inversion)[0]
        caption = ", ".join([self.origin] + [f"{name} {v:+.1f}" for (name, _), v in zip(self.directions, values)])
        return card_html(image[0], audio, self.model.spectrogram_config.sample_rate, title="decoded", caption=caption)

    def widget(self):
        """The ipywidgets box: the starting point (a dropdown) and one slider per direction, beside a
        spectrogram with a player."""
        import ipywidgets as widgets

        start = widgets.Dropdown(options=list(self.origins), value=self.origin, description="start")
        sliders = [widgets.FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.25, description=name,
                                       continuous_update=False) for name, _ in self.directions]
        view = widgets.HTML(self.render_html([0.0] * len(sliders)))

        def update(_change=None):
            self.origin = start.value
            view.value = self.render_html([s.value for s in sliders])

        for control in [start, *sliders]:
            control.observe(update, names="value")
        self._widget = widgets.VBox([widgets.HBox([widgets.VBox([start, *sliders]), view])])
        return self._widget
