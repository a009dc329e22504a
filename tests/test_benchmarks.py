"""The benchmark scripts run (on the tiny preset) and print the JSON they promise."""

import contextlib
import io
import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


# Scripts that change process-wide state (thread pools, the precision policy) or measure their own
# process (peak memory) run in a fresh interpreter; the others run in this one, which saves each
# a TensorFlow import (about 6 s of CPU on the 2-core CI machine).
OWN_PROCESS = {"train_throughput.py", "dataset_scale.py"}


def run(tmp_path, script, *args):
    """Runs ``benchmarks/SCRIPT ARGS`` as its command line would, its JSON copy into ``tmp_path``;
    returns the JSON object it printed."""
    if script in OWN_PROCESS:
        env = {**os.environ, "VAE_TFP_BENCH_RESULTS": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout
    else:
        if str(ROOT / "benchmarks") not in sys.path:
            sys.path.insert(0, str(ROOT / "benchmarks"))
        import common

        stdout, argv, cwd, results = io.StringIO(), sys.argv, os.getcwd(), common.RESULTS
        try:
            sys.argv, common.RESULTS = [script, *args], tmp_path
            os.chdir(ROOT)
            with contextlib.redirect_stdout(stdout):
                runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
        finally:
            sys.argv, common.RESULTS = argv, results
            os.chdir(cwd)
        out = stdout.getvalue()
    return json.loads(out[out.index("{"):])


@pytest.mark.slow
def test_train_throughput_reports_flops_and_peak_fractions(tmp_path):
    out = run(tmp_path, "train_throughput.py", "--presets", "tiny", "benchmarks/configs/default-v1.json",
              "--steps", "1", "--repeats", "1", "--warmup", "1", "--batch-size", "2", "--name", "t")
    assert (tmp_path / "t.json").exists()
    from vae_tfp.config import model_preset
    from vae_tfp.model.cost import count_flops

    tiny = out["results"]["tiny"]
    # what the benchmark is for: the exact FLOP count, the achieved rate it implies, and its share of the peak
    assert tiny["train_flops_per_example"] == count_flops(model_preset("tiny"))["train_flops"]
    assert tiny["achieved_gflops"] == pytest.approx(tiny["examples_per_s"] * tiny["train_flops_per_example"] / 1e9,
                                                    rel=2e-2, abs=0.01)
    assert tiny["fraction_of_fp32_peak"] == pytest.approx(tiny["achieved_gflops"] / out["machine"]["fp32_peak_gflops"], abs=2e-3)
    v1 = out["results"]["default-v1"]
    assert v1["train_flops_per_example"] > 100 * tiny["train_flops_per_example"]  # 512x512 against 64x64
    assert out["machine"]["matmul_gflops"] > 0


@pytest.mark.slow
def test_conv_layers_times_every_conv(tmp_path):
    from vae_tfp.config import model_preset

    out = run(tmp_path, "conv_layers.py", "--presets", "tiny", "--repeats", "1", "--batch-size", "2")
    cfg = model_preset("tiny")
    result, walk = out["results"]["tiny"], cfg.conv_layers()
    layers = result["layers"]
    # one row per conv of the model, in order, each timed at the shape the model runs it at
    assert [r["layer"] for r in layers] == [l["name"] for l in walk]
    assert [r["input"] for r in layers] == [f"{l['in_hw'][0]}x{l['in_hw'][1]}x{l['c_in']}" for l in walk]
    assert [(r["out_channels"], r["kernel"], r["stride"]) for r in layers] == [(l["c_out"], l["kernel"], l["stride"])
                                                                             for l in walk]
    peak = out["machine"]["fp32_peak_gflops"]
    for r in layers:
        assert r["ms"] >= 0 and r["gflops"] > 0
        assert r["fraction_of_fp32_peak"] == pytest.approx(r["gflops"] / peak, abs=2e-3)
    assert result["conv_ms_per_step"] == pytest.approx(sum(r["ms"] for r in layers), abs=0.1 * len(layers))


def test_resolution_ceiling_is_the_recon_gain_of_block_means(tmp_path, tiny_dataset):
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from resolution_ceiling import block_mean

    x = np.arange(16, dtype=float).reshape(1, 4, 4)
    np.testing.assert_allclose(block_mean(x, 1, 2)[0, 0], [0.5, 0.5, 2.5, 2.5])
    np.testing.assert_allclose(block_mean(x, 2, 1)[0, :, 0], [2, 2, 10, 10])
    out = run(tmp_path, "resolution_ceiling.py", "--data", str(tiny_dataset), "--split", "train", "--name", "r")
    gains = {(b["frequency_bins"], b["time_frames"]): b["recon_gain"] for b in out["blocks"]}
    assert gains[(2, 2)] > gains[(4, 4)] > gains[(8, 8)] > 0  # coarser blocks lose more
    onsets = {(b["frequency_bins"], b["time_frames"]): b["onset_corr"] for b in out["blocks"]}
    assert onsets[(2, 1)] > onsets[(1, 32)]  # blocks along time flatten the onsets, along frequency they do not


@pytest.mark.slow
def test_decoder_fit_learns_from_fixed_codes(tmp_path, tiny_dataset):
    out = run(tmp_path, "decoder_fit.py", "--data", str(tiny_dataset), "--preset", "tiny", "--epochs", "3",
              "--batch-size", "2", "--name", "d")
    rows = out["epochs"]
    # what the benchmark is for: a decoder alone learns the images from fixed codes
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["nll_nats"] < rows[0]["nll_nats"]
    assert rows[-1]["train_recon_gain"] > rows[0]["train_recon_gain"], rows


@pytest.mark.slow
def test_decoder_fit_on_a_models_codes_probes_held_out_clips_beside_its_own_decoder(tmp_path, tiny_dataset,
                                                                                    trained_tiny):
    out = run(tmp_path, "decoder_fit.py", "--data", str(tiny_dataset), "--preset", "tiny", "--epochs", "2",
              "--batch-size", "2", "--codes", str(trained_tiny), "--held-out", "test", "--name", "d")
    assert set(out["model_decoder"]) == {"train_recon_gain", "test_recon_gain"}
    assert all(r["test_recon_gain"] > 0 and r["train_recon_gain"] > 0 for r in out["epochs"])
    assert out["epochs"][-1]["train_recon_gain"] != out["model_decoder"]["train_recon_gain"]  # a fresh decoder


@pytest.mark.slow
def test_sample_quality_scores_models_and_their_refit(tmp_path, trained_tiny, tiny_dataset):
    import numpy as np

    out = run(tmp_path, "sample_quality.py", "--data", str(tiny_dataset), "--models", f"tiny={trained_tiny}",
              "--refit", "--modes", "4", "-n", "16", "--temperatures", "1", "--pairs", "2", "--steps", "3",
              "--name", "s")
    assert set(out["models"]) == {"tiny", "tiny + refit (4 components)"}
    for result in out["models"].values():
        rows = {r["set"]: r for r in result["rows"]}
        assert {"real (held-out)", "dataset mean", "reconstructions", "prior T=1"} <= set(rows)
        assert all(np.isfinite(r["fid"]) and 0 <= r["precision"] <= 1 for r in rows.values())
        assert set(result["targets"]) >= {"fid_le_2x_recon", "ndb_k_le_0.2", "recall_ge_0.4", "all"}
        assert 0 <= result["interpolation"]["monotone_fraction_mean"] <= 1
        assert result["reconstruction"]["recon_gain"] > 0 and result["reconstruction"]["active_units"] >= 0


def test_open_dataset_times_each_size(tmp_path, tiny_dataset):
    out = run(tmp_path, "open_dataset.py", "--data", str(tiny_dataset), "--clips", "50", "500", "--repeats", "1",
              "--name", "o")
    assert (tmp_path / "o.json").exists() and list(out["results"]) == ["50", "500"]
    small, large = out["results"]["50"], out["results"]["500"]
    assert large["manifest_mb"] > 5 * small["manifest_mb"] > 0  # the clips were really repeated
    for r in (small, large):
        assert r["before_13_parses_s"] == pytest.approx(13 * r["json_parse_s"], abs=2e-3)
        assert min(r["json_parse_s"], r["open_s"], r["jsonschema_check_s"]) > 0


def test_judges_benchmark_scores_the_tables_sets(tmp_path, trained_tiny, tiny_dataset):
    out = run(tmp_path, "judges.py", "--model", str(trained_tiny), "--data", str(tiny_dataset), "-n", "8",
              "--name", "j")
    rows = {r["set"]: r for r in out["rows"]}
    assert {"real (held-out)", "dataset mean", "white noise", "reconstructions", "prior T=1"} <= set(rows)
    assert rows["white noise"]["fad_musicnn"] > rows["real (held-out)"]["fad_musicnn"]
    assert out["judges"]["n"] == min(8, len(open_split(tiny_dataset, "test")))


def open_split(data, split):
    from vae_tfp.data.dataset import open_dataset

    return open_dataset(data).split_clips(split)


def test_music_benchmark_reports_time_structure_and_draws_the_picture(tmp_path, trained_tiny, tiny_dataset):
    out = run(tmp_path, "music.py", "--data", str(tiny_dataset), "--models", str(trained_tiny), "--samples", "12",
              "--name", "m")
    result = out["models"][str(trained_tiny)]
    assert -1 <= result["onset_corr"] <= 1 and "onset_corr_chance" in result and result["kl_dims_over_half_nat"] >= 0
    rows = {r["set"]: r for r in result["samples"]["rows"]}
    assert rows["real (held-out)"]["time_w1"] < rows["white noise"]["time_w1"] and "two_sample" in rows["prior T=1"]
    assert Path(result["picture"]).stat().st_size > 1000


@pytest.mark.slow
def test_adversarial_toy_measures_each_variant_against_stage_one(tmp_path):
    out = run(tmp_path, "adversarial_toy.py", "--epochs", "1", "--stage1-epochs", "1", "--variants", "default",
              "anchor only (control)")
    assert [r["variant"] for r in out["rows"]] == ["stage 1", "default", "anchor only (control)"]
    assert out["real_roughness"] > 0 and all(r["recon_roughness"] >= 0 and r["recon_mse"] > 0 for r in out["rows"])
    assert out["rows"][2]["changes"] == {"adversarial_weight": 0.0, "feature_weight": 0.0}


def test_stages_picture_draws_five_rows_of_four(tmp_path, shared_smoke):
    from PIL import Image

    png = tmp_path / "stages.png"
    out = run(tmp_path, "stages_picture.py", "--model", str(shared_smoke["sharpened"]), "--data",
              str(shared_smoke["notes"]), "--split", "train", "--out", str(png))
    assert out["rows"][0] == "real (held out)" and len(out["rows"]) == 5
    width, height = Image.open(png).size
    assert width == 4 * 2.6 * 80 and height == 5 * 2.6 * 80


def test_dataset_scale_reports_memory_and_speed_of_a_streamed_split(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setenv("VAE_TFP_MEMORY_BUDGET_MB", "0")  # stream even this small split
    out = run(tmp_path, "dataset_scale.py", "--data", str(tiny_dataset), "--sizes", "300", "--batches", "3",
              "--steps", "1", "--preset", "tiny", "--prepare-minutes", "--work", str(tmp_path / "w"), "--name", "s")
    r = out["sizes"]["300"]
    assert r["input_plan"]["n_clips"] == 300 and not r["input_plan"]["cache"]
    assert r["peak_rss_mb"] >= r["rss_mb_after_open"] > 0 and r["first_batch_s"] > 0
    assert r["input_examples_per_s"] > 0 and r["train_examples_per_s"] > 0
    assert r["disk_mb_if_real"] > r["disk_mb"]  # the hard links
    assert out["peak_rss_ratio_to_smallest"] == {"300": 1.0} and (tmp_path / "s.json").exists()


@pytest.mark.slow
def test_previews_cost_reports_each_epochs_share(tmp_path, tiny_dataset):
    out = run(tmp_path, "previews_cost.py", "--data", str(tiny_dataset), "--preset", "tiny", "--epochs", "3",
              "--batch-size", "8", "--previews", "2", "--name", "p")
    assert (tmp_path / "p.json").exists() and out["previewed_epochs"] == [1, 2, 3]
    epochs = out["epochs"]
    assert out["amortized_share"] == pytest.approx(sum(e["preview_seconds"] for e in epochs)
                                                   / sum(e["epoch_seconds"] for e in epochs))
    assert out["samples_fd_floor"] < out["samples_fd_mean_image"]


@pytest.mark.slow
def test_samples_fd_benchmark_orders_its_sets(tmp_path, trained_tiny, tiny_dataset):
    out = run(tmp_path, "samples_fd.py", "--pairs", f"{trained_tiny}={tiny_dataset}", "--seeds", "1", "--name", "s")
    row = out["models"][str(trained_tiny)]["by_seed"]["1"]
    assert row["real floor (other training clips)"] < row["dataset mean image"]
    assert set(row) == {"real floor (other training clips)", "held-out clips (validation split)",
                        "reconstructions of those", "prior samples", "dataset mean image"}


@pytest.mark.slow
def test_receptive_field_of_a_latent_sequence_is_local_and_of_a_global_code_is_the_clip(tmp_path):
    out = run(tmp_path, "receptive_field.py", "--preset", "music", "--inputs", "1", "--name", "r")
    steps = {row["step"]: row for row in out["steps"]}
    assert sorted(steps) == [0, 32, 63] and out["n_frames"] == 512
    assert steps[0]["frames"][0] == 0 and steps[63]["frames"][1] == 511
    assert steps[32]["frames"][0] <= 32 * 8 and steps[32]["frames"][1] >= 33 * 8 - 1  # it sees its own slot
    assert 8 < steps[32]["frames_seen"] < 256  # more than its slot, far less than the clip
    whole = run(tmp_path, "receptive_field.py", "--preset", "tiny", "--inputs", "1", "--name", "t")
    assert [row["frames"] for row in whole["steps"]] == [[0, whole["n_frames"] - 1]]  # one code sees the clip


def test_recon_gain_along_time_covers_the_clip_and_agrees_with_evaluate(tmp_path, tiny_dataset, trained_tiny):
    from vae_tfp.evaluation.diagnostics import evaluate_saved

    out = run(tmp_path, "receptive_field.py", "--model", str(trained_tiny), "--data", str(tiny_dataset),
              "--split", "val", "--segments", "3", "--inputs", "1", "--name", "e")["recon_gain_along_time"]
    frames = out["frames"]
    assert frames[0][0] == 0 and frames[-1][1] == 64 and all(a[1] == b[0] for a, b in zip(frames, frames[1:]))
    assert len(out["recon_gain"]) == 3 and all(g > 0 for g in out["recon_gain"])
    assert out["whole"] == pytest.approx(evaluate_saved(trained_tiny, tiny_dataset, "val", log=lambda _: None)["recon_gain"],
                                         rel=1e-3)
    assert min(out["recon_gain"]) <= out["whole"] <= max(out["recon_gain"])  # a ratio of sums of equal stretches


def test_consistency_probe_tells_real_clips_from_blurred_reconstructions_with_a_pghi_start(tmp_path, tiny_dataset,
                                                                                           trained_tiny):
    out = run(tmp_path, "consistency_probe.py", "--model", str(trained_tiny), "--data", str(tiny_dataset),
              "--split", "val", "--clips", "4", "--iterations", "0,4", "--starts", "pghi,zeros", "--name", "c")
    rows = {(r["start"], r["n_iter"]): r for r in out["rows"]}
    assert sorted(rows) == [("pghi", 0), ("pghi", 4), ("zeros", 0), ("zeros", 4)] and out["clips"] == 4
    assert rows[("pghi", 0)]["real"] < rows[("pghi", 0)]["reconstructions"]  # a 3-epoch model's images are blurred
    assert rows[("zeros", 0)]["real"] > rows[("pghi", 0)]["real"]  # no start phase: even real clips look inconsistent
    assert all(r["real_seconds_per_image"] > 0 for r in rows.values())


def test_refine_benchmark_starts_from_the_encoder_and_moves_the_codes(tmp_path, tiny_dataset, trained_tiny):
    from vae_tfp.evaluation.diagnostics import evaluate_saved

    out = run(tmp_path, "refine.py", "--model", str(trained_tiny), "--data", str(tiny_dataset), "--splits", "val",
              "--clips", "100", "--steps", "0", "5", "--learning-rates", "0.01", "0.05", "--name", "r")
    rows = {(r["learning_rate"], r["steps"]): r for r in out["rows"]}
    assert sorted(rows, key=str) == sorted([(None, 0), (0.01, 5), (0.05, 5)], key=str)
    assert rows[(None, 0)]["code_shift"] == 0 and rows[(0.05, 5)]["code_shift"] > rows[(0.01, 5)]["code_shift"] > 0
    assert rows[(None, 0)]["recon_gain"] == pytest.approx(  # step 0 is what evaluate reports
        evaluate_saved(trained_tiny, tiny_dataset, "val", log=lambda _: None)["recon_gain"], rel=1e-3)


def test_encoder_fit_trains_the_encoder_alone_from_the_saved_model(tmp_path, tiny_dataset, trained_tiny):
    from vae_tfp.evaluation.diagnostics import evaluate_saved

    saved = evaluate_saved(trained_tiny, tiny_dataset, "val", log=lambda _: None)["recon_gain"]
    for objective, extra in (("elbo", ["--augment"]), ("map", ["--mask"])):
        out = run(tmp_path, "encoder_fit.py", "--model", str(trained_tiny), "--data", str(tiny_dataset),
                  "--objective", objective, *extra, "--epochs", "2", "--batch-size", "4", "--lr", "1e-3",
                  "--splits", "val", "train", "--clips", "100", "--name", objective)
        epochs = out["epochs"]
        assert [r["epoch"] for r in epochs] == [0, 1, 2] and out["decoder_and_prior_unchanged"]
        assert epochs[0]["val"]["recon_gain"] == pytest.approx(saved, rel=1e-3)  # epoch 0 is the saved model
        assert epochs[2]["train"]["recon_gain"] != epochs[0]["train"]["recon_gain"]  # the encoder moved
        assert all(math.isfinite(r["loss"]) for r in epochs[1:])


def test_spec_mask_silences_bands_and_stretches_within_their_width():
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from encoder_fit import spec_mask

    tf.random.set_seed(0)
    masked = spec_mask(tf.ones((64, 64, 128, 1)), tf).numpy()[..., 0]
    silent_rows, silent_cols = (masked == 0).all(axis=2), (masked == 0).all(axis=1)  # whole bins, frames
    assert ((masked == 0) == (silent_rows[:, :, None] | silent_cols[:, None, :])).all()  # nothing else
    assert silent_rows.sum(axis=1).max() <= 2 * 5 and silent_cols.sum(axis=1).max() <= 2 * 10  # 40/512 of 64, 128
    assert silent_rows.any(axis=1).mean() > 0.5 and silent_cols.any(axis=1).mean() > 0.5  # clips differ
    assert len({tuple(r) for r in silent_cols}) > 32


def test_encoder_fit_trains_a_fresh_wider_encoder_against_the_saved_decoder_and_prior(tmp_path, tiny_dataset,
                                                                                      trained_tiny):
    import numpy as np

    from vae_tfp.evaluation.diagnostics import evaluate_saved
    from vae_tfp.model.saving import load_model

    out = run(tmp_path, "encoder_fit.py", "--model", str(trained_tiny), "--data", str(tiny_dataset),
              "--encoder-width", "2", "--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--splits", "val",
              "--clips", "100", "--save", str(tmp_path / "wide"), "--name", "wide")
    epochs = out["epochs"]
    assert out["decoder_and_prior_unchanged"]
    assert epochs[0]["val"]["recon_gain"] < epochs[2]["val"]["recon_gain"]  # a fresh encoder that learns
    wide, saved = load_model(tmp_path / "wide"), load_model(trained_tiny)
    assert [b.filters for b in wide.config.encoder] == [2 * b.filters for b in saved.config.encoder]
    assert out["encoder_parameters"] == wide.encoder.count_params() > saved.encoder.count_params()
    for a, b in zip(wide.decoder.get_weights(), saved.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert evaluate_saved(tmp_path / "wide", tiny_dataset, "val", log=lambda _: None)["recon_gain"] == pytest.approx(
        epochs[2]["val"]["recon_gain"], rel=1e-3)  # the folder holds what was trained
