"""The TDP fault path of the interrupt era: ``arch/x86/kvm/mmu/mmu.c@v6.18``.

The first lookup asks GUP not to wait (FOLL_NOWAIT); only "needs IO"
(KVM_PFN_ERR_NEEDS_IO, 2024) enters the async branch -- a repeated fault on a
gfn already outstanding requests the APF halt, else an async PF is set up --
and everything else retries synchronously with IO allowed.  The token is
never 0 since 2022 (``alloc_apf_token``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ... import abi
from ...mirrors import mirrors
from .. import mmu as mmu_common
from .. import x86 as x86_common
from ..async_pf import KvmArchAsyncPf
from ..kvm_main import BAD_PFN, FAULT_PFN, gfn_to_hva, gfn_to_pfn, hva_to_pfn_nowait, kvm_is_error_hva
from . import async_pf, x86

if TYPE_CHECKING:
    from ..kvm_main import Kvm
    from ..vcpu import KvmVcpu


@mirrors("virt/kvm/kvm_main.c", "__kvm_faultin_pfn", generations="interrupt")
def gfn_to_pfn_async(kvm: "Kvm", gfn: int) -> tuple[int, bool]:
    """The FOLL_NOWAIT lookup: ``(pfn, False)``, or ``(error pfn, True)`` = KVM_PFN_ERR_NEEDS_IO.

    Resident, minor-fault or VM_PFNMAP pages answer at once; a page that
    needs IO under a valid vma is "needs IO"; no slot / no vma is a plain
    error pfn (not async).
    Simplification: no mmap lock, no hwpoison, no guest_memfd.
    """
    addr = gfn_to_hva(kvm, gfn)
    if kvm_is_error_hva(addr):
        return BAD_PFN, False
    pfn, vma_ok = hva_to_pfn_nowait(kvm, addr)
    if pfn is not None:
        return pfn, False
    return FAULT_PFN, vma_ok


@mirrors("arch/x86/kvm/mmu/mmu.c", "kvm_handle_error_pfn", generations="interrupt")
def kvm_handle_error_pfn(kvm: "Kvm", gfn: int, pfn: int) -> str:
    """An error pfn: a gfn without memslot is emulated (kvm_handle_noslot_fault, MMIO); any other error pfn
    fails KVM_RUN with -EFAULT.

    Simplification: no pending-signal, read-only (emulated) or hwpoison (retried, SIGBUS) pfns; the model's
    bad_pfn stands for the no-slot case, which 6.18 tells apart before this point (there an error pfn holds no
    reference, so nothing is released).
    """
    if pfn == FAULT_PFN:
        return mmu_common.RET_EFAULT
    return mmu_common.RET_EMULATE


@mirrors("arch/x86/kvm/mmu/mmu.c", "alloc_apf_token", generations="interrupt")
def alloc_apf_token(vcpu: "KvmVcpu") -> int:
    """``(id++ << 12) | vcpu_id``, with the counter bumped to 1 first when ``id << 12`` is 0 (2022: never token 0)."""
    apf = vcpu.arch.apf
    if (apf.id << abi.TOKEN_VCPU_BITS) & abi.U32 == 0:
        apf.id = 1
    token = abi.make_token(apf.id, vcpu.vcpu_id)
    apf.id = (apf.id + 1) & (abi.U32 >> abi.TOKEN_VCPU_BITS)
    return token


@mirrors("arch/x86/kvm/mmu/mmu.c", "kvm_arch_setup_async_pf", generations="interrupt")
def kvm_arch_setup_async_pf(vcpu: "KvmVcpu", gpa: int, gfn: int) -> bool:
    """Build the item's arch part (a non-zero token, the gfn) and hand over to kvm_setup_async_pf with the hva.

    Simplification: ``direct_map``, ``cr3`` and ``error_code`` are not kept (always TDP, no private memory).
    """
    arch = KvmArchAsyncPf(token=alloc_apf_token(vcpu), gfn=gfn)
    return async_pf.kvm_setup_async_pf(vcpu, gpa, gfn_to_hva(vcpu.kvm, gfn), arch)


@mirrors("arch/x86/kvm/mmu/mmu.c", "__kvm_mmu_faultin_pfn", generations="interrupt")
def kvm_mmu_faultin_pfn(vcpu: "KvmVcpu", gpa: int, prefetch: bool) -> Generator[Any, Any, tuple[bool, int]]:
    """Get the pfn for ``gpa``, or go async: ``(True, _)`` = RET_PF_RETRY, re-enter the guest.

    Needs IO and async allowed: trace try; a gfn already outstanding on this
    vcpu is a repeated fault (traced) -> APF halt; else set one up.  Any other
    case: the synchronous lookup, sleeping in this vcpu thread.
    """
    kvm = vcpu.kvm
    gfn = gpa >> abi.PAGE_SHIFT
    pfn, needs_io = gfn_to_pfn_async(kvm, gfn)
    if not needs_io:
        return False, pfn
    if not prefetch and x86.kvm_can_do_async_pf(vcpu):
        ctx = x86_common.trace_ctx(vcpu)
        kvm.env.trace("kvm_try_async_get_page", ctx=ctx, gva=gpa, gfn=gfn)
        if x86_common.kvm_find_async_pf_gfn(vcpu, gfn):
            kvm.env.trace("kvm_async_pf_repeated_fault", ctx=ctx, gva=gpa, gfn=gfn)
            x86_common.kvm_make_request(vcpu, x86_common.KVM_REQ_APF_HALT)
            return True, pfn
        if kvm_arch_setup_async_pf(vcpu, gpa, gfn):
            return True, pfn
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return False, pfn


@mirrors("arch/x86/kvm/mmu/mmu.c", "kvm_tdp_page_fault", generations="interrupt")
def kvm_tdp_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int, prefetch: bool = False) -> Generator[Any, Any, str]:
    """Handle an EPT violation at ``gpa``: snapshot the invalidation sequence, fault the pfn in, map or retry.

    Simplification: 4 KiB direct map only.
    """
    mmu_seq = vcpu.kvm.mmu_notifier_seq
    handled, pfn = yield from kvm_mmu_faultin_pfn(vcpu, gpa, prefetch)
    if handled:
        return mmu_common.RET_RETRY
    return (yield from mmu_common.map_under_mmu_lock(vcpu, gpa >> abi.PAGE_SHIFT, pfn, mmu_seq))
