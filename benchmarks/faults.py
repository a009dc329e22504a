"""Fault injection: every command probed with the mistakes people make and the faults machines
have, each run as a real `vae-tfp` process on a tiny dataset and model. Prints one JSON object:
per fault x command, the outcome and the three verdicts the suite asserts (nothing lost, no
traceback, the true cause named).

    python benchmarks/faults.py [--only NAME ...] [--list]

Faults: overwriting inputs, SIGKILL / SIGINT at random moments of prepare, train, fit-prior and
saves, two writers and a reader racing on one folder, a full disk (a small tmpfs, mounted when
running as root; else those rows are "not run"), read-only folders (CAP_DAC_OVERRIDE dropped with
`setpriv`), hostile manifests and shards, bad numbers on the command line.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
CLI = [sys.executable, "-m", "vae_tfp.apps.cli"]
NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search",
          "--"]


def tone(seconds, sr, f0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * f0 * t) * np.exp(-t / seconds)).astype(np.float32)


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and mtime: what "nothing lost" compares."""
    if folder.is_file():
        return {"": (folder.stat().st_size, folder.stat().st_mtime_ns)}
    return {os.fspath(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args, prefix=(), timeout=600, **kw):
    return subprocess.run([*prefix, *CLI, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout,
                          **kw)


def _default_sigint():
    # a shell's background job inherits SIGINT ignored, and Python then installs no handler for it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args):
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True, preexec_fn=_default_sigint)


def stop(proc, seconds: float = 60) -> str:
    """SIGINT, then SIGKILL if it has not ended within ``seconds``; returns its stderr."""
    os.kill(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=seconds)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1] + "\n(SIGINT ignored: killed)"


def model_loads(model: Path) -> subprocess.CompletedProcess:
    """A fresh process loading ``model`` whole (what a reader in another notebook does)."""
    return subprocess.run([sys.executable, "-c", "import sys; from vae_tfp.model.saving import load_model; "
                           "load_model(sys.argv[1])", os.fspath(model)], capture_output=True, text=True, env=ENV)


