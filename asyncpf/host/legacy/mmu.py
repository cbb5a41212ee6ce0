"""The TDP fault path as released in 2.6.38: ``arch/x86/kvm/mmu.c@v2.6.38``.

``tdp_page_fault`` snapshots the MMU notifier sequence, asks ``try_async_pf``
for the pfn (which may start an async PF or request the APF halt instead),
and maps the page under mmu_lock unless an invalidation ran meanwhile.  The
lookup is 2.6.39's ``gfn_to_pfn_async`` with FOLL_NOWAIT: 2.6.38 itself
still slept in get_user_pages_fast before it could answer "async", and
0857b9e95c1a ("KVM: Enable async page fault processing", 2.6.39) made the
lookup fail instead of waiting for IO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...mirrors import mirrors
from .. import mmu as mmu_common
from .. import x86
from ..kvm_main import (BAD_PFN, FAULT_PFN, gfn_to_hva, gfn_to_pfn, hva_to_pfn_nowait, kvm_is_error_hva,
                        kvm_release_pfn_clean)

if TYPE_CHECKING:
    from ..kvm_main import Kvm
    from ..vcpu import KvmVcpu


@mirrors("virt/kvm/kvm_main.c", "gfn_to_pfn_async", generations="legacy")
def gfn_to_pfn_async(kvm: "Kvm", gfn: int) -> tuple[int, bool]:
    """Look ``gfn`` up without waiting for IO: ``(pfn, False)``, or ``(fault_pfn, True)`` = "do it async".

    hva_to_pfn(async) with FOLL_NOWAIT (2.6.39): the fast GUP, then a GUP
    that serves minor faults but returns instead of starting IO; VM_PFNMAP
    gives the MMIO pfn; no vma (or a hole) gives fault_pfn at once; an error
    hva gives bad_pfn.  Either way not async.
    Simplification: no mmap_sem, no hwpoison.
    """
    addr = gfn_to_hva(kvm, gfn)
    if kvm_is_error_hva(addr):
        return BAD_PFN, False
    pfn, vma_ok = hva_to_pfn_nowait(kvm, addr)
    if pfn is not None:
        return pfn, False
    return FAULT_PFN, vma_ok


@mirrors("arch/x86/kvm/mmu.c", "kvm_handle_bad_page", generations="legacy")
def kvm_handle_bad_page(kvm: "Kvm", gfn: int, pfn: int) -> str:
    """Release the error pfn; fault_pfn (a slot whose hva has no usable vma) fails KVM_RUN with -EFAULT, bad_pfn
    (no memslot) is emulated as MMIO.

    Simplification: no hwpoison pfn (its SIGBUS branch).
    """
    kvm_release_pfn_clean(kvm, pfn)
    if pfn == FAULT_PFN:
        return mmu_common.RET_EFAULT
    return mmu_common.RET_EMULATE


@mirrors("arch/x86/kvm/mmu.c", "can_do_async_pf", generations="legacy")
def can_do_async_pf(vcpu: "KvmVcpu") -> bool:
    """May this fault go async at all?  No event awaiting reinjection and interrupts allowed.

    CPL and the MSR are looked at later, in kvm_arch_async_page_not_present.
    Simplification: the irqchip is always in-kernel.
    """
    if x86.kvm_event_needs_reinjection(vcpu):
        return False
    return x86.kvm_arch_interrupt_allowed(vcpu)


@mirrors("arch/x86/kvm/mmu.c", "try_async_pf", generations="legacy")
def try_async_pf(vcpu: "KvmVcpu", prefault: bool, gfn: int, gva: int) -> Generator[Any, Any, tuple[bool, int]]:
    """Get the pfn for ``gfn``, or start an async PF: ``(True, _)`` = handled, re-enter the guest.

    If the page needs IO and async PF is possible: trace, then either halt
    the vcpu (an APF for this gfn is already outstanding on it: the
    "doublefault" tracepoint) or set up a new one; otherwise fall back to the
    synchronous gfn_to_pfn, which sleeps in this vcpu thread.
    Simplification: the fault page reference of the async answer is not modelled.
    """
    kvm = vcpu.kvm
    pfn, is_async = gfn_to_pfn_async(kvm, gfn)
    if not is_async:
        return False, pfn
    if not prefault and can_do_async_pf(vcpu):
        ctx = x86.trace_ctx(vcpu)
        kvm.env.trace("kvm_try_async_get_page", ctx=ctx, gva=gva, gfn=gfn)
        if x86.kvm_find_async_pf_gfn(vcpu, gfn):
            kvm.env.trace("kvm_async_pf_doublefault", ctx=ctx, gva=gva, gfn=gfn)
            x86.kvm_make_request(vcpu, x86.KVM_REQ_APF_HALT)
            return True, pfn
        if mmu_common.kvm_arch_setup_async_pf(vcpu, gva, gfn):
            return True, pfn
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return False, pfn


@mirrors("arch/x86/kvm/mmu.c", "tdp_page_fault", generations="legacy")
def tdp_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int, prefault: bool = False) -> Generator[Any, Any, str]:
    """Handle an EPT violation at ``gpa``: map it, start an async PF, or retry.

    Snapshot ``mmu_notifier_seq``, then try_async_pf; "handled" -> back to
    the guest; an error pfn is emulated (MMIO); else map under mmu_lock
    unless mmu_notifier_retry says an invalidation ran in between.
    Simplification: 4 KiB direct map only.
    """
    mmu_seq = vcpu.kvm.mmu_notifier_seq
    handled, pfn = yield from try_async_pf(vcpu, prefault, gpa >> mmu_common.PAGE_SHIFT, gpa)
    if handled:
        return mmu_common.RET_RETRY
    return (yield from mmu_common.map_under_mmu_lock(vcpu, gpa >> mmu_common.PAGE_SHIFT, pfn, mmu_seq))
