import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vae_tfp.config import model_preset
from vae_tfp.errors import ConfigError, DatasetError, TrainingError
from vae_tfp.model.training import train


def test_history_and_diagnostics(trained_tiny):
    history = json.loads((trained_tiny / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        assert {"loss", "recon", "kl", "neg_elbo", "val_neg_elbo", "active_units", "recon_gain",
                "kl_per_dim", "learning_rate", "kl_penalty", "prior_nll", "codes_log_density",
                "prior_samples_log_density", "prior_hole_gap", "code_spread_ratio", "code_std", "prior_std"} <= set(h)
        assert h["neg_elbo"] == pytest.approx(h["recon"] + h["kl"], rel=1e-4)  # the true KL, no free bits
        assert len(h["code_std"]) == len(h["prior_std"]) == model_preset("tiny").latent_dim
        assert len(h["kl_per_dim"]) == model_preset("tiny").latent_dim
        assert all(math.isfinite(h[k]) for k in ("loss", "recon", "kl"))
        assert h["val_clips"] == 6 and h["diagnostics_clips"] == 6  # the validation subset: all of a small split
    assert history[-1]["recon"] < history[0]["recon"]


def test_validation_is_a_fixed_seeded_subset_of_a_large_split(tiny_dataset, tmp_path, monkeypatch):
    from vae_tfp.model import training

    monkeypatch.setattr(training, "VALIDATION_CLIPS", 4)
    history = train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=2, batch_size=8, verbose=0,
                    val_examples=3, log=lambda _: None, tensorboard=False)
    assert [(h["val_clips"], h["diagnostics_clips"]) for h in history] == [(4, 3), (4, 3)]


def test_refuses_mismatched_data_and_existing_runs(trained_tiny, tiny_dataset, tmp_path):
    with pytest.raises(ConfigError, match="model .small. does not fit this dataset.s \(64, 64\) images"):
        train(tiny_dataset, tmp_path / "m", model_preset("small"), epochs=1, verbose=0)
    with pytest.raises(TrainingError, match="--resume"):
        train(tiny_dataset, trained_tiny, model_preset("tiny"), epochs=4, verbose=0)


def test_training_is_deterministic(tiny_dataset, tmp_path):
    runs = []
    for k in range(2):
        h = train(tiny_dataset, tmp_path / f"m{k}", model_preset("tiny"), epochs=1, batch_size=8, verbose=0,
                  log=lambda _: None, tensorboard=False, seed=3)
        runs.append(h[-1]["loss"])
    assert runs[0] == runs[1]


def test_nan_loss_stops_with_clear_message_and_keeps_last_good(tiny_dataset, tmp_path, monkeypatch):
    from vae_tfp.model.networks import VAE

    cfg = model_preset("tiny")
    train(tiny_dataset, tmp_path / "m", cfg, epochs=1, batch_size=8, verbose=0, log=lambda _: None, tensorboard=False)
    good = (tmp_path / "m" / "decoder.weights.h5").read_bytes()
    terms = VAE._terms  # a loss that turns NaN in the second epoch, with finite input
    monkeypatch.setattr(VAE, "_terms", lambda self, x, training: {k: v * float("nan") if k == "recon" else v
                                                                  for k, v in terms(self, x, training).items()})
    with pytest.raises(TrainingError, match="NaN.*epoch 2.*checkpoint \\(epoch 1\\).*kept.*input is finite"):
        train(tiny_dataset, tmp_path / "m", cfg, epochs=3, batch_size=8, verbose=0, resume=True, log=lambda _: None,
              tensorboard=False)
    assert (tmp_path / "m" / "decoder.weights.h5").read_bytes() == good
    assert [h["epoch"] for h in json.loads((tmp_path / "m" / "checkpoints" / "history.json").read_text())] == [1]


@pytest.mark.parametrize("split", ["train", "val"])
def test_nan_in_the_input_is_named_before_training(tiny_dataset, tmp_path, split):
    import shutil

    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_dataset, poisoned)
    shard = poisoned / f"{split}-00000.npy"
    images = np.load(shard)
    images[1, 5, 5] = np.nan
    np.save(shard, images)
    with pytest.raises(DatasetError, match=f"{split}-00000.npy: row 1 \\(clip \\d+ from .*\\) holds NaN"):
        train(poisoned, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8, verbose=0, log=lambda _: None,
              tensorboard=False)
    assert not (tmp_path / "m" / "checkpoints").exists()  # refused before anything was written


