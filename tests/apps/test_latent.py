import numpy as np
import pytest

from vae_tfp.errors import ConfigError
from vae_tfp.apps.latent import interpolate, label_vector, principal_directions, project, weighted_average


def test_interpolation_endpoints(rng):
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    for spherical in (False, True):
        path = interpolate(a, b, 5, spherical=spherical)
        assert path.shape == (5, 8)
        np.testing.assert_allclose(path[0], a, atol=1e-5)
        np.testing.assert_allclose(path[-1], b, atol=1e-5)


def test_slerp_keeps_norm_of_equal_norm_endpoints():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(np.linalg.norm(interpolate(a, b, 7, spherical=True), axis=1), 1.0, atol=1e-6)
    assert np.linalg.norm(interpolate(a, b, 3)[1]) < 0.8  # linear shrinks in the middle


def test_weighted_average_and_label_vector():
    z = np.array([[0.0, 0.0], [2.0, 4.0]], np.float32)
    np.testing.assert_allclose(weighted_average(z, [3, 1]), [0.5, 1.0])
    np.testing.assert_allclose(label_vector(z, ["a", "b"], "b", "a"), [2.0, 4.0])
    with pytest.raises(ConfigError, match="label 'c' not found"):
        label_vector(z, ["a", "b"], "c", "a")
    with pytest.raises(ConfigError):
        weighted_average(z, [1, -1])


def test_principal_directions_find_the_spread(rng):
    z = rng.standard_normal((200, 5)) * [5, 1, 0.1, 0.1, 0.1]
    mean, dirs, std = principal_directions(z, 2)
    assert abs(abs(dirs[0, 0]) - 1) < 0.01 and std[0] > std[1] > 0.5


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_projection_shape(rng, method):
    z = np.concatenate([rng.standard_normal((20, 6)), rng.standard_normal((20, 6)) + 8])
    p = project(z, method)
    assert p.shape == (40, 2) and np.isfinite(p).all()
    # the two clusters stay apart
    assert np.linalg.norm(p[:20].mean(0) - p[20:].mean(0)) > np.std(p[:20], axis=0).max()
