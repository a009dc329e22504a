"""Can more training of the encoder alone close the gap that refinement closes at encoding time?

``benchmarks/refine.py`` showed that held-out clips have better codes than the encoder's (music:
recon_gain 2.81 -> 3.05 after 50 refinement steps). This asks whether training can move the
encoder there: a saved model's encoder is trained further with its decoder and prior frozen (the
samples do not change), from the saved weights, Adam with a cosine rate, on one of

- ``elbo``: the training objective it already had (recon + beta * KL penalty);
- ``map``: refinement's own objective at the posterior mean, ``-log p(x|mu) - log p(mu)``, which is
  what ``evaluate`` decodes (the mean, not a sample);

optionally on augmented clips (``--augment``: a level change of -10..+6 dB on the sounding pixels
and, for half the clips, the louder-of-two mix with another clip of the batch at a random time
offset, as the dB image of a sum of two sounds roughly is): inputs unlike the training clips, for an
encoder whose failure is on unseen tracks. After every epoch, recon_gain and the time contours of
each split's seeded clips (``--clips``), and the codes' median log-density under the prior.

``--mask`` (with ``map``) trains a *denoising* encoder: SpecAugment's masks (Park et al. 2019: two
bands of up to 40 bins and two stretches of up to 40 frames set to silence) on the encoder's input
only, the clean clip as the target, so it must infer what it cannot see, as on an unseen track
(the widths scale with the image: 40 of 512).

``--encoder-width W`` asks the other question of Cremer et al. (2018), whose amortisation gap
shrinks with the encoder's capacity: a *fresh* encoder, every block's filters times W (1 = the same
architecture from scratch, the control), trained against the saved decoder and prior. ``--save DIR``
writes the result as a model folder (the saved decoder and prior, the new encoder and its config).

    python benchmarks/encoder_fit.py --model saved_models/music --data data/singularity --objective elbo --epochs 5
    python benchmarks/encoder_fit.py --model saved_models/music --data data/singularity --encoder-width 2 --lr 1e-3 --epochs 10 --save outputs/music_wide2
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def augment(x, tf, db_range: float):
    """A level change on the sounding pixels, and for half the clips the louder-of-two mix with a
    time-shifted other clip of the batch (images in [0, 1], linear in dB over ``db_range``)."""
    n, frames = tf.shape(x)[0], tf.shape(x)[2]
    gain = tf.random.uniform([n, 1, 1, 1], -10.0, 6.0) / db_range
    x = tf.where(x > 0, tf.clip_by_value(x + gain, 0.0, 1.0), x)
    other = tf.roll(x, shift=tf.random.uniform([], 1, tf.maximum(n, 2), tf.int32), axis=0)
    other = tf.roll(other, shift=tf.random.uniform([], 0, frames, tf.int32), axis=2)
    mix = tf.cast(tf.random.uniform([n, 1, 1, 1]) < 0.5, x.dtype)
    return mix * tf.maximum(x, other) + (1 - mix) * x


def spec_mask(x, tf, n_masks: int = 2, fraction: float = 40 / 512):
    """SpecAugment-style masks, per clip: ``n_masks`` frequency bands and ``n_masks`` time stretches,
    each up to ``fraction`` of its axis wide (40 of 512), set to 0 (silence) in images [n, bins, frames, 1]."""
    n = tf.shape(x)[0]
    keep = tf.ones_like(x)
    for axis in (1, 2):
        size = int(x.shape[axis])
        width = max(1, round(fraction * size))
        pos = tf.range(size)
        for _ in range(n_masks):
            w = tf.random.uniform([n], 0, width + 1, tf.int32)
            start = tf.random.uniform([n], 0, size - width + 1, tf.int32)
            inside = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])  # [n, size]
            shape = [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1]
            keep = keep * tf.reshape(1.0 - tf.cast(inside, x.dtype), shape)
    return x * keep


def main():
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.diagnostics import reconstruction_scores
    from vae_tfp.model.networks import VAE, map_batches, posterior_stats, reconstruction_mean
    from vae_tfp.model.refine import negative_log_posterior
    from vae_tfp.model.saving import load_weights_into, read_model_info, save_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--objective", choices=("elbo", "map"), default="elbo")
    ap.add_argument("--augment", action="store_true")
    ap.add_argument("--mask", action="store_true", help="with --objective map: masked input, clean target")
    ap.add_argument("--encoder-width", type=float, default=None,
                    help="a fresh encoder with every block's filters times this (default: the saved encoder)")
    ap.add_argument("--save", default=None, help="write the result as a model folder here")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4, help="start of the cosine schedule")
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--splits", nargs="+", default=["test", "val", "train"])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="encoder_fit")
    args = ap.parse_args()
    if args.mask and args.objective != "map":
        ap.error("--mask needs --objective map (the clean clip is the target)")
    cfg = read_model_info(args.model).model_config  # the step's loss weighs KL by beta: no warm-up
    if args.encoder_width is not None:
        cfg = cfg.replace(encoder=tuple(b._replace(filters=max(1, round(b.filters * args.encoder_width)))
                                        for b in cfg.encoder))
    data = open_dataset(args.data)
    data.check_config(cfg.spectrogram, args.model)
    keras.utils.set_random_seed(args.seed)
    vae = VAE(cfg, seed=args.seed, xla=True)  # XLA: the upsampling whose gradient XLA compiles
    vae(tf.zeros((1,) + cfg.input_shape))
    load_weights_into(vae, args.model, ("decoder", "prior") if args.encoder_width is not None else
                      ("encoder", "decoder", "prior"))
    frozen_variables = vae.decoder.variables + list(vae.prior.trainable_variables)
    frozen = [v.numpy() for v in frozen_variables]
    mean_image = data.mean_image("train")
    probes = {s: data.load(s, rows=data.sample(s, args.clips, seed=args.seed)).astype(np.float32)
              for s in args.splits if data.n_clips(s)}

    def score() -> dict:
        out = {}
        for split, x in probes.items():
            codes, _ = posterior_stats(vae.encoder, x)
            recons = map_batches(lambda z, _: reconstruction_mean(vae.decoder(z)).numpy(), codes, 16)
            s = reconstruction_scores(x, recons, mean_image, config=data.config)
            out[split] = {"recon_gain": s["recon_gain"], "loudness_corr": s["loudness_corr"],
                          "onset_corr": s["onset_corr"],
                          "prior_log_density": float(np.median(vae.prior.log_prob(codes).numpy()))}
        return out

    steps = args.steps_per_epoch or max(1, data.n_clips("train") // args.batch_size)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * steps))
    variables = vae.encoder.trainable_variables

    @tf.function(jit_compile=True)
    def step(x):
        if args.augment:
            x = augment(x, tf, data.config.db_range)
        with tf.GradientTape() as tape:
            if args.objective == "elbo":
                loss = vae.loss_from(vae._terms(x, training=True), cfg.beta)
            else:
                mu = vae.encoder(spec_mask(x, tf) if args.mask else x, training=True).mean()
                loss = tf.reduce_mean(negative_log_posterior(vae.decoder, vae.prior, x, mu, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rows = [{"epoch": 0, **score()}]
    print(rows[-1], file=sys.stderr, flush=True)
    for epoch in range(1, args.epochs + 1):
        t0, losses = time.perf_counter(), []
        batches = data.tf_dataset("train", batch_size=args.batch_size, seed=args.seed + epoch, drop_remainder=True)
        for x in batches.take(steps):
            losses.append(float(step(x)))
        rows.append({"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0, **score()})
        print(rows[-1], file=sys.stderr, flush=True)
    unchanged = all(np.array_equal(a, v.numpy()) for a, v in zip(frozen, frozen_variables))
    if args.save:
        save_model(vae, args.save, history=rows, training={"benchmark": "encoder_fit", **vars(args)})  # vars: the --model it started from
    emit(args.name, {"benchmark": "encoder_fit", "machine": machine(), "model": args.model, "data": args.data,
                     "objective": args.objective, "augment": args.augment, "mask": args.mask, "lr": args.lr,
                     "encoder_width": args.encoder_width, "encoder_parameters": vae.encoder.count_params(),
                     "batch_size": args.batch_size, "steps_per_epoch": steps, "clips": args.clips,
                     "decoder_and_prior_unchanged": unchanged, "epochs": rows})


if __name__ == "__main__":
    main()
