"""The guest's filtered sched_clock (kernel/sched_clock.c of 2.6.33-36): the tick window and its catch-up."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from asyncpf import bm
from asyncpf.guest import sched_clock as sc

MS = 1_000_000
HZ = 250
TICK = 1_000_000_000 // HZ


def fake_cpu(now: int) -> SimpleNamespace:
    return SimpleNamespace(kernel=SimpleNamespace(env=SimpleNamespace(now=now), hz=HZ))


def test_clock_runs_freely_inside_the_tick_window():
    cpu = fake_cpu(100 * MS)
    scd = sc.sched_clock_init(100 * MS)
    cpu.kernel.env.now = 100 * MS + TICK - 1
    assert sc.sched_clock_local(cpu, scd) == 100 * MS + TICK - 1


def test_clock_stops_one_tick_after_the_last_tick_and_never_goes_back():
    cpu = fake_cpu(100 * MS)
    scd = sc.sched_clock_init(100 * MS)
    readings = []
    for later in (3 * MS, 10 * MS, 25 * MS):
        cpu.kernel.env.now = 100 * MS + later
        readings.append(sc.sched_clock_local(cpu, scd))
    assert readings == [103 * MS, 100 * MS + TICK, 100 * MS + TICK]


def test_the_tick_catches_the_clock_up_to_real_time():
    cpu = fake_cpu(100 * MS)
    scd = sc.sched_clock_init(100 * MS)
    cpu.kernel.env.now = 125 * MS
    assert sc.sched_clock_local(cpu, scd) == 100 * MS + TICK
    sc.sched_clock_tick(cpu, scd)
    assert scd.clock == 125 * MS
    cpu.kernel.env.now = 126 * MS
    assert sc.sched_clock_local(cpu, scd) == 126 * MS


@pytest.mark.parametrize("mode", ["unpatched", "halt"])
def test_bm_charges_the_same_with_the_filter_because_the_tick_comes_first(mode):
    """A stall or halt longer than a tick ends with the pending tick, which resyncs before anything is charged."""
    params = bm.BmParams(guest_mem=128 << 20, host_limit=32 << 20, array=64 << 20, duration_ns=300 * MS,
                         swap_latency_ns=12 * MS)
    plain = bm.run_bm(mode, params)
    filtered = bm.run_bm(mode, params.replace(unstable_sched_clock=True))
    assert all(cpu.scd is not None for cpu in filtered["machine"].guest.cpus)
    assert all(cpu.scd is None for cpu in plain["machine"].guest.cpus)
    assert plain["apf_halts" if mode == "halt" else "swapins"] > 0
    assert filtered["work"] == plain["work"] and filtered["fault_thread_cpu"] == plain["fault_thread_cpu"]
