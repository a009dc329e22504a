"""Where a training step's time goes: every conv layer of a model config timed alone (forward +
gradients, at the training batch size), with its FLOPs and fraction of the fp32 peak.

    python benchmarks/conv_layers.py --presets benchmarks/configs/default-v1.json default

This is the measurement behind the ``default`` preset's layout: thin convolutions at 512x512
(8 -> 1 channels) run at a few per cent of peak, 64-256-channel ones at 32x32-128x128 near 60-80 %.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine, matmul_gflops  # noqa: E402
from train_throughput import load_config  # noqa: E402


def time_layer(batch, h, w, c_in, c_out, kernel, stride, up, d2s, input_grad, repeats):
    import tensorflow as tf

    from vae_tfp.config import upsample_factors
    from vae_tfp.model.networks import DepthToSpace

    x = tf.random.uniform([batch, h, w, c_in])
    kernel_var = tf.Variable(tf.random.normal([kernel, kernel, c_in, c_out]) * 0.05)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            uh, uw = upsample_factors(up)
            y = tf.image.resize(x, [h * uh, w * uw], method="nearest") if uh * uw > 1 else x
            y = tf.nn.conv2d(y, kernel_var, stride, "SAME")
            if d2s != 1:
                y = DepthToSpace(d2s)(y)
            loss = tf.reduce_sum(y)
        return tape.gradient(loss, [x, kernel_var] if input_grad else [kernel_var])

    step(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(x)[0].numpy()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["benchmarks/configs/default-v1.json", "default"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--name", default="conv_layers")
    args = ap.parse_args()

    m = machine()
    m.update(matmul_gflops())
    out = {"benchmark": "conv_layers", "machine": m, "batch_size": args.batch_size,
           "method": "each conv alone in a tf.function: (nearest upsampling +) conv (+ depth-to-space), "
                     "gradients w.r.t. kernel and input (not for the first encoder layer); median of repeats; "
                     "FLOPs = 2 x MACs x (3, or 2 without the input gradient)",
           "results": {}}
    for preset in args.presets:
        cfg = load_config(preset)
        rows, total_s, total_flops = [], 0.0, 0
        for i, layer in enumerate(cfg.conv_layers()):
            gx = i > 0  # the input image's gradient is never computed
            (h, w), c_in, c_out, k = layer["in_hw"], layer["c_in"], layer["c_out"], layer["kernel"]
            sec = time_layer(args.batch_size, h, w, c_in, c_out, k, layer["stride"], layer["upsample"],
                             layer["depth_to_space"], gx, args.repeats)
            flops = 2 * args.batch_size * layer["macs"] * (3 if gx else 2)
            total_s, total_flops = total_s + sec, total_flops + flops
            rows.append({"layer": layer["name"], "input": f"{h}x{w}x{c_in}", "upsample": layer["upsample"],
                         "out_channels": c_out, "kernel": k, "stride": layer["stride"],
                         "depth_to_space": layer["depth_to_space"], "ms": round(sec * 1e3, 1),
                         "gflops": round(flops / sec / 1e9, 1),
                         "fraction_of_fp32_peak": round(flops / sec / 1e9 / m["fp32_peak_gflops"], 3)})
        out["results"][os.path.basename(preset).removesuffix(".json")] = {
            "layers": rows, "conv_ms_per_step": round(total_s * 1e3, 1),
            "conv_fraction_of_fp32_peak": round(total_flops / total_s / 1e9 / m["fp32_peak_gflops"], 3)}
    emit(args.name, out)


if __name__ == "__main__":
    main()