def reader(model: Path, seconds: float) -> subprocess.Popen:
    """A process loading ``model`` whole, again and again for ``seconds`` once it has started (a reader
    in another notebook re-running its cell); its last stdout line is JSON: the loads and the failures."""
    code = ("import json, sys, time; import tensorflow; from vae_tfp.model.saving import load_model\n"
            "reads, failures, end = 0, [], time.time() + float(sys.argv[2])\n"
            "while time.time() < end:\n"
            "    try:\n        load_model(sys.argv[1])\n"
            "    except Exception as err:\n        failures.append(f'{type(err).__name__}: {err}'.splitlines()[0])\n"
            "    reads += 1\n"
            "print(json.dumps({'reads': reads, 'failures': failures}))")
    return subprocess.Popen([sys.executable, "-c", code, os.fspath(model), str(seconds)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.05)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def row(name, command, fault, proc, *, expect, lost=False, outcome=None, note=None) -> dict:
    """One table row; ``expect`` is a phrase the message must hold (the true cause), or None."""
    err = proc.stderr if proc is not None else ""
    traceback = "Traceback (most recent call last)" in err
    line = last_line(err)
    named = expect is None or expect.lower() in err.lower()
    if outcome is None:
        outcome = "refused with one line" if proc.returncode not in (0, None) else "completed"
    return {"name": name, "command": command, "fault": fault, "outcome": outcome,
            "exit": None if proc is None else proc.returncode, "message": line[:300], "data_lost": bool(lost),
            "traceback": traceback, "misdiagnosed": not named, **({"note": note} if note else {})}


class Bench:
    def __init__(self, root: Path):
        self.root = root
        self.audio = root / "audio"
        for label, f0 in (("low", 150.0), ("high", 900.0)):
            for i in range(6):
                path = self.audio / label / f"{label}_{i}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, tone(1.5, 8000, f0 * (1 + 0.05 * i)), 8000)
        self.data = root / "ds"
        proc = cli("prepare", self.audio, "--out", self.data, "--spec", "tiny", "--workers", "1", "--quiet")
        assert proc.returncode == 0, proc.stderr
        self.model = root / "model"
        proc = cli("train", self.data, "--model", self.model, "--preset", "tiny", "--epochs", "1", "--batch-size", "8",
                   "--quiet")
        assert proc.returncode == 0, proc.stderr
        self.tmpfs = None

    def copy(self, src: Path, name: str) -> Path:
        dst = self.root / name
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        return dst

    @contextlib.contextmanager
    def small_disk(self, size: str):
        """A tmpfs of ``size`` (root only): a disk that really fills."""
        mount = Path(tempfile.mkdtemp(dir=self.root, prefix="disk-"))
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", os.fspath(mount)],
                            capture_output=True).returncode == 0
        try:
            yield mount if ok else None
        finally:
            if ok:
                subprocess.run(["umount", "-l", os.fspath(mount)], capture_output=True)

    @contextlib.contextmanager
    def read_only(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


def not_run(name, command, fault, why):
    return {"name": name, "command": command, "fault": fault, "outcome": f"not run ({why})", "exit": None,
            "message": "", "data_lost": False, "traceback": False, "misdiagnosed": False}


# --- prepare ----------------------------------------------------------------------------------

@scenario
def overwrite_the_audio(b):
    before = snapshot(b.audio)
    proc = cli("prepare", b.audio, "--out", b.audio, "--overwrite", "--spec", "tiny", "--quiet")
    return row("overwrite_the_audio", "prepare AUDIO --out AUDIO --overwrite", "--out is the input", proc,
               expect="holds the input", lost=snapshot(b.audio) != before)


@scenario
def overwrite_the_audio_parent(b):
    before = snapshot(b.root / "audio")
    proc = cli("prepare", b.audio / "low", "--out", b.audio, "--overwrite", "--spec", "tiny", "--quiet")
    return row("overwrite_the_audio_parent", "prepare AUDIO/low --out AUDIO --overwrite", "--out is an ancestor",
               proc, expect="holds the input", lost=snapshot(b.root / "audio") != before)


@scenario
def overwrite_a_file(b):
    f = b.root / "notes.txt"
    f.write_text("my notes")
    proc = cli("prepare", b.audio, "--out", f, "--overwrite", "--spec", "tiny", "--quiet")
    stray = list(b.root.glob(".notes.txt.*"))
    return row("overwrite_a_file", "prepare AUDIO --out FILE --overwrite", "--out is a regular file", proc,
               expect="not a folder", lost=f.read_text() != "my notes" or bool(stray))


@scenario
def overwrite_another_folder(b):
    other = b.root / "thesis"
    other.mkdir(exist_ok=True)
    (other / "chapter1.tex").write_text("text")
    proc = cli("prepare", b.audio, "--out", other, "--overwrite", "--spec", "tiny", "--quiet")
    return row("overwrite_another_folder", "prepare AUDIO --out FOLDER --overwrite", "--out is not a dataset", proc,
               expect="not a prepared dataset", lost=not (other / "chapter1.tex").is_file())


def _many_files(b, n=60) -> Path:
    src = b.root / "many"
    if not src.is_dir():
        src.mkdir()
        for i in range(n):
            sf.write(src / f"x_{i:03d}.wav", tone(3.0, 8000, 200 + i), 8000)
    return src


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _orphans(pids: list[int]) -> list[int]:
    alive = []
    for p in pids:
        try:
            os.kill(p, 0)
            alive.append(p)
        except ProcessLookupError:
            pass
    return alive


@scenario
def prepare_sigkill(b):
    src, out = _many_files(b), b.root / "killed-ds"
    proc = start("prepare", src, "--out", out, "--spec", "tiny", "--workers", "2", "--quiet")
    workers = []
    deadline = time.time() + 60
    while time.time() < deadline and not (workers and list(b.root.glob(".killed-ds.partial-*/parts/*"))):
        workers = _children(proc.pid) or workers
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))
    workers = _children(proc.pid) or workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2.5)  # the workers poll their parent once a second
    orphans = _orphans(workers)
    for p in orphans:
        os.kill(p, signal.SIGKILL)
    partial_after_kill = bool(list(b.root.glob(".killed-ds.partial-*")))
    rerun = cli("prepare", src, "--out", out, "--spec", "tiny", "--workers", "2", "--quiet")
    left = list(b.root.glob(".killed-ds.*"))
    ok = rerun.returncode == 0 and (out / "manifest.json").is_file() and not left and not orphans
    r = row("prepare_sigkill", "prepare --workers 2", "SIGKILL mid-run, then the same command", rerun, expect=None,
            outcome="recovered" if ok else f"NOT recovered ({len(orphans)} orphaned workers, leftovers {left})")
    r["orphaned_workers"], r["partial_left_by_kill"] = len(orphans), partial_after_kill
    return r


