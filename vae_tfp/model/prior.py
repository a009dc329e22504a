"""The trainable Gaussian-mixture prior, its views, and the encoder's side of the KL against it.

:func:`make_prior` builds a ``tfd.MixtureSameFamily`` of ``MultivariateNormalDiag`` with trainable
mixture logits, means and softplus-positive scales; :class:`MixtureKLRegularizer` charges the
encoder the Monte-Carlo ``KL(q(z|x) || prior)`` (a mixture has no closed form) with free bits per
latent dimension. :func:`sample_prior` draws codes (with a component and a temperature).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from ..errors import ConfigError

tfd, tfpl, tfb = tfp.distributions, tfp.layers, tfp.bijectors


def make_prior(latent_dim: int, num_modes: int, *, init_scale: float = 1.0, seed: int = 0) -> tfd.MixtureSameFamily:
    """A Gaussian mixture with trainable weights, means and softplus-positive scales.

    Args:
        latent_dim: D, the event size.
        num_modes: K, the mixture components.
        init_scale: Std of the random initial means.
        seed: Seed of the initial means.

    Returns:
        ``tfd.MixtureSameFamily`` with batch_shape [] and event_shape [D]; its
        ``trainable_variables`` are the mixture logits [K] (uniform at first), the means [K, D]
        and the pre-softplus scales [K, D].
    """
    init = tf.random.stateless_normal([num_modes, latent_dim], seed=[seed, 7], stddev=init_scale)
    logits = tf.Variable(tf.zeros([num_modes]), name="prior_logits")
    locs = tf.Variable(init, name="prior_locs")
    scales = tfp.util.TransformedVariable(tf.ones([num_modes, latent_dim]), bijector=tfb.Softplus(),
                                          name="prior_scales")
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=logits),
        components_distribution=tfd.MultivariateNormalDiag(loc=locs, scale_diag=scales),
        name="prior")


# Names of the prior's variables in its weight file. Files written before the mixture weights
# were trainable have no "logits": those priors keep uniform weights.
PRIOR_VARIABLES = {"prior_logits": "logits", "prior_locs": "locs", "prior_scales": "scales_raw"}


def prior_variables(prior: tfd.MixtureSameFamily) -> dict[str, tf.Variable]:
    """The prior's trainable variables by name: ``logits``, ``locs`` and ``scales_raw`` (pre-softplus)."""
    found = {}
    for v in prior.trainable_variables:
        key = next(name for prefix, name in PRIOR_VARIABLES.items() if prefix in v.name)
        found[key] = v
    return found


def mixture_components(prior: tfd.MixtureSameFamily) -> tuple[np.ndarray, np.ndarray]:
    """Means and scales of the mixture's components, NumPy [K, D] each."""
    comp = prior.components_distribution
    return comp.mean().numpy(), comp.stddev().numpy()


def mixture_weights(prior: tfd.MixtureSameFamily) -> np.ndarray:
    """The mixture's component probabilities, NumPy [K] summing to 1."""
    w = prior.mixture_distribution.probs_parameter().numpy().astype(np.float64)
    return w / w.sum()


def frozen_prior(prior: tfd.MixtureSameFamily) -> tfd.MixtureSameFamily:
    """The same mixture with its parameters behind ``tf.stop_gradient``: no gradient reaches the prior."""
    comp = prior.components_distribution
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=tf.stop_gradient(prior.mixture_distribution.logits_parameter())),
        tfd.MultivariateNormalDiag(loc=tf.stop_gradient(tf.convert_to_tensor(comp.loc)),
                                   scale_diag=tf.stop_gradient(tf.convert_to_tensor(comp.scale.diag))))


def prior_marginals(prior: tfd.MixtureSameFamily) -> tfd.MixtureSameFamily:
    """The prior's 1-D marginal on each latent dimension: a mixture of Normals with batch_shape [D]."""
    comp = prior.components_distribution
    locs = tf.transpose(tf.convert_to_tensor(comp.loc))  # [D, K]
    scales = tf.transpose(tf.convert_to_tensor(comp.scale.diag))
    logits = tf.broadcast_to(prior.mixture_distribution.logits_parameter(), tf.shape(locs))
    return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Normal(locs, scales))


def marginal_kl(posterior, z, prior) -> tf.Tensor:
    """One-sample Monte-Carlo KL of each posterior marginal q(z_i|x) against the prior's marginal.

    Args:
        posterior: q(z|x), batch_shape [B], event_shape [D] (a ``MultivariateNormalTriL``).
        z: [B, D] a sample of it.
        prior: The mixture prior.

    Returns:
        [B, D] nats.
    """
    q = tfd.Normal(posterior.mean(), posterior.stddev())  # stddev: sqrt(diag(L L^T))
    return q.log_prob(z) - prior_marginals(prior).log_prob(z)


