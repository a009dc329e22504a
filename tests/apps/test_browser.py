"""Notebooks 03, 04 and 05 in JupyterLab and the `make demo` report, rendered by a real browser.

Headless Chromium (Debian's, driven by Playwright) runs the notebooks' cells as a user would and
checks what a user would see: no traceback in any cell; every ``<audio>`` loads with the clip's
duration and no MediaError; every ``<img>`` decodes and is not blank; the latent explorer's
widgets render and moving a slider redraws its spectrogram and audio; notebook 03's training
panel updates while it trains (a screenshot is taken mid-training). Screenshots go to
``outputs/browser/``. Skipped, with one line in the summary, when no Chromium is installed.
"""

import base64
import io
import json
import os
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import numpy as np
import pytest
import soundfile as sf

from browser import (PANEL, cell_errors, find_chromium, full_page_screenshot, inspect_media, jupyterlab, launch,
                     media_problems, open_notebook, run_all_cells, wait_until_run, watch_console)
from conftest import smoke_notebook
from test_notebooks import IN_BROWSER

ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "outputs" / "browser"
CHROMIUM, WHY_NOT = find_chromium()
PANEL_EPOCHS = 20  # notebook 03's smoke run in the browser

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason=f"browser tests skipped: {WHY_NOT}")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p, CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, shared_smoke):
    """JupyterLab serving smoke copies of notebooks 03, 04 and 05, a notebook with a failing cell
    and one whose kernel dies."""
    root = tmp_path_factory.mktemp("lab")
    for name in IN_BROWSER:
        nb = smoke_notebook(ROOT / "notebooks" / name)
        if name.startswith("03"):  # train long enough to be watched mid-training
            params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
            nb.cells.insert(params + 1, nbformat.v4.new_code_cell(f"SMOKE_EPOCHS = {PANEL_EPOCHS}  # injected by the test"))
        nbformat.write(nb, root / name)
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('fine')"),
                                             nbformat.v4.new_code_cell("raise ValueError('planted failure')")],
                                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                               "language": "python"}})
    nbformat.write(broken, root / "broken.ipynb")
    dies = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                                           nbformat.v4.new_code_cell("print('never')")], metadata=broken.metadata)
    nbformat.write(dies, root / "dies.ipynb")
    with jupyterlab(root) as lab:
        yield lab


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


def _clip_seconds():
    from vae_tfp.config import spectrogram_preset

    c = spectrogram_preset("tiny")  # the smoke configuration's
    return c.clip_samples / c.sample_rate


def _record(name, **facts):
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")


def _run_in_lab(page, lab, name):
    """Opens ``name`` in JupyterLab, runs all cells, checks that no cell shows a traceback and
    returns ``(media found in the outputs, their problems, console errors)``."""
    console = watch_console(page)
    open_notebook(page, lab, name)
    run_all_cells(page, lab)
    assert cell_errors(page) == []
    found = inspect_media(page, f"{PANEL} .jp-OutputArea")
    return found, media_problems(found, durations=_clip_seconds()), console


def test_sampling_notebook_renders_and_plays(page, lab):
    found, problems, console = _run_in_lab(page, lab, "04_sampling.ipynb")
    full_page_screenshot(page, SHOTS / "04_sampling.png")
    _record("04_sampling", audio=len(found["media"]), images=len(found["pictures"]), problems=problems,
            console_errors=console)
    assert problems == []
    assert len(found["media"]) >= 10 and len(found["pictures"]) >= 10


