"""Judges nobody here trained: pretrained audio networks shipped inside wheels, loaded lazily.

* **musicnn** (Pons & Serra 2019; package ``musicnn`` 0.1.0, ISC licence): the ``MTT_musicnn``
  music-tagging network, rebuilt here in tf_keras from its TF1 checkpoint (the package's own
  ``extractor.py`` turns eager execution off for the whole process, so it is never imported).
  Input: audio at 16 kHz → 512-point STFT, hop 256, 96 mel bands (librosa), ``log10(1 + 10000 ·
  mel)``; any length of at least 7 frames (the network pools over time). Its 200-dimensional
  penultimate layer embeds a clip; the Fréchet distance of two sets of embeddings is
  **FAD-musicnn** (the Fréchet Audio Distance of Kilgour et al. 2019 on musicnn features; it is
  not VGGish, whose weights no wheel here ships).

The weights are read from the installed package's folder (``importlib``'s spec, not an import);
without the package each judge raises :class:`~vae_tfp.errors.ConfigError` naming the install.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MUSICNN_SR = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_N_MELS = 96
MUSICNN_MODEL = "MTT_musicnn"
MUSICNN_MIN_FRAMES = 7  # the timbral convolutions are 7 frames long (padded by 3 on each side)


def package_folder(name: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the {pip_name!r} package is not installed (pip install --no-deps {pip_name}); "
                          f"`make` installs it")
    return Path(list(spec.submodule_search_locations)[0])


# --- musicnn ----------------------------------------------------------------------------------

def musicnn_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio [n, samples] (or [samples]) → musicnn's log-mel input, float32 [n, frames, 96].

    As the package's ``batch_data``: librosa's mel spectrogram (power 2, centred frames) at 16 kHz,
    rounded to float16 as the package does, then ``log10(10000 · mel + 1)``.
    """
    import librosa

    audio = np.atleast_2d(np.asarray(audio, np.float32))
    if sample_rate != MUSICNN_SR:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=MUSICNN_SR, axis=-1)
    mel = librosa.feature.melspectrogram(y=audio, sr=MUSICNN_SR, hop_length=MUSICNN_HOP, n_fft=MUSICNN_N_FFT,
                                         n_mels=MUSICNN_N_MELS)  # [n, 96, frames]
    mel = np.swapaxes(mel, 1, 2).astype(np.float16)
    return np.log10(10000 * mel.astype(np.float32) + 1).astype(np.float32)


def _bn(name):
    import tf_keras as keras

    return keras.layers.BatchNormalization(epsilon=1e-3, name=name)  # TF1's tf.layers default


