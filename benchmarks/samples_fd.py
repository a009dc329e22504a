"""Can the previews' samples_fd fail? On committed models, the distance to a fixed subset of
training clips of: other training clips (the real floor), held-out clips, reconstructions, prior
samples and the dataset's mean image, for two seeds of the subsets.

    python benchmarks/samples_fd.py --pairs saved_models/demo=data/notes saved_models/music=data/singularity
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.apps.generate import decode, reconstruct
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.sample_metrics import audio_statistics
    from vae_tfp.model.previews import METRIC_SAMPLES, StatisticsDistance, reference_sets
    from vae_tfp.model.prior import sample_prior
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", nargs="+", default=["saved_models/demo=data/notes",
                                                   "saved_models/music=data/singularity"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--name", default="samples_fd")
    args = ap.parse_args()

    out = {"n": METRIC_SAMPLES, "models": {}, "machine": machine()}
    for pair in args.pairs:
        model_dir, data_dir = pair.split("=")
        model, data = load_model(model_dir), open_dataset(data_dir)
        config = model.spectrogram_config
        stats = lambda images: audio_statistics(images, config)  # noqa: E731
        rows = {}
        for seed in args.seeds:
            reference, floor = reference_sets(data, seed=seed)  # as train() picks them
            distance = StatisticsDistance(stats(reference))
            val = data.load("val", rows=data.sample("val", METRIC_SAMPLES, seed=seed))
            rows[seed] = {
                "real floor (other training clips)": distance(stats(floor)),
                "held-out clips (validation split)": distance(stats(val)),
                "reconstructions of those": distance(stats(reconstruct(model, val))),
                "prior samples": distance(stats(decode(model, sample_prior(model, METRIC_SAMPLES, seed=seed)))),
                "dataset mean image": distance(stats(data.mean_image()[None])),
            }
        out["models"][model_dir] = {"data": data_dir, "by_seed": rows}
    emit(args.name, out)


if __name__ == "__main__":
    main()
