"""How fast a decoder alone can fit the training images from fixed codes.

Separates the decoder's capacity from the encoder's information: each training image gets a
fixed code (``--codes random``: an independent N(0, I) draw, so every image is distinguishable;
``--codes MODEL``: the posterior means of a saved model's encoder) and a freshly initialised
decoder of a preset is trained on (code, image) pairs with the Bernoulli NLL, no KL, no noise.
Reports recon_gain on the first 64 training images after every epoch (progress on stderr); with
``--codes MODEL`` also on 64 clips of ``--held-out`` (the encoder's codes of clips no decoder saw),
beside the saved model's own decoder on the same codes: a fresh decoder that passes the model's
own on the training clips but not on held-out ones says the held-out codes lack the detail, not
that the decoder cannot draw it.

    python benchmarks/decoder_fit.py --preset default --codes random --epochs 15
    python benchmarks/decoder_fit.py --data data/singularity --preset music --codes saved_models/music --epochs 8
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
    ap.add_argument("--held-out", default="test", help="split probed with --codes MODEL (default: test)")
    ap.add_argument("--name", default="decoder_fit")
    args = ap.parse_args()
    cfg = load_config(args.preset)
    keras.utils.set_random_seed(args.seed)
    data = open_dataset(args.data)
    x = data.load("train")
    probes = {}
    if args.codes == "random":
        z = np.random.default_rng(args.seed + 1).standard_normal((len(x), cfg.latent_dim)).astype(np.float32)
    else:
        saved = load_model(args.codes, parts=("encoder", "decoder"))
        z, _ = posterior_stats(saved.encoder, x)
        held_x = data.load(args.held_out, rows=data.sample(args.held_out, 64, seed=args.seed))
        probes[args.held_out] = (posterior_stats(saved.encoder, held_x)[0], held_x)
    probes = {"train": (z[:64], x[:64]), **probes}
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

    def recon_gain(net, split):
        probe_z, probe_x = probes[split]
        r = map_batches(lambda b, _: reconstruction_mean(net(b)).numpy(), probe_z, 16)
        return round(float(((probe_x - mu) ** 2).mean() / ((probe_x - r) ** 2).mean()), 3)

    own = {} if args.codes == "random" else {f"{split}_recon_gain": recon_gain(saved.decoder, split) for split in probes}
    if own:
        print({"the model's own decoder": own}, file=sys.stderr, flush=True)

    rng, bs, rows, t0 = np.random.default_rng(args.seed), args.batch_size, [], time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order, losses = rng.permutation(len(x)), []
        for i in range(0, len(order) - bs + 1, bs):
            b = order[i:i + bs]
            losses.append(float(step(tf.constant(z[b]), tf.constant(x[b]))))
        rows.append({"epoch": epoch, "nll_nats": round(float(np.mean(losses)), 1),
                     **{f"{split}_recon_gain": recon_gain(decoder, split) for split in probes},
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], file=sys.stderr, flush=True)
    emit(args.name, {"benchmark": "decoder_fit", "machine": machine(), "data": args.data, "preset": cfg.name,
                     "codes": args.codes, "batch_size": bs, "learning_rate": args.lr or cfg.learning_rate,
                     "model_decoder": own, "epochs": rows})


if __name__ == "__main__":
    main()
