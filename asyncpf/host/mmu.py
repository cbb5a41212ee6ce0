"""The TDP (EPT/NPT) fault path: where a guest access to an unmapped gfn lands.

Mirrors ``arch/x86/kvm/mmu.c`` (``tdp_page_fault``, ``try_async_pf``,
``__direct_map``) in the seed series (v2, [V2-08]) and in 2.6.38/39
([M-7C90]).  Only two-dimensional paging is modelled: the guest's own page
tables are the guest model's business; KVM sees guest-physical addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ..abi import PAGE_SHIFT
from ..mirrors import mirrors
from . import x86
from .kvm_main import (
    SPTE_NONE,
    gfn_to_hva,
    gfn_to_pfn,
    gfn_to_pfn_async,
    is_error_pfn,
    kvm_release_pfn_clean,
    mmu_notifier_retry,
)

if TYPE_CHECKING:
    from .vcpu import KvmVcpu

# Outcomes of a fault, as the run loop sees them.
RET_MAPPED = "mapped"        # spte installed; the guest retries the access and succeeds
RET_RETRY = "retry"          # nothing mapped (async started, halt requested, notifier race)
RET_EMULATE = "emulate"      # error pfn: no RAM behind the gfn, the access is emulated as MMIO


def trace_ctx(vcpu: "KvmVcpu") -> tuple[str, int, int]:
    return vcpu.comm, vcpu.pid, vcpu.vcpu_id


@mirrors("arch/x86/kvm/mmu.c", "try_async_pf", generations="legacy")
def try_async_pf(vcpu: "KvmVcpu", no_apf: bool, gfn: int, gva: int) -> Generator[Any, Any, tuple[bool, int]]:
    """Get the pfn for ``gfn``, or start an async PF: ``(True, _)`` = handled, re-enter the guest.

    Mirrors: arch/x86/kvm/mmu.c:try_async_pf (2.6.38, 7c90705b): ask
    gfn_to_pfn_async; if the page needs IO and async PF is possible, either
    halt the vcpu (an APF for this gfn is already outstanding: the
    "doublefault" tracepoint) or set up a new one; otherwise fall back to the
    synchronous gfn_to_pfn, which sleeps in this vcpu thread.
    Simplification: the fault page reference of the async answer is not modelled.
    """
    kvm = vcpu.kvm
    ctx = trace_ctx(vcpu)
    pfn, is_async = gfn_to_pfn_async(kvm, gfn)
    if not is_async:
        return False, pfn
    if not no_apf and x86.can_do_async_pf(vcpu):
        kvm.env.trace("kvm_try_async_get_page", ctx=ctx, async_=True, pfn=pfn)
        if x86.kvm_find_async_pf_gfn(vcpu, gfn):
            kvm.env.trace("kvm_async_pf_doublefault", ctx=ctx, gva=gva, gfn=gfn)
            x86.kvm_make_request(vcpu, x86.KVM_REQ_APF_HALT)
            return True, pfn
        if x86.kvm_arch_setup_async_pf(vcpu, gva, gfn):
            return True, pfn
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return False, pfn


@mirrors("arch/x86/kvm/mmu.c", "tdp_page_fault")
def tdp_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int, no_apf: bool = False) -> Generator[Any, Any, str]:
    """Handle an EPT violation at ``gpa``: map it, start an async PF, or retry.

    Mirrors: arch/x86/kvm/mmu.c:tdp_page_fault.  Seed v2 [V2-08]: if
    can_do_async_pf, gfn_to_pfn_async (traced as kvm_try_async_get_page with
    the pfn, or -1 for "async") and kvm_arch_setup_async_pf, else (or if setup
    fails) the synchronous gfn_to_pfn.  2.6.38 [M-7C90]: try_async_pf.  Both
    snapshot ``mmu_notifier_seq`` before looking the page up and, under
    mmu_lock, give up (the guest faults again) if mmu_notifier_retry says an
    invalidation ran in between (seed 001).  The unpatched host (no
    CONFIG_KVM_ASYNC_PF) always uses gfn_to_pfn.
    Simplification: 4 KiB direct map only; mmu_lock is the point right after
    the ``yield None`` (another CPU may run the MMU notifier there).
    """
    kvm = vcpu.kvm
    gfn = gpa >> PAGE_SHIFT
    mmu_seq = kvm.mmu_notifier_seq
    if not kvm.async_pf:
        vcpu.account("stalled")
        pfn = yield from gfn_to_pfn(kvm, gfn)
        vcpu.account("host")
    elif kvm.gen.not_present_at == "entry":
        pfn = yield from _seed_lookup(vcpu, gpa, gfn)
        if pfn is None:
            return RET_RETRY
    else:
        handled, pfn = yield from try_async_pf(vcpu, no_apf, gfn, gpa)
        if handled:
            return RET_RETRY
    if is_error_pfn(pfn):
        return RET_EMULATE
    yield None  # interleaving point: mmu_lock is taken after the lookup
    if mmu_notifier_retry(kvm, mmu_seq):
        kvm_release_pfn_clean(kvm, pfn)
        vcpu.stat["mmu_notifier_retries"] += 1
        return RET_RETRY
    __direct_map(vcpu, gfn, pfn)
    kvm_release_pfn_clean(kvm, pfn)
    return RET_MAPPED


def _seed_lookup(vcpu: "KvmVcpu", gpa: int, gfn: int) -> Generator[Any, Any, int | None]:
    """The seed's lookup inside tdp_page_fault; None when an async PF was set up."""
    kvm = vcpu.kvm
    if x86.can_do_async_pf(vcpu):
        pfn, is_async = gfn_to_pfn_async(kvm, gfn)
        kvm.env.trace("kvm_try_async_get_page", ctx=trace_ctx(vcpu), r=not is_async, pfn=pfn)
        if not is_async:
            return pfn
        if x86.kvm_arch_setup_async_pf(vcpu, gpa, gfn):
            return None
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return pfn


@mirrors("arch/x86/kvm/mmu.c", "__direct_map")
def __direct_map(vcpu: "KvmVcpu", gfn: int, pfn: int) -> None:
    """Install the spte ``gfn -> pfn``.

    Mirrors: arch/x86/kvm/mmu.c:__direct_map (2.6.38).
    Simplification: one level, 4 KiB, always writable; the spte holds no page
    reference (the MMU notifier keeps it coherent instead).
    """
    vcpu.kvm.spte_pfn[gfn] = pfn


def spte_mapped(vcpu: "KvmVcpu", gfn: int) -> bool:
    """Whether a guest access to ``gfn`` goes through without an exit."""
    sptes = vcpu.kvm.spte_pfn
    return gfn < len(sptes) and sptes[gfn] != SPTE_NONE


def guest_access(vcpu: "KvmVcpu", gfn: int, write: bool) -> bool:
    """A guest access through the EPT: True if mapped (A/D bits reach the host page)."""
    if not spte_mapped(vcpu, gfn):
        return False
    kvm = vcpu.kvm
    hva = gfn_to_hva(kvm, gfn)
    vma = kvm.mm.find_vma(hva)
    if vma is not None and vma.kind == "anon" and kvm.mm.is_mapped(hva):  # MMIO has no page to age
        kvm.mm.mark_accessed(hva, write)
    return True
