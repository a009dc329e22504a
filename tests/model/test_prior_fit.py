import json
import shutil

import numpy as np
import pytest

from vae_tfp.data.dataset import open_dataset
from vae_tfp.errors import DatasetError
from vae_tfp.model.prior import mixture_weights, prior_variables
from vae_tfp.model.prior_fit import aggregate_posterior, codes_nll, fit_mixture, fit_prior, fit_prior_saved
from vae_tfp.model.saving import load_model


def _mismatched_copy(trained_tiny, tmp_path):
    """The trained tiny model with its prior moved far away from the codes."""
    from vae_tfp.model.saving import replace_prior

    model_dir = tmp_path / "model"
    shutil.copytree(trained_tiny, model_dir)
    m = load_model(model_dir, parts=("prior",))
    v = prior_variables(m.prior)
    v["locs"].assign(v["locs"].numpy() + 25.0)
    replace_prior(model_dir, m.prior)
    return model_dir


def test_fit_prior_lowers_the_codes_nll_and_fits_weights(trained_tiny, tiny_dataset, tmp_path):
    model_dir = _mismatched_copy(trained_tiny, tmp_path)
    x = open_dataset(tiny_dataset).load("train")
    before = load_model(model_dir, parts=("encoder", "prior"))
    codes = aggregate_posterior(before.encoder, x)
    nll_before = codes_nll(before.prior, codes)
    record = fit_prior_saved(model_dir, tiny_dataset)
    after = load_model(model_dir, parts=("encoder", "prior"))  # reloads, hash checked
    assert codes_nll(after.prior, codes) < nll_before - 50
    assert record["codes_nll_after"] < record["codes_nll_before"]
    w = mixture_weights(after.prior)
    assert w.sum() == pytest.approx(1.0) and not np.allclose(w, w[0])  # fitted, not uniform
    assert json.loads((model_dir / "config.json").read_text())["prior_fit"]["n_clips"] == len(x)


def test_fit_prior_streams_the_codes_and_fits_em_to_a_bounded_sample(trained_tiny, tiny_dataset, tmp_path,
                                                                       monkeypatch):
    from vae_tfp.model import prior_fit

    model_dir = _mismatched_copy(trained_tiny, tmp_path)
    data = open_dataset(tiny_dataset)
    streamed = fit_prior(load_model(model_dir), data.batches("train", 64))  # as fit_prior_saved streams (256)
    whole = fit_prior(load_model(model_dir), data.load("train"))
    assert streamed["n_clips"] == whole["n_clips"] == data.n_clips("train")
    # draws of the same posteriors (TFP's integer seeds are not bitwise repeatable across calls)
    assert streamed["codes_nll_before"] == pytest.approx(whole["codes_nll_before"], rel=0.01)
    monkeypatch.setattr(prior_fit, "MAX_EM_CODES", 40)
    record = fit_prior_saved(model_dir, tiny_dataset, num_modes=3)
    assert record["n_codes"] == 8 * data.n_clips("train") and record["n_codes_em"] == 40
    assert record["codes_nll_after"] < record["codes_nll_before"]


def test_fit_prior_with_another_number_of_components(trained_tiny, tiny_dataset, tmp_path):
    model_dir = _mismatched_copy(trained_tiny, tmp_path)
    fit_prior_saved(model_dir, tiny_dataset, num_modes=5)
    m = load_model(model_dir)
    assert m.config.num_modes == 5 and mixture_weights(m.prior).shape == (5,)


