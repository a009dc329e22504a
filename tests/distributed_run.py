"""Helper process for test_distribute.py: trains the tiny preset under one strategy and prints
the per-epoch losses and a deterministic held-out loss as JSON on the last line.

    python distributed_run.py single|mirrored|multiworker|multiworker-chunks DATA MODEL_DIR
(multiworker reads TF_CONFIG from the environment; multiworker-chunks cuts the shards into chunks of
4 rows, so that each worker reads its own, and records the clips of one epoch of its input.) With the mode ``adversarial-single`` or
``adversarial-mirrored``, stage 1 runs on one device, then the adversarial stage under the strategy,
with the AdversarialConfig fields of the JSON in ``VAE_TFP_ADVERSARIAL`` (default: none changed).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    mode, data, model_dir = sys.argv[1:4]
    adversarial = mode.startswith("adversarial-")
    mode = mode.removeprefix("adversarial-")
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode.startswith("multiworker"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()

    from vae_tfp.config import model_preset
    from vae_tfp.model.training import train

    if adversarial:
        from vae_tfp.model.adversarial import train_adversarial

        train(data, model_dir, model_preset("tiny"), epochs=1, batch_size=8, verbose=0, tensorboard=False,
              log=lambda _: None)
        from vae_tfp.config import AdversarialConfig
        from vae_tfp.model.saving import load_model

        config = AdversarialConfig(**json.loads(os.environ.get("VAE_TFP_ADVERSARIAL", "{}")))
        history = train_adversarial(data, model_dir, epochs=2, batch_size=8, strategy=strategy, verbose=0,
                                    tensorboard=False, deterministic=False, config=config, log=lambda _: None)
        decoder = load_model(model_dir, parts=("decoder",)).decoder
        noise = [float(abs(decoder.get_layer("dec_noise").scale.numpy()).max())] if config.decoder_noise else []
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "noise_scale": noise,
                          **{k: [h[k] for h in history] for k in ("recon", "d_loss", "feature_match", "adv_weight")
                             + (("consistency",) if config.consistency_weight else ())}}))
        return
    positions = []
    if mode == "multiworker-chunks":  # chunks of 4 rows: enough chunks for each worker to read its own
        from vae_tfp.data import dataset

        dataset.CHUNK_BYTES = 4 * 2 * 64 * 64
        tf_dataset = dataset.PreparedDataset.tf_dataset

        def recording(self, split, **kwargs):
            """Records the positions one epoch of this worker's training input holds."""
            if kwargs.get("input_context") is not None:
                once = dict(kwargs, repeat=False, positions=True, drop_remainder=False)
                positions.extend(int(p) for _, at in tf_dataset(self, split, **once) for p in at.numpy())
            return tf_dataset(self, split, **kwargs)

        dataset.PreparedDataset.tf_dataset = recording
    # Deterministic ops are not implemented for every collective; the comparison is statistical.
    history = train(data, model_dir, model_preset("tiny").replace(kl_warmup_steps=0), epochs=2, batch_size=8,
                    strategy=strategy, verbose=0, tensorboard=False, deterministic=False, log=lambda _: None)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "loss": [h["loss"] for h in history], "recon": [h["recon"] for h in history],
                      "kl": [h["kl"] for h in history], "val_neg_elbo": [h["val_neg_elbo"] for h in history],
                      "train_positions": sorted(positions)}))


if __name__ == "__main__":
    main()
