"""Encoding by optimisation: the encoder's codes refined by gradient steps on each clip's own posterior.

The encoder is amortised: one network guesses every clip's code at once, and on clips unlike its
training data (a held-out track, a new song) that guess falls short of the best code the decoder
could use — the *amortisation gap* (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in
Variational Autoencoders"). Semi-amortised inference (Kim et al. 2018) closes it at encoding time:
start from the encoder's posterior mean and take a few optimiser steps on that clip's own

    -log p(x | z) - log p(z)

(the unnormalised negative log posterior: the decoder's likelihood and the mixture prior, both
frozen), giving the maximum a posteriori code near the encoder's guess. Nothing trained changes,
and the prior term keeps the code where the prior has mass (so samples, interpolation and the
prior's fit stay meaningful). The loop is :func:`tfp.math.minimize` with a tf_keras ``Adam``.

Measured in ``docs/experiments.md`` ("Encoding by optimisation").
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from ..errors import ConfigError
from .networks import map_batches

REFINE_LEARNING_RATE = 0.03  # Adam's step in latent units (benchmarks/refine.py: at 50 steps better than 0.01 on both models)
REFINE_BATCH = 16


def negative_log_posterior(decoder: keras.Model, prior, images, codes, *, training: bool = False) -> tf.Tensor:
    """Each clip's ``-log p(x|z) - log p(z)`` (float32 [n]): what refinement minimises per clip
    (and what ``benchmarks/encoder_fit.py`` trains an encoder on at its posterior mean)."""
    nll = -tf.cast(decoder(codes, training=training).log_prob(images), tf.float32)
    return nll - tf.cast(prior.log_prob(codes), tf.float32)


def refine_codes(decoder: keras.Model, prior, images: np.ndarray, codes: np.ndarray, *, steps: int,
                 learning_rate: float = REFINE_LEARNING_RATE, batch_size: int = REFINE_BATCH) -> np.ndarray:
    """``codes`` [n, D] (the encoder's posterior means of ``images`` [n, H, W, 1]) after ``steps`` Adam
    steps on each clip's ``-log p(x|z) - log p(z)``; ``steps=0`` returns them unchanged.

    Each batch gets a fresh optimiser, so a clip's result does not depend on the others in its batch
    beyond Adam's per-coordinate statistics (which are per element of the code: independent clips).
    """
    codes = np.asarray(codes, np.float32)
    images = np.asarray(images, np.float32)
    if steps < 0 or int(steps) != steps:
        raise ConfigError(f"refine steps={steps} must be a non-negative integer")
    if not learning_rate > 0:
        raise ConfigError(f"refine learning_rate={learning_rate} must be positive")
    if len(codes) != len(images):
        raise ConfigError(f"{len(codes)} codes for {len(images)} images: refine needs one code per image")
    if steps == 0 or not len(codes):
        return codes.copy()

    def refine(batch, start):
        x = tf.constant(images[start:start + len(batch)])
        z = tf.Variable(batch)

        def loss():
            return tf.reduce_sum(negative_log_posterior(decoder, prior, x, z))  # a sum: each clip's own gradient

        tfp.math.minimize(loss, num_steps=int(steps), optimizer=keras.optimizers.Adam(learning_rate),
                          trainable_variables=[z], trace_fn=lambda _: ())
        return z.numpy()

    return map_batches(refine, codes, batch_size)
