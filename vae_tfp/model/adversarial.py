"""The second training stage: the decoder fine-tuned adversarially, encoder and prior frozen.

After RAVE (Caillon & Esling 2021: learn the representation first, then train the decoder
against a discriminator with the encoder frozen), the GAN vocoders it borrows from (MelGAN,
HiFi-GAN: multi-scale discriminators, feature matching) and VAE-GAN (Larsen et al. 2016). A
pixel-wise likelihood's best guess is the mean of what a code could stand for, so stage 1 draws
vibrato, tremolo, noise and onsets as smooth averages; a discriminator that looks at patches of
the image at several scales tells those averages from real texture, and the decoder learns to
draw texture instead.

The discriminator sees real clips against two kinds of fakes: decoded posterior samples of the
same batch (reconstructions) and decoded prior samples, so that what a user generates sharpens
too. The decoder minimises::

    recon_weight * NLL per pixel  +  adversarial_weight * (adv(post) + adv(prior)) / 2
                                  +  feature_weight * L1(D features of x, D features of its reconstruction)
                                  +  consistency_weight * inconsistency(fakes)   (0 by default)

The reconstruction NLL is the anchor that keeps each code's meaning; feature matching gives the
decoder a stable, paired target in the discriminator's feature space; the consistency term (the
spectral convergence of each decoded image against the signal it makes, phase estimated in the
graph) asks for images that are some signal's magnitudes. The encoder and the prior
are never updated (they are not among the optimised variables), so the fitted prior stays a fit
to the codes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ..audio.metrics import inconsistency_tf
from ..config import AdversarialConfig, ModelConfig
from ..data.dataset import DatasetLike, open_dataset
from ..errors import ConfigError, TrainingError
from ..files import FolderLock, os_error_message
from .callbacks import EpochEnd
from .saving import save_model

ADVERSARIAL_CHECKPOINTS = "adversarial"  # inside the model folder's checkpoints/
LEAK = 0.2  # LeakyReLU slope of the discriminator (MelGAN, HiFi-GAN)


# --- the discriminator ------------------------------------------------------------------------

class FrequencyPosition(keras.layers.Layer):
    """Appends a channel holding each row's frequency position, -1 (lowest bin) to +1 (CoordConv,
    Liu et al. 2018). A convolutional discriminator is blind to where a patch sits; spectrograms
    are not the same at every frequency (noise that is real at 2 kHz is an artefact at 10 kHz)."""

    def call(self, x):
        shape = tf.shape(x)
        ramp = tf.cast(tf.linspace(-1.0, 1.0, shape[1]), x.dtype)[None, :, None, None]
        return tf.concat([x, tf.broadcast_to(ramp, tf.concat([shape[:3], [1]], 0))], axis=-1)


def make_discriminator(model_config: ModelConfig, config: AdversarialConfig) -> keras.Model:
    """A multi-scale patch discriminator on spectrogram images.

    The image is multiplied by ``config.input_scale`` (silence stays 0; None counts as 1 here,
    :func:`train_adversarial` resolves it from the data first), optionally given a frequency
    channel (:class:`FrequencyPosition`). Each scale (the image, then average-pooled by 2 per
    further scale) has ``config.layers`` stride-2 4x4 convs with LeakyReLU, one 3x3 conv and a 3x3
    conv to one channel of patch logits.

    Returns:
        A functional model: float32 [batch, H, W, 1] in [0, 1] → a flat list, per scale, of
        ``config.layers + 1`` hidden feature maps then the logits map [batch, h, w, 1] (float32).
    """
    inputs = keras.Input(shape=model_config.input_shape, name="image")
    x = keras.layers.Rescaling(config.input_scale or 1.0, name="disc_input_scale")(inputs)
    if config.frequency_position:
        x = FrequencyPosition(name="disc_frequency_position")(x)
    outputs = []
    for s in range(config.scales):
        if s:
            x = keras.layers.AveragePooling2D(2, padding="same", name=f"disc{s}_pool")(x)
        h = x
        for i in range(config.layers):
            filters = config.filters * min(2 ** i, 4)
            h = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"disc{s}_conv{i}")(h)
            h = keras.layers.LeakyReLU(LEAK, name=f"disc{s}_act{i}")(h)
            outputs.append(h)
        h = keras.layers.Conv2D(filters, 3, padding="same", name=f"disc{s}_conv{config.layers}")(h)
        h = keras.layers.LeakyReLU(LEAK, name=f"disc{s}_act{config.layers}")(h)
        outputs.append(h)
        outputs.append(keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name=f"disc{s}_logits")(h))
    return keras.Model(inputs, outputs, name="discriminator")


def _per_scale(outputs: list, config: AdversarialConfig) -> list[tuple[list, tf.Tensor]]:
    """The discriminator's flat outputs as (hidden features, logits) per scale."""
    n = config.layers + 2
    return [(outputs[i * n:(i + 1) * n - 1], outputs[(i + 1) * n - 1]) for i in range(config.scales)]


