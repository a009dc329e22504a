"""Trains the same architecture with each likelihood for the same number of examples and
evaluates on the held-out split. Prints one JSON object.

    python benchmarks/compare_likelihoods.py --data data/notes-small --preset small --epochs 8
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from vae_tfp.config import LIKELIHOODS, model_preset
from vae_tfp.evaluation.diagnostics import evaluate_saved
from vae_tfp.model.training import train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--split", default="test")
    ap.add_argument("--likelihoods", nargs="*", default=list(LIKELIHOODS))
    args = ap.parse_args()
    out = {"data": args.data, "preset": args.preset, "epochs": args.epochs, "split": args.split, "results": {}}
    root = Path(tempfile.mkdtemp(prefix="likelihoods-"))
    for lik in args.likelihoods:
        cfg = model_preset(args.preset).replace(likelihood=lik)
        t0 = time.perf_counter()
        train(args.data, root / lik, cfg, epochs=args.epochs, verbose=0, tensorboard=False, log=lambda _: None)
        seconds = time.perf_counter() - t0
        r = evaluate_saved(root / lik, args.data, args.split)
        r.pop("kl_per_dim")
        out["results"][lik] = {**r, "train_seconds": round(seconds, 1)}
        print(json.dumps({lik: out["results"][lik]}), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
