"""vae_tfp: a variational autoencoder with a Gaussian-mixture prior on audio spectrograms.

The package follows the data flow: :mod:`~vae_tfp.audio` (files in and out) →
:mod:`~vae_tfp.spectrogram` (images and their inversion, from a :mod:`~vae_tfp.phase` start) →
:mod:`~vae_tfp.dataset` (prepared datasets, opened once as a ``PreparedDataset``) → the model
and its training → generation and latent-space tools → :mod:`~vae_tfp.render` (PNGs, players,
HTML) with the Jupyter :mod:`~vae_tfp.notebook` helpers, the :mod:`~vae_tfp.report` and the
:mod:`~vae_tfp.cli`; :mod:`~vae_tfp.demo` runs it all on the embedded data. Names are imported lazily so that
``import vae_tfp`` does not start TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "VaeTfpError": "errors", "ConfigError": "errors", "AudioError": "errors", "DatasetError": "errors",
    "ModelFileError": "errors",
    "SpectrogramConfig": "config", "SPECTROGRAM_PRESETS": "config", "spectrogram_preset": "config",
    "load_audio": "audio", "iter_clips": "audio", "stream_audio": "audio", "write_wav": "audio",
    "audio_info": "audio", "find_audio_files": "audio",
    "spectrogram": "spectrogram", "spectrogram_tf": "spectrogram", "griffin_lim": "spectrogram",
    "griffin_lim_tf": "spectrogram", "to_magnitude": "spectrogram", "Inversion": "spectrogram",
    "pghi": "phase", "initial_phase": "phase",
    "roundtrip": "metrics", "roundtrip_file": "metrics", "spectral_convergence": "metrics",
    "log_spectral_distance": "metrics", "inversion_curves": "metrics",
    "prepare_dataset": "dataset", "load_manifest": "dataset", "load_numpy": "dataset",
    "make_tf_dataset": "dataset", "dataset_config": "dataset", "split_clips": "dataset",
    "render_demo_data": "demo_data",
    "roundtrip_files": "metrics", "ensure_demo_data": "demo", "ensure_music_data": "demo", "run_demo": "demo",
    "smoke_setup": "demo",
    "prepare_audio_dir": "dataset", "open_dataset": "dataset", "PreparedDataset": "dataset", "TrainingError": "errors",
    "fit_prior": "prior_fit", "fit_prior_saved": "prior_fit",
    "evaluate_samples": "sample_metrics", "load_classifier": "classifier",
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
