"""How much of the clip one latent step sees: the encoder's receptive field, measured by gradients.

For a preset with a latent sequence (``ModelConfig.latent_steps``), the gradient of one step's
posterior mean with respect to the input spectrogram is non-zero exactly where that step can look;
its extent along time (frames, seconds) and frequency (bins) is reported for the first, a middle
and the last step, summed over a few random inputs so that no inactive unit hides a pixel. For a
global code the whole code is one step. Architectural: freshly initialised weights suffice
(``--model`` measures a trained encoder instead).

    python benchmarks/receptive_field.py --preset music
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402
from train_throughput import load_config  # noqa: E402


def extent(mask) -> list[int]:
    """[first, last] index where ``mask`` is true."""
    import numpy as np

    where = np.flatnonzero(mask)
    return [int(where[0]), int(where[-1])] if len(where) else []


def main():
    import numpy as np
    import tensorflow as tf

    from vae_tfp.model.networks import make_encoder
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="music", help="preset name or model config JSON")
    ap.add_argument("--model", default=None, help="a saved model folder (its trained encoder)")
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--name", default="receptive_field")
    args = ap.parse_args()
    if args.model:
        loaded = load_model(args.model, parts=("encoder",))
        cfg, encoder = loaded.config, loaded.encoder
    else:
        cfg = load_config(args.preset)
        encoder = make_encoder(cfg)
    spec = cfg.spectrogram
    steps = cfg.latent_steps or 1
    step_dim = cfg.latent_dim // steps
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, (args.inputs,) + cfg.input_shape).astype(np.float32))
    rows = []
    for k in sorted({0, steps // 2, steps - 1}):
        with tf.GradientTape() as tape:
            tape.watch(x)
            mean = encoder(x, training=False).mean()
            target = tf.reduce_sum(mean[:, k * step_dim:(k + 1) * step_dim])
        g = np.abs(tape.gradient(target, x).numpy()).sum(axis=(0, 3))  # [bins, frames]
        seen = g > 1e-6 * g.max()
        frames, bins = extent(seen.any(axis=0)), extent(seen.any(axis=1))
        width = frames[1] - frames[0] + 1
        rows.append({"step": k, "frames": frames, "frames_seen": width,
                     "seconds_seen": round(width * spec.hop_length / spec.sample_rate, 3),
                     "step_seconds": round(spec.n_frames / steps * spec.hop_length / spec.sample_rate, 3),
                     "bins": bins})
        print(rows[-1], file=sys.stderr, flush=True)
    emit(args.name, {"benchmark": "receptive_field", "machine": machine(), "preset": cfg.name, "model": args.model,
                     "latent_steps": steps, "n_frames": spec.n_frames,
                     "clip_seconds": round(spec.n_frames * spec.hop_length / spec.sample_rate, 3), "steps": rows})


if __name__ == "__main__":
    main()