def discriminator_loss(real: tf.Tensor, fake: tf.Tensor, loss: str) -> tf.Tensor:
    """The discriminator's loss on one scale's logits of real and fake images (float32 scalar)."""
    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    return tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake))


def generator_loss(fake: tf.Tensor, loss: str) -> tf.Tensor:
    """The generator's adversarial loss on one scale's logits of fake images (float32 scalar)."""
    fake = tf.cast(fake, tf.float32)
    if loss == "hinge":
        return -tf.reduce_mean(fake)
    return tf.reduce_mean(tf.square(fake - 1.0))


def feature_matching(real_features: list, fake_features: list) -> tf.Tensor:
    """Mean over layers of the mean absolute difference of hidden features (real side without gradient)."""
    terms = [tf.reduce_mean(tf.abs(tf.stop_gradient(tf.cast(r, tf.float32)) - tf.cast(f, tf.float32)))
             for r, f in zip(real_features, fake_features)]
    return tf.add_n(terms) / len(terms)


# --- the stage --------------------------------------------------------------------------------

class AdversarialStage(keras.Model):
    """Stage 2: a frozen encoder and prior, the decoder and a discriminator trained against each other.

    Exposes ``encoder``, ``decoder``, ``prior``, ``config`` and ``noise`` as :class:`~vae_tfp.model.networks.VAE`
    does, so that saving, the diagnostics and the epoch callback take either.

    Metrics (per example or per pixel as named): ``d_loss`` (the discriminator's, averaged over
    scales), ``d_real`` / ``d_fake`` (mean logits of real images and of the fakes), ``adv`` (the
    decoder's adversarial term), ``feature_match``, ``recon`` (−log p(x|z), nats per example, as
    in stage 1), ``consistency`` (with ``consistency_weight``: the fakes' mean in-graph inversion
    inconsistency) and ``loss`` (what the decoder minimises).
    """

    def __init__(self, encoder, decoder, prior, config: ModelConfig, adversarial: AdversarialConfig, *,
                 seed: int = 0, **kwargs):
        super().__init__(name="adversarial_stage", **kwargs)
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.config, self.adversarial = config, adversarial
        self.encoder.trainable = False
        self.discriminator = make_discriminator(config, adversarial)
        self.noise = tf.random.Generator.from_seed(seed + 1)
        self.pixels = float(np.prod(config.input_shape))
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "recon", "adv", "feature_match", "d_loss", "d_real", "d_fake",
                                      "adv_weight") + (("consistency",) if adversarial.consistency_weight else ())}
        self.d_optimizer = None

    def compile(self, *, d_optimizer: keras.optimizers.Optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=False), training=training)

    def _seed(self) -> tf.Tensor:
        return tf.cast(self.noise.make_seeds(1)[:, 0], tf.int32)

    def _terms(self, x, training: bool) -> dict[str, tf.Tensor]:
        cfg = self.adversarial
        q = self.encoder(x, training=False)
        z_post = tf.stop_gradient(q.sample(seed=self._seed()))
        z_prior = tf.stop_gradient(self.prior.sample(tf.shape(x)[0], seed=self._seed()))
        likelihood = self.decoder(z_post, training=training)
        recon = -tf.reduce_mean(tf.cast(likelihood.log_prob(x), tf.float32))
        fakes = {"post": tf.cast(likelihood.mean(), tf.float32),
                 "prior": tf.cast(self.decoder(z_prior, training=training).mean(), tf.float32)}
        real = _per_scale(self.discriminator(x, training=training), cfg)
        fake = {k: _per_scale(self.discriminator(v, training=training), cfg) for k, v in fakes.items()}
        d_loss, adv, d_fake = 0.0, 0.0, 0.0
        for s, (_, real_logits) in enumerate(real):
            for kind in fake:
                logits = fake[kind][s][1]
                d_loss += 0.5 * discriminator_loss(real_logits, logits, cfg.loss)
                adv += 0.5 * generator_loss(logits, cfg.loss)
                d_fake += 0.5 * tf.reduce_mean(tf.cast(logits, tf.float32))
        n = float(cfg.scales)
        fm = tf.add_n([feature_matching(real[s][0], fake["post"][s][0]) for s in range(cfg.scales)]) / n
        anchor = cfg.recon_weight * recon / self.pixels + cfg.feature_weight * fm
        extra = {}
        if cfg.consistency_weight:
            extra["consistency"] = tf.reduce_mean(inconsistency_tf(tf.concat(list(fakes.values()), 0),
                                                                   self.config.spectrogram))
            anchor += cfg.consistency_weight * extra["consistency"]
        d_real = tf.add_n([tf.reduce_mean(tf.cast(r[1], tf.float32)) for r in real]) / n
        weight = tf.constant(cfg.adversarial_weight, tf.float32)
        return {"loss": anchor + weight * adv / n, "recon": recon, "adv": adv / n, "feature_match": fm,
                "d_loss": d_loss / n, "d_real": d_real, "d_fake": d_fake / n, "anchor": anchor, "adv_weight": weight,
                **extra}

    @staticmethod
    def _scaled(optimizer, loss):
        """The loss a replica differentiates: its share of the global mean, loss-scaled under mixed_float16."""
        scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            scaled = optimizer.get_scaled_loss(scaled)
        return scaled

    @staticmethod
    def _gradients(optimizer, tape, scaled, variables):
        """The gradients of a loss from :meth:`_scaled`, unscaled again under mixed_float16."""
        grads = tape.gradient(scaled, variables)
        if isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer):
            grads = optimizer.get_unscaled_gradients(grads)
        return grads

    @classmethod
    def _apply(cls, optimizer, tape, scaled, variables):
        optimizer.apply_gradients(zip(cls._gradients(optimizer, tape, scaled, variables), variables))

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        adaptive = self.adversarial.adaptive_weight
        with tf.GradientTape(persistent=adaptive) as g_tape, tf.GradientTape() as d_tape:
            terms = self._terms(x, training=True)
            d_scaled = self._scaled(self.d_optimizer, terms["d_loss"])
            if adaptive:
                parts = [self._scaled(self.optimizer, terms["anchor"]), self._scaled(self.optimizer, terms["adv"])]
            else:
                g_scaled = self._scaled(self.optimizer, terms["loss"])
        self._apply(self.d_optimizer, d_tape, d_scaled, self.discriminator.trainable_variables)
        if adaptive:
            terms = self._adaptive_step(g_tape, parts, terms)
        else:
            self._apply(self.optimizer, g_tape, g_scaled, self.decoder.trainable_variables)
        return self._update(terms)

    def _adaptive_step(self, tape, parts, terms):
        """VQGAN's adaptive weight: lambda = |grad anchor| / (|grad adv| + 1e-4) at the decoder's last
        kernel, clipped to [0, 1e4], no gradient through it; the decoder follows anchor + w * lambda * adv."""
        variables = self.decoder.trainable_variables
        anchor, adv = (self._gradients(self.optimizer, tape, part, variables) for part in parts)
        last = max(i for i, v in enumerate(variables) if len(v.shape) == 4)  # the output conv's kernel
        ratio = tf.norm(tf.cast(anchor[last], tf.float32)) / (tf.norm(tf.cast(adv[last], tf.float32)) + 1e-4)
        weight = tf.stop_gradient(tf.clip_by_value(ratio, 0.0, 1e4)) * self.adversarial.adversarial_weight
        # every decoder variable gets a gradient from both terms (tested)
        combined = [a + b * tf.cast(weight, b.dtype) for a, b in zip(anchor, adv)]
        self.optimizer.apply_gradients(zip(combined, variables))
        return {**terms, "loss": terms["anchor"] + weight * terms["adv"], "adv_weight": weight}

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        return self._update(self._terms(x, training=False))

    def _update(self, terms):
        for name, value in terms.items():
            if name in self.trackers:
                self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}


