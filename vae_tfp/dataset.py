"""Spectrogram datasets on disk: preparation, manifest, loading as tf.data or NumPy.

On-disk format (``FORMAT``), one folder per dataset::

    NAME/
      manifest.json            written last: its presence means the dataset is complete
      train-00000.npy ...      float16 [n, n_bins, n_frames] images in [0, 1], up to shard_size each
      val-00000.npy ...
      test-00000.npy ...

``manifest.json`` holds the spectrogram config, the split fractions and seed, per split its shard
files and clip counts, per clip its source file, offset (s), label, extra metadata, split, shard
and row, and the files that were skipped with the reason. Splits are by source file, so clips of
one file never straddle splits. A dataset is built in a temporary sibling folder and renamed into
place at the end, so an interrupted run never leaves anything that looks complete.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .audio import find_audio_files, iter_clips
from .config import SpectrogramConfig
from .errors import ConfigError, DatasetError, VaeTfpError
from .jsonio import read_format_json, write_json_atomic
from .spectrogram import spectrogram

FORMAT = "vae_tfp.spectrogram_dataset/1"
MANIFEST = "manifest.json"
METADATA_SIDECAR = "metadata.json"  # optional, in a source root: {relative path: {field: value}}
SPLITS = ("train", "val", "test")
SHARD_BYTES = 64 << 20  # images per shard: as many as fit in 64 MB of float16


# --- preparation ------------------------------------------------------------------------------

def label_for(path: Path, root: Path) -> str:
    """A file's label: its first sub-folder under ``root``, else its file-name prefix.

    ``root/piano/a.wav`` → ``piano``; ``root/violin_060.wav`` → ``violin``.
    """
    rel = path.relative_to(root) if path != root else Path(path.name)
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = path.stem
    for sep in ("_", "-", " "):
        stem = stem.split(sep)[0]
    return stem or path.stem


def assign_splits(keys: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Deterministic split of source files: ordered by a seeded hash, then cut by fraction.

    Each of val and test gets at least one file when there are at least three files and its
    fraction is positive.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ConfigError(f"split fractions {tuple(fractions)} must be three non-negative numbers summing to 1")
    order = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode("utf-8", "surrogateescape")).hexdigest())
    n = len(order)
    counts = [int(round(f * n)) for f in fractions[1:]]
    if n >= 3:
        counts = [max(c, 1) if f > 0 else 0 for c, f in zip(counts, fractions[1:])]
    n_val, n_test = counts
    n_train = max(n - n_val - n_test, 0)
    out = {}
    for i, key in enumerate(order):
        out[key] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    return out


def _process_file(job: tuple[str, str, dict, float | None]) -> dict[str, Any]:
    """Worker: one source file → its images written raw to ``part_path``; returns metadata."""
    path, part_path, config_dict, clip_hop = job
    config = SpectrogramConfig.from_dict(config_dict)
    offsets, silent = [], 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(part_path, "wb") as part:
                for clip in iter_clips(path, config, clip_hop=clip_hop):
                    spec = spectrogram(clip.audio, config)[..., 0]
                    if not spec.any():  # all at the floor: nothing to learn from
                        silent += 1
                        continue
                    part.write(spec.astype(np.float16).tobytes())
                    offsets.append(clip.offset)
    except VaeTfpError as err:
        return {"error": str(err)}
    except Exception as err:  # noqa: BLE001 — one bad file must not stop the batch
        return {"error": f"{path}: unexpected failure ({type(err).__name__}: {err})"}
    if not offsets:
        reason = f"{path}: silent (all {silent} clips below min_db)" if silent else f"{path}: no clips"
        return {"error": reason}
    return {"offsets": offsets, "silent_clips": silent}


class _ShardWriter:
    """Appends images of one split and writes ``{split}-{k:05d}.npy`` shards of fixed size."""

    def __init__(self, folder: Path, split: str, shard_size: int, image_shape: tuple[int, int]):
        self.folder, self.split, self.shard_size, self.image_shape = folder, split, shard_size, image_shape
        self.pending: list[np.ndarray] = []
        self.shards: list[dict[str, Any]] = []
        self.count = 0

    def add(self, image: np.ndarray) -> tuple[str, int]:
        where = (f"{self.split}-{len(self.shards):05d}.npy", len(self.pending))
        self.pending.append(image)
        self.count += 1
        if len(self.pending) == self.shard_size:
            self.flush()
        return where

    def flush(self) -> None:
        if self.pending:
            name = f"{self.split}-{len(self.shards):05d}.npy"
            np.save(self.folder / name, np.stack(self.pending).astype(np.float16))
            self.shards.append({"file": name, "n": len(self.pending)})
            self.pending = []


def prepare_dataset(
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: SpectrogramConfig,
    *,
    clip_hop: float | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    log=None,
) -> dict[str, Any]:
    """Turns audio files and folders into a spectrogram dataset on disk.

    Args:
        sources: Audio files and/or folders (searched recursively). Labels come from each
            file's first sub-folder under its source folder, else its file-name prefix; a
            ``metadata.json`` in a source folder adds per-file fields to the clips' ``meta``.
        out: The dataset folder to create.
        config: Spectrogram settings.
        clip_hop: Seconds between clip starts (default: one clip, no overlap).
        split_fractions: (train, val, test) fractions of *source files*.
        seed: Seed of the split.
        workers: Processes decoding and transforming files in parallel.
        overwrite: Replace an existing dataset at ``out``.
        progress: Show a tqdm progress bar.
        log: Callable taking a line of text for skipped files (default: stderr).

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        DatasetError: ``out`` exists (without ``overwrite``), a source is missing, or no file
            gave a usable clip (nothing is written then).
    """
    from tqdm.auto import tqdm

    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    if out.exists() and not overwrite:
        raise DatasetError(f"{out}: already exists (use overwrite / --overwrite to replace it)")
    entries = _discover(sources)
    if not entries:
        raise DatasetError(f"no audio files found in {[os.fspath(s) for s in sources]}")
    splits = assign_splits([e["key"] for e in entries], split_fractions, seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "parts").mkdir()
        jobs = [(os.fspath(e["path"]), os.fspath(tmp / "parts" / f"{i:06d}.f16"), config.to_dict(), clip_hop)
                for i, e in enumerate(entries)]
        image_shape = (config.n_bins, config.n_frames)
        shard_size = max(1, SHARD_BYTES // (2 * config.n_bins * config.n_frames))
        writers = {s: _ShardWriter(tmp, s, shard_size, image_shape) for s in SPLITS}
        clips, skipped = [], []
        with _pool(workers) as pool:
            results = pool.map(_process_file, jobs, chunksize=1) if pool else map(_process_file, jobs)
            for entry, job, result in tqdm(zip(entries, jobs, results), total=len(jobs), disable=not progress,
                                           desc="prepare", unit="file"):
                if "error" in result:
                    skipped.append({"path": entry["source"], "reason": result["error"]})
                    log(f"skipped {result['error']}")
                    continue
                split = splits[entry["key"]]
                image_bytes = 2 * config.n_bins * config.n_frames
                with open(job[1], "rb") as part:  # one image at a time: memory stays bounded
                    for offset in result["offsets"]:
                        image = np.frombuffer(part.read(image_bytes), np.float16).reshape(image_shape)
                        shard, row = writers[split].add(image)
                        clips.append({"index": len(clips), "split": split, "shard": shard, "row": row,
                                      "source": entry["source"], "offset": round(offset, 6),
                                      "label": entry["label"], "meta": entry["meta"]})
                os.remove(job[1])
        for w in writers.values():
            w.flush()
        if not clips:
            raise DatasetError(
                f"no usable clips: all {len(entries)} files were skipped "
                f"({'; '.join(s['reason'] for s in skipped[:3])}{'; ...' if len(skipped) > 3 else ''})")
        shutil.rmtree(tmp / "parts")
        manifest = {
            "format": FORMAT,
            "spectrogram_config": config.to_dict(),
            "clip_hop": clip_hop,
            "split_seed": seed,
            "split_fractions": list(split_fractions),
            "image_dtype": "float16",
            "splits": {s: {"n_clips": w.count, "shards": w.shards,
                           "n_files": len({c["source"] for c in clips if c["split"] == s})}
                       for s, w in writers.items()},
            "labels": sorted({c["label"] for c in clips}),
            "clips": clips,
            "skipped": skipped,
            "sources": [os.fspath(s) for s in sources],
        }
        write_json_atomic(tmp / MANIFEST, manifest)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _discover(sources: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    entries = []
    for src in sources:
        src = Path(src)
        if not src.exists() and not src.is_symlink():
            raise DatasetError(f"{src}: no such file or folder")
        root = src if src.is_dir() else src.parent
        meta = _read_sidecar(root) if src.is_dir() else {}
        for path in find_audio_files(src):
            rel = path.relative_to(root).as_posix()
            # The split key is the path under the source folder: independent of where the data lives.
            entries.append({"path": path, "source": os.fspath(path), "key": f"{root.name}/{rel}",
                            "label": label_for(path, root), "meta": meta.get(rel, {})})
    return entries


def _read_sidecar(root: Path) -> dict[str, dict]:
    path = root / METADATA_SIDECAR
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read metadata ({err})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: must map relative file paths to objects")
    return {k: v for k, v in data.items() if isinstance(v, dict)}


class _pool:
    """A process pool for ``workers > 1``, else nothing (in-process, easier to debug)."""

    def __init__(self, workers: int):
        self.executor = concurrent.futures.ProcessPoolExecutor(workers) if workers > 1 else None

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc):
        if self.executor:
            self.executor.shutdown(cancel_futures=True)


def _replace_dir(new: Path, target: Path) -> None:
    """Moves ``new`` to ``target``; an existing ``target`` is removed only after the move."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- loading ----------------------------------------------------------------------------------