def make_musicnn(n_frames: int | None = None, *, num_classes: int = 50):
    """The ``MTT_musicnn`` network (``musicnn.models.build_musicnn``) as a functional tf_keras model.

    Returns:
        A model: float32 [batch, frames, 96] → ``{"logits": [batch, 50], "penultimate":
        [batch, 200], "mean_pool": [batch, 753], "max_pool": [batch, 753]}``. Layer names are
        the checkpoint's (``conv2d_K``, ``batch_normalization_K``, ``dense``, ``dense_1``).
    """
    import tf_keras as keras

    L = keras.layers
    x = keras.Input((n_frames, MUSICNN_N_MELS), name="log_mel")
    h = _bn("batch_normalization")(L.Reshape((-1, MUSICNN_N_MELS, 1))(x))

    def pad3(t):  # the time axis only: a cheap 'same' for kernels that span all frequencies
        return L.ZeroPadding2D(((3, 3), (0, 0)))(t)

    def front_block(inputs, filters, kernel, padding, k):
        conv = L.Conv2D(filters, kernel, padding=padding, activation="relu",
                        name="conv2d" if k == 0 else f"conv2d_{k}")(inputs)
        bn = _bn(f"batch_normalization_{k + 1}")(conv)
        pooled = L.MaxPooling2D((1, int(bn.shape[2])))(bn)  # max over all frequencies
        return L.Reshape((-1, filters))(pooled)  # [b, T, filters]

    front = [front_block(pad3(h), 204, (7, int(0.4 * MUSICNN_N_MELS)), "valid", 0),  # timbral
             front_block(pad3(h), 204, (7, int(0.7 * MUSICNN_N_MELS)), "valid", 1)]
    front += [front_block(h, 51, (length, 1), "same", k) for k, length in ((2, 128), (3, 64), (4, 32))]  # temporal
    frontend = L.Concatenate(axis=2)(front)  # [b, T, 561]

    mid = [L.Reshape((-1, 561, 1))(frontend)]
    for k in (5, 6, 7):
        previous = mid[-1]
        conv = L.Conv2D(64, (7, int(previous.shape[2])), padding="valid", activation="relu",
                        name=f"conv2d_{k}")(pad3(previous))  # [b, T, 1, 64]
        out = L.Permute((1, 3, 2))(_bn(f"batch_normalization_{k + 1}")(conv))  # [b, T, 64, 1]
        mid.append(out if k == 5 else L.Add()([out, previous]))  # residual from the second layer on
    features = L.Reshape((-1, 753))(L.Concatenate(axis=2)(mid))  # [b, T, 753]

    max_pool = L.GlobalMaxPooling1D(name="max_pool")(features)
    mean_pool = L.GlobalAveragePooling1D(name="mean_pool")(features)
    column = L.Reshape((753, 1))
    flat = L.Flatten()(L.Concatenate(axis=2)([column(max_pool), column(mean_pool)]))  # max, mean per feature
    dense = L.Dense(200, activation="relu", name="dense")(_bn("batch_normalization_9")(flat))
    penultimate = _bn("batch_normalization_10")(dense)
    logits = L.Dense(num_classes, name="dense_1")(penultimate)
    return keras.Model(x, {"logits": logits, "penultimate": penultimate, "mean_pool": mean_pool,
                           "max_pool": max_pool}, name="musicnn")


def load_musicnn_weights(model, checkpoint: str) -> None:
    """Assigns the TF1 checkpoint's variables (``NAME/kernel``, ``NAME/moving_mean`` …) to the
    layers of the same name; every checkpoint variable but the optimizer's is used exactly once."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint))
    wanted = {k for k in reader.get_variable_to_shape_map() if "Adam" not in k and "power" not in k}
    used = set()
    for layer in model.layers:
        for var in layer.weights:
            key = f"{layer.name}/{var.name.split('/')[-1].split(':')[0]}"
            if key not in wanted:
                raise ConfigError(f"{checkpoint}: no variable {key!r} for the re-implemented musicnn")
            var.assign(reader.get_tensor(key))
            used.add(key)
    if used != wanted:
        raise ConfigError(f"{checkpoint}: variables left unused: {sorted(wanted - used)[:5]}")


@functools.lru_cache(maxsize=1)
def musicnn():
    """The pretrained ``MTT_musicnn`` (built and loaded once per process)."""
    folder = package_folder("musicnn", "musicnn==0.1.0") / MUSICNN_MODEL
    model = make_musicnn()
    load_musicnn_weights(model, f"{folder}/")  # the checkpoint prefix is the folder itself (".index")
    return model


def musicnn_embed(audio: np.ndarray, sample_rate: int, *, batch_size: int = 16, layer: str = "penultimate") -> np.ndarray:
    """Clips [n, samples] → musicnn embeddings [n, 200] (``layer``: any output of :func:`make_musicnn`)."""
    from ..model.networks import map_batches

    x = musicnn_input(audio, sample_rate)
    if x.shape[1] < MUSICNN_MIN_FRAMES:
        raise ConfigError(f"clips of {x.shape[1]} musicnn frames are too short (at least {MUSICNN_MIN_FRAMES}, "
                          f"{MUSICNN_MIN_FRAMES * MUSICNN_HOP / MUSICNN_SR:.2f} s)")
    net = musicnn()
    return map_batches(lambda b, _: net(b, training=False)[layer].numpy(), x, batch_size)


def fad(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two sets of embeddings [n, d] (Kilgour et al. 2019)."""
    from .sample_metrics import frechet_distance

    return frechet_distance(a, b)


# --- basic-pitch ------------------------------------------------------------------------------

