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
import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, Union

import fastjsonschema
import numpy as np

from ..audio.io import find_audio_files, iter_clips
from ..config import SpectrogramConfig, spectrogram_preset
from ..errors import ConfigError, DatasetError, VaeTfpError
from ..files import FolderLock, check_format, is_disk_full, os_error_message, remove, replace_dir, write_json_atomic
from ..audio.spectrogram import spectrogram

FORMAT = "vae_tfp.spectrogram_dataset/1"
MANIFEST = "manifest.json"
METADATA_SIDECAR = "metadata.json"  # optional, in a source root: {relative path: {field: value}}
SPLITS = ("train", "val", "test")
SHARD_BYTES = 64 << 20  # images per shard: as many as fit in 64 MB of float16
MAX_CLIPS = 1 << 31  # schema bound of any count or row index (the shards' real shapes are checked too)

# Memory bounds of everything that walks a dataset (issue #25). Training input: a split is cached
# in memory (float16, as stored) only if it fits MEMORY_BUDGET; beyond it, it is streamed from the
# shards through a shuffle buffer of at most SHUFFLE_BYTES of float16 images. The budget can be set
# per call (``memory_budget``) or for every call by the environment variable below, in MB.
MEMORY_BUDGET_ENV = "VAE_TFP_MEMORY_BUDGET_MB"
MEMORY_BUDGET = 1 << 30  # 1 GiB: 2 048 images of 512x512 (the notes' 244, the music's 977 train clips fit)
SHUFFLE_BYTES = 256 << 20  # 512 images of 512x512, 8 192 of 128x128 (docs/experiments.md, "Datasets of any size")
# Rows read at a time from a shard (4 images of 512x512): shards of any size stream, and a batch of 16
# holds 0.72 pairs of clips from one source file (exact shuffle: 0.34; chunks of 16 rows: 1.89), at
# 1 250 examples/s from the page cache (chunks of 16 rows: 2 400); benchmarks/shuffle_quality.py.
CHUNK_BYTES = 2 << 20
SUBSET_CLIPS = 1024  # whole-split statistics (evaluate, diagnostics, sample metrics) use a seeded subset beyond
MEAN_CLIPS = 4096  # the mean image of a split: a seeded subset of at most this many clips


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


def label_value(clip: dict[str, Any], field: str) -> Any:
    """A clip's value of a label field: its folder ``label``, else that field of its ``meta`` (None if absent)."""
    return clip["label"] if field == "label" else (clip.get("meta") or {}).get(field)


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
    except OSError as err:
        if is_disk_full(err, part_path) or isinstance(err, PermissionError) and err.filename == part_path:
            return {"fatal": os_error_message(err, part_path)}  # the output's fault, not the file's
        return {"error": f"{path}: unexpected failure ({type(err).__name__}: {err})"}
    except Exception as err:  # noqa: BLE001 — one bad file must not stop the batch
        return {"error": f"{path}: unexpected failure ({type(err).__name__}: {err})"}
    if not offsets:
        reason = f"{path}: silent (all {silent} clips below min_db)" if silent else f"{path}: no clips"
        return {"error": reason}
    return {"offsets": offsets, "silent_clips": silent}