def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and checks a dataset's manifest; raises :class:`DatasetError` naming the problem."""
    folder = Path(path)
    file = folder / MANIFEST
    if not file.is_file():
        raise DatasetError(f"{folder}: not a prepared dataset (no {MANIFEST}; run `vae-tfp prepare`)")
    return read_format_json(file, FORMAT, DatasetError, "manifest")


def manifest_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a dataset's manifest: which version of the dataset a model or classifier was trained on."""
    return hashlib.sha256((Path(path) / MANIFEST).read_bytes()).hexdigest()


def dataset_config(path: str | os.PathLike) -> SpectrogramConfig:
    """The :class:`SpectrogramConfig` a dataset was prepared with."""
    return SpectrogramConfig.from_dict(load_manifest(path)["spectrogram_config"])


def split_shards(path: str | os.PathLike, split: str) -> list[Path]:
    """The shard files of one split, checked to exist."""
    manifest = load_manifest(path)
    if split not in manifest["splits"]:
        raise DatasetError(f"{path}: no split {split!r}; splits are {sorted(manifest['splits'])}")
    files = [Path(path) / s["file"] for s in manifest["splits"][split]["shards"]]
    for f in files:
        if not f.is_file():
            raise DatasetError(f"{f}: shard listed in the manifest is missing")
    return files


