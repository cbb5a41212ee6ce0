"""Shared helpers for the host-side tests (small machines, page-state setup, engine runs)."""

from __future__ import annotations

import pytest

from asyncpf.abi import KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS
from asyncpf.host import x86
from asyncpf.host.kvm_main import gfn_to_hva
from asyncpf.host.mm import PageState
from asyncpf.machine import HostConfig, Machine
from asyncpf.standin import APF_AREA_GPA, Script, ScriptedGuest

MiB = 1 << 20
GENS = ("seed", "legacy")


def small(generation="legacy", **kw) -> HostConfig:
    base = dict(generation=generation, guest_mem=4 * MiB, host_limit=1 * MiB, swap_device="nvme_gen4", seed=1)
    base.update(kw)
    return HostConfig(**base)


def machine(generation="legacy", scripts=None, pv=False, send_always=False, **kw) -> Machine:
    """A Machine whose vcpus run ScriptedGuests; the loops are not started."""
    cfg = small(generation, **kw)
    return Machine(cfg, lambda i: ScriptedGuest([Script(n, list(s)) for n, s in (scripts or {}).items()],
                                                pv=pv, send_always=send_always))


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


def make_resident(m: Machine, *gfns: int) -> None:
    for g in gfns:
        pfn = m.mm.get_user_pages_nowait(hva(m, g), True)
        m.mm.put_page(pfn)


def make_swapped(m: Machine, *gfns: int) -> None:
    """Touch ``gfns`` (nothing else may be resident), evict them, let the write-back land."""
    make_resident(m, *gfns)
    assert m.mm.reclaim(len(gfns)) == len(gfns)
    m.env.run()
    assert all(state(m, g) == PageState.SWAPPED for g in gfns)


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


def boot_guest(vcpus=1, prefault_pages=0, trace=False, guest=None, **host):
    """A small machine running the real guest kernel, booted for 2 ms (its array, if any, touched once)."""
    from asyncpf.guest.kernel import GuestConfig, GuestKernel
    from asyncpf.workloads import shared_array

    kernel = GuestKernel(GuestConfig(**(guest or {})))
    cfg = dict(vcpus=vcpus, guest_mem=64 << 20, host_limit=16 << 20, mmio_pages=0, seed=1)
    cfg.update(host)
    m = Machine(HostConfig(**cfg), kernel, trace=trace)
    array = None
    if prefault_pages:
        array = shared_array(kernel, prefault_pages)
        m.prefault(array.gfn, array.pages)
    m.start()
    m.run(m.env.now + 2_000_000)
    return m, kernel, array
