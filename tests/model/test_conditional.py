"""Label-conditioned generation (vae_tfp.model.conditional) on the tiny set's two tone families."""

from pathlib import Path

import numpy as np
import pytest

from vae_tfp.apps.cli import main
from vae_tfp.config import model_preset
from vae_tfp.data.dataset import open_dataset
from vae_tfp.errors import ConfigError, ModelFileError
from vae_tfp.model.conditional import fit_conditional, load_conditional, parse_where
from vae_tfp.model.prior import sample_prior
from vae_tfp.model.prior_fit import fit_prior_saved
from vae_tfp.model.saving import load_model
from vae_tfp.model.training import train


@pytest.fixture(scope="module")
def conditioned(tiny_dataset, tmp_path_factory):
    """A tiny model of its own, trained until the two tone families' codes separate, with a fitted prior and a
    conditional prior. A sampler can be only as label-specific as the codes: after the 3 epochs of
    ``trained_tiny``, posterior draws fell nearer their own family's centre 50-97 % of the time over training
    seeds 0-7 (and the samplers passed on 2 of 8); after 10 epochs 97-100 % (all 8)."""
    model_dir = tmp_path_factory.mktemp("conditioned") / "m"
    train(tiny_dataset, model_dir, model_preset("tiny"), epochs=10, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False)
    fit_prior_saved(model_dir, tiny_dataset, num_modes=4)  # components on the codes, as `train --fit-prior` leaves them
    record = fit_conditional(model_dir, tiny_dataset)
    assert set(record["fields"]["label"]) == {"high", "low"} and record["n_clips"] == sum(record["fields"]["label"].values())
    cond = load_conditional(model_dir)
    draws = cond.means + cond.scales * np.random.default_rng(0).standard_normal(cond.means.shape)
    assert _nearer_own_centre(cond, draws, cond.values["label"]).mean() >= 0.95, "the fixture's codes do not separate"
    return model_dir


def _nearer_own_centre(cond, z, labels):
    """Per latent in ``z`` [n, D]: is it nearer the centre of its label's codes than the other label's?"""
    centre = {v: cond.means[cond.values["label"] == v].mean(axis=0) for v in ("low", "high")}
    own = np.stack([centre[v] for v in labels])
    other = np.stack([centre["high" if v == "low" else "low"] for v in labels])
    return np.linalg.norm(z - own, axis=1) < np.linalg.norm(z - other, axis=1)


@pytest.mark.parametrize("method", ["components", "em"])
def test_each_label_yields_its_own_cluster(conditioned, method):
    cond = load_conditional(conditioned)
    model = load_model(conditioned, parts=("prior",))
    for value in ("low", "high"):
        z = sample_prior(model, 64, where={"label": value}, method=method, seed=1)
        assert z.shape == (64, model.config.latent_dim)
        near = _nearer_own_centre(cond, z, [value] * len(z))
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


def _with_pitch(model_dir, tmp_path):
    """A copy of a conditioned model whose clips also carry a pitch: 48 or 50 for the low tones, 52 or 54 for
    the high ones (alternately)."""
    import shutil

    from vae_tfp.model.conditional import FILE

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    with np.load(copy / FILE) as f:
        arrays = {k: f[k] for k in f.files}
    label = arrays["values"][list(arrays["fields"]).index("label")]
    arrays["fields"] = np.append(arrays["fields"], "pitch")
    pitch = np.where(label == "low", 48, 52) + 2 * (np.arange(len(label)) % 2)
    arrays["values"] = np.concatenate([arrays["values"], pitch.astype(str)[None]])
    np.savez(copy / FILE, **arrays)
    return copy


def test_the_instrument_maps_every_key_to_a_present_sample(conditioned, tmp_path):
    import re

    from vae_tfp.apps.operations import op_instrument

    model_dir = _with_pitch(conditioned, tmp_path)
    assert load_conditional(model_dir).direction("pitch").shape == (load_model(model_dir, parts=("prior",)).config.latent_dim,)
    result = op_instrument(model_dir, tmp_path / "out", where={"label": "low"}, pitches=range(46, 51), check_pitch=False)
    sfz = Path(result["sfz"])
    regions = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in sfz.read_text().splitlines()
               if line.startswith("<region>")]
    keys = [k for r in regions for k in range(int(r["lokey"]), int(r["hikey"]) + 1)]
    assert sorted(keys) == list(range(46, 51))  # every key once
    for r in regions:
        assert not Path(r["sample"]).is_absolute() and (sfz.parent / r["sample"]).is_file()
        assert int(r["lokey"]) <= int(r["hikey"]) and r["pitch_keycenter"] in ("48", "50")  # the low tones' pitches
    assert result["notes"] == 2 and result["farthest_key_from_its_note"] == 2
    direction = op_instrument(model_dir, tmp_path / "dir", where={"label": "low"}, pitches=range(46, 49),
                              method="direction", check_pitch=False)
    assert direction["notes"] == 3 and len(list((tmp_path / "dir").glob("*.wav"))) == 3
    assert np.load(tmp_path / "dir" / "latents.npy").shape[0] == 3


def test_sfz_tunes_away_only_the_deviation_from_the_nearest_semitone():
    from vae_tfp.apps.operations import sfz_tune

    assert [sfz_tune(e) for e in (0.0, 10.0, -30.0, 1200.0, 1210.0, 1910.0, float("nan"))] == [0, -10, 30, 0, -10, -10, 0]
