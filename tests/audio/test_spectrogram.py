import numpy as np
import pytest

from conftest import harmonic
from vae_tfp.audio.spectrogram import Inversion
from vae_tfp.config import SPECTROGRAM_PRESETS, spectrogram_preset
from vae_tfp.audio.spectrogram import griffin_lim, griffin_lim_tf, magnitude_to_unit, spectrogram, spectrogram_tf, stft_magnitude, to_magnitude


@pytest.mark.parametrize("name", sorted(SPECTROGRAM_PRESETS))
def test_shape_dtype_and_range_for_every_preset(name, rng):
    c = SPECTROGRAM_PRESETS[name]
    x = (0.3 * rng.standard_normal(c.clip_samples)).astype(np.float32)
    s = spectrogram(x, c)
    assert s.shape == c.shape and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() <= 1.0 and s.max() > 0.3


@pytest.mark.parametrize("name", sorted(SPECTROGRAM_PRESETS))
def test_tf_path_agrees_with_librosa(name, rng):
    c = SPECTROGRAM_PRESETS[name]
    x = np.stack([harmonic(c.clip_seconds, c.sample_rate), (0.1 * rng.standard_normal(c.clip_samples))]).astype(np.float32)
    np.testing.assert_allclose(spectrogram_tf(x, c).numpy(), spectrogram(x, c), atol=2e-4)


def test_full_scale_sine_reads_zero_db(tiny):
    t = np.arange(tiny.clip_samples) / tiny.sample_rate
    x = np.sin(2 * np.pi * tiny.sample_rate / 8 * t).astype(np.float32)  # exactly on a bin
    expected = (0.0 - tiny.min_db) / tiny.db_range
    assert abs(spectrogram(x, tiny).max() - expected) < 1e-3


def test_mapping_is_global_not_per_clip(tiny):
    """Halving the amplitude lowers every bin by 6 dB: no per-clip normalisation."""
    x = harmonic(tiny.clip_seconds, tiny.sample_rate)
    a, b = spectrogram(x, tiny), spectrogram(x / 2, tiny)
    loud = (a > 0.3) & (b > 0.0)
    np.testing.assert_allclose((a - b)[loud] * tiny.db_range, 20 * np.log10(2), atol=0.05)


def test_magnitude_mapping_inverts(tiny, rng):
    u = rng.uniform(0.01, 1, (tiny.n_bins, tiny.n_frames)).astype(np.float32)
    np.testing.assert_allclose(magnitude_to_unit(to_magnitude(u, tiny, with_nyquist=False), tiny), u, atol=1e-5)
    assert to_magnitude(u, tiny).shape == (tiny.n_bins + 1, tiny.n_frames)


def test_stft_magnitude_frames(tiny):
    assert stft_magnitude(np.zeros(tiny.clip_samples, np.float32), tiny).shape == (tiny.n_fft // 2 + 1, tiny.n_frames)


# Measured on a 5-harmonic 220 Hz tone, 32 iterations: small 0.070, tiny 0.056, default 0.083
# (librosa); the TF implementation 0.073 / 0.080 / 0.092. Pinned with head-room for BLAS noise.
@pytest.mark.parametrize("name,limit", [("tiny", 0.10), ("small", 0.10)])
def test_round_trip_of_harmonic_tone_is_close(name, limit):
    from vae_tfp.audio.metrics import roundtrip

    c = SPECTROGRAM_PRESETS[name]
    x = harmonic(c.clip_seconds, c.sample_rate, amp=0.3)
    for batched in (False, True):
        r = roundtrip(x, c, batched=batched)[0]
        assert r.spectral_convergence < limit, (batched, r.spectral_convergence)
        assert r.audio_rt.shape == x.shape


def test_griffin_lim_is_seeded(tiny):
    s = spectrogram(harmonic(tiny.clip_seconds, tiny.sample_rate), tiny)
    np.testing.assert_array_equal(griffin_lim(s, tiny, seed=3), griffin_lim(s, tiny, seed=3))
    np.testing.assert_array_equal(griffin_lim_tf(s[None], tiny, seed=3), griffin_lim_tf(s[None], tiny, seed=3))


def test_griffin_lim_tf_batches(tiny, rng):
    specs = spectrogram((0.2 * rng.standard_normal((3, tiny.clip_samples))).astype(np.float32), tiny)
    out = griffin_lim_tf(specs, tiny, inversion=Inversion(n_iter=4))
    assert out.shape == (3, tiny.clip_samples) and np.isfinite(out).all()


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_the_tf_stft_is_tf_signals_without_a_gather_in_its_gradient(name):
    """_stft_tf frames by slicing (hop divides n_fft in every preset): the same numbers as
    tf.signal.stft, and a gradient without UnsortedSegmentSum, which has no deterministic GPU kernel."""
    import tensorflow as tf

    from vae_tfp.audio.spectrogram import _stft_tf

    cfg = spectrogram_preset(name)
    audio = tf.random.stateless_normal((2, cfg.clip_samples + 37), seed=[1, 2])
    expected = tf.signal.stft(tf.pad(audio, [[0, 0], [cfg.n_fft // 2] * 2]), cfg.n_fft, cfg.hop_length, cfg.n_fft,
                              tf.signal.hann_window)
    np.testing.assert_array_equal(_stft_tf(audio, cfg).numpy(), expected.numpy())

    def gradient(a):
        with tf.GradientTape() as tape:
            tape.watch(a)
            power = tf.reduce_sum(tf.abs(_stft_tf(a, cfg)))
        return tape.gradient(power, a)

    graph = tf.function(gradient).get_concrete_function(tf.TensorSpec(audio.shape)).graph.as_graph_def()
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert "RFFT" in ops and not ops & {"GatherV2", "UnsortedSegmentSum"}, sorted(ops)


def test_to_magnitude_tf_is_to_magnitude_in_tf_signals_layout():
    """The differentiable twin (stage 2's consistency term) and the NumPy original, held together:
    the floor (0) gives exact zeros, the Nyquist row is appended, frames come first."""
    from vae_tfp.audio.spectrogram import to_magnitude_tf

    cfg = spectrogram_preset("tiny")
    images = np.random.default_rng(0).uniform(0, 1, (3, *cfg.shape)).astype(np.float32)
    images[0, :5] = 0.0
    np.testing.assert_allclose(to_magnitude_tf(images, cfg).numpy(),
                               np.transpose(to_magnitude(images, cfg), (0, 2, 1)), rtol=1e-5, atol=0)
