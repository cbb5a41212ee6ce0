"""The TDP fault path of the seed series: ``arch/x86/kvm/mmu.c`` of v2 patch 08/12 (2009-11-23).

``tdp_page_fault`` asks ``gfn_to_pfn_async`` whenever ``can_do_async_pf``
allows, traces every answer, and sets up an async PF when the page is not
there; ``gfn_to_pfn_async`` is the seed's own (``get_user_pages_noio``,
posted through v7 but never merged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...abi import KVM_ASYNC_PF_ENABLED, PAGE_SHIFT
from ...mirrors import mirrors
from .. import mmu as mmu_common
from .. import x86
from ..kvm_main import (BAD_PFN, FAULT_PFN, gfn_to_hva, gfn_to_pfn, hva_to_pfn_nowait, kvm_is_error_hva,
                        kvm_release_pfn_clean)

if TYPE_CHECKING:
    from ..kvm_main import Kvm
    from ..vcpu import KvmVcpu


def kvm_handle_bad_page(kvm: "Kvm", gfn: int, pfn: int) -> str:
    """The seed's error-pfn branch of tdp_page_fault ("/* mmio */"): release it and emulate, whatever the error.

    Part of the tdp_page_fault twin below: the seed's tree has no kvm_handle_bad_page
    yet (it came with the hwpoison work for 2.6.34), so there is no function of its
    own to mirror; 2.6.38's (legacy) fails KVM_RUN with -EFAULT for fault_pfn instead.
    """
    kvm_release_pfn_clean(kvm, pfn)
    return mmu_common.RET_EMULATE


@mirrors("virt/kvm/kvm_main.c", "gfn_to_pfn_async", generations="seed")
def gfn_to_pfn_async(kvm: "Kvm", gfn: int) -> tuple[int, bool]:
    """Look ``gfn`` up without doing IO: ``(pfn, False)``, or ``(fault_pfn, True)`` = "do it async".

    Error hva -> bad_pfn, synchronous; ``__get_user_pages_fast``, then
    ``get_user_pages_noio`` (minor faults only); VM_PFNMAP -> the MMIO pfn;
    anything else -- a page that needs IO, or no vma at all -- goes async
    (the worker's get_user_pages then fails for a missing vma).
    Simplification: no mmap_sem.
    """
    addr = gfn_to_hva(kvm, gfn)
    if kvm_is_error_hva(addr):
        return BAD_PFN, False
    pfn, _ = hva_to_pfn_nowait(kvm, addr)
    if pfn is not None:
        return pfn, False
    return FAULT_PFN, True


@mirrors("arch/x86/kvm/mmu.c", "can_do_async_pf", generations="seed")
def can_do_async_pf(vcpu: "KvmVcpu") -> bool:
    """May this fault go async?  The guest registered an area, no event awaits reinjection, CPL != 0."""
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED or x86.kvm_event_needs_reinjection(vcpu):
        return False
    return vcpu.arch.cpl != 0


@mirrors("arch/x86/kvm/mmu.c", "tdp_page_fault", generations="seed")
def tdp_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int) -> Generator[Any, Any, str]:
    """Handle an EPT violation at ``gpa``: map it, start an async PF, or retry.

    Snapshot ``mmu_notifier_seq``; if can_do_async_pf, gfn_to_pfn_async
    (traced as kvm_try_async_get_page with its answer and the pfn) and, when
    the page is not there, kvm_arch_setup_async_pf -- failing that, or
    without async PF, the synchronous gfn_to_pfn; then map under mmu_lock
    unless an invalidation ran in between.
    Simplification: 4 KiB direct map only.
    """
    kvm = vcpu.kvm
    gfn = gpa >> PAGE_SHIFT
    mmu_seq = kvm.mmu_notifier_seq
    if can_do_async_pf(vcpu):
        pfn, is_async = gfn_to_pfn_async(kvm, gfn)
        kvm.env.trace("kvm_try_async_get_page", ctx=x86.trace_ctx(vcpu), r=not is_async, pfn=pfn)
        if not is_async:
            return (yield from mmu_common.map_under_mmu_lock(vcpu, gfn, pfn, mmu_seq))
        if mmu_common.kvm_arch_setup_async_pf(vcpu, gpa, gfn):
            return mmu_common.RET_RETRY
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return (yield from mmu_common.map_under_mmu_lock(vcpu, gfn, pfn, mmu_seq))