def load_numpy(path: str | os.PathLike, split: str = "train", *, limit: int | None = None) -> np.ndarray:
    """One split as float32 [n, n_bins, n_frames, 1] in [0, 1], in manifest order."""
    config = dataset_config(path)
    arrays, total = [], 0
    for f in split_shards(path, split):
        arr = _load_shard(f, config)
        arrays.append(arr)
        total += len(arr)
        if limit is not None and total >= limit:
            break
    if not arrays:
        return np.zeros((0,) + config.shape, np.float32)
    data = np.concatenate(arrays)[:limit]
    return data.astype(np.float32)[..., None]


def split_clips(path: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """The manifest entries of one split's clips, in the order :func:`load_numpy` returns them."""
    return [c for c in load_manifest(path)["clips"] if c["split"] == split]


def load_image(path: str | os.PathLike, clip: dict[str, Any]) -> np.ndarray:
    """One clip's image, float16 [n_bins, n_frames], read from its shard by the manifest entry."""
    file = Path(path) / clip["shard"]
    if not file.is_file():
        raise DatasetError(f"{file}: shard listed in the manifest is missing")
    return _load_shard(file, dataset_config(path))[clip["row"]]


def _load_shard(file: Path, config: SpectrogramConfig) -> np.ndarray:
    try:
        arr = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{file}: cannot read shard ({err})") from None
    if arr.ndim != 3 or arr.shape[1:] != (config.n_bins, config.n_frames):
        raise DatasetError(f"{file}: shard shape {arr.shape} does not match the config "
                           f"(n, {config.n_bins}, {config.n_frames})")
    return arr


def make_tf_dataset(
    path: str | os.PathLike,
    split: str = "train",
    *,
    batch_size: int = 16,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    cache: bool = True,
    drop_remainder: bool = False,
    input_context=None,
):
    """One split as a ``tf.data.Dataset`` of float32 [batch, n_bins, n_frames, 1] batches.

    Shards are read in parallel (``interleave``), optionally cached in memory (float16, as
    stored), cast to float32 by a parallel ``map``, shuffled with a
    buffer as large as the split (exact, seeded), batched and prefetched. With an
    ``input_context`` (``tf.distribute``) each input pipeline reads its own subset of shards
    when there are enough shards, else its own subset of examples.
    """
    import tensorflow as tf

    config = dataset_config(path)
    files = [os.fspath(f) for f in split_shards(path, split)]
    n_examples = load_manifest(path)["splits"][split]["n_clips"]
    shape = (config.n_bins, config.n_frames)
    files_ds = tf.data.Dataset.from_tensor_slices(files)
    shard_files = input_context is not None and len(files) >= input_context.num_input_pipelines
    if shard_files:
        files_ds = files_ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)

    def read(file):
        images = tf.numpy_function(lambda f: np.load(f.decode(), allow_pickle=False), [file], tf.float16)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(images, (None,) + shape))

    ds = files_ds.interleave(read, cycle_length=min(4, max(1, len(files))), num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=True)
    if input_context is not None and not shard_files:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if cache:
        ds = ds.cache()  # as stored, float16: half the memory of caching float32
    ds = ds.map(lambda x: tf.cast(x, tf.float32)[..., None], num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(max(1, n_examples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
