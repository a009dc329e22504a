"""Dataset preparation throughput (decode + resample + spectrogram + write) in x real time over
the embedded audio, sequential and with a process pool.

    python benchmarks/prepare_throughput.py --audio data/demo_audio --spec default
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402


def main():
    import soundfile as sf

    from vae_tfp.audio.io import find_audio_files
    from vae_tfp.config import spectrogram_preset
    from vae_tfp.data.dataset import prepare_dataset
    from vae_tfp.apps.demo import ensure_demo_data

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data")
    ap.add_argument("--spec", default="default")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    audio = ensure_demo_data(args.data, spec=args.spec)["audio"]
    sources = [audio / "notes", audio / "chorales"]
    seconds = sum(sf.info(f).duration for s in sources for f in find_audio_files(s))
    out = {"benchmark": "prepare_throughput", "machine": machine(), "spec": args.spec,
           "audio_seconds": round(seconds, 1), "results": {}}
    config = spectrogram_preset(args.spec)
    for w in args.workers:
        tmp = Path(tempfile.mkdtemp())
        t0 = time.perf_counter()
        m = prepare_dataset(sources, tmp / "ds", config, workers=w, progress=False, log=lambda _: None)
        wall = time.perf_counter() - t0
        shutil.rmtree(tmp)
        out["results"][f"workers_{w}"] = {"wall_s": round(wall, 2), "x_real_time": round(seconds / wall, 1),
                                          "clips": len(m["clips"])}
    emit(f"prepare_throughput_{args.spec}", out)


if __name__ == "__main__":
    main()
