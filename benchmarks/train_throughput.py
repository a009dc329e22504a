"""Training throughput of model presets, in one run: examples/s, FLOPs per example (exact analytic
count of conv + dense MACs x 2, x 3 for forward + both backward passes), achieved GFLOP/s and the
fraction of the machine's fp32 peak.

    python benchmarks/train_throughput.py --presets seed default --batch-size 8 --steps 6
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def measure(preset: str, batch_size: int, steps: int, warmup: int, jit: bool, policy: str | None):
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.config import model_preset
    from vae_tfp.model import VAE, count_flops

    if policy:
        keras.mixed_precision.set_global_policy(policy)
    cfg = model_preset(preset)
    keras.utils.set_random_seed(0)
    vae = VAE(cfg, xla=jit)
    vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=jit)
    x = np.random.default_rng(0).uniform(0, 1, (batch_size,) + tuple(cfg.input_shape)).astype(np.float32)
    ds = tf.data.Dataset.from_tensors(x).repeat()
    vae.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)  # trace + warm up
    t0 = time.perf_counter()
    vae.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    keras.mixed_precision.set_global_policy("float32")
    flops = count_flops(cfg)
    eps = steps * batch_size / seconds
    return {"examples_per_s": round(eps, 3), "seconds_per_step": round(seconds / steps, 3),
            "train_flops_per_example": flops["train_flops"], "forward_macs_per_example": flops["forward_macs"],
            "achieved_gflops": round(eps * flops["train_flops"] / 1e9, 2),
            "parameters": cfg.parameter_estimate(), "batch_size": batch_size, "steps": steps,
            "jit_compile": jit, "policy": policy or "float32"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["seed", "default"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--policy", default=None, help="mixed precision policy, e.g. mixed_bfloat16")
    ap.add_argument("--name", default="train_throughput")
    args = ap.parse_args()
    m = machine()
    out = {"benchmark": "train_throughput", "flops_method": "exact analytic count (vae_tfp.model.count_flops)",
           "machine": m, "results": {}}
    for p in args.presets:
        r = measure(p, args.batch_size, args.steps, args.warmup, args.jit, args.policy)
        r["fraction_of_fp32_peak"] = round(r["achieved_gflops"] / m["fp32_peak_gflops"], 3)
        out["results"][p] = r
    if "seed" in out["results"] and "default" in out["results"]:
        out["default_vs_seed_examples_per_s"] = round(
            out["results"]["default"]["examples_per_s"] / out["results"]["seed"]["examples_per_s"], 2)
    emit(args.name, out)


if __name__ == "__main__":
    main()
