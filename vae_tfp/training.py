"""Training, evaluation and the posterior-collapse diagnostics.

``train`` runs Keras ``fit`` on a prepared dataset with: a checkpoint every epoch (model,
optimizer and epoch counter, via ``tf.train.CheckpointManager``) and ``resume`` continuing at the
next epoch; the best model by validation negative ELBO exported as a model folder; TensorBoard
logs; the collapse diagnostics every epoch; a NaN guard; optional early stopping. It works inside
any ``tf.distribute`` strategy scope. Seeded, and deterministic on CPU.

Diagnostics (computed on validation data):

* ``kl_per_dim``: Monte-Carlo KL of each posterior marginal q(z_i|x) against the prior's
  marginal, a 1-D mixture (nats, averaged over examples).
* ``active_units``: dimensions whose posterior mean varies across examples with variance > 0.01.
* ``recon_gain``: MSE(x, mean training image) / MSE(x, reconstruction). A collapsed model, whose
  reconstructions are all the dataset average, scores about 1.

Prior-hole diagnostics (generation samples the prior, so the prior must cover the codes):

* ``codes_log_density`` / ``prior_samples_log_density``: median log p(z) under the prior of the
  validation codes (z ~ q(z|x)) and of the prior's own samples. When the prior fits the codes the
  two agree; codes far below the prior's own samples lie outside the prior (a prior hole).
* ``prior_hole_gap``: the second minus the first (nats).
* ``code_spread_ratio``: per dimension, the std of the codes over the std of the prior's marginal
  (median over dimensions; ``code_std`` and ``prior_std`` hold them per dimension).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .config import ModelConfig
from .dataset import DatasetLike, open_dataset
from .errors import ConfigError, DatasetError, ModelFileError, TrainingError
from .files import FolderLock, is_disk_full, os_error_message, remove, write_json_atomic
from .model import VAE, make_optimizer, map_batches, posterior_stats, reconstruction_mean
from .saving import CHECKPOINTS, HISTORY, recover_interrupted_save, save_model
from .time_structure import correlation_summary

ACTIVE_UNIT_VARIANCE = 0.01
COLLAPSE_ACTIVE_UNITS = 2
COLLAPSE_RECON_GAIN = 1.2
PRIOR_HOLE_NATS_PER_DIM = 0.5  # codes this much less likely than the prior's own samples, per dimension
PRIOR_SPREAD_RANGE = (0.5, 2.0)  # median code std / prior std outside this: prior too narrow or too wide
PRIOR_DIAGNOSTIC_SAMPLES = 512
PRIOR_DIAGNOSTICS = ("codes_log_density", "prior_samples_log_density", "prior_hole_gap", "code_spread_ratio",
                     "code_std", "prior_std")
TIME_DIAGNOSTICS = ("loudness_corr", "onset_corr", "loudness_corr_chance", "onset_corr_chance")


# --- diagnostics ------------------------------------------------------------------------------

def kl_per_dimension(means: np.ndarray, stds: np.ndarray, prior, *, samples: int = 16, seed: int = 0) -> np.ndarray:
    """KL(q(z_i|x) || p(z_i)) per latent dimension (nats, mean over examples; Monte Carlo).

    Args:
        means, stds: Posterior marginals [n, D].
        prior: The mixture prior; its per-dimension marginal is a 1-D Gaussian mixture
            (:func:`vae_tfp.model.prior_marginals`, with the mixture's weights).
    """
    import tensorflow_probability as tfp

    from .model import prior_marginals

    q = tfp.distributions.Normal(means.astype(np.float32), stds.astype(np.float32))  # batch [n, D]
    z = q.sample(samples, seed=seed)  # [S, n, D]
    kl = q.log_prob(z) - prior_marginals(prior).log_prob(z)
    return tf.reduce_mean(kl, axis=[0, 1]).numpy()


def prior_fit_diagnostics(codes: np.ndarray, prior, *, n_samples: int = PRIOR_DIAGNOSTIC_SAMPLES,
                          seed: int = 0) -> dict:
    """How well the prior covers ``codes`` [n, D] (samples of the aggregate posterior); see the module docstring."""
    from .model import mixture_components, mixture_weights

    codes = np.asarray(codes, np.float32)
    samples = prior.sample(n_samples, seed=seed)
    codes_ld = float(np.median(prior.log_prob(codes).numpy()))
    samples_ld = float(np.median(prior.log_prob(samples).numpy()))
    w, (locs, scales) = mixture_weights(prior)[:, None], mixture_components(prior)
    mean = (w * locs).sum(0)
    prior_std = np.sqrt(np.maximum((w * (scales**2 + locs**2)).sum(0) - mean**2, 1e-12))
    code_std = codes.std(axis=0)
    return {"codes_log_density": codes_ld, "prior_samples_log_density": samples_ld,
            "prior_hole_gap": samples_ld - codes_ld,
            "code_spread_ratio": float(np.median(code_std / prior_std)),
            "code_std": code_std.tolist(), "prior_std": prior_std.tolist()}


def prior_hole_warning(diag: dict) -> str | None:
    """A loud message when the codes lie outside the prior's mass (or the prior's mass lies where no codes are)."""
    problems = []
    d = len(diag["code_std"])
    if diag["prior_hole_gap"] > PRIOR_HOLE_NATS_PER_DIM * d:
        problems.append(f"validation codes have median log p(z) {diag['codes_log_density']:.1f} nats against "
                        f"{diag['prior_samples_log_density']:.1f} for the prior's own samples")
    low, high = PRIOR_SPREAD_RANGE
    ratio = diag["code_spread_ratio"]
    if not low <= ratio <= high:
        problems.append(f"codes spread {ratio:.2f}x the prior's std (median over dimensions)")
    if not problems:
        return None
    return ("PRIOR HOLE? " + "; ".join(problems) + " — samples of the prior will not look like the data "
            "(refit it: `vae-tfp fit-prior MODEL DATA`)")


def diagnostics(encoder, decoder, prior, x: np.ndarray, train_mean: np.ndarray, *, batch_size: int = 32,
                seed: int = 0, config=None) -> dict:
    """Collapse and prior-hole diagnostics on images ``x`` [n, H, W, 1]; see the module docstring.

    With the spectrogram ``config`` also the reconstructions' time structure: the median per-clip
    correlation of their loudness and onset contours with the real clips' (``loudness_corr``,
    ``onset_corr``) and its chance level (``*_chance``: a real clip against another;
    :func:`vae_tfp.time_structure.correlation_summary`).
    """
    if not len(x):
        raise DatasetError("diagnostics need at least one image; got an empty array")
    means, stds = posterior_stats(encoder, x, batch_size)
    # codes drawn from the posterior marginals (the aggregate posterior the prior should cover)
    codes = means + stds * np.random.default_rng(seed).standard_normal(means.shape).astype(np.float32)
    recons = map_batches(lambda b, _: reconstruction_mean(decoder(b, training=False)).numpy(), means, batch_size)
    mse_recon = float(np.mean((x - recons) ** 2))
    mse_mean = float(np.mean((x - train_mean[None]) ** 2))
    variance = means.var(axis=0)
    time = {} if config is None else correlation_summary(x, recons, config, seed=seed)
    return {
        **time,
        "active_units": int((variance > ACTIVE_UNIT_VARIANCE).sum()),
        "latent_variance": variance.tolist(),
        "kl_per_dim": kl_per_dimension(means, stds, prior).tolist(),
        "recon_mse": mse_recon,
        "mean_image_mse": mse_mean,
        "recon_gain": mse_mean / max(mse_recon, 1e-12),
        **prior_fit_diagnostics(codes, prior, seed=seed),
    }


def collapse_warning(diag: dict) -> str | None:
    """A loud message when the diagnostics look like posterior collapse, else None."""
    problems = []
    if diag["active_units"] <= COLLAPSE_ACTIVE_UNITS:
        problems.append(f"only {diag['active_units']} active latent units")
    if diag["recon_gain"] < COLLAPSE_RECON_GAIN:
        problems.append(f"recon_gain {diag['recon_gain']:.2f} < {COLLAPSE_RECON_GAIN} (reconstructions are "
                        f"barely better than the dataset mean)")
    return "POSTERIOR COLLAPSE? " + "; ".join(problems) if problems else None


# --- evaluation -------------------------------------------------------------------------------

def evaluate(encoder, decoder, prior, data: DatasetLike, split: str = "test", *, batch_size: int = 32,
             kl_samples: int = 4, seed: int = 0) -> dict[str, Any]:
    """Held-out metrics of a model on a dataset split.

    Returns:
        ``neg_elbo_nats`` (per example), ``bits_per_dim``, ``recon_nll_nats``, ``kl_nats``
        (Monte Carlo with ``kl_samples`` samples, beta = 1, no free nats), ``active_units``,
        ``latent_dim``, ``recon_gain``, ``recon_mse``, ``n_examples``, ``kl_per_dim``, the
        prior-hole diagnostics, and the reconstructions' time structure: ``loudness_corr`` and
        ``onset_corr`` (median per-clip contour correlation) and their ``*_chance`` levels (see
        :func:`diagnostics`).
    """
    data = open_dataset(data)
    x = data.load(split)
    if not len(x):
        raise DatasetError(f"{data.path}: split {split!r} is empty: nothing to evaluate")
    def terms(batch, start):
        q = encoder(batch, training=False)
        z = q.sample(kl_samples, seed=(seed, start))  # [S, b, D]; a stateless seed per batch, no global state
        return (tf.reduce_mean(q.log_prob(z) - prior.log_prob(z), axis=0).numpy(),
                -decoder(z[0], training=False).log_prob(batch).numpy())

    kl, recon_nll = map_batches(terms, x, batch_size)
    recon_nll, kl = float(recon_nll.mean()), float(kl.mean())
    diag = diagnostics(encoder, decoder, prior, x, data.mean_image("train"), batch_size=batch_size, config=data.config)
    dims = int(np.prod(x.shape[1:]))
    neg_elbo = recon_nll + kl
    return {
        "split": split, "n_examples": int(len(x)), "latent_dim": len(diag["kl_per_dim"]),
        "neg_elbo_nats": neg_elbo, "bits_per_dim": neg_elbo / (dims * math.log(2)),
        "recon_nll_nats": recon_nll, "kl_nats": kl,
        "active_units": diag["active_units"], "recon_gain": diag["recon_gain"], "recon_mse": diag["recon_mse"],
        "kl_per_dim": diag["kl_per_dim"],
        **{k: diag[k] for k in PRIOR_DIAGNOSTICS[:4]},
        **{k: diag[k] for k in TIME_DIAGNOSTICS if k in diag},
    }


def evaluate_saved(model_dir, data: DatasetLike, split: str = "test", *, samples: int = 0,
                   temperatures=(1.0, 0.8, 0.6), judges: bool | None = None, log=print, **kwargs) -> dict[str, Any]:
    """:func:`evaluate` for a saved model folder (checks that the dataset matches the model).

    With ``samples`` > 0 the result also holds ``"samples"``: the generation table of
    :func:`vae_tfp.sample_metrics.evaluate_samples` with that many prior samples per temperature.
    """
    from .saving import load_model

    model = load_model(model_dir)
    data = open_dataset(data)
    data.check_config(model.spectrogram_config, model_dir)
    result = evaluate(model.encoder, model.decoder, model.prior, data, split, **kwargs)
    if samples:
        from .sample_metrics import evaluate_samples

        result["samples"] = evaluate_samples(model, data, split=split, n_samples=samples,
                                             temperatures=temperatures, judges=judges, log=log)
    return result


# --- training ---------------------------------------------------------------------------------

class _EpochEnd(keras.callbacks.Callback):
    """Diagnostics, history, checkpoint and best-model export at the end of every epoch.

    Order matters for resume: history is written before the checkpoint, and on resume it is
    cut back to the checkpoint's epoch, so a kill at any moment loses no completed epoch and
    leaves no gap.
    """

    def __init__(self, *, vae, manager, epoch_var, history, model_dir, spec_config, data_hash, val_x,
                 train_mean, log, writer, image_x):
        super().__init__()
        self.vae, self.manager, self.epoch_var, self.history = vae, manager, epoch_var, history
        self.model_dir, self.spec_config, self.data_hash = model_dir, spec_config, data_hash
        self.val_x, self.train_mean, self.log, self.writer, self.image_x = val_x, train_mean, log, writer, image_x
        self.best = min((h.get("val_neg_elbo", math.inf) for h in history), default=math.inf)
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(v)) for v in logs.values()):
            self.model.stop_training = True
            done = int(self.epoch_var.numpy())
            kept = (f"the last good checkpoint (epoch {done}) and the best model in {self.model_dir} are kept" if done
                    else "no epoch had completed, so nothing was saved")
            raise TrainingError(f"loss became NaN/Inf in epoch {epoch + 1} "
                                f"({', '.join(f'{k}={float(v):.4g}' for k, v in logs.items())}); {kept}; "
                                f"the input is finite, so lower --lr or try --clip-norm")
        diag = diagnostics(self.vae.encoder, self.vae.decoder, self.vae.prior, self.val_x, self.train_mean)
        record = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 2),
                  **{k: float(v) for k, v in logs.items()},
                  "learning_rate": float(keras.backend.get_value(self.vae.optimizer.learning_rate)),
                  "active_units": diag["active_units"], "recon_gain": diag["recon_gain"],
                  "recon_mse": diag["recon_mse"], "kl_per_dim": diag["kl_per_dim"],
                  **{k: diag[k] for k in PRIOR_DIAGNOSTICS}}
        for warning in (collapse_warning(diag), prior_hole_warning(diag)):
            if warning and epoch + 1 >= 2:
                self.log(f"WARNING epoch {epoch + 1}: {warning}")  # once, where the epoch's numbers are
        self.history.append(record)
        ckpt_dir = Path(self.manager.directory)
        try:
            write_json_atomic(ckpt_dir / HISTORY, self.history)
            self.epoch_var.assign(epoch + 1)
            self.manager.save(checkpoint_number=epoch + 1)
        except (OSError, tf.errors.OpError) as err:
            self.epoch_var.assign(epoch)
            state = sum(4 * int(np.prod(v.shape)) for v in self.vae.variables + self.vae.optimizer.variables())
            path = getattr(err, "filename", None) or ckpt_dir
            reason = os_error_message(err, path, needed=state) if isinstance(err, OSError) or is_disk_full(err) \
                else f"{ckpt_dir}: {err.message.splitlines()[0][:200]}"
            raise TrainingError(f"cannot write the checkpoint of epoch {epoch + 1}: {reason}; "
                                f"{'epoch ' + str(epoch) + ' is the last one kept' if epoch else 'nothing was saved'}"
                                ) from None
        if self.writer is not None:
            self._tensorboard(epoch + 1, record)
        val = record.get("val_neg_elbo", record.get("neg_elbo"))
        if val < self.best:
            self.best = val
            save_model(self.vae, self.model_dir, self.spec_config, history=self.history,
                       manifest_hash=self.data_hash, training={"best_epoch": epoch + 1, "best_val_neg_elbo": val})

    def _tensorboard(self, step, record):
        with self.writer.as_default():
            for key in ("active_units", "recon_gain", "learning_rate"):
                tf.summary.scalar(f"diagnostics/{key}", record[key], step=step)
            for key in PRIOR_DIAGNOSTICS[:4]:
                tf.summary.scalar(f"prior/{key}", record[key], step=step)
            tf.summary.histogram("diagnostics/kl_per_dim", record["kl_per_dim"], step=step)
            tf.summary.histogram("prior/code_std_over_prior_std",
                                 np.asarray(record["code_std"]) / np.asarray(record["prior_std"]), step=step)
            recon = reconstruction_mean(self.vae(self.image_x, training=False)).numpy()
            pairs = np.concatenate([self.image_x, recon], axis=2)[:, ::-1]  # input | reconstruction, low freq down
            tf.summary.image("reconstructions", pairs, step=step, max_outputs=len(pairs))
        self.writer.flush()


# Op types that TensorFlow refuses to run on a GPU under op determinism ("A deterministic GPU
# implementation of ... is not currently available"). Source: the error messages compiled into
# TensorFlow 2.21's libtensorflow_cc.so.2 (`strings libtensorflow_cc.so.2 | grep "deterministic GPU
# implementation"`) and TF's determinism RFC (tensorflow/community rfcs/20210119-determinism.md), by
# op type. Left out as conditional: FusedBatchNormGrad* (only when batch norm is not training) and
# DepthwiseConv2dNativeBackpropFilter (only with cuDNN older than 7.6.3).
NONDETERMINISTIC_GPU_OPS = frozenset({
    "ResizeNearestNeighborGrad", "AdjustContrast", "AdjustContrastv2", "SparseTensorDenseMatMul",
    "CropAndResizeGradBoxes", "CropAndResizeGradImage", "SegmentSum", "SegmentProd", "SegmentMin", "SegmentMax",
    "SegmentMean", "UnsortedSegmentSum", "UnsortedSegmentProd", "UnsortedSegmentMin", "UnsortedSegmentMax",
})


def describe_devices() -> str:
    """What training runs on: the visible GPUs' names, else the CPU cores."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores, no GPU visible)"
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: {', '.join(names)}"


