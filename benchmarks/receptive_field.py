"""How much of the clip one latent step sees: the encoder's receptive field, measured by gradients.

For a preset with a latent sequence (``ModelConfig.latent_steps``), the gradient of one step's
posterior mean with respect to the input spectrogram is non-zero exactly where that step can look;
its extent along time (frames, seconds) and frequency (bins) is reported for the first, a middle
and the last step, summed over a few random inputs so that no inactive unit hides a pixel. For a
global code the whole code is one step. Architectural: freshly initialised weights suffice
(``--model`` measures a trained encoder instead).

With ``--model`` and ``--data`` also what the edges cost, the question behind the clip length: the
recon_gain (MSE against the mean training image over MSE against the reconstruction, as
``evaluate``) of the split's clips in ``--segments`` equal stretches of time. Steps at the clip's
edges see less context; if their stretches reconstruct no worse, longer clips would not raise it.

    python benchmarks/receptive_field.py --preset music
    python benchmarks/receptive_field.py --model saved_models/music --data data/singularity --name receptive_field_music
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
    ap.add_argument("--data", default=None, help="with --model: recon_gain per stretch of time of this split's clips")
    ap.add_argument("--split", default="test")
    ap.add_argument("--segments", type=int, default=8)
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
    edges = None
    if args.data:
        if not args.model:
            ap.error("--data needs --model")
        edges = recon_gain_along_time(args.model, args.data, args.split, args.segments)
        print(edges, file=sys.stderr, flush=True)
    emit(args.name, {"benchmark": "receptive_field", "machine": machine(), "preset": cfg.name, "model": args.model,
                     "latent_steps": steps, "n_frames": spec.n_frames,
                     "clip_seconds": round(spec.n_frames * spec.hop_length / spec.sample_rate, 3), "steps": rows,
                     "recon_gain_along_time": edges})


def recon_gain_along_time(model_dir, data_dir, split: str, segments: int) -> dict:
    """recon_gain of ``split``'s clips in ``segments`` equal stretches of frames (the last takes the remainder)."""
    import numpy as np

    from vae_tfp.apps.generate import reconstruct
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.saving import load_model

    data = open_dataset(data_dir)
    x = data.load(split).astype(np.float32)
    recons = reconstruct(load_model(model_dir), x)
    err_recon = ((x - recons) ** 2).mean(axis=(0, 1, 3))  # per frame
    err_mean = ((x - data.mean_image("train")[None]) ** 2).mean(axis=(0, 1, 3))
    bounds = np.linspace(0, x.shape[2], segments + 1).astype(int)
    gains = [float(err_mean[a:b].mean() / max(err_recon[a:b].mean(), 1e-12)) for a, b in zip(bounds[:-1], bounds[1:])]
    return {"data": str(data_dir), "split": split, "n_clips": len(x), "frames": [[int(a), int(b)] for a, b in
            zip(bounds[:-1], bounds[1:])], "recon_gain": gains,
            "whole": float(err_mean.mean() / max(err_recon.mean(), 1e-12))}


if __name__ == "__main__":
    main()
