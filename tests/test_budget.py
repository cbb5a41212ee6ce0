"""The run-time budget (asyncpf.budget) is an upper bound of the events a run takes: what the door refuses by."""

from __future__ import annotations

import pytest

from asyncpf import budget
from asyncpf.bm import MODES, BmParams, run_bm
from asyncpf.demo import run_mode

MiB = 1 << 20
SMALL = BmParams(guest_mem=64 * MiB, host_limit=16 * MiB, array=32 * MiB, duration_ns=200_000_000)


@pytest.mark.parametrize("change", [
    {},
    dict(fault_threads=0),                                   # ticks and work chunks only: the tightest case
    dict(fault_threads=0, vcpus=16, work_threads=1),         # idle vcpus woken by every tick
    dict(vcpus=1, fault_threads=2, work_threads=2),
    dict(fault_threads=8, work_threads=0, swap_device="optane_p5800x"),
    dict(generation="interrupt"),
    dict(host_cpus=1),
])
def test_bm_takes_no_more_events_than_estimated(change):
    p = SMALL.replace(**change)
    need = budget.bm_events(p)
    assert all(run_bm(mode, p)["events"] <= need for mode in MODES)


def test_demo_takes_no_more_events_than_estimated():
    vcpus, scripts, steps, compute_ns = 4, 2, 5, 1_000_000
    need = budget.demo_events(vcpus, scripts, steps, compute_ns)
    for mode in ("unpatched", "halt", "pv"):
        r = run_mode(mode, generation="legacy", vcpus=vcpus, scripts=scripts, steps=steps, compute_ns=compute_ns,
                     seed=0)
        assert r["machine"].env.events_processed <= need
