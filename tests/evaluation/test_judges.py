"""judges.py: the pretrained judges (musicnn, basic-pitch) and the two-sample test and inversion
consistency they sit beside. No network: the weights come from the installed wheels."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vae_tfp.config import spectrogram_preset

REFERENCE = r"""
import importlib.util, json, sys
import numpy as np, tensorflow as tf
folder, path = sys.argv[1], sys.argv[2]
x = np.load(path)
spec = importlib.util.spec_from_file_location("musicnn_models", folder + "/models.py")
models = importlib.util.module_from_spec(spec); spec.loader.exec_module(models)
g = tf.Graph()
with g.as_default():
    with tf.name_scope("model"):
        xp = tf.compat.v1.placeholder(tf.float32, [None, x.shape[1], 96]); training = tf.compat.v1.placeholder(tf.bool)
        y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(xp, training, "MTT_musicnn", 50)
    session = tf.compat.v1.Session(graph=g)
    tf.compat.v1.train.Saver().restore(session, folder + "/MTT_musicnn/")
    out = session.run({"logits": y, "penultimate": penultimate, "mean_pool": mean_pool, "max_pool": max_pool},
                      {xp: x, training: False})
np.savez(path + ".out.npz", **out)
"""


def tones(seconds, sr, freqs, rng=None, noise=0.0):
    t = np.arange(int(seconds * sr)) / sr
    out = [sum(0.4 / k * np.sin(2 * np.pi * f * k * t) for k in range(1, 5)) * np.exp(-t / seconds) for f in freqs]
    out = np.stack(out).astype(np.float32)
    return out + noise * rng.standard_normal(out.shape).astype(np.float32) if noise else out


def test_musicnn_reimplementation_equals_the_packages_own_graph(tmp_path, rng):
    """The package's TF1 graph (models.py, built in a graph of its own in another process, as
    tf.compat.v1.layers needs legacy Keras) and the tf_keras rebuild give the same outputs."""
    from vae_tfp.evaluation.judges import musicnn, musicnn_input, package_folder

    audio = np.concatenate([tones(3.0, 16000, [220.0, 440.0]), 0.1 * rng.standard_normal((1, 48000)).astype(np.float32)])
    x = musicnn_input(audio, 16000)
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", REFERENCE, str(package_folder("musicnn", "musicnn")),
                           str(tmp_path / "x.npy")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref = np.load(tmp_path / "x.npy.out.npz")
    ours = musicnn()(x, training=False)
    for key in ("logits", "penultimate", "mean_pool", "max_pool"):
        scale = np.abs(ref[key]).max()
        assert np.abs(ours[key].numpy() - ref[key]).max() <= 1e-5 * max(scale, 1.0), key  # measured: 0.0


def test_fad_of_a_set_with_itself_is_zero_and_of_noise_far_above_the_real_floor(rng):
    from vae_tfp.evaluation.judges import fad, musicnn_embed

    sr = 16000
    real = tones(2.0, sr, 110 * 2 ** (np.arange(24) / 12))
    other = tones(2.0, sr, 116 * 2 ** (np.arange(24) / 12))
    noise = 0.3 * rng.standard_normal(real.shape).astype(np.float32)
    e_real, e_other, e_noise = (musicnn_embed(a, sr) for a in (real, other, noise))
    assert e_real.shape == (24, 200)
    assert fad(e_real, e_real) == pytest.approx(0.0, abs=1e-6)
    floor = fad(e_real, e_other)
    assert fad(e_real, e_noise) > 5 * floor


def test_basic_pitch_finds_a4_on_440_hz_and_the_pitch_of_embedded_notes():
    from vae_tfp.data.demo_data import render_note
    from vae_tfp.evaluation.judges import note_activations, pitch_accuracy, pitch_stats

    sr = 22050
    t = np.arange(2 * sr) / sr
    a4 = pitch_stats(note_activations((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr))
    assert a4["midi"][0] == 69 and a4["confident_single"][0]
    pitches = np.array([48, 60, 67, 72])
    notes = np.stack([render_note(program, p, 100, sample_rate=sr, hold=1.5, length=2.0)
                      for program, p in zip((0, 40, 73, 24), pitches)])
    stats = pitch_stats(note_activations(notes, sr))
    assert pitch_accuracy(stats["midi"], pitches)["pitch_accuracy_1"] == 1.0, stats["midi"]
    chord = (tones(2.0, sr, [261.63, 329.63, 392.0]).sum(0) / 3)[None]
    assert not pitch_stats(note_activations(chord, sr))["confident_single"][0]  # three notes: no single pitch


def test_two_sample_test_is_at_chance_for_halves_of_one_set_and_near_one_against_the_mean():
    from vae_tfp.evaluation.sample_metrics import audio_statistics, two_sample_accuracy
    from vae_tfp.audio.spectrogram import spectrogram

    cfg = spectrogram_preset("tiny")
    rng = np.random.default_rng(3)
    freqs = rng.uniform(100, 1500, 160)
    images = spectrogram(tones(cfg.clip_seconds, cfg.sample_rate, freqs, rng=rng, noise=0.01), cfg)
    features = audio_statistics(images, cfg)
    order = rng.permutation(len(features))
    halves = two_sample_accuracy(features[order[:80]], features[order[80:]])
    mean = np.repeat(images.mean(0, keepdims=True), len(images), 0)
    against_mean = two_sample_accuracy(features, audio_statistics(mean, cfg))
    assert 0.3 <= halves <= 0.7 and against_mean >= 0.95, (halves, against_mean)


def test_audio_statistics_ignore_what_is_below_the_audible_floor():
    from vae_tfp.evaluation.sample_metrics import audio_statistics

    cfg = spectrogram_preset("tiny")
    quiet = np.zeros((2, *cfg.shape), np.float32)
    quiet[1] += 0.05  # -75.7 dB: inaudible, like a decoder's faint haze where the real clip is exactly 0
    f = audio_statistics(quiet, cfg)
    np.testing.assert_array_equal(f[0], f[1])


def test_inversion_consistency_is_low_for_real_images_and_higher_for_blurred_ones():
    from vae_tfp.audio.metrics import inversion_consistency
    from vae_tfp.audio.spectrogram import spectrogram

    cfg = spectrogram_preset("tiny")
    real = spectrogram(tones(cfg.clip_seconds, cfg.sample_rate, [200.0, 300.0, 450.0, 700.0]), cfg)
    blurred = np.repeat(real.mean(2, keepdims=True), real.shape[2], 2)  # no signal has a flat, onset-free image
    sc_real, sc_blur = inversion_consistency(real, cfg), inversion_consistency(blurred, cfg)
    assert sc_real.shape == (4,) and sc_real.max() < sc_blur.min()
    assert inversion_consistency(real[:0], cfg).shape == (0,)


def test_the_in_graph_inconsistency_tells_real_from_blurred_has_gradients_and_compiles():
    """inconsistency_tf, the loss twin of inversion_consistency: low for a signal's image, high for
    a blurred one, a finite gradient (silence included: 1, no NaN), the same value under XLA."""
    import tensorflow as tf

    from vae_tfp.audio.metrics import inconsistency_tf
    from vae_tfp.audio.spectrogram import spectrogram

    from scipy.ndimage import uniform_filter1d

    cfg = spectrogram_preset("default")  # at 64 bins (tiny) a smear along frequency is still nearly a signal's
    real = spectrogram(tones(cfg.clip_seconds, cfg.sample_rate, [200.0, 300.0, 450.0, 700.0]), cfg)
    blurred = uniform_filter1d(real, 5, axis=1)  # harmonics 5 bins wide: wider than any window's main lobe
    both = tf.Variable(np.concatenate([real, blurred, np.zeros_like(real[:1])]))
    with tf.GradientTape() as tape:
        values = inconsistency_tf(both, cfg)
        loss = tf.reduce_sum(values)
    values, grad = values.numpy(), tape.gradient(loss, both).numpy()
    assert values[:4].max() < 0.05 and values[4:8].min() > 0.15, values  # PGHI + 32 (the judge): 0.013 / 0.198
    assert values[8] == pytest.approx(1.0)
    assert np.isfinite(grad).all() and np.abs(grad[4:8]).sum() > 0
    compiled = tf.function(lambda x: inconsistency_tf(x, cfg), jit_compile=True)(both)
    np.testing.assert_allclose(compiled.numpy(), values, rtol=1e-2)  # fast Griffin-Lim amplifies float order
