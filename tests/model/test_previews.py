"""Hear it learn: previews written at the set interval and bounded in number, TensorBoard audio,
the auto interval, resume, samples_fd and its baselines, and the verdict."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from vae_tfp.config import model_preset
from vae_tfp.errors import ConfigError
from vae_tfp.model import previews as previews_module
from vae_tfp.model.previews import (KEEP_LAST, Previews, StatisticsDistance, check_every, read_previews,
                                    verdict)
from vae_tfp.model.training import train


def _folders(model_dir):
    return sorted(int(p.name.split("_")[1]) for p in (model_dir / "previews").glob("epoch_*"))


@pytest.fixture(scope="module")
def previewed(tiny_dataset, tmp_path_factory):
    """A tiny run of 9 epochs with previews every 2 epochs."""
    model_dir = tmp_path_factory.mktemp("previews") / "m"
    history = train(tiny_dataset, model_dir, model_preset("tiny"), epochs=9, batch_size=8, verbose=0,
                    log=lambda _: None, previews=2)
    return model_dir, history


def test_previews_are_written_at_the_set_interval_and_bounded(previewed):
    model_dir, history = previewed
    previewed_epochs = [h["epoch"] for h in history if "samples_fd" in h]
    assert previewed_epochs == [1, 2, 4, 6, 8, 9]  # every 2nd, the first and the run's last
    index = read_previews(model_dir)
    best = min((h for h in history if "samples_fd" in h), key=lambda h: h["val_neg_elbo"])["epoch"]
    kept = sorted({1, best} | set(previewed_epochs[-KEEP_LAST:]))
    assert [e["epoch"] for e in sorted(index["entries"], key=lambda e: e["epoch"])] == kept
    assert _folders(model_dir) == kept  # the others were deleted: bounded, whatever the run's length
    assert len(kept) <= KEEP_LAST + 2
    clip_seconds = model_preset("tiny").spectrogram.clip_samples / model_preset("tiny").spectrogram.sample_rate
    for entry in index["entries"]:
        for item in entry["samples"] + entry["reconstructions"]:
            info = sf.info(item["wav"])
            assert info.duration == pytest.approx(clip_seconds, abs=0.02)
            assert open(item["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert len(entry["samples"]) == len(entry["reconstructions"]) == previews_module.PREVIEW_CLIPS
    assert len(index["real"]) == previews_module.PREVIEW_CLIPS
    # the exported model folder (swapped in whole at every best epoch) kept the previews
    assert (model_dir / "config.json").is_file() and (model_dir / "previews" / "previews.json").is_file()


def test_previews_reach_tensorboard_as_audio(previewed):
    import tensorflow as tf

    model_dir, _ = previewed
    tags = {}
    for file in (model_dir / "checkpoints" / "logs" / "diagnostics").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    for tag in ("previews/prior_samples", "previews/reconstructions", "previews/prior_sample_images",
                "previews/samples_fd"):
        assert tags.get(tag) == {1, 2, 4, 6, 8, 9}, tag


def test_samples_fd_has_its_floor_and_baseline(previewed):
    _, history = previewed
    h = [h for h in history if "samples_fd" in h][-1]
    assert 0 < h["samples_fd_floor"] < h["samples_fd_mean_image"]  # real against real beats a smear
    assert math.isfinite(h["samples_fd"]) and h["preview_seconds"] > 0


def test_samples_fd_can_fail():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(64, 10)) @ rng.normal(size=(10, 10))
    distance = StatisticsDistance(real)
    assert distance(real) == pytest.approx(0, abs=1e-6)
    same = distance(real[rng.permutation(64)])
    assert same == pytest.approx(0, abs=1e-6)  # the same clips in another order
    fresh = rng.normal(size=(64, 10))
    real2 = rng.normal(size=(64, 10))
    d = StatisticsDistance(real2)
    assert d(fresh) < 2.0  # another draw of the same distribution
    assert d(fresh + 2) > 10  # shifted by two standard deviations
    assert d(real2.mean(0, keepdims=True)) > d(fresh)  # one mean point: no spread
    assert d(fresh * 0.2) > d(fresh)  # a smear: too little spread


def test_every_history_record_has_a_verdict(previewed):
    _, history = previewed
    assert all(h["verdict"]["state"] in ("improving", "plateaued") and h["verdict"]["text"] for h in history)


def test_auto_previews_stay_within_their_budget(tiny_dataset, tmp_path):
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.networks import VAE

    data = open_dataset(tiny_dataset)
    x = data.load("val")
    vae = VAE(model_preset("tiny").for_spectrogram(data.config))
    train_x = data.load("train")
    p = Previews(tmp_path / "m", x, train_x[::2], train_x[1::2], data.mean_image(), data.config, every="auto")
    assert p.due(1, 100, epoch_seconds=1e-3)  # the first epoch always
    record = {"epoch": 1, "seconds": 1e-3, "val_neg_elbo": 1.0}
    p(vae, 1, record)
    assert p.spent == p.last_cost > 0
    assert not p.due(2, 100, epoch_seconds=1e-3)  # an expensive preview beside a short epoch: not yet
    assert p.due(3, 100, epoch_seconds=1e6)  # once the training time makes room
    assert p.due(100, 100, epoch_seconds=1e-3)  # the run's last epoch always


@pytest.mark.parametrize("epochs", [16, 200])
def test_auto_previews_take_at_most_their_share_of_a_run(tiny_dataset, tmp_path, epochs, monkeypatch):
    # epochs of 10 s whose previews cost 3 s: previewed every few epochs, the first and the last
    # always, all of them within 10 % of the training time
    from vae_tfp.data.dataset import open_dataset

    data = open_dataset(tiny_dataset)
    x = data.load("val")
    p = Previews(tmp_path / "m", x, x, x, data.mean_image(), data.config, every="auto")
    previewed = []
    for epoch in range(1, epochs + 1):
        if p.due(epoch, epochs, epoch_seconds=10.0):
            p.spent, p.last_cost = p.spent + 3.0, 3.0  # as a preview of 3 s would leave them
            previewed.append(epoch)
    assert previewed[0] == 1 and previewed[-1] == epochs
    assert p.spent <= previews_module.COST_BUDGET * p.trained
    assert len(previewed) >= 0.8 * previews_module.COST_BUDGET * 10 / 3 * epochs  # and not much less
    # cheap previews beside an epoch: every epoch
    assert all(previews_module.within_budget(0.1 * k + 0.1, 0.1, 10.0 * k) for k in range(1, 50))


def test_resume_drops_previews_after_the_checkpoint(tiny_dataset, tmp_path):
    model_dir = tmp_path / "m"
    train(tiny_dataset, model_dir, model_preset("tiny"), epochs=2, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False, previews=1)
    # a preview of an epoch whose checkpoint was never written (killed in between)
    index = json.loads((model_dir / "previews" / "previews.json").read_text())
    (model_dir / "previews" / "epoch_0003").mkdir()
    index["entries"].append({**index["entries"][-1], "epoch": 3, "folder": "epoch_0003"})
    (model_dir / "previews" / "previews.json").write_text(json.dumps(index))
    history = train(tiny_dataset, model_dir, model_preset("tiny"), epochs=4, batch_size=8, verbose=0,
                    log=lambda _: None, tensorboard=False, previews=1, resume=True)
    assert [h["epoch"] for h in history if "samples_fd" in h] == [1, 2, 3, 4]
    assert [e["epoch"] for e in read_previews(model_dir)["entries"]] == [1, 2, 3, 4]
    assert _folders(model_dir) == [1, 2, 3, 4]


def test_previews_off_writes_nothing(tiny_dataset, tmp_path):
    history = train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8, verbose=0,
                    log=lambda _: None, tensorboard=False, previews=0)
    assert not (tmp_path / "m" / "previews").exists() and "samples_fd" not in history[0]
    assert history[0]["verdict"]["state"] == "improving"


@pytest.mark.parametrize("bad", [-1, "sometimes", 1.5, True])
def test_a_bad_interval_is_one_line(bad):
    with pytest.raises(ConfigError, match="previews=.* must be 'auto', a positive number of epochs, or 0"):
        check_every(bad)


def test_interval_values():
    assert [check_every(v) for v in ("auto", "3", 3, 0, "0", None)] == ["auto", 3, 3, None, None, None]


def _history(values, samples=None):
    return [{"epoch": i + 1, "val_neg_elbo": v, **({} if samples is None else {"samples_fd": samples[i]})}
            for i, v in enumerate(values)]


def test_verdict_improving_and_plateaued():
    assert verdict(_history([10, 9, 8]))["state"] == "improving"
    flat = verdict(_history([10, 9, 9, 9, 9, 9, 9, 9]), patience=5)
    assert flat["state"] == "plateaued" and flat["metrics"]["val_neg_elbo"]["since_best"] == 6
    assert "plateaued for 6 epochs" in flat["text"]
    # the samples still improve while the validation loss is flat: not done
    assert verdict(_history([10, 9, 9, 9, 9, 9, 9, 9], [5, 5, 5, 5, 5, 5, 4, 3]), patience=5)["state"] == "improving"
    # gains below MIN_IMPROVEMENT are noise
    assert verdict(_history([1000, 999.99, 999.98, 999.97, 999.96, 999.95, 999.94]), patience=5)["state"] == "plateaued"
    assert verdict([])["state"] == "starting"


def test_verdict_on_negative_losses():
    assert verdict(_history([-100, -110, -120]))["metrics"]["val_neg_elbo"]["best_epoch"] == 3


def test_previews_never_change_training(tiny_dataset, tmp_path):
    # whether and when previews run ("auto" follows the wall clock) must not move a seeded run
    runs = [train(tiny_dataset, tmp_path / str(every), model_preset("tiny"), epochs=3, batch_size=8, verbose=0,
                  log=lambda _: None, tensorboard=False, previews=every) for every in (0, 1)]
    # Not bit-exact: CPU kernels that split a reduction over threads add in varying order (about
    # 1e-7 relative, seen on CI); a moved noise generator changes the losses by far more than 1e-5.
    for key in ("loss", "val_neg_elbo", "recon_gain"):
        assert [h[key] for h in runs[0]] == pytest.approx([h[key] for h in runs[1]], rel=1e-5), key


def test_one_validation_clip_still_previews(tiny_dataset, tmp_path):
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.networks import VAE

    data = open_dataset(tiny_dataset)
    one = data.load("val", limit=1)
    vae = VAE(model_preset("tiny").for_spectrogram(data.config))
    p = Previews(tmp_path / "m", one, one, one, data.mean_image(), data.config, every=1)
    record = {"epoch": 1, "seconds": 1.0, "val_neg_elbo": 1.0}
    entry = p(vae, 1, record)
    assert record["samples_fd"] is None and "samples_fd_floor" not in record  # no spread to compare with
    assert len(entry["reconstructions"]) == 1 and len(entry["samples"]) == previews_module.PREVIEW_CLIPS
    assert verdict([{**record, "verdict": None}])["metrics"].keys() == {"val_neg_elbo"}
