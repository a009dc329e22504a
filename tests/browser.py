"""Helpers of the browser tests: where Chromium is, a JupyterLab server, and the checks made on a
rendered page (media that loads, images that decode and are not blank, errors shown in cells).

Playwright drives Debian's ``chromium`` through ``executable_path``: Playwright cannot download
its own browsers on these machines. ``VAE_TFP_CHROMIUM`` points at another binary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files"]


def find_chromium() -> tuple[str | None, str]:
    """``(path, "")`` of a Chromium binary with Playwright importable, else ``(None, reason)``."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return None, "the playwright package is not installed (pip install -r requirements.txt)"
    path = os.environ.get("VAE_TFP_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if not path:
        return None, "no Chromium found (apt-get install chromium, or set VAE_TFP_CHROMIUM)"
    return path, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab(NamedTuple):
    """A running JupyterLab: its URL, token and log (the server's and its kernels' output)."""
    base: str
    token: str
    log: Path


@contextlib.contextmanager
def jupyterlab(root: Path, *, timeout: float = 90.0):
    """A JupyterLab server on localhost serving ``root``: yields a :class:`Lab`; stopped at the end.

    Settings: cells are never windowed (every output stays in the DOM, so the checks see all of
    them) and the news and update checks are off.
    """
    port, token = _free_port(), os.urandom(12).hex()
    settings = root / ".settings"
    for plugin, body in (("@jupyterlab/notebook-extension/tracker", '{"windowingMode": "none"}'),
                         ("@jupyterlab/apputils-extension/notification",
                          '{"fetchNews": "false", "checkForUpdates": false}')):
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / '.workspaces'}",
         "--ServerApp.allow_root=True"],  # CI runs as root
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime")})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyterlab.log'}")
            time.sleep(0.5)
        yield Lab(base, token, root / "jupyterlab.log")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# One script, run in the page: every <audio> loaded (metadata) and every <img> decoded and inspected.
_INSPECT_MEDIA = """
async ({scope, timeout}) => {
  const root = scope ? document.querySelectorAll(scope) : [document];
  const audios = [], images = [];
  for (const r of root) { audios.push(...r.querySelectorAll('audio')); images.push(...r.querySelectorAll('img')); }
  // as the user meets it: no load() forced, so a player that shows 0:00 until clicked is caught
  const loaded = a => new Promise(resolve => {
    if (a.readyState >= 1 || a.error) return resolve();
    const done = () => resolve();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    setTimeout(done, timeout);
  });
  const media = [];
  for (const a of audios) {
    await loaded(a);
    media.push({src: (a.currentSrc || a.src || '').slice(0, 400), readyState: a.readyState,
                duration: Number.isFinite(a.duration) ? a.duration : null,
                error: a.error ? a.error.code : null});
  }
  const pictures = [];
  for (const img of images) {
    let decoded = true, std = null, error = null;
    try { await img.decode(); } catch (e) { decoded = false; error = String(e); }
    if (decoded && img.naturalWidth > 0) {
      try {
        const c = document.createElement('canvas');
        c.width = Math.min(img.naturalWidth, 256); c.height = Math.min(img.naturalHeight, 256);
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0, c.width, c.height);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let s = 0, s2 = 0, n = 0;
        for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; s += y; s2 += y * y; n++; }
        std = Math.sqrt(Math.max(s2 / n - (s / n) ** 2, 0));
      } catch (e) { error = 'pixels unreadable: ' + e; }
    }
    pictures.push({src: (img.currentSrc || img.src || '').slice(0, 400), decoded, width: img.naturalWidth,
                   height: img.naturalHeight, std, error});
  }
  return {media, pictures};
}
"""


def inspect_media(page, scope: str | None = None, timeout_ms: int = 10_000) -> dict:
    """The state of every ``<audio>`` and ``<img>`` (under the CSS selector ``scope``) after loading."""
    return page.evaluate(_INSPECT_MEDIA, {"scope": scope, "timeout": timeout_ms})


def media_problems(found: dict, *, durations=None, tolerance: float = 0.02, min_std: float = 1.0) -> list[str]:
    """Problems with what :func:`inspect_media` found; empty when every player and picture is fine.

    Args:
        found: :func:`inspect_media`'s result.
        durations: The expected duration of each ``<audio>`` in seconds: one number for all, a
            callable of the source, or None to require only a finite positive duration.
        tolerance: Allowed difference in seconds.
        min_std: A picture whose pixel standard deviation (0–255 grey) is below this is blank.
    """
    problems = []
    for a in found["media"]:
        where = f"<audio src={a['src']!r}>"
        if a["error"] is not None:
            problems.append(f"{where}: MediaError code {a['error']}")
        elif a["readyState"] < 1:
            problems.append(f"{where}: not loaded (readyState {a['readyState']}; the player shows 0:00)")
        elif not a["duration"] or a["duration"] <= 0:
            problems.append(f"{where}: duration {a['duration']}")
        elif durations is not None:
            expected = durations(a["src"]) if callable(durations) else durations
            if expected is not None and abs(a["duration"] - expected) > tolerance:
                problems.append(f"{where}: duration {a['duration']:.3f} s, expected {expected:.3f} s")
    for p in found["pictures"]:
        where = f"<img src={p['src']!r}>"
        if not p["decoded"] or not p["width"]:
            problems.append(f"{where}: does not decode ({p['error']})")
        elif p["std"] is not None and p["std"] < min_std:
            problems.append(f"{where}: blank (pixel std {p['std']:.2f})")
        elif p["std"] is None:
            problems.append(f"{where}: {p['error']}")
    return problems


