import json

import numpy as np
import pytest

from conftest import harmonic, write
from vae_tfp.data.dataset import assign_splits, label_for, open_dataset, prepare_audio_dir, prepare_dataset
from vae_tfp.errors import ConfigError, DatasetError


def test_prepare_skips_broken_files_and_records_why(audio_folder, tmp_path, tiny):
    lines = []
    m = prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lines.append)
    skipped = {s["path"].split("/")[-1]: s["reason"] for s in m["skipped"]}
    assert set(skipped) == {"empty.wav", "text.wav"}
    assert all(name in reason for name, reason in skipped.items())
    assert len(lines) == 2
    assert m["labels"] == ["high", "low"]
    assert sum(v["n_clips"] for v in m["splits"].values()) == len(m["clips"]) == 6 * 2  # 1.2 s → 2 clips of 0.5 s
    assert (tmp_path / "ds" / "manifest.json").exists()


def test_clips_of_one_file_never_straddle_splits(audio_folder, tmp_path, tiny):
    m = prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    by_source = {}
    for c in m["clips"]:
        by_source.setdefault(c["source"], set()).add(c["split"])
    assert all(len(s) == 1 for s in by_source.values())
    # splits are drawn over the discovered files (broken ones included), before decoding
    assert {"train", "val"} <= {s for v in by_source.values() for s in v}


def test_splits_are_deterministic_and_seeded():
    keys = [f"f{i}.wav" for i in range(50)]
    a, b = assign_splits(keys, (0.8, 0.1, 0.1), 0), assign_splits(list(reversed(keys)), (0.8, 0.1, 0.1), 0)
    assert a == b
    assert sorted(a.values()).count("val") == 5
    assert assign_splits(keys, (0.8, 0.1, 0.1), 1) != a
    assert set(assign_splits(keys[:3], (0.8, 0.1, 0.1), 0).values()) == {"train", "val", "test"}
    with pytest.raises(ConfigError):
        assign_splits(keys, (0.5, 0.1, 0.1), 0)


def test_prepare_is_byte_identical_on_rerun(audio_folder, tmp_path, tiny):
    a = prepare_dataset([audio_folder], tmp_path / "a", tiny, progress=False, log=lambda _: None)
    b = prepare_dataset([audio_folder], tmp_path / "b", tiny, progress=False, log=lambda _: None, workers=2)
    assert a["clips"] == b["clips"]
    for shard in sorted(p.name for p in (tmp_path / "a").glob("*.npy")):
        assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()


def test_labels_from_subfolder_or_prefix(tmp_path):
    assert label_for(tmp_path / "piano" / "x_1.wav", tmp_path) == "piano"
    assert label_for(tmp_path / "violin_060.wav", tmp_path) == "violin"
    assert label_for(tmp_path / "bwv1.6.wav", tmp_path) == "bwv1.6"


def test_metadata_sidecar_is_attached(tmp_path, tiny):
    write(tmp_path / "src" / "a" / "x.wav", harmonic(0.4, 8000), 8000)
    (tmp_path / "src" / "metadata.json").write_text(json.dumps({"a/x.wav": {"pitch": 60}}))
    m = prepare_dataset([tmp_path / "src"], tmp_path / "ds", tiny, progress=False)
    assert m["clips"][0]["meta"] == {"pitch": 60}


def test_folder_of_only_bad_files_writes_nothing(tmp_path, tiny):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.wav").write_bytes(b"junk")
    (tmp_path / "src" / "b.wav").write_bytes(b"")
    with pytest.raises(DatasetError, match="no usable clips.*a.wav"):
        prepare_dataset([tmp_path / "src"], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(".ds.partial-*"))


def test_existing_dataset_needs_overwrite(audio_folder, tmp_path, tiny):
    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    with pytest.raises(DatasetError, match="already exists"):
        prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False)
    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, overwrite=True, log=lambda _: None)


def test_interrupted_prepare_leaves_nothing_that_looks_complete(audio_folder, tmp_path, tiny, monkeypatch):
    import vae_tfp.data.dataset as dataset

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "write_json_atomic", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.iterdir())[1:]
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        open_dataset(tmp_path / "ds").manifest


