"""vae_tfp/evaluation/diagnostics.py: the collapse and prior-hole warnings and held-out evaluation."""

import math

import numpy as np
import pytest

from vae_tfp.data.dataset import open_dataset
from vae_tfp.evaluation.diagnostics import collapse_warning, evaluate_saved


def test_evaluate_reports_every_field(trained_tiny, tiny_dataset):
    r = evaluate_saved(trained_tiny, tiny_dataset, "test")
    for key in ("neg_elbo_nats", "bits_per_dim", "recon_nll_nats", "kl_nats", "active_units", "latent_dim",
                "recon_gain", "recon_mse", "n_examples", "loudness_corr", "onset_corr", "loudness_corr_chance",
                "onset_corr_chance"):
        assert key in r
    assert r["neg_elbo_nats"] == pytest.approx(r["recon_nll_nats"] + r["kl_nats"])
    assert r["bits_per_dim"] == pytest.approx(r["neg_elbo_nats"] / (64 * 64 * math.log(2)))
    assert r["latent_dim"] == 4 and r["kl_nats"] >= 0
    assert r["n_examples"] == r["n_clips_in_split"] == open_dataset(tiny_dataset).n_clips("test")


def test_evaluate_scores_refined_reconstructions_beside_the_encoders(trained_tiny, tiny_dataset):
    from vae_tfp.apps.generate import reconstruct
    from vae_tfp.model.saving import load_model

    m, x = load_model(trained_tiny), open_dataset(tiny_dataset).load("test")
    plain = evaluate_saved(trained_tiny, tiny_dataset, "test")
    r = evaluate_saved(trained_tiny, tiny_dataset, "test", refine_steps=10)
    assert "refined" not in plain and r["recon_gain"] == plain["recon_gain"]  # the encoder's own numbers stay
    refined = reconstruct(m, x, refine_steps=10)
    assert r["refined"]["recon_mse"] == pytest.approx(float(np.mean((x - refined) ** 2)), rel=1e-4)
    assert r["refined"]["recon_mse"] != pytest.approx(plain["recon_mse"], rel=1e-3)
    assert r["refined"]["code_shift"] > 0 and r["refined"]["steps"] == 10
    assert {"loudness_corr", "onset_corr", "seconds"} <= set(r["refined"])


def test_evaluate_takes_a_seeded_subset_of_a_large_split(trained_tiny, tiny_dataset):
    from vae_tfp.evaluation.diagnostics import evaluate
    from vae_tfp.model.saving import load_model

    m = load_model(trained_tiny)
    r = evaluate(m.encoder, m.decoder, m.prior, tiny_dataset, "train", max_clips=5)
    assert r["n_examples"] == 5 and r["n_clips_in_split"] == open_dataset(tiny_dataset).n_clips("train") > 5


def test_prior_hole_warning():
    from vae_tfp.evaluation.diagnostics import prior_hole_warning

    fits = {"codes_log_density": -50.0, "prior_samples_log_density": -49.0, "prior_hole_gap": 1.0,
            "code_spread_ratio": 1.1, "code_std": [1.0] * 32, "prior_std": [1.0] * 32}
    assert prior_hole_warning(fits) is None
    hole = {**fits, "codes_log_density": -96.0, "prior_samples_log_density": -49.0, "prior_hole_gap": 47.0}
    assert prior_hole_warning(hole).startswith("PRIOR HOLE?") and "-96.0" in prior_hole_warning(hole)
    assert "3.90x" in prior_hole_warning({**fits, "code_spread_ratio": 3.9})


def test_prior_hole_diagnostics_see_a_prior_away_from_the_codes():
    from vae_tfp.model.prior import make_prior, prior_variables
    from vae_tfp.evaluation.diagnostics import prior_fit_diagnostics, prior_hole_warning

    prior = make_prior(8, 3)
    codes = np.random.default_rng(0).normal(0, 1, (500, 8)).astype(np.float32)
    prior_variables(prior)["locs"].assign(np.zeros((3, 8), np.float32))
    good = prior_fit_diagnostics(codes, prior)
    assert abs(good["prior_hole_gap"]) < 2 and 0.8 < good["code_spread_ratio"] < 1.25
    assert prior_hole_warning(good) is None
    bad = prior_fit_diagnostics(codes * 4, prior)  # codes spread 4x the prior: outside it
    assert bad["prior_hole_gap"] > 20 and prior_hole_warning(bad) is not None


def test_collapse_warning():
    assert collapse_warning({"active_units": 1, "recon_gain": 1.05}).startswith("POSTERIOR COLLAPSE?")
    assert collapse_warning({"active_units": 8, "recon_gain": 3.0}) is None


def test_evaluate_is_seeded_without_setting_the_global_seed(trained_tiny, tiny_dataset, monkeypatch):
    import tensorflow as tf

    from vae_tfp.model.saving import load_model
    from vae_tfp.evaluation.diagnostics import evaluate

    def refuse(_):
        raise AssertionError("evaluate set the global seed")

    monkeypatch.setattr(tf.random, "set_seed", refuse)
    m = load_model(trained_tiny)
    a = evaluate(m.encoder, m.decoder, m.prior, tiny_dataset, "val", seed=5)
    b = evaluate(m.encoder, m.decoder, m.prior, tiny_dataset, "val", seed=5)
    assert a["neg_elbo_nats"] == b["neg_elbo_nats"] and a["kl_nats"] == b["kl_nats"]  # stateless seeds per batch
