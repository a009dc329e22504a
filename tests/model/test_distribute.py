"""Training under tf.distribute gives the same per-example losses as a single device on the same
global batches: MirroredStrategy over two logical CPU devices, and MultiWorkerMirroredStrategy with
two worker processes on localhost (TF_CONFIG). Sampling noise differs between the runs (each
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


def _run(mode, data, model_dir, env=None, timeout=600):
    proc = subprocess.run(RUN + [mode, str(data), str(model_dir)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def single(tiny_dataset, tmp_path_factory):
    return _run("single", tiny_dataset, tmp_path_factory.mktemp("single") / "m")


def _close(a, b, rel):
    return all(abs(x - y) <= rel * max(abs(x), abs(y)) for x, y in zip(a, b))


@pytest.mark.slow
def test_mirrored_two_logical_cpus(single, tiny_dataset, tmp_path):
    mirrored = _run("mirrored", tiny_dataset, tmp_path / "m")
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    assert _close(mirrored["recon"], single["recon"], 0.1), (mirrored, single)
    assert _close(mirrored["val_neg_elbo"], single["val_neg_elbo"], 0.1), (mirrored, single)
    assert (tmp_path / "m" / "config.json").exists()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _two_workers(mode, data, model_dir, command=None):
    """Two worker processes on localhost, each with its TF_CONFIG; their last stdout lines (JSON for
    distributed_run.py, else text)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(command or RUN + [mode, str(data), str(model_dir)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        last = out.strip().splitlines()[-1]
        outs.append(last if command else json.loads(last))
    return outs


@pytest.mark.slow
def test_the_command_line_trains_on_two_workers(tiny_dataset, tmp_path):
    """The README's command per worker: `vae-tfp train ... --strategy multiworker` with TF_CONFIG."""
    command = [sys.executable, "-m", "vae_tfp.apps.cli", "train", str(tiny_dataset), "--model", str(tmp_path / "m"),
               "--preset", "tiny", "--epochs", "1", "--batch-size", "8", "--strategy", "multiworker", "--quiet"]
    outs = _two_workers(None, None, None, command=command)
    assert all(line.startswith(f"model: {tmp_path / 'm'} (1 epochs") for line in outs), outs
    assert (tmp_path / "m" / "config.json").exists() and not list(tmp_path.glob("m.worker-*"))


@pytest.mark.slow
def test_multi_worker_on_localhost(single, tiny_dataset, tmp_path):
    """One chunk of shards: each worker reads them all and keeps its share of the examples, so the
    global batches are the single device's."""
    outs = _two_workers("multiworker", tiny_dataset, tmp_path / "m")
    assert all(o["replicas"] == 2 for o in outs)
    assert outs[0]["loss"] == outs[1]["loss"]  # the workers agree with each other exactly
    assert _close(outs[0]["recon"], single["recon"], 0.1), (outs[0], single)
    assert _close(outs[0]["val_neg_elbo"], single["val_neg_elbo"], 0.1), (outs[0], single)
    assert (tmp_path / "m" / "config.json").exists()  # written by the chief only
    assert not list(tmp_path.glob("m.worker-*"))


@pytest.mark.slow
def test_each_worker_reads_its_own_chunks(single, tiny_dataset, tmp_path):
    from vae_tfp.data.dataset import open_dataset

    n_train = open_dataset(tiny_dataset).n_clips("train")
    outs = _two_workers("multiworker-chunks", tiny_dataset, tmp_path / "m")
    assert outs[0]["loss"] == outs[1]["loss"] and all(o["replicas"] == 2 for o in outs)
    seen = [set(o["train_positions"]) for o in outs]
    assert seen[0] and seen[1] and not seen[0] & seen[1] and seen[0] | seen[1] == set(range(n_train)), seen
    assert _close(outs[0]["val_neg_elbo"], single["val_neg_elbo"], 0.3), (outs[0], single)
    assert (tmp_path / "m" / "config.json").exists()


@pytest.mark.slow
def test_the_adversarial_stage_on_two_logical_cpus(tiny_dataset, tmp_path):
    single = _run("adversarial-single", tiny_dataset, tmp_path / "s")
    mirrored = _run("adversarial-mirrored", tiny_dataset, tmp_path / "m")
    assert mirrored["replicas"] == 2 and single["replicas"] == 1
    # the same stage-1 model, the same global batches: losses agree up to the replicas' own noise
    assert _close(mirrored["recon"], single["recon"], 0.1), (mirrored, single)
    assert _close(mirrored["d_loss"], single["d_loss"], 0.1), (mirrored, single)
    assert (tmp_path / "m" / "discriminator.weights.h5").exists()


@pytest.mark.slow
def test_the_adversarial_variants_on_two_logical_cpus(tiny_dataset, tmp_path):
    """The adaptive weight (its gradients taken per replica), the decoder's noise input (its random
    op and its zero-started scale) and the consistency term (FFTs per replica) under MirroredStrategy."""
    variants = {"adaptive_weight": True, "decoder_noise": True, "consistency_weight": 1.0}
    out = _run("adversarial-mirrored", tiny_dataset, tmp_path / "m", env={"VAE_TFP_ADVERSARIAL": json.dumps(variants)})
    assert out["replicas"] == 2
    assert all(math.isfinite(v) for k in ("recon", "d_loss", "adv_weight") for v in out[k]), out
    assert all(w != 1.0 for w in out["adv_weight"]), out  # the adaptive rule, not the fixed weight
    assert out["noise_scale"][0] > 0, out  # the noise input's scale left 0
    assert all(0 < c < 1 for c in out["consistency"]), out
