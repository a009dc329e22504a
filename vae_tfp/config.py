"""Configuration: the single source of truth for every STFT number and every architecture choice.

A :class:`SpectrogramConfig` fixes how audio becomes a spectrogram image and back. Every function
that touches audio or spectrograms takes one; no STFT number is written anywhere else. A
:class:`ModelConfig` holds the spectrogram it is built for, and derives its input shape from it.

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
from typing import Any, Mapping, NamedTuple

from .errors import ConfigError

# Refuse configurations whose arrays could not sensibly be allocated: a tampered config must fail
# here, before any large allocation.
MAX_SPECTROGRAM_PIXELS = 4096 * 4096
MAX_SAMPLE_RATE = 384_000
DEFAULT_SAMPLE_RATE = 22050  # the default preset's, and the embedded audio's rendering rate


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

    sample_rate: int = DEFAULT_SAMPLE_RATE
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

class EncoderBlock(NamedTuple):
    """One encoder layer: Conv2D(filters, kernel, strides=stride, ReLU), optional batch norm, optional
    2x2 max-pool. ``stride`` is one factor for both axes or ``(frequency, time)`` factors. In JSON a
    block is the list ``[filters, kernel, stride, batch_norm, max_pool]``."""

    filters: int
    kernel: int = 4
    stride: int | tuple[int, int] = 2
    batch_norm: bool = False
    max_pool: bool = False


class DecoderBlock(NamedTuple):
    """One decoder layer: nearest UpSampling2D(upsample), Conv2D(filters, kernel, ReLU), optional batch
    norm. ``upsample`` is one factor for both axes or ``(frequency, time)`` factors (as Keras'
    ``UpSampling2D(size)``). In JSON a block is the list ``[filters, kernel, upsample, batch_norm]``."""

    filters: int
    kernel: int = 3
    upsample: int | tuple[int, int] = 2
    batch_norm: bool = False


LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian", "laplace")
LR_SCHEDULES = ("constant", "cosine")  # train(lr_schedule=...): vae_tfp.model.networks.make_optimizer
MAX_LATENT_DIM = 4096
MAX_CHANNELS = 4096
MAX_PARAMETERS = 500_000_000
STRATEGIES = ("one", "mirrored", "multiworker")
CONDITIONAL_METHODS = ("em", "components")  # vae_tfp.model.conditional; the first is the default  # tf.distribute for training (vae_tfp.model.devices.make_strategy)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the encoder, decoder and prior (JSON round-trippable).

    Attributes:
        name: Preset name, for humans.
        spectrogram: The :class:`SpectrogramConfig` the model is built for; :attr:`input_shape`
            is its image shape. In JSON its settings, or the name of a spectrogram preset.
        latent_dim: Dimensions of z.
        latent_steps: 1 = one code for the whole clip (the conv features flattened into a Dense
            posterior layer). T > 1 = a latent *sequence* along time: T steps of
            ``latent_dim / T`` dimensions, z flattened step-major. The encoder's output is then
            T columns wide and each column gets its own posterior step (a Dense layer shared
            across steps, a diagonal Gaussian: ``MultivariateNormalDiag``); the decoder's grid
            ``decoder_shape`` is T columns wide and each step's code fills its own column. The
            prior stays one Gaussian mixture over the whole flattened sequence.
        num_modes: Components of the Gaussian-mixture prior.
        encoder: :class:`EncoderBlock` s (JSON: ``[filters, kernel, stride, batch_norm, max_pool]``).
        decoder_shape: (height, width, channels) the Dense layer's output is reshaped to.
        decoder: :class:`DecoderBlock` s (JSON: ``[filters, kernel, upsample, batch_norm]``).
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
        learning_rate: Adam learning rate.
        prior_init_scale: Std of the random initial prior means.
        posterior_init_scale: Initial std of the posterior q(z|x) (the bias of its scale's
            diagonal); 0 keeps Keras' zero bias, a std of softplus(0) = 0.69 as in ``seed``.
            A small value starts training close to a plain autoencoder.
    """

    name: str = "custom"
    spectrogram: SpectrogramConfig = SpectrogramConfig()
    latent_dim: int = 32
    latent_steps: int = 1
    num_modes: int = 10
    encoder: tuple = ()
    decoder_shape: tuple = (4, 4, 256)
    decoder: tuple = ()
    output_upsample: int | tuple = 1
    likelihood: str = "bernoulli"
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    learning_rate: float = 1e-3
    prior_init_scale: float = 1.0
    posterior_init_scale: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.spectrogram, str):
            object.__setattr__(self, "spectrogram", spectrogram_preset(self.spectrogram))
        elif isinstance(self.spectrogram, Mapping):
            object.__setattr__(self, "spectrogram", SpectrogramConfig.from_dict(self.spectrogram))
        elif not isinstance(self.spectrogram, SpectrogramConfig):
            raise ConfigError(f"spectrogram={self.spectrogram!r} must be a SpectrogramConfig, its settings or a "
                              f"spectrogram preset name ({', '.join(sorted(SPECTROGRAM_PRESETS))})")
        # Normalise JSON lists to tuples so equal configs compare and hash equal.
        object.__setattr__(self, "decoder_shape", _int_tuple(self.decoder_shape, "decoder_shape", 3))
        object.__setattr__(self, "encoder", tuple(_block(b, EncoderBlock) for b in self.encoder))
        object.__setattr__(self, "decoder", tuple(_block(b, DecoderBlock) for b in self.decoder))
        h, w, _ = self.input_shape
        for name, top in (("latent_dim", MAX_LATENT_DIM), ("latent_steps", MAX_LATENT_DIM), ("num_modes", 1024)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ConfigError(f"{name}={v!r} must be an integer in [1, {top}]")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood={self.likelihood!r} must be one of {LIKELIHOODS}")
        for name in ("beta", "free_bits", "learning_rate", "prior_init_scale", "posterior_init_scale"):
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
        _, (eh, ew, _), (dh, dw) = self._walk()
        if (dh, dw) != (h, w):  # the decoder must land exactly on the input size
            raise ConfigError(f"decoder output {dh}x{dw} does not match the spectrogram's {h}x{w} "
                              f"(n_fft={self.spectrogram.n_fft}, n_frames={self.spectrogram.n_frames})")
        if eh < 1 or ew < 1:
            raise ConfigError(f"encoder downsamples {h}x{w} below 1x1")
        if self.latent_steps > 1:
            t = self.latent_steps
            if self.latent_dim % t:
                raise ConfigError(f"latent_dim={self.latent_dim} must be a multiple of latent_steps={t}")
            if ew != t or self.decoder_shape[1] != t:
                raise ConfigError(f"latent_steps={t} needs an encoder output and a decoder_shape {t} columns wide "
                                  f"(got {ew} and {self.decoder_shape[1]})")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(f"model would have ~{self.parameter_estimate():.3g} parameters, over the limit "
                              f"of {MAX_PARAMETERS:.0e}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, 1) of the images: the spectrogram's ``(n_bins, n_frames, 1)``."""
        return self.spectrogram.shape

    def for_spectrogram(self, spectrogram: SpectrogramConfig) -> "ModelConfig":
        """This architecture built for another spectrogram (e.g. a dataset's), checked to fit it."""
        return self if spectrogram == self.spectrogram else self.replace(spectrogram=spectrogram)

    def output_channels(self) -> int:
        """Parameters per pixel of the likelihood: 2 (location, scale) or 1 (logits)."""
        return 2 if self.likelihood in ("gaussian", "laplace") else 1

    def conv_layers(self) -> list[dict[str, Any]]:
        """Every Conv2D of the encoder and decoder with the shape it runs at, in order.

        Returns:
            Dicts with ``name``, ``in_hw`` (input height, width before upsampling), ``c_in``,
            ``c_out``, ``kernel``, ``stride``, ``upsample`` (nearest upsampling before the conv),
            ``depth_to_space`` (after it), ``batch_norm`` (after it), ``out_hw`` (the conv's output
            height, width) and ``macs`` per example.
        """
        return self._walk()[0]

    def encoder_output_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the conv stack's output, flattened into the posterior's Dense layer."""
        return self._walk()[1]

    def _walk(self) -> tuple[list[dict[str, Any]], tuple[int, int, int], tuple[int, int]]:
        """The one walk through the architecture's shapes: ``(conv layers, encoder output shape,
        decoder output (height, width))``; validation, parameter and FLOP counts all read it."""
        layers = []

        def add(name, h, w, c_in, c_out, kernel, stride=1, upsample=1, depth_to_space=1, batch_norm=False):
            (uh, uw), (sh, sw) = upsample_factors(upsample), upsample_factors(stride)
            oh, ow = -(-h * uh // sh), -(-w * uw // sw)
            layers.append({"name": name, "in_hw": (h, w), "c_in": c_in, "c_out": c_out, "kernel": kernel,
                           "stride": stride, "upsample": upsample, "depth_to_space": depth_to_space,
                           "batch_norm": batch_norm, "out_hw": (oh, ow),
                           "macs": oh * ow * kernel * kernel * c_in * c_out})
            return oh, ow

        h, w, c = self.input_shape
        for i, b in enumerate(self.encoder):
            h, w = add(f"enc_conv{i}", h, w, c, b.filters, b.kernel, stride=b.stride, batch_norm=b.batch_norm)
            c = b.filters
            if b.max_pool:
                h, w = h // 2, w // 2
        encoder_output = (h, w, c)
        h, w, c = self.decoder_shape
        for i, b in enumerate(self.decoder):
            h, w = add(f"dec_conv{i}", h, w, c, b.filters, b.kernel, upsample=b.upsample, batch_norm=b.batch_norm)
            c = b.filters
        f = self.output_upsample
        h, w = add("dec_params", h, w, c, self.output_channels() * math.prod(upsample_factors(f)), 3, depth_to_space=f)
        fh, fw = upsample_factors(f)
        return layers, encoder_output, (h * fh, w * fw)

    @property
    def step_dim(self) -> int:
        """Dimensions per latent step: ``latent_dim / latent_steps`` (all of them for one global code)."""
        return self.latent_dim // self.latent_steps

    def dense_layers(self) -> dict[str, tuple[int, int, int]]:
        """The two Dense layers as ``(inputs, outputs, applications per example)``: ``enc_params``
        (conv features → posterior parameters) and ``dec_dense`` (z → the decoder's grid); with a
        latent sequence each is applied once per step."""
        (h, w, c), d, t = self.encoder_output_shape(), self.step_dim, self.latent_steps
        if t == 1:
            return {"enc_params": (h * w * c, d + d * (d + 1) // 2, 1),  # loc and scale_tril
                    "dec_dense": (d, math.prod(self.decoder_shape), 1)}
        dh, _, dc = self.decoder_shape
        return {"enc_params": (h * c, 2 * d, t), "dec_dense": (d, dh * dc, t)}  # per step: loc and scale_diag

    def parameter_estimate(self) -> int:
        """Parameter count from the config alone (:func:`vae_tfp.model.cost.parameter_count`)."""
        from .model.cost import parameter_count

        return parameter_count(self)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["decoder_shape"] = list(self.decoder_shape)
        d["encoder"] = [[b.filters, b.kernel, _json_factors(b.stride), b.batch_norm, b.max_pool] for b in self.encoder]
        d["decoder"] = [[b.filters, b.kernel, _json_factors(b.upsample), b.batch_norm] for b in self.decoder]
        d["output_upsample"] = _json_factors(self.output_upsample)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        if isinstance(data, Mapping) and "input_shape" in data:
            raise ConfigError('model config has "input_shape"; a model config names its spectrogram instead '
                              '("spectrogram": a preset name or its settings), and the shape follows from it')
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


def _block(block, kind):
    """An :class:`EncoderBlock` / :class:`DecoderBlock` from itself or its JSON list, checked."""
    where, n = ("encoder" if kind is EncoderBlock else "decoder"), len(kind._fields)
    if not isinstance(block, (list, tuple)) or len(block) != n:
        raise ConfigError(f"{where} block {block!r} must have {n} entries ({', '.join(kind._fields)})")
    block = list(block)
    if isinstance(block[2], list):  # [frequency, time] stride or upsampling
        block[2] = tuple(block[2])
    ints, flags = block[:2], block[3:]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in ints) or ints[0] > MAX_CHANNELS \
            or ints[1] > 15 or not _valid_factors(block[2], 8):
        raise ConfigError(f"{where} block {block!r}: filters (<= {MAX_CHANNELS}), kernel (<= 15) and "
                          f"stride/upsample (<= 8) must be positive integers")
    if any(not isinstance(v, bool) for v in flags):
        raise ConfigError(f"{where} block {block!r}: batch_norm / max_pool must be true or false")
    return kind(*block)


def _seed_preset() -> ModelConfig:
    """The original student architecture, kept exactly as the reference."""
    return ModelConfig(
        name="seed", spectrogram=SPECTROGRAM_PRESETS["default"], latent_dim=100, num_modes=10,
        encoder=(EncoderBlock(32, batch_norm=True), EncoderBlock(64, batch_norm=True, max_pool=True),
                 EncoderBlock(128, batch_norm=True), EncoderBlock(256, batch_norm=True),
                 EncoderBlock(256, batch_norm=True)),
        decoder_shape=(8, 8, 256),
        decoder=(DecoderBlock(128, batch_norm=True), DecoderBlock(64, batch_norm=True), DecoderBlock(32),
                 DecoderBlock(128), DecoderBlock(64), DecoderBlock(32)),
        likelihood="bernoulli", learning_rate=5e-4)


def _default_preset() -> ModelConfig:
    """512x512 at a fraction of the seed's cost: frequency resolution first, time by sub-pixel.

    A 4x4 stride-4 stem and stride-2 convs down to 4x4x256; a decoder that upsamples frequency
    to all 512 bins while time stays at 16 columns, then a sub-pixel output of 32 frames per
    position; no batch norm; a narrow initial posterior, free bits per dimension, a KL warm-up
    and 64 prior components. The measurements behind each choice are in docs/experiments.md ("The model").
    """
    return ModelConfig(
        name="default", spectrogram=SPECTROGRAM_PRESETS["default"], latent_dim=32,
        encoder=(EncoderBlock(32, stride=4), EncoderBlock(64), EncoderBlock(128), EncoderBlock(128),
                 EncoderBlock(256), EncoderBlock(256)),
        decoder_shape=(64, 8, 32),
        decoder=(DecoderBlock(128, upsample=(2, 1)), DecoderBlock(128, upsample=(2, 2)),
                 DecoderBlock(64, upsample=(2, 1))),
        output_upsample=(1, 32), likelihood="bernoulli", kl_warmup_steps=1500, learning_rate=2e-3,
        posterior_init_scale=0.05, free_bits=300.0 / 32, num_modes=64)


def _music_preset() -> ModelConfig:
    """512x512 for music: a latent *sequence* of 64 steps (one per 93 ms) instead of one code per clip.

    One global code per clip drew spectral-envelope smears on real recordings (no onsets), with
    any latent size, because a pixel-wise likelihood's gradient is dominated by the envelope. Here
    the encoder keeps 64 columns along time while it halves frequency down to 4 rows; each column
    gets 8 latent dimensions (512 in all, free bits 1 nat each); the decoder starts from an
    8 x 64 grid, one column per step, and upsamples to 64 x 256 positions, each predicting an
    8-bin x 2-frame patch. The prior stays one 64-component Gaussian mixture over the whole
    flattened sequence. The measurements are in docs/experiments.md ("Music").
    """
    return ModelConfig(
        name="music", spectrogram=SPECTROGRAM_PRESETS["default"], latent_dim=512, latent_steps=64,
        encoder=(EncoderBlock(32, stride=4), EncoderBlock(64), EncoderBlock(128, stride=(2, 1)),
                 EncoderBlock(128, stride=(2, 1)), EncoderBlock(128, stride=(2, 1)),
                 EncoderBlock(128, stride=(2, 1))),
        decoder_shape=(8, 64, 64),
        decoder=(DecoderBlock(128, upsample=(2, 2)), DecoderBlock(96, upsample=(2, 1)),
                 DecoderBlock(48, upsample=(2, 2))),
        output_upsample=(8, 2), likelihood="bernoulli", kl_warmup_steps=500, learning_rate=1e-3,
        posterior_init_scale=0.05, free_bits=1.0, num_modes=64)


def _small_preset() -> ModelConfig:
    """128x128 (spectrogram preset ``small``): quick CPU runs."""
    return ModelConfig(
        name="small", spectrogram=SPECTROGRAM_PRESETS["small"], latent_dim=16, num_modes=8,
        encoder=(EncoderBlock(16), EncoderBlock(32), EncoderBlock(64), EncoderBlock(64), EncoderBlock(128)),
        decoder_shape=(4, 4, 128),
        decoder=(DecoderBlock(128), DecoderBlock(64), DecoderBlock(32), DecoderBlock(16), DecoderBlock(8)),
        likelihood="bernoulli", kl_warmup_steps=300, learning_rate=1e-3)


def _tiny_preset() -> ModelConfig:
    """64x64 (spectrogram preset ``tiny``): unit tests and notebook smoke runs."""
    return ModelConfig(
        name="tiny", spectrogram=SPECTROGRAM_PRESETS["tiny"], latent_dim=4, num_modes=3,
        encoder=(EncoderBlock(8), EncoderBlock(16), EncoderBlock(16)),
        decoder_shape=(8, 8, 16),
        decoder=(DecoderBlock(16), DecoderBlock(8), DecoderBlock(8)),
        likelihood="bernoulli", kl_warmup_steps=10, learning_rate=2e-3)


MODEL_PRESETS: dict[str, ModelConfig] = {
    "seed": _seed_preset(), "default": _default_preset(), "music": _music_preset(), "small": _small_preset(),
    "tiny": _tiny_preset(),
}


ADVERSARIAL_LOSSES = ("hinge", "lsgan")


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """The second training stage (:mod:`vae_tfp.model.adversarial`): the decoder fine-tuned against
    a multi-scale patch discriminator, encoder and prior frozen. JSON round-trippable; a model
    folder sharpened by it records the config it was trained with.

    Attributes:
        scales: Discriminator scales: the image, then each average-pooled by 2 again (MelGAN).
        filters: Channels of each scale's first conv (doubled per stride-2 conv, at most 4x).
        layers: Stride-2 4x4 convs per scale before the two 3x3 convs (the last gives patch logits).
        loss: ``hinge`` (Lim & Ye 2017, as in VQGAN) or ``lsgan`` (least squares, Mao et al. 2017,
            as HiFi-GAN).
        adversarial_weight: Weight of the generator's adversarial term (posterior and prior fakes).
        feature_weight: Weight of feature matching: the L1 distance of the discriminator's hidden
            features of a real clip and of its reconstruction (MelGAN / HiFi-GAN).
        recon_weight: Weight of the anchor, the reconstruction NLL in nats per pixel.
        learning_rate: Adam's for the decoder (beta_1 0.5, beta_2 0.9): small, as the decoder is
            trained already (at 1e-3 the demo model's validation recon_gain fell 4.1 → 2.6 in two epochs).
        discriminator_learning_rate: Adam's for the discriminator, which starts from scratch; a faster
            discriminator than generator is the two time-scale rule (Heusel et al. 2017).
        input_scale: The discriminator sees ``image * input_scale`` (silence stays 0); None (the
            default): ``1 / std`` of 64 training images, resolved when the stage starts and
            recorded. Spectrogram images are mostly near 0 (the embedded notes: mean 0.03); mapped
            to [-1, 1] the discriminator's units all sat on one side of their LeakyReLU and it
            stayed blind (hinge loss 2.00 for 8 epochs on the demo model; scaled to unit spread:
            100 % on held-out reconstructions after 60 steps, docs/experiments.md).
        frequency_position: Give the discriminator each row's frequency as an input channel
            (CoordConv). A patch discriminator is blind to where a patch sits, and stage 2 on the demo
            model painted noise near 10 kHz, where the notes have none (docs/experiments.md, "Stage 2").
        adaptive_weight: Scale the adversarial term every step so that its gradient at the
            decoder's last layer is as large as the anchor's (reconstruction and feature matching),
            times ``adversarial_weight`` (VQGAN, Esser et al. 2021, eq. 7): the adversarial term can
            neither drown the anchor nor vanish beside it, whatever the discriminator's scale.
        decoder_noise: Give the stage-2 decoder a noise input (StyleGAN's, Karras et al. 2019):
            Gaussian noise per position and channel added before its last conv block, scaled per
            channel by a weight that starts at 0 (so stage 2 starts as stage 1 ended). Texture no
            code holds — a vibrato's phase, bow noise — can then be drawn anew in every decode;
            the decoder's output is no longer a function of the code alone.
        noise_lr_multiplier: How many times faster than the decoder's other weights the noise
            input's scale moves (StyleGAN's learning-rate multiplier: the stored weight times this
            is the scale, and Adam's steps do not depend on a gradient's size). At 1 and the
            decoder's 1e-4 the scale reached 0.005 in 300 steps, where the features it is added to
            spread about 0.2 per channel: the noise went unused (docs/experiments.md, "Stage 2").
        consistency_weight: Weight of an inversion-consistency term on the decoded images
            (posterior and prior fakes): their spectral convergence against the magnitudes of the
            signal they make with a phase estimated in the graph
            (:func:`~vae_tfp.audio.metrics.inconsistency_tf`). Real clips are the magnitudes of a
            signal; a blurred decoder's images are not, and the listener hears that twice. 0: off.
    """

    scales: int = 3
    filters: int = 16
    layers: int = 3
    loss: str = "hinge"
    adversarial_weight: float = 1.0
    feature_weight: float = 10.0
    recon_weight: float = 10.0
    learning_rate: float = 1e-4
    discriminator_learning_rate: float = 1e-3
    input_scale: float | None = None
    frequency_position: bool = False
    adaptive_weight: bool = False
    decoder_noise: bool = False
    noise_lr_multiplier: float = 1.0
    consistency_weight: float = 0.0

    def __post_init__(self) -> None:
        for name, top in (("scales", 4), ("filters", 512), ("layers", 6)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ConfigError(f"{name}={v!r} must be an integer in [1, {top}]")
        for name in ("frequency_position", "adaptive_weight", "decoder_noise"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")
        if self.loss not in ADVERSARIAL_LOSSES:
            raise ConfigError(f"loss={self.loss!r} must be one of {ADVERSARIAL_LOSSES}")
        for name in ("adversarial_weight", "feature_weight", "recon_weight", "learning_rate",
                     "discriminator_learning_rate", "input_scale", "noise_lr_multiplier", "consistency_weight"):
            v = getattr(self, name)
            if v is None and name == "input_scale":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{name}={v!r} must be a finite non-negative number")
        for name in ("learning_rate", "discriminator_learning_rate", "input_scale", "noise_lr_multiplier"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AdversarialConfig":
        return _from_dict(cls, data, "adversarial config")

    def replace(self, **changes) -> "AdversarialConfig":
        return dataclasses.replace(self, **changes)


def model_spectrogram(preset: str) -> SpectrogramConfig:
    """The spectrogram a model preset is built for (``default`` → 512 x 512, ``small`` → 128 x 128)."""
    return model_preset(preset).spectrogram


def spectrogram_preset_name(config: SpectrogramConfig) -> str | None:
    """The name of the preset equal to ``config``, or None for a custom config."""
    return next((name for name, preset in SPECTROGRAM_PRESETS.items() if preset == config), None)


def model_preset(name: str) -> ModelConfig:
    """Returns the named :class:`ModelConfig` preset."""
    try:
        return MODEL_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(MODEL_PRESETS)}") from None
