"""The one exception family for user-facing errors.

Every message says what went wrong, where (the file or the value) and why, e.g.
``"song.wav: cannot decode audio (Format not recognised)"`` or
``"hop_length=0 must be a positive integer"``. The command line prints these without a
traceback; anything else escaping is a bug.
"""

from __future__ import annotations


class VaeTfpError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(VaeTfpError, ValueError):
    """A configuration value is invalid (spectrogram, model or training settings)."""


class AudioError(VaeTfpError):
    """An audio file cannot be used: unreadable, undecodable, empty or non-finite."""


class DatasetError(VaeTfpError):
    """A prepared dataset is missing, incomplete or inconsistent with its manifest."""


class ModelFileError(VaeTfpError):
    """A saved model folder is missing a file, has a corrupt file or does not match its config."""


class TrainingError(VaeTfpError):
    """Training stopped: NaN loss, out of memory, or a run that cannot be resumed as asked."""


class FolderLockedError(VaeTfpError):
    """Another live process is writing the folder (a model being trained, a dataset being prepared)."""