def test_load_numpy_and_tf_dataset_agree(audio_folder, tmp_path, tiny):
    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    x = open_dataset(tmp_path / "ds").load("train")
    assert x.shape[1:] == tiny.shape and x.dtype == np.float32 and len(x) == len(open_dataset(tmp_path / "ds").split_clips("train"))
    batches = list(open_dataset(tmp_path / "ds").tf_dataset("train", batch_size=3, shuffle=False))
    assert batches[0].shape[1:] == tiny.shape
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), x)
    shuffled = np.concatenate([b.numpy() for b in open_dataset(tmp_path / "ds").tf_dataset("train", batch_size=3, seed=1)])
    np.testing.assert_array_equal(np.sort(shuffled.reshape(len(x), -1), 0), np.sort(x.reshape(len(x), -1), 0))


def test_missing_shard_is_named(audio_folder, tmp_path, tiny):
    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    (tmp_path / "ds" / "train-00000.npy").unlink()
    with pytest.raises(DatasetError, match="train-00000.npy"):
        open_dataset(tmp_path / "ds").load("train")


def test_non_utf8_file_names_survive_the_manifest(tmp_path, tiny):
    import os

    import soundfile as sf

    src = tmp_path / "src"
    src.mkdir()
    sf.write(os.fsencode(src / os.fsdecode(b"x_\xff.wav")), harmonic(0.6, 8000), 8000)
    m = prepare_dataset([src], tmp_path / "ds", tiny, progress=False)
    assert open_dataset(tmp_path / "ds").manifest["clips"][0]["source"] == m["clips"][0]["source"]


def test_one_image_matches_load_numpy(audio_folder, tmp_path, tiny):
    from vae_tfp.data.dataset import open_dataset

    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=lambda _: None)
    x = open_dataset(tmp_path / "ds").load("train")
    for k, clip in enumerate(open_dataset(tmp_path / "ds").split_clips("train")):
        np.testing.assert_array_equal(open_dataset(tmp_path / "ds").image(clip).astype(np.float32), x[k, ..., 0])


def test_own_audio_is_prepared_once_and_again_when_the_folder_changes(tmp_path):
    for name in ("mine", "other"):
        for label in ("kick", "snare"):
            write(tmp_path / name / label / f"{label}.wav", harmonic(1.2, 8000, 300 if label == "kick" else 900), 8000)
    messages = []
    first = prepare_audio_dir(tmp_path / "mine", tmp_path / "data", spec="tiny", log=messages.append)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert prepare_audio_dir(tmp_path / "mine", tmp_path / "data", spec="tiny", log=messages.append) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # reused, not prepared again
    assert first.name == "mine-tiny"
    other = prepare_audio_dir(tmp_path / "other", tmp_path / "data", spec="tiny", log=messages.append)
    assert other != first and (other / "manifest.json").exists()
    write(tmp_path / "elsewhere" / "mine" / "hat" / "hat.wav", harmonic(1.2, 8000, 2000), 8000)
    same_name = prepare_audio_dir(tmp_path / "elsewhere" / "mine", tmp_path / "data", spec="tiny", log=messages.append)
    assert same_name == first and any("preparing" in m and "again" in m for m in messages)
    assert open_dataset(first).manifest["labels"] == ["hat"]
    with pytest.raises(DatasetError, match="not a folder"):
        prepare_audio_dir(tmp_path / "nope", tmp_path / "data", spec="tiny")


