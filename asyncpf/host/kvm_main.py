"""Generic KVM: memslots, guest memory access, gfn -> pfn, MMU notifier callbacks.

Mirrors ``virt/kvm/kvm_main.c`` of the seed series (v2, 2009) and of
2.6.38/2.6.39 (async PF merged, FOLL_NOWAIT).  The VM is :class:`Kvm`
(``struct kvm``); a vcpu is ``asyncpf.host.vcpu.KvmVcpu``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

import numpy as np

from ..abi import PAGE_SHIFT, PAGE_SIZE, Generation
from ..mirrors import mirrors
from .mm import GUP_EFAULT, HostMemory

if TYPE_CHECKING:
    from ..sim import Environment
    from .vcpu import KvmVcpu

KVM_MEMORY_SLOTS = 32
BAD_HVA = 0xFFFF880000000000    # bad_hva(): PAGE_OFFSET, never a user address
BAD_PFN = 0x1000                # page_to_pfn(bad_page), allocated at kvm_init
FAULT_PFN = 0x1001              # page_to_pfn(fault_page) (2.6.38)
SPTE_NONE = -1


@dataclass
class KvmMemorySlot:
    """``struct kvm_memory_slot``: guest frames [base_gfn, base_gfn+npages) at a VMM address."""

    id: int
    base_gfn: int
    npages: int
    userspace_addr: int

    def contains(self, gfn: int) -> bool:
        return self.base_gfn <= gfn < self.base_gfn + self.npages


@dataclass
class GfnToHvaCache:
    """``struct gfn_to_hva_cache``: a gpa resolved once, re-resolved when memslots change."""

    generation: int = -1
    gpa: int = 0
    hva: int = BAD_HVA
    memslot: KvmMemorySlot | None = None


@dataclass
class KvmStat:
    """Counters a reader (and the leak check) looks at."""

    async_pf_allocated: int = 0
    async_pf_freed: int = 0
    async_pf_alloc_failures: int = 0
    async_pf_completed: int = 0
    mm_count: int = 0            # mm references taken by work items (mmdrop balances)
    cancel_leaked_refs: int = 0  # cancelled items whose kvm and mm references 2.6.38 never gave back


@dataclass(eq=False)
class Kvm:
    """``struct kvm``: one VM -- its memslots, its MMU state and its vcpus."""

    env: "Environment"
    abi: Generation
    mm: HostMemory
    async_pf: bool = True                 # CONFIG_KVM_ASYNC_PF: False = the unpatched host
    irqchip_in_kernel: bool = True        # KVM_CREATE_IRQCHIP was called: the LAPIC is KVM's
    memslots: list[KvmMemorySlot] = field(default_factory=list)
    memslots_generation: int = 0
    mmu_notifier_seq: int = 0
    mmu_notifier_count: int = 0
    users_count: int = 1                  # kvm_get_kvm / kvm_put_kvm
    vcpus: list["KvmVcpu"] = field(default_factory=list)
    stat: KvmStat = field(default_factory=KvmStat)
    costs: dict[str, int] = field(default_factory=dict)
    alloc_fail: Any = None                # fault injection: callable() -> bool, True = the next allocation fails
    stat_violations: list[tuple[str, int, str]] = field(default_factory=list)  # what the twins broke, as data (reads of freed items)
    twins: Any = field(init=False, repr=False)  # this VM's generation-specific twins (asyncpf.host.twins)
    spte_pfn: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    guest_bytes: dict[int, bytearray] = field(default_factory=dict)  # contents of pages the model reads/writes

    def __post_init__(self) -> None:
        from .twins import select  # the generation packages import this module
        self.twins = select(self.abi, self.async_pf)
        self.mm.mmu_notifier_register(KvmMmuNotifier(self))

    def cost(self, name: str) -> int:
        return self.costs.get(name, 0)


# --- memslots ---------------------------------------------------------------------

@mirrors("virt/kvm/kvm_main.c", "__kvm_set_memory_region")
def kvm_set_memory_region(kvm: Kvm, slot_id: int, base_gfn: int, npages: int, userspace_addr: int) -> KvmMemorySlot:
    """Create (or, with npages=0, delete) a memslot and bump the memslots generation.

    A deletion first publishes the slot as invalid (one generation bump) and
    zaps every shadow page of the VM (kvm_arch_flush_shadow), not only the
    slot's; installing the new slot array bumps the generation again.  The
    generation counter is ``kvm_memslots.generation`` (v6 patch 04/12).
    Simplification: no dirty logging, no slot moves or resizes (delete, then
    create; re-creating a slot drops its old sptes); the spte array is resized
    to cover the highest gfn.
    """
    if not 0 <= slot_id < KVM_MEMORY_SLOTS:
        raise ValueError(f"slot id {slot_id} is outside 0..{KVM_MEMORY_SLOTS - 1}")
    if base_gfn < 0 or npages < 0:
        raise ValueError(f"base_gfn {base_gfn} and npages {npages} must be >= 0")
    if userspace_addr % PAGE_SIZE:
        raise ValueError(f"userspace_addr {userspace_addr:#x} is not page aligned")
    others = [s for s in kvm.memslots if s.id != slot_id]
    if npages:
        for s in others:
            if base_gfn < s.base_gfn + s.npages and s.base_gfn < base_gfn + npages:
                raise ValueError(
                    f"gfns {base_gfn:#x}+{npages:#x} overlap slot {s.id} ({s.base_gfn:#x}+{s.npages:#x})"
                )
    old = next((s for s in kvm.memslots if s.id == slot_id), None)
    if not npages:
        kvm.memslots_generation += 1  # the slot marked KVM_MEMSLOT_INVALID is published first
        kvm.spte_pfn[:] = SPTE_NONE   # kvm_arch_flush_shadow -> kvm_mmu_zap_all: every spte of the VM
    elif old is not None:
        kvm_arch_flush_shadow_slot(kvm, old)
    new = KvmMemorySlot(slot_id, base_gfn, npages, userspace_addr)
    kvm.memslots = sorted(others + ([new] if npages else []), key=lambda s: s.base_gfn)
    kvm.memslots_generation += 1
    top = max((s.base_gfn + s.npages for s in kvm.memslots), default=0)
    if top > len(kvm.spte_pfn):
        grown = np.full(top, SPTE_NONE, dtype=np.int64)
        grown[: len(kvm.spte_pfn)] = kvm.spte_pfn
        kvm.spte_pfn = grown
    return new


def kvm_arch_flush_shadow_slot(kvm: Kvm, slot: KvmMemorySlot) -> None:
    """Drop every spte of a slot that goes away (2.6.38 flushes all shadow pages)."""
    kvm.spte_pfn[slot.base_gfn: slot.base_gfn + slot.npages] = SPTE_NONE


@mirrors("virt/kvm/kvm_main.c", "gfn_to_memslot")
def gfn_to_memslot(kvm: Kvm, gfn: int) -> KvmMemorySlot | None:
    """The slot holding ``gfn``, or None.

    Simplification: a linear search over at most 32 slots, no RCU.
    """
    for slot in kvm.memslots:
        if slot.contains(gfn):
            return slot
    return None


@mirrors("virt/kvm/kvm_main.c", "gfn_to_hva")
def gfn_to_hva(kvm: Kvm, gfn: int) -> int:
    """The VMM virtual address backing ``gfn``; ``BAD_HVA`` outside every slot.

    Simplification: no KVM_MEMSLOT_INVALID flag (slots are never moved, only deleted and created).
    """
    slot = gfn_to_memslot(kvm, gfn)
    if slot is None:
        return BAD_HVA
    return slot.userspace_addr + ((gfn - slot.base_gfn) << PAGE_SHIFT)


def kvm_is_error_hva(addr: int) -> bool:
    """Mirrors virt/kvm/kvm_main.c:kvm_is_error_hva (2.6.38): the bad_hva() sentinel."""
    return addr == BAD_HVA


def is_error_pfn(pfn: int) -> bool:
    """Mirrors virt/kvm/kvm_main.c:is_error_pfn (2.6.38): bad_page, fault_page."""
    return pfn in (BAD_PFN, FAULT_PFN)


def hva_to_gfns(kvm: Kvm, hva: int) -> list[int]:
    """Every gfn whose slot maps ``hva`` (the rmap walk of kvm_handle_hva)."""
    out = []
    for slot in kvm.memslots:
        start = slot.userspace_addr
        if start <= hva < start + (slot.npages << PAGE_SHIFT):
            out.append(slot.base_gfn + ((hva - start) >> PAGE_SHIFT))
    return out


# --- cached guest writes (the APF shared area) ---------------------------------------

@mirrors("virt/kvm/kvm_main.c", "kvm_gfn_to_hva_cache_init", generations="legacy")
def kvm_gfn_to_hva_cache_init(kvm: Kvm, ghc: GfnToHvaCache, gpa: int) -> int:
    """Resolve ``gpa`` into ``ghc``; 0 on success, -EFAULT (-14) outside guest RAM.

    The cache is overwritten before the check: on failure it holds the new
    gpa, the current generation and the error hva (so a later cached write
    fails with -EFAULT instead of reaching the old area).
    Simplification: the cached area must lie in one page (the APF area is 64-byte aligned).
    """
    gfn = gpa >> PAGE_SHIFT
    ghc.gpa = gpa
    ghc.generation = kvm.memslots_generation
    ghc.memslot = gfn_to_memslot(kvm, gfn)
    ghc.hva = gfn_to_hva(kvm, gfn)
    if kvm_is_error_hva(ghc.hva):
        return -14
    ghc.hva += gpa & (PAGE_SIZE - 1)
    return 0


@mirrors("virt/kvm/kvm_main.c", "kvm_write_guest_cached", generations="legacy")
def kvm_write_guest_cached(kvm: Kvm, ghc: GfnToHvaCache, data: bytes) -> int:
    """Write ``data`` at the cached gpa, re-resolving first if memslots moved; 0 or -EFAULT.

    Simplification: the copy never faults (the area is written at every APF,
    so it is hot); the host page is marked accessed and dirty if resident.
    """
    if not _cache_resolved(kvm, ghc):
        return -14
    write_guest_bytes(kvm, ghc.gpa, data)
    page = ghc.hva & ~(PAGE_SIZE - 1)
    vma = kvm.mm.find_vma(page)
    if vma is not None and vma.kind == "anon" and kvm.mm.is_mapped(page):
        kvm.mm.mark_accessed(page, True)
    return 0


@mirrors("virt/kvm/kvm_main.c", "kvm_write_guest_offset_cached", generations="interrupt")
def kvm_write_guest_offset_cached(kvm: Kvm, ghc: GfnToHvaCache, data: bytes, offset: int) -> int:
    """Write ``data`` at ``offset`` into the cached area (5.8+; the token field); 0 or -EFAULT.

    Re-resolve when the memslots generation moved, refuse an error hva, copy.
    Simplification: the copy never faults, and the host page's accessed/dirty bits are left alone (the
    kernel marks it dirty; the not-present that came first wrote the same page through
    kvm_write_guest_cached, which marks it).
    """
    if not _cache_resolved(kvm, ghc):
        return -14
    write_guest_bytes(kvm, ghc.gpa + offset, data)
    return 0


@mirrors("virt/kvm/kvm_main.c", "kvm_read_guest_offset_cached", generations="interrupt")
def kvm_read_guest_offset_cached(kvm: Kvm, ghc: GfnToHvaCache, offset: int, n: int) -> bytes | None:
    """Read ``n`` bytes at ``offset`` of the cached area; None where the kernel returns -EFAULT."""
    if not _cache_resolved(kvm, ghc):
        return None
    return read_guest_bytes(kvm, ghc.gpa + offset, n)


def _cache_resolved(kvm: Kvm, ghc: GfnToHvaCache) -> bool:
    """The common head of the cached accessors: re-resolve if the memslots moved; False for an error hva."""
    if ghc.generation != kvm.memslots_generation:
        kvm_gfn_to_hva_cache_init(kvm, ghc, ghc.gpa)
    return not kvm_is_error_hva(ghc.hva)


def write_guest_bytes(kvm: Kvm, gpa: int, data: bytes) -> None:
    """Store bytes in guest RAM contents (the model keeps contents only for pages it writes), page by page."""
    at = 0
    while at < len(data):   # one slice per page touched (every APF-area access is one)
        off = (gpa + at) & (PAGE_SIZE - 1)
        length = min(len(data) - at, PAGE_SIZE - off)
        page = kvm.guest_bytes.get((gpa + at) >> PAGE_SHIFT)
        if page is None:
            page = kvm.guest_bytes[(gpa + at) >> PAGE_SHIFT] = bytearray(PAGE_SIZE)
        page[off:off + length] = data[at:at + length]
        at += length


def read_guest_bytes(kvm: Kvm, gpa: int, n: int) -> bytes:
    """Read bytes of guest RAM contents (zero where the model never wrote), page by page."""
    out = b""
    while len(out) < n:   # one slice per page (the checker reads the APF area every step: one page)
        off = (gpa + len(out)) & (PAGE_SIZE - 1)
        length = min(n - len(out), PAGE_SIZE - off)
        page = kvm.guest_bytes.get((gpa + len(out)) >> PAGE_SHIFT)
        out += bytes(page[off:off + length]) if page is not None else bytes(length)
    return out


# --- gfn -> pfn --------------------------------------------------------------------

def _pfnmap_pfn(kvm: Kvm, addr: int) -> int | None:
    vma = kvm.mm.find_vma(addr)
    if vma is not None and vma.kind == "pfnmap" and vma.contains(addr):
        return ((addr - vma.start) >> PAGE_SHIFT) + vma.pgoff
    return None


def hva_to_pfn_nowait(kvm: Kvm, addr: int) -> tuple[int | None, bool]:
    """The part of every generation's ``gfn_to_pfn_async`` that never waits for IO.

    ``(pfn, True)`` when the page is there at once: the fast GUP (resident and
    mapped), a GUP that serves minor faults (first touch, swap-cache hit) but
    starts no IO, or a VM_PFNMAP region's MMIO pfn from vm_pgoff.  ``(None,
    vma_ok)`` when the page needs IO: ``vma_ok`` says whether a vma covers
    ``addr`` at all.  A returned RAM pfn holds a page reference.
    """
    mm = kvm.mm
    pfn = mm.get_user_pages_fast(addr, True)
    if pfn is not None and pfn != GUP_EFAULT:
        return pfn, True
    if pfn is None:
        pfn = mm.get_user_pages_nowait(addr, True)
        if pfn is not None and pfn != GUP_EFAULT:
            return pfn, True
    mmio = _pfnmap_pfn(kvm, addr)
    if mmio is not None:
        return mmio, True
    vma = mm.find_vma(addr)
    return None, vma is not None and vma.contains(addr)


@mirrors("virt/kvm/kvm_main.c", "gfn_to_pfn")
def gfn_to_pfn(kvm: Kvm, gfn: int) -> Generator[Any, Any, int]:
    """Look ``gfn`` up, sleeping for swap IO if needed (``pfn = yield from gfn_to_pfn(..)``).

    Simplification: no mmap_sem, no hwpoison.
    """
    addr = gfn_to_hva(kvm, gfn)
    if kvm_is_error_hva(addr):
        return BAD_PFN
    mm = kvm.mm
    pfn = mm.get_user_pages_fast(addr, True)
    if pfn is None:
        pfn = yield from mm.get_user_pages(addr, True)
    if pfn != GUP_EFAULT:
        return pfn
    mmio = _pfnmap_pfn(kvm, addr)
    return FAULT_PFN if mmio is None else mmio


def kvm_release_pfn_clean(kvm: Kvm, pfn: int) -> None:
    """Mirrors virt/kvm/kvm_main.c:kvm_release_pfn_clean: drop the GUP reference of a RAM pfn."""
    if not is_error_pfn(pfn) and kvm.mm.page_count(pfn) > 0 and _pfnmap_of(kvm, pfn) is None:
        kvm.mm.put_page(pfn)


def _pfnmap_of(kvm: Kvm, pfn: int) -> Any:
    for vma in kvm.mm.vmas:
        if vma.kind == "pfnmap" and vma.pgoff <= pfn < vma.pgoff + vma.npages:
            return vma
    return None


# --- MMU notifiers -------------------------------------------------------------------

class KvmMmuNotifier:
    """``kvm->mmu_notifier``: host mm changes reach KVM's sptes through these calls."""

    def __init__(self, kvm: Kvm):
        self.kvm = kvm

    @mirrors("virt/kvm/kvm_main.c", "kvm_mmu_notifier_invalidate_page")
    def invalidate_page(self, mm: HostMemory, hva: int) -> None:
        """The Linux pte of ``hva`` is gone: bump the sequence and drop the spte.

        Simplification: mmu_lock and the remote TLB flush are implicit (no yield).
        """
        kvm = self.kvm
        kvm.mmu_notifier_seq += 1
        kvm_unmap_hva(kvm, hva)

    def invalidate_pages(self, mm: HostMemory, hvas: np.ndarray) -> None:
        """:meth:`invalidate_page` for each of ``hvas`` in turn, done over the array at once (reclaim's chunks;
        see asyncpf/hotpath.py).  Exactly the same effect: the sequence moves once per page, every spte of
        every page goes."""
        kvm = self.kvm
        kvm.mmu_notifier_seq += len(hvas)
        for slot in kvm.memslots:
            start = slot.userspace_addr
            inside = hvas[(hvas >= start) & (hvas < start + (slot.npages << PAGE_SHIFT))]
            gfns = slot.base_gfn + ((inside - start) >> PAGE_SHIFT)
            kvm.spte_pfn[gfns[gfns < len(kvm.spte_pfn)]] = SPTE_NONE

    @mirrors("virt/kvm/kvm_main.c", "kvm_mmu_notifier_invalidate_range_start")
    def invalidate_range_start(self, mm: HostMemory, start: int, end: int) -> None:
        """A range is being unmapped: ``mmu_notifier_count++`` and drop its sptes.

        Simplification: no lock; faults see ``count != 0`` and retry.
        """
        kvm = self.kvm
        kvm.mmu_notifier_count += 1
        for hva in range(start, end, PAGE_SIZE):
            kvm_unmap_hva(kvm, hva)

    @mirrors("virt/kvm/kvm_main.c", "kvm_mmu_notifier_invalidate_range_end")
    def invalidate_range_end(self, mm: HostMemory, start: int, end: int) -> None:
        """The range is gone: ``mmu_notifier_seq++`` then ``mmu_notifier_count--``.

        Simplification: the ordering seq-then-count stands in for the smp_wmb.
        """
        kvm = self.kvm
        kvm.mmu_notifier_seq += 1
        kvm.mmu_notifier_count -= 1
        if kvm.mmu_notifier_count < 0:
            raise AssertionError("mmu_notifier_count went negative")


@mirrors("arch/x86/kvm/mmu.c", "kvm_unmap_hva")
def kvm_unmap_hva(kvm: Kvm, hva: int) -> None:
    """Drop every spte that maps ``hva``.

    Simplification: one spte per gfn (direct map, 4 KiB), no rmap chains.
    """
    for gfn in hva_to_gfns(kvm, hva):
        if gfn < len(kvm.spte_pfn):
            kvm.spte_pfn[gfn] = SPTE_NONE


@mirrors("include/linux/kvm_host.h", "mmu_notifier_retry")
def mmu_notifier_retry(kvm: Kvm, mmu_seq: int) -> bool:
    """True if an invalidation ran (or is running) since ``mmu_seq`` was read.

    Simplification: read under the (implicit) mmu_lock.
    """
    return kvm.mmu_notifier_count != 0 or kvm.mmu_notifier_seq != mmu_seq
