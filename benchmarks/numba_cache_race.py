"""numba#10128 on this machine, and what ``make install``'s warm-up (``python -m
vae_tfp.audio.numba_cache``) does to it. Two processes that compile librosa's numba functions at
once, one having compiled another first (numba's function ids then differ between them), can
leave numba's cache with a gufunc from one and its kernel from the other; a later process that
loads the pair segfaults when it calls it. Per trial, in a fresh ``NUMBA_CACHE_DIR`` (empty:
"cold"; filled by the warm-up first: "warm"): two processes at once (``librosa.util.localmax``
then ``estimate_pitch``; ``estimate_pitch`` alone), then the two again one after the other.
Counts the trials in which a process crashed. Prints one JSON object.

    python benchmarks/numba_cache_race.py [--trials 12]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine  # noqa: E402

CHILD = """
import sys
import numpy as np
import librosa
if sys.argv[1] == "other":  # another numba function compiled first
    librosa.util.localmax(np.random.rand(10))
from vae_tfp.audio.metrics import estimate_pitch
estimate_pitch(np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32), 16000)
"""


def trial(cache: Path, warm: bool) -> list[int]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    if warm:
        subprocess.run([sys.executable, "-m", "vae_tfp.audio.numba_cache"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = lambda order: subprocess.Popen([sys.executable, "-c", CHILD, order], env=env,  # noqa: E731
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    together = [run("other"), run("plain")]
    codes = [p.wait() for p in together]
    return codes + [run(order).wait() for order in ("plain", "other")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    import librosa
    import numba

    result = {"machine": machine(), "trials": args.trials,
              "versions": {"numba": numba.__version__, "librosa": librosa.__version__}}
    for mode in ("cold", "warm"):
        start, crashed, codes = time.time(), 0, []
        for t in range(args.trials):
            with tempfile.TemporaryDirectory() as cache:
                c = trial(Path(cache), warm=mode == "warm")
            codes.append(c)
            crashed += any(c)
            print(f"{mode} trial {t}: exit codes {c}", file=sys.stderr)
        result[mode] = {"trials_with_a_crash": crashed, "exit_codes": codes, "seconds": round(time.time() - start, 1)}
    emit("numba_cache_race", result)


if __name__ == "__main__":
    main()
