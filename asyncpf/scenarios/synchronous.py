"""Scenarios where a fault gets no async PF: an MMIO slot, the error gfn, a reclaim race, an allocation failure."""

from __future__ import annotations

from typing import Any

from .. import abi
from ..guest.kernel import AddressSpace
from ..guest.ops import Work
from ..host import mmu
from ..machine import ERROR_GFN, MMIO_BASE_GFN, MMIO_HOST_PFN
from .stage import Stage, _prog, _touch, scenario


@scenario("mmio_gfn",
          "a task touches a gva mapped onto the VM_PFNMAP slot (MMIO_BASE_GFN + 3): the pfn comes from the "
          "region's offset, the spte is installed synchronously, no async PF")
def _mmio(s: Stage) -> None:
    m = s.build()
    gfn = MMIO_BASE_GFN + 3
    mm = AddressSpace()
    mm.map(0x40000000, 1, gfn)
    t = s.spawn("bar-reader", _prog(_touch(0x40000000 + 8)), mm=mm)
    s.finish([t])
    s.check("spte maps the BAR pfn", mmu.spte_mapped(m.vcpus[0], gfn) and int(m.kvm.spte_pfn[gfn]) == MMIO_HOST_PFN + 3,
            f"spte={int(m.kvm.spte_pfn[gfn]) if gfn < len(m.kvm.spte_pfn) else None:#x} expected {MMIO_HOST_PFN + 3:#x}")
    s.check("no async PF", s.since_boot("kvm_async_pf_not_present") == 0 and s.since_boot("kvm_try_async_get_page") == 0,
            "")
    s.check("one EPT violation, not stalled", m.vcpus[0].stat["ept_violations"] == 1 and m.vcpus[0].acct["stalled"] == 0,
            f"ept_violations={m.vcpus[0].stat['ept_violations']}")


@scenario("error_gfn",
          "a task touches a gfn outside every slot (ERROR_GFN): error pfn, the access is emulated, no async PF, "
          "nothing mapped")
def _error_gfn(s: Stage) -> None:
    m = s.build()
    mm = AddressSpace()
    mm.map(0x40000000, 1, ERROR_GFN)
    t = s.spawn("apic-poker", _prog(_touch(0x40000000), Work(10_000)), mm=mm)
    faults = []
    s.on("kvm_page_fault", lambda t_ns, f: faults.append(f["fault_address"] >> abi.PAGE_SHIFT), once=False)
    s.finish([t])
    s.check("the fault was at ERROR_GFN", faults == [ERROR_GFN], f"faulting gfns {[hex(g) for g in faults]}")
    s.check("nothing mapped", not mmu.spte_mapped(m.vcpus[0], ERROR_GFN), "")
    s.check("no async PF", s.since_boot("kvm_async_pf_not_present") == 0 and m.kvm.stat.async_pf_allocated == s.boot_alloc,
            f"not-present={s.since_boot('kvm_async_pf_not_present')} work items since boot="
            f"{m.kvm.stat.async_pf_allocated - s.boot_alloc}")


@scenario("reclaim_races_fault",
          "host reclaim runs between tdp_page_fault's mmu_notifier_seq snapshot and its mmu_notifier_retry "
          "check (a callback placed exactly at the `yield None` instant, keyed on the kvm_page_fault "
          "tracepoint): no spte, mmu_notifier_retries counted, the guest faults again and succeeds")
def _reclaim_race(s: Stage) -> None:
    m = s.build()
    gfn = s.resident_unmapped()
    v = m.vcpus[0]
    snap: dict[str, Any] = {}
    ept = m.kvm.cost("ept_fault_ns")

    def arm(t_ns: int, fields: dict) -> None:
        if fields["fault_address"] >> abi.PAGE_SHIFT != gfn:
            return
        s.hooks.remove(hook_ref[0])
        # at t+ept the vcpu resumes and does the lookup, then `yield None`; a callback queued at t+ept
        # *after* that resumption runs in the window (before the deferred mmu_notifier_retry check)
        def in_window() -> None:
            snap["seq"] = m.kvm.mmu_notifier_seq
            snap["reclaimed"] = m.mm.reclaim(1)
            snap["spte_at_reclaim"] = bool(mmu.spte_mapped(v, gfn))
        s.at(ept, lambda: s.at(0, in_window))

    s.on("kvm_page_fault", arm, once=False)
    hook_ref = [s.hooks[-1]]
    faults: list[int] = []
    s.on("kvm_page_fault", lambda t_ns, f: faults.append(f["fault_address"] >> abi.PAGE_SHIFT), once=False)
    t = s.spawn("toucher", _prog(_touch(s.gva(gfn)), Work(10_000)))
    s.finish([t])
    s.check("reclaim ran in the window", snap.get("reclaimed") == 1 and not snap.get("spte_at_reclaim", True),
            f"{snap}")
    s.check("mmu_notifier_retry said retry", v.stat["mmu_notifier_retries"] == 1,
            f"mmu_notifier_retries={v.stat['mmu_notifier_retries']}")
    s.check("the guest faulted twice on the page, then succeeded", faults.count(gfn) == 2,
            f"faults on gfn: {faults.count(gfn)}")
    s.check("no async PF (the page was resident)", s.since_boot("kvm_async_pf_not_present") == 0, "")


@scenario("allocation_failure_falls_back",
          "kvm.alloc_fail makes the work-item allocation fail (GFP_NOWAIT): the fault is handled synchronously "
          "by gfn_to_pfn in the vcpu thread (stalled), counted in kvm.stat.async_pf_alloc_failures")
def _alloc_failure(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    m.kvm.alloc_fail = lambda: True
    t = s.spawn("toucher", _prog(_touch(s.gva(gfn))))
    other = s.spawn("other", _prog(Work(100_000)))
    s.finish([t, other])
    v = m.vcpus[0]
    s.check("allocation failure counted", m.kvm.stat.async_pf_alloc_failures == 1,
            f"async_pf_alloc_failures={m.kvm.stat.async_pf_alloc_failures}")
    s.check("no work item, no not-present", m.kvm.stat.async_pf_allocated == s.boot_alloc
            and v.stat["apf_not_present_injected"] == 0, "")
    s.check("synchronous: stalled time > 0", v.acct["stalled"] > 0, f"stalled={v.acct['stalled']} ns")
    s.check("the page was swapped in", m.mm.stats["swapins"] >= 1, "")