TRAIN = [sys.executable, "-m", "vae_tfp.apps.cli", "train"]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_has_no_gap(tiny_dataset, tmp_path):
    model = tmp_path / "m"
    args = TRAIN + [str(tiny_dataset), "--model", str(model), "--preset", "tiny", "--epochs", "40",
                    "--batch-size", "4", "--quiet"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = model / "checkpoints" / "history.json"
    deadline = time.time() + 240
    while time.time() < deadline:  # kill mid-training once at least two epochs are done
        if ckpt.exists() and len(json.loads(ckpt.read_text())) >= 2:
            break
        time.sleep(0.2)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(json.loads(ckpt.read_text()))
    assert 2 <= done < 40
    resume = subprocess.run(TRAIN + [str(tiny_dataset), "--model", str(model), "--preset", "tiny", "--epochs",
                                     str(done + 2), "--batch-size", "4", "--quiet", "--resume"],
                            env=env, capture_output=True, text=True)
    assert resume.returncode == 0, resume.stderr[-2000:]
    history = json.loads((model / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, done + 3))


def test_xla_compiled_training_computes_the_same_loss(tiny_dataset, tmp_path):
    """The XLA train step (broadcast upsampling, static shapes) against the plain one, on the same full
    batches in the same order from the same weights: the same losses, up to float rounding."""
    from vae_tfp.data.dataset import open_dataset

    steps = open_dataset(tiny_dataset).n_clips("train") // 8  # XLA drops the remainder batch
    runs = {jit: train(tiny_dataset, tmp_path / f"m{jit}", model_preset("tiny"), epochs=1, batch_size=8,
                       jit_compile=jit, steps_per_epoch=steps, verbose=0, tensorboard=False, log=lambda _: None)[0]
            for jit in (False, True)}
    # The epoch's mean loss: from the same start the two agree (measured within 2 %); later weights drift
    # apart (XLA draws other posterior noise: the KL, a few nats, differs by ~1 nat).
    for key in ("loss", "recon"):
        assert math.isfinite(runs[True][key]) and runs[True][key] == pytest.approx(runs[False][key], rel=2e-2), key
    # a validation split smaller than a batch is still evaluated under XLA (the remainder was dropped)
    assert math.isfinite(runs[True]["val_neg_elbo"]) and math.isfinite(runs[False]["val_neg_elbo"])


def test_steps_per_epoch_never_runs_an_epoch_dry(tiny_dataset, tmp_path):
    """Keras keeps one iterator across epochs when steps_per_epoch is set: without repeating the data,
    the second epoch found it exhausted and logged a loss of 0 with no step taken."""
    h = train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=3, batch_size=8, jit_compile=True,
              steps_per_epoch=4, verbose=0, tensorboard=False, log=lambda _: None)
    assert all(r["loss"] > 100 for r in h), [r["loss"] for r in h]


@pytest.mark.parametrize("likelihood", ["bernoulli", "laplace"])
def test_mixed_precision_keeps_distributions_and_loss_float32(likelihood):
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.model.networks import VAE

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        vae = VAE(model_preset("tiny").replace(likelihood=likelihood))
        x = tf.random.uniform((2, 64, 64, 1), seed=1)
        q = vae.encoder(x)
        p = vae.decoder(q)
        terms = vae._terms(x, training=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # the convolutions run in half precision ...
    assert vae.encoder.get_layer("enc_conv0").compute_dtype == "bfloat16"
    assert vae.decoder.get_layer("dec_conv0").compute_dtype == "bfloat16"
    # ... the posterior, the likelihood and every loss term in float32
    assert q.dtype == tf.float32 and tf.convert_to_tensor(q).dtype == tf.float32 and q.stddev().dtype == tf.float32
    assert p.dtype == tf.float32 and p.log_prob(x).dtype == tf.float32 and p.mean().dtype == tf.float32
    assert {k: v.dtype for k, v in terms.items()} == {k: tf.float32 for k in ("recon", "kl", "kl_penalty", "prior_nll")}


def test_mixed_bfloat16_training_runs_and_restores_the_policy(tiny_dataset, tmp_path):
    import tf_keras as keras

    h = train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8,
              mixed_precision="mixed_bfloat16", verbose=0, tensorboard=False, log=lambda _: None)
    assert math.isfinite(h[-1]["loss"])
    from vae_tfp.model.saving import read_model_info

    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    assert read_model_info(tmp_path / "m").model_config.name == "tiny"


# --- GPU-safe training (simulated: no GPU here) ------------------------------------------------


