"""Training input and whole-split walks in bounded memory (issue #25), on numbered synthetic
datasets: every image carries its position in the split in pixel [0, 0]."""

import json

import numpy as np
import pytest

from vae_tfp.config import spectrogram_preset
from vae_tfp.data import dataset as dataset_module
from vae_tfp.data.dataset import FORMAT, MANIFEST, PreparedDataset, open_dataset
from vae_tfp.errors import ConfigError, DatasetError

TINY = spectrogram_preset("tiny")  # 64x64: 8 192 bytes per float16 image


def numbered_dataset(folder, shard_sizes, *, split="train"):
    """A prepared dataset whose ``split`` holds ``sum(shard_sizes)`` images numbered 0.. in pixel [0, 0]."""
    folder.mkdir(parents=True)
    shards, clips, start = [], [], 0
    for k, n in enumerate(shard_sizes):
        images = np.full((n,) + TINY.shape[:2], 0.5, np.float16)
        images[:, 0, 0] = np.arange(start, start + n)
        name = f"{split}-{k:05d}.npy"
        np.save(folder / name, images)
        shards.append({"file": name, "n": n})
        clips += [{"index": start + r, "split": split, "shard": name, "row": r, "source": f"f{(start + r) // 10}.wav",
                   "offset": 0.0, "label": "a"} for r in range(n)]
        start += n
    manifest = {"format": FORMAT, "spectrogram_config": TINY.to_dict(), "clips": clips,
                "splits": {split: {"n_clips": start, "shards": shards}}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return PreparedDataset.open(folder)


def numbers(ds) -> list[int]:
    return [int(v) for batch in ds for v in batch.numpy()[:, 0, 0, 0]]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 8 rows (instead of 8 MB) so that tiny images stream as large ones do."""
    monkeypatch.setattr(dataset_module, "CHUNK_BYTES", 8 * 2 * 64 * 64)


@pytest.mark.parametrize("shard_sizes", [[3] * 200, [600]], ids=["many small shards", "one huge shard"])
def test_streamed_input_sees_every_clip_once_per_epoch_in_a_new_seeded_order(tmp_path, small_chunks, shard_sizes):
    data = numbered_dataset(tmp_path / "ds", shard_sizes)
    plan = data.input_plan("train", memory_budget=64 * 8192)
    assert not plan["cache"] and plan["shuffle_buffer"] == 64 and plan["bytes_in_memory"] == 64 * 8192
    ds = data.tf_dataset("train", batch_size=7, seed=3, memory_budget=64 * 8192)
    first, second = numbers(ds), numbers(ds)
    assert sorted(first) == sorted(second) == list(range(600))  # every clip exactly once, the remainder kept
    assert first != second and first != list(range(600))
    again = numbers(data.tf_dataset("train", batch_size=7, seed=3, memory_budget=64 * 8192))
    assert again == first  # deterministic for a seed
    with_positions = [(int(v), int(at)) for x, ats in data.tf_dataset("train", batch_size=7, seed=3, positions=True,
                                                                       memory_budget=64 * 8192)
                      for v, at in zip(x.numpy()[:, 0, 0, 0], ats.numpy())]
    assert all(v == at for v, at in with_positions)
    assert numbers(data.tf_dataset("train", batch_size=7, seed=4, memory_budget=64 * 8192)) != first


def test_streamed_order_mixes_shards(tmp_path, small_chunks):
    """The bounded buffer's cost: batches mix clips from far apart in the split (not one shard's run)."""
    data = numbered_dataset(tmp_path / "ds", [50] * 12)
    order = np.array(numbers(data.tf_dataset("train", batch_size=600, seed=0, memory_budget=64 * 8192)))
    assert abs(np.corrcoef(order, np.arange(600))[0, 1]) < 0.3  # no trace of the shard order left
    shards_per_batch = [len(set(b // 50)) for b in order.reshape(-1, 8)]
    assert np.mean(shards_per_batch) >= 3


def test_the_training_input_never_holds_more_than_its_budget(tmp_path, small_chunks):
    """What passes through the shuffle buffer, counted: the same seed with a buffer of one gives the
    order in which clips enter the buffer; a clip that leaves it at step t entered at step r, so
    max(r) - t over what has left is what the buffer held beyond its output (the old input, a
    buffer as large as the split, held 959 of the 1 000)."""
    data = numbered_dataset(tmp_path / "ds", [40] * 25)  # 1 000 clips
    budget = 64 * 8192
    plan = data.input_plan("train", memory_budget=budget)
    entered = numbers(data.tf_dataset("train", batch_size=4, seed=0, memory_budget=budget, shuffle_buffer=1))
    left = numbers(data.tf_dataset("train", batch_size=4, seed=0, memory_budget=budget))
    rank = {v: i for i, v in enumerate(entered)}
    held = np.maximum.accumulate([rank[v] for v in left]) - np.arange(len(left))
    assert len(left) == 1000 and 0 < held.max() <= plan["shuffle_buffer"] == 64, (held.max(), plan)
    assert np.mean(np.abs(np.array(entered) - np.arange(1000))) > 200  # the chunks' order itself is shuffled
    # the same split under a budget it fits: cached and exactly shuffled
    cached = data.input_plan("train", memory_budget=1000 * 8192)
    assert cached["cache"] and cached["shuffle_buffer"] == 1000 and cached["bytes_in_memory"] == 1000 * 8192


def test_each_input_pipeline_reads_its_own_chunks(tmp_path, small_chunks):
    import tensorflow as tf

    data = numbered_dataset(tmp_path / "ds", [40] * 5)
    seen = [numbers(data.tf_dataset("train", batch_size=5, seed=0, memory_budget=0,
                                    input_context=tf.distribute.InputContext(2, i, 1))) for i in range(2)]
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(200))


def test_subsets_and_streamed_batches(tmp_path, small_chunks):
    data = numbered_dataset(tmp_path / "ds", [7] * 9)  # 63 clips
    rows = data.sample("train", 10, seed=1)
    assert len(rows) == 10 and list(rows) == sorted(set(rows)) and list(rows) == list(data.sample("train", 10, seed=1))
    assert list(data.sample("train", 100)) == list(range(63))
    np.testing.assert_array_equal(data.load("train", rows=rows)[:, 0, 0, 0], rows)
    np.testing.assert_array_equal(data.load("train", rows=[int(r) for r in rows])[:, 0, 0, 0], rows)  # a list too
    sizes = [len(b) for b in data.batches("train", 5)]
    assert sizes == [5] * 12 + [3]
    assert numbers(data.tf_dataset("train", rows=rows, shuffle=False)) == list(rows)
    empty = data.load("train", rows=np.array([], int))
    assert empty.shape == (0,) + TINY.shape
    assert data.mean_image("train", max_clips=10, seed=1)[0, 0, 0] == pytest.approx(rows.mean(), rel=1e-3)


def test_a_nan_in_a_streamed_chunk_is_named(tmp_path, small_chunks):
    data = numbered_dataset(tmp_path / "ds", [20, 20])
    images = np.load(tmp_path / "ds" / "train-00001.npy")
    images[5, 3, 3] = np.nan
    np.save(tmp_path / "ds" / "train-00001.npy", images)
    with pytest.raises(Exception, match=r"train-00001.npy: row 5 holds NaN") as raised:
        numbers(data.tf_dataset("train", memory_budget=0))
    assert str(data.input_error(raised.value)) == (f"{tmp_path / 'ds' / 'train-00001.npy'}: row 5 (clip 25 from f2.wav "
                                                   f"@ 0.0 s) holds NaN or Inf; prepare the dataset again")
    assert data.input_error(ValueError("something else")) is None
    with pytest.raises(DatasetError, match="train-00001.npy: row 5"):
        data.check_finite("train")


def test_the_budget_comes_from_the_environment(tmp_path, monkeypatch):
    data = numbered_dataset(tmp_path / "ds", [10])
    monkeypatch.setenv("VAE_TFP_MEMORY_BUDGET_MB", "0")
    assert not data.input_plan("train")["cache"]
    monkeypatch.setenv("VAE_TFP_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(ConfigError, match="VAE_TFP_MEMORY_BUDGET_MB='lots'"):
        data.input_plan("train")
    monkeypatch.delenv("VAE_TFP_MEMORY_BUDGET_MB")
    assert open_dataset(tmp_path / "ds").input_plan("train")["cache"]


@pytest.mark.parametrize("budget", [0, None], ids=["streamed", "cached"])
def test_an_empty_split_and_a_single_clip(tmp_path, small_chunks, budget):
    one = numbered_dataset(tmp_path / "one", [1])
    assert numbers(one.tf_dataset("train", batch_size=4, memory_budget=budget)) == [0]
    assert numbers(one.tf_dataset("train", batch_size=4, memory_budget=budget, drop_remainder=True)) == []
    empty = numbered_dataset(tmp_path / "empty", [])
    assert numbers(empty.tf_dataset("train", batch_size=4, memory_budget=budget)) == []
    assert empty.load("train").shape == (0,) + TINY.shape and list(empty.batches("train")) == []


@pytest.mark.parametrize("budget", [0, None], ids=["streamed", "cached"])
def test_without_shuffling_clips_come_in_manifest_order(tmp_path, small_chunks, budget):
    data = numbered_dataset(tmp_path / "ds", [20, 7, 30, 3, 40])  # chunks of 8 rows and shorter ones
    assert numbers(data.tf_dataset("train", batch_size=6, shuffle=False, memory_budget=budget)) == list(range(100))
