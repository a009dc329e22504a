"""Training examples/s of a model fed by the training input before issue #25 (the split cached,
cast to float32, shuffled through a buffer as large as the split) and by today's, cached and
streamed (budget 0), timed in turns in one process: the same model takes ``--steps`` train steps
from each input in turn, ``--rounds`` times, the order rotated every round; the first step of
each input is not timed.

    python benchmarks/input_vs_training.py --data data/notes --preset default --batch-size 8 --rounds 9 --steps 12
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def input_before_25(data, batch_size: int, seed: int = 0):
    """The training input as it was (vae_tfp 5f8e6c9, ``PreparedDataset.tf_dataset``), for comparison."""
    import numpy as np
    import tensorflow as tf

    files = [os.fspath(f) for f in data.shard_files("train")]
    shape = data.config.shape[:2]

    def read(file):
        images = tf.numpy_function(lambda f: np.load(f.decode(), allow_pickle=False), [file], tf.float16)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(images, (None,) + shape))

    ds = tf.data.Dataset.from_tensor_slices(files).interleave(read, cycle_length=min(4, len(files)),
                                                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.cache().map(lambda x: tf.cast(x, tf.float32)[..., None], num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.shuffle(data.n_clips("train"), seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def main():
    import numpy as np
    import tf_keras as keras

    from vae_tfp.config import model_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.model.networks import VAE, make_optimizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = open_dataset(args.data)
    inputs = {
        "before #25 (cached, float32 buffer of the split)": input_before_25(data, args.batch_size),
        "now, cached (fits the budget)": data.tf_dataset("train", batch_size=args.batch_size, repeat=True,
                                                        drop_remainder=True),
        "now, streamed (memory_budget=0)": data.tf_dataset("train", batch_size=args.batch_size, repeat=True,
                                                          drop_remainder=True, memory_budget=0),
    }
    iterators = {name: iter(ds) for name, ds in inputs.items()}
    config = model_preset(args.preset).for_spectrogram(data.config)
    keras.utils.set_random_seed(0)
    vae = VAE(config, seed=0)
    vae.compile(optimizer=make_optimizer(config))
    times = {name: [] for name in inputs}
    for it in iterators.values():
        vae.train_on_batch(next(it))  # traces the step; fills each input's cache or buffer
    names = list(iterators)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each input takes each place in turn
            it = iterators[name]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                vae.train_on_batch(next(it))
            times[name].append(args.batch_size * args.steps / (time.perf_counter() - t0))
    out = {"benchmark": "input_vs_training", "machine": machine(), "data": args.data, "preset": args.preset,
           "batch_size": args.batch_size, "steps_per_turn": args.steps, "rounds": args.rounds,
           "train_clips": data.n_clips("train"),
           "results": {name: {"examples_per_s_mean": round(float(np.mean(r)), 3),
                              "examples_per_s_per_round": [round(x, 3) for x in r]} for name, r in times.items()}}
    emit("input_vs_training", out)


if __name__ == "__main__":
    main()