BASIC_PITCH_SR = 22050
BASIC_PITCH_WINDOW = 43844  # samples per window (2 s less one hop), as the package's inference
BASIC_PITCH_LOWEST_MIDI = 21  # the note posteriorgram's 88 keys start at A0
CONFIDENT_PITCH = 0.3  # mean note activation of the dominant key at or above this (basic-pitch's frame threshold)
SINGLE_PITCH_SHARE = 0.5  # the dominant key holds at least this share of all keys' mean activation


@functools.lru_cache(maxsize=1)
def basic_pitch():
    """basic-pitch's (Bittner et al. 2022; package ``basic-pitch`` 0.4.0, Apache-2.0) SavedModel, once per process."""
    import tensorflow as tf

    folder = package_folder("basic_pitch", "basic-pitch==0.4.0") / "saved_models" / "icassp_2022" / "nmp"
    return tf.saved_model.load(str(folder)).signatures["serving_default"]


def note_activations(audio: np.ndarray, sample_rate: int, *, batch_size: int = 16) -> np.ndarray:
    """Clips [n, samples] → each clip's mean note activation per piano key, float32 [n, 88].

    Each clip is cut into basic-pitch's 2-second windows (the last one zero-padded) and the
    ``note`` posteriorgram is averaged over all frames of all its windows.
    """
    import librosa
    import tensorflow as tf

    from ..model.networks import map_batches

    audio = np.atleast_2d(np.asarray(audio, np.float32))
    if sample_rate != BASIC_PITCH_SR:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=BASIC_PITCH_SR, axis=-1)
    n, length = audio.shape
    windows = max(1, -(-length // BASIC_PITCH_WINDOW))
    padded = np.zeros((n, windows * BASIC_PITCH_WINDOW), np.float32)
    padded[:, :length] = audio
    x = padded.reshape(n * windows, BASIC_PITCH_WINDOW, 1)
    net = basic_pitch()
    notes = map_batches(lambda b, _: net(input_2=tf.constant(b))["note"].numpy(), x, batch_size)  # [n*w, 172, 88]
    return notes.reshape(n, -1, notes.shape[-1]).mean(axis=1)


def pitch_stats(activations: np.ndarray) -> dict[str, np.ndarray]:
    """Per clip, from :func:`note_activations` [n, 88]: ``midi`` (the dominant key), ``confidence``
    (its mean activation), ``share`` (its part of all keys' activation above the clip's baseline),
    ``entropy`` (nats, of those excess activations normalised over keys: GANSynth's pitch entropy,
    low for one clear pitch) and ``confident_single`` (confidence ≥ ``CONFIDENT_PITCH`` and share ≥
    ``SINGLE_PITCH_SHARE``). basic-pitch's note activations sit near 0.1 on keys that do not sound,
    so each clip's median over keys is its baseline."""
    raw = np.asarray(activations, np.float64)
    a = np.maximum(raw - np.median(raw, axis=1, keepdims=True), 0.0)
    key = raw.argmax(axis=1)
    peak = raw[np.arange(len(raw)), key]
    total = np.maximum(a.sum(axis=1), 1e-12)
    p = a / total[:, None]
    entropy = -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)
    share = a[np.arange(len(a)), key] / total
    return {"midi": key + BASIC_PITCH_LOWEST_MIDI, "confidence": peak, "share": share, "entropy": entropy,
            "confident_single": (peak >= CONFIDENT_PITCH) & (share >= SINGLE_PITCH_SHARE)}


def pitch_accuracy(predicted_midi: np.ndarray, true_midi: np.ndarray) -> dict[str, float]:
    """Share of clips whose dominant pitch is the true one, exactly and within ±1 semitone
    (clips without a true pitch, NaN, are left out)."""
    true = np.asarray(true_midi, np.float64)
    known = np.isfinite(true)
    if not known.any():
        return {"pitch_accuracy": float("nan"), "pitch_accuracy_1": float("nan")}
    diff = np.abs(np.asarray(predicted_midi, np.float64)[known] - true[known])
    return {"pitch_accuracy": float((diff == 0).mean()), "pitch_accuracy_1": float((diff <= 1).mean())}
