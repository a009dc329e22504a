import json
import subprocess
import sys

from conftest import harmonic, write
from vae_tfp.apps.cli import main


def test_prepare_and_roundtrip(audio_folder, tmp_path, capsys):
    assert main(["prepare", str(audio_folder), "--out", str(tmp_path / "ds"), "--spec", "tiny", "--quiet",
                 "--workers", "1"]) == 0
    out = capsys.readouterr()
    assert "2 files skipped" in out.out and "text.wav" in out.err
    good = write(tmp_path / "in put é.wav", harmonic(1.1, 44100, channels=2), 44100)
    bad = tmp_path / "bad.wav"
    bad.write_text("no")
    assert main(["roundtrip", str(good), str(bad), "--out", str(tmp_path / "rt"), "--spec", "tiny"]) == 0
    metrics = json.loads((tmp_path / "rt" / "metrics.json").read_text())
    assert metrics["skipped"][0]["path"].endswith("bad.wav")
    assert (tmp_path / "rt" / "in put é_roundtrip.wav").exists()
    assert metrics["summary"]["spectral_convergence"]["median"] < 0.3


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vae_tfp.apps.cli", "prepare", str(tmp_path / "nothing"), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "nothing: no such file or folder" in proc.stderr


def test_roundtrip_of_only_bad_files_fails(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("no")
    assert main(["roundtrip", str(bad), "--out", str(tmp_path / "rt"), "--spec", "tiny"]) == 1


def test_evaluate_with_samples_and_fit_prior(trained_tiny, tiny_dataset, tmp_path, capsys, monkeypatch):
    import shutil

    from vae_tfp.model import refine

    calls = []
    real_refine = refine.refine_codes
    monkeypatch.setattr(refine, "refine_codes", lambda *a, **k: calls.append(k["steps"]) or real_refine(*a, **k))

    model = tmp_path / "m"
    shutil.copytree(trained_tiny, model)
    assert main(["fit-prior", str(model), str(tiny_dataset), "--modes", "4"]) == 0
    assert "4 components fitted" in capsys.readouterr().out
    assert main(["evaluate", str(model), str(tiny_dataset), "--samples", "16", "--temperatures", "1", "0.5",
                 "--json", "--refine-steps", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r["set"]: r for r in result["samples"]["rows"]}
    assert {"real (held-out)", "dataset mean", "reconstructions", "reconstructions (refined 3)", "prior T=1",
            "prior T=0.5"} <= set(rows)
    assert result["refined"]["steps"] == 3 and result["refined"]["recon_gain"] > 0
    assert calls == [3]  # the table's refined row reuses the held-out codes evaluate refined
    assert "onset_corr" in rows["reconstructions (refined 3)"]
    for key in ("fid", "inception_score", "ndb_k", "precision", "recall", "confidence", "brightness_ratio"):
        assert key in rows["prior T=1"]
    assert rows["prior T=1"]["n"] == 16 and result["prior_hole_gap"] is not None


import pytest  # noqa: E402


@pytest.mark.parametrize("args, message", [
    (["generate", "M", "--out", "o", "-n", "-1"], "-1 must be >= 1"),
    (["generate", "M", "--out", "o", "-n", "2000000"], "<= 1000000"),
    (["generate", "M", "--out", "o", "--temperature", "nan"], "'nan' must be finite"),
    (["generate", "M", "--out", "o", "--temperature", "-1"], "must be > 0"),
    (["train", "D", "--model", "M", "--epochs", "0"], "0 must be >= 1"),
    (["train", "D", "--model", "M", "--epochs", "1", "--lr", "inf"], "'inf' must be finite"),
    (["evaluate", "M", "D", "--samples", "-5"], "must be >= 0"),
    (["reconstruct", "M", "f.wav", "--out", "o", "--refine-steps", "-1"], "must be >= 0"),
    (["interpolate", "M", "a", "b", "--out", "o", "--steps", "1"], "must be >= 2"),
    (["prepare", "x", "--out", "o", "--workers", "0"], "must be >= 1"),
    (["train", "D", "--model", "M", "--epochs", "1", "--previews", "often"], "previews='often' must be 'auto'"),
    (["train", "D", "--model", "M", "--epochs", "1", "--previews", "-2"], "a positive number of epochs, or 0"),
])
def test_numbers_are_checked_at_parse_time(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_evaluate_json_is_valid_even_with_non_finite_values(trained_tiny, tiny_dataset, capsys, monkeypatch):
    import vae_tfp.evaluation.diagnostics as diagnostics

    evaluate = diagnostics.evaluate
    monkeypatch.setattr(diagnostics, "evaluate", lambda *a, **k: {**evaluate(*a, **k), "neg_elbo_nats": float("nan")})
    assert main(["evaluate", str(trained_tiny), str(tiny_dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["neg_elbo_nats"] is None


def test_an_os_error_no_site_named_is_one_line(monkeypatch, capsys, tmp_path):
    import vae_tfp.audio.metrics as metrics

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(metrics, "roundtrip_files", denied)
    assert main(["roundtrip", "a.wav", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'x'}: permission denied" in err


def test_train_previews_option(tiny_dataset, tmp_path, capsys):
    assert main(["train", str(tiny_dataset), "--model", str(tmp_path / "m"), "--preset", "tiny", "--epochs", "3",
                 "--batch-size", "8", "--previews", "2", "--quiet"]) == 0
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert [h["epoch"] for h in history if "samples_fd" in h] == [1, 2, 3]
    out = capsys.readouterr().out
    assert "epoch 3: still improving" in out or "epoch 3: plateaued" in out  # the verdict, once per epoch
    assert main(["train", str(tiny_dataset), "--model", str(tmp_path / "n"), "--preset", "tiny", "--epochs", "1",
                 "--batch-size", "8", "--previews", "0", "--quiet"]) == 0
    assert not (tmp_path / "n" / "previews").exists()


def test_train_init_from_takes_the_models_architecture_and_the_cosine_schedule(trained_tiny, tiny_dataset, tmp_path,
                                                                                capsys):
    assert main(["train", str(tiny_dataset), "--model", str(tmp_path / "m"), "--init-from", str(trained_tiny),
                 "--lr-schedule", "cosine", "--epochs", "2", "--batch-size", "8", "--previews", "0", "--quiet"]) == 0
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_config"]["name"] == "tiny"  # no --preset: the --init-from model's architecture
    assert saved["training"]["init_from"] == str(trained_tiny) and saved["training"]["lr_schedule"] == "cosine"
    assert f"starting from the weights of {trained_tiny}" in capsys.readouterr().out
    assert main(["train", str(tiny_dataset), "--model", str(tmp_path / "n"), "--init-from", str(tmp_path / "none"),
                 "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none" in err