@scenario
def prepare_sigint(b):
    src, out = _many_files(b), b.root / "interrupted-ds"
    proc = start("prepare", src, "--out", out, "--spec", "tiny", "--workers", "2", "--quiet")
    wait_for(lambda: list(b.root.glob(".interrupted-ds.partial-*/parts/*")), 60)
    proc.stderr = stop(proc)
    left = list(b.root.glob(".interrupted-ds*")) + ([out] if out.exists() else [])
    return row("prepare_sigint", "prepare --workers 2", "SIGINT mid-run", proc, expect="interrupted",
               outcome="interrupted, nothing left" if not left else f"leftovers {left}", lost=False)


@scenario
def prepare_disk_full(b):
    with b.small_disk("300k") as disk:
        if disk is None:
            return not_run("prepare_disk_full", "prepare", "disk full", "mounting a tmpfs needs root")
        proc = cli("prepare", _many_files(b), "--out", disk / "ds", "--spec", "tiny", "--workers", "1", "--quiet")
        left = [p.name for p in disk.iterdir()]
    return row("prepare_disk_full", "prepare", "disk full (300 KB tmpfs)", proc, expect="disk full",
               note=f"left on the disk: {left}")


@scenario
def prepare_read_only(b):
    with b.read_only(b.root / "ro-prepare") as ro:
        proc = cli("prepare", b.audio, "--out", ro / "ds", "--spec", "tiny", "--quiet", prefix=NO_DAC)
    return row("prepare_read_only", "prepare", "read-only --out parent (CAP_DAC_OVERRIDE dropped)", proc,
               expect="permission denied")


@scenario
def prepare_two_writers(b):
    src, out = _many_files(b), b.root / "raced-ds"
    first = start("prepare", src, "--out", out, "--spec", "tiny", "--workers", "1", "--quiet")
    wait_for(lambda: (b.root / ".raced-ds.lock").exists(), 60)
    second = cli("prepare", src, "--out", out, "--spec", "tiny", "--workers", "1", "--quiet")
    first.communicate(timeout=300)
    ok = first.returncode == 0 and second.returncode == 1
    return row("prepare_two_writers", "prepare x2", "two prepares of one --out at once", second, expect="in use by PID",
               lost=not (out / "manifest.json").is_file(), outcome="second refused with one line" if ok else "both ran")


# --- hostile manifests and shards ---------------------------------------------------------------

def _edit_manifest(b, name, edit):
    ds = b.copy(b.data, name)
    m = json.loads((ds / "manifest.json").read_text())
    edit(m)
    (ds / "manifest.json").write_text(json.dumps(m))
    return ds


@scenario
def manifest_huge_count(b):
    ds = _edit_manifest(b, "huge", lambda m: m["splits"]["train"].update(n_clips=10**12))
    proc = cli("train", ds, "--model", b.root / "m-huge", "--preset", "tiny", "--epochs", "1", "--quiet")
    return row("manifest_huge_count", "train", "manifest n_clips = 10^12", proc, expect="n_clips")


@scenario
def manifest_row_out_of_range(b):
    ds = _edit_manifest(b, "rows", lambda m: m["clips"][0].update(row=999))
    proc = cli("interpolate", b.model, f"{ds}:0", f"{ds}:1", "--out", b.root / "interp", "--iters", "2")
    return row("manifest_row_out_of_range", "interpolate DS:0", "manifest row out of range", proc,
               expect="not there")


def _poison(b, name, split):
    ds = b.copy(b.data, name)
    shard = ds / f"{split}-00000.npy"
    x = np.load(shard)
    x[1, 3, 3] = np.nan
    np.save(shard, x)
    return ds


@scenario
def nan_training_shard(b):
    ds = _poison(b, "nan-train", "train")
    model = b.root / "m-nan"
    proc = cli("train", ds, "--model", model, "--preset", "tiny", "--epochs", "1", "--quiet")
    again = cli("train", b.data, "--model", model, "--preset", "tiny", "--epochs", "1", "--quiet")
    r = row("nan_training_shard", "train", "NaN in a training shard", proc, expect="train-00000.npy: row 1")
    r["next_train_into_the_folder"] = "completed" if again.returncode == 0 else last_line(again.stderr)
    r["misdiagnosed"] |= again.returncode != 0  # a failed run must not block the next one
    return r


@scenario
def nan_test_shard(b):
    ds = _poison(b, "nan-test", "test")
    proc = cli("evaluate", b.model, ds, "--json")
    try:
        json.loads(proc.stdout or "null")
        valid = True
    except ValueError:
        valid = False
    r = row("nan_test_shard", "evaluate --json", "NaN in a test shard", proc, expect="test-00000.npy: row 1")
    r["stdout_is_json"] = valid
    return r