class MixtureKLRegularizer(tfpl.KLDivergenceRegularizer):
    """The encoder's side of the Monte-Carlo ``KL(q || prior)``, summed over the batch.

    Used as an activity regulariser, Keras divides the sum by the batch size, giving the batch
    mean of the per-example KL. The prior is frozen here (see the module docstring: it learns from
    its own cross-entropy term), so the value is a penalty on the encoder alone:

    * ``free_bits`` (nats per latent dimension, Kingma et al. 2016): the batch-mean KL of each
      posterior marginal q(z_i|x) against the prior's marginal is not penalised below this; the
      rest of the joint KL (the dependence between dimensions under the mixture) always is. The
      penalty is ``KL + sum_i max(0, free_bits - KL_i)``: dimensions above the floor keep their
      pull, so the KL cannot be switched off wholesale (a per-example floor ``max(KL, c)`` would
      give no gradient at all below it).
    """

    def __init__(self, prior, *, free_bits: float = 0.0):
        # Behind a closure the prior's variables are not tracked by the encoder: they belong to
        # the prior alone and are saved once, in the prior's file. ``prior`` may be a zero-argument
        # callable returning the current prior (the VAE's), so that a prior replaced after the
        # encoder was built — a refit with another number of components — is the one charged.
        super().__init__(prior if callable(prior) else (lambda: prior),  # a Distribution is not callable
                         use_exact_kl=False, test_points_fn=tf.convert_to_tensor)
        self.free_bits = float(free_bits)

    def __call__(self, posterior):
        # DistributionLambda hands Keras two outputs, the distribution and its sampled tensor, and
        # Keras applies the activity regulariser to each: TFP's own regulariser counts the KL twice
        # (tensorflow/probability#599, #1215). Count the distribution; its tensor twin, and the
        # symbolic output of the functional model's construction (whose losses every call
        # replaces), add 0.
        if not isinstance(posterior, tfd.Distribution):
            return tf.constant(0.0)
        z = tf.convert_to_tensor(posterior)  # the reparameterised sample the decoder sees
        prior = frozen_prior(self.distribution_b())
        kl = posterior.log_prob(z) - prior.log_prob(z)
        penalty = tf.reduce_sum(kl)
        if self.free_bits > 0:
            per_dim = tf.reduce_sum(marginal_kl(posterior, z, prior), axis=0)  # [D], batch sums
            floor = self.free_bits * tf.cast(tf.shape(z)[0], per_dim.dtype)
            penalty += tf.reduce_sum(tf.nn.relu(floor - per_dim))
        return penalty


def sample_prior(model, n: int, *, seed: int = 0, component: int | None = None,
                 temperature: float = 1.0, where: dict | None = None, method: str | None = None) -> np.ndarray:
    """Draws ``n`` latents from the prior, [n, D]: a component by the mixture weights, then its Gaussian.

    TFP's own sampling of the (tempered) mixture, with a stateless seed: the same ``seed`` gives
    the same latents in any process.

    Args:
        component: Sample only this mixture component (0-based).
        temperature: Scales each component's standard deviation (< 1: closer to the means).
        where: Labels to condition on, e.g. ``{"instrument": "violin", "pitch": 60}``
            (:mod:`vae_tfp.model.conditional`; the model folder needs its conditional prior).
        method: With ``where``: ``em`` (default) or ``components``.
    """
    if where:
        if component is not None:
            raise ConfigError("sample either one component or a condition (where), not both")
        from .conditional import sample_conditional

        return sample_conditional(model, n, where, method=method, seed=seed, temperature=temperature)
    k = model.config.num_modes
    if component is not None and not 0 <= component < k:
        raise ConfigError(f"component={component} must be in [0, {k - 1}]")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature={temperature} must be a positive number")
    if n < 0:
        raise ConfigError(f"n={n} must be a non-negative number of samples")
    comp = model.prior.components_distribution
    tempered = tfd.MultivariateNormalDiag(loc=comp.mean(), scale_diag=comp.stddev() * temperature)
    if component is not None:
        dist = tfd.MultivariateNormalDiag(loc=tempered.loc[component], scale_diag=tempered.scale.diag[component])
    else:  # components in proportion to the mixture's (fitted) weights
        dist = tfd.MixtureSameFamily(model.prior.mixture_distribution, tempered)
    return dist.sample(n, seed=tf.constant([seed, 0], tf.int32)).numpy().astype(np.float32)
