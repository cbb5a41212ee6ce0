"""kvm_main: gfn_to_pfn_async / gfn_to_pfn paths, kvm_try_async_get_page tracing, MMU notifier retry."""

import pytest
from hypothesis import given, settings, strategies as st
from conftest import enable_apf, hva, machine, run, state

from asyncpf.build import make_resident, make_swapped
from asyncpf.host import mmu
from asyncpf.host.kvm_main import (
    BAD_PFN,
    FAULT_PFN,
    SPTE_NONE,
    gfn_to_pfn,
    kvm_release_pfn_clean,
    read_guest_bytes,
    write_guest_bytes,
)
from asyncpf.host.mm import PageState
from asyncpf.machine import ERROR_GFN, MMIO_BASE_GFN, MMIO_HOST_PFN

G = 40


# --- gfn_to_pfn_async -----------------------------------------------------------------

def test_fast_path_resident(gen):
    m = machine(gen)
    make_resident(m, G)
    faults = m.mm.stats["minor_faults"]
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    assert not is_async and pfn == int(m.mm._pfn[G])
    assert m.mm.stats["minor_faults"] == faults  # no fault taken
    assert m.mm.page_count(pfn) == 1
    kvm_release_pfn_clean(m.kvm, pfn)
    assert m.mm.total_page_refs == 0


def test_minor_fault_first_touch_zero_fills(gen):
    m = machine(gen)
    assert state(m, G) == PageState.NONE
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    assert not is_async and pfn not in (BAD_PFN, FAULT_PFN)
    assert state(m, G) == PageState.RESIDENT and m.mm.stats["zero_fills"] == 1
    kvm_release_pfn_clean(m.kvm, pfn)
    assert m.mm.total_page_refs == 0


def test_swapcache_hit_is_not_async(gen):
    m = machine(gen)
    make_resident(m, G)
    m.mm.reclaim(1)  # dirty: the write-back is still in flight
    assert state(m, G) == PageState.SWAPCACHE
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    assert not is_async and m.mm.stats["swapcache_hits"] == 1
    assert state(m, G) == PageState.RESIDENT
    kvm_release_pfn_clean(m.kvm, pfn)
    m.env.run()
    assert m.mm.total_page_refs == 0 and m.mm.check() == []


def test_major_fault_swapped_is_async_without_io(gen):
    m = machine(gen)
    make_swapped(m, G)
    reads = m.mm.stats["swapins"]
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    assert is_async and pfn == FAULT_PFN
    assert state(m, G) == PageState.SWAPPED and not m.mm._swapins  # no IO submitted
    m.env.run()
    assert m.mm.stats["swapins"] == reads and m.mm.total_page_refs == 0


def test_major_fault_swapin_in_flight_is_async(gen):
    m = machine(gen)
    make_swapped(m, G)
    reader = m.env.process(m.mm.get_user_pages(hva(m, G), True), "reader")
    m.env.run(until=m.env.now + 1)
    assert state(m, G) == PageState.SWAPIN
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    assert is_async and pfn == FAULT_PFN
    m.env.run()
    m.mm.put_page(reader.value)
    assert m.mm.stats["swapins"] == 1 and m.mm.total_page_refs == 0


def test_pfnmap_gives_mmio_pfn(gen):
    m = machine(gen)
    assert m.kvm.twins.gfn_to_pfn_async(m.kvm, MMIO_BASE_GFN + 5) == (MMIO_HOST_PFN + 5, False)
    assert run(m, gfn_to_pfn(m.kvm, MMIO_BASE_GFN + 5)) == MMIO_HOST_PFN + 5
    kvm_release_pfn_clean(m.kvm, MMIO_HOST_PFN + 5)
    assert m.mm.total_page_refs == 0


def test_error_gfn_is_bad_pfn_not_async(gen):
    m = machine(gen)
    assert m.kvm.twins.gfn_to_pfn_async(m.kvm, ERROR_GFN) == (BAD_PFN, False)
    assert run(m, gfn_to_pfn(m.kvm, ERROR_GFN)) == BAD_PFN


def test_gfn_to_pfn_blocks_for_a_swap_read(gen):
    m = machine(gen)  # nvme_gen4: 39..59 us positioning + 0.6 us transfer
    make_swapped(m, G)
    t0 = m.env.now
    pfn = run(m, gfn_to_pfn(m.kvm, G))
    assert 39_000 <= m.env.now - t0 <= 60_000
    assert state(m, G) == PageState.RESIDENT and m.mm.page_count(pfn) == 1
    kvm_release_pfn_clean(m.kvm, pfn)
    assert m.mm.total_page_refs == 0