@scenario
def truncated_shard(b):
    ds = b.copy(b.data, "truncated")
    shard = ds / "train-00000.npy"
    shard.write_bytes(shard.read_bytes()[:1000])
    proc = cli("train", ds, "--model", b.root / "m-trunc", "--preset", "tiny", "--epochs", "1", "--quiet")
    return row("truncated_shard", "train", "a truncated shard", proc, expect="train-00000.npy")


# --- train, fit-prior, saves ---------------------------------------------------------------------

@scenario
def train_two_writers_and_a_reader(b):
    model = b.root / "m-race"
    args = ("train", b.data, "--model", model, "--preset", "tiny", "--epochs", "500", "--batch-size", "4", "--quiet")
    first = start(*args)
    wait_for(lambda: (model / "config.json").exists(), 120)
    reading = reader(model, 8)  # loading the model while each epoch saves it
    second = cli(*args)
    out, reader_err = reading.communicate(timeout=300)
    overlapped = first.poll() is None
    err = stop(first)
    if reading.returncode:
        reads, failures = 0, [f"reader exit {reading.returncode}: {last_line(reader_err)}"]
    else:
        reads, failures = (json.loads(last_line(out))[k] for k in ("reads", "failures"))
    epochs = [h["epoch"] for h in json.loads((model / "history.json").read_text())]
    loads = model_loads(model).returncode == 0
    consistent = loads and epochs == list(range(1, len(epochs) + 1)) and not list(b.root.glob(".m-race.*"))
    r = row("train_two_writers_and_a_reader", "train x2 + load_model", "two trainers and a reader on one --model",
            second, expect="in use by PID", lost=not consistent or bool(failures),
            outcome=("second refused with one line; first went on" if second.returncode == 1 and overlapped
                     else f"no race (first exit {first.returncode}: {last_line(err)})"))
    r["reader_loads"], r["reader_failures"], r["epochs_saved"] = reads, failures, len(epochs)
    r["misdiagnosed"] |= not overlapped or not reads  # no race, or no reader in it: nothing was tested
    return r


@scenario
def train_sigkill_then_resume(b):
    model = b.root / "m-kill"
    args = ("train", b.data, "--model", model, "--preset", "tiny", "--epochs", "6", "--batch-size", "4", "--quiet")
    proc = start(*args)
    wait_for(lambda: list((model / "checkpoints").glob("ckpt-*.index")), 120)
    time.sleep(random.uniform(0.0, 1.5))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = cli(*args, "--resume")
    history = json.loads((model / "history.json").read_text()) if (model / "history.json").exists() else []
    ok = resumed.returncode == 0 and [h["epoch"] for h in history] == list(range(1, 7))
    return row("train_sigkill_then_resume", "train --resume", "SIGKILL at a random moment", resumed, expect=None,
               outcome="recovered (no epoch lost, none twice)" if ok else "NOT recovered", lost=not ok)


@scenario
def train_disk_full(b):
    with b.small_disk("1200k") as disk:
        if disk is None:
            return not_run("train_disk_full", "train", "disk full", "mounting a tmpfs needs root")
        proc = cli("train", b.data, "--model", disk / "m", "--preset", "tiny", "--epochs", "30", "--batch-size", "8",
                   "--quiet")
    r = row("train_disk_full", "train", "disk full (1.2 MB tmpfs) while checkpointing", proc, expect="disk full")
    r["misdiagnosed"] |= "out of memory" in proc.stderr
    return r


@scenario
def train_read_only(b):
    with b.read_only(b.root / "ro-train") as ro:
        proc = cli("train", b.data, "--model", ro / "m", "--preset", "tiny", "--epochs", "1", "--quiet", prefix=NO_DAC)
    return row("train_read_only", "train", "read-only --model parent", proc, expect="permission denied")