def test_latent_explorer_renders_and_follows_its_slider(page, lab):
    found, problems, console = _run_in_lab(page, lab, "05_latent_space.ipynb")
    assert problems == []

    explorer = page.locator(f"{PANEL} .jp-CodeCell").last.locator(".jp-OutputArea-output").first
    sliders = explorer.locator(".widget-slider")
    assert sliders.count() >= 2, "the explorer's sliders did not render"
    view = explorer.locator(".widget-html-content")
    explorer.scroll_into_view_if_needed()
    before = {"img": view.locator("img").get_attribute("src"), "audio": view.locator("audio").get_attribute("src")}
    explorer.screenshot(path=str(SHOTS / "05_explorer_before.png"))

    readout = sliders.first.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    page.wait_for_function("([el, src]) => { const i = el.querySelector('img'); return i && i.src !== src; }",
                           arg=[view.element_handle(), before["img"]], timeout=60_000)
    after = {"img": view.locator("img").get_attribute("src"), "audio": view.locator("audio").get_attribute("src")}
    explorer.screenshot(path=str(SHOTS / "05_explorer_after.png"))
    assert after["img"] != before["img"] and after["audio"] != before["audio"]
    assert readout.inner_text().strip() in ("2", "2.0", "2.00")
    moved = inspect_media(page, f"{PANEL} .jp-CodeCell:last-child .widget-html-content")
    assert len(moved["media"]) == 1 and media_problems(moved, durations=_clip_seconds()) == []
    full_page_screenshot(page, SHOTS / "05_latent_space.png")
    _record("05_latent_space", audio=len(found["media"]), images=len(found["pictures"]), sliders=sliders.count(),
            slider_moved_to=readout.inner_text(), image_changed=after["img"] != before["img"],
            audio_changed=after["audio"] != before["audio"], console_errors=console)


def test_training_panel_updates_while_it_trains(page, lab):
    """Notebook 03's panel, watched in the browser while `train` runs: a screenshot of it
    mid-training; its players load; it updates in place to the last epoch."""
    console = watch_console(page)
    open_notebook(page, lab, "03_training.ipynb")
    run_all_cells(page, lab, wait=False)
    selector = f"{PANEL} .vae-tfp-training-panel"
    mid = page.wait_for_function(  # a few epochs in, still training, with players of the first and a later preview
        """([sel, n]) => { const p = document.querySelector(sel);
             const m = p && /epoch (\d+) of (\d+) · training/.exec(p.innerText);
             return m && +m[1] >= 3 && +m[1] < n && p.querySelectorAll('audio').length >= 8 ? p.innerText : null; }""",
        arg=[selector, PANEL_EPOCHS], timeout=600_000, polling=100).json_value()
    found = inspect_media(page, selector)  # the players load (their metadata) while the status above updates
    page.set_viewport_size({"width": 1400, "height": 1500})
    panel = page.locator(selector)
    panel.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SHOTS / "03_training_panel.png"))
    wait_until_run(page, lab)
    assert cell_errors(page) == []
    final = panel.inner_text()
    _record("03_training_panel", mid_training=mid.splitlines()[0], final=final.splitlines()[0],
            audio=len(found["media"]), images=len(found["pictures"]), console_errors=console)
    assert media_problems(found, durations=_clip_seconds()) == []
    assert f"epoch {PANEL_EPOCHS} of {PANEL_EPOCHS} · done" in final  # the same widget, updated in place
    assert page.locator(selector).count() == 1
    assert "improving" in final or "plateaued" in final


def test_a_failing_cell_is_caught(page, lab):
    open_notebook(page, lab, "broken.ipynb")
    run_all_cells(page, lab)
    errors = cell_errors(page)
    assert len(errors) == 1 and "ValueError: planted failure" in errors[0]