def test_fit_mixture_recovers_two_clusters(rng):
    codes = np.concatenate([rng.normal(-5, 0.5, (300, 3)), rng.normal(5, 0.5, (100, 3))])
    m = fit_mixture(codes, 2, seed=0)
    order = np.argsort(m["locs"][:, 0])
    np.testing.assert_allclose(m["weights"][order], [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(m["locs"][order, 0], [-5, 5], atol=0.2)
    np.testing.assert_allclose(m["scales"], 0.5, atol=0.1)


def test_two_separated_clusters_are_both_sampled(tmp_path):
    """A tiny model on a toy dataset of two well-separated families (low and high tones) samples both."""
    from conftest import harmonic, write
    from vae_tfp.config import model_preset, spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset
    from vae_tfp.apps.generate import decode
    from vae_tfp.model.prior import sample_prior
    from vae_tfp.model.training import train

    root = tmp_path / "src"
    for label, f0 in (("low", 200.0), ("high", 2400.0)):
        for i in range(10):
            write(root / label / f"{label}_{i}.wav", harmonic(1.5, 8000, f0 * (1 + 0.02 * i)), 8000)
    data = tmp_path / "ds"
    prepare_dataset([root], data, spectrogram_preset("tiny"), progress=False, log=lambda _: None)
    model_dir = tmp_path / "m"
    train(data, model_dir, model_preset("tiny"), epochs=6, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False, fit_prior=True)
    from vae_tfp.data.dataset import open_dataset

    m = load_model(model_dir)
    x, labels = open_dataset(data).load("train"), np.array([c["label"] for c in open_dataset(data).split_clips("train")])
    centres = np.stack([x[labels == name].mean(0) for name in ("low", "high")])
    images = decode(m, sample_prior(m, 200, seed=0))
    nearest = np.argmin(((images[:, None] - centres[None]) ** 2).mean(axis=(2, 3, 4)), axis=1)
    share_low = float(np.mean(nearest == 0))
    assert 0.2 < share_low < 0.8, share_low


@pytest.mark.parametrize("case", ["no-encoder", "empty-split", "other-shape"])
def test_bad_input_gives_one_line_naming_the_file(case, trained_tiny, tiny_dataset, tmp_path, capsys):
    from vae_tfp.data.dataset import prepare_dataset
    from vae_tfp.config import spectrogram_preset

    model_dir, data, args = tmp_path / "model", tiny_dataset, []
    shutil.copytree(trained_tiny, model_dir)
    if case == "no-encoder":
        (model_dir / "encoder.weights.h5").unlink()
        expected = "encoder.weights.h5: missing"
    elif case == "empty-split":
        from conftest import harmonic, write

        for i in range(3):
            write(tmp_path / "src" / f"a_{i}.wav", harmonic(1.0, 8000), 8000)
        data = tmp_path / "all-train"
        prepare_dataset([tmp_path / "src"], data, spectrogram_preset("tiny"), split_fractions=(1.0, 0.0, 0.0),
                        progress=False, log=lambda _: None)
        args, expected = ["--split", "test"], "split 'test' is empty"
    else:
        from conftest import harmonic, write

        write(tmp_path / "src" / "a.wav", harmonic(2.0, 16000), 16000)
        data = tmp_path / "small"
        prepare_dataset([tmp_path / "src"], data, spectrogram_preset("small"), progress=False, log=lambda _: None)
        expected = "different spectrogram config"
    from vae_tfp.apps.cli import main

    # in process: any exception but the package's one-line errors would escape main() and fail the
    # test with its traceback (tests/test_cli.py runs the real `python -m vae_tfp.apps.cli` process)
    for command in (["fit-prior", str(model_dir), str(data)], ["evaluate", str(model_dir), str(data), "--samples", "8"]):
        capsys.readouterr()
        assert main([*command, *args]) == 1
        lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("vae-tfp")]
        assert len(lines) == 1 and expected in lines[0], lines


def test_fit_prior_refuses_an_empty_split(trained_tiny, tiny_dataset, tmp_path, monkeypatch):
    from vae_tfp.data.dataset import PreparedDataset

    monkeypatch.setattr(PreparedDataset, "n_clips", lambda self, split: 0)
    model_dir = tmp_path / "model"
    shutil.copytree(trained_tiny, model_dir)
    with pytest.raises(DatasetError, match="empty"):
        fit_prior_saved(model_dir, tiny_dataset)


def test_refit_with_another_number_of_components_moves_the_vaes_kl_to_the_new_prior(tiny_dataset):
    """A VAE refitted with a new K: the encoder's KL regulariser charges the new prior, not the old one."""
    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.prior import MixtureKLRegularizer
    from vae_tfp.model.networks import build_vae

    cfg = model_preset("tiny")
    vae = build_vae(cfg, seed=0)
    x = open_dataset(tiny_dataset).load("train")
    old = vae.prior
    fit_prior(vae, x, num_modes=cfg.num_modes + 2)
    assert vae.prior is not old and vae.prior.mixture_distribution.logits_parameter().shape[-1] == cfg.num_modes + 2
    assert {id(v) for v in vae._prior_vars} == {id(v) for v in vae.prior.trainable_variables}
    q = vae.encoder(x[:8], training=False)
    charged = float(vae.encoder.losses[0]) * 8  # Keras divides the activity penalty by the batch size
    against = lambda prior: float(MixtureKLRegularizer(prior, free_bits=cfg.free_bits)(q))  # noqa: E731
    assert charged == pytest.approx(against(vae.prior), rel=1e-5)
    assert abs(charged - against(old)) > 1e-3 * abs(charged)