def test_out_of_memory_is_one_clear_message_and_global_state_is_restored(tiny_dataset, tmp_path, monkeypatch):
    import tensorflow as tf
    import tf_keras as keras
    from tensorflow.python.framework import config as tf_config

    from vae_tfp.model.networks import VAE

    def oom(self, data):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[8,64,64,8]")

    monkeypatch.setattr(VAE, "train_step", oom)
    determinism = tf_config.is_op_determinism_enabled()
    with pytest.raises(TrainingError) as err:
        train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8, verbose=0,
              log=lambda _: None, tensorboard=False, mixed_precision="mixed_bfloat16")
    message = str(err.value)
    assert "out of memory" in message and "batch size 8" in message and "--batch-size 4" in message
    assert "MB of conv activations per example" in message and "\n" not in message
    assert keras.mixed_precision.global_policy().name == "float32"
    assert tf_config.is_op_determinism_enabled() == determinism


def test_resume_refuses_another_configuration(tiny_dataset, tmp_path):
    model = tmp_path / "m"
    train(tiny_dataset, model, model_preset("tiny"), epochs=1, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False)
    assert (model / "checkpoints" / "run_config.json").is_file()
    with pytest.raises(TrainingError, match=r"model_config\.latent_dim") as err:
        train(tiny_dataset, model, model_preset("tiny").replace(latent_dim=6), epochs=2, batch_size=8, verbose=0,
              log=lambda _: None, tensorboard=False, resume=True)
    print(f"\n--resume with another config: {err.value}")
    history = train(tiny_dataset, model, model_preset("tiny"), epochs=2, batch_size=8, verbose=0,
                    log=lambda _: None, tensorboard=False, resume=True)
    assert [h["epoch"] for h in history] == [1, 2]


def test_train_reads_the_manifest_once(tiny_dataset, tmp_path, monkeypatch):
    """The dataset is opened once (`PreparedDataset`) and passed around; before, `train` parsed
    manifest.json 13 times and read it once more to hash it."""
    import builtins
    import io

    real_open, reads = io.open, []

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file).endswith("manifest.json"):
            reads.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(io, "open", counting_open)  # pathlib's read_text / read_bytes
    train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8, verbose=0, tensorboard=False,
          log=lambda _: None)
    assert reads == [os.fspath(tiny_dataset / "manifest.json")]


def test_gradient_clipping_bounds_the_global_norm_and_every_part_still_learns(tiny_dataset, tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    from vae_tfp.model.networks import VAE, make_optimizer
    from vae_tfp.model.prior import prior_variables
    from vae_tfp.model.saving import load_model

    cfg = model_preset("tiny")
    grads = [tf.constant([3.0, 4.0]), tf.constant([[12.0]])]  # global norm 13
    clipped = make_optimizer(cfg, clip_norm=0.5)._clip_gradients(grads)
    assert float(tf.linalg.global_norm(clipped)) == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(clipped[0].numpy(), [3 * 0.5 / 13, 4 * 0.5 / 13], rtol=1e-5)  # same direction
    assert make_optimizer(cfg)._clip_gradients(grads)[1].numpy() == 12.0  # off by default
    with pytest.raises(ConfigError, match="clip_norm=0"):
        make_optimizer(cfg, clip_norm=0)

    # a tight clip: the encoder, the decoder and the prior (its own term) still all move
    train(tiny_dataset, tmp_path / "m", cfg, epochs=1, batch_size=8, clip_norm=1e-2, verbose=0, tensorboard=False,
          log=lambda _: None)
    keras.utils.set_random_seed(0)  # what train starts from
    start = VAE(cfg, seed=0)
    start(tf.zeros((1,) + cfg.input_shape))
    trained = load_model(tmp_path / "m")
    for part in ("encoder", "decoder"):
        for before, after in zip(getattr(start, part).weights, getattr(trained, part).weights):
            assert not np.allclose(before.numpy(), after.numpy()), f"{part} {before.name} did not move"
    for name, before in prior_variables(start.prior).items():
        assert not np.allclose(before.numpy(), prior_variables(trained.prior)[name].numpy()), f"prior {name} did not move"


def test_a_full_disk_at_a_checkpoint_is_called_a_full_disk(tiny_dataset, tmp_path, monkeypatch):
    import tensorflow as tf

    def full(self, *a, **k):
        raise tf.errors.ResourceExhaustedError(None, None, f"{self.directory}/ckpt-1_temp: No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    with pytest.raises(TrainingError, match="checkpoint of epoch 1: .*disk full .*needed.*nothing was saved") as err:
        train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=2, batch_size=8, verbose=0,
              log=lambda _: None, tensorboard=False)
    assert "out of memory" not in str(err.value)


def test_a_run_that_saved_no_checkpoint_does_not_block_the_next(tiny_dataset, tmp_path):
    ckpt = tmp_path / "m" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "run_config.json").write_text("{}")  # what a run that failed before its first epoch left
    notes = []
    train(tiny_dataset, tmp_path / "m", model_preset("tiny"), epochs=1, batch_size=8, verbose=0, log=notes.append,
          tensorboard=False)
    assert (tmp_path / "m" / "config.json").is_file() and any("saved no checkpoint" in n for n in notes)




