"""Datasets of growing size in bounded memory (issue #25): each size opened, its training input
iterated and the ``default`` model trained a few steps, in a separate process per size; plus
``prepare`` of a long folder of audio against a short one.

    python benchmarks/dataset_scale.py --sizes 1000 10000 100000 300000 --work /tmp/vae_tfp_scale

Datasets are built cheaply: the embedded notes' real 512x512 training images fill one shard of
128 rows, and every shard of the large training split is a hard link to it (the manifest lists
N clips, each at its own shard and row). The pipeline is measured, not the disk: the shard sits in
the page cache after the first read, so examples/s is an upper bound for a cold disk. Columns:
``open_s`` (manifest read + checked; ``rss_mb_after_open`` beside ``rss_mb_after_import``), ``first_batch_s`` (from ``tf_dataset`` to the first batch),
``input_examples_per_s`` (``--batches`` batches of 8), ``train_examples_per_s`` (``default``
train steps, batch 8, after the first), ``peak_rss_mb`` (the process's maximum resident set),
``disk_mb`` (what the folder really takes) and ``disk_mb_if_real`` (without the hard links).

``--epoch-clips N --epoch-preset small``: one full epoch of real training steps on an N-clip
dataset (``vae_tfp.model.training.train``), its peak RSS and wall time.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

SHARD_ROWS = 128  # rows per shard at 512x512 (vae_tfp.data.dataset.SHARD_BYTES)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: on Linux that keeps the parent's
    peak across fork and exec, so a child started by a process that once held more reports that."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(source: Path, folder: Path, n: int, n_val: int = 256) -> dict:
    """An ``n``-clip training split (and an ``n_val``-clip val split) of hard links to one real shard."""
    import numpy as np

    from vae_tfp.data.dataset import FORMAT, MANIFEST, open_dataset

    data = open_dataset(source)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    images = data.load("train", limit=SHARD_ROWS)[..., 0].astype(np.float16)
    images = np.resize(images, (SHARD_ROWS,) + images.shape[1:])
    real = folder / "real-shard.npy"
    np.save(real, images)
    splits, clips = {}, []
    for split, count in (("train", n), ("val", n_val)):
        shards = []
        for k in range(math.ceil(count / SHARD_ROWS)):
            rows = min(SHARD_ROWS, count - k * SHARD_ROWS)
            name = f"{split}-{k:05d}.npy"
            if rows == SHARD_ROWS:
                os.link(real, folder / name)
            else:
                np.save(folder / name, images[:rows])
            shards.append({"file": name, "n": rows})
            clips += [{"index": len(clips) + r, "split": split, "shard": name, "row": r,
                       "source": f"song{(len(clips) + r) // 60:06d}.wav", "offset": float((r % 60) * 5.94),
                       "label": "notes", "meta": {}} for r in range(rows)]
        splits[split] = {"n_clips": count, "shards": shards, "n_files": math.ceil(count / 60)}
    manifest = {"format": FORMAT, "spectrogram_config": data.config.to_dict(), "clip_hop": None, "split_seed": 0,
                "split_fractions": [0.9, 0.1, 0.0], "image_dtype": "float16", "splits": splits,
                "labels": ["notes"], "clips": clips, "skipped": [], "sources": ["(replicated)"]}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    real_bytes = sum(f.stat().st_size for f in folder.iterdir() if f.name != "real-shard.npy")
    used = int(subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True).stdout.split()[0])
    return {"disk_mb": round(used / 1024, 1), "disk_mb_if_real": round(real_bytes / 2**20, 1),
            "manifest_mb": round((folder / MANIFEST).stat().st_size / 2**20, 1)}


def child_pipeline(folder: str, batches: int, steps: int, preset: str = "default") -> dict:
    """In its own process: open, first batch, input examples/s, train steps of ``preset``; peak RSS."""
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.networks import VAE, make_optimizer

    out = {"rss_mb_after_import": round(peak_rss_mb(), 1)}
    t0 = time.perf_counter()
    data = open_dataset(folder)
    out["open_s"] = round(time.perf_counter() - t0, 2)
    out["rss_mb_after_open"] = round(peak_rss_mb(), 1)
    out["input_plan"] = data.input_plan("train")
    t0 = time.perf_counter()
    ds = data.tf_dataset("train", batch_size=8, seed=0, repeat=True)
    it = iter(ds)
    next(it)
    out["first_batch_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    out["input_examples_per_s"] = round(8 * batches / (time.perf_counter() - t0), 1)
    out["rss_mb_after_input"] = round(peak_rss_mb(), 1)
    config = model_preset(preset).for_spectrogram(data.config)
    keras.utils.set_random_seed(0)
    vae = VAE(config, seed=0)
    vae.compile(optimizer=make_optimizer(config))
    vae.train_on_batch(next(it))  # traces the step
    t0 = time.perf_counter()
    for _ in range(steps):
        vae.train_on_batch(next(it))
    out["train_examples_per_s"] = round(8 * steps / (time.perf_counter() - t0), 2)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["tf"] = tf.__version__
    return out


def child_epoch(folder: str, preset: str, model_dir: str) -> dict:
    """In its own process: one full epoch of ``train`` on the dataset; peak RSS and wall time."""
    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.training import train

    data = open_dataset(folder)
    t0 = time.perf_counter()
    history = train(data, model_dir, model_preset(preset), epochs=1, batch_size=16, tensorboard=False, verbose=0,
                    log=lambda line: print(line, file=sys.stderr))
    return {"preset": preset, "clips": data.n_clips("train"), "steps": math.ceil(data.n_clips("train") / 16),
            "wall_s": round(time.perf_counter() - t0, 1), "epoch_s": history[-1]["seconds"],
            "val_clips": history[-1].get("val_clips"), "input_plan": data.input_plan("train"),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def child_prepare(audio: str, out: str) -> dict:
    import soundfile as sf

    from vae_tfp.audio.io import find_audio_files
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset

    seconds = sum(sf.info(f).duration for f in find_audio_files(audio))
    t0 = time.perf_counter()
    manifest = prepare_dataset([audio], out, spectrogram_preset("default"), workers=2, progress=False,
                               overwrite=True, log=lambda _: None)
    wall = time.perf_counter() - t0
    return {"audio_hours": round(seconds / 3600, 2), "clips": len(manifest["clips"]), "wall_s": round(wall, 1),
            "x_real_time": round(seconds / wall, 1), "peak_rss_mb_main": round(peak_rss_mb(), 1),
            # ru_maxrss of the workers: their own peaks, or this process's at the fork if that was higher
            "peak_rss_mb_largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def audio_folder(src: Path, dst: Path, seconds: float) -> None:
    """``dst`` filled with hard links to ``src``'s WAV files, repeated until it holds ``seconds`` of audio."""
    import soundfile as sf

    files = sorted(src.rglob("*.wav"))
    if dst.exists():
        shutil.rmtree(dst)
    total, k = 0.0, 0
    while total < seconds:
        for f in files:
            if total >= seconds:
                break
            target = dst / f"copy{k:03d}" / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)
            total += sf.info(f).duration
        k += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--data", default="data/notes", help="a prepared 512x512 dataset whose images fill the shard")
    ap.add_argument("--audio", default="data/demo_audio", help="rendered embedded audio, for the prepare runs")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000, 300000])
    ap.add_argument("--work", default="/tmp/vae_tfp_scale")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--preset", default="default", help="the model trained for --steps steps (its spectrogram's data)")
    ap.add_argument("--prepare-minutes", type=float, nargs="*", default=[10, 150])
    ap.add_argument("--epoch-clips", type=int, default=0)
    ap.add_argument("--epoch-preset", default="small")
    ap.add_argument("--name", default="dataset_scale")
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"pipeline": lambda f, b, s, p: child_pipeline(f, int(b), int(s), p), "epoch": child_epoch,
              "prepare": child_prepare}[kind]
        print(json.dumps(fn(*rest), default=float))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "dataset_scale", "machine": machine(), "data": args.data,
           "method": __doc__.split("\n\n")[2].replace("\n", " "), "sizes": {}, "prepare": {}}
    for n in args.sizes:
        folder = work / f"clips{n}"
        t0 = time.perf_counter()
        built = build(Path(args.data), folder, n)
        built["build_s"] = round(time.perf_counter() - t0, 1)
        out["sizes"][n] = {**built, **run_child("pipeline", str(folder), str(args.batches), str(args.steps), args.preset)}
        print(json.dumps({n: out["sizes"][n]}), file=sys.stderr, flush=True)
        shutil.rmtree(folder)
    sizes = sorted(out["sizes"])
    if sizes:
        out["peak_rss_ratio_to_smallest"] = {
            n: round(out["sizes"][n]["peak_rss_mb"] / out["sizes"][sizes[0]]["peak_rss_mb"], 3) for n in sizes}
    if args.epoch_clips:
        folder = work / f"epoch{args.epoch_clips}"
        build(Path(args.data), folder, args.epoch_clips)
        shutil.rmtree(work / "epoch_model", ignore_errors=True)
        out["epoch"] = run_child("epoch", str(folder), args.epoch_preset, str(work / "epoch_model"))
        shutil.rmtree(folder)
    for minutes in args.prepare_minutes:
        audio = work / f"audio{minutes:g}min"
        audio_folder(Path(args.audio), audio, minutes * 60)
        out["prepare"][f"{minutes:g} min"] = run_child("prepare", str(audio), str(work / "prepared"))
        print(json.dumps(out["prepare"]), file=sys.stderr, flush=True)
        shutil.rmtree(audio)
        shutil.rmtree(work / "prepared", ignore_errors=True)
    if len(out["prepare"]) > 1:
        runs = list(out["prepare"].values())
        out["prepare_peak_rss_ratio_long_to_short"] = round(runs[-1]["peak_rss_mb_main"] / runs[0]["peak_rss_mb_main"], 3)
    emit(args.name, out)


if __name__ == "__main__":
    main()
