"""Training under tf.distribute gives the same per-example losses as a single device on the same
global batches: MirroredStrategy over two logical CPU devices, and MultiWorkerMirroredStrategy with
two worker processes on localhost (TF_CONFIG). The runs of each kind share one process
(tests/distributed_run.py), so TensorFlow starts once per kind. Sampling noise differs between the runs (each
replica draws its own z), so losses are compared within a tolerance; a wrong reduction (a loss
summed over replicas or over the batch) would be off by a factor of 2 or more."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parents[1]  # tests/
RUN = [sys.executable, str(HERE / "distributed_run.py")]


@pytest.fixture(scope="module")
def local(tiny_dataset, tmp_path_factory):
    """The one-process runs of distributed_run.py (one device, two logical CPUs, the adversarial stage on
    both), keyed by name; their models are under ``local["root"]``."""
    root = tmp_path_factory.mktemp("local")
    proc = subprocess.run(RUN + ["local", str(tiny_dataset), str(root)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "root": root}


@pytest.fixture(scope="module")
def two_workers(tiny_dataset, tmp_path_factory):
    """The two worker processes' runs of distributed_run.py (``multiworker``, ``multiworker-chunks``): per run
    name, each worker's result; their models are under ``two_workers["root"]``."""
    root = tmp_path_factory.mktemp("workers")
    outs = [json.loads(out) for out in _two_workers(RUN + ["multiworker", str(tiny_dataset), str(root)])]
    return {**{name: [out[name] for out in outs] for name in outs[0]}, "root": root}


def _close(a, b, rel):
    return all(abs(x - y) <= rel * max(abs(x), abs(y)) for x, y in zip(a, b))


@pytest.mark.slow
def test_mirrored_two_logical_cpus(local):
    mirrored, single = local["mirrored"], local["single"]
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    assert _close(mirrored["recon"], single["recon"], 0.1), (mirrored, single)
    assert _close(mirrored["val_neg_elbo"], single["val_neg_elbo"], 0.1), (mirrored, single)
    assert (local["root"] / "mirrored" / "config.json").exists()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _two_workers(command):
    """Two processes of ``command`` on localhost, each with its TF_CONFIG; their last stdout lines."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        outs.append(out.strip().splitlines()[-1])
    return outs


@pytest.mark.slow
def test_the_command_line_trains_on_two_workers(tiny_dataset, tmp_path):
    """The README's command per worker: `vae-tfp train ... --strategy multiworker` with TF_CONFIG."""
    command = [sys.executable, "-m", "vae_tfp.apps.cli", "train", str(tiny_dataset), "--model", str(tmp_path / "m"),
               "--preset", "tiny", "--epochs", "1", "--batch-size", "8", "--strategy", "multiworker", "--quiet"]
    outs = _two_workers(command)
    assert all(line.startswith(f"model: {tmp_path / 'm'} (1 epochs") for line in outs), outs
    assert (tmp_path / "m" / "config.json").exists() and not list(tmp_path.glob("m.worker-*"))


@pytest.mark.slow
def test_multi_worker_on_localhost(local, two_workers):
    """One chunk of shards: each worker reads them all and keeps its share of the examples, so the
    global batches are the single device's."""
    outs, root, single = two_workers["multiworker"], two_workers["root"], local["single"]
    assert all(o["replicas"] == 2 for o in outs)
    assert outs[0]["loss"] == outs[1]["loss"]  # the workers agree with each other exactly
    assert _close(outs[0]["recon"], single["recon"], 0.1), (outs[0], single)
    assert _close(outs[0]["val_neg_elbo"], single["val_neg_elbo"], 0.1), (outs[0], single)
    assert (root / "multiworker" / "config.json").exists()  # written by the chief only
    assert not list(root.glob("multiworker.worker-*"))


@pytest.mark.slow
def test_each_worker_reads_its_own_chunks(local, two_workers, tiny_dataset):
    from vae_tfp.data.dataset import open_dataset

    n_train = open_dataset(tiny_dataset).n_clips("train")
    outs, root = two_workers["multiworker-chunks"], two_workers["root"]
    assert outs[0]["loss"] == outs[1]["loss"] and all(o["replicas"] == 2 for o in outs)
    seen = [set(o["train_positions"]) for o in outs]
    assert seen[0] and seen[1] and not seen[0] & seen[1] and seen[0] | seen[1] == set(range(n_train)), seen
    assert _close(outs[0]["val_neg_elbo"], local["single"]["val_neg_elbo"], 0.3), (outs[0], local["single"])
    assert (root / "multiworker-chunks" / "config.json").exists()


@pytest.mark.slow
def test_the_adversarial_stage_on_two_logical_cpus(local):
    single, mirrored = local["adversarial-single"], local["adversarial-mirrored"]
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    # the same stage-1 model, the same global batches: losses agree up to the replicas' own noise
    assert _close(mirrored["recon"], single["recon"], 0.1), (mirrored, single)
    assert _close(mirrored["d_loss"], single["d_loss"], 0.1), (mirrored, single)
    assert (local["root"] / "adversarial-mirrored" / "discriminator.weights.h5").exists()


@pytest.mark.slow
def test_the_adversarial_variants_on_two_logical_cpus(local):
    """The adaptive weight (its gradients taken per replica), the decoder's noise input (its random
    op and its zero-started scale) and the consistency term (FFTs per replica) under MirroredStrategy."""
    out = local["adversarial-variants"]
    assert out["replicas"] == 2
    assert all(math.isfinite(v) for k in ("recon", "d_loss", "adv_weight") for v in out[k]), out
    assert all(w != 1.0 for w in out["adv_weight"]), out  # the adaptive rule, not the fixed weight
    assert out["noise_scale"][0] > 0, out  # the noise input's scale left 0
    assert all(0 < c < 1 for c in out["consistency"]), out