def default_model_preset() -> str:
    """``default`` (512 x 512) when a GPU is visible, ``small`` (128 x 128) on a CPU."""
    return "default" if tf.config.list_physical_devices("GPU") else "small"


def determinism_plan(deterministic: bool | None, jit_compile: bool) -> dict[str, bool]:
    """Whether to enable op determinism and which upsampling the decoder uses.

    ``deterministic=None`` (the default) means: on without a GPU, off with one (cuDNN's
    deterministic algorithms cost speed, unmeasured here). Determinism is never enabled with XLA
    (no deterministic XLA kernel for some gradients, e.g. MaxPool). With determinism on and a GPU
    visible, the decoder uses the broadcast upsampling, whose gradient is a plain sum: Keras'
    ``UpSampling2D`` gradient, ``ResizeNearestNeighborGrad``, has no deterministic GPU kernel.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    on = (not gpu if deterministic is None else bool(deterministic)) and not jit_compile
    return {"op_determinism": on, "broadcast_upsampling": bool(jit_compile or (on and gpu)), "gpu": gpu}


def train_step_op_types(config: ModelConfig, *, broadcast_upsampling: bool, jit_compile: bool = False,
                        batch_size: int = 2) -> set[str]:
    """Op types of the traced train step (forward, gradient, optimizer), nested functions included."""
    vae = VAE(config, xla=broadcast_upsampling)
    vae.compile(optimizer=make_optimizer(config), jit_compile=jit_compile)
    vae(tf.zeros((1,) + tuple(config.input_shape)), training=False)
    vae.optimizer.build(vae.trainable_variables)
    step = tf.function(vae.train_step, jit_compile=jit_compile)
    graph = step.get_concrete_function(tf.TensorSpec((batch_size,) + tuple(config.input_shape), tf.float32)).graph
    graph_def = graph.as_graph_def()
    ops = {n.op for n in graph_def.node}
    for function in graph_def.library.function:
        ops |= {n.op for n in function.node_def}
    return ops


def activation_bytes_per_example(config: ModelConfig, *, mixed_precision: bool = False) -> int:
    """The conv layers' output activations of one example, kept for the backward pass (bytes)."""
    per_value = 2 if mixed_precision else 4
    return sum(math.prod(l["out_hw"]) * l["c_out"] for l in config.conv_layers()) * per_value