class _ShardWriter:
    """Appends images of one split to ``{split}-{k:05d}.npy`` shards of fixed size, written row by
    row: memory holds one image, whatever the size of a shard or of the audio."""

    def __init__(self, folder: Path, split: str, shard_size: int):
        self.folder, self.split, self.shard_size = folder, split, shard_size
        self.file, self.rows, self.image_shape = None, 0, None
        self.shards: list[dict[str, Any]] = []
        self.count = 0

    def _header(self, rows: int) -> bytes:
        import io

        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": "<f2", "fortran_order": False, "shape": (rows,) + self.image_shape})
        return buffer.getvalue()

    def add(self, image: np.ndarray) -> tuple[str, int]:
        name = f"{self.split}-{len(self.shards):05d}.npy"
        if self.file is None:
            self.image_shape = tuple(image.shape)
            self.file = open(self.folder / name, "wb")
            self.file.write(self._header(self.shard_size))  # the real count replaces it in flush()
        where = (name, self.rows)
        self.file.write(np.ascontiguousarray(image, "<f2").tobytes())
        self.rows += 1
        self.count += 1
        if self.rows == self.shard_size:
            self.flush()
        return where

    def flush(self) -> None:
        if self.file is None:
            return
        name = f"{self.split}-{len(self.shards):05d}.npy"
        header = self._header(self.rows)
        if len(header) == len(self._header(self.shard_size)):
            self.file.seek(0)
            self.file.write(header)
            self.file.close()
        else:  # another header length (never for shards of up to 10^9 rows): rewrite the file once
            self.file.close()
            rows = np.fromfile(self.folder / name, "<f2", offset=len(self._header(self.shard_size)))
            np.save(self.folder / name, rows.reshape((self.rows,) + self.image_shape))
        self.shards.append({"file": name, "n": self.rows})
        self.file, self.rows = None, 0


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
        workers: Processes decoding and transforming files in parallel; they die with this
            process, SIGKILL included.
        overwrite: Replace an existing *prepared dataset* at ``out``. Nothing else is ever
            replaced: not a regular file, not a folder without a dataset manifest, never a
            source folder or one of its ancestors.
        progress: Show a tqdm progress bar.
        log: Callable taking a line of text for skipped files (default: stderr).

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        DatasetError: ``out`` exists (without ``overwrite``) or is not a dataset (with it), a
            source is missing, no file gave a usable clip, or ``out`` cannot be written (disk
            full, permission denied); nothing is changed then.
        FolderLockedError: another process is preparing ``out``.
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    _check_out(out, sources, overwrite)
    entries = _discover(sources)
    if not entries:
        raise DatasetError(f"no audio files found in {[os.fspath(s) for s in sources]}")
    splits = assign_splits([e["key"] for e in entries], split_fractions, seed)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with FolderLock(out, what="--out folder", log=log):
            _check_out(out, sources, overwrite)  # again, under the lock
            _clean_leftovers(out, log)
            return _prepare(entries, splits, sources, out, config, clip_hop=clip_hop,
                            split_fractions=split_fractions, seed=seed, workers=workers, progress=progress, log=log)
    except OSError as err:
        raise DatasetError(f"cannot write the dataset: {os_error_message(err, out)}; nothing was changed") from None


def _check_out(out: Path, sources: Sequence[str | os.PathLike], overwrite: bool) -> None:
    """Refuses an ``out`` that preparing would destroy: see ``overwrite`` in :func:`prepare_dataset`."""
    real = out.resolve()
    for src in sources:
        src_real = Path(src).resolve()
        if real == src_real or real in src_real.parents:
            raise DatasetError(f"{out}: holds the input {src}; choose an --out folder outside the audio")
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise DatasetError(f"{out}: already exists (use overwrite / --overwrite to replace a prepared dataset)")
    if not out.is_dir() or out.is_symlink():
        raise DatasetError(f"{out}: not a folder; --overwrite only replaces a prepared dataset")
    if any(out.iterdir()) and not _is_dataset(out):
        raise DatasetError(f"{out}: not a prepared dataset (no {MANIFEST} of format {FORMAT}); --overwrite only "
                           f"replaces a dataset made by `vae-tfp prepare`")


def _is_dataset(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _clean_leftovers(out: Path, log) -> None:
    """Removes what a killed run of ``prepare`` into ``out`` left (its lock is ours, so no one else's)."""
    for d in sorted(out.parent.glob(f".{out.name}.partial-*")):
        remove(d)
        log(f"note: removed {d}, left by an interrupted prepare")
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda d: d.stat().st_mtime)
    if olds and not out.exists():
        os.replace(olds.pop(), out)  # killed between the two renames of a swap: the previous dataset back
        log(f"note: restored {out}, moved aside by an interrupted prepare")
    for d in olds:
        remove(d)


