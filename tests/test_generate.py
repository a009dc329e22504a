import numpy as np
import pytest

from vae_tfp.errors import ConfigError
from vae_tfp.generate import decode, encode, generate, reconstruct, sample_prior
from vae_tfp.saving import load_model


def test_generate_shapes_and_ranges(trained_tiny):
    m = load_model(trained_tiny, parts=("decoder", "prior"))
    z, images, audio = generate(m, 3, seed=1, n_iter=4)
    assert z.shape == (3, 4) and images.shape == (3, 64, 64, 1) and audio.shape == (3, m.spectrogram_config.clip_samples)
    assert images.min() >= 0 and images.max() <= 1 and np.isfinite(audio).all()


def test_sampling_is_seeded_and_component_and_temperature_work(trained_tiny):
    m = load_model(trained_tiny, parts=("decoder", "prior"))
    np.testing.assert_array_equal(sample_prior(m, 5, seed=2), sample_prior(m, 5, seed=2))
    locs = m.prior.components_distribution.loc.numpy()
    cold = sample_prior(m, 200, seed=0, component=1, temperature=1e-3)
    np.testing.assert_allclose(cold.mean(0), locs[1], atol=1e-2)
    with pytest.raises(ConfigError):
        sample_prior(m, 1, component=99)


def test_encode_decode(trained_tiny, tiny_dataset):
    from vae_tfp.dataset import load_numpy

    m = load_model(trained_tiny)
    x = load_numpy(tiny_dataset, "val")
    means, stds = encode(m, x)
    assert means.shape == (len(x), 4) and (stds > 0).all()
    assert reconstruct(m, x).shape == x.shape
    with pytest.raises(ConfigError, match="latent_dim"):
        decode(m, np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="without its encoder"):
        encode(load_model(trained_tiny, parts=("decoder",)), x)
