import numpy as np
import pytest

from vae_tfp.config import spectrogram_preset
from vae_tfp.evaluation.time_structure import clip_statistics, contour_correlations, correlation_summary, levels_db, statistics_distance

TINY = spectrogram_preset("tiny")


def notes_at(starts, config=TINY, *, decay=6.0, level=0.85, bins=(10, 20, 30)):
    """Images [n, bins, frames, 1]: a decaying harmonic note starting at each frame of ``starts`` (one note per
    clip, or several when an entry is a list); silence elsewhere."""
    h, w, _ = config.shape
    out = np.zeros((len(starts), h, w, 1), np.float32)
    t = np.arange(w)
    for i, s in enumerate(starts):
        for s0 in np.atleast_1d(s):
            env = np.where(t >= s0, level * np.exp(-(t - s0) / decay), 0.0)
            for b in bins:
                out[i, b, :, 0] = np.maximum(out[i, b, :, 0], env)
    return out


def test_contours_correlate_with_themselves_not_with_shifted_or_constant_clips():
    real = notes_at([5, 20, 40])
    same = contour_correlations(real, real, TINY)
    assert np.allclose(same["loudness_corr"], 1) and np.allclose(same["onset_corr"], 1)
    shifted = contour_correlations(real, notes_at([30, 45, 10]), TINY)
    assert (shifted["onset_corr"] < 0.2).all() and (shifted["loudness_corr"] < 0.5).all()
    flat = contour_correlations(real, np.full_like(real, 0.5), TINY)  # the dataset-mean image of a smear
    assert (flat["loudness_corr"] == 0).all() and (flat["onset_corr"] == 0).all()
    with pytest.raises(ValueError, match="pair clips"):
        contour_correlations(real, real[:2], TINY)


def test_correlation_summary_gives_a_chance_level_from_other_clips_and_none_for_one_clip():
    real = notes_at([3, 14, 25, 36, 47])
    out = correlation_summary(real, real, TINY)
    assert out["onset_corr"] == pytest.approx(1) and out["onset_corr_chance"] < 0.3
    one = correlation_summary(real[:1], real[:1], TINY)
    assert "onset_corr_chance" not in one and one["loudness_corr"] == pytest.approx(1)


def test_levels_are_floored_so_inaudible_differences_do_not_count():
    quiet = np.zeros((1,) + TINY.shape, np.float32)
    quieter = quiet + 0.05  # -75.7 dB: below the -60 dB floor
    assert np.array_equal(levels_db(quiet, TINY), levels_db(quieter, TINY))


def test_onset_rate_counts_the_onsets_and_a_flat_clip_has_none():
    clips = np.concatenate([notes_at([[4, 24, 44]]), notes_at([[10]]), np.full((1,) + TINY.shape, 0.3, np.float32)])
    stats = clip_statistics(clips, TINY)
    assert stats.shape == (3, 3)
    assert stats[:, 0] * TINY.clip_seconds == pytest.approx([3, 1, 0])
    assert stats[2, 1] == 0 and stats[2, 2] == 0  # flat: no loudness range, no flux
    assert stats[0, 1] > 1  # the notes rise and decay (3 of 64 bins: a few dB of the mean over bins)


def test_statistics_distance_is_small_for_the_same_distribution_and_large_for_a_smear(rng):
    starts = lambda n: [list(rng.choice(np.arange(2, 60), rng.integers(1, 4), replace=False)) for _ in range(n)]  # noqa: E731
    reference = clip_statistics(notes_at(starts(60)), TINY)
    same = statistics_distance(reference, clip_statistics(notes_at(starts(60)), TINY))
    smear = statistics_distance(reference, clip_statistics(np.full((60,) + TINY.shape, 0.4, np.float32), TINY))
    assert same["time_w1"] < 0.4 < 1.0 < smear["time_w1"]
    assert smear["onset_rate"] == 0


@pytest.mark.parametrize("variant, epochs", [("global", 80), ("sequence", 40)])
def test_the_model_reconstructs_the_timing_of_onsets(variant, epochs):
    """Clips that differ only in when the same note starts: the reconstructions' onsets must be where the real
    ones are (a model that draws the average note everywhere scores about the chance level). ``global``: the
    tiny preset, one code per clip (0.72 measured at 75 epochs; 0.0 at 25, the average note); ``sequence``: 8
    latent steps of 2 dimensions, 1 free nat each (0.71 at 40 epochs; 0.35 at 25)."""
    import tf_keras as keras

    from vae_tfp.config import model_preset
    from vae_tfp.model.networks import VAE, make_optimizer, posterior_stats, reconstruction_mean

    rng = np.random.default_rng(0)
    x = notes_at(rng.integers(2, 56, 256))
    test = notes_at(rng.integers(2, 56, 48))
    config = model_preset("tiny")
    if variant == "sequence":
        config = config.replace(latent_dim=16, latent_steps=8, free_bits=1.0, posterior_init_scale=0.05)
    keras.utils.set_random_seed(0)
    vae = VAE(config)
    vae.compile(optimizer=make_optimizer(config))
    vae.fit(x, batch_size=32, epochs=epochs, verbose=0)
    means, _ = posterior_stats(vae.encoder, test)
    out = correlation_summary(test, reconstruction_mean(vae.decoder(means)).numpy(), TINY)
    assert out["onset_corr"] > 0.6, out
    assert out["onset_corr_chance"] < 0.3, out


def test_statistics_are_the_same_in_chunks_and_at_once_and_empty_sets_have_no_rows(monkeypatch):
    import vae_tfp.evaluation.time_structure as ts

    rng = np.random.default_rng(1)
    clips = notes_at(list(rng.integers(2, 56, 7)))
    whole = clip_statistics(clips, TINY), contour_correlations(clips, clips[::-1], TINY)
    monkeypatch.setattr(ts, "CHUNK", 3)  # 7 clips: chunks of 3, 3 and a remainder of 1
    chunked = clip_statistics(clips, TINY), contour_correlations(clips, clips[::-1], TINY)
    np.testing.assert_array_equal(whole[0], chunked[0])
    for key in whole[1]:
        np.testing.assert_array_equal(whole[1][key], chunked[1][key])
    assert clip_statistics(clips[:0], TINY).shape == (0, 3)
    assert contour_correlations(clips[:0], clips[:0], TINY)["onset_corr"].shape == (0,)
