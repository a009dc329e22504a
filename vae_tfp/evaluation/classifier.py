"""A small spectrogram classifier whose features score generated images (after GANSynth).

GANSynth (Engel et al., ICLR 2019) judged generated notes with the features and predictions of a
pitch classifier trained on the real data: a generated set is good when, seen through that
classifier, it is distributed like the real one. This module trains such a classifier on a
prepared dataset's own labels — the folder label of every clip and, where the source folder had
a ``metadata.json``, each discrete field of it (the embedded notes: ``pitch``, ``instrument``,
``program``, ``velocity``) — one softmax head per label field on a shared 64-D feature layer.

It is saved in the dataset it was trained on, as weights + JSON config like every model here::

    DATASET/classifier/config.json              format, heads and their classes, accuracies,
                                                the manifest's hash, the weights' hash
    DATASET/classifier/classifier.weights.h5

and retrained when the dataset's manifest changes. Input: float32 [n, H, W, 1] in [0, 1];
average pooling first brings any preset to at most 128 frequency rows x 32 time columns (the
images change slowly along time), so one epoch over the embedded notes takes about a second.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from ..data.dataset import DatasetLike, label_value, open_dataset
from ..errors import DatasetError, ModelFileError
from ..files import read_format_json, sha256_file, write_json_atomic

FORMAT = "vae_tfp.classifier/1"
FOLDER = "classifier"
WEIGHTS = "classifier.weights.h5"
MAX_CLASSES = 64  # a metadata field with more distinct values is not a label (a title, a file name)
FEATURE_DIM = 64
POOLED_SHAPE = (128, 32)  # frequency rows, time columns after the input pooling


def label_heads(clips: list[dict[str, Any]]) -> dict[str, list]:
    """The label fields of a split's clips: ``{field: sorted classes}``.

    ``label`` (the folder label) and every metadata field whose values are integers or strings,
    present on every clip, with 2 to ``MAX_CLASSES`` distinct values. Empty when the clips carry
    no label that varies.
    """
    fields: dict[str, list] = {"label": [c["label"] for c in clips]}
    for key in sorted({k for c in clips for k in (c.get("meta") or {})}):
        values = [(c.get("meta") or {}).get(key) for c in clips]
        if all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in values):
            fields[key] = values
    heads = {}
    for name, values in fields.items():
        classes = sorted(set(values), key=lambda v: (isinstance(v, str), v))
        if 2 <= len(classes) <= MAX_CLASSES:
            heads[name] = classes
    return heads


def _pool_size(shape) -> tuple[int, int]:
    h, w = shape[0], shape[1]
    return max(1, h // POOLED_SHAPE[0]), max(1, w // POOLED_SHAPE[1])


def make_classifier(input_shape, heads: dict[str, int], *, seed: int = 0):
    """Pooling → three stride-2 ReLU convs → 64-D features → one linear (logits) head per field.

    Returns:
        A functional tf_keras model: float32 [batch, H, W, 1] → ``{"features": [batch, 64],
        field: logits [batch, classes] ...}``.
    """
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(shape=tuple(input_shape), name="spectrogram")
    x = keras.layers.AveragePooling2D(_pool_size(input_shape), name="pool")(x)
    for i, filters in enumerate((32, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer="he_uniform", name=f"conv{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    features = keras.layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    outputs = {"features": features}
    for name, n in heads.items():
        outputs[name] = keras.layers.Dense(n, name=f"head_{name}")(features)
    return keras.Model(inputs, outputs, name="classifier")


@dataclasses.dataclass
class Classifier:
    """A trained classifier: ``model`` plus its heads' classes (``{field: classes}``) and record."""

    model: Any
    heads: dict[str, list]
    record: dict[str, Any]

    @property
    def primary(self) -> str:
        """The head that Inception Score and confidence use: ``pitch`` if there is one (as GANSynth), else ``label``."""
        return "pitch" if "pitch" in self.heads else next(iter(self.heads))

    def predict(self, images: np.ndarray, *, batch_size: int = 64) -> dict[str, np.ndarray]:
        """``{"features": [n, 64], field: probabilities [n, classes] ...}`` for images [n, H, W, 1]."""
        import tensorflow as tf

        from ..model.networks import map_batches

        def heads(batch, _):
            return {k: v.numpy() if k == "features" else tf.nn.softmax(v).numpy()
                    for k, v in self.model(batch, training=False).items()}

        return map_batches(heads, np.asarray(images, np.float32), batch_size)