# --- kvm_try_async_get_page ---------------------------------------------------------------

def _fault(m, gfn):
    return run(m, mmu.kvm_mmu_page_fault(m.vcpus[0], gfn << 12, 2))


def test_seed_traces_every_lookup():
    m = machine("seed")
    m.vcpus[0].arch.cpl = 3
    enable_apf(m)
    make_resident(m, G)
    make_swapped(m, G)      # G swapped: the only resident page was G
    make_resident(m, G + 1)
    assert _fault(m, G + 1) == mmu.RET_MAPPED
    assert _fault(m, G) == mmu.RET_RETRY
    tp = m.tracer.of("kvm_try_async_get_page")
    assert [ev.args for ev in tp] == [(True, int(m.kvm.spte_pfn[G + 1])), (False, 0xFFFFFFFFFFFFFFFF)]
    lines = [ln for ln in m.tracer.text().splitlines() if "kvm_try_async_get_page" in ln]
    assert lines[0].endswith(f"kvm_try_async_get_page: pfn {int(m.kvm.spte_pfn[G + 1]):#x}")
    assert lines[1] == "        qemu-kvm-1000  [000]     0.%06d: kvm_try_async_get_page: pfn 0xffffffffffffffff" % (
        tp[1].t_ns // 1000)


def test_legacy_traces_only_the_async_path():
    m = machine("legacy")
    make_swapped(m, G)
    make_resident(m, G + 1)
    assert _fault(m, G + 1) == mmu.RET_MAPPED
    assert m.tracer.count("kvm_try_async_get_page") == 0
    assert _fault(m, G) == mmu.RET_RETRY
    (ev,) = m.tracer.of("kvm_try_async_get_page")
    assert ev.args == (G << 12, G)  # include/trace/events/kvm.h@v2.6.38: kvm_async_get_page_class(gva, gfn)
    line = next(ln for ln in m.tracer.text().splitlines() if "kvm_try_async_get_page" in ln)
    assert line.split(": ", 1)[1] == f"kvm_try_async_get_page: gva = {G << 12:#x}, gfn = {G:#x}"
    assert line.startswith("        qemu-kvm-1000  [000] ")
    np_line = next(ln for ln in m.tracer.text().splitlines() if "kvm_async_pf_not_present" in ln)
    assert np_line.endswith(f"kvm_async_pf_not_present: token 0x0 gva {G << 12:#x}")


# --- MMU notifier retry ----------------------------------------------------------------------

def test_fault_without_race_maps():
    m = machine("legacy")
    make_resident(m, G)
    assert _fault(m, G) == mmu.RET_MAPPED
    assert int(m.kvm.spte_pfn[G]) == int(m.mm._pfn[G])
    assert m.vcpus[0].stat["mmu_notifier_retries"] == 0 and m.mm.total_page_refs == 0


@pytest.mark.parametrize("race", ["reclaim_other", "zap_same"])
def test_invalidation_between_snapshot_and_check_retries(race):
    m = machine("legacy")
    make_resident(m, G, G + 1)
    vcpu = m.vcpus[0]
    p = m.env.process(mmu.kvm_mmu_page_fault(vcpu, G << 12, 2), "fault")
    if race == "reclaim_other":  # the faulting page is pinned: reclaim takes the other one
        m.env.schedule(0, lambda _a: m.mm.reclaim(1))
    else:
        m.env.schedule(0, lambda _a: m.mm.zap_range(hva(m, G), 1))
    m.env.run()
    assert p.value == mmu.RET_RETRY
    assert int(m.kvm.spte_pfn[G]) == SPTE_NONE
    assert vcpu.stat["mmu_notifier_retries"] == 1
    assert m.mm.total_page_refs == 0 and m.mm.check() == []


def test_eviction_clears_spte_and_bumps_seq():
    m = machine("legacy")
    make_resident(m, G)
    assert _fault(m, G) == mmu.RET_MAPPED
    seq = m.kvm.mmu_notifier_seq
    assert m.mm.reclaim(1) == 1
    assert int(m.kvm.spte_pfn[G]) == SPTE_NONE and m.kvm.mmu_notifier_seq == seq + 1
    assert not mmu.spte_mapped(m.vcpus[0], G)


def test_zap_range_count_up_then_down():
    m = machine("legacy")
    make_resident(m, G)
    assert _fault(m, G) == mmu.RET_MAPPED
    seen = []

    class Spy:
        def invalidate_page(self, mm, h):
            pass

        def invalidate_range_start(self, mm, s, e):
            seen.append(("start", m.kvm.mmu_notifier_count, int(m.kvm.spte_pfn[G])))

        def invalidate_range_end(self, mm, s, e):
            seen.append(("end", m.kvm.mmu_notifier_count))

    m.mm.mmu_notifier_register(Spy())
    seq = m.kvm.mmu_notifier_seq
    m.mm.zap_range(hva(m, G), 1)
    assert seen == [("start", 1, SPTE_NONE), ("end", 0)]
    assert m.kvm.mmu_notifier_count == 0 and m.kvm.mmu_notifier_seq == seq + 1


def test_deleting_a_memslot_zaps_every_spte():
    """virt/kvm/kvm_main.c@v2.6.38 __kvm_set_memory_region: a deletion calls kvm_arch_flush_shadow (zap all)
    and bumps the generation twice (the invalid slot, then the new array)."""
    from asyncpf.host.kvm_main import SPTE_NONE, kvm_set_memory_region
    m = machine("legacy")
    make_resident(m, G)
    assert _fault(m, G) == mmu.RET_MAPPED
    gen0 = m.kvm.memslots_generation
    kvm_set_memory_region(m.kvm, 1, MMIO_BASE_GFN, 0, 0)  # delete the MMIO slot, not G's
    assert int(m.kvm.spte_pfn[G]) == SPTE_NONE and m.kvm.memslots_generation == gen0 + 2


# --- an error pfn: emulated (no memslot) or KVM_RUN -EFAULT (fault_pfn), per generation -------------------

@pytest.mark.parametrize("generation, on_fault_pfn", [("seed", mmu.RET_EMULATE), ("legacy", mmu.RET_EFAULT),
                                                      ("interrupt", mmu.RET_EFAULT)])
def test_bad_page_is_emulated_and_fault_page_fails_kvm_run_from_2_6_38(generation, on_fault_pfn):
    """seed 000's tdp_page_fault emulates any error pfn; kvm_handle_bad_page@v2.6.38 and kvm_handle_error_pfn@v6.18
    return -EFAULT for a fault pfn and emulate only the no-slot one."""
    m = machine(generation)
    assert m.kvm.twins.kvm_handle_bad_page(m.kvm, ERROR_GFN, BAD_PFN) == mmu.RET_EMULATE
    assert m.kvm.twins.kvm_handle_bad_page(m.kvm, G, FAULT_PFN) == on_fault_pfn
    assert m.mm.total_page_refs == 0


def test_a_fault_left_unhandled_fails_kvm_run_instead_of_emulating_ram(monkeypatch):
    """A tdp_page_fault that goes on to map the async marker (fault_pfn) after queuing the async PF: 2.6.38
    fails KVM_RUN with -EFAULT, so the vcpu stops and its task never finishes (the model emulated RAM before)."""
    from asyncpf.check import explore
    from asyncpf.host.legacy import mmu as legacy_mmu

    real = legacy_mmu.try_async_pf

    def unhandled(vcpu, prefault, gfn, gva):
        handled, pfn = yield from real(vcpu, prefault, gfn, gva)
        return False, pfn

    monkeypatch.setattr(legacy_mmu, "try_async_pf", unhandled)
    report = explore.explore("one_task")
    assert [v.name for v in report.violations] == ["no_task_sleeps_forever"]     # its vcpu stopped under it
    efaults = explore.replay("one_task", report.counterexample).built.machine.vcpus[0].stat["kvm_run_efault"]
    assert efaults == 1


# --- guest RAM contents ------------------------------------------------------------------

@settings(max_examples=200, deadline=None, derandomize=True)
@given(writes=st.lists(st.tuples(st.integers(0, 3 * 4096), st.binary(max_size=2 * 4096 + 10)), max_size=6),
       read_at=st.integers(0, 3 * 4096), read_n=st.integers(0, 2 * 4096 + 10))
def test_guest_bytes_read_back_what_was_written_across_pages(writes, read_at, read_n):
    """Contents are kept per page; a write or read that crosses pages is split, and what was never written reads 0."""
    m = machine("legacy")
    flat = bytearray(6 * 4096)
    for gpa, data in writes:
        write_guest_bytes(m.kvm, gpa, data)
        flat[gpa:gpa + len(data)] = data
    assert read_guest_bytes(m.kvm, read_at, read_n) == bytes(flat[read_at:read_at + read_n])
    assert set(m.kvm.guest_bytes) <= {(gpa + i) >> 12 for gpa, data in writes for i in range(len(data))}
