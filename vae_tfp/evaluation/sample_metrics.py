"""Generation metrics: is a set of images distributed like the real data?

Reconstruction is not generation: a model can reconstruct well while its prior samples are noise.
These metrics score any set of images — prior samples, per-component samples, temperatures,
reconstructions, interpolation midpoints — against the real training clips, and every table
carries two rows that calibrate it: the **real floor** (held-out real clips: what a perfect
generator scores) and the **dataset-mean image** (the collapse baseline: what a generator that
learned nothing but the average scores).

Metrics, each on the features of the dataset's classifier (:mod:`vae_tfp.evaluation.classifier`, as
GANSynth scored notes with a pitch classifier) unless said otherwise:

* ``fid``: Fréchet distance between Gaussians fitted to the real and the set's features
  (Heusel et al. 2017). Lower is better. FID is biased upwards for small sets, so a set larger
  than the held-out real floor is scored on random subsets of the floor's size (the mean over
  ``FID_SUBSETS`` of them): every row's FID is comparable with the floor's.
* ``inception_score``: exp E_x KL(p(y|x) || p(y)) over the classifier's primary head (pitch
  for the embedded notes; Salimans et al. 2016). Higher is better: confident and varied.
* ``confidence``: mean top probability of the primary head.
* ``ndb_k``: Number of statistically Different Bins over K (Richardson & Weiss, NeurIPS 2018):
  K-means bins of the real images (average-pooled pixels, as in the paper); the fraction of bins
  whose share of the set differs from the real share (two-proportion z-test, α = 0.05).
* ``precision`` / ``recall``: improved k-NN precision and recall (Kynkäänniemi et al., NeurIPS
  2019, k = 3): the fraction of the set inside the real data's k-NN balls, and of the real data
  inside the set's.
* ``brightness`` and ``brightness_ratio``: mean pixel value, and its ratio to the real data's —
  catches samples that are noise (too bright) or collapsed (too dark).
* ``nn_ratio``: median distance of the set's features to the nearest training clip, over the
  training clips' own median nearest-neighbour distance. Not a quality score but a memorisation
  check: held-out real clips show what novel real sound gives; a generator far below that copies
  its training clips, far above it makes something unlike any of them. (The benchmark's former
  "novelty" and "diversity" figures were of this kind; alone they could not tell noise far from
  every clip from new notes, which is why the table now has FID, NDB and precision/recall next
  to them and the calibration rows.)

Datasets without labels get the same metrics on a label-free embedding: PCA (scikit-learn) of
the average-pooled images, fitted on the training clips. No pretrained audio embedding can be
loaded offline, and a PCA of the real data keeps exactly the directions in which real clips
differ from each other, so a set that misses them scores far from the real data; the Inception
Score and confidence need labels and are left out.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any, Callable

import numpy as np

from ..data.dataset import SUBSET_CLIPS, DatasetLike, open_dataset
from ..errors import ConfigError, DatasetError
from .time_structure import clip_statistics, correlation_summary, levels_db, loudness_contour, onset_contour, statistics_distance

NN_K = 3  # Kynkäänniemi et al.'s k
NDB_ALPHA_Z = 1.959964  # two-sided 5 % critical value of the standard normal
PCA_DIM = 32
POOLED_PIXELS = 32  # NDB bins on images average-pooled to at most 32 x 32
DEFAULT_TEMPERATURES = (1.0, 0.8, 0.6)
FID_SUBSETS = 10
MAX_COMPONENT_ROWS = 10  # per-component rows: the heaviest components only


STAT_BANDS = 16  # frequency bands of the audio statistics
TWO_SAMPLE_FOLDS = 5


def audio_statistics(images: np.ndarray, config) -> np.ndarray:
    """Per clip, statistics of sound rather than pixels: float64 [n, 6 * STAT_BANDS + 6].

    On levels in dB floored at ``AUDIBLE_FLOOR_DB`` (:func:`vae_tfp.evaluation.time_structure.levels_db`:
    real spectrograms hold exact zeros below ``min_db`` that no decoder draws, a cue a
    classifier would find without hearing anything). Per band (``STAT_BANDS`` equal groups of
    bins): mean level, its spread over time, mean positive and negative frame-to-frame change
    (onsets and decays), its spread, and the 90th-percentile level; and for the loudness and
    onset contours (:mod:`vae_tfp.evaluation.time_structure`): mean, std and range.
    """
    x = levels_db(images, config)  # [n, bins, frames]
    n, bins, frames = x.shape
    edges = np.linspace(0, bins, STAT_BANDS + 1).astype(int)
    bands = np.stack([x[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)  # [n, B, T]
    diff = np.diff(bands, axis=2)
    rise, fall = np.maximum(diff, 0), np.maximum(-diff, 0)
    contour = [f(c) for c in (loudness_contour(x), onset_contour(x))
               for f in (lambda c: c.mean(1), lambda c: c.std(1), lambda c: c.max(1) - c.min(1))]
    per_band = [bands.mean(2), bands.std(2), rise.mean(2), fall.mean(2), diff.std(2),
                np.percentile(bands, 90, axis=2)]
    return np.concatenate(per_band + [np.stack(contour, axis=1)], axis=1)


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, *, seed: int = 0, folds: int = TWO_SAMPLE_FOLDS) -> float:
    """Cross-validated accuracy of a classifier telling features ``a`` [n, d] from ``b`` [m, d]
    (Lopez-Paz & Oquab 2017): 0.5 when the sets are indistinguishable, 1 when always told apart.

    The larger set is subsampled (seeded) to the smaller's size, so chance is 0.5; the
    classifier is scikit-learn's standardised logistic regression, scored by stratified k-fold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < folds:
        raise ConfigError(f"a two-sample test needs at least {folds} items per set (got {len(a)} and {len(b)})")
    a = np.asarray(a)[rng.choice(len(a), n, replace=False)]
    b = np.asarray(b)[rng.choice(len(b), n, replace=False)]
    x, y = np.concatenate([a, b]), np.r_[np.zeros(n), np.ones(n)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, x, y, cv=cv, scoring="accuracy").mean())


