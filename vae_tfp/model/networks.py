"""The networks and the VAE: a conv encoder whose output is a ``MultivariateNormalTriL`` posterior
(diagonal for a latent sequence), an upsampling decoder whose output is a likelihood, and the
trainable Gaussian-mixture prior of :mod:`vae_tfp.model.prior`.

Factories build functional tf_keras models (``make_encoder``, ``make_decoder``). :class:`VAE`
only adds the training step and the loss trackers.

The loss is a per-example negative ELBO, averaged over the batch::

    loss = mean_over_batch( -log p(x|z) summed over pixels  +  beta * KL(q(z|x) || p(z)) )

The KL has no closed form against a mixture, so it is a one-sample Monte-Carlo estimate
``log q(z|x) - log p(z)`` at the very z fed to the decoder, added by
``tfpl.KLDivergenceRegularizer`` as the posterior layer's activity regulariser (which Keras
divides by the batch size: per example, like the reconstruction term).

The KL's two parties learn from separate terms, so that nothing done to the encoder's side can
stop the prior from learning (a per-example floor such as ``max(KL, 300)`` gives no gradient to
either party below it, so a prior trained through the KL alone would never move towards the codes):

* the encoder sees the KL against a *frozen* copy of the prior, with optional free bits per
  latent dimension (Kingma et al. 2016) and a β warm-up;
* the prior (means, scales and mixture weights) always sees the cross-entropy
  ``-log p(z)`` of the codes, at weight 1 — the gradient the ELBO itself gives the prior.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from ..config import ModelConfig, upsample_factors
from ..errors import ConfigError
from .prior import MixtureKLRegularizer, make_prior

tfd, tfpl, tfb = tfp.distributions, tfp.layers, tfp.bijectors

# tf_keras warns, when weights are saved, that tfp.layers' lambdas could only be deserialised with
# safe_mode=False. We never deserialise a model (it is rebuilt from code and ModelConfig), so the
# warning does not apply: :func:`quiet_lambda_warning` silences it around our own saves only.
LAMBDA_WARNING = "The object being serialized includes a `lambda`"


@contextlib.contextmanager
def quiet_lambda_warning():
    """Ignores :data:`LAMBDA_WARNING` (and nothing else) inside the block; filters are restored after."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LAMBDA_WARNING)
        yield

MIN_SCALE = 1e-3  # floor of the Gaussian / Laplace pixel scale: bounds the density at exact values
# He initialisation for ReLU layers: without normalisation, Glorot's halves the activation variance
# per layer and the deep 512x512 decoder's signal dies out (training stalled at the dataset mean).
RELU_INIT = "he_uniform"


# --- encoder / decoder ------------------------------------------------------------------------

class UpSampling2D(keras.layers.UpSampling2D):
    """Keras' nearest-neighbour ``UpSampling2D``, computed by broadcasting instead of image resize.

    Same output and no weights; its gradient is a plain sum, which XLA compiles (the resize
    gradient ``ResizeNearestNeighborGrad`` has no XLA CPU kernel, so ``jit_compile`` failed).
    Used only for XLA: without it, Keras' resize kernels are faster on CPU (measured: default
    preset 4.05 examples/s with resize, 2.34 broadcast, 5.51 broadcast under XLA).
    """

    def call(self, inputs):
        sh, sw = self.size
        _, h, w, c = inputs.shape
        x = inputs[:, :, None, :, None, :]
        x = tf.broadcast_to(x, [tf.shape(inputs)[0], h, sh, w, sw, c])
        return tf.reshape(x, [-1, h * sh, w * sw, c])


class DepthToSpace(keras.layers.Layer):
    """Sub-pixel rearrangement [b, h, w, c*fh*fw] → [b, h*fh, w*fw, c].

    The order of ``tf.nn.depth_to_space`` (channel ``(i*fw + j)*c + k`` goes to sub-pixel
    ``(i, j)``, channel ``k``), generalised to different factors along frequency and time.
    """

    def __init__(self, block_size, **kwargs):
        super().__init__(**kwargs)
        self.block_size = block_size

    def call(self, inputs):
        fh, fw = upsample_factors(self.block_size)
        _, h, w, c = inputs.shape
        c //= fh * fw
        x = tf.reshape(inputs, [-1, h, w, fh, fw, c])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [-1, h * fh, w * fw, c])

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


