"""Training a VAE on a prepared dataset.

``train`` runs Keras ``fit`` on a prepared dataset with: a checkpoint every epoch (model,
optimizer and epoch counter, via ``tf.train.CheckpointManager``) and ``resume`` continuing at the
next epoch; the best model by validation negative ELBO exported as a model folder; TensorBoard
logs; the collapse diagnostics every epoch; a NaN guard; optional early stopping. It works inside
any ``tf.distribute`` strategy scope. Seeded, and deterministic on CPU.

The per-epoch work is :class:`vae_tfp.model.callbacks.EpochEnd`; devices, determinism and
out-of-memory messages are :mod:`vae_tfp.model.devices`; the diagnostics and ``evaluate`` are
:mod:`vae_tfp.evaluation.diagnostics`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import tensorflow as tf
import tf_keras as keras

from ..config import LR_SCHEDULES, ModelConfig
from ..data.dataset import SUBSET_CLIPS, DatasetLike, open_dataset
from ..errors import ConfigError, DatasetError, ModelFileError, TrainingError
from ..files import FolderLock, is_disk_full, os_error_message, remove, write_json_atomic
from .callbacks import EpochEnd
from .devices import describe_devices, determinism_plan, out_of_memory_message
from .networks import VAE, make_optimizer
from .previews import Previews, check_every, reference_sets
from .saving import CHECKPOINTS, HISTORY, load_weights_into, read_model_info, recover_interrupted_save

VALIDATION_CLIPS = SUBSET_CLIPS  # per-epoch validation: a fixed, seeded subset of the validation split


RUN_CONFIG = "run_config.json"


def check_run_config(ckpt_dir: Path, config: ModelConfig, *, adversarial=None, run: dict | None = None) -> None:
    """Writes the run's model config (and the adversarial stage's config, for that stage, and the
    run's set-up when it is not the default: ``run``) beside its checkpoints; on resume, refuses others."""
    file = ckpt_dir / RUN_CONFIG
    current = {"model_config": config.to_dict()}
    if adversarial is not None:
        current["adversarial"] = adversarial.to_dict()
    if run:
        current["run"] = run
    if file.is_file():
        saved = json.loads(file.read_text())
        if adversarial is not None and "adversarial" in saved:  # a field added since ran with its default
            saved["adversarial"] = {**type(adversarial)().to_dict(), **saved["adversarial"]}
        model = saved.setdefault("model_config", {})
        if not model.get("free_nats", 1):  # model format 1 wrote free_nats = 0
            del model["free_nats"]
        if "spectrogram_config" in saved:  # formats 1 and 2 kept it beside the model config, with its shape
            model.pop("input_shape", None)
            model["spectrogram"] = saved.pop("spectrogram_config")
        differ = [f"{part}.{k}" for part in current for k in sorted(set(current[part]) | set(saved.get(part, {})))
                  if current[part].get(k) != saved.get(part, {}).get(k)]
        if differ:
            raise TrainingError(f"{ckpt_dir.parent}: cannot resume with another configuration; these differ from the "
                                f"checkpointed run: {', '.join(differ)} (use another --model folder)")
        return
    write_json_atomic(file, current)


def _restores_global_state(fn):
    """Puts the mixed-precision policy and op determinism back as they were, however ``fn`` ends
    (an error, a KeyboardInterrupt in a notebook), so a kernel is never left in another mode."""
    from tensorflow.python.framework import config as tf_config

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        policy = keras.mixed_precision.global_policy().name
        determinism = tf_config.is_op_determinism_enabled()
        try:
            return fn(*args, **kwargs)
        finally:
            keras.mixed_precision.set_global_policy(policy)
            if determinism != tf_config.is_op_determinism_enabled():
                (tf_config.enable_op_determinism if determinism else tf_config.disable_op_determinism)()

    return wrapper


