"""Configuration: the single source of truth for every STFT number.

A :class:`SpectrogramConfig` fixes how audio becomes a spectrogram image and back. Every function
that touches audio or spectrograms takes one; no STFT number is written anywhere else.

The default preset gives 512 x 512 images: 22050 Hz audio, ``n_fft=1024`` (46 ms window) with the
Nyquist bin dropped (512 bins, 0 to 11 kHz in 21.5 Hz steps), ``hop_length=256`` (11.6 ms) and
512 frames (5.94 s of audio per clip).

The dB mapping is fixed and global (never per clip), so that any image in [0, 1] — a decoded
sample from the prior included — maps back to magnitudes::

    ref   = ref_amplitude * sum(window) / 2      # STFT peak of a sinusoid of amplitude ref_amplitude
    dB    = 20 * log10(max(|STFT| / ref, 10 ** (min_db / 20)))
    value = clip((dB - min_db) / (max_db - min_db), 0, 1)

With ``ref_amplitude=1`` a full-scale sinusoid sits at 0 dB; ``max_db`` leaves head-room above it
so that ordinary loud material is not clipped, and ``min_db`` is the floor.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

from .errors import ConfigError

# Refuse configurations whose arrays could not sensibly be allocated: a tampered config must fail
# here, before any large allocation.
MAX_SPECTROGRAM_PIXELS = 4096 * 4096
MAX_SAMPLE_RATE = 384_000


@dataclasses.dataclass(frozen=True)
class SpectrogramConfig:
    """How audio maps to a spectrogram image of shape ``[n_bins, n_frames, 1]`` in [0, 1].

    Attributes:
        sample_rate: Audio sample rate in Hz; input audio is resampled to it.
        n_fft: FFT size and Hann window length in samples (1024 samples = 46 ms at 22050 Hz).
        hop_length: Samples between frames (256 samples = 11.6 ms at 22050 Hz).
        n_frames: Frames per clip; a clip is ``(n_frames - 1) * hop_length`` samples, centred.
        min_db: Floor of the dB range, relative to ``ref_amplitude`` (maps to 0).
        max_db: Top of the dB range (maps to 1); above 0 to leave head-room.
        ref_amplitude: Amplitude of the sinusoid that reads 0 dB (1.0 = full scale).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_frames: int = 512
    min_db: float = -80.0
    max_db: float = 6.0
    ref_amplitude: float = 1.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        for name in ("min_db", "max_db", "ref_amplitude"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name}={value!r} must be a finite number")
        if self.sample_rate < 1000 or self.sample_rate > MAX_SAMPLE_RATE:
            raise ConfigError(f"sample_rate={self.sample_rate} must be in [1000, {MAX_SAMPLE_RATE}] Hz")
        if self.n_fft < 16 or self.n_fft % 2:
            raise ConfigError(f"n_fft={self.n_fft} must be an even integer >= 16")
        if self.hop_length > self.n_fft:
            raise ConfigError(f"hop_length={self.hop_length} must not exceed n_fft={self.n_fft}")
        if self.n_frames < 2:
            raise ConfigError(f"n_frames={self.n_frames} must be at least 2")
        if self.n_bins * self.n_frames > MAX_SPECTROGRAM_PIXELS:
            raise ConfigError(
                f"{self.n_bins} x {self.n_frames} spectrogram is larger than the limit of "
                f"{MAX_SPECTROGRAM_PIXELS} pixels"
            )
        if not self.max_db > self.min_db:
            raise ConfigError(f"max_db={self.max_db} must be greater than min_db={self.min_db}")
        if self.ref_amplitude <= 0:
            raise ConfigError(f"ref_amplitude={self.ref_amplitude} must be positive")

    # Derived values, computed here only.
    @property
    def n_bins(self) -> int:
        """Frequency bins kept: ``n_fft // 2`` (the Nyquist bin is dropped)."""
        return self.n_fft // 2

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one spectrogram image: ``(n_bins, n_frames, 1)``."""
        return (self.n_bins, self.n_frames, 1)

    @property
    def clip_samples(self) -> int:
        """Audio samples per clip; with centred frames this gives exactly ``n_frames`` frames."""
        return (self.n_frames - 1) * self.hop_length

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate

    @property
    def db_range(self) -> float:
        return self.max_db - self.min_db

    @property
    def ref_magnitude(self) -> float:
        """STFT magnitude of a sinusoid of amplitude ``ref_amplitude`` (periodic Hann: n_fft / 4)."""
        return self.ref_amplitude * self.n_fft / 4.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SpectrogramConfig":
        """Builds a config from a mapping, rejecting unknown keys and invalid values."""
        return _from_dict(cls, data, "spectrogram config")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _from_dict(cls, data: Any, what: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what} has unknown keys {unknown}; known keys are {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as err:  # e.g. a list where an int was expected, caught by no validator
        raise ConfigError(f"{what} is invalid ({err})") from None


SPECTROGRAM_PRESETS: dict[str, SpectrogramConfig] = {
    # 512 x 512, 5.94 s clips: the representation of the original project.
    "default": SpectrogramConfig(),
    # 128 x 128, 1.02 s clips at 16 kHz: CPU demos and quick training runs.
    "small": SpectrogramConfig(sample_rate=16000, n_fft=256, hop_length=128, n_frames=128),
    # 64 x 64, 0.50 s clips at 8 kHz: unit tests and notebook smoke runs.
    "tiny": SpectrogramConfig(sample_rate=8000, n_fft=128, hop_length=64, n_frames=64),
}


def spectrogram_preset(name: str) -> SpectrogramConfig:
    """Returns the named :class:`SpectrogramConfig` preset."""
    try:
        return SPECTROGRAM_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown spectrogram preset {name!r}; choose one of {sorted(SPECTROGRAM_PRESETS)}"
        ) from None
