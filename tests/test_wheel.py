"""Installed from a wheel, without the dev extra, asyncpf works outside the checkout (about a minute).

The wheel is built by pip as a user would build it (`pip wheel .`); the build leaves the source tree as it
was.  The fresh virtualenv gets the wheel and its runtime dependencies only, and every command runs from
an empty folder elsewhere, so neither the checkout nor data/ beside it can be what makes it work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from asyncpf import __version__

ROOT = Path(__file__).resolve().parents[1]
SMALL_BM = ["--vcpus", "2", "--guest-mem", "64M", "--host-limit", "16M", "--array", "32M", "-f", "2", "-w", "2",
            "-t", "0.5", "--jobs", "1"]


def sh(*argv: object, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    tree = sorted(p.name for p in ROOT.iterdir())
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "wheels", ROOT)
    assert sorted(p.name for p in ROOT.iterdir()) == tree  # no build/, no *.egg-info left behind
    (wheel,) = (tmp_path / "wheels").glob("asyncpf-*.whl")

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    python, asyncpf = venv / "bin" / "python", venv / "bin" / "asyncpf"
    sh(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = sh(python, "-c", "import asyncpf, importlib.util as u; print(asyncpf.__file__); "
               "print(*(m for m in ('pytest', 'nbval', 'nbclient') if u.find_spec(m)))", cwd=work).split("\n")
    assert where[0].startswith(str(venv)) and where[1] == ""  # the installed copy, and no dev tools

    assert sh(asyncpf, "--version", cwd=work).strip() == f"asyncpf {__version__}"
    report = json.loads(sh(asyncpf, "bm", *SMALL_BM, "--json", "--plot", "bm.png", cwd=work))
    assert report["runs"]["pv"]["async_pf_sent"] > 0 and (work / "bm.png").read_bytes().startswith(b"\x89PNG")
    assert "wake_before_wait: OK" in sh(asyncpf, "scenario", "wake_before_wait", "--perfetto", "t.json", cwd=work)
    assert json.loads((work / "t.json").read_text())["traceEvents"]
    # every module imports without the dev extra (mirror_table walks the whole package)
    assert int(sh(python, "-c", "from asyncpf.mirrors import mirror_table; print(len(mirror_table()))", cwd=work)) > 50
