import dataclasses
import json
import re

import pytest

from vae_tfp.config import SPECTROGRAM_PRESETS, SpectrogramConfig, model_spectrogram, spectrogram_preset, spectrogram_preset_name
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


@pytest.mark.parametrize("bad, named", [
    ({"hop_length": 0}, "hop_length=0 "), ({"n_fft": 1023}, "n_fft=1023 "), ({"n_frames": 1}, "n_frames=1 "),
    ({"sample_rate": 10}, "sample_rate=10 "), ({"max_db": -90.0}, "max_db=-90.0 "),
    ({"hop_length": 4096}, "hop_length=4096 "), ({"ref_amplitude": 0.0}, "ref_amplitude=0.0 "),
    ({"min_db": float("nan")}, "min_db=nan "), ({"n_fft": "1024"}, "n_fft='1024' "),
    ({"n_fft": 2_000_000, "hop_length": 1000}, "1000000 x 512 spectrogram"),
    ({"n_frames": 1_000_000}, "512 x 1000000 spectrogram"),
])
def test_invalid_configs_raise_config_error_naming_the_value(bad, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        SpectrogramConfig(**bad)


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown keys"):
        SpectrogramConfig.from_dict({"n_fft": 1024, "evil": 1})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown spectrogram preset"):
        spectrogram_preset("huge")


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        spectrogram_preset("default").n_fft = 2048


def test_model_presets_map_to_their_spectrogram_presets():
    from vae_tfp.config import model_preset

    assert model_spectrogram("default") == spectrogram_preset("default") == model_preset("default").spectrogram
    assert model_preset("small").input_shape == spectrogram_preset("small").shape
    assert model_spectrogram("small").shape == (128, 128, 1)
    assert spectrogram_preset_name(model_spectrogram("tiny")) == "tiny"
    assert spectrogram_preset_name(spectrogram_preset("tiny").__class__(n_frames=77)) is None
    with pytest.raises(ConfigError, match="unknown model preset"):
        model_spectrogram("huge")


def test_a_model_config_derives_its_input_shape_from_its_spectrogram():
    """No second copy of the shape: the model config holds its SpectrogramConfig, named or spelled out."""
    from vae_tfp.config import ModelConfig, model_preset

    tiny = model_preset("tiny")
    spec = spectrogram_preset("tiny").__class__(sample_rate=16000, n_fft=128, hop_length=64, n_frames=64)
    moved = tiny.for_spectrogram(spec)
    assert moved.spectrogram == spec and moved.input_shape == (64, 64, 1) and tiny.for_spectrogram(tiny.spectrogram) is tiny
    named = ModelConfig.from_dict({**tiny.to_dict(), "spectrogram": "tiny"})
    assert named == tiny and "input_shape" not in tiny.to_dict()
    with pytest.raises(ConfigError, match=r"decoder output 64x64 does not match the spectrogram's 512x512"):
        tiny.for_spectrogram(spectrogram_preset("default"))
    with pytest.raises(ConfigError, match="names its spectrogram instead"):
        ModelConfig.from_dict({**tiny.to_dict(), "input_shape": [64, 64, 1]})