@scenario
def fit_prior_sigkill(b):
    model = b.copy(b.model, "m-fit")
    before = (model / "prior.weights.h5").read_bytes()
    proc = start("fit-prior", model, b.data, "--modes", "2")
    time.sleep(random.uniform(3.0, 8.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = model_loads(model)
    rerun = cli("fit-prior", model, b.data, "--modes", "2")
    whole = after.returncode == 0
    changed = (model / "prior.weights.h5").read_bytes() != before
    return row("fit_prior_sigkill", "fit-prior", "SIGKILL at a random moment, then the same command", rerun,
               expect=None, lost=not whole,
               outcome="recovered" if whole and rerun.returncode == 0 and changed else "NOT recovered")


@scenario
def fit_prior_while_training(b):
    model = b.root / "m-busy"
    first = start("train", b.data, "--model", model, "--preset", "tiny", "--epochs", "500", "--batch-size", "4",
                  "--quiet")
    wait_for(lambda: (model / "config.json").exists(), 120)
    proc = cli("fit-prior", model, b.data)
    still_training = first.poll() is None
    stop(first)  # the trainer stops cleanly; its model must still load
    loads = model_loads(model).returncode == 0
    r = row("fit_prior_while_training", "fit-prior", "the model is being trained", proc, expect="in use by PID",
            lost=not loads)
    r["misdiagnosed"] |= not still_training  # the race did not happen: the row proves nothing
    return r


@scenario
def stale_lock(b):
    model = b.copy(b.model, "m-stale")
    (b.root / ".m-stale.lock").write_text(json.dumps({"pid": 999999, "host": os.uname().nodename,
                                                      "since": "2026-01-01T00:00:00", "command": "vae-tfp train"}))
    proc = cli("fit-prior", model, b.data, "--modes", "2")
    ok = proc.returncode == 0 and "took over the lock of PID 999999" in proc.stderr + proc.stdout
    return row("stale_lock", "fit-prior", "a lock file left by a dead process", proc, expect=None,
               outcome="taken over with a note" if ok else "NOT taken over")


# --- generate, evaluate --------------------------------------------------------------------------

@scenario
def generate_bad_numbers(b):
    rows = []
    for args, expect in ((("-n", "-1"), "must be >="), (("--temperature", "nan"), "must be finite"),
                         (("--temperature", "0"), "must be >"), (("-n", "abc"), "not an integer")):
        proc = cli("generate", b.model, "--out", b.root / "gen-bad", *args)
        rows.append(row(f"generate {' '.join(args)}", "generate", f"{' '.join(args)}", proc, expect=expect))
    return rows


@scenario
def generate_disk_full(b):
    with b.small_disk("3000k") as disk:
        if disk is None:
            return not_run("generate_disk_full", "generate", "disk full", "mounting a tmpfs needs root")
        proc = cli("generate", b.model, "-n", "200", "--out", disk / "gen", "--iters", "2")
        listed = json.loads((disk / "gen" / "results.json").read_text())["items"] if (
            disk / "gen" / "results.json").exists() else []
        written = len(list((disk / "gen").glob("*.wav")))
    r = row("generate_disk_full", "generate -n 200", "disk full (3 MB tmpfs) after some batches", proc, expect="disk full")
    r["samples_written"], r["samples_listed"] = written, len(listed)
    r["data_lost"] = written != len(listed)
    return r


@scenario
def generate_read_only(b):
    with b.read_only(b.root / "ro-gen") as ro:
        proc = cli("generate", b.model, "-n", "2", "--out", ro / "g", "--iters", "2", prefix=NO_DAC)
    return row("generate_read_only", "generate", "read-only --out parent", proc, expect="permission denied")


@scenario
def evaluate_few_samples(b):
    proc = cli("evaluate", b.model, b.data, "--samples", "5", "--temperatures", "1", "--json")
    r = row("evaluate_few_samples", "evaluate --samples 5", "too few samples for FID", proc, expect="unreliable",
            outcome="completed with a warning" if proc.returncode == 0 and "unreliable" in proc.stderr else None)
    r["misdiagnosed"] |= "unreliable" not in proc.stdout  # the warning is in the JSON too
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="faults")
    args = ap.parse_args()
    random.seed(args.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vae-tfp-faults-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        b = Bench(root)
        rows = []
        for name in args.only or SCENARIOS:
            t = time.perf_counter()
            result = SCENARIOS[name](b)
            for r in result if isinstance(result, list) else [result]:
                r["seconds"] = round(time.perf_counter() - t, 1)
                rows.append(r)
                print(f"{r['name']}: {r['outcome']} — {r['message'][:120]}", file=sys.stderr, flush=True)
    run = [r for r in rows if not r["outcome"].startswith("not run")]
    emit(args.name, {"benchmark": "faults", "machine": machine(), "seed": args.seed, "rows": rows,
                     "totals": {"rows": len(rows), "run": len(run),
                                "data_lost": sum(r["data_lost"] for r in run),
                                "tracebacks": sum(r["traceback"] for r in run),
                                "misdiagnosed": sum(r["misdiagnosed"] for r in run)},
                     "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