class DecoderNoise(keras.__internal__.layers.BaseRandomLayer):
    """Gaussian noise per position and channel, added to a feature map and scaled per channel by a
    weight that starts at 0 (StyleGAN's noise input, Karras et al. 2019): drawn in every call, in
    training and in generation alike, from seeded random ops (reproducible; allowed under op
    determinism). Only stage 2 builds it (``AdversarialConfig.decoder_noise``); the scale is the
    stored weight times ``gain`` (``AdversarialConfig.noise_lr_multiplier``)."""

    def __init__(self, seed: int = 0, gain: float = 1.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.seed, self.gain = seed, float(gain)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, x):
        noise = self._random_generator.random_normal(tf.shape(x), dtype=x.dtype)
        return x + tf.cast(self.gain * self.scale, x.dtype) * noise

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "gain": self.gain}


def _posterior_bias(latent_dim: int, scale: float):
    """Bias of the posterior's parameter layer: zero, except the scale diagonal's for std ``scale``."""
    if not scale:
        return "zeros"
    n = latent_dim * (latent_dim + 1) // 2
    # tfpl.MultivariateNormalTriL: params = [loc (d), fill_triangular vector (n)]; diagonal = softplus + 1e-5
    diagonal = np.diagonal(tfp.math.fill_triangular(np.arange(n)).numpy())
    bias = np.zeros(latent_dim + n, np.float32)
    bias[latent_dim + diagonal] = tfp.math.softplus_inverse(np.float32(scale)).numpy()
    return keras.initializers.Constant(bias)


def _diagonal_posterior(params, steps: int, step_dim: int) -> tfd.MultivariateNormalDiag:
    """The posterior of a latent sequence from per-step ``[loc (d), scale (d)]`` parameters, flattened."""
    p = tf.reshape(params, [-1, steps, 2, step_dim])
    flat = lambda t: tf.reshape(t, [-1, steps * step_dim])  # noqa: E731
    return tfd.MultivariateNormalDiag(loc=flat(p[:, :, 0]), scale_diag=1e-5 + tf.nn.softplus(flat(p[:, :, 1])))


def make_encoder(config: ModelConfig, prior: tfd.Distribution | None = None,
                 noise: tf.random.Generator | None = None) -> keras.Model:
    """Conv stack → Dense → ``MultivariateNormalTriL`` posterior q(z|x).

    With ``config.latent_steps`` T > 1: conv stack → one Dense per column (T columns) →
    ``MultivariateNormalDiag`` over the flattened sequence.

    Args:
        config: Architecture.
        prior: When given, the posterior layer adds the KL to it as an activity regulariser (a
            distribution, or a zero-argument callable returning the current one).
        noise: Draws the posterior sample's stateless seeds. Created in a ``tf.distribute``
            scope, each replica gets its own stream (a plain op seed would give every replica the
            same noise); it is checkpointed, so a resumed run continues the stream.

    Returns:
        A functional model: float32 [batch, H, W, 1] in [0, 1] → a distribution with
        batch_shape [batch] and event_shape [latent_dim] (a tensor-coercible sample).
    """
    x = inputs = keras.Input(shape=config.input_shape, name="spectrogram")
    for i, block in enumerate(config.encoder):
        x = keras.layers.Conv2D(block.filters, block.kernel, strides=block.stride, padding="same", activation="relu",
                                kernel_initializer=RELU_INIT, name=f"enc_conv{i}")(x)
        if block.batch_norm:
            x = keras.layers.BatchNormalization(name=f"enc_bn{i}")(x)
        if block.max_pool:
            x = keras.layers.MaxPool2D(2, name=f"enc_pool{i}")(x)
    regularizer = MixtureKLRegularizer(prior, free_bits=config.free_bits) \
        if prior is not None else None
    sample = tfd.Distribution.sample if noise is None else (
        lambda q: q.sample(seed=tf.cast(noise.make_seeds(1)[:, 0], tf.int32)))
    d, t = config.step_dim, config.latent_steps
    if t == 1:
        x = keras.layers.Flatten(name="enc_flatten")(x)
        x = keras.layers.Dense(tfpl.MultivariateNormalTriL.params_size(d), name="enc_params", dtype="float32",
                               bias_initializer=_posterior_bias(d, config.posterior_init_scale))(x)
        z = tfpl.MultivariateNormalTriL(d, convert_to_tensor_fn=sample, activity_regularizer=regularizer,
                                        name="posterior", dtype="float32")(x)
        return keras.Model(inputs, z, name="encoder")
    # A latent sequence: one posterior step per column of the conv features (time-major).
    h, _, c = config.encoder_output_shape()
    x = keras.layers.Permute((2, 1, 3), name="enc_time_major")(x)
    x = keras.layers.Reshape((t, h * c), name="enc_steps")(x)
    scale_bias = float(tfp.math.softplus_inverse(np.float32(config.posterior_init_scale))) \
        if config.posterior_init_scale else 0.0
    x = keras.layers.Dense(2 * d, name="enc_params", dtype="float32",
                           bias_initializer=keras.initializers.Constant([0.0] * d + [scale_bias] * d))(x)
    x = keras.layers.Flatten(name="enc_flatten_steps")(x)
    z = tfpl.DistributionLambda(lambda p: _diagonal_posterior(p, t, d), convert_to_tensor_fn=sample,
                                activity_regularizer=regularizer, name="posterior", dtype="float32")(x)
    return keras.Model(inputs, z, name="encoder")


