"""Shared by the benchmarks: machine description and fp32 peak, JSON output."""

import json
import os
import platform
import re
import sys
from pathlib import Path

# VAE_TFP_BENCH_RESULTS redirects the JSON copies (the tests run the scripts into a temp folder).
RESULTS = Path(os.environ.get("VAE_TFP_BENCH_RESULTS", Path(__file__).parent / "results"))


def machine() -> dict:
    """Cores, CPU model, clock and the derived fp32 peak (cores x clock x FMA units x lanes x 2)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:\s*(.*)$", info, re.M).group(1).split()) if "flags" in info else set()
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", info, re.M)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    fma_units = 2 if "fma" in flags else 1
    ghz = (max(mhz) if mhz else 2000.0) / 1000
    peak = cores * ghz * fma_units * lanes * 2
    return {
        "cpu": model.group(1) if model else platform.processor(), "cores": cores, "clock_ghz": round(ghz, 3),
        "simd": "avx512" if lanes == 16 else "avx2" if lanes == 8 else "sse", "fma": "fma" in flags,
        "fp32_peak_gflops": round(peak, 1),
        "peak_derivation": f"{cores} cores x {ghz:.3f} GHz x {fma_units} FMA units x {lanes} fp32 lanes x 2 flops/FMA",
        "gpu": "none", "python": sys.version.split()[0],
    }


def emit(name: str, result: dict, save: bool = True) -> None:
    """Prints one JSON object and keeps a copy in benchmarks/results/NAME.json."""
    text = json.dumps(result, indent=1, default=float)
    print(text, flush=True)
    if save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.json").write_text(text + "\n")


def matmul_gflops(n: int = 2048, repeats: int = 5) -> dict:
    """What this machine's TensorFlow actually sustains on a large fp32 matmul (median of repeats):
    a practical ceiling beside the nominal peak, which ignores boost clocks."""
    import time

    import tensorflow as tf

    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).numpy()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"matmul_n": n, "matmul_gflops": round(2 * n ** 3 / times[len(times) // 2] / 1e9, 1),
            "matmul_gflops_best": round(2 * n ** 3 / times[0] / 1e9, 1)}
