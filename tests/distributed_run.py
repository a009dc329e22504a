"""Helper process for test_distribute.py: trains the tiny preset under several strategies in one
process (one TensorFlow start-up for all of them) and prints, as JSON on the last line, each run's
per-epoch losses and a deterministic held-out loss, keyed by the run's name.

    python distributed_run.py local|multiworker DATA ROOT

``local``: two logical CPU devices, then the runs ``single`` (one device) and ``mirrored``
(MirroredStrategy over both), then the adversarial stage on one stage-1 model: ``adversarial-single``,
``adversarial-mirrored`` and ``adversarial-variants`` (mirrored, with the AdversarialConfig fields of
:data:`VARIANTS`). ``multiworker`` (TF_CONFIG from the environment): the runs ``multiworker`` and
``multiworker-chunks`` (the shards cut into chunks of 4 rows, so that each worker reads its own; it
records the clips of one epoch of its input). Each run writes its model to ROOT/<run name>.
"""

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The adaptive weight (its gradients taken per replica), the decoder's noise input (its random op and
# its zero-started scale) and the consistency term (FFTs per replica).
VARIANTS = {"adaptive_weight": True, "decoder_noise": True, "consistency_weight": 1.0}


def stage_one(data, model_dir, strategy, positions=None):
    """Two epochs of stage 1 under ``strategy``; the losses per epoch."""
    from vae_tfp.config import model_preset
    from vae_tfp.model.training import train

    # Deterministic ops are not implemented for every collective; the comparison is statistical.
    history = train(data, model_dir, model_preset("tiny").replace(kl_warmup_steps=0), epochs=2, batch_size=8,
                    strategy=strategy, verbose=0, tensorboard=False, deterministic=False, log=lambda _: None)
    return {"replicas": strategy.num_replicas_in_sync,
            "loss": [h["loss"] for h in history], "recon": [h["recon"] for h in history],
            "kl": [h["kl"] for h in history], "val_neg_elbo": [h["val_neg_elbo"] for h in history],
            "train_positions": sorted(positions or [])}


def stage_two(data, model_dir, strategy, variants=None):
    """Two epochs of the adversarial stage under ``strategy`` on the stage-1 model in ``model_dir``."""
    from vae_tfp.config import AdversarialConfig
    from vae_tfp.model.adversarial import train_adversarial
    from vae_tfp.model.saving import load_model

    config = AdversarialConfig(**(variants or {}))
    history = train_adversarial(data, model_dir, epochs=2, batch_size=8, strategy=strategy, verbose=0,
                                tensorboard=False, deterministic=False, config=config, log=lambda _: None)
    decoder = load_model(model_dir, parts=("decoder",)).decoder
    noise = [float(abs(decoder.get_layer("dec_noise").scale.numpy()).max())] if config.decoder_noise else []
    return {"replicas": strategy.num_replicas_in_sync, "noise_scale": noise,
            **{k: [h[k] for h in history] for k in ("recon", "d_loss", "feature_match", "adv_weight")
               + (("consistency",) if config.consistency_weight else ())}}


def local(data, root):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    single, mirrored = tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"single": stage_one(data, root / "single", single), "mirrored": stage_one(data, root / "mirrored", mirrored)}

    from vae_tfp.config import model_preset
    from vae_tfp.model.training import train

    stage1 = root / "stage1"
    train(data, stage1, model_preset("tiny"), epochs=1, batch_size=8, verbose=0, tensorboard=False, log=lambda _: None)
    for name, strategy, variants in (("adversarial-single", single, None), ("adversarial-mirrored", mirrored, None),
                                     ("adversarial-variants", mirrored, VARIANTS)):
        shutil.copytree(stage1, root / name)
        out[name] = stage_two(data, root / name, strategy, variants)
    return out


def multiworker(data, root):
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    out = {"multiworker": stage_one(data, root / "multiworker", strategy)}

    from vae_tfp.data import dataset

    dataset.CHUNK_BYTES = 4 * 2 * 64 * 64  # chunks of 4 rows: enough chunks for each worker to read its own
    tf_dataset, positions = dataset.PreparedDataset.tf_dataset, []

    def recording(self, split, **kwargs):
        """Records the positions one epoch of this worker's training input holds."""
        if kwargs.get("input_context") is not None:
            once = dict(kwargs, repeat=False, positions=True, drop_remainder=False)
            positions.extend(int(p) for _, at in tf_dataset(self, split, **once) for p in at.numpy())
        return tf_dataset(self, split, **kwargs)

    dataset.PreparedDataset.tf_dataset = recording
    out["multiworker-chunks"] = stage_one(data, root / "multiworker-chunks", strategy, positions)
    return out


def main():
    mode, data, root = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    print(json.dumps({"local": local, "multiworker": multiworker}[mode](data, root)))


if __name__ == "__main__":
    main()
