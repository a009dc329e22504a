"""vae_tfp: a variational autoencoder with a Gaussian-mixture prior on audio spectrograms.

The subpackages follow the data flow; :mod:`~vae_tfp.config` (``SpectrogramConfig``,
``ModelConfig`` and their presets) and :mod:`~vae_tfp.errors` serve them all:

* :mod:`~vae_tfp.audio` — files in and out (``io``), audio ↔ spectrogram images
  (``spectrogram``, with the ``Inversion`` settings), Griffin-Lim's starting phase (``phase``),
  the representation's round trip (``metrics``);
* :mod:`~vae_tfp.data` — preparing and opening datasets (``dataset``: ``PreparedDataset``), the
  embedded audio (``demo_data``);
* :mod:`~vae_tfp.model` — the mixture prior (``prior``), encoder / decoder / ``VAE``
  (``networks``), architecture cost (``cost``), ``train`` (``training``, ``callbacks``,
  ``devices``), the prior refit (``prior_fit``), model folders (``saving``);
* :mod:`~vae_tfp.evaluation` — collapse / prior-hole diagnostics and ``evaluate``
  (``diagnostics``), the dataset classifier, the generation table (``sample_metrics``), the
  pretrained judges, the time-structure metrics;
* :mod:`~vae_tfp.apps` — encode / decode / sample (``generate``), latent tools and the explorer,
  the CLI's operations, pictures and players (``render``, ``notebook``), the report, ``make demo``
  (``demo``) and the command line (``cli``).

The names below are importable from ``vae_tfp`` itself, lazily, so that ``import vae_tfp`` does
not start TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "VaeTfpError": "errors", "ConfigError": "errors", "AudioError": "errors", "DatasetError": "errors",
    "ModelFileError": "errors",
    "SpectrogramConfig": "config", "SPECTROGRAM_PRESETS": "config", "spectrogram_preset": "config",
    "load_audio": "audio.io", "iter_clips": "audio.io", "stream_audio": "audio.io", "write_wav": "audio.io",
    "audio_info": "audio.io", "find_audio_files": "audio.io",
    "spectrogram": "audio.spectrogram", "spectrogram_tf": "audio.spectrogram", "griffin_lim": "audio.spectrogram",
    "griffin_lim_tf": "audio.spectrogram", "to_magnitude": "audio.spectrogram", "Inversion": "audio.spectrogram",
    "pghi": "audio.phase", "initial_phase": "audio.phase",
    "roundtrip": "audio.metrics", "roundtrip_file": "audio.metrics", "spectral_convergence": "audio.metrics",
    "log_spectral_distance": "audio.metrics", "inversion_curves": "audio.metrics",
    "prepare_dataset": "data.dataset", "dataset_folder": "data.dataset",
    "render_demo_data": "data.demo_data",
    "roundtrip_files": "audio.metrics", "ensure_demo_data": "apps.demo", "ensure_music_data": "apps.demo",
    "run_demo": "apps.demo", "smoke_setup": "apps.demo",
    "prepare_audio_dir": "data.dataset", "open_dataset": "data.dataset", "PreparedDataset": "data.dataset",
    "TrainingError": "errors",
    "fit_prior": "model.prior_fit", "fit_prior_saved": "model.prior_fit",
    "ModelConfig": "config", "model_preset": "config", "train": "model.training", "load_model": "model.saving",
    "save_model": "model.saving", "evaluate": "evaluation.diagnostics", "evaluate_saved": "evaluation.diagnostics",
    "evaluate_samples": "evaluation.sample_metrics", "load_classifier": "evaluation.classifier",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vae_tfp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