def make_adversarial_optimizers(config: AdversarialConfig, *, mixed_float16: bool = False):
    """Adam for the decoder and the discriminator at their own rates (beta_1 0.5, beta_2 0.9, as in
    GAN practice); under ``mixed_float16`` the discriminator's is loss-scaled (Keras' ``compile``
    scales the decoder's itself)."""
    g_opt = keras.optimizers.Adam(config.learning_rate, beta_1=0.5, beta_2=0.9)
    d_opt = keras.optimizers.Adam(config.discriminator_learning_rate, beta_1=0.5, beta_2=0.9)
    if mixed_float16:
        d_opt = keras.mixed_precision.LossScaleOptimizer(d_opt)
    return g_opt, d_opt


# --- training ---------------------------------------------------------------------------------

def input_scale_of(dataset, record: dict | None = None, *, n: int = 64) -> float:
    """The discriminator's input scale for ``config.input_scale=None``: the one a stage-2 record
    holds, else ``1 / std`` of the first ``n`` training images (deterministic for a dataset)."""
    if record and record.get("config", {}).get("input_scale"):
        return float(record["config"]["input_scale"])
    std = float(np.std(dataset.load("train", limit=n)))
    return float(f"{1.0 / max(std, 1e-3):.4g}")


class AdversarialEpochEnd(EpochEnd):
    """Stage 2's epoch end: as stage 1's (NaN guard, diagnostics, history, checkpoint, TensorBoard),
    but the model folder is exported after every epoch (a GAN has no best epoch by a loss), with
    the discriminator, the stage-1 decoder and the stage's record, stage 1's history kept first."""

    def __init__(self, *, stage1_history, stage1_decoder, records, **kwargs):
        super().__init__(**kwargs)
        self.stage1_history, self.stage1_decoder, self.records = stage1_history, stage1_decoder, records

    def _record(self, epoch, logs) -> dict:
        return {"stage": 2, **super()._record(epoch, logs)}

    def _verdict(self, record) -> dict:
        """Stage 2 has no verdict by a loss (a GAN's losses do not fall to a best epoch, and stage 1's
        validation neg-ELBO is not computed): the line says what the anchor keeps instead, the
        held-out recon_gain beside stage 1's last, and where the judgement lies."""
        now = record.get("recon_gain")
        then = next((h.get("recon_gain") for h in reversed(self.stage1_history) if h.get("recon_gain") is not None),
                    None)
        kept = (f"validation recon_gain {now:.2f}" + (f" (stage 1 ended at {then:.2f})" if then is not None else "")
                if now is not None else "no validation recon_gain")
        return {"state": "stage 2", "text": f"stage 2: {kept}; every epoch is saved, as a GAN has no best epoch "
                                            f"by a loss: judge it with `vae-tfp evaluate --samples`"}

    def _export(self, epoch, record) -> None:
        records = dict(self.records)
        records["adversarial"] = {**records["adversarial"], "epochs": epoch + 1}
        save_model(self.vae, self.model_dir, history=self.stage1_history + self.history,
                   manifest_hash=records.pop("training_manifest_sha256"), training=records.pop("training"),
                   discriminator=self.vae.discriminator, stage1_decoder=self.stage1_decoder, records=records)


