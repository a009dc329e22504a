import numpy as np
import pytest

from vae_tfp.evaluation.sample_metrics import build_reference, evaluate_samples, frechet_distance, inception_score, ndb, precision_recall, score


def test_frechet_distance_of_known_gaussians(rng):
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = a + np.array([3.0, 0.0, 0.0])
    assert frechet_distance(a, b) == pytest.approx(9.0, rel=1e-3)
    c = a * 2.0  # cov 4I: tr(I + 4I - 2*2I) = 3 per... = 3
    assert frechet_distance(a, c) == pytest.approx(3.0, rel=0.05)


def test_inception_score_bounds():
    assert inception_score(np.eye(5)) == pytest.approx(5.0)
    assert inception_score(np.full((10, 5), 0.2)) == pytest.approx(1.0)
    assert inception_score(np.tile(np.eye(5)[0], (10, 1))) == pytest.approx(1.0)


def test_ndb_and_precision_recall_on_same_and_disjoint_sets(rng):
    bins = rng.integers(0, 10, 2000)
    assert ndb(bins, rng.integers(0, 10, 2000), 10) <= 0.2
    assert ndb(bins, np.zeros(500, int), 10) == 1.0
    real = rng.standard_normal((300, 4))
    p, r = precision_recall(real, rng.standard_normal((300, 4)))
    assert p > 0.8 and r > 0.8
    p, r = precision_recall(real, rng.standard_normal((300, 4)) + 20)
    assert p == 0.0 and r == 0.0


@pytest.fixture(scope="module")
def reference(tiny_dataset):
    return build_reference(tiny_dataset, log=lambda _: None)


@pytest.fixture(scope="module")
def four_families(tmp_path_factory):
    """Four tone families x 10 files, 40 % of the files held out: a held-out split like the training one."""
    from conftest import harmonic, write
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset

    root = tmp_path_factory.mktemp("families")
    for label, f0 in (("a", 150.0), ("b", 400.0), ("c", 900.0), ("d", 2000.0)):
        for i in range(10):
            write(root / label / f"{label}_{i}.wav", harmonic(1.5, 8000, f0 * (1 + 0.03 * i)), 8000)
    out = tmp_path_factory.mktemp("families_ds") / "ds"
    prepare_dataset([root], out, spectrogram_preset("tiny"), split_fractions=(0.6, 0.0, 0.4), progress=False,
                    log=lambda _: None)
    return out


def test_real_floor_near_zero_and_mean_image_far_from_real(four_families):
    from vae_tfp.data.dataset import open_dataset

    reference = build_reference(four_families, log=lambda _: None)
    real, train = open_dataset(four_families).load("test"), open_dataset(four_families).load("train")
    floor = score(reference, real)
    mean = score(reference, np.repeat(train.mean(0)[None], len(real), axis=0))
    noise = score(reference, np.random.default_rng(0).uniform(0, 1, real.shape).astype(np.float32))
    assert floor["fid"] < 0.2 * mean["fid"] and floor["fid"] < 0.2 * noise["fid"], (floor, mean, noise)
    assert floor["precision"] >= 0.6 and floor["recall"] >= 0.4 and floor["ndb_k"] <= 0.5
    assert mean["recall"] <= 0.1 and mean["inception_score"] == pytest.approx(1.0, abs=1e-3)
    assert 0.8 < floor["brightness_ratio"] < 1.25 and noise["brightness_ratio"] > 1.5
    # time structure: the held-out clips are distributed like the training clips, the smear is not
    assert floor["time_w1"] < mean["time_w1"] and floor["time_w1"] < noise["time_w1"], (floor, mean, noise)


