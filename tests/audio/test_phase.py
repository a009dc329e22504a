import librosa
import numpy as np
import pytest

from vae_tfp.audio.spectrogram import Inversion
from vae_tfp.config import SPECTROGRAM_PRESETS, spectrogram_preset
from vae_tfp.errors import ConfigError
from vae_tfp.audio.metrics import roundtrip
from vae_tfp.audio.phase import initial_phase, pghi
from vae_tfp.audio.spectrogram import _PAD_MODE, griffin_lim, griffin_lim_tf, spectrogram, to_magnitude


@pytest.fixture(scope="module")
def default():
    return spectrogram_preset("default")


def _signals(config):
    t = np.arange(config.clip_samples) / config.sample_rate
    sweep = 200 * t + 0.5 * (3000 - 200) / t[-1] * t**2  # 200 Hz → 3 kHz
    return {"tone": 0.5 * np.sin(2 * np.pi * 440.3 * t), "chirp": 0.5 * np.sin(2 * np.pi * sweep)}


def _stft(x, config):
    return librosa.stft(np.asarray(x, np.float32), n_fft=config.n_fft, hop_length=config.hop_length, window="hann",
                        center=True, pad_mode=_PAD_MODE)


@pytest.mark.parametrize("signal", ["tone", "chirp"])
def test_pghi_alone_is_far_closer_than_a_random_phase(default, signal):
    x = _signals(default)[signal].astype(np.float32)
    sc = {init: roundtrip(x, default, inversion=Inversion(n_iter=0, phase_init=init))[0].spectral_convergence
          for init in ("random", "pghi")}
    assert sc["random"] > 0.5, sc
    assert sc["pghi"] < 0.1 * sc["random"], sc


def _phase_step_error(x, config, axis):
    """Median |wrapped error| of PGHI's phase step along ``axis`` (1 = time, 0 = frequency), at
    coefficients within 20 dB of the loudest, against the true STFT's."""
    X = _stft(x, config)
    magnitude = np.abs(X)
    phase = pghi(magnitude, config)
    strong = magnitude > 0.1 * magnitude.max()
    both = strong[:, 1:] & strong[:, :-1] if axis == 1 else strong[1:] & strong[:-1]
    error = np.angle(np.exp(1j * (np.diff(phase, axis=axis) - np.diff(np.angle(X), axis=axis))))
    return float(np.median(np.abs(error[both]))), int(both.sum())


def test_impulse_train_time_direction_phase_is_right(default):
    """Isolated impulses (2000 samples apart, window 1024): the phase advance from frame to frame
    at every bin is 2 pi a m / M exactly; along frequency it follows from the time gradient."""
    x = np.zeros(default.clip_samples)
    x[::2000] = 1.0
    time_error, n = _phase_step_error(x, default, axis=1)
    assert n > 10_000 and time_error < 1e-3
    freq_error, n = _phase_step_error(x, default, axis=0)
    assert n > 10_000 and freq_error < 0.1


def test_tone_phase_advances_at_its_frequency(default):
    error, n = _phase_step_error(_signals(default)["tone"], default, axis=1)
    assert n > 500 and error < 0.05


@pytest.mark.parametrize("name", sorted(SPECTROGRAM_PRESETS))
def test_every_preset_inverts_with_every_start(name):
    c = SPECTROGRAM_PRESETS[name]
    t = np.arange(c.clip_samples) / c.sample_rate
    x = (0.3 * np.sin(2 * np.pi * c.sample_rate / 20.3 * t)).astype(np.float32)
    s = spectrogram(x, c)
    for init in ("pghi", "random", "zeros"):
        audio = griffin_lim(s, c, inversion=Inversion(n_iter=2, phase_init=init))
        assert audio.shape == (c.clip_samples,) and np.all(np.isfinite(audio))
    sc = {init: roundtrip(x, c, inversion=Inversion(n_iter=0, phase_init=init))[0].spectral_convergence for init in ("random", "pghi")}
    assert sc["pghi"] < 0.25 * sc["random"], sc


