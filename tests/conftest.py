"""Shared helpers for the host-side tests (small machines, page-state setup, engine runs).

Machines come from asyncpf.build, the one builder: :func:`machine` is the
small host with stand-in guests, :func:`boot_guest` the guest kernel booted
on a 64 MiB guest in a 16 MiB cgroup.
"""

from __future__ import annotations

import logging

import pytest

from asyncpf import build
from asyncpf.abi import KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS
from asyncpf.guest.kernel import GuestConfig
from asyncpf.host import x86
from asyncpf.host.kvm_main import gfn_to_hva
from asyncpf.host.mm import PageState
from asyncpf.machine import HostConfig, Machine
from asyncpf.standin import APF_AREA_GPA

MiB = 1 << 20
GENS = ("seed", "legacy")
GUEST_KERNEL_HOST = HostConfig(guest_mem=64 * MiB, host_limit=16 * MiB, mmio_pages=0, seed=1)


def small(generation="legacy", **kw) -> HostConfig:
    return build.SMALL_HOST.replace(generation=generation, **kw)


def machine(generation="legacy", scripts=None, pv=False, send_always=False, **kw) -> Machine:
    """A Machine whose vcpus run ScriptedGuests; the loops are not started."""
    return build.standin_machine(small(generation, **kw), scripts, pv=pv, send_always=send_always)


def boot_guest(vcpus=1, prefault_pages=0, trace=False, guest=None, **host) -> build.Booted:
    """The guest kernel on a 64 MiB guest, booted for 2 ms (its array of ``prefault_pages``, if any, touched once)."""
    return build.boot_guest(GUEST_KERNEL_HOST.replace(vcpus=vcpus, **host), GuestConfig(**(guest or {})),
                            array_pages=prefault_pages, boot_ns=2_000_000, trace=trace)


def mm_snapshot(mm) -> tuple:
    """Everything a fault path may change in the host mm: page and frame arrays, free frames, counters,
    reclaim's hand, LRU and write-back order, the swap device's queue, statistics and random stream."""
    names = ("_state", "_pfn", "_dirty", "_swap_valid", "_wb_seq", "_referenced", "_last_access",
             "_frame_page", "_frame_refs")
    r, swap = mm._reclaimer, mm.swap
    return ([getattr(mm, name).tolist() for name in names], mm._free_stack[:mm._nfree].tolist(),
            mm.nr_charged, mm.total_page_refs, mm._tick, dict(mm.stats), sorted(mm._swapins),
            r._hand, r._wb_next, r._lru_queue.tolist(), r._lru_ticks.tolist(),
            [(op, n, f.args[0], f.args[1].tolist()) for op, n, f in swap._queue], dict(swap.stats),
            swap._rng.getstate())


def hva(m: Machine, gfn: int) -> int:
    return gfn_to_hva(m.kvm, gfn)


def state(m: Machine, gfn: int) -> PageState:
    return m.mm.page_state(hva(m, gfn))


def run(m: Machine, gen):
    """Run generator ``gen`` as an engine process to quiescence; its return value."""
    p = m.env.process(gen, "t")
    m.env.run()
    assert not p.is_alive
    return p.value


def enable_apf(m: Machine, vcpu=None, send_always=True) -> int:
    vcpu = vcpu or m.vcpus[0]
    data = APF_AREA_GPA + 64 * vcpu.vcpu_id | KVM_ASYNC_PF_ENABLED
    if send_always and "KVM_ASYNC_PF_SEND_ALWAYS" in m.gen.msr_flag_bits:
        data |= KVM_ASYNC_PF_SEND_ALWAYS
    return run(m, x86.kvm_set_msr_common(vcpu, vcpu.kvm.abi.msr_async_pf_en, data))


@pytest.fixture(params=GENS)
def gen(request):
    return request.param


@pytest.fixture(scope="module")
def cluster():
    """A light Dask cluster for the sweep and check tests: one worker thread in this process (two shared cores)."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as c:
        yield c


def assert_rule_kills(mid: str, config: str, invariant: str) -> None:
    """``invariant`` holds on ``config``'s correct model and fails once mutant ``mid`` is switched on."""
    from asyncpf.check.explore import explore
    from asyncpf.check.models import CONFIGS
    from asyncpf.check.mutation import applied, mutant_by_id
    assert invariant not in explore(CONFIGS[config], stop_at_first=False, trace_counterexample=False).violated
    with applied(mutant_by_id(mid)):
        found = explore(CONFIGS[config], stop_at_first=False, trace_counterexample=False).violated
    assert invariant in found, (mid, found)