def launch(playwright, executable: str):
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def watch_console(page) -> list[str]:
    """Collects the page's console errors and uncaught exceptions into the returned list."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    return errors


# --- JupyterLab ------------------------------------------------------------------------------

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the current tab

def open_notebook(page, lab: Lab, name: str, timeout_ms: int = 120_000) -> None:
    # a workspace of its own: JupyterLab would otherwise reopen the notebooks of earlier pages beside it
    page.goto(f"{lab.base}/lab/workspaces/{Path(name).stem}-{os.urandom(4).hex()}/tree/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(  # a kernel started (not "No Kernel") and idle; a dialog (e.g. "select kernel") fails
        """() => {
          const PANEL = '%s';
          if (document.querySelector('.jp-Dialog')) return true;
          const k = document.querySelector(PANEL + ' .jp-Notebook-ExecutionIndicator');
          const name = document.querySelector(PANEL + ' .jp-KernelName');
          return k && k.getAttribute('data-status') === 'idle' && name && !/No Kernel/.test(name.textContent);
        }""" % PANEL, timeout=timeout_ms)
    if page.locator(".jp-Dialog").count():
        _fail(page, lab, f"{name}: JupyterLab asks before anything ran")


def run_all_cells(page, lab: Lab, timeout_s: float = 900.0, *, wait: bool = True) -> None:
    """Run > Run All Cells from the menu bar, as a user would, then (``wait``) :func:`wait_until_run`."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    if wait:
        wait_until_run(page, lab, timeout_s)


def wait_until_run(page, lab: Lab, timeout_s: float = 900.0) -> None:
    """Waits until the kernel is idle with every code cell executed (or a traceback shown: Run All
    stops there). A dialog (e.g. "the kernel appears to have died") fails at once. On failure, one
    line says what the notebook showed: the kernel's status, which cells had not run, the dialog's
    text and the last lines of the server's log (where a dead kernel's last words go)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            """() => {
              const PANEL = '%s';
              if (document.querySelector('.jp-Dialog')) return true;
              const prompts = [...document.querySelectorAll(PANEL + ' .jp-CodeCell .jp-InputArea-prompt')];
              const k = document.querySelector(PANEL + ' .jp-Notebook-ExecutionIndicator');
              const idle = k && k.getAttribute('data-status') === 'idle';
              const failed = [...document.querySelectorAll(PANEL + ' .jp-OutputArea-output')]
                .some(o => /Traceback \\(most recent call last\\)/.test(o.innerText || ''));
              return idle && prompts.length > 0 && (failed || prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
            }""" % PANEL, timeout=timeout_s * 1000, polling=1000)
    except PlaywrightTimeout:
        _fail(page, lab, f"the notebook had not run after {timeout_s:.0f} s")
    if page.locator(".jp-Dialog").count():
        _fail(page, lab, "JupyterLab opened a dialog while the notebook ran")


def _fail(page, lab: Lab, what: str, log_lines: int = 12) -> None:
    state = page.evaluate(
        """() => {
          const PANEL = '%s';
          const k = document.querySelector(PANEL + ' .jp-Notebook-ExecutionIndicator');
          const prompts = [...document.querySelectorAll(PANEL + ' .jp-CodeCell .jp-InputArea-prompt')];
          const d = document.querySelector('.jp-Dialog');
          return {kernel: k ? k.getAttribute('data-status') : null, dialog: d ? d.innerText : null,
                  prompts: prompts.map(p => p.textContent.trim())};
        }""" % PANEL)
    pending = [i for i, t in enumerate(state["prompts"]) if not any(c.isdigit() for c in t)]
    dialog = " ".join((state["dialog"] or "").split())[:300]
    try:
        tail = lab.log.read_text(errors="replace").splitlines()[-log_lines:]
    except OSError as err:
        tail = [f"(unreadable: {err})"]
    raise AssertionError(f"{what}: kernel {state['kernel']!r}, code cells not run {pending} of "
                         f"{len(state['prompts'])}, dialog {dialog!r}; the last lines of {lab.log}: "
                         + " | ".join(line.strip() for line in tail)) from None


def cell_errors(page) -> list[str]:
    """Error outputs (tracebacks) and widgets that failed to render, as shown in the page."""
    return page.evaluate(
        """() => {
          const PANEL = '%s';
          const out = [];
          document.querySelectorAll(PANEL + ' .jp-CodeCell').forEach((cell, i) => {
            cell.querySelectorAll('.jp-OutputArea-output').forEach(o => {
              const t = o.innerText || '';
              if (/Traceback \\(most recent call last\\)/.test(t) || o.getAttribute('data-mime-type') === 'application/vnd.jupyter.error')
                out.push(`cell ${i}: ` + t.trim().split('\\n').slice(-1)[0]);
              if (/Error displaying widget|Failed to load model class|Loading widget\\.\\.\\./.test(t))
                out.push(`cell ${i}: widget not rendered: ` + t.trim().slice(0, 120));
            });
          });
          return out;
        }""" % PANEL)


def full_page_screenshot(page, path: Path, width: int = 1400, max_height: int = 16_000) -> None:
    """The whole notebook in one picture: the viewport is grown to the notebook's height first."""
    height = page.evaluate(
        "() => { const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer') ||"
        " document.querySelector('.jp-Notebook'); return s ? s.scrollHeight : document.body.scrollHeight; }")
    page.set_viewport_size({"width": width, "height": int(min(max_height, height + 200))})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach(s => { s.scrollTop = 0; })")
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
