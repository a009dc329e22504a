"""Do prior samples look like the data? Generation metrics of one or more models on one dataset.

For each model (``--models NAME=FOLDER ...``) the table of :func:`vae_tfp.evaluation.sample_metrics.evaluate_samples`:
the real floor (held-out clips), the dataset-mean baseline, reconstructions, prior samples at each
temperature and interpolation midpoints, scored with FID / IS / NDB/K / precision / recall /
brightness on the dataset's classifier. With ``--refit`` each model is also scored after an
ex-post refit of its prior to the codes (a copy is refitted; the folder is left as it is), so
joint training, refit and both can be compared. ``targets`` checks issue #11's acceptance items
on prior samples at T = 1: FID <= 2x the reconstructions', NDB/K <= 0.2, precision >= 0.6,
recall >= 0.4, IS >= 70 % of the real floor's, brightness within 20 %. ``reconstruction`` holds
the held-out recon_gain, active units and KL of each (:func:`vae_tfp.evaluation.diagnostics.evaluate`), so a
recipe's samples are read beside what it keeps of reconstruction.

Also kept: interpolation smoothness (fraction of steps along A → B, between held-out clips, whose
decoded image moves further from A). The former "novelty" and "diversity" ratios are gone: a set
of noise images far from every clip scored as "novel" and "diverse", which is how the earlier demo's
white-noise samples passed; the memorisation check now is ``nn_ratio`` beside the real floor's.

    python benchmarks/sample_quality.py --data data/notes --models demo=saved_models/demo --refit
"""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def targets(result: dict) -> dict:
    rows = {r["set"]: r for r in result["rows"]}
    s, rec, real = rows["prior T=1"], rows["reconstructions"], rows["real (held-out)"]
    checks = {"fid_le_2x_recon": s["fid"] <= 2 * rec["fid"], "ndb_k_le_0.2": s["ndb_k"] <= 0.2,
              "precision_ge_0.6": s["precision"] >= 0.6, "recall_ge_0.4": s["recall"] >= 0.4,
              "brightness_within_20pct": abs(s["brightness_ratio"] - 1) <= 0.2}
    if "inception_score" in s:
        checks["is_ge_70pct_real"] = s["inception_score"] >= 0.7 * real["inception_score"]
    return {**checks, "all": all(checks.values())}


def smoothness(model, data, *, pairs: int, steps: int, seed: int) -> dict:
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.apps.generate import decode, encode
    from vae_tfp.apps.latent import interpolate
    from vae_tfp.apps.operations import monotone_fraction

    held = open_dataset(data).load("test")
    means, _ = encode(model, held)
    rng = np.random.default_rng(seed)
    fractions = []
    for _ in range(pairs):
        i, j = rng.choice(len(held), 2, replace=False)
        flat = decode(model, interpolate(means[i], means[j], steps)).reshape(steps, -1)
        fractions.append(monotone_fraction(np.sqrt(((flat - flat[0]) ** 2).mean(1))))
    return {"pairs": pairs, "steps": steps, "monotone_fraction_mean": float(np.mean(fractions)),
            "monotone_fraction_min": float(np.min(fractions))}


def main():
    from vae_tfp.model.prior_fit import fit_prior_saved
    from vae_tfp.evaluation.sample_metrics import build_reference, evaluate_samples, format_table
    from vae_tfp.model.saving import load_model
    from vae_tfp.evaluation.diagnostics import evaluate

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/notes")
    ap.add_argument("--models", nargs="+", default=["demo=saved_models/demo"], help="NAME=FOLDER ...")
    ap.add_argument("--split", default="test")
    ap.add_argument("-n", type=int, default=256, help="prior samples per temperature")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8, 0.6])
    ap.add_argument("--refit", action="store_true", help="also score each model after an ex-post prior refit")
    ap.add_argument("--modes", type=int, default=None, help="components of the refit (default: the model's)")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="sample_quality")
    args = ap.parse_args()
    reference = build_reference(args.data, seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    results = {}
    for spec in args.models:
        name, _, folder = spec.partition("=")
        variants = [(name, folder)]
        tmp = None
        if args.refit:
            tmp = tempfile.mkdtemp(prefix="vae_tfp_refit_")
            copy = os.path.join(tmp, "model")
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("checkpoints"))
            record = fit_prior_saved(copy, args.data, num_modes=args.modes, seed=args.seed)
            variants.append((f"{name} + refit ({record['num_modes']} components)", copy))
        for label, path in variants:
            model = load_model(path)
            result = evaluate_samples(model, args.data, split=args.split, n_samples=args.n,
                                      temperatures=tuple(args.temperatures), per_component=False, seed=args.seed,
                                      reference=reference)
            held_out = evaluate(model.encoder, model.decoder, model.prior, args.data, args.split)
            result.update(model=folder, targets=targets(result),
                          reconstruction={k: held_out[k] for k in ("recon_gain", "active_units", "kl_nats",
                                                                   "neg_elbo_nats", "prior_hole_gap")},
                          interpolation=smoothness(model, args.data, pairs=args.pairs, steps=args.steps,
                                                   seed=args.seed))
            results[label] = result
            print(f"## {label}\nheld-out reconstruction: {result['reconstruction']}\n{format_table(result)}\n",
                  file=sys.stderr)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    emit(args.name, {"benchmark": "sample_quality", "machine": machine(), "data": args.data, "split": args.split,
                     "n_samples": args.n, "reference": reference.info, "models": results})


if __name__ == "__main__":
    main()