@pytest.mark.parametrize("damage, where", [
    (lambda m: m["clips"][0].update(row="3"), "manifest.clips[0].row must be integer"),
    (lambda m: m["clips"][1].pop("shard"), "manifest.clips[1] must contain"),
    (lambda m: m["splits"]["train"]["shards"][0].update(file="../elsewhere.npy"),
     "manifest.splits.train.shards[0].file must match pattern"),
    (lambda m: m["clips"][2].update(shard="/etc/passwd.npy"), "manifest.clips[2].shard must match pattern"),
    (lambda m: m.pop("splits"), "manifest must contain"),
    (lambda m: m["spectrogram_config"].update(hop_length=0), "hop_length=0"),
    (lambda m: m.update(format="vae_tfp.spectrogram_dataset/0"), "format is"),
    # counts and rows against each other and the shards' real shapes
    (lambda m: m["splits"]["train"].update(n_clips=10**12), "n_clips must be smaller than or equal"),
    (lambda m: m["splits"]["train"].update(n_clips=m["splits"]["train"]["n_clips"] + 1), "claims n_clips="),
    (lambda m: m["clips"][0].update(row=999), "clip 0 points at row 999"),
    (lambda m: m["clips"][0].update(split="test"), "clip 0 points at row"),
])
def test_a_damaged_manifest_is_one_error_naming_the_file_and_the_place(tiny_dataset, tmp_path, damage, where):
    import shutil

    from vae_tfp.data.dataset import open_dataset

    folder = tmp_path / "ds"
    shutil.copytree(tiny_dataset, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    damage(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as err:
        open_dataset(folder)
    assert str(err.value).startswith(f"{folder / 'manifest.json'}: ") and where in str(err.value)


def test_an_opened_dataset_is_read_once_and_its_splits_match_the_manifest(tiny_dataset):
    import hashlib

    data = open_dataset(tiny_dataset)
    assert open_dataset(data) is data
    assert data.sha256 == hashlib.sha256((tiny_dataset / "manifest.json").read_bytes()).hexdigest()
    for split in ("train", "val", "test"):
        x, clips = data.load(split), data.split_clips(split)
        assert len(x) == len(clips) == data.n_clips(split) == data.manifest["splits"][split]["n_clips"]
    mean = data.mean_image()
    np.testing.assert_allclose(mean, data.load("train").mean(0), atol=1e-6)
    with pytest.raises(DatasetError, match="no split 'dev'"):
        data.load("dev")


@pytest.mark.parametrize("out", ["source", "parent", "file", "other_folder"])
def test_overwrite_never_replaces_what_is_not_a_dataset(audio_folder, tmp_path, tiny, out):
    import os

    target = {"source": audio_folder, "parent": audio_folder.parent, "file": tmp_path / "notes.txt",
              "other_folder": tmp_path / "thesis"}[out]
    if out == "file":
        target.write_text("mine")
    if out == "other_folder":
        target.mkdir()
        (target / "chapter.tex").write_text("mine")
    before = sorted((p, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file())
    match = {"source": "holds the input", "parent": "holds the input", "file": "not a folder",
             "other_folder": "not a prepared dataset"}[out]
    with pytest.raises(DatasetError, match=match):
        prepare_dataset([audio_folder], target, tiny, progress=False, overwrite=True, log=lambda _: None)
    assert sorted((p, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file()) == before
    assert not [p for p in os.listdir(target.parent) if p.startswith(f".{target.name}.")]  # no stray .NAME.old-PID


def test_leftovers_of_a_killed_prepare_are_cleaned_by_the_next(audio_folder, tmp_path, tiny):
    (tmp_path / ".ds.partial-abc" / "parts").mkdir(parents=True)
    notes = []
    prepare_dataset([audio_folder], tmp_path / "ds", tiny, progress=False, log=notes.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "src"]
    assert any("left by an interrupted prepare" in n for n in notes)


def test_nan_in_a_shard_is_named_with_its_row_and_clip(tiny_dataset, tmp_path):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(tiny_dataset, ds)
    x = np.load(ds / "test-00000.npy")
    x[2, 0, 0] = np.inf
    np.save(ds / "test-00000.npy", x)
    with pytest.raises(DatasetError, match=r"test-00000.npy: row 2 \(clip \d+ from .*\) holds NaN or Inf; prepare"):
        open_dataset(ds).load("test")


def test_prepared_folders_have_one_naming_rule(tmp_path):
    from vae_tfp.data.dataset import dataset_folder

    assert dataset_folder(tmp_path, "notes") == tmp_path / "notes"
    assert dataset_folder(tmp_path, "notes", "small") == tmp_path / "notes-small"