def make_decoder(config: ModelConfig, *, xla: bool = False, noise: bool = False,
                 noise_gain: float = 1.0) -> keras.Model:
    """Dense → Reshape → (UpSampling2D + Conv2D) blocks → linear Conv2D → likelihood p(x|z).

    With ``config.latent_steps`` T > 1 the Dense layer is applied per step, each filling one
    column of the T-column grid.

    With ``config.output_upsample`` > 1 the linear Conv2D is sub-pixel (depth-to-space).

    Args:
        config: Architecture.
        xla: Build for an XLA-compiled train step (an XLA-compilable upsampling; same weights).
        noise: Add a :class:`DecoderNoise` input before the last block's conv (the stage-2 decoder
            of ``AdversarialConfig.decoder_noise``; one more weight, the stage-1 weights unchanged),
            its scale ``noise_gain`` times the stored weight.

    Returns:
        A functional model: float32 [batch, latent_dim] → a distribution with batch_shape [batch]
        and event_shape [H, W, 1] whose ``mean()`` is the reconstruction in [0, 1].
    """
    z = inputs = keras.Input(shape=(config.latent_dim,), name="z")
    t = config.latent_steps
    if t == 1:
        x = keras.layers.Dense(int(np.prod(config.decoder_shape)), activation="relu", kernel_initializer=RELU_INIT,
                               name="dec_dense")(z)
        x = keras.layers.Reshape(config.decoder_shape, name="dec_reshape")(x)
    else:  # a latent sequence: step i fills column i of the grid
        h, _, c = config.decoder_shape
        x = keras.layers.Reshape((t, config.step_dim), name="dec_steps")(z)
        x = keras.layers.Dense(h * c, activation="relu", kernel_initializer=RELU_INIT, name="dec_dense")(x)
        x = keras.layers.Reshape((t, h, c), name="dec_reshape")(x)
        x = keras.layers.Permute((2, 1, 3), name="dec_freq_major")(x)
    for i, block in enumerate(config.decoder):
        x = (UpSampling2D if xla else keras.layers.UpSampling2D)(upsample_factors(block.upsample), name=f"dec_up{i}")(x)
        if noise and i == len(config.decoder) - 1:
            x = DecoderNoise(gain=noise_gain, name="dec_noise")(x)
        x = keras.layers.Conv2D(block.filters, block.kernel, padding="same", activation="relu",
                                kernel_initializer=RELU_INIT, name=f"dec_conv{i}")(x)
        if block.batch_norm:
            x = keras.layers.BatchNormalization(name=f"dec_bn{i}")(x)
    if noise and not config.decoder:
        x = DecoderNoise(gain=noise_gain, name="dec_noise")(x)
    channels, f = config.output_channels(), config.output_upsample
    fh, fw = upsample_factors(f)
    # Linear output (logits or location/scale parameters): never a sigmoid before a Bernoulli.
    params = keras.layers.Conv2D(channels * fh * fw, 3, padding="same", name="dec_params", dtype="float32")(x)
    if fh * fw > 1:
        # sub-pixel: each position predicts an fh x fw patch. At 512x512 a conv with one output channel
        # ran at 2 % of the CPU's peak (benchmarks/results/conv_layers.json); `default` predicts 32
        # frames per position along time, where the image changes slowly.
        params = DepthToSpace(f, name="dec_depth_to_space", dtype="float32")(params)
    return keras.Model(inputs, likelihood_layer(config)(params), name="decoder")