def _targets(clips, heads) -> dict[str, np.ndarray]:
    out = {}
    for name, classes in heads.items():
        index = {c: i for i, c in enumerate(classes)}
        values = [label_value(c, name) for c in clips]
        # a class not seen in training (a held-out pitch) gets -1: left out of the accuracy
        out[name] = np.array([index.get(v, -1) for v in values], np.int64)
    return out


def train_classifier(data: DatasetLike, *, epochs: int = 40, batch_size: int = 32, seed: int = 0,
                     log=print) -> Classifier | None:
    """Trains the classifier on the train split and saves it in the dataset's ``classifier/`` folder.

    Returns:
        The classifier, or None when the dataset has no label with two or more classes (the
        sample metrics then use a label-free embedding).
    """
    import tensorflow as tf
    import tf_keras as keras

    data = open_dataset(data)
    clips = data.split_clips("train")
    heads = label_heads(clips)
    if not heads:
        return None
    t0 = time.perf_counter()
    shape = data.config.shape
    y = _targets(clips, heads)
    model = make_classifier(shape, {k: len(v) for k, v in heads.items()}, seed=seed)
    # the features output carries no loss; each head a softmax cross-entropy on its logits
    loss = {k: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for k in heads}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    if data.input_plan("train")["cache"]:  # fits the memory budget: in memory, shuffled by Keras
        model.fit(data.load("train"), y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    else:  # streamed in bounded memory; each clip's targets looked up by its position in the split
        targets = {k: tf.constant(v) for k, v in y.items()}
        model.fit(data.tf_dataset("train", batch_size=batch_size, seed=seed, positions=True).map(
            lambda images, at: (images, {k: tf.gather(t, at) for k, t in targets.items()})), epochs=epochs, verbose=0)
    classifier = Classifier(model, heads, {})
    accuracy = {}
    for split in ("train", "val", "test"):
        if split not in data.splits or not data.n_clips(split):
            continue
        predicted = {k: np.concatenate([classifier.predict(b)[k].argmax(1) for b in data.batches(split, 256)])
                     for k in heads}
        ys = _targets(data.split_clips(split), heads)
        accuracy[split] = {k: float(np.mean(predicted[k][ys[k] >= 0] == ys[k][ys[k] >= 0]))
                           if (ys[k] >= 0).any() else None for k in heads}
    folder = data.path / FOLDER
    folder.mkdir(exist_ok=True)
    model.save_weights(os.fspath(folder / WEIGHTS))
    record = {"format": FORMAT, "heads": heads, "input_shape": list(shape), "epochs": epochs, "seed": seed,
              "manifest_sha256": data.sha256, "accuracy": accuracy,
              "seconds": round(time.perf_counter() - t0, 1),
              "weights_sha256": sha256_file(folder / WEIGHTS)}
    write_json_atomic(folder / "config.json", record)
    log(f"trained the sample-metrics classifier on {len(clips)} clips of {data.path} ({record['seconds']} s); "
        f"accuracy {accuracy}")
    classifier.record = record
    return classifier


def load_classifier(data: DatasetLike, *, train_if_missing: bool = True, log=print) -> Classifier | None:
    """The dataset's classifier; trained first when missing or trained on another manifest.

    Returns:
        The classifier, or None when the dataset has no labels to train one on.
    """
    data = open_dataset(data)  # a clear error for a folder that is not a dataset
    folder = data.path / FOLDER
    config = folder / "config.json"
    if config.is_file():
        record = read_format_json(config, FORMAT, ModelFileError, "classifier config")
        weights = folder / WEIGHTS
        fresh = record.get("manifest_sha256") == data.sha256 and weights.is_file() and \
            sha256_file(weights) == record.get("weights_sha256")
        if fresh:
            heads = {k: list(v) for k, v in record["heads"].items()}
            model = make_classifier(tuple(record["input_shape"]), {k: len(v) for k, v in heads.items()})
            model.load_weights(os.fspath(weights))
            return Classifier(model, heads, record)
        log(f"{folder}: trained on another version of the dataset (or damaged); retraining")
    if not train_if_missing:
        raise DatasetError(f"{data.path}: has no trained classifier (run `vae-tfp evaluate ... --samples N`)")
    return train_classifier(data, log=log)
