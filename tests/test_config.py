import json

import pytest

from vae_tfp.config import SPECTROGRAM_PRESETS, SpectrogramConfig, spectrogram_preset
from vae_tfp.errors import ConfigError


def test_default_is_512_by_512():
    c = spectrogram_preset("default")
    assert c.shape == (512, 512, 1)
    assert c.clip_samples == 511 * 256
    assert abs(c.clip_seconds - 5.93) < 0.01


@pytest.mark.parametrize("name", sorted(SPECTROGRAM_PRESETS))
def test_presets_round_trip_through_json(name):
    c = SPECTROGRAM_PRESETS[name]
    assert SpectrogramConfig.from_dict(json.loads(c.to_json())) == c


@pytest.mark.parametrize("bad", [
    {"hop_length": 0}, {"n_fft": 1023}, {"n_frames": 1}, {"sample_rate": 10}, {"max_db": -90.0},
    {"hop_length": 4096}, {"ref_amplitude": 0.0}, {"min_db": float("nan")}, {"n_fft": "1024"},
    {"n_fft": 2_000_000, "hop_length": 1000}, {"n_frames": 1_000_000},
])
def test_invalid_configs_raise_config_error_naming_the_value(bad):
    with pytest.raises(ConfigError) as err:
        SpectrogramConfig(**bad)
    assert any(k in str(err.value) for k in bad) or "spectrogram" in str(err.value)


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown keys"):
        SpectrogramConfig.from_dict({"n_fft": 1024, "evil": 1})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown spectrogram preset"):
        spectrogram_preset("huge")


def test_config_is_frozen():
    with pytest.raises(Exception):
        spectrogram_preset("default").n_fft = 2048
