"""Phase reconstruction: spectral convergence and log-spectral distance against Griffin-Lim
iterations and wall time, for a random start vs a PGHI start (``vae_tfp.audio.phase``).

Sets: clips of the embedded notes and chorales (magnitudes of real STFTs: consistent) and, with
``--model``, decoded model spectrograms (reconstructions of held-out notes and prior samples),
whose magnitudes are not the magnitudes of any signal. Inversion is the batched TF Griffin-Lim
that generation uses; seconds per clip include the starting phase (PGHI runs in NumPy/numba).
Also times PGHI's heap loop compiled vs in plain Python (the reason numba is used).

    python benchmarks/inversion.py --spec default --clips 24 --model saved_models/demo
"""

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

ITERS = (0, 8, 16, 24, 32, 100)


def start_seconds(specs, config, init, repeats=3):
    """Seconds per clip to compute the starting phase alone (median of ``repeats``)."""
    from vae_tfp.audio.phase import initial_phase
    from vae_tfp.audio.spectrogram import to_magnitude

    magnitude = to_magnitude(specs, config)
    initial_phase(magnitude[:1], config, init)  # numba compile / cache load (not timed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        initial_phase(magnitude, config, init)
        times.append((time.perf_counter() - t0) / len(specs))
    return float(np.median(times))


def equal_time_iters(curve, start, baseline_iters=32):
    """PGHI iterations that fit in the time of ``baseline_iters`` random-start iterations: the PGHI
    start costs ``start`` extra seconds per clip, an iteration the slope of random's time against
    iterations (least squares over the measured points)."""
    n = np.array(sorted(curve["random"]), float)
    t = np.array([curve["random"][int(k)]["seconds_per_clip"] for k in n])
    per_iter = float(np.polyfit(n, t, 1)[0])
    return max(0, baseline_iters - int(np.ceil(max(start, 0.0) / per_iter))), per_iter


def equal_time(curve, n, per_iter, start, baseline_iters=32):
    sc_r = curve["random"][baseline_iters]["spectral_convergence"]["median"]
    sc_p = curve["pghi"][n]["spectral_convergence"]["median"]
    return {"random_iters": baseline_iters, "pghi_iters": n, "seconds_per_iteration": round(per_iter, 5),
            "pghi_start_seconds": round(start, 4),
            "random_seconds_per_clip": curve["random"][baseline_iters]["seconds_per_clip"],
            "pghi_seconds_per_clip": curve["pghi"][n]["seconds_per_clip"], "random_median_sc": sc_r,
            "pghi_median_sc": sc_p, "reduction": round(1 - sc_p / sc_r, 3),
            "random_median_lsd_db": curve["random"][baseline_iters]["log_spectral_distance_db"]["median"],
            "pghi_median_lsd_db": curve["pghi"][n]["log_spectral_distance_db"]["median"]}


def main():
    from vae_tfp.audio.io import find_audio_files, iter_clips
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import open_dataset
    from vae_tfp.audio.metrics import inversion_curves
    from vae_tfp.audio.phase import pghi
    from vae_tfp.apps.demo import ensure_demo_data
    from vae_tfp.audio.spectrogram import spectrogram, to_magnitude

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data")
    ap.add_argument("--spec", default="default")
    ap.add_argument("--clips", type=int, default=24, help="clips per set")
    ap.add_argument("--model", default=None, help="also invert this model's decoded spectrograms")
    ap.add_argument("--iters", type=int, nargs="+", default=list(ITERS))
    ap.add_argument("--name", default=None, help="results file name (default inversion_SPEC)")
    args = ap.parse_args()
    log = functools.partial(print, file=sys.stderr, flush=True)
    config = spectrogram_preset(args.spec)
    data = ensure_demo_data(args.data, spec=args.spec)
    rng = np.random.default_rng(0)
    sets = {}
    for name in ("notes", "chorales"):
        clips = [c.audio for f in find_audio_files(data["audio"] / name) for c in iter_clips(f, config)]
        pick = sorted(rng.choice(len(clips), min(args.clips, len(clips)), replace=False))
        sets[name] = spectrogram(np.stack([clips[i] for i in pick]), config)
    if args.model:
        from vae_tfp.apps.generate import decode, reconstruct
        from vae_tfp.model.prior import sample_prior
        from vae_tfp.model.saving import load_model

        model = load_model(args.model)
        if model.spectrogram_config != config:
            raise SystemExit(f"{args.model} is built for another spectrogram preset than --spec {args.spec}")
        held_out = open_dataset(data["notes"]).load("test", limit=args.clips)
        sets["model reconstructions"] = reconstruct(model, held_out)
        sets["model prior samples"] = decode(model, sample_prior(model, args.clips, seed=0))

    result = {"benchmark": "inversion", "machine": machine(), "spec": args.spec, "clips_per_set": args.clips,
              "model": args.model, "momentum": 0.99, "sets": {}, "equal_time_vs_random_32": {}}
    for name, specs in sets.items():
        log(f"{name}: {len(specs)} clips")
        curve = inversion_curves(specs, config, iters=args.iters, log=log)
        if 32 in args.iters:
            start = start_seconds(specs, config, "pghi") - start_seconds(specs, config, "random")
            n, per_iter = equal_time_iters(curve, start)
            if n not in curve["pghi"]:
                curve["pghi"].update(inversion_curves(specs, config, iters=[n], inits=["pghi"], log=log)["pghi"])
            result["equal_time_vs_random_32"][name] = equal_time(curve, n, per_iter, start)
        result["sets"][name] = curve

    magnitude = to_magnitude(sets["chorales"][0], config).astype(np.float64)
    pghi(magnitude, config)  # compile (cached on disk afterwards)
    timing = {}
    for label, kw in (("numba", {}), ("python", {"use_numba": False})):
        t0 = time.perf_counter()
        pghi(magnitude, config, **kw)
        timing[label] = round(time.perf_counter() - t0, 4)
    result["pghi_seconds_one_clip"] = timing
    emit(args.name or f"inversion_{args.spec}", result)


if __name__ == "__main__":
    main()
