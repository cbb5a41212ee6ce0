"""A real browser: JupyterLab serves a copy of the notebooks, chromium runs one and moves a widget.

Skips (with the reason) only where Debian's chromium or the playwright package
is missing; `.ci/run` installs both.  The screenshot is kept as a test
artefact under ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = os.environ.get("ASYNCPF_BROWSER_NOTEBOOK", "07_benchmark.ipynb")
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                     "(pip install playwright; .ci/run does it)")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    quiet = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
             {"fetchNews": "false", "checkForUpdates": False},
             "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False}}
    for rel, value in quiet.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving a temporary copy of notebooks/ (autosave cannot touch ours)."""
    base = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", base / "notebooks")
    _write_settings(base / "settings")
    token, port = secrets.token_hex(16), _free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(base / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(base / "ws"),
               JUPYTER_RUNTIME_DIR=str(base / "rt"), JUPYTER_CONFIG_DIR=str(base / "cfg"))
    log = open(base / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={base}",
         "--expose-app-in-browser"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start; log: {(base / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""

# text the kernel computes (HTML/Label/Output widgets), not the slider's own readout
_WIDGET_TEXTS = """() => Array.from(document.querySelectorAll(
  '.widget-html-content, .widget-label, .widget-output')).map(e => e.innerText)"""


def test_notebook_runs_and_a_widget_answers_in_the_browser(lab):
    url, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route(lambda u: not u.startswith("http://127.0.0.1"), lambda route: route.abort())
        page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
        page.wait_for_function(_KERNEL_IDLE, timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        slider = page.locator(".widget-slider .noUi-handle").first
        slider.wait_for(timeout=90_000)
        page.wait_for_function(_KERNEL_IDLE, timeout=90_000)
        assert page.locator("text=Traceback").count() == 0, "a cell raised in the browser"
        before = page.evaluate(_WIDGET_TEXTS)
        assert before, "no widget text rendered"
        slider.scroll_into_view_if_needed()
        changed = f"(old) => JSON.stringify(({_WIDGET_TEXTS})()) !== JSON.stringify(old)"
        for key in ("ArrowLeft", "ArrowRight", "ArrowRight"):  # whichever way the slider can still move
            slider.focus()
            page.keyboard.press(key)
            try:
                page.wait_for_function(changed, arg=before, timeout=15_000)
                break
            except playwright_api.TimeoutError:
                continue
        page.wait_for_function(_KERNEL_IDLE, timeout=30_000)
        after = page.evaluate(_WIDGET_TEXTS)
        page.screenshot(path=str(ARTIFACTS / f"{Path(NOTEBOOK).stem}.png"), full_page=False)
        browser.close()
    assert after != before
