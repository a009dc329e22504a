import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vae_tfp.config import spectrogram_preset  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def tiny():
    return spectrogram_preset("tiny")


def harmonic(seconds: float, sr: int, f0: float = 220.0, amp: float = 0.5, channels: int = 1) -> np.ndarray:
    """A decaying harmonic tone, float32 [n] or [n, channels]."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(amp / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6)) * np.exp(-t / max(seconds, 1e-3))
    x = x.astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write(path: Path, data: np.ndarray, sr: int, subtype: str | None = None, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    return path


@pytest.fixture
def audio_folder(tmp_path, tiny):
    """Two labelled sub-folders of good files, plus broken ones that must be skipped."""
    root = tmp_path / "src"
    for label, f0 in (("low", 110.0), ("high", 880.0)):
        for i in range(3):
            write(root / label / f"{label}_{i}.wav", harmonic(1.2, 16000, f0 * (1 + 0.1 * i)), 16000)
    (root / "low" / "empty.wav").write_bytes(b"")
    (root / "high" / "text.wav").write_text("this is not audio")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A prepared 64x64 dataset of two labelled tone families (about 40 clips)."""
    from vae_tfp.data.dataset import prepare_dataset

    root = tmp_path_factory.mktemp("tiny_src")
    for label, f0 in (("low", 150.0), ("high", 900.0)):
        for i in range(8):
            write(root / label / f"{label}_{i}.wav", harmonic(1.5, 8000, f0 * (1 + 0.05 * i)), 8000)
    out = tmp_path_factory.mktemp("tiny_ds") / "ds"
    prepare_dataset([root], out, spectrogram_preset("tiny"), progress=False, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def trained_tiny(tiny_dataset, tmp_path_factory):
    """A tiny model trained for 3 epochs on ``tiny_dataset`` (its folder)."""
    from vae_tfp.config import model_preset
    from vae_tfp.model.training import train

    model_dir = tmp_path_factory.mktemp("models") / "tiny"
    train(tiny_dataset, model_dir, model_preset("tiny"), epochs=3, batch_size=8, verbose=0, log=lambda _: None,
          tensorboard=False)
    return model_dir


@pytest.fixture(scope="session")
def shared_smoke(tmp_path_factory):
    """One smoke setup (:func:`vae_tfp.apps.demo.smoke_setup`) that every notebook's SMOKE run
    reuses: its folder is ``$VAE_TFP_SMOKE_DIR`` for this process and the kernels it starts."""
    from vae_tfp.apps.demo import SMOKE_DIR_ENV, smoke_setup

    root = tmp_path_factory.mktemp("smoke")
    setup = smoke_setup(root)
    os.environ[SMOKE_DIR_ENV] = str(root)
    yield setup
    os.environ.pop(SMOKE_DIR_ENV, None)


def smoke_notebook(path: Path):
    """The notebook at ``path`` with ``SMOKE = True`` injected after its parameters cell (as a
    user would set it), for headless and browser runs."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert params, f"{path.name} has no cell tagged 'parameters'"
    nb.cells.insert(params[0] + 1, nbformat.v4.new_code_cell("SMOKE = True  # injected by the test"))
    return nb


def pytest_report_header(config):
    from browser import find_chromium

    path, why = find_chromium()
    return f"browser tests: Chromium at {path}" if path else f"browser tests: SKIPPED — {why}"


def pytest_terminal_summary(terminalreporter):
    from browser import find_chromium

    path, why = find_chromium()
    if not path:
        terminalreporter.write_line(f"browser tests SKIPPED: {why}", yellow=True, bold=True)


# The heaviest files first, heaviest at the top (seconds in one 2-worker run on the 2-core CI machine,
# `pytest --durations=0`, summed by file: browser 216, training 161, adversarial 138, benchmarks 120,
# faults 101, time_structure 69, devices 60; the other 27 files 333 together; distribute 193 then,
# about 125 since its runs share processes). With
# `--no-loadscope-reorder` (Makefile) pytest-xdist hands the files to its workers in this order.
# Its default orders them by number of tests, which left the one-test, 100-second fault suite for
# last, on one worker while the other idled. A file missing from the list runs after these, in
# collection order; a stale list costs minutes, never a result.
HEAVY_FIRST = ("tests/apps/test_browser.py", "tests/model/test_training.py", "tests/model/test_adversarial.py",
               "tests/model/test_distribute.py", "tests/test_benchmarks.py", "tests/test_faults.py",
               "tests/evaluation/test_time_structure.py", "tests/model/test_devices.py", "tests/audio/test_numba_cache.py")


def pytest_collection_modifyitems(config, items):
    missing = [path for path in HEAVY_FIRST if not (Path(config.rootpath) / path).is_file()]
    if missing:  # a renamed file would silently lose its place
        raise pytest.UsageError(f"tests/conftest.py: HEAVY_FIRST names {', '.join(missing)}, which do not exist")
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: files stay whole
