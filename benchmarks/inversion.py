"""Inversion time per clip and quality: batched TF Griffin-Lim vs librosa at equal iterations,
on real clips of the embedded data; also the round-trip spectral convergence over the whole
embedded dataset with the default inversion.

    python benchmarks/inversion.py --spec default --clips 32 --iters 32
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    from vae_tfp.audio import find_audio_files, iter_clips
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.metrics import clipped_fraction, spectral_convergence, summarize
    from vae_tfp.pipeline import ensure_demo_data
    from vae_tfp.spectrogram import griffin_lim, griffin_lim_tf, spectrogram

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data")
    ap.add_argument("--spec", default="default")
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--iters", type=int, default=32)
    ap.add_argument("--all", action="store_true", help="also round-trip every clip of the embedded data (librosa)")
    args = ap.parse_args()
    config = spectrogram_preset(args.spec)
    audio_dir = ensure_demo_data(args.data, spec=args.spec)["audio"]
    files = find_audio_files(audio_dir / "notes") + find_audio_files(audio_dir / "chorales")
    clips = [c.audio for f in files for c in iter_clips(f, config)]
    rng = np.random.default_rng(0)
    pick = np.stack([clips[i] for i in sorted(rng.choice(len(clips), args.clips, replace=False))])
    specs = spectrogram(pick, config)
    griffin_lim_tf(specs[:2], config, n_iter=args.iters)  # trace once (not timed)
    t0 = time.perf_counter()
    tf_audio = griffin_lim_tf(specs, config, n_iter=args.iters)
    t_tf = time.perf_counter() - t0
    t0 = time.perf_counter()
    lr_audio = np.stack([griffin_lim(s, config, n_iter=args.iters) for s in specs])
    t_lr = time.perf_counter() - t0
    sc_tf = [spectral_convergence(s, r, config) for s, r in zip(specs, spectrogram(tf_audio, config))]
    sc_lr = [spectral_convergence(s, r, config) for s, r in zip(specs, spectrogram(lr_audio, config))]
    out = {"benchmark": "inversion", "machine": machine(), "spec": args.spec, "clips": args.clips,
           "griffin_lim_iters": args.iters,
           "tf_batched": {"seconds_per_clip": round(t_tf / args.clips, 4), "spectral_convergence": summarize(sc_tf)},
           "librosa": {"seconds_per_clip": round(t_lr / args.clips, 4), "spectral_convergence": summarize(sc_lr)},
           "time_ratio_librosa_over_tf": round(t_lr / t_tf, 2)}
    if args.all:
        all_specs = spectrogram(np.stack(clips), config)
        t0 = time.perf_counter()
        rebuilt = griffin_lim_tf(all_specs, config, n_iter=args.iters)
        t_all = time.perf_counter() - t0
        sc = [spectral_convergence(s, r, config) for s, r in zip(all_specs, spectrogram(rebuilt, config))]
        out["embedded_roundtrip"] = {"n_clips": len(clips), "spectral_convergence": summarize(sc),
                                     "seconds_per_clip_tf": round(t_all / len(clips), 4),
                                     "clipped_fraction": float(np.mean([clipped_fraction(s) for s in all_specs]))}
    emit(f"inversion_{args.spec}", out)


if __name__ == "__main__":
    main()
