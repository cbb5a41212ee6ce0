"""Guests of real size: RAM laid out around the PCI hole as two memslots, a gfn above 4 GiB through async PF."""

from __future__ import annotations

import pytest

from asyncpf import build, trace
from asyncpf.bm import BmParams, largest_array
from asyncpf.guest.kernel import KERNEL_RESERVED_GFNS
from asyncpf.guest.ops import Touch
from asyncpf.host.kvm_main import BAD_HVA, gfn_to_hva, gfn_to_memslot
from asyncpf.host.mm import PageState
from asyncpf.machine import (BIG_GUEST_LOW_GFN, ERROR_GFN, HIGH_RAM_GFN, MMIO_BASE_GFN, HostConfig, Machine,
                             ram_layout)
from asyncpf.standin import ScriptedGuest
from asyncpf.workloads import steps

GiB, MiB = 1 << 30, 1 << 20


def test_ram_that_fits_below_the_hole_stays_one_slot_from_gfn_0():
    assert ram_layout(2 * GiB) == [(0, 2 * GiB >> 12)]
    assert ram_layout(MMIO_BASE_GFN << 12) == [(0, MMIO_BASE_GFN)]     # the old maximum, as before


def test_a_bigger_guest_keeps_3g_below_the_hole_and_the_rest_from_4g():
    assert ram_layout(64 * GiB) == [(0, BIG_GUEST_LOW_GFN), (HIGH_RAM_GFN, (61 * GiB) >> 12)]
    m = Machine(HostConfig(guest_mem=5 * GiB, host_limit=16 * MiB), lambda i: ScriptedGuest([]))
    low, bar, high = sorted(m.kvm.memslots, key=lambda s: s.id)
    ram = m.mm.vmas[0]
    assert (low.base_gfn, low.npages, low.userspace_addr) == (0, BIG_GUEST_LOW_GFN, ram.start)
    assert (high.base_gfn, high.npages) == (HIGH_RAM_GFN, (2 * GiB) >> 12)
    assert high.userspace_addr == ram.start + (BIG_GUEST_LOW_GFN << 12) and ram.npages == (5 * GiB) >> 12
    assert bar.base_gfn == MMIO_BASE_GFN
    for gfn in (BIG_GUEST_LOW_GFN, HIGH_RAM_GFN - 1, ERROR_GFN):       # the hole is in no slot
        assert gfn_to_memslot(m.kvm, gfn) is None or gfn_to_memslot(m.kvm, gfn) is bar
        assert gfn == MMIO_BASE_GFN or gfn_to_hva(m.kvm, gfn) == BAD_HVA
    assert gfn_to_hva(m.kvm, HIGH_RAM_GFN) == ram.start + (BIG_GUEST_LOW_GFN << 12)


def test_bm_refuses_an_array_larger_than_one_stretch_of_ram():
    assert largest_array(64 * GiB) == 61 * GiB and largest_array(2 * GiB) == 2 * GiB - 4 * MiB
    with pytest.raises(ValueError, match="does not fit in one stretch of guest RAM"):
        BmParams(guest_mem=64 * GiB, host_limit=16 * GiB, array=62 * GiB).validate()
    BmParams(guest_mem=64 * GiB, host_limit=16 * GiB, array=32 * GiB).validate()


def _booted_above_4g(generation: str) -> build.Booted:
    """A 4 GiB guest whose low RAM is taken, so its buffer lands above 4 GiB; 1 MiB cgroup: half on swap."""
    def take_low_ram(m: Machine) -> None:
        m.guest.alloc_gfns(BIG_GUEST_LOW_GFN - KERNEL_RESERVED_GFNS)   # e.g. the page cache

    return build.boot_guest(HostConfig(generation=generation, guest_mem=4 * GiB, host_limit=1 * MiB,
                                       swap_device="nvme_gen4"),
                            array_pages=512, before_boot=take_low_ram)


@pytest.mark.parametrize("generation", ["legacy", "interrupt"])
def test_a_gfn_above_4g_goes_through_the_whole_async_pf_path(generation):
    b = _booted_above_4g(generation)
    m = b.machine
    assert b.array.gfn == HIGH_RAM_GFN                                  # allocated past the hole
    gfn = b.swapped(1)[0]
    assert gfn >= HIGH_RAM_GFN and gfn << 12 >= 4 * GiB
    hva = gfn_to_hva(m.kvm, gfn)
    assert m.mm.page_state(hva) == PageState.SWAPPED
    t = b.spawn("toucher", steps(Touch(b.gva(gfn))))
    assert b.run_until_exited([t], 1_000_000_000) == []
    assert m.mm.page_state(hva) == PageState.RESIDENT and m.kvm.spte_pfn[gfn] >= 0
    events = trace.parse(m.tracer.text())
    names = [e.name for e in events if gfn << 12 in e.args]            # under EPT the "gva" is the gpa
    assert {"kvm_page_fault", "kvm_async_pf_not_present", "kvm_async_pf_completed", "kvm_async_pf_ready"} <= set(names)
    done = next(e for e in events if e.name == "kvm_async_pf_completed" and gfn << 12 in e.args)
    assert hva in done.args                                              # faulted in at the high slot's hva
    assert m.vcpus[0].stat["apf_not_present_injected"] >= 1 and m.kvm.stat.async_pf_completed >= 1
    assert b.kernel.stats["sleeps"] >= 1
    m.shutdown()
    assert m.leaks() == []
