"""Model folders: weights + JSON config, rebuilt from code. No pickle, no Lambda deserialisation.

``saved_models/NAME/`` holds::

    config.json          format, model config (with the spectrogram config it is built for),
                         library versions, the training manifest's hash, and the SHA-256 of
                         every weight file; after the adversarial stage its record ("adversarial")
    encoder.weights.h5   tf_keras weights of the encoder
    decoder.weights.h5   tf_keras weights of the decoder
    prior.weights.h5     the prior's mixture logits, means and pre-softplus scales (three HDF5 datasets)
    history.json         per-epoch training metrics (the adversarial stage's epochs with "stage": 2)
    checkpoints/         training state for --resume (optional)
    discriminator.weights.h5, decoder_stage1.weights.h5
                         after the adversarial stage only: its discriminator, and the decoder it
                         started from (``load_model(..., stage=1)``)

Loading reads only JSON and numeric arrays, checks every value and size before building
anything, verifies each file's hash, then rebuilds the networks from the config. Generating
needs only the decoder and prior; encoding only the encoder. A save is written to a temporary
folder and swapped in with renames, so a crash while saving leaves the previous model whole.
Whoever writes a model folder (``train``, ``fit-prior``, a save) holds its
:class:`~vae_tfp.files.FolderLock`; readers never take it, and a reader recovers an
interrupted save only when no live process holds the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..config import ModelConfig, SpectrogramConfig
from ..errors import ConfigError, ModelFileError
from ..files import FolderLock, os_error_message, read_format_json, replace_dir, sha256_file, write_json_atomic

FORMAT = "vae_tfp.model/3"
# Formats 1 and 2 kept the spectrogram config beside the model config, which repeated its shape as
# ``input_shape``; they load as format 3. Format 1 folders load when they need nothing format 2
# dropped (the per-example ``free_nats`` KL floor, prior files without mixture logits, older
# architecture keys); others are refused in one line.
FORMAT_2 = "vae_tfp.model/2"
FORMAT_1 = "vae_tfp.model/1"
RETRAIN = "retrain it with this version (`vae-tfp train`; saved_models/README.md has each committed model's command)"
CONFIG = "config.json"
HISTORY = "history.json"
CHECKPOINTS = "checkpoints"
PREVIEWS = "previews"  # training's audio previews (vae_tfp.model.previews), kept across saves like the checkpoints
WEIGHT_FILES = {"encoder": "encoder.weights.h5", "decoder": "decoder.weights.h5", "prior": "prior.weights.h5"}
# Written by the adversarial stage (vae_tfp.model.adversarial): the discriminator, needed only to
# continue that stage, and the decoder as stage 1 left it, which the stage starts from.
DISCRIMINATOR_FILE = "discriminator.weights.h5"
STAGE1_DECODER_FILE = "decoder_stage1.weights.h5"
MAX_CONFIG_BYTES = 1 << 20
SAVE_SLACK_BYTES = 1 << 20  # HDF5 metadata, JSON files


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("tensorflow", "tf-keras", "tensorflow-probability", "numpy", "librosa", "vae_tfp"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


# --- prior weights ----------------------------------------------------------------------------

def save_prior_weights(prior, path: Path) -> None:
    import h5py

    from .prior import prior_variables

    with h5py.File(path, "w") as f:
        for name, var in prior_variables(prior).items():
            f.create_dataset(name, data=var.numpy())


def load_prior_weights(prior, path: Path) -> None:
    import h5py

    from .prior import prior_variables

    try:
        with h5py.File(path, "r") as f:
            for name, var in prior_variables(prior).items():
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise ModelFileError(f"{path}: no dataset {name!r} (not a prior weight file)")
                data = f[name]
                if tuple(data.shape) != tuple(var.shape) or data.dtype != np.float32:
                    raise ModelFileError(f"{path}: {name} has shape {data.shape} {data.dtype}, "
                                         f"the config needs {tuple(var.shape)} float32")
                var.assign(data[()])
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read prior weights ({err})") from None


# --- save -------------------------------------------------------------------------------------

@contextlib.contextmanager
def _atomic_folder(path: Path, needed_bytes: int = 0):
    """Yields a temporary sibling folder to fill; swaps it in for ``path`` when the block succeeds.

    Any failure removes the temporary folder and leaves the previous model intact; an
    ``OSError`` (a full disk, a permission) becomes one :class:`ModelFileError` naming the cause.
    The folder's lock is held throughout (:class:`FolderLockedError` if another process has it).
    """
    needed = needed_bytes + SAVE_SLACK_BYTES

    def error(err: OSError) -> ModelFileError:
        return ModelFileError(f"cannot write model: {os_error_message(err, path, needed=needed)}; the previous "
                              f"model is unchanged")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(path, what="--model folder").acquire()
    except OSError as err:
        raise error(err) from None
    try:
        try:
            recover_interrupted_save(path)
            # HDF5 crashes the process (SIGSEGV) when the disk fills mid-write: check the space first.
            if shutil.disk_usage(path.parent).free < needed:
                raise OSError(28, "No space left on device", os.fspath(path))
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.saving-", dir=path.parent))
        except OSError as err:
            raise error(err) from None
        try:
            yield tmp
            replace_dir(tmp, path, carry=(CHECKPOINTS, PREVIEWS))
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise error(err) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        lock.release()


def save_model(vae, path: str | os.PathLike, *, history: list | None = None,
               manifest_hash: str | None = None, training: dict | None = None, discriminator=None,
               stage1_decoder: Path | None = None, records: dict | None = None) -> Path:
    """Writes a model folder atomically (see module docstring). Returns its path.

    An existing ``checkpoints/`` folder inside ``path`` is carried over.

    Args:
        discriminator: The adversarial stage's discriminator, written to :data:`DISCRIMINATOR_FILE`.
        stage1_decoder: A decoder weight file copied to :data:`STAGE1_DECODER_FILE` (read before the
            swap, so it may be a file of the folder being replaced).
        records: More top-level entries of ``config.json`` (e.g. ``prior_fit``, ``adversarial``).

    Raises:
        ModelFileError: the folder cannot be written (the previous model is left intact).
    """
    path = Path(path)
    weights = vae.encoder.weights + vae.decoder.weights + list(vae.prior.trainable_variables)
    if discriminator is not None:
        weights = weights + discriminator.weights + vae.decoder.weights
    with _atomic_folder(path, sum(4 * int(np.prod(w.shape)) for w in weights)) as tmp:
        from .networks import quiet_lambda_warning

        with quiet_lambda_warning():
            vae.encoder.save_weights(os.fspath(tmp / WEIGHT_FILES["encoder"]))
            vae.decoder.save_weights(os.fspath(tmp / WEIGHT_FILES["decoder"]))
            if discriminator is not None:
                discriminator.save_weights(os.fspath(tmp / DISCRIMINATOR_FILE))
        if stage1_decoder is not None:
            shutil.copyfile(stage1_decoder, tmp / STAGE1_DECODER_FILE)
        save_prior_weights(vae.prior, tmp / WEIGHT_FILES["prior"])
        write_json_atomic(tmp / HISTORY, history or [])
        written = list(WEIGHT_FILES.values()) + [f for f in (DISCRIMINATOR_FILE, STAGE1_DECODER_FILE)
                                                 if (tmp / f).is_file()]
        config = {
            "format": FORMAT,
            "model_config": vae.config.to_dict(),
            "versions": library_versions(),
            "training_manifest_sha256": manifest_hash,
            "training": training or {},
            **(records or {}),
            "files": {name: sha256_file(tmp / name) for name in written},
        }
        write_json_atomic(tmp / CONFIG, config)
    return path


def replace_prior(path: str | os.PathLike, prior, *, record: dict | None = None,
                  model_config: ModelConfig | None = None) -> Path:
    """Rewrites only the prior of a model folder (e.g. after :func:`vae_tfp.model.prior_fit.fit_prior`).

    The folder's files are copied into a temporary folder, whose prior file and ``config.json``
    (hash, ``record`` under ``"prior_fit"``, optionally a new ``model_config``) are rewritten, and
    it is swapped in as :func:`save_model` does: a kill at any point leaves either the old or the
    new model whole.

    Raises:
        ModelFileError: the folder is not a model or cannot be written.
    """
    info = read_model_info(path)
    path = info.path
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    with _atomic_folder(path, size) as tmp:
        for child in path.iterdir():
            if child.is_file() and child.name != CONFIG:
                shutil.copy2(child, tmp / child.name)
        save_prior_weights(prior, tmp / WEIGHT_FILES["prior"])
        raw = dict(info.raw)
        raw["files"] = {**raw["files"], WEIGHT_FILES["prior"]: sha256_file(tmp / WEIGHT_FILES["prior"])}
        if record is not None:
            raw["prior_fit"] = record
        if model_config is not None:  # e.g. a refit with another number of components
            raw["model_config"] = model_config.to_dict()
        write_json_atomic(tmp / CONFIG, raw)
    return path


def recover_interrupted_save(path: str | os.PathLike) -> None:
    """Finishes or discards a save that was killed midway, so no state is lost.

    A temporary folder whose ``config.json`` exists is complete (it is written last): the swap is
    rolled forward. Incomplete temporary folders are removed. If only the previous model's
    ``.old`` folder is left, it is put back. Nothing is touched while another live process holds
    the folder's lock: its temporary folder is a save in progress, not a leftover.
    """
    path = Path(path)
    with FolderLock.try_hold(path) as mine:
        if mine:
            _recover(path)


def _recover(path: Path) -> None:
    temps = sorted(path.parent.glob(f".{path.name}.saving-*"), key=lambda d: d.stat().st_mtime)
    complete = [d for d in temps if (d / CONFIG).is_file()]
    for d in temps:
        if d not in complete[-1:]:
            if (d / CHECKPOINTS).is_dir() and not (path / CHECKPOINTS).is_dir() and not complete:
                path.mkdir(parents=True, exist_ok=True)
                os.replace(d / CHECKPOINTS, path / CHECKPOINTS)
            shutil.rmtree(d, ignore_errors=True)
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda d: d.stat().st_mtime)
    if complete:
        replace_dir(complete[-1], path, carry=(CHECKPOINTS,))
    elif not path.exists() and olds:
        os.replace(olds[-1], path)
        olds = olds[:-1]
    for d in olds:
        if path.exists():
            shutil.rmtree(d, ignore_errors=True)


# --- load -------------------------------------------------------------------------------------

@dataclasses.dataclass
class ModelInfo:
    """A model folder's validated config."""

    path: Path
    model_config: ModelConfig
    raw: dict[str, Any]

    @property
    def spectrogram_config(self) -> SpectrogramConfig:
        return self.model_config.spectrogram


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Reads and validates ``config.json`` before anything is built or allocated."""
    path = Path(path)
    file = path / CONFIG
    recover_interrupted_save(path)
    for _ in range(50):  # a live writer swaps the folder with two renames: wait out the gap
        if path.is_dir() or not FolderLock.held_by_other(path):
            break
        time.sleep(0.1)
    if not path.is_dir():
        old = sorted(path.parent.glob(f".{path.name}.old-*"))
        hint = f" (an interrupted save left the previous model at {old[-1]})" if old else ""
        raise ModelFileError(f"{path}: no such model folder{hint}")
    if not file.is_file():
        raise ModelFileError(f"{file}: missing (not a model folder)")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{file}: {file.stat().st_size} bytes is too large for a model config")
    raw = _as_current_format(file)
    try:
        model = ModelConfig.from_dict(raw.get("model_config"))
    except ConfigError as err:
        raise ModelFileError(f"{file}: {err}") from None
    files = raw.get("files")
    if not isinstance(files, dict):
        raise ModelFileError(f"{file}: no weight file hashes")
    return ModelInfo(path, model, raw)


def _as_current_format(file: Path) -> dict:
    """``config.json`` as format 3 (formats 1 and 2 converted), or one line saying why this version cannot load it."""
    raw = read_format_json(file, (FORMAT, FORMAT_2, FORMAT_1), ModelFileError, "model config")
    found = raw["format"]
    if found == FORMAT:
        return raw
    if found == FORMAT_1:
        raw = _format_1(file, raw)
    model = raw.get("model_config")
    if not isinstance(model, dict) or not isinstance(raw.get("spectrogram_config"), dict):
        raise ModelFileError(f"{file}: no model config and spectrogram config")
    model = dict(model)
    shape = model.pop("input_shape", None)
    try:
        spec = SpectrogramConfig.from_dict(raw["spectrogram_config"])
    except ConfigError as err:
        raise ModelFileError(f"{file}: {err}") from None
    if shape is not None and tuple(shape) != spec.shape:
        raise ModelFileError(f"{file}: model input {tuple(shape)} does not match the spectrogram shape {spec.shape}")
    rest = {k: v for k, v in raw.items() if k != "spectrogram_config"}
    return {**rest, "format": FORMAT, "model_config": {**model, "spectrogram": spec.to_dict()}}


def _format_1(file: Path, raw: dict) -> dict:
    """A format-1 config as format 2, or one line saying why this version cannot load it."""
    made = f"{file.parent}: made by vae_tfp with model format {FORMAT_1}"
    model = dict(raw.get("model_config") or {})
    free_nats = model.pop("free_nats", 0.0)
    if free_nats:
        raise ModelFileError(f"{made} and its per-example KL floor free_nats={free_nats}, which this version "
                             f"no longer has; {RETRAIN}")
    unknown = sorted(set(model) - {f.name for f in dataclasses.fields(ModelConfig)} - {"input_shape"})
    if unknown:
        raise ModelFileError(f"{made} and an architecture this version no longer builds ({', '.join(unknown)}); "
                             f"{RETRAIN}")
    prior = file.parent / WEIGHT_FILES["prior"]
    try:
        import h5py

        with h5py.File(prior, "r") as f:
            has_logits = "logits" in f
    except OSError:
        has_logits = True  # an unreadable prior file is named when the prior is loaded
    if not has_logits:
        raise ModelFileError(f"{made} before the mixture weights were trained (no logits in {prior.name}); "
                             f"{RETRAIN}")
    return {**raw, "format": FORMAT_2, "model_config": model}


def _check_file(info: ModelInfo, part: str, name: str | None = None) -> Path:
    name = name or WEIGHT_FILES[part]
    file = info.path / name
    if not file.is_file():
        raise ModelFileError(f"{file}: missing")
    expected = info.raw["files"].get(name)
    if expected != sha256_file(file):
        raise ModelFileError(f"{file}: content does not match the hash in {CONFIG} (truncated, swapped or "
                             f"from another model)")
    return file


def _load_keras_weights(model, file: Path) -> None:
    from .networks import quiet_lambda_warning

    try:
        with quiet_lambda_warning():  # h5 loading serialises the model's config, tfp.layers' lambdas included
            model.load_weights(os.fspath(file))
    except (ValueError, OSError, KeyError) as err:
        raise ModelFileError(f"{file}: weights do not fit the config ({str(err).splitlines()[0][:200]})") from None


@dataclasses.dataclass
class LoadedModel:
    """The parts of a saved model that were asked for (others are None)."""

    info: ModelInfo
    encoder: Any = None
    decoder: Any = None
    prior: Any = None

    @property
    def spectrogram_config(self) -> SpectrogramConfig:
        return self.info.model_config.spectrogram

    @property
    def config(self) -> ModelConfig:
        return self.info.model_config


def decoder_file(info: ModelInfo, stage: int | None = None) -> str:
    """The decoder weight file of a model folder: the current one, or with ``stage=1`` the one stage 1
    left (the same file when the folder had no adversarial stage)."""
    if stage not in (None, 1, 2):
        raise ConfigError(f"stage={stage!r} must be 1 or 2 (or None for the folder's current decoder)")
    if stage == 2 and "adversarial" not in info.raw:
        raise ModelFileError(f"{info.path}: has no adversarial stage (no stage-2 decoder); "
                             f"`vae-tfp sharpen` trains one")
    if stage == 1 and STAGE1_DECODER_FILE in info.raw["files"]:
        return STAGE1_DECODER_FILE
    return WEIGHT_FILES["decoder"]


def decoder_noise(info: ModelInfo, stage: int | None = None) -> dict:
    """``make_decoder``'s noise arguments for the folder's decoder of ``stage`` (as
    :func:`decoder_file`): a noise input only in a stage-2 decoder trained with
    ``AdversarialConfig.decoder_noise``."""
    from ..config import AdversarialConfig

    record = info.raw.get("adversarial")
    if stage == 1 or record is None:
        return {}
    config = AdversarialConfig.from_dict(record["config"])
    return {"noise": config.decoder_noise, "noise_gain": config.noise_lr_multiplier}


def load_weights_into(vae, path: str | os.PathLike,
                      parts: Iterable[str] = ("encoder", "decoder", "prior")) -> ModelInfo:
    """Warm start: copies a saved model's encoder, stage-1 decoder and prior (or the ``parts`` asked
    for) into a built :class:`~vae_tfp.model.networks.VAE` whose parts have the same architecture
    (``train(init_from=...)``; ``benchmarks/encoder_fit.py`` loads a decoder and prior under a new encoder).

    Raises:
        ModelFileError: naming the folder or file that is missing, corrupt or of another architecture.
    """
    info = read_model_info(path)
    files = {p: _check_file(info, p, decoder_file(info, 1) if p == "decoder" else None) for p in parts}
    for part in ("encoder", "decoder"):
        if part in files:
            _load_keras_weights(getattr(vae, part), files[part])
    if "prior" in files:
        load_prior_weights(vae.prior, files["prior"])
    return info


def load_model(path: str | os.PathLike, parts: Iterable[str] = ("encoder", "decoder", "prior"), *,
               stage: int | None = None) -> LoadedModel:
    """Rebuilds the requested parts from ``config.json`` and loads their weights.

    Args:
        path: A model folder.
        parts: Any of ``encoder``, ``decoder``, ``prior``. Generating needs decoder + prior,
            encoding only the encoder.
        stage: Which decoder (:func:`decoder_file`): None, the folder's own; 1, the decoder as
            stage 1 left it; 2, the adversarially fine-tuned one (an error if there is none).

    Raises:
        ModelFileError: naming the file that is missing, corrupt or does not fit.
    """
    from .networks import make_decoder, make_encoder
    from .prior import make_prior

    parts = set(parts)
    unknown = parts - set(WEIGHT_FILES)
    if unknown:
        raise ConfigError(f"unknown model parts {sorted(unknown)}; choose from {sorted(WEIGHT_FILES)}")
    info = read_model_info(path)
    names = {"decoder": decoder_file(info, stage)}
    files = {p: _check_file(info, p, names.get(p)) for p in sorted(parts)}  # all checks before any building
    cfg = info.model_config
    loaded = LoadedModel(info)
    if "prior" in parts:
        loaded.prior = make_prior(cfg.latent_dim, cfg.num_modes)
        load_prior_weights(loaded.prior, files["prior"])
    if "encoder" in parts:
        loaded.encoder = make_encoder(cfg)  # no prior needed to encode: no KL regulariser
        _load_keras_weights(loaded.encoder, files["encoder"])
    if "decoder" in parts:
        loaded.decoder = make_decoder(cfg, **decoder_noise(info, stage))
        _load_keras_weights(loaded.decoder, files["decoder"])
    return loaded
