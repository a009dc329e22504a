"""Property and fuzz tests (hypothesis): configs, the dB mapping, and the audio loader on random bytes."""

import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vae_tfp.audio.io import load_audio
from vae_tfp.config import SpectrogramConfig
from vae_tfp.errors import AudioError, ConfigError
from vae_tfp.audio.spectrogram import magnitude_to_unit, spectrogram, to_magnitude


@st.composite
def valid_configs(draw):
    n_fft = 2 * draw(st.integers(8, 256))
    return SpectrogramConfig(
        sample_rate=draw(st.integers(1000, 48000)), n_fft=n_fft, hop_length=draw(st.integers(1, n_fft)),
        n_frames=draw(st.integers(2, 64)), min_db=draw(st.floats(-150, -20)), max_db=draw(st.floats(-10, 20)),
        ref_amplitude=draw(st.floats(0.01, 10)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs(), st.integers(0, 2**32 - 1))
def test_any_valid_config_gives_declared_shape_and_range(config, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, config.clip_samples).astype(np.float32)
    s = spectrogram(x, config)
    assert s.shape == config.shape == (config.n_fft // 2, config.n_frames, 1)
    assert s.dtype == np.float32 and 0.0 <= s.min() and s.max() <= 1.0


@settings(max_examples=60, deadline=None)
@given(valid_configs(), st.lists(st.floats(0.001, 1.0), min_size=1, max_size=50))
def test_db_mapping_inverts(config, values):
    u = np.array(values, np.float32).reshape(1, -1)
    back = magnitude_to_unit(to_magnitude(u, config, with_nyquist=False), config)
    np.testing.assert_allclose(back, u, atol=1e-4)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["sample_rate", "n_fft", "hop_length", "n_frames", "min_db", "max_db",
                                        "ref_amplitude", "bogus"]),
                       st.one_of(st.integers(-10**7, 10**7), st.floats(allow_nan=True), st.text(max_size=3),
                                 st.none(), st.booleans()), max_size=4))
def test_invalid_configs_raise_only_config_error(data):
    try:
        config = SpectrogramConfig.from_dict(data)
    except ConfigError:
        return
    assert config.n_bins * config.n_frames <= 4096 * 4096 and config.max_db > config.min_db


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096), st.sampled_from([b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS",
                                                  b"ID3\x03\x00", b"FORM\x00\x00\x00\x00AIFF"]),
       st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".aiff"]))
def test_fuzz_audio_loader_gives_audio_or_audio_error(tmp_path_factory, payload, header, ext):
    path = tmp_path_factory.mktemp("fuzz") / f"x{ext}"
    path.write_bytes(header + payload)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio = load_audio(path, 8000)
    except AudioError as err:
        assert str(path) in str(err)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
