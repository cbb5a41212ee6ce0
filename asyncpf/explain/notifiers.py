"""Helpers for notebook 08: MMU notifiers -- reclaim invalidates KVM's mapping and the fault path retries."""

from __future__ import annotations

from typing import Any

from .. import abi
from ..host import mmu
from ..host.kvm_main import SPTE_NONE, gfn_to_hva, kvm_release_pfn_clean
from ..machine import Machine
from .common import G, make_resident, page_state, run_process, small_machine


# --- 08: MMU notifiers ------------------------------------------------------------------------

class NotifierSpy:
    """An MMU notifier registered after KVM's: records what KVM's state is at each call."""

    def __init__(self, m: Machine, gfn: int):
        self.m, self.gfn, self.seen = m, gfn, []

    def _kvm(self) -> tuple[int, int, bool]:
        k = self.m.kvm
        return k.mmu_notifier_seq, k.mmu_notifier_count, int(k.spte_pfn[self.gfn]) != SPTE_NONE

    def invalidate_page(self, mm, hva):
        self.seen.append(("invalidate_page", *self._kvm()))

    def invalidate_range_start(self, mm, start, end):
        self.seen.append(("invalidate_range_start", *self._kvm()))

    def invalidate_range_end(self, mm, start, end):
        self.seen.append(("invalidate_range_end", *self._kvm()))


def spy(m: Machine, gfn: int = G) -> NotifierSpy:
    s = NotifierSpy(m, gfn)
    m.mm.mmu_notifier_register(s)
    return s


def kvm_view(m: Machine, gfn: int = G) -> dict[str, Any]:
    """KVM's view of ``gfn``: spte mapped?, the notifier counters, the host page state."""
    k = m.kvm
    return {"spte_mapped": int(k.spte_pfn[gfn]) != SPTE_NONE, "mmu_notifier_seq": k.mmu_notifier_seq,
            "mmu_notifier_count": k.mmu_notifier_count, "page": page_state(m, gfn)}


RACES = ("none", "reclaim_other", "zap_same")


def notifier_race(race: str = "none") -> dict[str, Any]:
    """A tdp_page_fault on a resident gfn; with a race, an invalidation runs at its interleaving point.

    ``reclaim_other`` evicts another page (the faulting one is pinned by its
    GUP reference); ``zap_same`` is MADV_DONTNEED of the faulting page.
    Either bumps ``mmu_notifier_seq`` between the fault's snapshot and its
    ``mmu_notifier_retry`` check.
    """
    if race not in RACES:
        raise ValueError(f"unknown race {race!r}; expected one of {RACES}")
    m = small_machine("legacy")
    make_resident(m, G, G + 1)
    vcpu = m.vcpus[0]
    seq0 = m.kvm.mmu_notifier_seq
    p = m.env.process(mmu.kvm_mmu_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), "fault")
    if race == "reclaim_other":
        m.env.schedule(0, lambda _a: m.mm.reclaim(1))
    elif race == "zap_same":
        m.env.schedule(0, lambda _a: m.mm.zap_range(gfn_to_hva(m.kvm, G), 1))
    m.env.run()
    out = {"race": race, "fault": p.value, "seq_moved": m.kvm.mmu_notifier_seq - seq0,
           "retries": vcpu.stat["mmu_notifier_retries"], **kvm_view(m), "page_refs": m.mm.total_page_refs,
           "mm_check": m.mm.check()}
    # the guest retries the access: the second fault maps whatever page the host has now
    out["refault"] = run_process(m, mmu.kvm_mmu_page_fault(vcpu, G << abi.PAGE_SHIFT, 2))
    pfn, _ = m.kvm.twins.gfn_to_pfn_async(m.kvm, G)
    out["refault_maps_current_page"] = int(m.kvm.spte_pfn[G]) == pfn
    kvm_release_pfn_clean(m.kvm, pfn)
    out["page_refs_end"] = m.mm.total_page_refs
    return out
