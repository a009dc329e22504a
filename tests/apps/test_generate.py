import numpy as np
import pytest

from vae_tfp.audio.spectrogram import Inversion
from vae_tfp.errors import ConfigError
from vae_tfp.apps.generate import decode, encode, generate, reconstruct
from vae_tfp.model.prior import sample_prior
from vae_tfp.model.saving import load_model


def test_generate_shapes_and_ranges(trained_tiny):
    m = load_model(trained_tiny, parts=("decoder", "prior"))
    z, images, audio = generate(m, 3, seed=1, inversion=Inversion(n_iter=4))
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


def test_samples_are_the_tempered_mixtures_own(trained_tiny):
    """sample_prior is TFP's sampling of the mixture with each component's std times the
    temperature: its draws follow the mixture weights and the tempered spread."""
    import tensorflow_probability as tfp

    from vae_tfp.model.prior import mixture_components, mixture_weights

    m = load_model(trained_tiny, parts=("prior",))
    locs, scales = mixture_components(m.prior)
    z = sample_prior(m, 20000, seed=1, temperature=0.5)
    tempered = tfp.distributions.MixtureSameFamily(
        m.prior.mixture_distribution, tfp.distributions.MultivariateNormalDiag(locs, scales * 0.5))
    np.testing.assert_allclose(z.mean(0), tempered.mean().numpy(), atol=0.05)
    np.testing.assert_allclose(z.std(0), tempered.stddev().numpy(), rtol=0.05)
    # Which component each draw lies nearest, against the same for draws of the tempered mixture made here
    # with numpy (components may overlap, so nearest is not membership: compare like with like).
    rng = np.random.default_rng(0)
    weights = mixture_weights(m.prior)
    member = rng.choice(len(locs), size=len(z), p=weights / weights.sum())
    reference = locs[member] + 0.5 * scales[member] * rng.standard_normal(z.shape)

    def nearest(draws):
        index = np.argmin(((draws[:, None] - locs[None]) ** 2 / scales[None] ** 2).sum(-1), axis=1)
        return np.bincount(index, minlength=len(locs)) / len(draws)

    np.testing.assert_allclose(nearest(z), nearest(reference), atol=0.02)


def test_encode_decode(trained_tiny, tiny_dataset):
    from vae_tfp.data.dataset import open_dataset

    m = load_model(trained_tiny)
    x = open_dataset(tiny_dataset).load("val")
    means, stds = encode(m, x)
    assert means.shape == (len(x), 4) and (stds > 0).all()
    assert reconstruct(m, x).shape == x.shape
    with pytest.raises(ConfigError, match="latent_dim"):
        decode(m, np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="without its encoder"):
        encode(load_model(trained_tiny, parts=("decoder",)), x)


def _refuses_empty(network):
    """A network that raises on an empty batch, as oneDNN's Conv2D does on AVX-512 CPUs: the
    suite's verdict must not depend on which CPU runs it."""
    def call(x, **kwargs):
        assert len(x), "a network was called on an empty batch"
        return network(x, **kwargs)
    return call


@pytest.mark.parametrize("entry", ["encode", "encode_refined", "decode", "reconstruct", "to_audio", "generate",
                                   "sample_prior", "aggregate_posterior"])
def test_every_entry_point_takes_an_empty_input(trained_tiny, entry):
    from vae_tfp.apps.generate import to_audio
    from vae_tfp.model.prior_fit import aggregate_posterior

    m = load_model(trained_tiny)
    m.encoder, m.decoder = _refuses_empty(m.encoder), _refuses_empty(m.decoder)
    H, W = m.spectrogram_config.shape[:2]
    x0, z0 = np.zeros((0, H, W, 1), np.float32), np.zeros((0, m.config.latent_dim), np.float32)
    out = {
        "encode": lambda: encode(m, x0)[0], "encode_refined": lambda: encode(m, x0, refine_steps=3)[0], "decode": lambda: decode(m, z0), "reconstruct": lambda: reconstruct(m, x0),
        "to_audio": lambda: to_audio(m, x0), "generate": lambda: generate(m, 0, inversion=Inversion(n_iter=2))[1],
        "sample_prior": lambda: sample_prior(m, 0), "aggregate_posterior": lambda: aggregate_posterior(m.encoder, x0),
    }[entry]()
    expected = {"encode": (0, 4), "encode_refined": (0, 4), "sample_prior": (0, 4), "aggregate_posterior": (0, 4),
                "to_audio": (0, m.spectrogram_config.clip_samples)}.get(entry, (0, H, W, 1))
    assert out.shape == expected and out.dtype == np.float32


@pytest.mark.parametrize("n", [1, 31, 32, 33, 65])
def test_batches_cover_every_item_once_whatever_the_remainder(trained_tiny, tiny_dataset, n):
    from vae_tfp.data.dataset import open_dataset

    m = load_model(trained_tiny)
    x = np.resize(open_dataset(tiny_dataset).load("train"), (n, 64, 64, 1))
    m.encoder = _refuses_empty(m.encoder)
    means, _ = encode(m, x)
    one_by_one = np.concatenate([encode(m, x[i:i + 1])[0] for i in range(n)])
    np.testing.assert_allclose(means, one_by_one, rtol=1e-4, atol=1e-5)