def stage_two_decoder(cfg: ModelConfig, file, *, noise: bool, from_stage_one: bool, noise_gain: float = 1.0,
                      xla: bool = False) -> keras.Model:
    """The decoder stage 2 trains, its weights read from ``file``. With a noise input
    (``AdversarialConfig.decoder_noise``) started from a stage-1 file, which does not hold it: the
    stage-1 weights copied layer by layer, the noise scale left at 0, so the stage starts as stage 1 ended."""
    from .networks import make_decoder
    from .saving import _load_keras_weights

    decoder = make_decoder(cfg, xla=xla, noise=noise, noise_gain=noise_gain)
    if not (noise and from_stage_one):
        _load_keras_weights(decoder, file)
        return decoder
    plain = make_decoder(cfg, xla=xla)
    _load_keras_weights(plain, file)
    for layer in plain.layers:
        decoder.get_layer(layer.name).set_weights(layer.get_weights())
    return decoder


def train_adversarial(
    data: DatasetLike,
    model_dir: str | os.PathLike,
    *,
    epochs: int,
    config: AdversarialConfig = AdversarialConfig(),
    batch_size: int = 8,
    resume: bool = False,
    seed: int = 0,
    strategy: tf.distribute.Strategy | None = None,
    steps_per_epoch: int | None = None,
    val_examples: int = 64,
    jit_compile: bool = False,
    mixed_precision: str | None = None,
    deterministic: bool | None = None,
    tensorboard: bool = True,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Stage 2 on a trained model folder: fine-tunes its decoder adversarially, in place.

    The stage starts from the decoder stage 1 left (kept as ``decoder_stage1.weights.h5``), with
    the folder's encoder and prior frozen. Every epoch is checkpointed in
    ``model_dir/checkpoints/adversarial`` and exported to the folder (the decoder, the
    discriminator and ``config.json``'s ``"adversarial"`` record). ``resume`` continues from the
    last checkpoint, or without one from the folder's own stage-2 decoder and discriminator.

    Args:
        data: The prepared dataset the real clips come from (its train split; validation on ``val``).
        model_dir: A trained model folder (stage 1 done).
        epochs: Total stage-2 epochs (with ``resume``: including those already done).
        config: The discriminator and the loss weights.
        batch_size, seed, strategy, steps_per_epoch, val_examples, jit_compile, mixed_precision,
        deterministic, tensorboard, verbose, log: As :func:`vae_tfp.model.training.train`.

    Returns:
        Stage 2's per-epoch history (stage 1's stays before it in ``model_dir/history.json``).

    Raises:
        ModelFileError: the folder is not a model, or a weight file is missing or corrupt.
        ConfigError: the dataset's spectrogram is not the model's.
        TrainingError: a stage-2 run exists and ``resume`` is false; NaN losses.
    """
    from .devices import determinism_plan, describe_devices
    from .networks import make_encoder
    from .prior import make_prior
    from .saving import (CHECKPOINTS, DISCRIMINATOR_FILE, HISTORY, STAGE1_DECODER_FILE, _check_file,
                         _load_keras_weights, load_prior_weights, read_model_info)
    from .training import _restores_global_state, check_run_config

    @_restores_global_state
    def run():
        nonlocal strategy, config
        info = read_model_info(model_dir)
        path = info.path
        cfg = info.model_config
        dataset = open_dataset(data)
        dataset.check_config(cfg.spectrogram, "the model")
        ckpt_dir = path / CHECKPOINTS / ADVERSARIAL_CHECKPOINTS
        done_record = info.raw.get("adversarial")
        if config.input_scale is None:
            config = config.replace(input_scale=input_scale_of(dataset, done_record))
        has_ckpt = bool(tf.train.latest_checkpoint(os.fspath(ckpt_dir))) if ckpt_dir.is_dir() else False
        if not resume and (has_ckpt or done_record):
            raise TrainingError(f"{path}: already has an adversarial stage; use --resume to continue it")
        stage1 = STAGE1_DECODER_FILE if STAGE1_DECODER_FILE in info.raw["files"] else "decoder.weights.h5"
        start_decoder = "decoder.weights.h5" if (resume and done_record and not has_ckpt) else stage1
        files = {"encoder": _check_file(info, "encoder"), "prior": _check_file(info, "prior"),
                 "decoder": _check_file(info, "decoder", start_decoder), "stage1": _check_file(info, "decoder", stage1)}
        if resume and done_record and not has_ckpt:
            files["discriminator"] = _check_file(info, "decoder", DISCRIMINATOR_FILE)
        if done_record and AdversarialConfig.from_dict(done_record["config"]) != config and resume:
            raise TrainingError(f"{path}: cannot resume the adversarial stage with another configuration "
                                f"(it was trained with {done_record['config']})")
        plan = determinism_plan(deterministic, jit_compile)
        if plan["op_determinism"]:
            tf.config.experimental.enable_op_determinism()
        keras.mixed_precision.set_global_policy(mixed_precision or "float32")
        log(f"adversarial stage on {describe_devices()}; op determinism {'on' if plan['op_determinism'] else 'off'}")
        strategy = strategy or tf.distribute.get_strategy()
        keras.utils.set_random_seed(seed)
        with strategy.scope():
            encoder = make_encoder(cfg)
            decoder = stage_two_decoder(cfg, files["decoder"], noise=config.decoder_noise,
                                        noise_gain=config.noise_lr_multiplier, from_stage_one=start_decoder == stage1,
                                        xla=plan["broadcast_upsampling"])
            prior = make_prior(cfg.latent_dim, cfg.num_modes)
            load_prior_weights(prior, files["prior"])
            _load_keras_weights(encoder, files["encoder"])
            stage = AdversarialStage(encoder, decoder, prior, cfg, config, seed=seed)
            if "discriminator" in files:
                _load_keras_weights(stage.discriminator, files["discriminator"])
            g_opt, d_opt = make_adversarial_optimizers(config, mixed_float16=mixed_precision == "mixed_float16")
            stage.compile(optimizer=g_opt, d_optimizer=d_opt, jit_compile=jit_compile)
            stage(tf.zeros((1,) + cfg.input_shape))
            stage.optimizer.build(stage.decoder.trainable_variables)
            stage.d_optimizer.build(stage.discriminator.trainable_variables)
            epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=stage, optimizer=stage.optimizer, d_optimizer=stage.d_optimizer,
                                         epoch=epoch_var)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        check_run_config(ckpt_dir, cfg, adversarial=config)
        manager = tf.train.CheckpointManager(checkpoint, os.fspath(ckpt_dir), max_to_keep=2)
        history: list[dict] = []
        if resume and manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            if (ckpt_dir / HISTORY).exists():
                history = [h for h in json.loads((ckpt_dir / HISTORY).read_text())
                           if h["epoch"] <= int(epoch_var.numpy())]
        elif resume and done_record:
            epoch_var.assign(int(done_record.get("epochs", 0)))
            history = [h for h in json.loads((path / HISTORY).read_text()) if h.get("stage") == 2] \
                if (path / HISTORY).is_file() else []
        initial = int(epoch_var.numpy())
        if initial >= epochs:
            log(f"{path}: adversarial stage already trained for {initial} epochs")
            return history
        stage1_history = [h for h in json.loads((path / HISTORY).read_text()) if h.get("stage", 1) == 1] \
            if (path / HISTORY).is_file() else []
        records = {k: v for k, v in info.raw.items() if k not in ("format", "model_config", "versions", "files")}
        records.setdefault("training", {})
        records.setdefault("training_manifest_sha256", None)
        records["adversarial"] = {"config": config.to_dict(), "epochs": initial, "batch_size": batch_size,
                                  "seed": seed, "data_sha256": dataset.sha256}
        # the stage-1 decoder is read once, into the checkpoint folder, and copied into every export
        stage1_copy = ckpt_dir / STAGE1_DECODER_FILE
        if not stage1_copy.is_file():
            import shutil

            shutil.copyfile(files["stage1"], stage1_copy)
        train_ds = dataset.tf_dataset("train", batch_size=batch_size, seed=seed, drop_remainder=True,
                                      repeat=steps_per_epoch is not None)
        val_x = dataset.load("val", limit=val_examples) if dataset.n_clips("val") else \
            dataset.load("train", limit=val_examples)
        writer = tf.summary.create_file_writer(os.fspath(ckpt_dir / "logs" / "diagnostics")) if tensorboard else None
        end = AdversarialEpochEnd(vae=stage, manager=manager, epoch_var=epoch_var, history=history, model_dir=path,
                                 data_hash=dataset.sha256, val_x=val_x, train_mean=dataset.mean_image(), log=log,
                                 writer=writer, image_x=val_x[:4], stage1_history=stage1_history,
                                 stage1_decoder=stage1_copy, records=records)
        end.best = -np.inf  # no best epoch: every epoch is exported
        callbacks = [keras.callbacks.TerminateOnNaN(), end]
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.fspath(ckpt_dir / "logs"), write_graph=False,
                                                         profile_batch=0))
        if dataset.n_clips("train") < batch_size:
            raise TrainingError(f"{dataset.path}: the train split has {dataset.n_clips('train')} clips, fewer than "
                                f"--batch-size {batch_size}; the adversarial stage trains on full batches")
        log(f"adversarial stage of {path} on {dataset.n_clips('train')} clips, epochs {initial + 1}..{epochs} "
            f"(discriminator input x {config.input_scale:g})")
        stage.fit(train_ds, epochs=epochs, initial_epoch=initial, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, verbose=verbose)
        return history

    model_dir = Path(model_dir)
    try:
        lock = FolderLock(model_dir, what="--model folder", log=log).acquire()
    except OSError as err:
        raise TrainingError(f"cannot write the model folder: {os_error_message(err, model_dir)}") from None
    try:
        return run()
    except OSError as err:
        raise TrainingError(f"cannot write the model folder: {os_error_message(err, model_dir)}") from None
    finally:
        lock.release()
