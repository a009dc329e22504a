import json

import numpy as np
import pytest

from conftest import harmonic, write
from vae_tfp.audio.spectrogram import Inversion
from vae_tfp.audio.metrics import clipped_fraction, estimate_pitch, inversion_curves, log_spectral_distance, roundtrip_file, roundtrip_files, spectral_convergence, summarize
from vae_tfp.audio.spectrogram import spectrogram


def test_identical_images_have_zero_distance(tiny, rng):
    s = rng.uniform(0, 1, tiny.shape).astype(np.float32)
    assert spectral_convergence(s, s, tiny) == 0.0
    assert log_spectral_distance(s, s, tiny) == 0.0


def test_distances_grow_with_error(tiny, rng):
    s = rng.uniform(0.2, 0.8, tiny.shape).astype(np.float32)
    small, large = s + 0.01, s + 0.1
    assert spectral_convergence(s, small, tiny) < spectral_convergence(s, large, tiny)
    assert log_spectral_distance(s, large, tiny) == pytest.approx(0.1 * tiny.db_range, rel=1e-4)


def test_clipped_fraction_counts_top_bins(tiny):
    x = harmonic(tiny.clip_seconds, tiny.sample_rate, amp=0.2)
    assert clipped_fraction(spectrogram(x, tiny)) == 0.0
    assert clipped_fraction(spectrogram(x * 100, tiny)) > 0.0


def test_roundtrip_file(tmp_path, tiny):
    path = write(tmp_path / "t.wav", harmonic(1.2, 8000), 8000)
    results = roundtrip_file(path, tiny)
    assert [round(o, 3) for o, _ in results] == [0.0, 0.504]
    assert all(r.spectral_convergence < 0.3 for _, r in results)


def test_roundtrip_files_writes_both_wavs_and_metrics_and_skips_bad_files(tmp_path, tiny):
    good = write(tmp_path / "in" / "tone.wav", harmonic(1.2, 8000), 8000)
    same_stem = write(tmp_path / "in" / "other" / "tone.wav", harmonic(0.6, 8000, 440.0), 8000)
    bad = tmp_path / "in" / "broken.wav"
    bad.write_text("not audio")
    lines = []
    result = roundtrip_files([good, bad, same_stem], tmp_path / "out", tiny, max_clips=2, inversion=Inversion(n_iter=4), log=lines.append)
    assert [f["original"] for f in result["files"]] == ["tone_original.wav", "tone-2_original.wav"]
    for f in result["files"]:
        assert (tmp_path / "out" / f["original"]).is_file() and (tmp_path / "out" / f["roundtrip"]).is_file()
    assert [len(f["clips"]) for f in result["files"]] == [2, 1]
    assert [s["path"] for s in result["skipped"]] == [str(bad)] and len(lines) == 1 and "broken.wav" in lines[0]
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["summary"] == result["summary"] and saved["summary"]["spectral_convergence"]["n"] == 3
    assert saved["summary"]["griffin_lim_iters"] == 4 and saved["spectrogram_config"] == tiny.to_dict()


def test_summarize():
    s = summarize(range(11))
    assert s["median"] == 5 and s["p90"] == 9 and s["n"] == 11


def test_inversion_curves_per_start_and_iterations(tiny):
    specs = spectrogram(np.stack([harmonic(tiny.clip_seconds, tiny.sample_rate, f0=f) for f in (200.0, 330.0)]), tiny)
    curves = inversion_curves(specs, tiny, iters=(0, 4), inits=("random", "pghi"))
    assert set(curves) == {"random", "pghi"} and set(curves["pghi"]) == {0, 4}
    sc = {init: {n: r["spectral_convergence"]["median"] for n, r in c.items()} for init, c in curves.items()}
    assert sc["random"][4] < sc["random"][0]  # iterating helps a random start
    assert sc["pghi"][0] < 0.5 * sc["random"][0]  # PGHI starts far closer
    assert curves["pghi"][4]["spectral_convergence"]["n"] == 2 and curves["random"][0]["seconds_per_clip"] > 0


@pytest.mark.parametrize("f0, midi", [(220.0, 57.0), (261.63, 60.0), (466.16, 70.0)])
def test_estimate_pitch_of_a_harmonic_tone(f0, midi):
    assert estimate_pitch(harmonic(2.0, 22050, f0), 22050) == pytest.approx(midi, abs=0.1)
    assert np.isnan(estimate_pitch(np.zeros(22050, np.float32), 22050))  # nothing voiced
