"""Executes every notebook headless on its SMOKE configuration (as a user would, top to bottom)."""

from pathlib import Path

import nbformat
import pytest

from browser import find_chromium
from conftest import smoke_notebook

IN_BROWSER = ("03_training.ipynb", "04_sampling.ipynb", "05_latent_space.ipynb")  # the notebooks tests/test_browser.py runs
NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def run_notebook(path: Path, timeout: int = 600):
    from nbclient import NotebookClient

    nb = smoke_notebook(path)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, shared_smoke):
    if path.name in IN_BROWSER and find_chromium()[0]:
        pytest.skip(f"{path.name} runs top to bottom in JupyterLab in tests/test_browser.py (Chromium is present)")
    run_notebook(path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_stripped(path):
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")