def likelihood_layer(config: ModelConfig):
    """A callable turning the decoder's linear output [batch, H, W, c] into p(x|z) over [H, W, 1]."""
    shape = config.input_shape
    if config.likelihood == "bernoulli":
        # IndependentBernoulli reshapes flat logits [batch, H*W] to the event shape itself.
        flat = keras.layers.Reshape((int(np.prod(shape)),), name="dec_flatten_logits", dtype="float32")
        bernoulli = tfpl.IndependentBernoulli(shape, convert_to_tensor_fn=tfd.Distribution.mean, name="likelihood",
                                              dtype="float32")
        return lambda params: bernoulli(flat(params))
    if config.likelihood == "continuous_bernoulli":
        make = lambda t: tfd.Independent(tfd.ContinuousBernoulli(logits=t), reinterpreted_batch_ndims=3)  # noqa: E731
    else:
        family = tfd.Normal if config.likelihood == "gaussian" else tfd.Laplace

        def make(t):
            scale = MIN_SCALE + tf.nn.softplus(t[..., 1:])  # starts near 0.69
            return tfd.Independent(family(loc=t[..., :1], scale=scale), reinterpreted_batch_ndims=3)
    return tfpl.DistributionLambda(make, convert_to_tensor_fn=tfd.Distribution.mean, name="likelihood",
                                   dtype="float32")


def map_batches(fn, x, batch_size: int):
    """``fn(batch, start)`` over ``x`` in batches of ``batch_size``, its outputs concatenated along axis 0.

    ``fn`` returns a NumPy array or a structure of them (tuple, dict). For an empty ``x`` the
    result has no rows but the shapes and dtypes ``fn`` gives: ``fn`` runs once on one zero
    item and its rows are dropped, because TensorFlow's oneDNN Conv2D on AVX-512 CPUs raises on
    an empty batch ("Must provide as many biases as the last dimension ...") where other CPUs
    return an empty tensor. No network is ever called on an empty batch.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be a positive integer")
    if not len(x):
        return tf.nest.map_structure(lambda a: np.asarray(a)[:0], fn(np.zeros((1,) + tuple(x.shape[1:]), x.dtype), 0))
    outs = [fn(x[i:i + batch_size], i) for i in range(0, len(x), batch_size)]
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outs)


def posterior_stats(encoder: keras.Model, x: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and marginal standard deviations of images ``x`` [n, H, W, 1], NumPy [n, D] each."""
    def stats(batch, _):
        q = encoder(batch, training=False)
        return q.mean().numpy(), q.stddev().numpy()  # marginal stds: sqrt(diag(L L^T))

    return map_batches(stats, np.asarray(x, np.float32), batch_size)


def reconstruction_mean(distribution) -> tf.Tensor:
    """The decoder distribution's mean clipped to [0, 1]: the image to turn into audio."""
    return tf.clip_by_value(distribution.mean(), 0.0, 1.0)


# --- the model --------------------------------------------------------------------------------

