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


def layers(cfg):
    """(name, input h, c_in, c_out, kernel, stride, upsample, depth_to_space, needs input gradient)."""
    h, c = cfg.input_shape[0], cfg.input_shape[2]
    out = []
    for i, (filters, kernel, stride, bn, pool) in enumerate(cfg.encoder):
        out.append((f"enc_conv{i}", h, c, filters, kernel, stride, 1, 1, i > 0))
        h, c = -(-h // stride) // (2 if pool else 1), filters
    h, _, c = cfg.decoder_shape
    for i, (filters, kernel, up, bn) in enumerate(cfg.decoder):
        out.append((f"dec_conv{i}", h, c, filters, kernel, 1, up, 1, True))
        h, c = h * up, filters
    f = cfg.output_upsample
    out.append(("dec_params", h, c, cfg.output_channels() * f * f, 3, 1, 1, f, True))
    return out


def time_layer(batch, h, c_in, c_out, kernel, stride, up, d2s, input_grad, repeats):
    import tensorflow as tf

    x = tf.random.uniform([batch, h, h, c_in])
    w = tf.Variable(tf.random.normal([kernel, kernel, c_in, c_out]) * 0.05)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.image.resize(x, [h * up, h * up], method="nearest") if up > 1 else x
            y = tf.nn.conv2d(y, w, stride, "SAME")
            if d2s > 1:
                y = tf.nn.depth_to_space(y, d2s)
            loss = tf.reduce_sum(y)
        return tape.gradient(loss, [x, w] if input_grad else [w])

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
        for name, h, c_in, c_out, k, s, up, d2s, gx in layers(cfg):
            sec = time_layer(args.batch_size, h, c_in, c_out, k, s, up, d2s, gx, args.repeats)
            ho = -(-(h * up) // s)
            flops = 2 * args.batch_size * ho * ho * k * k * c_in * c_out * (3 if gx else 2)
            total_s, total_flops = total_s + sec, total_flops + flops
            rows.append({"layer": name, "input": f"{h}x{h}x{c_in}", "upsample": up, "out_channels": c_out,
                         "kernel": k, "stride": s, "depth_to_space": d2s, "ms": round(sec * 1e3, 1),
                         "gflops": round(flops / sec / 1e9, 1),
                         "fraction_of_fp32_peak": round(flops / sec / 1e9 / m["fp32_peak_gflops"], 3)})
        out["results"][os.path.basename(preset).removesuffix(".json")] = {
            "layers": rows, "conv_ms_per_step": round(total_s * 1e3, 1),
            "conv_fraction_of_fp32_peak": round(total_flops / total_s / 1e9 / m["fp32_peak_gflops"], 3)}
    emit(args.name, out)


if __name__ == "__main__":
    main()