def test_silence_and_a_single_bin_give_no_nan(default):
    silent = np.zeros((default.n_fft // 2 + 1, default.n_frames))
    assert np.all(np.isfinite(pghi(silent, default)))
    one = silent.copy()
    one[40, 100] = 1.0
    phase = pghi(one, default)
    assert np.all(np.isfinite(phase))
    spec = np.zeros(default.shape, np.float32)
    spec[40, 100] = 0.8
    assert np.all(np.isfinite(griffin_lim(spec, default, inversion=Inversion(n_iter=1))))
    assert np.all(np.isfinite(griffin_lim_tf(spec[None], default, inversion=Inversion(n_iter=1))))


def test_random_start_is_librosas(tiny, rng):
    x = (0.3 * np.sin(2 * np.pi * 330 * np.arange(tiny.clip_samples) / tiny.sample_rate)
         + 0.05 * rng.standard_normal(tiny.clip_samples)).astype(np.float32)
    s = spectrogram(x, tiny)
    ref = librosa.griffinlim(to_magnitude(s, tiny), n_iter=6, hop_length=tiny.hop_length, n_fft=tiny.n_fft,
                             window="hann", center=True, pad_mode=_PAD_MODE, momentum=0.99, init="random",
                             random_state=3, length=tiny.clip_samples)
    np.testing.assert_array_equal(griffin_lim(s, tiny, inversion=Inversion(n_iter=6, phase_init="random"), seed=3), ref)


@pytest.mark.parametrize("init", ["pghi", "random", "zeros"])
def test_numpy_and_tf_inversions_agree(tiny, init):
    s = spectrogram((0.3 * np.sin(2 * np.pi * 500 * np.arange(tiny.clip_samples) / tiny.sample_rate)).astype(np.float32),
                    tiny)
    np.testing.assert_allclose(griffin_lim_tf(s[None], tiny, inversion=Inversion(n_iter=4, phase_init=init))[0],
                               griffin_lim(s, tiny, inversion=Inversion(n_iter=4, phase_init=init)), atol=1e-4)


def test_compiled_and_python_heap_loops_agree(default):
    magnitude = np.abs(_stft(_signals(default)["chirp"], default))
    np.testing.assert_allclose(pghi(magnitude, default), pghi(magnitude, default, use_numba=False))


def test_unknown_phase_init_names_the_choices(tiny):
    with pytest.raises(ConfigError, match="phase_init='guess' must be one of pghi, random, zeros"):
        initial_phase(np.ones((tiny.n_fft // 2 + 1, 4)), tiny, "guess")


@pytest.mark.parametrize("bad, match", [({"phase_init": "guess"}, "phase_init='guess' must be one of pghi, random, zeros"),
                                        ({"n_iter": -1}, r"n_iter=-1 must be an integer in \[0, 10000\]"),
                                        ({"n_iter": 2.5}, "n_iter=2.5"), ({"momentum": float("nan")}, "momentum=nan")])
def test_inversion_settings_are_one_checked_object(bad, match):
    from vae_tfp.audio.spectrogram import DEFAULT_INVERSION

    with pytest.raises(ConfigError, match=match):
        Inversion(**bad)
    assert DEFAULT_INVERSION == Inversion(n_iter=32, phase_init="pghi", momentum=0.99)
    assert DEFAULT_INVERSION.describe() == "pghi start + 32 fast Griffin-Lim iterations"


@pytest.mark.parametrize("signal", ["tone", "chirp"])
def test_the_time_integrated_phase_advances_along_time_as_the_signals_own(default, signal):
    """The in-graph phase (PGHI's time direction only, in TensorFlow) steps from frame to frame as
    the true STFT's phase does at the peaks (within 6 dB of the loudest): a tone off a bin centre and
    a chirp. On a peak's flanks the Gaussian-window estimate is off (a Hann window is not one), and
    unlike PGHI's heap nothing integrates the peak's phase across to them: Griffin-Lim mends that."""
    import tensorflow as tf

    from vae_tfp.audio.phase import time_integrated_phase_tf

    X = _stft(_signals(default)[signal], default)
    magnitude = np.abs(X)
    phase = time_integrated_phase_tf(tf.constant(magnitude.T[None], tf.float32), default).numpy()[0].T
    strong = magnitude > 0.5 * magnitude.max()
    both = strong[:, 1:] & strong[:, :-1]
    error = np.angle(np.exp(1j * (np.diff(phase, axis=1) - np.diff(np.angle(X), axis=1))))
    assert both.sum() > 300 and np.median(np.abs(error[both])) < 0.05
    assert np.all(phase[:, 0] == pytest.approx(np.pi * np.arange(len(phase))))  # from 0 at frame 0 (frame-centre origin)
