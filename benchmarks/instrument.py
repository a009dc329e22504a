"""A playable instrument from a model (issue #26): for each instrument of the dataset, both ways of
``vae-tfp instrument`` across keys 48-72 — ``conditional`` (a draw of p(z | instrument, pitch) per
pitch the data has) and ``direction`` (one draw moved along the pitch direction to every key) —
judged on the pitch of every rendered note (pYIN, against the pitch asked for, in cents) and on
how constant the timbre stays (the share of notes the dataset classifier assigns to the instrument).

    python benchmarks/instrument.py --model saved_models/demo --data data/notes
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    import json

    import numpy as np

    from vae_tfp.apps.generate import decode
    from vae_tfp.apps.operations import INSTRUMENT_METHODS, op_instrument
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.evaluation.classifier import load_classifier
    from vae_tfp.model.conditional import fit_conditional, load_conditional
    from vae_tfp.model.saving import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="saved_models/demo")
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--keys", default="48-72")
    ap.add_argument("--instruments", nargs="*", default=None, help="default: every instrument of the data")
    ap.add_argument("--name", default="instrument_demo")
    args = ap.parse_args()
    lo, hi = (int(k) for k in args.keys.split("-"))
    data = open_dataset(args.data)
    classifier = load_classifier(data)
    out = {"benchmark": "instrument", "machine": machine(), "model": args.model, "data": args.data,
           "keys": [lo, hi], "pitch_method": "librosa pYIN, median of voiced frames (10-cent bins)", "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        shutil.copytree(args.model, model_dir)
        fit_conditional(model_dir, data)
        model = load_model(model_dir, parts=("decoder", "prior"))
        instruments = args.instruments or load_conditional(model_dir).known("instrument")
        classes = classifier.heads["instrument"]
        for method in INSTRUMENT_METHODS:
            rows = {}
            for instrument in instruments:
                result = op_instrument(model_dir, Path(tmp) / method / instrument, where={"instrument": instrument},
                                       pitches=range(lo, hi + 1), method=method)
                images = decode(model, np.load(Path(result["out"]) / "latents.npy"))
                predicted = [classes[i] for i in classifier.predict(images)["instrument"].argmax(1)]
                errors = [abs(i["error_cents"]) for i in result["items"]]
                rows[instrument] = {"notes": result["notes"], "pitch_error_cents_median": result["pitch_error_cents_median"],
                                    "within_50_cents": result["within_50_cents"],
                                    "within_50_cents_any_octave": result["within_50_cents_any_octave"],
                                    "unvoiced": result["unvoiced"],
                                    "timbre_kept": float(np.mean([p == instrument for p in predicted])),
                                    "worst_error_cents": max(errors)}
                print(method, instrument, rows[instrument], file=sys.stderr, flush=True)
            out["results"][method] = {
                "mean": {k: round(float(np.nanmean([r[k] for r in rows.values()])), 3)
                         for k in ("pitch_error_cents_median", "within_50_cents", "within_50_cents_any_octave",
                                   "timbre_kept")},
                "per_instrument": rows}
    emit(args.name, out)


if __name__ == "__main__":
    main()
