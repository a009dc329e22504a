"""The pretrained judges alone (no classifier) on one model and dataset: the generation table's
sets (real floor, dataset mean, white noise, reconstructions, prior T=1, interpolation midpoints),
scored by :func:`vae_tfp.evaluation.sample_metrics.judge_sets` after inversion. Prints one JSON object.

    python benchmarks/judges.py --model saved_models/demo --data data/notes [-n 64]
"""

import argparse
import os
import sys
import time


sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.sample_metrics import judge_sets, sample_sets
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="saved_models/demo")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--split", default="test")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="judges_demo")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model, data = load_model(args.model), open_dataset(args.data)
    # the generation table's own sets and judges (vae_tfp.evaluation.sample_metrics), without the classifier
    sets = sample_sets(model, data, split=args.split, n_samples=args.n, temperatures=(1.0,), per_component=False,
                       seed=args.seed)
    columns, info = judge_sets(model, data, sets, split=args.split, n=args.n, seed=args.seed,
                               log=lambda m: print(m, file=sys.stderr, flush=True))
    emit(args.name, {"benchmark": "judges", "machine": machine(), "model": args.model, "data": args.data,
                     "split": args.split, "seed": args.seed, "judges": info,
                     "rows": [{"set": name, **row} for name, row in columns.items()],
                     "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
