"""Label-conditioned generation (vae_tfp.model.conditional) on the tiny set's two tone families."""

import shutil

import numpy as np
import pytest

from vae_tfp.apps.cli import main
from vae_tfp.data.dataset import open_dataset
from vae_tfp.errors import ConfigError, ModelFileError
from vae_tfp.model.conditional import fit_conditional, load_conditional, parse_where
from vae_tfp.model.prior import sample_prior
from vae_tfp.model.prior_fit import fit_prior_saved
from vae_tfp.model.saving import load_model


@pytest.fixture(scope="module")
def conditioned(trained_tiny, tiny_dataset, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("conditioned") / "m"
    shutil.copytree(trained_tiny, model_dir)
    fit_prior_saved(model_dir, tiny_dataset, num_modes=4)  # components on the codes, as `train --fit-prior` leaves them
    record = fit_conditional(model_dir, tiny_dataset)
    assert set(record["fields"]["label"]) == {"high", "low"} and record["n_clips"] == sum(record["fields"]["label"].values())
    return model_dir


@pytest.mark.parametrize("method", ["components", "em"])
def test_each_label_yields_its_own_cluster(conditioned, method):
    cond = load_conditional(conditioned)
    model = load_model(conditioned, parts=("prior",))
    centre = {v: cond.means[cond.values["label"] == v].mean(axis=0) for v in ("low", "high")}
    for value, other in (("low", "high"), ("high", "low")):
        z = sample_prior(model, 64, where={"label": value}, method=method, seed=1)
        assert z.shape == (64, model.config.latent_dim)
        near = np.linalg.norm(z - centre[value], axis=1) < np.linalg.norm(z - centre[other], axis=1)
        assert near.mean() >= 0.8, (value, method, near.mean())
    again = sample_prior(model, 64, where={"label": "low"}, method=method, seed=1)
    np.testing.assert_array_equal(again, sample_prior(model, 64, where={"label": "low"}, method=method, seed=1))


def test_unknown_values_and_fields_are_one_line_naming_what_exists(conditioned, capsys, tmp_path):
    for where, expected in ((["label=middle"], "no clip has label=middle; label takes high, low"),
                            (["colour=red"], "no label field 'colour'; fields are label"),
                            (["label"], "--where 'label' must be FIELD=VALUE")):
        assert main(["generate", str(conditioned), "--out", str(tmp_path / "g"), "-n", "1", "--where", *where]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vae-tfp")]
        assert len(lines) == 1 and expected in lines[0], lines
    assert main(["generate", str(conditioned), "--out", str(tmp_path / "g"), "-n", "2", "--where", "label=low"]) == 0
    assert len(list((tmp_path / "g").glob("*.wav"))) == 2


def test_nearest_numbers_and_joint_conditions(conditioned):
    cond = load_conditional(conditioned)
    cond.values["pitch"] = np.where(cond.values["label"] == "low", "48", "72")  # a numeric field, for the test
    cond.fields.append("pitch")
    assert cond.select({"label": "low", "pitch": 48}).sum() == (cond.values["label"] == "low").sum()
    with pytest.raises(ConfigError, match=r"no clip has pitch=72 given label=low; pitch takes 48 \(nearest: 48\)"):
        cond.select({"label": "low", "pitch": 72})
    with pytest.raises(ConfigError, match=r"pitch takes 48, 72 \(nearest: 72, 48\)"):
        cond.select({"pitch": 70})


def test_without_a_conditional_prior_the_error_says_how_to_make_one(trained_tiny):
    with pytest.raises(ModelFileError, match="vae-tfp fit-conditional"):
        sample_prior(load_model(trained_tiny, parts=("prior",)), 2, where={"label": "low"})
    with pytest.raises(ConfigError, match="not both"):
        sample_prior(load_model(trained_tiny, parts=("prior",)), 2, where={"label": "low"}, component=0)
    assert parse_where(["instrument=violin", "pitch=60"]) == {"instrument": "violin", "pitch": "60"}


def test_the_labels_come_from_the_dataset(conditioned, tiny_dataset):
    cond = load_conditional(conditioned)
    clips = open_dataset(tiny_dataset).split_clips("train")
    assert list(cond.values["label"]) == [c["label"] for c in clips]
    assert cond.responsibilities.shape[0] == len(clips)
    np.testing.assert_allclose(cond.responsibilities.sum(axis=1), 1.0, rtol=1e-5)
