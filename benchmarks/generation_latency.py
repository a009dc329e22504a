"""End-to-end generation latency: z → decoder → Griffin-Lim → WAV bytes, one clip and a batch.

    python benchmarks/generation_latency.py --model saved_models/demo
"""

import argparse
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    import soundfile as sf

    from vae_tfp.apps.generate import generate
    from vae_tfp.audio.spectrogram import Inversion
    from vae_tfp.audio.phase import DEFAULT_PHASE_INIT
    from vae_tfp.model.saving import load_model
    from vae_tfp.audio.spectrogram import DEFAULT_GRIFFIN_LIM_ITERS

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="saved_models/demo")
    ap.add_argument("--iters", type=int, default=DEFAULT_GRIFFIN_LIM_ITERS)
    ap.add_argument("--phase-init", default=DEFAULT_PHASE_INIT)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model = load_model(args.model, parts=("decoder", "prior"))
    sr = model.spectrogram_config.sample_rate
    out = {"benchmark": "generation_latency", "machine": machine(), "model": args.model,
           "image": list(model.spectrogram_config.shape), "griffin_lim_iters": args.iters,
           "phase_init": args.phase_init, "results": {}}
    for n in (1, 16):
        generate(model, n, inversion=Inversion(n_iter=args.iters, phase_init=args.phase_init))  # trace (not timed)
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            _, _, audio = generate(model, n, seed=r, inversion=Inversion(n_iter=args.iters, phase_init=args.phase_init))
            for a in audio:
                sf.write(io.BytesIO(), a, sr, format="WAV", subtype="PCM_16")
            times.append(time.perf_counter() - t0)
        out["results"][f"batch_{n}"] = {"seconds": round(float(np.median(times)), 3),
                                        "seconds_per_clip": round(float(np.median(times)) / n, 3)}
    emit("generation_latency", out)


if __name__ == "__main__":
    main()
