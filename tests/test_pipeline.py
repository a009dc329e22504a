import pytest

from conftest import harmonic, write
from vae_tfp.config import model_spectrogram, spectrogram_preset, spectrogram_preset_name
from vae_tfp.errors import ConfigError, DatasetError
from vae_tfp.pipeline import prepare_audio_dir


def test_model_presets_map_to_their_spectrogram_presets():
    assert model_spectrogram("default") == spectrogram_preset("default")
    assert model_spectrogram("small").shape == (128, 128, 1)
    assert spectrogram_preset_name(model_spectrogram("tiny")) == "tiny"
    assert spectrogram_preset_name(spectrogram_preset("tiny").__class__(n_frames=77)) is None
    with pytest.raises(ConfigError, match="unknown model preset"):
        model_spectrogram("huge")


def test_own_audio_is_prepared_once_and_again_when_the_folder_changes(tmp_path):
    for name in ("mine", "other"):
        for label in ("kick", "snare"):
            write(tmp_path / name / label / f"{label}.wav", harmonic(1.2, 8000, 300 if label == "kick" else 900), 8000)
    messages = []
    first = prepare_audio_dir(tmp_path / "mine", tmp_path / "data", spec="tiny", log=messages.append)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert prepare_audio_dir(tmp_path / "mine", tmp_path / "data", spec="tiny", log=messages.append) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # reused, not prepared again
    assert first.name == "mine-tiny"
    other = prepare_audio_dir(tmp_path / "other", tmp_path / "data", spec="tiny", log=messages.append)
    assert other != first and (other / "manifest.json").exists()
    write(tmp_path / "elsewhere" / "mine" / "hat" / "hat.wav", harmonic(1.2, 8000, 2000), 8000)
    same_name = prepare_audio_dir(tmp_path / "elsewhere" / "mine", tmp_path / "data", spec="tiny", log=messages.append)
    assert same_name == first and any("preparing" in m and "again" in m for m in messages)
    from vae_tfp.dataset import load_manifest

    assert load_manifest(first)["labels"] == ["hat"]
    with pytest.raises(DatasetError, match="not a folder"):
        prepare_audio_dir(tmp_path / "nope", tmp_path / "data", spec="tiny")
