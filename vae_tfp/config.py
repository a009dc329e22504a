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


# --- the model --------------------------------------------------------------------------------

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian", "laplace")
MAX_LATENT_DIM = 4096
MAX_CHANNELS = 4096
MAX_PARAMETERS = 500_000_000


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the encoder, decoder and prior (JSON round-trippable).

    Attributes:
        name: Preset name, for humans.
        input_shape: (height, width, 1) of the spectrogram images: (n_bins, n_frames, 1).
        latent_dim: Dimensions of z.
        num_modes: Components of the Gaussian-mixture prior.
        encoder: Conv blocks, each ``[filters, kernel, stride, batch_norm, max_pool]``
            (ReLU; ``max_pool`` adds a 2x2 max-pool after the block).
        decoder_shape: (height, width, channels) the Dense layer's output is reshaped to.
        decoder: Blocks, each ``[filters, kernel, upsample, batch_norm]``: UpSampling2D(upsample)
            then Conv2D(filters, kernel, ReLU), then optional batch norm. ``upsample`` is one factor
            for both axes or ``[frequency, time]`` factors (as Keras' ``UpSampling2D(size)``).
        output_upsample: The final linear Conv2D predicts ``fh * fw`` values per position,
            rearranged by depth-to-space into an image ``fh`` times taller and ``fw`` times wider
            (a sub-pixel convolution; 1 = a plain Conv2D at full size, as in ``seed``). One factor
            for both axes or ``[frequency, time]`` factors.
        likelihood: One of ``bernoulli`` (logits, IndependentBernoulli), ``continuous_bernoulli``,
            ``gaussian`` or ``laplace`` (learned per-pixel scale).
        beta: Weight of the KL term after warm-up.
        kl_warmup_steps: Optimizer steps over which the KL weight rises linearly from 0 to beta.
        free_bits: Free bits per latent dimension (Kingma et al. 2016): the batch-mean KL of each
            posterior marginal below this many nats is not charged to the encoder (0 = off). The
            prior is trained by the codes' cross-entropy whatever this is.
        free_nats: Legacy per-example floor, ``max(KL, free_nats)`` (0 = off). It gives no
            gradient below the floor, so the earlier demo model's KL sat on it for 70 epochs;
            kept so that old model folders load and train as they did. Prefer ``free_bits``.
        learning_rate: Adam learning rate.
        prior_init_scale: Std of the random initial prior means.
        posterior_init_scale: Initial std of the posterior q(z|x) (the bias of its scale's
            diagonal); 0 keeps Keras' zero bias, a std of softplus(0) = 0.69 as in ``seed``.
            A small value starts training close to a plain autoencoder.
    """

    name: str = "custom"
    input_shape: tuple = (512, 512, 1)
    latent_dim: int = 32
    num_modes: int = 10
    encoder: tuple = ()
    decoder_shape: tuple = (4, 4, 256)
    decoder: tuple = ()
    output_upsample: int | tuple = 1
    likelihood: str = "bernoulli"
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    free_nats: float = 0.0
    learning_rate: float = 1e-3
    prior_init_scale: float = 1.0
    posterior_init_scale: float = 0.0

    def __post_init__(self) -> None:
        # Normalise JSON lists to tuples so equal configs compare and hash equal.
        object.__setattr__(self, "input_shape", _int_tuple(self.input_shape, "input_shape", 3))
        object.__setattr__(self, "decoder_shape", _int_tuple(self.decoder_shape, "decoder_shape", 3))
        object.__setattr__(self, "encoder", tuple(_block(b, "encoder", 5) for b in self.encoder))
        object.__setattr__(self, "decoder", tuple(_block(b, "decoder", 4) for b in self.decoder))
        h, w, c = self.input_shape
        if c != 1 or h * w > MAX_SPECTROGRAM_PIXELS:
            raise ConfigError(f"input_shape={self.input_shape} must be (height, width, 1) with at most "
                              f"{MAX_SPECTROGRAM_PIXELS} pixels")
        for name, top in (("latent_dim", MAX_LATENT_DIM), ("num_modes", 1024)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ConfigError(f"{name}={v!r} must be an integer in [1, {top}]")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood={self.likelihood!r} must be one of {LIKELIHOODS}")
        for name in ("beta", "free_bits", "free_nats", "learning_rate", "prior_init_scale", "posterior_init_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{name}={v!r} must be a finite non-negative number")
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ConfigError(f"kl_warmup_steps={self.kl_warmup_steps!r} must be a non-negative integer")
        if isinstance(self.output_upsample, list):
            object.__setattr__(self, "output_upsample", tuple(self.output_upsample))
        if not _valid_factors(self.output_upsample, 64):
            raise ConfigError(f"output_upsample={self.output_upsample!r} must be an integer in [1, 64] or a "
                              f"[frequency, time] pair of them")
        if not self.encoder or not self.decoder:
            raise ConfigError("encoder and decoder need at least one block each")
        # The decoder must land exactly on the input size.
        dh, dw, _ = self.decoder_shape
        for filters, kernel, up, bn in self.decoder:
            uh, uw = upsample_factors(up)
            dh, dw = dh * uh, dw * uw
        fh, fw = upsample_factors(self.output_upsample)
        dh, dw = dh * fh, dw * fw
        if (dh, dw) != (h, w):
            raise ConfigError(f"decoder output {dh}x{dw} does not match input_shape {h}x{w}")
        eh, ew = h, w
        for filters, kernel, stride, bn, pool in self.encoder:
            eh, ew = -(-eh // stride), -(-ew // stride)
            if pool:
                eh, ew = eh // 2, ew // 2
        if eh < 1 or ew < 1:
            raise ConfigError(f"encoder downsamples {h}x{w} below 1x1")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(f"model would have ~{self.parameter_estimate():.3g} parameters, over the limit "
                              f"of {MAX_PARAMETERS:.0e}")

    def output_channels(self) -> int:
        """Parameters per pixel of the likelihood: 2 (location, scale) or 1 (logits)."""
        return 2 if self.likelihood in ("gaussian", "laplace") else 1

    def encoder_output_shape(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        for filters, kernel, stride, bn, pool in self.encoder:
            h, w, c = -(-h // stride), -(-w // stride), filters
            if pool:
                h, w = h // 2, w // 2
        return h, w, c

    def parameter_estimate(self) -> int:
        """Parameter count from the config alone (checked against Keras in the tests)."""
        n, c_in = 0, self.input_shape[2]
        for filters, kernel, stride, bn, pool in self.encoder:
            n += kernel * kernel * c_in * filters + filters + (4 * filters if bn else 0)
            c_in = filters
        h, w, c = self.encoder_output_shape()
        d = self.latent_dim
        n += (h * w * c + 1) * (d + d * (d + 1) // 2)
        n += (d + 1) * math.prod(self.decoder_shape)
        c_in = self.decoder_shape[2]
        for filters, kernel, up, bn in self.decoder:
            n += kernel * kernel * c_in * filters + filters + (4 * filters if bn else 0)
            c_in = filters
        out = self.output_channels() * math.prod(upsample_factors(self.output_upsample))
        n += 3 * 3 * c_in * out + out
        n += 2 * self.num_modes * d + self.num_modes  # prior means, scales, mixture logits
        return n

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_shape"], d["decoder_shape"] = list(self.input_shape), list(self.decoder_shape)
        d["encoder"] = [list(b) for b in self.encoder]
        d["decoder"] = [[f, k, _json_factors(up), bn] for f, k, up, bn in self.decoder]
        d["output_upsample"] = _json_factors(self.output_upsample)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data, "model config")

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def _int_tuple(value, name: str, n: int) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != n or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1_000_000 for v in value):
        raise ConfigError(f"{name}={value!r} must be {n} positive integers")
    return tuple(value)


def upsample_factors(up) -> tuple[int, int]:
    """Upsampling as (frequency, time) factors: ``2`` → (2, 2), ``[2, 1]`` → (2, 1)."""
    return (up, up) if isinstance(up, int) else tuple(up)


def _valid_factors(up, top: int) -> bool:
    values = list(up) if isinstance(up, tuple) and len(up) == 2 else [up]
    return all(not isinstance(v, bool) and isinstance(v, int) and 1 <= v <= top for v in values)


def _json_factors(up):
    return list(up) if isinstance(up, tuple) else up


def _block(block, where: str, n: int) -> tuple:
    if not isinstance(block, (list, tuple)) or len(block) != n:
        raise ConfigError(f"{where} block {block!r} must have {n} entries")
    block = list(block)
    if where == "decoder" and isinstance(block[2], list):  # [frequency, time] upsampling
        block[2] = tuple(block[2])
    ints, flags = block[:2], block[3:]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in ints) or ints[0] > MAX_CHANNELS \
            or ints[1] > 15 or not _valid_factors(block[2], 8) \
            or (where == "encoder" and not isinstance(block[2], int)):
        raise ConfigError(f"{where} block {block!r}: filters (<= {MAX_CHANNELS}), kernel (<= 15) and "
                          f"stride/upsample (<= 8) must be positive integers")
    if any(not isinstance(v, bool) for v in flags):
        raise ConfigError(f"{where} block {block!r}: batch_norm / max_pool must be true or false")
    return tuple(block)


def _seed_preset() -> ModelConfig:
    """The original student architecture, kept exactly as the reference."""
    return ModelConfig(
        name="seed", input_shape=(512, 512, 1), latent_dim=100, num_modes=10,
        encoder=((32, 4, 2, True, False), (64, 4, 2, True, True), (128, 4, 2, True, False),
                 (256, 4, 2, True, False), (256, 4, 2, True, False)),
        decoder_shape=(8, 8, 256),
        decoder=((128, 3, 2, True), (64, 3, 2, True), (32, 3, 2, False), (128, 3, 2, False),
                 (64, 3, 2, False), (32, 3, 2, False)),
        likelihood="bernoulli", learning_rate=5e-4)


def _default_preset() -> ModelConfig:
    """512x512 at a fraction of the seed's cost: frequency resolution first, time by sub-pixel.

    What recon_gain needs, measured on the test split of the embedded notes: the images are
    nearly constant along time (averaging 128-frame blocks keeps recon_gain 6.2) but not along
    frequency (averaging 8-bin blocks leaves 2.1; 4x4 blocks, i.e. a perfect 128x128 image, 3.6).
    So the decoder's Dense layer writes 64 frequency rows x 8 time columns, its UpSampling2D +
    Conv2D blocks reach all 512 frequency bins while time stays at 16 columns, and its linear
    output conv is sub-pixel along time: 32 frames per position (``output_upsample=(1, 32)``).

    The encoder starts with a 4x4 stride-4 "patchify" conv: on a 2-core AVX2 CPU
    (benchmarks/results/conv_layers.json) convs with few channels at 512x512 ran at 2-16 % of the
    fp32 peak, 64-256-channel convs at 55-90 %.

    The posterior starts narrow (std 0.05, ``posterior_init_scale``), 300/32 nats of KL per latent
    dimension are free for the encoder (``free_bits``; the prior keeps learning from the codes) and
    the KL weight warms up over 1500 steps. The prior has 64 components: refitted to the demo
    model's codes, 64 gave FID 211 where 10 gave 317 (README "Generation"). A decoder given distinct
    codes learns sharp harmonics fast (train recon_gain 3.57 after 15 epochs from fixed random
    codes, 1.83 from the posterior means of the previous default; ``benchmarks/decoder_fit.py``):
    from a wide posterior the codes of neighbouring pitches overlap, and with a narrow one and no
    free nats the KL term removed the information (421 → 145 nats in 3 epochs) before the
    decoder had learned to use it.

    No batch norm: with few steps per epoch its moving statistics lag the batch statistics and
    held-out reconstructions were no better than the dataset mean (measured on ``small``:
    validation recon_gain 1.07 at epoch 4 with batch norm, 2.15 at epoch 17 without).
    Adam at 2e-3: after 5 epochs validation neg-ELBO 25 772 nats vs 26 852 at 1e-3.
    """
    return ModelConfig(
        name="default", input_shape=(512, 512, 1), latent_dim=32,
        encoder=((32, 4, 4, False, False), (64, 4, 2, False, False), (128, 4, 2, False, False),
                 (128, 4, 2, False, False), (256, 4, 2, False, False), (256, 4, 2, False, False)),
        decoder_shape=(64, 8, 32),
        decoder=((128, 3, (2, 1), False), (128, 3, (2, 2), False), (64, 3, (2, 1), False)),
        output_upsample=(1, 32), likelihood="bernoulli", kl_warmup_steps=1500, learning_rate=2e-3,
        posterior_init_scale=0.05, free_bits=300.0 / 32, num_modes=64)


def _small_preset() -> ModelConfig:
    """128x128 (spectrogram preset ``small``): quick CPU runs."""
    return ModelConfig(
        name="small", input_shape=(128, 128, 1), latent_dim=16, num_modes=8,
        encoder=((16, 4, 2, False, False), (32, 4, 2, False, False), (64, 4, 2, False, False),
                 (64, 4, 2, False, False), (128, 4, 2, False, False)),
        decoder_shape=(4, 4, 128),
        decoder=((128, 3, 2, False), (64, 3, 2, False), (32, 3, 2, False), (16, 3, 2, False), (8, 3, 2, False)),
        likelihood="bernoulli", kl_warmup_steps=300, learning_rate=1e-3)


def _tiny_preset() -> ModelConfig:
    """64x64 (spectrogram preset ``tiny``): unit tests and notebook smoke runs."""
    return ModelConfig(
        name="tiny", input_shape=(64, 64, 1), latent_dim=4, num_modes=3,
        encoder=((8, 4, 2, False, False), (16, 4, 2, False, False), (16, 4, 2, False, False)),
        decoder_shape=(8, 8, 16),
        decoder=((16, 3, 2, False), (8, 3, 2, False), (8, 3, 2, False)),
        likelihood="bernoulli", kl_warmup_steps=10, learning_rate=2e-3)


MODEL_PRESETS: dict[str, ModelConfig] = {
    "seed": _seed_preset(), "default": _default_preset(), "small": _small_preset(), "tiny": _tiny_preset(),
}
# The spectrogram preset each model preset is built for.
MODEL_SPECTROGRAM = {"seed": "default", "default": "default", "small": "small", "tiny": "tiny"}


def model_spectrogram(preset: str) -> SpectrogramConfig:
    """The spectrogram preset a model preset is built for (``default`` → 512 x 512, ``small`` → 128 x 128)."""
    model_preset(preset)  # a clear error for an unknown name
    return spectrogram_preset(MODEL_SPECTROGRAM[preset])


def spectrogram_preset_name(config: SpectrogramConfig) -> str | None:
    """The name of the preset equal to ``config``, or None for a custom config."""
    return next((name for name, preset in SPECTROGRAM_PRESETS.items() if preset == config), None)


def model_preset(name: str) -> ModelConfig:
    """Returns the named :class:`ModelConfig` preset."""
    try:
        return MODEL_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}") from None
