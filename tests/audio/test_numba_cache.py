import os
import subprocess
import sys

# the package's uses of numba, in a fresh process, on inputs of other sizes and dtypes than warm()'s
USE = """
import numpy as np
from vae_tfp.audio.metrics import estimate_pitch
from vae_tfp.audio.spectrogram import Inversion, griffin_lim, spectrogram
from vae_tfp.config import spectrogram_preset
config = spectrogram_preset("default")
t = np.arange(2 * config.sample_rate) / config.sample_rate
tone = np.sin(2 * np.pi * 220 * t) * np.exp(-t)
print(estimate_pitch(tone, config.sample_rate))
image = spectrogram(tone[:config.clip_samples].astype(np.float32), config)
for phase_init in ("pghi", "random", "zeros"):
    griffin_lim(image.astype(np.float64), config, inversion=Inversion(phase_init=phase_init, n_iter=3))
"""


def _files(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_warm_leaves_the_package_nothing_to_compile(tmp_path):
    """After ``python -m vae_tfp.audio.numba_cache`` (``make install``), processes only read
    numba's cache: none writes to it, so none can race another's write (numba#10128, a segfault
    in CI). Fails when a new use of numba is not in ``warm()``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "vae_tfp.audio.numba_cache"], env=env, check=True, capture_output=True)
    filled = _files(tmp_path)
    assert any(p.name.startswith("guf-pitch") for p in filled) and any("_heap_integrate" in p.name for p in filled)
    used = subprocess.run([sys.executable, "-c", USE], env=env, check=True, capture_output=True, text=True)
    assert abs(float(used.stdout.split()[0]) - 57.0) < 0.2  # A3
    new = {p.name for p, stamp in _files(tmp_path).items() if filled.get(p) != stamp}
    assert not new, f"written after warm(): {sorted(new)}"
