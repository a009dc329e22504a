import hashlib

import numpy as np
import soundfile as sf

from vae_tfp.data.demo_data import render_demo_data, render_note


def test_render_is_deterministic_and_labelled(tmp_path):
    kwargs = dict(sample_rate=8000, instruments={"piano": 0, "flute": 73}, pitches=(60, 72), velocities=(100,),
                  n_chorales=1, progress=False)
    a = render_demo_data(tmp_path / "a", **kwargs)
    render_demo_data(tmp_path / "b", **kwargs)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len([f for f in files if f.suffix == ".wav"]) == 2 * 2 + 1
    for f in files:
        assert hashlib.sha256((tmp_path / "a" / f).read_bytes()).digest() == \
            hashlib.sha256((tmp_path / "b" / f).read_bytes()).digest()
    assert set(a) == {"notes", "chorales"}
    x, sr = sf.read(tmp_path / "a" / "notes" / "piano" / "piano_060_v100.wav")
    assert sr == 8000 and len(x) == 4 * 8000 and 0.05 < np.abs(x).max() < 1.0
    chorale = next((tmp_path / "a" / "chorales").glob("*.wav"))
    assert sf.info(chorale).duration > 20


def test_pitch_is_audible_at_the_right_frequency():
    x = render_note(73, 69, 100, sample_rate=16000)[:16000]  # flute A4
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert abs(np.argmax(spectrum) - 440) < 8