def _prepare(entries, splits, sources, out: Path, config: SpectrogramConfig, *, clip_hop, split_fractions, seed,
             workers, progress, log) -> dict[str, Any]:
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (tmp / "parts").mkdir()
        jobs = [(os.fspath(e["path"]), os.fspath(tmp / "parts" / f"{i:06d}.f16"), config.to_dict(), clip_hop)
                for i, e in enumerate(entries)]
        image_shape = (config.n_bins, config.n_frames)
        shard_size = max(1, SHARD_BYTES // (2 * config.n_bins * config.n_frames))
        writers = {s: _ShardWriter(tmp, s, shard_size) for s in SPLITS}
        clips, skipped = [], []
        with _pool(workers) as pool:
            results = pool.map(_process_file, jobs, chunksize=1) if pool else map(_process_file, jobs)
            for entry, job, result in tqdm(zip(entries, jobs, results), total=len(jobs), disable=not progress,
                                           desc="prepare", unit="file"):
                if "fatal" in result:
                    raise DatasetError(f"cannot write the dataset: {result['fatal']}; nothing was changed")
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
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def files_in_split(sources: Sequence[str | os.PathLike], split: str, *,
                   split_fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> list[Path]:
    """The audio files of ``sources`` that :func:`prepare_dataset` (same fractions and seed) puts in
    ``split``, without preparing anything: e.g. files a model trained on them never saw."""
    entries = _discover(sources)
    splits = assign_splits([e["key"] for e in entries], split_fractions, seed)
    return [e["path"] for e in entries if splits[e["key"]] == split]


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


def dataset_folder(data_dir: str | os.PathLike, name: str, spec: str = "default") -> Path:
    """Where a prepared dataset lives, the one naming rule: ``data_dir/NAME`` for the ``default``
    spectrogram preset, ``data_dir/NAME-SPEC`` for another (``notes``, ``notes-small``)."""
    return Path(data_dir) / (name if spec == "default" else f"{name}-{spec}")


def prepare_audio_dir(audio_dir: str | os.PathLike, data_dir: str | os.PathLike, *, spec: str = "default",
                      workers: int = 1, log=print) -> Path:
    """Prepares a folder of the user's audio (sub-folders as labels) into :func:`dataset_folder`.

    Reused when it is already prepared from the same folder with the same spectrogram preset;
    prepared again when the folder or the preset changed (so rerunning a notebook is cheap and
    changing its ``AUDIO_DIR`` re-prepares).

    Returns:
        The dataset folder.
    """
    source = Path(audio_dir).resolve()
    if not source.is_dir():
        raise DatasetError(f"{audio_dir}: not a folder of audio files")
    folder = dataset_folder(data_dir, source.name, spec)
    config = spectrogram_preset(spec)
    if (folder / MANIFEST).exists():
        data = open_dataset(folder)
        if data.manifest.get("sources") == [os.fspath(source)] and data.config == config:
            return folder
        log(f"{folder}: prepared from another folder or preset; preparing {source} again")
    t0 = time.perf_counter()
    prepare_dataset([source], folder, config, workers=workers, overwrite=True, progress=True, log=log)
    log(f"prepared {folder} from {source} in {time.perf_counter() - t0:.1f} s")
    return folder


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the worker ends when the process that started it does (SIGKILL
    included) instead of waiting forever for work, by a thread that polls the parent's PID
    once a second. (The kernel's parent-death signal would fire when the *thread* that forked
    exits, which in a notebook or a thread pool is not the end of the parent.)"""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


class _pool:
    """A process pool for ``workers > 1``, else nothing (in-process, easier to debug)."""

    def __init__(self, workers: int):
        self.executor = (concurrent.futures.ProcessPoolExecutor(workers, initializer=_die_with_parent,
                                                                 initargs=(os.getpid(),))
                         if workers > 1 else None)

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc):
        if self.executor:
            self.executor.shutdown(cancel_futures=True)


# --- loading ----------------------------------------------------------------------------------

# What loading relies on; anything else in a manifest (sources, skipped files, labels) is
# informative. Checked (JSON Schema, draft 7) when a dataset is opened.
_SHARD_FILE = {"type": "string", "pattern": r"^[^/\\]+\.npy$"}  # a file name inside the folder, nothing else
_SHARD = {"type": "object", "required": ["file", "n"],
          "properties": {"file": _SHARD_FILE, "n": {"type": "integer", "minimum": 0, "maximum": MAX_CLIPS}}}
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["format", "spectrogram_config", "splits", "clips"],
    "properties": {
        "format": {"const": FORMAT},
        "spectrogram_config": {"type": "object"},
        "splits": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["n_clips", "shards"],
            "properties": {"n_clips": {"type": "integer", "minimum": 0, "maximum": MAX_CLIPS},
                           "shards": {"type": "array", "items": _SHARD}}}},
        "clips": {"type": "array", "items": {
            "type": "object", "required": ["split", "shard", "row", "source", "offset", "label"],
            "properties": {"split": {"type": "string"}, "shard": _SHARD_FILE,
                           "row": {"type": "integer", "minimum": 0, "maximum": MAX_CLIPS},
                           "source": {"type": "string"},
                           "offset": {"type": "number"}, "label": {"type": "string"},
                           "meta": {"type": "object"}}}},
    },
}


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedDataset:
    """A prepared dataset, opened once: its manifest read, hashed and validated a single time.

    Pass it around instead of the folder; every loader below takes either.

    Attributes:
        path: The dataset folder.
        manifest: The parsed ``manifest.json`` (see the module docstring).
        config: The :class:`SpectrogramConfig` the images were made with.
        sha256: Hex SHA-256 of ``manifest.json``: which version of the dataset a model or
            classifier was trained on.
    """

    path: Path
    manifest: dict[str, Any] = dataclasses.field(repr=False)
    config: SpectrogramConfig = dataclasses.field(repr=False)
    sha256: str

    @classmethod
    def open(cls, path: str | os.PathLike) -> "PreparedDataset":
        """Reads ``path/manifest.json`` once; raises :class:`DatasetError` naming the problem."""
        folder = Path(path)
        file = folder / MANIFEST
        if not file.is_file():
            raise DatasetError(f"{folder}: not a prepared dataset (no {MANIFEST}; run `vae-tfp prepare`)")
        try:
            raw = file.read_bytes()
            manifest = json.loads(raw)
        except (OSError, ValueError) as err:
            raise DatasetError(f"{file}: cannot read manifest ({err})") from None
        check_format(manifest, file, FORMAT, DatasetError)
        try:
            _manifest_validator()(manifest)
        except fastjsonschema.JsonSchemaValueException as err:
            raise DatasetError(f"{file}: invalid manifest: {err.message.replace('data', 'manifest', 1)[:300]}") from None
        try:
            config = SpectrogramConfig.from_dict(manifest["spectrogram_config"])
        except ConfigError as err:
            raise DatasetError(f"{file}: {err}") from None
        _check_counts(folder, manifest, config)
        return cls(folder, manifest, config, hashlib.sha256(raw).hexdigest())

    @property
    def splits(self) -> dict[str, dict[str, Any]]:
        return self.manifest["splits"]

    @property
    def clips(self) -> list[dict[str, Any]]:
        return self.manifest["clips"]

    def n_clips(self, split: str) -> int:
        return self._split(split)["n_clips"]

    def split_clips(self, split: str) -> list[dict[str, Any]]:
        """The manifest entries of one split's clips, in the order :meth:`load` returns them."""
        self._split(split)
        return [c for c in self.clips if c["split"] == split]

    def shard_files(self, split: str) -> list[Path]:
        """The shard files of one split, checked to exist."""
        files = [self.path / s["file"] for s in self._split(split)["shards"]]
        for f in files:
            if not f.is_file():
                raise DatasetError(f"{f}: shard listed in the manifest is missing")
        return files

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.splits:
            raise DatasetError(f"{self.path}: no split {split!r}; splits are {sorted(self.splits)}")
        return self.splits[split]

    def sample(self, split: str, n: int | None, *, seed: int = 0) -> np.ndarray:
        """Positions (in split order, ascending) of a seeded subset of at most ``n`` clips of a split;
        every clip if the split has no more than ``n`` (or ``n`` is None)."""
        total = self.n_clips(split)
        if n is None or n >= total:
            return np.arange(total)
        return np.sort(np.random.default_rng(seed).choice(total, max(0, n), replace=False))

    def _row_ranges(self, split: str, rows: np.ndarray | None) -> Iterator[tuple[Path, np.ndarray, np.ndarray]]:
        """``(shard file, rows in that shard, their positions in the split)``, shard by shard."""
        rows = None if rows is None else np.asarray(rows, np.int64)  # any sequence of ascending positions
        start = 0
        for shard, file in zip(self._split(split)["shards"], self.shard_files(split)):
            stop = start + shard["n"]
            if rows is None:
                local = np.arange(shard["n"])
            else:
                lo, hi = np.searchsorted(rows, [start, stop])
                local = rows[lo:hi] - start
            if len(local):
                yield file, local, local + start
            start = stop

    def _read(self, file: Path, rows: np.ndarray) -> np.ndarray:
        """Rows of one shard (float16, read through a memory map: only those rows), checked finite."""
        arr = np.asarray(_load_shard(file, self.config)[rows])
        finite = np.isfinite(arr).all(axis=(1, 2))
        if not finite.all():
            raise self._nan_error(file, int(rows[int(np.argmin(finite))]))
        return arr

    def _nan_error(self, file: Path, row: int) -> DatasetError:
        clip = next((c for c in self.clips if c["shard"] == file.name and c["row"] == row), None)
        what = f" (clip {clip.get('index', '?')} from {clip['source']} @ {clip['offset']} s)" if clip else ""
        return DatasetError(f"{file}: row {row}{what} {NAN_MESSAGE}")

    def input_error(self, err: Exception) -> DatasetError | None:
        """The :class:`DatasetError` behind a TensorFlow error raised by :meth:`tf_dataset`'s check of
        a streamed row (naming the shard, row and clip), or None for any other error."""
        import re

        found = re.search(r"([^\s\[\]'\"]+\.npy): row (\d+) " + re.escape(NAN_MESSAGE), str(err))
        return self._nan_error(Path(found.group(1)), int(found.group(2))) if found else None

    def batches(self, split: str, batch_size: int = 64, *, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """A split (or the clips at sorted positions ``rows``) as float32 [b, n_bins, n_frames, 1]
        NumPy batches in split order, read shard by shard: memory holds one batch, whatever the size."""
        pending, count = [], 0
        for file, local, _ in self._row_ranges(split, rows):
            for i in range(0, len(local), batch_size):
                part = self._read(file, local[i:i + batch_size])
                pending.append(part)
                count += len(part)
                while count >= batch_size:
                    joined = np.concatenate(pending)
                    yield joined[:batch_size].astype(np.float32)[..., None]
                    pending, count = [joined[batch_size:]], count - batch_size
        if count:
            yield np.concatenate(pending).astype(np.float32)[..., None]

    def check_finite(self, split: str, *, rows: np.ndarray | None = None) -> None:
        """Reads a split (or its clips at ``rows``) once; :class:`DatasetError` naming the shard, row
        and clip of a NaN or Inf."""
        for _ in self.batches(split, rows=rows):
            pass

    def load(self, split: str = "train", *, limit: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """One split as float32 [n, n_bins, n_frames, 1] in [0, 1], in manifest order: the first
        ``limit`` clips, or the clips at sorted positions ``rows`` (e.g. :meth:`sample`). In memory:
        for a subset of a large split, pass ``rows``, or walk it with :meth:`batches`."""
        if limit is not None:
            rows = np.arange(min(limit, self.n_clips(split)))
        parts = list(self.batches(split, rows=rows))
        if not parts:
            return np.zeros((0,) + self.config.shape, np.float32)
        return np.concatenate(parts)

    def image(self, clip: dict[str, Any]) -> np.ndarray:
        """One clip's image, float16 [n_bins, n_frames], read from its shard by the manifest entry."""
        file = self.path / clip["shard"]
        if not file.is_file():
            raise DatasetError(f"{file}: shard listed in the manifest is missing")
        return _load_shard(file, self.config)[clip["row"]]

    def mean_image(self, split: str = "train", *, max_clips: int | None = MEAN_CLIPS, seed: int = 0) -> np.ndarray:
        """The mean image of a split, float32 [H, W, 1], streamed; over a seeded subset of
        ``max_clips`` clips when the split is larger (None: all)."""
        total, n = np.zeros(self.config.shape[:2], np.float64), 0
        for batch in self.batches(split, rows=self.sample(split, max_clips, seed=seed)):
            total += batch[..., 0].sum(axis=0, dtype=np.float64)
            n += len(batch)
        return (total / max(n, 1)).astype(np.float32)[..., None]

    def check_config(self, config: SpectrogramConfig, what: str) -> None:
        """Raises :class:`ConfigError` unless the images were made with ``config`` (``what``'s, e.g. a model folder)."""
        if self.config != config:
            raise ConfigError(f"{self.path}: prepared with a different spectrogram config than {what} "
                              f"({self.config.shape} vs {config.shape})")

    def input_plan(self, split: str = "train", *, cache: bool | None = None, memory_budget: int | None = None,
                   shuffle_buffer: int | None = None) -> dict[str, Any]:
        """How :meth:`tf_dataset` reads a split, and the most images it holds in memory.

        Cached (``cache=None``: when the split's float16 images fit ``memory_budget``, default
        :data:`MEMORY_BUDGET` or ``$VAE_TFP_MEMORY_BUDGET_MB``): read once, kept as stored, shuffled
        exactly every epoch. Streamed otherwise: the shards' chunks of rows in a seeded order that
        changes every epoch, through a shuffle buffer of ``shuffle_buffer`` images (default: as many
        as fit :data:`SHUFFLE_BYTES`, and at most the budget).
        """
        n = self.n_clips(split)
        image_bytes = 2 * self.config.n_bins * self.config.n_frames
        budget = memory_budget if memory_budget is not None else memory_budget_from_env()
        if cache is None:
            cache = n * image_bytes <= budget
        if shuffle_buffer is None:
            shuffle_buffer = n if cache else min(SHUFFLE_BYTES, budget) // image_bytes
        shuffle_buffer = max(1, min(n, shuffle_buffer))
        chunk_rows = max(1, CHUNK_BYTES // image_bytes)
        n_chunks = sum(math.ceil(s["n"] / chunk_rows) for s in self._split(split)["shards"])
        return {"split": split, "n_clips": n, "cache": bool(cache), "shuffle_buffer": int(shuffle_buffer),
                "chunk_rows": chunk_rows, "n_chunks": n_chunks, "memory_budget_bytes": int(budget),
                "images_in_memory": int(n if cache else shuffle_buffer),
                "bytes_in_memory": int((n if cache else shuffle_buffer) * image_bytes)}

    def tf_dataset(self, split: str = "train", *, batch_size: int = 16, shuffle: bool = True, seed: int = 0,
                   repeat: bool = False, cache: bool | None = None, memory_budget: int | None = None,
                   shuffle_buffer: int | None = None, drop_remainder: bool = False, rows: np.ndarray | None = None,
                   positions: bool = False, input_context=None):
        """One split as a ``tf.data.Dataset`` of float32 [batch, n_bins, n_frames, 1] batches, in
        bounded memory (:meth:`input_plan`): cached and exactly shuffled when it fits the budget,
        else streamed from the shards in chunks of rows whose order is reshuffled every epoch
        (seeded), through a bounded shuffle buffer of float16 images; cast to float32 after
        batching, prefetched. ``rows`` (sorted positions in the split, e.g. :meth:`sample`) takes
        a subset, held in memory. ``positions``: batches are ``(images, positions in the split)``,
        e.g. to look up each clip's labels. With an ``input_context`` (``tf.distribute``) each input
        pipeline reads its own chunks when there are enough, else its own subset of examples.
        """
        import tensorflow as tf

        shape = self.config.shape[:2]
        plan = self.input_plan(split, cache=cache, memory_budget=memory_budget, shuffle_buffer=shuffle_buffer)
        if rows is not None:
            images = np.concatenate([self._read(f, local) for f, local, _ in self._row_ranges(split, rows)] or
                                    [np.zeros((0,) + shape, np.float16)])
            ds = tf.data.Dataset.from_tensor_slices((images, np.asarray(rows, np.int64)))
            if input_context is not None:
                ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            plan = dict(plan, cache=True, shuffle_buffer=max(1, len(images)))
        else:
            # (shard file, bytes before its first row, first row, end row, rows in the shard, the first row's
            # position in the split): read natively by FixedLengthRecordDataset, no Python in the input
            # threads (a NumPy reader there held the GIL and hung the interpreter's exit while prefetching)
            step, chunks = plan["chunk_rows"], []
            for f, local, at in self._row_ranges(split, None):
                header = _npy_data_offset(f, self.config)
                chunks += [(os.fspath(f), header, int(a), min(int(a) + step, len(local)), len(local), int(at[a]))
                           for a in range(0, len(local), step)]
            shard_chunks = input_context is not None and len(chunks) >= input_context.num_input_pipelines
            if shard_chunks:
                chunks = chunks[input_context.input_pipeline_id::input_context.num_input_pipelines]
            columns = list(zip(*chunks)) if chunks else [[]] * 6
            ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(columns[0]), tf.string),) + tuple(
                tf.constant(list(c), tf.int64) for c in columns[1:]))
            if shuffle and not plan["cache"]:
                ds = ds.shuffle(max(1, len(chunks)), seed=seed, reshuffle_each_iteration=True)
            image_bytes = 2 * shape[0] * shape[1]

            def read(file, header, start, stop, rows, at):
                records = tf.data.FixedLengthRecordDataset(file, image_bytes, header_bytes=header + start * image_bytes,
                                                           footer_bytes=(rows - stop) * image_bytes)
                return tf.data.Dataset.zip((records, tf.data.Dataset.range(start, stop))).map(
                    lambda record, row: _decode_image(record, row, file, at - start, shape))

            # four chunks read at a time; mixed row by row when shuffling, else whole chunks in manifest order
            ds = ds.interleave(read, cycle_length=max(1, min(4, len(chunks))), block_length=1 if shuffle else step,
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if input_context is not None and not shard_chunks:
                ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            if plan["cache"]:
                ds = ds.cache()  # as stored, float16
        if shuffle:
            ds = ds.shuffle(plan["shuffle_buffer"], seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if positions:
            ds = ds.map(lambda x, at: (tf.cast(x, tf.float32)[..., None], at), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda x, at: tf.cast(x, tf.float32)[..., None], num_parallel_calls=tf.data.AUTOTUNE)
        if input_context is None:
            # Given to a strategy as is (Keras): every worker keeps its share of the examples, the
            # single device's global batches (sharding by file would need a file per worker).
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            ds = ds.with_options(options)
        return ds.prefetch(tf.data.AUTOTUNE)


def _npy_data_offset(file: Path, config: SpectrogramConfig) -> int:
    """Bytes before the first row of a shard (its ``.npy`` header), checked to be C-ordered float16."""
    arr = _load_shard(file, config)
    if arr.dtype.str != "<f2" or not arr.flags.c_contiguous:
        raise DatasetError(f"{file}: shard of dtype {arr.dtype.str}, {'C' if arr.flags.c_contiguous else 'Fortran'} "
                           f"order; expected little-endian float16 in C order (prepare the dataset again)")
    return int(arr.offset)


NAN_MESSAGE = "holds NaN or Inf; prepare the dataset again"


def _decode_image(record, row, file, at, shape):
    """One raw float16 row of a shard → (image [H, W], position in the split); a NaN or Inf stops
    the input with the shard and row named (:meth:`PreparedDataset.describe_error` adds the clip)."""
    import tensorflow as tf

    image = tf.reshape(tf.io.decode_raw(record, tf.float16), shape)
    check = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(image)),
                                [tf.strings.join([file, ": row ", tf.strings.as_string(row), " " + NAN_MESSAGE])])
    with tf.control_dependencies([check]):
        return tf.identity(image), at + row


def memory_budget_from_env() -> int:
    """:data:`MEMORY_BUDGET`, or ``$VAE_TFP_MEMORY_BUDGET_MB`` megabytes (ConfigError naming a bad value)."""
    raw = os.environ.get(MEMORY_BUDGET_ENV)
    if raw is None or raw == "":
        return MEMORY_BUDGET
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{MEMORY_BUDGET_ENV}={raw!r} must be a number of megabytes >= 0")
    return int(value * (1 << 20))


@functools.cache
def _manifest_validator():
    # fastjsonschema compiles the schema to Python: opening a 100 000-clip manifest (29 MB) takes
    # 0.73 s in all, where jsonschema's validator alone took 5.9 s (benchmarks/open_dataset.py).
    return fastjsonschema.compile({"$schema": "http://json-schema.org/draft-07/schema#", **MANIFEST_SCHEMA})


DatasetLike = Union[str, os.PathLike, PreparedDataset]


def open_dataset(data: DatasetLike) -> PreparedDataset:
    """A :class:`PreparedDataset` for a folder (reading its manifest once), or ``data`` itself if it is one."""
    return data if isinstance(data, PreparedDataset) else PreparedDataset.open(data)


def _check_counts(folder: Path, manifest: dict[str, Any], config: SpectrogramConfig) -> None:
    """The manifest's counts and row indices against each other and the shards' real shapes
    (read from the ``.npy`` headers only)."""
    file = folder / MANIFEST
    rows: dict[str, tuple[str, int]] = {}
    for split, info in manifest["splits"].items():
        total = sum(s["n"] for s in info["shards"])
        if total != info["n_clips"]:
            raise DatasetError(f"{file}: split {split!r} claims n_clips={info['n_clips']} but its shards hold "
                               f"{total} rows")
        for s in info["shards"]:
            path = folder / s["file"]
            if not path.is_file():
                raise DatasetError(f"{path}: shard listed in the manifest is missing")
            n = len(_load_shard(path, config))
            if n != s["n"]:
                raise DatasetError(f"{path}: holds {n} rows, the manifest says {s['n']}")
            rows[s["file"]] = (split, n)
    counts = dict.fromkeys(manifest["splits"], 0)
    for i, c in enumerate(manifest["clips"]):
        split, n = rows.get(c["shard"], (None, 0))
        if split != c["split"] or c["row"] >= n:
            raise DatasetError(f"{file}: clip {i} points at row {c['row']} of {c['shard']} in split {c['split']!r}, "
                               f"which is not there")
        counts[split] += 1
    for split, n in counts.items():
        if n != manifest["splits"][split]["n_clips"]:
            raise DatasetError(f"{file}: split {split!r} lists {n} clips but claims n_clips="
                               f"{manifest['splits'][split]['n_clips']}")


def _load_shard(file: Path, config: SpectrogramConfig) -> np.ndarray:
    try:
        arr = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{file}: cannot read shard ({err})") from None
    if arr.ndim != 3 or arr.shape[1:] != (config.n_bins, config.n_frames):
        raise DatasetError(f"{file}: shard shape {arr.shape} does not match the config "
                           f"(n, {config.n_bins}, {config.n_frames})")
    return arr
