"""The live programs on this host's real /dev/kvm, against the model.

These run where the host can (root, /dev/kvm, tracefs mounted) and skip,
saying why, elsewhere; ``ASYNCPF_LIVE=require`` turns that skip into a
failure (CI on this project's machines sets it).  A program that does not
agree with the model on a capable host fails.  Every run must leave no
tracefs instance and no backing file behind, also when it fails, and must
not change machine-wide settings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from asyncpf.live import backing, hostinfo, layout, programs, realrun, runner, tracefs

WHY = hostinfo.cannot_run()


@pytest.fixture(autouse=True)
def live_host():
    if WHY:
        if os.environ.get("ASYNCPF_LIVE") == "require":
            pytest.fail(f"ASYNCPF_LIVE=require, but live KVM tests cannot run here: {WHY}")
        pytest.skip(f"live KVM tests need root, /dev/kvm and tracefs: {WHY}")


def leftovers() -> tuple[list[str], list[str]]:
    """Our tracefs instances and backing folders that exist now."""
    instances = sorted(p.name for p in (tracefs.TRACEFS / "instances").glob(tracefs.PREFIX + "*"))
    folders = sorted(p.name for p in Path(backing.disk_dir()).glob("asyncpf-live-*"))
    return instances, folders


def machine_settings() -> dict[str, str]:
    """What a run must never change: swap devices and every block device's read-ahead."""
    out = {"swaps": Path("/proc/swaps").read_text()}
    for ra in sorted(Path("/sys/block").glob("*/queue/read_ahead_kb")):
        out[str(ra)] = ra.read_text()
    return out


@pytest.mark.parametrize("name", list(programs.PROGRAMS))
def test_the_real_kernel_agrees_with_the_model(name):
    before, settings = leftovers(), machine_settings()
    program = programs.get(name)
    result = runner.judge(program, runner.capture(program, f"pytest tests/test_live.py ({name})"))
    verdict = result["verdict"]
    assert verdict["verdict"] == "agree", (name, verdict, hostinfo.describe())
    assert leftovers() == before and machine_settings() == settings


def test_a_run_cut_short_by_its_bound_cleans_up():
    before = leftovers()
    with pytest.raises(realrun.LiveError, match="did not return within|did not finish"):
        realrun.run_vm(realrun.VmConfig(), layout.GuestParams(count=8), total_s=0.01)
    assert leftovers() == before


def test_stale_instances_of_ours_are_swept_and_others_left_alone():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tracefs.TRACEFS / "instances" / f"{tracefs.PREFIX}{dead.pid}"
    if stale.exists():
        pytest.skip(f"{stale} exists already")
    stale.mkdir()
    try:
        realrun.run_vm(realrun.VmConfig(), layout.GuestParams(count=0, int_val=0xF3, en_val=programs.PV_ENABLE))
        assert not stale.exists()
    finally:
        if stale.exists():
            stale.rmdir()
