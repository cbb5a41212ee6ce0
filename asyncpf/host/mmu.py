"""The parts of the TDP (EPT/NPT) fault path every generation shares: ``arch/x86/kvm/mmu.c``.

Each generation's ``tdp_page_fault`` (``kvm.twins``) decides how the pfn is
found; mapping it under mmu_lock, the token of a new async PF and what a
guest access through the EPT does are common.  Only two-dimensional paging
is modelled: the guest's own page tables are the guest model's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from .. import abi
from ..abi import PAGE_SHIFT
from ..mirrors import mirrors
from .async_pf import KvmArchAsyncPf
from .kvm_main import SPTE_NONE, gfn_to_hva, is_error_pfn, kvm_release_pfn_clean, mmu_notifier_retry

if TYPE_CHECKING:
    from .vcpu import KvmVcpu

__all__ = ["PAGE_SHIFT", "RET_EFAULT", "RET_EMULATE", "RET_MAPPED", "RET_RETRY"]

# Outcomes of a fault, as the run loop sees them.
RET_MAPPED = "mapped"        # spte installed; the guest retries the access and succeeds
RET_RETRY = "retry"          # nothing mapped (async started, halt requested, notifier race)
RET_EMULATE = "emulate"      # error pfn: no RAM behind the gfn, the access is emulated as MMIO
RET_EFAULT = "efault"        # an error pfn the generation does not emulate: KVM_RUN returns -EFAULT to the VMM


@mirrors("arch/x86/kvm/mmu.c", "kvm_mmu_page_fault")
def kvm_mmu_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int) -> Generator[Any, Any, str]:
    """An EPT violation: call the MMU's page_fault, this VM's ``tdp_page_fault``.

    Simplification: the emulation of an MMIO access is the caller's (RET_EMULATE).
    """
    return (yield from vcpu.kvm.twins.tdp_page_fault(vcpu, gpa, error_code))


@mirrors("arch/x86/kvm/mmu.c", "kvm_arch_setup_async_pf")
def kvm_arch_setup_async_pf(vcpu: "KvmVcpu", gva: int, gfn: int) -> bool:
    """Build the token ``(id++ << 12) | vcpu_id`` and hand over to kvm_setup_async_pf.

    The counter is the seed's ``async_pf_id`` and 2.6.38's ``apf.id``.
    Simplification: the token wraps in u32 arithmetic (the 2022 non-zero fix is
    later); ``direct_map`` and ``cr3`` of 2.6.38's item are not kept (always EPT).
    """
    apf = vcpu.arch.apf
    token = abi.make_token(apf.id, vcpu.vcpu_id)
    apf.id = (apf.id + 1) & (abi.U32 >> abi.TOKEN_VCPU_BITS)
    return vcpu.kvm.twins.kvm_setup_async_pf(vcpu, gva, gfn, KvmArchAsyncPf(token=token, gfn=gfn))


def map_under_mmu_lock(vcpu: "KvmVcpu", gfn: int, pfn: int, mmu_seq: int) -> Generator[Any, Any, str]:
    """The tail of tdp_page_fault: an error pfn goes to the generation's bad-page handling (emulate or
    -EFAULT); else take mmu_lock, give up if invalidated, map.

    The ``yield None`` is the interleaving point before mmu_lock: another CPU
    may run the MMU notifier there (seed 001's race).
    """
    if is_error_pfn(pfn):
        return vcpu.kvm.twins.kvm_handle_bad_page(vcpu.kvm, gfn, pfn)
    yield None
    kvm = vcpu.kvm
    if mmu_notifier_retry(kvm, mmu_seq):
        kvm_release_pfn_clean(kvm, pfn)
        vcpu.stat["mmu_notifier_retries"] += 1
        return RET_RETRY
    __direct_map(vcpu, gfn, pfn)
    kvm_release_pfn_clean(kvm, pfn)
    return RET_MAPPED


@mirrors("arch/x86/kvm/mmu.c", "__direct_map")
def __direct_map(vcpu: "KvmVcpu", gfn: int, pfn: int) -> None:
    """Install the spte ``gfn -> pfn``.

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
