"""Audio ↔ spectrogram images, both ways.

Forward: centred STFT (periodic Hann window of ``n_fft`` samples, zero padding), magnitude, the
Nyquist bin dropped, then the fixed dB mapping of :mod:`vae_tfp.config` to [0, 1]. Images are
``float32 [n_bins, n_frames, 1]`` with row 0 the lowest frequency (0 Hz) and column 0 the first
frame. :func:`spectrogram` (librosa/NumPy) and :func:`spectrogram_tf` (tf.signal, batched, usable
inside a model or tf.data) compute the same thing; a test holds them together.

Inverse: images → magnitudes (:func:`to_magnitude`) → a starting phase (:mod:`vae_tfp.audio.phase`:
phase-gradient heap integration by default) → fast Griffin-Lim with momentum (Perraudin et al.
2013): :func:`griffin_lim` (librosa's STFT, one clip) or :func:`griffin_lim_tf` (tf.signal, a
whole batch at once). The mapping clips at ``min_db``, so what lies below the
floor is lost: :mod:`vae_tfp.audio.metrics` measures what the representation itself costs.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ..config import SpectrogramConfig
from ..errors import ConfigError
from .phase import DEFAULT_PHASE_INIT, PHASE_INITS, initial_phase

DEFAULT_GRIFFIN_LIM_ITERS = 32
DEFAULT_MOMENTUM = 0.99
MAX_GRIFFIN_LIM_ITERS = 10_000


@dataclasses.dataclass(frozen=True)
class Inversion:
    """How an image becomes audio: a starting phase, then fast Griffin-Lim.

    Attributes:
        n_iter: Griffin-Lim iterations (0 = the starting phase alone).
        phase_init: The starting phase, ``"pghi"`` (phase-gradient heap integration), ``"random"``
            or ``"zeros"`` (:mod:`vae_tfp.audio.phase`).
        momentum: Fast Griffin-Lim momentum (Perraudin et al. 2013; 0 = classic Griffin-Lim).
    """

    n_iter: int = DEFAULT_GRIFFIN_LIM_ITERS
    phase_init: str = DEFAULT_PHASE_INIT
    momentum: float = DEFAULT_MOMENTUM

    def __post_init__(self) -> None:
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) \
                or not 0 <= self.n_iter <= MAX_GRIFFIN_LIM_ITERS:
            raise ConfigError(f"n_iter={self.n_iter!r} must be an integer in [0, {MAX_GRIFFIN_LIM_ITERS}]")
        if self.phase_init not in PHASE_INITS:
            raise ConfigError(f"phase_init={self.phase_init!r} must be one of {', '.join(PHASE_INITS)}")
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)) \
                or not math.isfinite(self.momentum) or not 0 <= self.momentum < 2:
            raise ConfigError(f"momentum={self.momentum!r} must be a number in [0, 2)")

    def describe(self) -> str:
        """One line for reports: ``"pghi start + 32 fast Griffin-Lim iterations"``."""
        return f"{self.phase_init} start + {self.n_iter} fast Griffin-Lim iterations"


DEFAULT_INVERSION = Inversion()
_PAD_MODE = "constant"  # zero padding for centred frames, in both the librosa and the TF path


# --- dB mapping -------------------------------------------------------------------------------

def magnitude_to_unit(magnitude: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """Maps STFT magnitudes to the [0, 1] image scale (fixed global mapping, see config)."""
    floor = 10.0 ** (config.min_db / 20.0)
    db = 20.0 * np.log10(np.maximum(magnitude / config.ref_magnitude, floor))
    return np.clip((db - config.min_db) / config.db_range, 0.0, 1.0).astype(np.float32)


def unit_to_db(spec: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """Maps image values in [0, 1] to dB relative to ``ref_amplitude`` (inverse of the mapping)."""
    return config.min_db + np.clip(spec, 0.0, 1.0) * config.db_range


def to_magnitude(spec: np.ndarray, config: SpectrogramConfig, *, with_nyquist: bool = True) -> np.ndarray:
    """Images → linear STFT magnitudes.

    Args:
        spec: float [..., n_bins, n_frames] or [..., n_bins, n_frames, 1] in [0, 1].
        config: The config that produced (or defines) the images.
        with_nyquist: Append a zero Nyquist row, giving ``n_fft // 2 + 1`` bins for an iSTFT.

    Returns:
        float32 [..., n_bins (+1), n_frames]. Values at the floor (0) become exact zeros.
    """
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim >= 3 and spec.shape[-1] == 1:
        spec = spec[..., 0]
    magnitude = config.ref_magnitude * 10.0 ** (unit_to_db(spec, config) / 20.0)
    magnitude = np.where(spec <= 0.0, 0.0, magnitude).astype(np.float32)
    if with_nyquist:
        pad = [(0, 0)] * (magnitude.ndim - 2) + [(0, 1), (0, 0)]
        magnitude = np.pad(magnitude, pad)
    return magnitude


def to_magnitude_tf(specs, config: SpectrogramConfig):
    """TensorFlow twin of :func:`to_magnitude`, batched and differentiable, in tf.signal's layout.

    Args:
        specs: float [batch, n_bins, n_frames(, 1)] images in [0, 1].
        config: The config that defines the images.

    Returns:
        float32 [batch, n_frames, n_fft // 2 + 1] magnitudes, the Nyquist bin 0; the floor (0) gives 0.
    """
    import tensorflow as tf

    specs = tf.cast(specs, tf.float32)
    if specs.shape.rank == 4:
        specs = specs[..., 0]
    db = config.min_db + tf.clip_by_value(specs, 0.0, 1.0) * config.db_range
    magnitude = tf.where(specs <= 0.0, 0.0, config.ref_magnitude * tf.pow(10.0, db / 20.0))
    return tf.transpose(tf.pad(magnitude, [[0, 0], [0, 1], [0, 0]]), [0, 2, 1])


# --- forward ----------------------------------------------------------------------------------

def stft_magnitude(audio: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """float [..., n] audio → float32 [..., n_fft // 2 + 1, frames] STFT magnitudes (librosa)."""
    import librosa

    return np.abs(
        librosa.stft(np.asarray(audio, np.float32), n_fft=config.n_fft, hop_length=config.hop_length,
                     window="hann", center=True, pad_mode=_PAD_MODE)
    ).astype(np.float32)


def spectrogram(audio: np.ndarray, config: SpectrogramConfig) -> np.ndarray:
    """One clip (or a batch) of audio → spectrogram image(s).

    Args:
        audio: float32 [clip_samples] or [batch, clip_samples] mono at ``config.sample_rate``.
            Other lengths give ``1 + len // hop_length`` frames.
        config: The spectrogram settings.

    Returns:
        float32 [n_bins, n_frames, 1] (or [batch, n_bins, n_frames, 1]) in [0, 1].
    """
    magnitude = stft_magnitude(audio, config)[..., : config.n_bins, :]
    return magnitude_to_unit(magnitude, config)[..., None]


def spectrogram_tf(audio, config: SpectrogramConfig):
    """TensorFlow twin of :func:`spectrogram`, batched and differentiable.

    Args:
        audio: float32 tensor [batch, samples].
        config: The spectrogram settings.

    Returns:
        float32 tensor [batch, n_bins, 1 + samples // hop_length, 1] in [0, 1].
    """
    import tensorflow as tf

    magnitude = _stft_tf(tf.convert_to_tensor(audio, tf.float32), config)
    magnitude = tf.transpose(tf.abs(magnitude), [0, 2, 1])[:, : config.n_bins, :]
    floor = 10.0 ** (config.min_db / 20.0)
    db = 20.0 * tf.math.log(tf.maximum(magnitude / config.ref_magnitude, floor)) / np.log(10.0)
    return tf.clip_by_value((db - config.min_db) / config.db_range, 0.0, 1.0)[..., None]


def _stft_tf(audio, config: SpectrogramConfig):
    """[batch, samples] → complex [batch, frames, n_fft // 2 + 1], centred like librosa."""
    import tensorflow as tf

    half = config.n_fft // 2
    padded = tf.pad(audio, [[0, 0], [half, half]])
    if config.n_fft % config.hop_length:
        return tf.signal.stft(padded, frame_length=config.n_fft, frame_step=config.hop_length,
                              fft_length=config.n_fft, window_fn=tf.signal.hann_window, pad_end=False)
    # tf.signal.stft's framing, without its gather: the gather's gradient (UnsortedSegmentSum) has no
    # deterministic GPU kernel, and stage 2's consistency term differentiates through this STFT
    n_fft, hop = config.n_fft, config.hop_length
    overlap = n_fft // hop
    n_frames = 1 + (tf.shape(padded)[1] - n_fft) // hop
    blocks = tf.reshape(padded[:, : (n_frames + overlap - 1) * hop], [tf.shape(padded)[0], n_frames + overlap - 1, hop])
    frames = tf.concat([blocks[:, i: i + n_frames] for i in range(overlap)], axis=2)
    return tf.signal.rfft(frames * tf.signal.hann_window(n_fft, dtype=frames.dtype), [n_fft])


def _istft_tf(stft, config: SpectrogramConfig, length: int):
    """complex [batch, frames, bins] → [batch, length] audio, undoing :func:`_stft_tf`."""
    import tensorflow as tf

    window_fn = tf.signal.inverse_stft_window_fn(config.hop_length, forward_window_fn=tf.signal.hann_window)
    audio = tf.signal.inverse_stft(stft, frame_length=config.n_fft, frame_step=config.hop_length,
                                   fft_length=config.n_fft, window_fn=window_fn)
    half = config.n_fft // 2
    return audio[:, half: half + length]


# --- inverse ----------------------------------------------------------------------------------

def griffin_lim(
    spec: np.ndarray,
    config: SpectrogramConfig,
    *,
    inversion: Inversion = DEFAULT_INVERSION,
    seed: int = 0,
) -> np.ndarray:
    """One spectrogram image → audio by fast Griffin-Lim (librosa's STFT and update).

    librosa's own ``griffinlim`` cannot start from a given phase: with ``init=None`` and a
    complex ``S`` it multiplies every iterate by ``S`` again, adding the starting phase on each
    iteration (librosa 0.11, ``angles *= S`` inside the loop). The loop here is librosa's, with
    the start taken from :func:`vae_tfp.audio.phase.initial_phase`; ``phase_init="random"`` gives
    librosa's ``griffinlim(init="random", random_state=seed)`` result.

    Args:
        spec: float [n_bins, n_frames(, 1)] in [0, 1].
        config: The spectrogram settings.
        inversion: The starting phase, iterations and momentum.
        seed: Seed of the random phases (deterministic output).

    Returns:
        float32 [(n_frames - 1) * hop_length] audio at ``config.sample_rate``.
    """
    import librosa

    magnitude = to_magnitude(spec, config)
    length = (magnitude.shape[-1] - 1) * config.hop_length
    stft = functools.partial(librosa.stft, n_fft=config.n_fft, hop_length=config.hop_length, window="hann",
                             center=True, pad_mode=_PAD_MODE)
    istft = functools.partial(librosa.istft, n_fft=config.n_fft, hop_length=config.hop_length, window="hann",
                              center=True, length=length)
    angles = np.exp(1j * initial_phase(magnitude, config, inversion.phase_init, seed=seed)).astype(np.complex64)
    rebuilt, momentum = None, inversion.momentum
    for _ in range(inversion.n_iter):
        previous, rebuilt = rebuilt, stft(istft(magnitude * angles))
        angles = rebuilt if previous is None else rebuilt - momentum / (1 + momentum) * previous
        angles = angles / (np.abs(angles) + np.finfo(np.float32).tiny)
    return istft(magnitude * angles).astype(np.float32)


def griffin_lim_tf(
    specs,
    config: SpectrogramConfig,
    *,
    inversion: Inversion = DEFAULT_INVERSION,
    seed: int = 0,
) -> np.ndarray:
    """A batch of spectrogram images → audio, all clips at once with tf.signal.

    The same fast Griffin-Lim update as :func:`griffin_lim`:
    ``angles = normalise(rebuilt - momentum / (1 + momentum) * previous)``, from the starting
    phase of :func:`vae_tfp.audio.phase.initial_phase` (computed per clip in NumPy).

    Args:
        specs: float [batch, n_bins, n_frames(, 1)] in [0, 1] (NumPy or tensor).
        config: The spectrogram settings.
        inversion: The starting phase, iterations and momentum.
        seed: Seed of the random phases.

    Returns:
        float32 [batch, (n_frames - 1) * hop_length] audio.
    """
    import tensorflow as tf

    magnitude = to_magnitude(np.asarray(specs), config)  # [batch, bins + 1, frames]
    if magnitude.ndim == 2:
        magnitude = magnitude[None]
    length = (magnitude.shape[-1] - 1) * config.hop_length
    phase = initial_phase(magnitude, config, inversion.phase_init, seed=seed).astype(np.float32)
    run = _griffin_lim_fn(config, inversion.n_iter, float(inversion.momentum), int(length))
    return run(tf.constant(np.transpose(magnitude, (0, 2, 1))), tf.constant(np.transpose(phase, (0, 2, 1)))).numpy()


@functools.lru_cache(maxsize=16)
def _griffin_lim_fn(config, n_iter, momentum, length):
    """A traced Griffin-Lim for one setting (cached: tracing costs more than a small batch)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(magnitude, phase):
        mag = tf.cast(magnitude, tf.complex64)  # [batch, frames, bins]
        angles = fast_griffin_lim_tf(mag, phase, config, n_iter=n_iter, momentum=momentum, length=length)
        return _istft_tf(mag * angles, config, length)

    return run


def fast_griffin_lim_tf(magnitude, phase, config: SpectrogramConfig, *, n_iter: int, momentum: float, length: int):
    """The phase after ``n_iter`` fast Griffin-Lim iterations from ``phase``, as unit complex numbers.

    Args:
        magnitude: complex64 [batch, frames, n_fft // 2 + 1] magnitudes (tf.signal's layout).
        phase: float32 starting phases, the same shape.
        config: The STFT settings.
        n_iter, momentum: As :class:`Inversion`'s.
        length: Samples of the signal the frames span.
    """
    import tensorflow as tf

    alpha = tf.cast(momentum / (1.0 + momentum), tf.complex64)

    def step(i, angles, previous):
        rebuilt = _stft_tf(_istft_tf(magnitude * angles, config, length), config)
        angles = rebuilt - alpha * previous
        return i + 1, angles / tf.cast(tf.abs(angles) + 1e-16, tf.complex64), rebuilt

    # An explicit loop, not autograph's: this also runs in code autograph does not convert (a replica's
    # step). Its trip count is static (maximum_iterations): under a gradient tape the loop records
    # accumulators, which XLA compiles only at a fixed size (sharpen --jit with the consistency term).
    angles = tf.complex(tf.cos(phase), tf.sin(phase))
    _, angles, _ = tf.while_loop(lambda i, *_: i < n_iter, step, (tf.constant(0), angles, tf.zeros_like(angles)),
                                 maximum_iterations=n_iter)
    return angles