def test_evaluate_samples_table(trained_tiny, tiny_dataset, reference):
    from vae_tfp.model.saving import load_model
    from vae_tfp.evaluation.sample_metrics import format_table

    logged = []
    result = evaluate_samples(load_model(trained_tiny), tiny_dataset, n_samples=24, temperatures=(1.0, 0.5),
                              reference=reference, log=logged.append)
    # 24 samples for 64-dimensional features: the table says it is unreliable, in the result and the log
    assert "from 24 samples per set are unreliable" in result["warning"] and any("unreliable" in m for m in logged)
    sets = [r["set"] for r in result["rows"]]
    assert sets[:5] == ["real (held-out)", "dataset mean", "reconstructions", "prior T=1", "prior T=0.5"]
    assert any(s.startswith("component ") for s in sets) and "interpolation midpoints" in sets
    assert result["best_temperature"] in (1.0, 0.5)
    table = format_table(result)
    assert table.splitlines()[2].startswith("| real (held-out) |") and "component" not in table
    rows = {r["set"]: r for r in result["rows"]}
    # reconstructions are scored clip by clip against their real clip; the held-out row gives the chance level
    assert -1 <= rows["reconstructions"]["onset_corr"] <= 1 and "onset_corr" in rows["real (held-out)"]
    assert "loudness_corr" not in rows["prior T=1"] and "time_w1" in rows["prior T=1"] and "time_w1" in table


def test_datasets_without_labels_use_a_pca_embedding(tmp_path):
    from conftest import harmonic, write
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import open_dataset, prepare_dataset

    for i in range(12):  # one folder, one file-name prefix: a single label, no metadata
        write(tmp_path / "src" / f"take_{i}.wav", harmonic(1.5, 8000, 200.0 * (1 + 0.2 * i)), 8000)
    data = tmp_path / "ds"
    prepare_dataset([tmp_path / "src"], data, spectrogram_preset("tiny"), split_fractions=(0.7, 0.0, 0.3),
                    progress=False, log=lambda _: None)
    reference = build_reference(data, log=lambda _: None)
    assert reference.embedding.startswith("PCA") and not (data / "classifier").exists()
    real, train = open_dataset(data).load("test"), open_dataset(data).load("train")
    floor = score(reference, real)
    mean = score(reference, np.repeat(train.mean(0)[None], len(real), axis=0))
    assert "inception_score" not in floor and floor["fid"] < mean["fid"] and mean["recall"] == 0.0


def test_no_small_sample_warning_at_twice_the_feature_dimension():
    from vae_tfp.evaluation.classifier import FEATURE_DIM
    from vae_tfp.evaluation.sample_metrics import small_sample_warning

    assert small_sample_warning(2 * FEATURE_DIM) is None and small_sample_warning(2 * FEATURE_DIM - 1)


def test_the_table_carries_the_judges_and_their_agreement(trained_tiny, tiny_dataset, reference):
    from vae_tfp.model.saving import load_model
    from vae_tfp.evaluation.sample_metrics import format_table

    result = evaluate_samples(load_model(trained_tiny), tiny_dataset, n_samples=24, temperatures=(1.0,),
                              reference=reference, judges=True, judge_n=8, log=lambda _: None)
    rows = {r["set"]: r for r in result["rows"]}
    judged = [s for s in rows if not s.startswith("component ")]
    assert {"real (held-out)", "dataset mean", "white noise", "reconstructions", "prior T=1"} <= set(judged)
    for name in judged:
        r = rows[name]
        assert np.isfinite(r["fad_musicnn"]) and 0 <= r["two_sample"] <= 1 and r["inversion_sc"] >= 0, name
    assert rows["white noise"]["fad_musicnn"] > rows["real (held-out)"]["fad_musicnn"]
    assert rows["white noise"]["two_sample"] >= 0.9 and rows["white noise"]["inversion_sc"] > rows["real (held-out)"]["inversion_sc"]
    assert not any("fad_musicnn" in r for s, r in rows.items() if s.startswith("component "))
    assert result["judges"]["n"] == min(8, rows["real (held-out)"]["n"])  # every set at one n
    assert result["judges"]["agreement"]["n_sets"] == len(judged)
    assert "fad_musicnn" in format_table(result)