class VAE(keras.Model):
    """Encoder + decoder + prior with a per-example ELBO training step and loss trackers.

    Metrics (nats per example): ``recon`` (−log p(x|z)), ``kl`` (the Monte-Carlo KL against the
    prior, exact: no free bits), ``neg_elbo`` (recon + kl), ``kl_penalty`` (what the encoder is
    charged: the KL with free bits, see :class:`MixtureKLRegularizer`), ``loss``
    (recon + beta * kl_penalty, what the encoder and decoder minimise), ``prior_nll`` (−log p(z)
    of the codes, what the prior minimises), ``beta``.
    """

    def __init__(self, config: ModelConfig, *, seed: int = 0, xla: bool = False, **kwargs):
        super().__init__(name="vae", **kwargs)
        self.config = config
        self.prior = make_prior(config.latent_dim, config.num_modes, init_scale=config.prior_init_scale, seed=seed)
        self.noise = tf.random.Generator.from_seed(seed)
        self.encoder = make_encoder(config, lambda: self.prior, self.noise)  # follows a replaced prior
        self.decoder = make_decoder(config, xla=xla)
        self._prior_vars = list(self.prior.trainable_variables)  # tracked for the optimizer
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "recon", "kl", "neg_elbo", "kl_penalty", "prior_nll")}
        self.beta_tracker = keras.metrics.Mean(name="beta")

    @property
    def spectrogram_config(self):
        """The spectrogram settings of its images (as :class:`~vae_tfp.model.saving.LoadedModel`'s)."""
        return self.config.spectrogram

    @property
    def metrics(self):
        return list(self.trackers.values()) + [self.beta_tracker]

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def beta_at(self, step) -> tf.Tensor:
        """KL weight at an optimizer step: linear warm-up from 0 to ``beta``."""
        beta = tf.constant(self.config.beta, tf.float32)
        if self.config.kl_warmup_steps <= 0:
            return beta
        frac = tf.cast(step, tf.float32) / float(self.config.kl_warmup_steps)
        return beta * tf.minimum(1.0, frac)

    def _terms(self, x, training) -> dict[str, tf.Tensor]:
        q = self.encoder(x, training=training)
        z = tf.convert_to_tensor(q)  # the sample the KL regulariser saw
        likelihood = self.decoder(q, training=training)
        # float32 whatever the mixed-precision policy: the loss never runs in half precision
        recon = -tf.reduce_mean(tf.cast(likelihood.log_prob(x), tf.float32))
        losses = self.encoder.losses
        penalty = tf.add_n([tf.cast(l, tf.float32) for l in losses]) if losses else tf.constant(0.0)
        log_p = self.prior.log_prob(z)
        kl = tf.reduce_mean(q.log_prob(z) - log_p)
        # The prior's own term: the codes' cross-entropy, with no gradient into the encoder.
        prior_nll = -tf.reduce_mean(self.prior.log_prob(tf.stop_gradient(z)))
        return {"recon": recon, "kl": kl, "kl_penalty": penalty, "prior_nll": prior_nll}

    @staticmethod
    def loss_from(terms: dict[str, tf.Tensor], beta) -> tf.Tensor:
        """What the encoder and decoder minimise: ``recon + beta * kl_penalty``."""
        return terms["recon"] + beta * terms["kl_penalty"]

    def _update(self, terms, loss, beta):
        for name, value in {**terms, "loss": loss, "neg_elbo": terms["recon"] + terms["kl"]}.items():
            self.trackers[name].update_state(value)
        self.beta_tracker.update_state(beta)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        beta = self.beta_at(self.optimizer.iterations)
        loss_scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            terms = self._terms(x, training=True)
            loss = self.loss_from(terms, beta)
            # The prior's term reaches only the prior's variables, at full weight whatever beta is.
            objective = loss + terms["prior_nll"]
            # Under a distribution strategy each replica's gradient is summed: scale to the global mean.
            scaled = objective / tf.distribute.get_strategy().num_replicas_in_sync
            if loss_scaled:  # mixed_float16: keep small gradients from underflowing
                scaled = self.optimizer.get_scaled_loss(scaled)
        grads = tape.gradient(scaled, self.trainable_variables)
        if loss_scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._update(terms, loss, beta)

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        terms = self._terms(x, training=False)
        beta = tf.constant(self.config.beta, tf.float32)
        return self._update(terms, self.loss_from(terms, beta), beta)


def make_optimizer(config: ModelConfig, *, clip_norm: float | None = None,
                   decay_steps: int | None = None) -> keras.optimizers.Optimizer:
    """Adam at the config's learning rate; with ``clip_norm`` the gradients of all variables are
    clipped together to that global norm (after the replicas' gradients are summed), as ddsp does.
    With ``decay_steps`` the rate follows a cosine from the config's rate to 0 over that many steps
    (Loshchilov & Hutter 2017; ``keras.optimizers.schedules.CosineDecay``): it follows the
    optimizer's step counter, which the checkpoints keep, so a resumed run continues the curve."""
    if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
        raise ConfigError(f"clip_norm={clip_norm!r} must be a positive number (or None for no clipping)")
    if decay_steps is not None and decay_steps < 1:
        raise ConfigError(f"decay_steps={decay_steps!r} must be a positive number of steps")
    rate = config.learning_rate if decay_steps is None else \
        keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps)
    return keras.optimizers.Adam(rate, global_clipnorm=clip_norm)


def build_vae(config: ModelConfig, *, seed: int = 0) -> VAE:
    """A compiled :class:`VAE` (:func:`make_optimizer`), weights built."""
    keras.utils.set_random_seed(seed)
    vae = VAE(config, seed=seed)
    vae.compile(optimizer=make_optimizer(config))
    vae(tf.zeros((1,) + tuple(config.input_shape)))  # create the weights
    return vae
