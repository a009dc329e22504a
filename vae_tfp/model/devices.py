"""The devices training runs on: what is visible, op determinism and the decoder's upsampling,
and an out-of-memory message that says what to change."""

from __future__ import annotations

import os

import tensorflow as tf

from ..config import STRATEGIES, ModelConfig
from .cost import activation_bytes_per_example


def describe_devices() -> str:
    """What training runs on: the visible GPUs' names, else the CPU cores."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores, no GPU visible)"
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {', '.join(names)}"


def default_model_preset() -> str:
    """``default`` (512 x 512) when a GPU is visible, ``small`` (128 x 128) on a CPU."""
    return "default" if tf.config.list_physical_devices("GPU") else "small"


def determinism_plan(deterministic: bool | None, jit_compile: bool) -> dict[str, bool]:
    """Whether to enable op determinism and which upsampling the decoder uses.

    ``deterministic=None`` (the default) means: on without a GPU, off with one (cuDNN's
    deterministic algorithms cost speed, unmeasured here). Determinism is never enabled with XLA
    (no deterministic XLA kernel for some gradients, e.g. MaxPool). With determinism on and a GPU
    visible, the decoder uses the broadcast upsampling, whose gradient is a plain sum: Keras'
    ``UpSampling2D`` gradient, ``ResizeNearestNeighborGrad``, has no deterministic GPU kernel.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    on = (not gpu if deterministic is None else bool(deterministic)) and not jit_compile
    return {"op_determinism": on, "broadcast_upsampling": bool(jit_compile or (on and gpu)), "gpu": gpu}


def out_of_memory_message(config: ModelConfig, batch_size: int, *, mixed_precision: bool = False) -> str:
    mb = activation_bytes_per_example(config, mixed_precision=mixed_precision) / 2**20
    smaller = max(1, batch_size // 2)
    return (f"out of memory on {describe_devices()} at batch size {batch_size}: the {config.name!r} model keeps "
            f"~{mb:.3g} MB of conv activations per example for the backward pass ({batch_size * mb:.3g} MB per "
            f"batch, plus gradients and optimizer state); try --batch-size {smaller}"
            + ("" if mixed_precision else " or --mixed-precision mixed_float16"))


def make_strategy(name: str | None) -> tf.distribute.Strategy | None:
    """A ``tf.distribute`` strategy by name: ``one`` (None: the default device), ``mirrored``
    (every GPU of this machine) or ``multiworker`` (several machines, each described by its
    ``TF_CONFIG``; create it before any other TensorFlow work). ConfigError naming a bad name or
    a missing ``TF_CONFIG``."""
    from ..errors import ConfigError

    if name in (None, "one"):
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError("--strategy multiworker needs TF_CONFIG in the environment: the cluster's workers and "
                              "this one's index, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:2222\", "
                              "\"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"strategy {name!r} must be one of {', '.join(STRATEGIES)}")
