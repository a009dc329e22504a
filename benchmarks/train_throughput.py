"""Training throughput of model presets, in one run: examples/s, FLOPs per example (exact analytic
count of conv + dense MACs, see ``vae_tfp.model.cost.count_flops``), achieved GFLOP/s and the fraction
of the machine's fp32 peak.

    python benchmarks/train_throughput.py --presets seed default --batch-size 8 --steps 8 --repeats 3

A preset may also be a model config JSON file, e.g. ``benchmarks/configs/default-v1.json`` (the
``default`` preset before the speed work) or ``default-v2.json`` (before the frequency-first
decoder), so "before" and "after" are measured in the same run.
The presets are timed in turns (A B A B ...) and the median repeat is reported: on this shared VM
single steps of the same model take one of two times (0.81 s or 1.27 s for ``default`` at batch 8).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine, matmul_gflops  # noqa: E402


def load_config(preset: str):
    from vae_tfp.config import ModelConfig, model_preset

    if preset.endswith(".json"):
        with open(preset) as f:
            return ModelConfig.from_dict(json.load(f))
    return model_preset(preset)


def build(cfg, batch_size: int, warmup: int, jit: bool):
    """A compiled VAE and a constant input pipeline, traced and warmed up."""
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.model.networks import VAE

    keras.utils.set_random_seed(0)
    vae = VAE(cfg, xla=jit)
    vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=jit)
    x = np.random.default_rng(0).uniform(0, 1, (batch_size,) + tuple(cfg.input_shape)).astype(np.float32)
    ds = tf.data.Dataset.from_tensors(x).repeat()
    vae.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)  # trace + warm up
    return vae, ds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["seed", "default"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--jit", action="store_true")
    ap.add_argument("--policy", default=None, help="mixed precision policy, e.g. mixed_bfloat16")
    ap.add_argument("--name", default="train_throughput")
    args = ap.parse_args()

    import tf_keras as keras

    from vae_tfp.model.cost import count_flops

    m = machine()
    if args.policy:
        keras.mixed_precision.set_global_policy(args.policy)
    names = [os.path.basename(p).removesuffix(".json") for p in args.presets]
    configs = {n: load_config(p) for n, p in zip(names, args.presets)}
    built = {n: build(configs[n], args.batch_size, args.warmup, args.jit) for n in names}
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for n in names:  # in turns, so slow phases of the machine hit every model alike
            vae, ds = built[n]
            t0 = time.perf_counter()
            vae.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
            seconds[n].append(time.perf_counter() - t0)
    out = {"benchmark": "train_throughput",
           "flops_method": "exact analytic count of conv + dense MACs (vae_tfp.model.cost.count_flops): "
                           "train = 3 x forward (forward, input gradients, weight gradients) "
                           "less the first layer's input gradient",
           "machine": m, "batch_size": args.batch_size, "steps_per_repeat": args.steps, "repeats": args.repeats,
           "jit_compile": args.jit, "policy": args.policy or "float32", "results": {}}
    mm = matmul_gflops()  # after the runs, on a warm machine
    out["machine"].update(mm)
    for n in names:
        cfg, flops = configs[n], count_flops(configs[n])
        eps = [args.steps * args.batch_size / s for s in seconds[n]]
        med = statistics.median(eps)
        gflops = med * flops["train_flops"] / 1e9
        out["results"][n] = {
            "examples_per_s": round(med, 3), "examples_per_s_min": round(min(eps), 3),
            "examples_per_s_max": round(max(eps), 3), "seconds_per_step": round(args.batch_size / med, 3),
            "train_flops_per_example": flops["train_flops"], "forward_macs_per_example": flops["forward_macs"],
            "achieved_gflops": round(gflops, 2), "fraction_of_fp32_peak": round(gflops / m["fp32_peak_gflops"], 3),
            "fraction_of_measured_matmul": round(gflops / mm["matmul_gflops"], 3),
            "parameters": cfg.parameter_estimate()}
    res = out["results"]
    if "seed" in res and "default" in res:
        out["default_vs_seed_examples_per_s"] = round(res["default"]["examples_per_s"] / res["seed"]["examples_per_s"], 2)
    for before in ("default-v1", "default-v2"):  # earlier defaults, benchmarks/configs/
        if before in res and "default" in res:
            out[f"default_vs_{before}_examples_per_s"] = round(
                res["default"]["examples_per_s"] / res[before]["examples_per_s"], 2)
    keras.mixed_precision.set_global_policy("float32")
    emit(args.name, out)


if __name__ == "__main__":
    main()