def test_a_dying_kernel_fails_at_once_and_says_so(page, lab):
    """JupyterLab's "kernel appears to have died" dialog ends the wait (not its 900 s timeout) with
    one line naming the dialog and the cells not run (a CI run once waited 900 s on such a dialog)."""
    open_notebook(page, lab, "dies.ipynb")
    start = time.monotonic()
    with pytest.raises(AssertionError) as caught:
        run_all_cells(page, lab, timeout_s=300)
    message = str(caught.value)
    assert time.monotonic() - start < 120
    assert "dialog" in message and "died" in message and "code cells not run [0, 1] of 2" in message, message
    assert "\n" not in message and str(lab.log) in message


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, shared_smoke):
    """`make demo`'s pipeline (`run_demo`) at smoke size: the tiny embedded set, one epoch, the
    smoke setup's sharpened model standing in for the committed ones it opens with.
    ``VAE_TFP_REPORT=outputs/demo/index.html`` checks a report already written instead."""
    from vae_tfp.apps.demo import run_demo, smoke_setup

    if os.environ.get("VAE_TFP_REPORT"):
        return Path(os.environ["VAE_TFP_REPORT"]).resolve()

    root = tmp_path_factory.mktemp("demo")
    smoke_setup(root / "data", train_model=False)  # the tiny embedded subset, which run_demo reuses
    result = run_demo(root / "out", data_dir=root / "data", spec="tiny", preset="tiny", epochs=1,
                      roundtrip_files_per_set=2, sample_metrics_n=32, committed=[shared_smoke["sharpened"]],
                      log=lambda _: None)
    return Path(result["report"])


def _file_duration(src: str):
    url = urlparse(src)
    return sf.info(unquote(url.path)).duration if url.scheme == "file" else None


def test_demo_report_loads_every_player_and_picture(page, demo_report):
    console = watch_console(page)
    page.goto(demo_report.as_uri())
    page.wait_for_load_state("load")
    found = inspect_media(page)
    problems = media_problems(found, durations=_file_duration, tolerance=0.01)
    full_page_screenshot(page, SHOTS / "demo_report.png")
    _record("demo_report", audio=len(found["media"]), images=len(found["pictures"]), problems=problems,
            console_errors=console)
    assert problems == [] and console == []
    assert len(found["media"]) >= 10 and len(found["pictures"]) >= 10


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_the_checks_catch_broken_pages(page, tmp_path):
    """Each check, shown a page that breaks it: a missing WAV, a WAV of the wrong length, a player
    that does not load until clicked, a PNG that does not decode, a blank PNG, a console error."""
    sr = 8000
    sf.write(tmp_path / "good.wav", 0.1 * np.sin(np.arange(sr) / 5), sr)
    sf.write(tmp_path / "short.wav", 0.1 * np.sin(np.arange(sr // 2) / 5), sr)
    (tmp_path / "good.png").write_bytes(_png(np.random.default_rng(0).integers(0, 255, (32, 32))))
    (tmp_path / "blank.png").write_bytes(_png(np.full((32, 32), 200)))
    (tmp_path / "broken.png").write_bytes(_png(np.zeros((32, 32)))[:40])
    (tmp_path / "page.html").write_text(
        "<html><body>"
        + "".join(f'<audio controls preload="metadata" src="{n}.wav"></audio>' for n in ("good", "short", "missing"))
        + '<audio controls preload="none" src="good.wav"></audio>'
        + "".join(f'<img src="{n}.png">' for n in ("good", "blank", "broken"))
        + f'<img src="data:image/png;base64,{base64.b64encode(_png(np.eye(16) * 255)).decode()}">'
        + "<script>console.error('planted console error')</script></body></html>")
    console = watch_console(page)
    page.goto((tmp_path / "page.html").as_uri())
    page.wait_for_load_state("load")
    problems = media_problems(inspect_media(page, timeout_ms=5000), durations=1.0)
    assert len(problems) == 5, problems
    assert any("good.wav" in p and "not loaded" in p for p in problems)  # preload="none": 0:00 until clicked
    assert any("short.wav" in p and "duration 0.500" in p for p in problems)
    assert any("missing.wav" in p and ("MediaError" in p or "not loaded" in p) for p in problems)
    assert any("blank.png" in p and "blank" in p for p in problems)
    assert any("broken.png" in p and "does not decode" in p for p in problems)
    assert "console.error: planted console error" in console
