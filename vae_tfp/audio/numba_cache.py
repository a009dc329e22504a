"""Compiles, once and in one process, every numba function the package runs, into numba's
on-disk cache (``make install`` runs ``python -m vae_tfp.audio.numba_cache``).

librosa's gufuncs compile when their module is imported and its other kernels (and PGHI's heap
here) on their first call; numba caches them on disk, beside their source or in
``NUMBA_CACHE_DIR``. When two processes compile at once, the cache can end up with a gufunc from
one process and its kernel from the other, and a process that loads the pair segfaults on a null
function pointer when it calls it (numba#10128; unfixed in numba 0.68.1, pinned here): in CI a
notebook kernel died so in pYIN while the other test worker ran beside it. A cache filled
beforehand is only read, and reading is safe: ``benchmarks/numba_cache_race.py`` measures both.
numba has no lock for this (its maintainers proposed one in that issue), hence this module.
"""

from __future__ import annotations

import importlib
import sys

# every librosa module with a numba-compiled function (librosa 0.11)
LIBROSA_MODULES = ("librosa.beat", "librosa.core.audio", "librosa.core.constantq", "librosa.core.convert",
                   "librosa.core.notation", "librosa.core.pitch", "librosa.core.spectrum", "librosa.feature.utils",
                   "librosa.filters", "librosa.sequence", "librosa.util.matching", "librosa.util.utils")


def warm() -> None:
    """Imports :data:`LIBROSA_MODULES` (their gufuncs compile) and runs the package's own uses of
    numba once, with the types it calls them with: pYIN (:func:`~vae_tfp.audio.metrics.estimate_pitch`),
    Griffin-Lim (``librosa.istft``) and PGHI's heap."""
    import numpy as np

    from ..config import spectrogram_preset
    from .metrics import estimate_pitch
    from .spectrogram import Inversion, griffin_lim, spectrogram

    for name in LIBROSA_MODULES:
        importlib.import_module(name)
    config = spectrogram_preset("tiny")
    tone = np.sin(2 * np.pi * 440 * np.arange(config.sample_rate) / config.sample_rate).astype(np.float32)
    estimate_pitch(tone, config.sample_rate)
    image = spectrogram(tone[:config.clip_samples], config)
    for phase_init in ("pghi", "random"):
        griffin_lim(image, config, inversion=Inversion(phase_init=phase_init, n_iter=2))


if __name__ == "__main__":
    warm()
    print("numba cache filled", file=sys.stderr)
