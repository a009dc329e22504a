"""How fast a decoder alone can fit the training images from fixed codes.

Separates the decoder's capacity from the encoder's information: each training image gets a
fixed code (``--codes random``: an independent N(0, I) draw, so every image is distinguishable;
``--codes MODEL``: the posterior means of a saved model's encoder) and a freshly initialised
decoder of a preset is trained on (code, image) pairs with the Bernoulli NLL, no KL, no noise.
Reports recon_gain on the first 64 training images after every epoch (progress on stderr).

    python benchmarks/decoder_fit.py --preset default --codes random --epochs 15
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402
from train_throughput import load_config  # noqa: E402


def main():
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.networks import make_decoder, map_batches, posterior_stats, reconstruction_mean
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--preset", default="default", help="preset name or model config JSON")
    ap.add_argument("--codes", default="random", help="'random' or a saved model folder")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=None, help="default: the config's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="decoder_fit")
    args = ap.parse_args()
    cfg = load_config(args.preset)
    keras.utils.set_random_seed(args.seed)
    data = open_dataset(args.data)
    x = data.load("train")
    if args.codes == "random":
        z = np.random.default_rng(args.seed + 1).standard_normal((len(x), cfg.latent_dim)).astype(np.float32)
    else:
        encoder = load_model(args.codes, parts=("encoder",)).encoder
        z, _ = posterior_stats(encoder, x)
    mu = data.mean_image()
    decoder = make_decoder(cfg, xla=True)
    optimizer = keras.optimizers.Adam(args.lr or cfg.learning_rate)

    @tf.function(jit_compile=True)
    def step(zb, xb):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(decoder(zb, training=True).log_prob(xb))
        grads = tape.gradient(loss, decoder.trainable_variables)
        optimizer.apply_gradients(zip(grads, decoder.trainable_variables))
        return loss

    probe_z, probe_x = z[:64], x[:64]

    def recon_gain():
        r = map_batches(lambda b, _: reconstruction_mean(decoder(b)).numpy(), probe_z, 16)
        return float(((probe_x - mu) ** 2).mean() / ((probe_x - r) ** 2).mean())

    rng, bs, rows, t0 = np.random.default_rng(args.seed), args.batch_size, [], time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, losses = rng.permutation(len(x)), []
        for i in range(0, len(order) - bs + 1, bs):
            b = order[i:i + bs]
            losses.append(float(step(tf.constant(z[b]), tf.constant(x[b]))))
        rows.append({"epoch": epoch, "nll_nats": round(float(np.mean(losses)), 1),
                     "train_recon_gain": round(recon_gain(), 3), "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], file=sys.stderr, flush=True)
    emit(args.name, {"benchmark": "decoder_fit", "machine": machine(), "data": args.data, "preset": cfg.name,
                     "codes": args.codes, "batch_size": bs, "learning_rate": args.lr or cfg.learning_rate,
                     "epochs": rows})


if __name__ == "__main__":
    main()
