"""The per-epoch callback of :func:`vae_tfp.model.training.train`: NaN guard, diagnostics,
previews and the verdict, history, checkpoint, TensorBoard and the best-model export."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ..errors import TrainingError
from ..evaluation.diagnostics import PRIOR_DIAGNOSTICS, collapse_warning, diagnostics, prior_hole_warning
from ..files import is_disk_full, os_error_message, write_json_atomic
from .networks import reconstruction_mean
from .previews import verdict
from .saving import HISTORY, save_model


class EpochEnd(keras.callbacks.Callback):
    """Diagnostics, history, checkpoint and best-model export at the end of every epoch.

    Order matters for resume: history is written before the checkpoint, and on resume it is
    cut back to the checkpoint's epoch, so a kill at any moment loses no completed epoch and
    leaves no gap.
    """

    def __init__(self, *, vae, manager, epoch_var, history, model_dir, data_hash, val_x,
                 train_mean, log, writer, image_x, val_clips: int | None = None, previews=None,
                 run: dict | None = None):
        super().__init__()
        self.run = run or {}  # how the run was set up (lr schedule, warm start), into config.json's "training"
        self.previews = previews  # a vae_tfp.model.previews.Previews, or None
        self.val_clips = val_clips
        self.vae, self.manager, self.epoch_var, self.history = vae, manager, epoch_var, history
        self.model_dir, self.data_hash = model_dir, data_hash
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
        record = self._record(epoch, logs)
        if self.previews is not None and self.previews.due(epoch + 1, self.params.get("epochs") or epoch + 1,
                                                           record["seconds"]):
            self.previews(self.vae, epoch + 1, record)
        judged = self._verdict(record)
        record["verdict"] = {"state": judged["state"], "text": judged["text"]}
        self.log(f"epoch {epoch + 1}: {judged['text']}")
        self.history.append(record)
        self._checkpoint(epoch)
        if self.writer is not None:
            self._tensorboard(epoch + 1, record)
        self._export(epoch, record)

    def _verdict(self, record) -> dict:
        """Still improving or plateaued (:func:`~vae_tfp.model.previews.verdict`), with ``record`` last."""
        return verdict(self.history + [record])

    def _export(self, epoch, record) -> None:
        """The model folder, when the epoch is the best so far by validation negative ELBO."""
        val = record.get("val_neg_elbo", record.get("neg_elbo"))
        if val < self.best:
            self.best = val
            save_model(self.vae, self.model_dir, history=self.history,
                       manifest_hash=self.data_hash, training={"best_epoch": epoch + 1, "best_val_neg_elbo": val, **self.run})

    def _record(self, epoch, logs) -> dict:
        """The epoch's losses and diagnostics (warnings printed once, from epoch 2 on)."""
        diag = diagnostics(self.vae.encoder, self.vae.decoder, self.vae.prior, self.val_x, self.train_mean)
        record = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.t0, 2),
                  **{k: float(v) for k, v in logs.items()},
                  "learning_rate": float(keras.backend.get_value(self.vae.optimizer.learning_rate)),
                  "active_units": diag["active_units"], "recon_gain": diag["recon_gain"],
                  "recon_mse": diag["recon_mse"], "kl_per_dim": diag["kl_per_dim"],
                  **{k: diag[k] for k in PRIOR_DIAGNOSTICS}}
        if self.val_clips is not None:  # the fixed, seeded validation subset behind val_* and the diagnostics
            record.update(val_clips=self.val_clips, diagnostics_clips=len(self.val_x))
        for warning in (collapse_warning(diag), prior_hole_warning(diag)):
            if warning and epoch + 1 >= 2:
                self.log(f"WARNING epoch {epoch + 1}: {warning}")  # once, where the epoch's numbers are
        return record

    def _checkpoint(self, epoch) -> None:
        """History, then the checkpoint of the epoch (a full disk or a permission is named)."""
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
