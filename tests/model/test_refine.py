import numpy as np
import pytest

from vae_tfp.apps.generate import encode, reconstruct
from vae_tfp.data.dataset import open_dataset
from vae_tfp.errors import ConfigError
from vae_tfp.model.refine import refine_codes
from vae_tfp.model.saving import load_model


def _objective(m, x, z):
    """Each clip's -log p(x|z) - log p(z), what refinement lowers."""
    return (-m.decoder(z, training=False).log_prob(x) - m.prior.log_prob(z)).numpy()


@pytest.fixture(scope="module")
def model_and_clips(trained_tiny, tiny_dataset):
    return load_model(trained_tiny), open_dataset(tiny_dataset).load("train")[:5].astype(np.float32)


def test_refinement_lowers_every_clips_own_objective(model_and_clips):
    m, x = model_and_clips
    means, _ = encode(m, x)
    refined = refine_codes(m.decoder, m.prior, x, means, steps=20, learning_rate=0.05)
    before, after = _objective(m, x, means), _objective(m, x, refined)
    assert refined.shape == means.shape and refined.dtype == np.float32
    assert np.all(after < before - 1e-3), (before, after)
    assert np.all(np.abs(refined - means).max(axis=1) > 1e-3)  # every code moved
    np.testing.assert_allclose(encode(m, x, refine_steps=20)[0], refine_codes(m.decoder, m.prior, x, means, steps=20),
                               rtol=1e-5, atol=1e-6)


def test_zero_steps_is_the_encoder_alone(model_and_clips):
    m, x = model_and_clips
    means, stds = encode(m, x)
    out = refine_codes(m.decoder, m.prior, x, means, steps=0)
    np.testing.assert_array_equal(out, means)
    assert out is not means  # a copy: the caller's array is never written to
    np.testing.assert_array_equal(encode(m, x, refine_steps=0)[0], means)
    np.testing.assert_array_equal(reconstruct(m, x, refine_steps=0), reconstruct(m, x))


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_a_clips_code_does_not_depend_on_its_batch(model_and_clips, batch_size):
    """The batch remainder and a batch of one give the same codes as one batch of all (the loss is a sum)."""
    m, x = model_and_clips
    means, _ = encode(m, x)
    whole = refine_codes(m.decoder, m.prior, x, means, steps=10, batch_size=len(x), learning_rate=0.01)
    assert np.abs(whole - means).max() > 0.02  # the codes moved far more than the tolerance below
    # other batch shapes sum in another order; Adam's normalised steps carry that float noise along
    np.testing.assert_allclose(refine_codes(m.decoder, m.prior, x, means, steps=10, batch_size=batch_size,
                                            learning_rate=0.01), whole, rtol=0, atol=2e-3)


def test_bad_arguments_are_one_line_errors(model_and_clips, trained_tiny):
    m, x = model_and_clips
    means, _ = encode(m, x)
    for kwargs, words in (({"steps": -1}, "non-negative"), ({"steps": 2.5}, "non-negative"),
                          ({"steps": 3, "learning_rate": 0.0}, "positive")):
        with pytest.raises(ConfigError, match=words):
            refine_codes(m.decoder, m.prior, x, means, **kwargs)
    with pytest.raises(ConfigError, match="one code per image"):
        refine_codes(m.decoder, m.prior, x[:2], means, steps=3)
    with pytest.raises(ConfigError, match="decoder and prior"):
        encode(load_model(trained_tiny, parts=("encoder",)), x, refine_steps=3)


def test_refinement_leaves_the_networks_and_prior_alone(model_and_clips):
    m, x = model_and_clips
    weights = [w.numpy().copy() for w in m.decoder.weights + m.encoder.weights + list(m.prior.trainable_variables)]
    encode(m, x, refine_steps=5)
    after = [w.numpy() for w in m.decoder.weights + m.encoder.weights + list(m.prior.trainable_variables)]
    assert all(np.array_equal(a, b) for a, b in zip(weights, after))