@_restores_global_state
def train(
    data: DatasetLike,
    model_dir: str | os.PathLike,
    config: ModelConfig,
    *,
    epochs: int,
    batch_size: int = 16,
    resume: bool = False,
    seed: int = 0,
    strategy: tf.distribute.Strategy | None = None,
    early_stopping_patience: int | None = None,
    steps_per_epoch: int | None = None,
    val_examples: int = 64,
    jit_compile: bool = False,
    mixed_precision: str | None = None,
    deterministic: bool | None = None,
    clip_norm: float | None = None,
    tensorboard: bool = True,
    fit_prior: bool = False,
    previews: int | str | None = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    lr_schedule: str = "constant",
    init_from: str | os.PathLike | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Trains a VAE on a prepared dataset and exports the best model to ``model_dir``.

    Args:
        data: A dataset from :func:`vae_tfp.prepare_dataset` (its folder or the opened
            :class:`~vae_tfp.data.dataset.PreparedDataset`; the manifest is read once). The model
            is built for its spectrogram config, which the architecture must fit.
        model_dir: Output model folder (``saved_models/NAME``).
        config: The architecture and loss settings (its ``spectrogram`` is replaced by the data's).
        epochs: Total epochs (with ``resume``: including those already done).
        batch_size: Global batch size (split across replicas under a strategy).
        resume: Continue from the last checkpoint in ``model_dir/checkpoints``.
        seed: Seeds weights, shuffling and sampling.
        strategy: A ``tf.distribute`` strategy; default the current one.
        early_stopping_patience: Stop when validation neg-ELBO has not improved for this many epochs.
        steps_per_epoch: Limit batches per epoch (default: the whole training split).
        val_examples: Validation images used for the per-epoch diagnostics.
        jit_compile: Compile the train step with XLA.
        mixed_precision: ``"mixed_float16"`` (GPUs) or ``"mixed_bfloat16"`` (TPUs, recent CPUs/GPUs):
            convolutions in half precision; the distribution layers and the loss stay float32.
        deterministic: TensorFlow op determinism (bitwise reproducible runs). None: on without a
            GPU, off with one; True on a GPU switches the decoder to an upsampling whose gradient
            has a deterministic GPU kernel (:func:`determinism_plan`). Never with ``jit_compile``.
            The policy and determinism are restored when training ends or fails.
        clip_norm: Clip the gradients to this global norm (:func:`vae_tfp.model.networks.make_optimizer`); None: off.
        tensorboard: Write TensorBoard logs to ``model_dir/checkpoints/logs``.
        fit_prior: At the end, refit the exported model's prior to the codes of the training
            split (:func:`vae_tfp.model.prior_fit.fit_prior_saved`).
        previews: Hear it learn (:mod:`vae_tfp.model.previews`): every how many epochs fixed prior
            draws and reconstructions are decoded, inverted and written to ``model_dir/previews``
            and TensorBoard, with ``samples_fd`` in the history; ``"auto"``: whenever the previews
            stay within 10 % of the run's training time (every epoch where they are cheap beside
            one); 0 or None: never.
        callbacks: More Keras callbacks, called after the built-in ones (e.g. notebook 03's
            :class:`~vae_tfp.apps.notebook.TrainingPanel`).
        lr_schedule: ``"constant"``: the config's learning rate throughout; ``"cosine"``: from it
            down to 0 at the last of ``epochs`` (:func:`~vae_tfp.model.networks.make_optimizer`),
            which settles the weights that a constant rate leaves jittering (on ``music`` the
            validation recon_gain wandered 3.02–3.16 over the last 10 constant-rate epochs).
        init_from: A trained model folder of the same architecture to start from (its encoder,
            stage-1 decoder and prior; a fresh optimizer): fine-tune it on ``data``, or continue a
            finished run with another schedule. The KL warm-up is skipped, as the codes exist.
        verbose: Keras progress bar setting.
        log: Where messages go.

    Returns:
        The full per-epoch history (also in ``model_dir/history.json``).

    Raises:
        ConfigError: the dataset does not match the model.
        TrainingError: NaN loss, or ``model_dir`` has a run and ``resume`` is false.
        ModelFileError: ``init_from`` is not a model folder of this architecture.
    """
    data, model_dir = open_dataset(data), Path(model_dir)
    previews = check_every(previews)  # a bad value fails before anything is written
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule={lr_schedule!r} must be one of {', '.join(LR_SCHEDULES)}")
    if init_from is not None:
        init_from = Path(init_from)
        read_model_info(init_from)  # not a model folder: one line before anything is written
        config = config.replace(kl_warmup_steps=0)  # the codes exist: no warm-up from beta 0
    try:
        config = config.for_spectrogram(data.config)
    except ConfigError as err:
        raise ConfigError(f"{data.path}: model {config.name!r} does not fit this dataset's {data.config.shape[:2]} "
                          f"images ({err}); prepare the data with the matching --spec") from None
    if not data.n_clips("train"):
        raise DatasetError(f"{data.path}: the train split is empty; nothing to train on")
    strategy = strategy or tf.distribute.get_strategy()
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    run = run_setup(data.n_clips("train"), epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                    drop_remainder=jit_compile or multi_worker, lr_schedule=lr_schedule, init_from=init_from)
    chief = strategy.extended.should_checkpoint  # False only on a non-chief worker of a multi-worker strategy
    if not chief:
        # Multi-worker: every worker takes part in saving, but only the chief writes the real folder.
        model_dir = Path(tempfile.mkdtemp(prefix=f"{model_dir.name}.worker-"))
    try:
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(model_dir, what="--model folder", log=log).acquire()
    except OSError as err:
        raise TrainingError(f"cannot write the model folder: {os_error_message(err, model_dir)}") from None
    try:
        ckpt_dir = _open_run(model_dir, resume, log)
        # Validation and the diagnostics use a fixed, seeded subset of the validation split (all of
        # it up to VALIDATION_CLIPS), read once (float16) and checked before anything is written: a
        # NaN or Inf is named with its shard and row. The training split is checked as it streams.
        # Validation keeps every clip of its subset: a last, smaller batch costs XLA one more compilation
        # of the test step, where dropping it left a split smaller than a batch with no validation at all.
        val_split = "val" if data.n_clips("val") else "train"
        val_rows = data.sample(val_split, VALIDATION_CLIPS, seed=seed)
        val_ds = data.tf_dataset("val", batch_size=batch_size, shuffle=False, rows=val_rows) \
            if data.n_clips("val") else None
        val_x = data.load(val_split, rows=val_rows[:val_examples])
        train_mean = data.mean_image()
        keras.utils.set_random_seed(seed)
        vae, epoch_var = _build(config, strategy, seed=seed, jit_compile=jit_compile, clip_norm=clip_norm,
                                mixed_precision=mixed_precision, deterministic=deterministic,
                                decay_steps=run.get("decay_steps"), log=log)
        if init_from is not None and not (resume and tf.train.latest_checkpoint(os.fspath(ckpt_dir))):
            load_weights_into(vae, init_from)
            log(f"starting from the weights of {init_from} (no KL warm-up)")
        manager, history = _restore(vae, epoch_var, ckpt_dir, config, resume=resume, run=run, log=log)
        initial_epoch = int(epoch_var.numpy())
        if initial_epoch >= epochs:
            log(f"{model_dir}: already trained for {initial_epoch} epochs")
            return history
        if (model_dir / "config.json").is_file() and "adversarial" in json.loads((model_dir / "config.json").read_text()):
            raise TrainingError(f"{model_dir}: its decoder was fine-tuned by the adversarial stage, which more "
                                f"stage-1 epochs would discard; train stage 1 further in another --model folder")
        # Seeded reshuffle every epoch (a resumed run restarts the seeded shuffle sequence).
        # XLA compiles for static shapes: with jit_compile every batch is full (the remainder is dropped).
        # With steps_per_epoch Keras keeps one iterator across epochs: repeated, so no epoch runs dry.
        plan = data.input_plan("train")
        workers = strategy.num_replicas_in_sync // max(1, len(strategy.extended.worker_devices)) if multi_worker else 1
        if multi_worker and plan["n_chunks"] >= workers > 1:
            # Each worker reads its own chunks of the shards, instead of all of them to keep a share of
            # the examples (Keras' automatic sharding of a dataset that reads no TFRecord files).
            # Keras needs the steps of a distributed dataset.
            steps_per_epoch = steps_per_epoch or max(1, data.n_clips("train") // batch_size)
            train_ds = strategy.distribute_datasets_from_function(lambda ctx: data.tf_dataset(
                "train", batch_size=ctx.get_per_replica_batch_size(batch_size), seed=seed, drop_remainder=True,
                repeat=True, input_context=ctx))
        else:
            train_ds = data.tf_dataset("train", batch_size=batch_size, seed=seed, drop_remainder=jit_compile,
                                       repeat=steps_per_epoch is not None)
        callbacks = _callbacks(vae, manager, epoch_var, history, model_dir, data, val_x, train_mean,
                               tensorboard=tensorboard, early_stopping_patience=early_stopping_patience, log=log,
                               val_clips=len(val_rows) if val_ds is not None else 0,
                               previews=previews if chief else None, start=initial_epoch, seed=seed, run=run
                               ) + list(callbacks or [])
        log(f"training {config.name!r} on {data.n_clips('train')} clips of {data.path} for epochs "
            f"{initial_epoch + 1}..{epochs}; input {'cached' if plan['cache'] else 'streamed'}, "
            f"{plan['images_in_memory']} images ({plan['bytes_in_memory'] / 2**20:.0f} MB) in memory at most")
        try:
            vae.fit(train_ds, validation_data=val_ds,
                    epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                    verbose=verbose)
        except tf.errors.InvalidArgumentError as err:
            raise (data.input_error(err) or err) from None  # a NaN or Inf in a streamed row: shard, row, clip
        except tf.errors.ResourceExhaustedError as err:
            if is_disk_full(err):
                raise TrainingError(f"cannot write to the model folder: {os_error_message(err, model_dir)}") from None
            raise TrainingError(out_of_memory_message(config, batch_size, mixed_precision=bool(mixed_precision)
                                                      and mixed_precision != "float32")) from None
        if not chief:
            shutil.rmtree(model_dir, ignore_errors=True)
            return history
        _finish(model_dir, data, history, fit_prior=fit_prior, seed=seed, log=log)
        return history
    except OSError as err:
        raise TrainingError(f"cannot write the model folder: {os_error_message(err, model_dir)}") from None
    finally:
        lock.release()


def _open_run(model_dir: Path, resume: bool, log) -> Path:
    """Recovers an interrupted save and refuses to overwrite a run; returns the checkpoint folder."""
    recover_interrupted_save(model_dir)
    ckpt_dir = model_dir / CHECKPOINTS
    if not resume and ckpt_dir.exists():
        if tf.train.latest_checkpoint(os.fspath(ckpt_dir)):
            raise TrainingError(f"{model_dir}: already has a training run; use --resume to continue it or "
                                f"choose another --model folder")
        remove(ckpt_dir)  # a run that failed before its first checkpoint: nothing to continue
        log(f"note: removed {ckpt_dir}, left by a run that saved no checkpoint")
    return ckpt_dir


def run_setup(n_train: int, *, epochs: int, batch_size: int, steps_per_epoch: int | None, drop_remainder: bool,
              lr_schedule: str, init_from: Path | None) -> dict:
    """How a run is set up beyond its model config, when not the default (checked on resume, recorded
    in the model's ``training``): the cosine schedule's length in steps, the warm start's folder."""
    run: dict = {}
    if lr_schedule != "constant":
        batches = n_train // batch_size if drop_remainder else -(-n_train // batch_size)
        run.update(lr_schedule=lr_schedule, decay_steps=epochs * (steps_per_epoch or max(1, batches)))
    if init_from is not None:
        run["init_from"] = os.fspath(init_from)
    return run


def _build(config: ModelConfig, strategy, *, seed, jit_compile, clip_norm, mixed_precision, deterministic,
           decay_steps=None, log) -> tuple[VAE, tf.Variable]:
    """Sets determinism and the precision policy, then builds the compiled VAE and the epoch counter
    in the strategy's scope."""
    plan = determinism_plan(deterministic, jit_compile)
    if plan["op_determinism"]:
        tf.config.experimental.enable_op_determinism()
    log(f"training on {describe_devices()}; op determinism {'on' if plan['op_determinism'] else 'off'}")
    if mixed_precision not in (None, "float32", "mixed_float16", "mixed_bfloat16"):
        raise ConfigError(f"mixed_precision={mixed_precision!r} must be mixed_float16, mixed_bfloat16 or None")
    keras.mixed_precision.set_global_policy(mixed_precision or "float32")
    with strategy.scope():
        vae = VAE(config, seed=seed, xla=plan["broadcast_upsampling"])
        vae.compile(optimizer=make_optimizer(config, clip_norm=clip_norm, decay_steps=decay_steps),
                    jit_compile=jit_compile)
        vae(tf.zeros((1,) + config.input_shape), training=False)
        vae.optimizer.build(vae.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    return vae, epoch_var


def _restore(vae, epoch_var, ckpt_dir: Path, config: ModelConfig, *, resume: bool, run: dict, log):
    """The checkpoint manager, and on resume the last checkpoint and the history up to its epoch."""
    checkpoint = tf.train.Checkpoint(model=vae, optimizer=vae.optimizer, epoch=epoch_var)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    check_run_config(ckpt_dir, config, run=run)
    manager = tf.train.CheckpointManager(checkpoint, os.fspath(ckpt_dir), max_to_keep=2)
    history: list[dict] = []
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        done = int(epoch_var.numpy())
        if (ckpt_dir / HISTORY).exists():
            history = [h for h in json.loads((ckpt_dir / HISTORY).read_text()) if h["epoch"] <= done]
        log(f"resuming {ckpt_dir.parent} after epoch {done}")
    return manager, history


def _callbacks(vae, manager, epoch_var, history, model_dir: Path, data, val_x, train_mean, *, tensorboard: bool,
               early_stopping_patience, log, val_clips: int, previews, start: int,
               seed: int, run: dict) -> list[keras.callbacks.Callback]:
    ckpt_dir = Path(manager.directory)
    writer = tf.summary.create_file_writer(os.fspath(ckpt_dir / "logs" / "diagnostics")) if tensorboard else None
    if previews is not None:
        # samples_fd: the prior's samples against training clips, beside other training clips (the floor)
        reference, floor = reference_sets(data, seed=seed)
        previews = Previews(model_dir, val_x, reference, floor, train_mean, data.config, every=previews, start=start,
                            seed=seed, writer=writer)
    else:
        previews = None
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),  # stop at the first NaN batch; EpochEnd reports it
        EpochEnd(vae=vae, manager=manager, epoch_var=epoch_var, history=history, model_dir=model_dir,
                 data_hash=data.sha256, val_x=val_x, train_mean=train_mean, log=log, writer=writer,
                 image_x=val_x[:4], val_clips=val_clips, previews=previews, run=run),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.fspath(ckpt_dir / "logs"), write_graph=False, profile_batch=0))
    if early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_neg_elbo", patience=early_stopping_patience))
    return callbacks


def _finish(model_dir: Path, data, history, *, fit_prior: bool, seed: int, log) -> None:
    """The full history into the exported model folder, then the optional refit of its prior."""
    if (model_dir / "config.json").exists():
        write_json_atomic(model_dir / HISTORY, history)
    else:
        raise ModelFileError(f"{model_dir}: no epoch completed with a finite validation loss; nothing saved")
    if fit_prior:
        from .prior_fit import fit_prior_saved

        record = fit_prior_saved(model_dir, data, seed=seed)
        log(f"refitted the prior to {record['n_codes']} codes of the training split: their NLL "
            f"{record['codes_nll_before']:.1f} -> {record['codes_nll_after']:.1f} nats")