RELIABLE_SET_SIZE_PER_FEATURE = 2  # images per feature dimension below which the table carries a warning


def pooled_pixels(images: np.ndarray, size: int = POOLED_PIXELS) -> np.ndarray:
    """Average-pools images [n, H, W, 1] to at most ``size`` x ``size`` and flattens: [n, P]."""
    x = np.asarray(images, np.float32)[..., 0]
    n, h, w = x.shape
    fh, fw = max(1, h // size), max(1, w // size)
    x = x[:, :h // fh * fh, :w // fw * fw].reshape(n, h // fh, fh, w // fw, fw).mean(axis=(2, 4))
    return x.reshape(n, -1)


# --- the metrics ------------------------------------------------------------------------------

def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [n, F] and b [m, F]."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    cov_b = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    with warnings.catch_warnings():  # rank-deficient covariances of small sets: the real part is used
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
    covmean = np.real(covmean) if np.iscomplexobj(covmean) else covmean
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)


def inception_score(probs: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities [n, C]."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def kth_neighbour_radii(x: np.ndarray, k: int = NN_K) -> np.ndarray:
    """Distance of each point of x [n, F] to its k-th nearest other point."""
    from sklearn.metrics import pairwise_distances

    d = pairwise_distances(x)
    k = min(k, len(x) - 1)
    return np.sort(d, axis=1)[:, k] if k > 0 else np.zeros(len(x))


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = NN_K,
                     real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake`` against ``real`` features."""
    from sklearn.metrics import pairwise_distances

    real_radii = kth_neighbour_radii(real, k) if real_radii is None else real_radii
    fake_radii = kth_neighbour_radii(fake, k)
    d = pairwise_distances(fake, real)  # [m, n]
    precision = float(np.mean((d <= real_radii[None, :]).any(axis=1)))
    recall = float(np.mean((d.T <= fake_radii[None, :]).any(axis=1)))
    return precision, recall


def ndb(real_bins: np.ndarray, fake_bins: np.ndarray, k: int) -> float:
    """NDB/K: the fraction of K bins whose shares in two samples differ (pooled two-proportion z-test)."""
    n1, n2 = len(real_bins), len(fake_bins)
    p1 = np.bincount(real_bins, minlength=k) / n1
    p2 = np.bincount(fake_bins, minlength=k) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n1 + 1 / n2), 1e-12))
    return float(np.mean(np.abs(p1 - p2) / se > NDB_ALPHA_Z))


# --- the reference: the real training clips, seen through the embedding -------------------------

@dataclasses.dataclass
class Reference:
    """What every set is compared with: the training clips' features, NDB bins and brightness."""

    embed: Callable[[np.ndarray], dict[str, np.ndarray]]
    embedding: str
    primary: str | None
    features: np.ndarray
    radii: np.ndarray
    nn_distance: float
    kmeans: Any
    bins: np.ndarray
    brightness: float
    mean_image: np.ndarray
    info: dict[str, Any]
    time_stats: np.ndarray | None = None  # :func:`~vae_tfp.evaluation.time_structure.clip_statistics` of the clips
    config: Any = None  # their SpectrogramConfig


def build_reference(data: DatasetLike, *, split: str = "train", seed: int = 0, log=print) -> Reference:
    """Embeds the real clips of ``split`` and bins them for NDB; trains the classifier if needed."""
    from sklearn.cluster import KMeans

    from .classifier import load_classifier

    data = open_dataset(data)
    real = data.load(split, rows=data.sample(split, SUBSET_CLIPS, seed=seed))  # a seeded subset of a large split
    if len(real) < 2 * NN_K:
        raise DatasetError(f"{data.path}: split {split!r} has {len(real)} clips; the sample metrics need at "
                           f"least {2 * NN_K}")
    classifier = load_classifier(data, log=log)
    if classifier is not None:
        embed, primary = classifier.predict, classifier.primary
        name = f"classifier features ({', '.join(classifier.heads)}; {classifier.primary} for IS)"
        info = {"classifier_accuracy": classifier.record.get("accuracy")}
    else:
        from sklearn.decomposition import PCA

        pca = PCA(min(PCA_DIM, len(real) - 1), random_state=seed).fit(pooled_pixels(real))
        embed = lambda x: {"features": pca.transform(pooled_pixels(x))}  # noqa: E731
        primary, name, info = None, f"PCA of pooled pixels ({pca.n_components_} components; no labels)", {}
    features = embed(real)["features"]
    k = int(np.clip(len(real) // 20, 2, 50))
    pixels = pooled_pixels(real)
    kmeans = KMeans(k, n_init=10, random_state=seed).fit(pixels)
    return Reference(embed=embed, embedding=name, primary=primary, features=features,
                     radii=kth_neighbour_radii(features), nn_distance=float(np.median(kth_neighbour_radii(features, 1))),
                     kmeans=kmeans, bins=kmeans.labels_,
                     brightness=float(real.mean()), mean_image=real.mean(0),
                     info={"split": split, "n": int(len(real)), "embedding": name, "ndb_bins": k, **info},
                     time_stats=clip_statistics(real, data.config), config=data.config)


def subset_frechet_distance(real: np.ndarray, feats: np.ndarray, size: int | None, *, seed: int = 0) -> float:
    """:func:`frechet_distance` on subsets of ``size`` rows of ``feats`` (mean of ``FID_SUBSETS``), or on all."""
    if size is None or len(feats) <= size:
        return frechet_distance(real, feats)
    rng = np.random.default_rng(seed)
    return float(np.mean([frechet_distance(real, feats[rng.choice(len(feats), size, replace=False)])
                          for _ in range(FID_SUBSETS)]))


def score(reference: Reference, images: np.ndarray, *, fid_size: int | None = None) -> dict[str, float]:
    """Every metric of one set of images [n, H, W, 1] against the reference.

    Args:
        fid_size: Score FID on subsets of this many images (see the module docstring).
    """
    images = np.asarray(images, np.float32)
    if len(images) < 2:
        raise ConfigError(f"a set of {len(images)} images is too small to score (at least 2)")
    out = reference.embed(images)
    feats = out["features"]
    precision, recall = precision_recall(reference.features, feats, real_radii=reference.radii)
    fake_bins = reference.kmeans.predict(pooled_pixels(images))
    from sklearn.metrics import pairwise_distances

    nearest = pairwise_distances(feats, reference.features).min(axis=1)
    brightness = float(images.mean())
    row = {"n": int(len(images)), "fid": subset_frechet_distance(reference.features, feats, fid_size),
           "ndb_k": ndb(reference.bins, fake_bins, reference.kmeans.n_clusters),
           "precision": precision, "recall": recall, "brightness": brightness,
           "brightness_ratio": brightness / max(reference.brightness, 1e-12),
           "nn_ratio": float(np.median(nearest)) / max(reference.nn_distance, 1e-12)}
    if reference.time_stats is not None:
        row.update(statistics_distance(reference.time_stats, clip_statistics(images, reference.config)))
    if reference.primary is not None:
        probs = out[reference.primary]
        row["inception_score"] = inception_score(probs)
        row["confidence"] = float(probs.max(axis=1).mean())
    return row


# --- the table of a model ---------------------------------------------------------------------

def sample_sets(model, data: DatasetLike, *, split: str = "test", n_samples: int = 256,
                temperatures=DEFAULT_TEMPERATURES, per_component: bool = True, seed: int = 0,
                mean_image: np.ndarray | None = None, refine_steps: int = 0,
                refined: dict | None = None) -> dict[str, np.ndarray]:
    """The image sets a model's table scores: name → images [n, H, W, 1].

    ``real (held-out)`` and ``dataset mean`` calibrate; then ``reconstructions`` of the held-out
    split, ``prior T=...`` per temperature, ``interpolation midpoints`` between random held-out
    pairs, and ``component k`` (prior samples of one mixture component each, for the
    ``MAX_COMPONENT_ROWS`` heaviest components). ``refine_steps`` > 0 adds ``reconstructions
    (refined N)``: the held-out clips decoded from codes refined by N steps
    (:func:`~vae_tfp.apps.generate.encode`), taken from ``refined`` (what
    :func:`~vae_tfp.evaluation.diagnostics.evaluate` left in its ``refined_sink``) when it holds
    the same steps and clips.
    """
    from ..apps.generate import decode, encode
    from ..model.prior import sample_prior

    data = open_dataset(data)
    rows = data.sample(split, SUBSET_CLIPS, seed=seed)
    real = data.load(split, rows=rows)  # a seeded subset of a large split
    if len(real) < 2:
        raise DatasetError(f"{data.path}: split {split!r} has {len(real)} clips; scoring needs at least 2")
    mean = data.mean_image("train") if mean_image is None else mean_image
    sets = {"real (held-out)": real, "dataset mean": np.repeat(mean[None], max(n_samples, 2), axis=0)}
    means, _ = encode(model, real)
    sets["reconstructions"] = decode(model, means)
    if refine_steps and refined and refined.get("steps") == refine_steps and np.array_equal(refined["rows"], rows):
        sets[refined_set(refine_steps)] = refined["images"]
    elif refine_steps:
        sets[refined_set(refine_steps)] = decode(model, encode(model, real, refine_steps=refine_steps)[0])
    for t in temperatures:
        sets[f"prior T={t:g}"] = decode(model, sample_prior(model, n_samples, seed=seed, temperature=t))
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, len(real), (len(real), 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) >= 2:
        sets["interpolation midpoints"] = decode(model, (means[pairs[:, 0]] + means[pairs[:, 1]]) / 2)
    if per_component:
        from ..model.prior import mixture_weights

        weights = mixture_weights(model.prior)
        each = max(16, n_samples // MAX_COMPONENT_ROWS)
        for c in np.argsort(-weights)[:MAX_COMPONENT_ROWS]:
            sets[f"component {c} (weight {weights[c]:.2f})"] = decode(
                model, sample_prior(model, each, seed=seed + int(c) + 1, component=int(c)))
    sets["white noise"] = rng.uniform(0, 1, (max(n_samples, 2),) + real.shape[1:]).astype(np.float32)  # a bad baseline
    return sets


JUDGE_N = 64  # clips per set the pretrained judges hear (each is inverted to audio first)


def judges_available() -> bool:
    """Whether the pretrained judges' packages are installed (:mod:`vae_tfp.evaluation.judges`)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("musicnn", "basic_pitch"))


def judge_sets(model, data: DatasetLike, sets: dict[str, np.ndarray], *, split: str = "test", n: int = JUDGE_N,
               seed: int = 0, log=print) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The pretrained judges' columns of every set, on the audio a user hears.

    Each set (and the reference, ``n`` training clips) is cut to the same ``n`` clips (a seeded
    subset; FID-style scores are biased by set size, so every row is scored at one fixed n) and
    inverted with the default Griffin-Lim. Columns: ``fad_musicnn`` (against the reference),
    ``two_sample`` (:func:`two_sample_accuracy` on :func:`audio_statistics` against the held-out
    clips; for the real floor, training against held-out clips), ``two_sample_musicnn`` (the same
    on musicnn embeddings), ``inversion_sc`` (median :func:`~vae_tfp.audio.metrics.inversion_consistency`),
    ``pitch_entropy`` and ``single_pitch`` (share of clips with a confident single pitch), and for
    the held-out clips and their reconstructions ``pitch_acc`` / ``pitch_acc_1`` against the clips'
    ``pitch`` metadata, when the dataset has it.
    """
    from ..apps.generate import to_audio
    from .judges import fad, musicnn_embed, note_activations, pitch_accuracy, pitch_stats
    from ..audio.metrics import inversion_consistency

    data = open_dataset(data)
    config = model.spectrogram_config
    rng = np.random.default_rng(seed)
    held_out = sets["real (held-out)"]
    n = min(n, len(held_out))
    if n < TWO_SAMPLE_FOLDS:
        raise DatasetError(f"{data.path}: split {split!r} has {len(held_out)} clips; the judges need at least "
                           f"{TWO_SAMPLE_FOLDS}")
    pick = lambda x: x[np.sort(rng.choice(len(x), n, replace=False))] if len(x) > n else x  # noqa: E731
    train_clips = data.split_clips("train")  # only the picked rows are read
    train = np.stack([data.image(train_clips[i]) for i in pick(np.arange(len(train_clips)))]).astype(np.float32)[..., None]
    held_idx = np.sort(rng.choice(len(held_out), n, replace=False))
    split_clips = data.split_clips(split)
    clips = [split_clips[i] for i in held_idx]
    true_pitch = np.array([float((c.get("meta") or {}).get("pitch", np.nan)) for c in clips])

    def hear(images):
        audio = to_audio(model, images)
        return audio, musicnn_embed(audio, config.sample_rate)

    _, ref_embedding = hear(train)
    chosen = {name: (held_out[held_idx] if name == "real (held-out)" else
                     images[held_idx] if name.startswith("reconstructions") else pick(images))
              for name, images in sets.items() if not name.startswith("component ")}  # per-component: too few clips
    real_stats = audio_statistics(chosen["real (held-out)"], config)
    real_audio, real_embedding = hear(chosen["real (held-out)"])
    columns = {}
    for name, images in chosen.items():
        t = time.perf_counter()
        audio, embedding = (real_audio, real_embedding) if name == "real (held-out)" else hear(images)
        floor = name == "real (held-out)"
        other_stats = audio_statistics(train, config) if floor else audio_statistics(images, config)
        pitch = pitch_stats(note_activations(audio, config.sample_rate))
        row = {"fad_musicnn": fad(ref_embedding, embedding),
               "two_sample": two_sample_accuracy(real_stats, other_stats, seed=seed),
               "two_sample_musicnn": two_sample_accuracy(real_embedding, ref_embedding if floor else embedding,
                                                         seed=seed),
               "inversion_sc": float(np.median(inversion_consistency(images, config, audio=audio))),
               "pitch_entropy": float(pitch["entropy"].mean()),
               "single_pitch": float(pitch["confident_single"].mean())}
        if (name == "real (held-out)" or name.startswith("reconstructions")) and np.isfinite(true_pitch).any():
            acc = pitch_accuracy(pitch["midi"], true_pitch)
            row.update(pitch_acc=acc["pitch_accuracy"], pitch_acc_1=acc["pitch_accuracy_1"])
        columns[name] = row
        log(f"judged {name}: FAD-musicnn {row['fad_musicnn']:.2f}, two-sample {row['two_sample']:.2f} "
            f"({time.perf_counter() - t:.1f} s)")
    info = {"n": int(n), "reference": f"{n} training clips, inverted",
            "fad": "FAD-musicnn: Fréchet distance of MTT_musicnn penultimate embeddings (200-d), all sets at one n",
            "two_sample": f"{TWO_SAMPLE_FOLDS}-fold logistic regression against {n} held-out clips"}
    return columns, info


def judge_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Spearman rank correlations between the judges over the rows that have them all."""
    from scipy.stats import spearmanr

    keys = ("fad_musicnn", "two_sample", "fid")
    rows = [r for r in rows if all(k in r and np.isfinite(r[k]) for k in keys)]
    if len(rows) < 3:
        return {"n_sets": len(rows)}
    out = {"n_sets": len(rows)}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            out[f"{a} ~ {b}"] = float(spearmanr([r[a] for r in rows], [r[b] for r in rows]).statistic)
    return out


def refined_set(steps: int) -> str:
    """The table row of the reconstructions from codes refined by ``steps`` steps."""
    return f"reconstructions (refined {steps})"


def evaluate_samples(model, data: DatasetLike, *, split: str = "test", n_samples: int = 256,
                     temperatures=DEFAULT_TEMPERATURES, per_component: bool = True, seed: int = 0,
                     reference: Reference | None = None, judges: bool | None = None, judge_n: int = JUDGE_N,
                     log=print, refine_steps: int = 0, refined: dict | None = None) -> dict[str, Any]:
    """The generation table of a loaded model (encoder, decoder and prior) on a dataset.

    With ``judges`` (default: when their packages are installed) every row also holds the
    pretrained judges' columns (:func:`judge_sets`, on ``judge_n`` clips per set) and the result
    their rank agreement (``judge_agreement``).

    Returns:
        ``{"reference": {...}, "rows": [{"set", "n", "fid", ...}], "best_temperature",
        "seconds"}`` — JSON-ready; :func:`format_table` prints it.

    Raises:
        ConfigError: the dataset's spectrogram config differs from the model's.
        DatasetError: the split is missing or too small.
    """
    if any(getattr(model, part, None) is None for part in ("encoder", "decoder", "prior")):
        raise ConfigError("the sample metrics need the model's encoder, decoder and prior")
    data = open_dataset(data)
    data.check_config(model.spectrogram_config, "the model")
    t0 = time.perf_counter()
    reference = reference or build_reference(data, seed=seed, log=log)
    sets = sample_sets(model, data, split=split, n_samples=n_samples, temperatures=temperatures,
                       per_component=per_component, seed=seed, mean_image=reference.mean_image,
                       refine_steps=refine_steps, refined=refined)
    floor = len(sets["real (held-out)"])
    rows = [{"set": name, **score(reference, images, fid_size=floor)} for name, images in sets.items()]
    # time structure of the reconstructions, clip by clip; the held-out row: a different clip (chance)
    reconstructions = [name for name in sets if name.startswith("reconstructions")]
    paired = {name: correlation_summary(sets["real (held-out)"], sets[name], data.config, seed=seed)
              for name in reconstructions}
    for row in rows:
        if row["set"] in paired:
            row.update(loudness_corr=paired[row["set"]]["loudness_corr"], onset_corr=paired[row["set"]]["onset_corr"])
        elif row["set"] == "real (held-out)" and "loudness_corr_chance" in paired["reconstructions"]:
            chance = paired["reconstructions"]
            row.update(loudness_corr=chance["loudness_corr_chance"], onset_corr=chance["onset_corr_chance"])
    judged = judges_available() if judges is None else judges
    if judged:
        columns, judge_info = judge_sets(model, data, sets, split=split, n=judge_n, seed=seed, log=log)
        for row in rows:
            row.update(columns.get(row["set"], {}))
    prior_rows = [r for r in rows if r["set"].startswith("prior T=")]
    best = min(prior_rows, key=lambda r: r["fid"])["set"][len("prior T="):] if prior_rows else None
    result = {"reference": reference.info, "split": split, "rows": rows,
              "best_temperature": float(best) if best is not None else None,
              "seconds": round(time.perf_counter() - t0, 1)}
    if judged:
        result["judges"] = {**judge_info, "agreement": judge_agreement(rows)}
    warning = small_sample_warning(n_samples)
    if warning:
        result["warning"] = warning
        log(f"WARNING: {warning}")
    return result


def small_sample_warning(n: int) -> str | None:
    """Why scores of ``n`` images per set are unreliable, or None: a Fréchet distance needs more
    images than the features have dimensions (else its covariance is singular), and the best
    temperature is chosen by it."""
    from .classifier import FEATURE_DIM

    minimum = RELIABLE_SET_SIZE_PER_FEATURE * FEATURE_DIM
    if n >= minimum:
        return None
    return (f"FID, precision/recall and the best temperature from {n} samples per set are unreliable (the features "
            f"have {FEATURE_DIM} dimensions); score at least {minimum} (--samples {minimum})")


def evaluate_samples_saved(model_dir, data_dir, **kwargs) -> dict[str, Any]:
    """:func:`evaluate_samples` for a saved model folder."""
    from ..model.saving import load_model

    return evaluate_samples(load_model(model_dir), data_dir, **kwargs)


COLUMNS = (("n", "{:d}"), ("fid", "{:.2f}"), ("inception_score", "{:.2f}"), ("confidence", "{:.2f}"),
           ("ndb_k", "{:.2f}"), ("precision", "{:.2f}"), ("recall", "{:.2f}"), ("brightness", "{:.4f}"),
           ("brightness_ratio", "{:.2f}"), ("nn_ratio", "{:.2f}"), ("loudness_corr", "{:.2f}"),
           ("onset_corr", "{:.2f}"), ("onset_rate", "{:.2f}"), ("loudness_range_db", "{:.1f}"),
           ("spectral_flux_db", "{:.2f}"), ("time_w1", "{:.2f}"), ("fad_musicnn", "{:.2f}"),
           ("two_sample", "{:.2f}"), ("two_sample_musicnn", "{:.2f}"), ("inversion_sc", "{:.3f}"),
           ("pitch_acc", "{:.2f}"), ("pitch_acc_1", "{:.2f}"), ("pitch_entropy", "{:.2f}"), ("single_pitch", "{:.2f}"))


def table_rows(result: dict[str, Any], *, components: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a result's rows (components left out unless asked)."""
    rows = [r for r in result["rows"] if components or not r["set"].startswith("component ")]
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    header = ["set"] + [c[0] for c in cols]
    cells = [[r["set"]] + [fmt.format(r[k]) if k in r else "" for k, fmt in cols] for r in rows]
    return header, cells


def format_table(result: dict[str, Any], *, components: bool = False) -> str:
    """A Markdown table of :func:`evaluate_samples`' rows, calibration rows first."""
    header, cells = table_rows(result, components=components)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)