def out_of_memory_message(config: ModelConfig, batch_size: int, *, mixed_precision: bool = False) -> str:
    mb = activation_bytes_per_example(config, mixed_precision=mixed_precision) / 2**20
    smaller = max(1, batch_size // 2)
    return (f"out of memory on {describe_devices()} at batch size {batch_size}: the {config.name!r} model keeps "
            f"~{mb:.3g} MB of conv activations per example for the backward pass ({batch_size * mb:.3g} MB per "
            f"batch, plus gradients and optimizer state); try --batch-size {smaller}"
            + ("" if mixed_precision else " or --mixed-precision mixed_float16"))


RUN_CONFIG = "run_config.json"


def check_run_config(ckpt_dir: Path, config: ModelConfig, spec) -> None:
    """Writes the run's model and spectrogram configs beside its checkpoints; on resume, refuses others."""
    file = ckpt_dir / RUN_CONFIG
    current = {"model_config": config.to_dict(), "spectrogram_config": spec.to_dict()}
    if file.is_file():
        saved = json.loads(file.read_text())
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
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Trains a VAE on a prepared dataset and exports the best model to ``model_dir``.

    Args:
        data: A dataset from :func:`vae_tfp.prepare_dataset` (its folder or the opened
            :class:`~vae_tfp.dataset.PreparedDataset`; the manifest is read once); its spectrogram shape must
            equal ``config.input_shape``.
        model_dir: Output model folder (``saved_models/NAME``).
        config: The architecture and loss settings.
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
        clip_norm: Clip the gradients to this global norm (:func:`vae_tfp.model.make_optimizer`); None: off.
        tensorboard: Write TensorBoard logs to ``model_dir/checkpoints/logs``.
        fit_prior: At the end, refit the exported model's prior to the codes of the training
            split (:func:`vae_tfp.prior_fit.fit_prior_saved`).
        verbose: Keras progress bar setting.
        log: Where messages go.

    Returns:
        The full per-epoch history (also in ``model_dir/history.json``).

    Raises:
        ConfigError: the dataset does not match the model.
        TrainingError: NaN loss, or ``model_dir`` has a run and ``resume`` is false.
    """
    data, model_dir = open_dataset(data), Path(model_dir)
    spec = data.config
    if tuple(config.input_shape) != spec.shape:
        raise ConfigError(f"{data.path}: images are {spec.shape} but model {config.name!r} expects "
                          f"{tuple(config.input_shape)}; prepare the data with the matching --spec")
    if not data.n_clips("train"):
        raise DatasetError(f"{data.path}: the train split is empty; nothing to train on")
    strategy = strategy or tf.distribute.get_strategy()
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
        recover_interrupted_save(model_dir)
        ckpt_dir = model_dir / CHECKPOINTS
        if not resume and ckpt_dir.exists():
            if tf.train.latest_checkpoint(os.fspath(ckpt_dir)):
                raise TrainingError(f"{model_dir}: already has a training run; use --resume to continue it or "
                                    f"choose another --model folder")
            remove(ckpt_dir)  # a run that failed before its first checkpoint: nothing to continue
            log(f"note: removed {ckpt_dir}, left by a run that saved no checkpoint")
        # the input read once before anything is written: a NaN or Inf is named with its shard and row
        train_mean = data.mean_image()
        data.check_finite("val")
        keras.utils.set_random_seed(seed)
        plan = determinism_plan(deterministic, jit_compile)
        if plan["op_determinism"]:
            tf.config.experimental.enable_op_determinism()
        log(f"training on {describe_devices()}; op determinism {'on' if plan['op_determinism'] else 'off'}")
        if mixed_precision not in (None, "float32", "mixed_float16", "mixed_bfloat16"):
            raise ConfigError(f"mixed_precision={mixed_precision!r} must be mixed_float16, mixed_bfloat16 or None")
        keras.mixed_precision.set_global_policy(mixed_precision or "float32")
        with strategy.scope():
            vae = VAE(config, seed=seed, xla=plan["broadcast_upsampling"])
            vae.compile(optimizer=make_optimizer(config, clip_norm=clip_norm), jit_compile=jit_compile)
            vae(tf.zeros((1,) + spec.shape), training=False)
            vae.optimizer.build(vae.trainable_variables)
            epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=vae, optimizer=vae.optimizer, epoch=epoch_var)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        check_run_config(ckpt_dir, config, spec)
        manager = tf.train.CheckpointManager(checkpoint, os.fspath(ckpt_dir), max_to_keep=2)
        history: list[dict] = []
        if resume and manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            done = int(epoch_var.numpy())
            if (ckpt_dir / HISTORY).exists():
                history = [h for h in json.loads((ckpt_dir / HISTORY).read_text()) if h["epoch"] <= done]
            log(f"resuming {model_dir} after epoch {done}")
        initial_epoch = int(epoch_var.numpy())
        if initial_epoch >= epochs:
            log(f"{model_dir}: already trained for {initial_epoch} epochs")
            return history

        # Seeded reshuffle every epoch (a resumed run restarts the seeded shuffle sequence).
        # XLA compiles for static shapes: with jit_compile every batch is full (the remainder is dropped).
        train_ds = data.tf_dataset("train", batch_size=batch_size, seed=seed, drop_remainder=jit_compile)
        val_ds = data.tf_dataset("val", batch_size=batch_size, shuffle=False, drop_remainder=jit_compile)
        val_x = data.load("val", limit=val_examples)
        if not len(val_x):
            val_x = data.load("train", limit=val_examples)
        writer = tf.summary.create_file_writer(os.fspath(ckpt_dir / "logs" / "diagnostics")) if tensorboard else None
        callbacks: list[keras.callbacks.Callback] = [
            _EpochEnd(vae=vae, manager=manager, epoch_var=epoch_var, history=history, model_dir=model_dir,
                      spec_config=spec, data_hash=data.sha256, val_x=val_x,
                      train_mean=train_mean, log=log, writer=writer, image_x=val_x[:4]),
        ]
        callbacks.insert(0, keras.callbacks.TerminateOnNaN())  # stop at the first NaN batch; _EpochEnd reports it
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.fspath(ckpt_dir / "logs"), write_graph=False,
                                                         profile_batch=0))
        if early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping("val_neg_elbo", patience=early_stopping_patience))
        log(f"training {config.name!r} on {data.n_clips('train')} clips of {data.path} for epochs "
            f"{initial_epoch + 1}..{epochs}")
        try:
            vae.fit(train_ds, validation_data=val_ds if data.n_clips("val") else None,
                    epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                    verbose=verbose)
        except tf.errors.ResourceExhaustedError as err:
            if is_disk_full(err):
                raise TrainingError(f"cannot write to the model folder: {os_error_message(err, model_dir)}") from None
            raise TrainingError(out_of_memory_message(config, batch_size, mixed_precision=bool(mixed_precision)
                                                      and mixed_precision != "float32")) from None
        if not chief:
            shutil.rmtree(model_dir, ignore_errors=True)
            return history
        if (model_dir / "config.json").exists():
            write_json_atomic(model_dir / HISTORY, history)
        else:
            raise ModelFileError(f"{model_dir}: no epoch completed with a finite validation loss; nothing saved")
        if fit_prior:
            from .prior_fit import fit_prior_saved

            record = fit_prior_saved(model_dir, data, seed=seed)
            log(f"refitted the prior to {record['n_codes']} codes of the training split: their NLL "
                f"{record['codes_nll_before']:.1f} -> {record['codes_nll_after']:.1f} nats")
        return history
    except OSError as err:
        raise TrainingError(f"cannot write the model folder: {os_error_message(err, model_dir)}") from None
    finally:
        lock.release()