class _StopAfter:
    """A Keras callback that ends fit after ``epochs`` epochs, as a kill between epochs would."""

    def __new__(cls, epochs):
        import tf_keras as keras

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch + 1 >= epochs:
                    self.model.stop_training = True

        return Stop()


def test_the_cosine_schedule_falls_to_zero_and_a_resumed_run_continues_its_curve(tiny_dataset, trained_tiny, tmp_path):
    kwargs = dict(batch_size=8, verbose=0, log=lambda _: None, tensorboard=False, previews=0)
    cfg = model_preset("tiny")
    whole = train(tiny_dataset, tmp_path / "whole", cfg, epochs=3, lr_schedule="cosine", **kwargs)
    rates = [h["learning_rate"] for h in whole]
    assert rates[0] < cfg.learning_rate and rates == sorted(rates, reverse=True)
    assert rates[-1] < 0.05 * cfg.learning_rate  # the last step is near the bottom of the curve
    constant = json.loads((trained_tiny / "history.json").read_text())
    assert [h["learning_rate"] for h in constant] == pytest.approx([cfg.learning_rate] * 3)  # the default: constant
    # killed after epoch 2, resumed: the same curve (the shuffle restarts on resume, so not the same loss)
    train(tiny_dataset, tmp_path / "cut", cfg, epochs=3, lr_schedule="cosine", callbacks=[_StopAfter(2)], **kwargs)
    resumed = train(tiny_dataset, tmp_path / "cut", cfg, epochs=3, lr_schedule="cosine", resume=True, **kwargs)
    assert [h["learning_rate"] for h in resumed] == pytest.approx(rates)
    training = json.loads((tmp_path / "whole" / "config.json").read_text())["training"]
    assert training["lr_schedule"] == "cosine" and training["decay_steps"] > 0
    with pytest.raises(TrainingError, match=r"run\.decay_steps"):  # more epochs would restart the curve mid-way
        train(tiny_dataset, tmp_path / "cut", cfg, epochs=4, lr_schedule="cosine", resume=True, **kwargs)
    with pytest.raises(ConfigError, match="lr_schedule='step' must be one of constant, cosine"):
        train(tiny_dataset, tmp_path / "bad", cfg, epochs=1, lr_schedule="step", **kwargs)


def test_init_from_starts_from_a_trained_models_weights(trained_tiny, tiny_dataset, tmp_path):
    from vae_tfp.errors import ModelFileError
    from vae_tfp.model.saving import load_model

    kwargs = dict(batch_size=8, verbose=0, log=lambda _: None, tensorboard=False, previews=0)
    still = model_preset("tiny").replace(learning_rate=1e-9)  # one epoch that barely moves the weights
    source = load_model(trained_tiny)
    for name, init in (("warm", trained_tiny), ("cold", None)):
        history = train(tiny_dataset, tmp_path / name, still, epochs=1, init_from=init, **kwargs)
        model = load_model(tmp_path / name)
        same = all(np.allclose(a, b, atol=1e-6) for part in ("encoder", "decoder")
                   for a, b in zip(getattr(model, part).get_weights(), getattr(source, part).get_weights()))
        assert same == (init is not None), name
        if init is not None:
            trained = json.loads((trained_tiny / "history.json").read_text())[-1]
            # within the noise of the sampled codes (5.3 % apart with the shared model trained on seed 1)
            assert history[0]["val_recon"] == pytest.approx(trained["val_recon"], rel=0.1)
            saved = json.loads((tmp_path / name / "config.json").read_text())
            assert saved["training"]["init_from"] == str(trained_tiny)
            assert saved["model_config"]["kl_warmup_steps"] == 0  # the codes exist: no warm-up from beta 0
            assert history[0]["beta"] == pytest.approx(still.beta)
    with pytest.raises(ModelFileError, match="weights do not fit the config"):
        train(tiny_dataset, tmp_path / "other", model_preset("tiny").replace(latent_dim=6), epochs=1,
              init_from=trained_tiny, **kwargs)
    with pytest.raises(ModelFileError, match="nowhere"):
        train(tiny_dataset, tmp_path / "none", still, epochs=1, init_from=tmp_path / "nowhere", **kwargs)
