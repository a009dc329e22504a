import os

import numpy as np
import pytest
import soundfile as sf

from conftest import harmonic, write
from vae_tfp.audio.io import audio_info, find_audio_files, iter_clips, load_audio, write_wav
from vae_tfp.errors import AudioError


@pytest.mark.parametrize("sr,channels,subtype,ext", [
    (16000, 1, "PCM_16", "wav"),
    (44100, 2, "PCM_16", "wav"),
    (22050, 1, "PCM_U8", "wav"),
    (48000, 2, "PCM_24", "wav"),
    (32000, 1, "FLOAT", "wav"),
    (8000, 1, "DOUBLE", "wav"),
    (44100, 2, "PCM_24", "flac"),
    (22050, 1, "VORBIS", "ogg"),
    (192000, 8, "PCM_32", "wav"),
])
def test_load_any_format_to_mono_at_target_rate(tmp_path, sr, channels, subtype, ext):
    x = harmonic(0.5, sr, channels=channels)
    path = write(tmp_path / f"x.{ext}", x, sr, subtype)
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 2  # 0.5 s at 16 kHz
    reference = harmonic(0.5, 16000)
    n = min(len(y), len(reference))
    tol = 0.02 if subtype != "PCM_U8" else 0.05
    assert np.sqrt(np.mean((y[100:n - 100] - reference[100:n - 100]) ** 2)) < tol + (0.05 if ext == "ogg" else 0)


def test_stereo_is_averaged(tmp_path):
    left = harmonic(0.2, 16000)
    path = write(tmp_path / "s.wav", np.stack([left, np.zeros_like(left)], 1), 16000, "FLOAT")
    np.testing.assert_allclose(load_audio(path, 16000), left / 2, atol=1e-6)


def test_mp3_when_decoder_available(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3")
    path = write(tmp_path / "x.mp3", harmonic(1.0, 44100), 44100, "MPEG_LAYER_III")
    assert abs(len(load_audio(path, 22050)) - 22050) < 2000  # mp3 adds encoder delay


def test_iter_clips_cuts_and_pads(tmp_path, tiny):
    n = tiny.clip_samples
    path = write(tmp_path / "x.wav", np.ones(int(2.6 * n), np.float32) * 0.1, tiny.sample_rate, "FLOAT")
    clips = list(iter_clips(path, tiny))
    assert [c.offset * tiny.sample_rate for c in clips] == [0, n, 2 * n]  # 0.6 of a clip ≥ half: kept
    assert all(len(c.audio) == n for c in clips)
    assert clips[-1].valid_samples == int(2.6 * n) - 2 * n
    assert np.all(clips[-1].audio[clips[-1].valid_samples:] == 0)


@pytest.mark.parametrize("hop_fraction,expected", [(0.5, 6), (2.0, 2), (1.0, 3)])
def test_iter_clips_hop(tmp_path, tiny, hop_fraction, expected):
    n = tiny.clip_samples
    x = np.arange(int(3.2 * n), dtype=np.float32) / (4 * n)
    path = write(tmp_path / "x.wav", x, tiny.sample_rate, "FLOAT")
    clips = list(iter_clips(path, tiny, clip_hop=hop_fraction * tiny.clip_seconds))
    assert len(clips) == expected
    for c in clips:  # each clip holds the samples at its offset
        start = int(round(c.offset * tiny.sample_rate))
        np.testing.assert_allclose(c.audio[: c.valid_samples], x[start: start + c.valid_samples], atol=1e-6)


def test_short_file_gives_one_padded_clip(tmp_path, tiny):
    path = write(tmp_path / "short.wav", harmonic(0.01, tiny.sample_rate), tiny.sample_rate)  # 10 ms
    clips = list(iter_clips(path, tiny))
    assert len(clips) == 1 and clips[0].valid_samples == 80


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"hello, this is text renamed to wav", "cannot decode"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "cannot decode"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "cannot decode"),
])
def test_undecodable_files_raise_audio_error_naming_the_file(tmp_path, content, match):
    path = tmp_path / "bad file é.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=match) as err:
        load_audio(path, 16000)
    assert "bad file é.wav" in str(err.value)


def test_header_only_wav_has_no_samples(tmp_path):
    path = write(tmp_path / "h.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no samples|cannot decode"):
        load_audio(path, 16000)


def test_nan_samples_are_rejected(tmp_path):
    x = harmonic(0.3, 16000)
    x[1000] = np.nan
    path = write(tmp_path / "nan.wav", x, 16000, "FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf.*0.062"):
        load_audio(path, 16000)


def test_silent_audio_loads_with_warning(tmp_path):
    path = write(tmp_path / "silent.wav", np.zeros(1600, np.float32), 16000)
    with pytest.warns(UserWarning, match="silent"):
        assert not load_audio(path, 16000).any()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav", 16000)
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path, 16000)


def test_symlink_loop(tmp_path):
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    with pytest.raises(AudioError, match="loop.wav"):
        load_audio(loop, 16000)


def test_write_wav_limits_peak_and_round_trips(tmp_path):
    x = harmonic(0.2, 16000, amp=3.0)
    path = write_wav(tmp_path / "a" / "o.wav", x, 16000)
    info = audio_info(path)
    assert info.subtype == "PCM_16" and info.sample_rate == 16000
    y = load_audio(path, 16000)
    assert 0.98 < np.abs(y).max() <= 0.991


def test_find_audio_files_is_sorted_recursive_and_skips_dir_links(tmp_path):
    for rel in ("b/2.wav", "a/1.flac", "a/readme.txt", "c.ogg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "a" / "up")  # a directory loop must not be followed
    assert [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)] == ["c.ogg", "a/1.flac", "b/2.wav"]


def test_non_utf8_file_name(tmp_path):
    path = tmp_path / os.fsdecode(b"bad_\xff\xfe.wav")
    sf.write(os.fsencode(path), harmonic(0.1, 16000), 16000)
    assert len(load_audio(path, 16000)) == 1600
