"""The VMM process's address space (``mm_struct``) inside a memory cgroup.

This is what KVM sees below ``gfn_to_pfn``: anonymous guest RAM that the host
may swap out, the ``get_user_pages`` family that faults it back, and the MMU
notifiers through which the host tells KVM that a page went away.

Per-page state lives only in numpy arrays indexed by the page's *anon index*
(its position across all anonymous VMAs, in mmap order); frames (pfns) come
from a pool of ``limit_pages`` frames with per-frame reference counts.

Page life cycle (``PageState``)::

    NONE --touch (zero fill, minor)--> RESIDENT --evict, clean--> SWAPPED
                                       RESIDENT --evict, dirty--> SWAPCACHE --write done--> SWAPPED
    SWAPCACHE --touch (minor)--> RESIDENT
    SWAPPED --blocking GUP--> SWAPIN --read done--> RESIDENT
    any --zap_range (MADV_DONTNEED)--> NONE

A page is charged to the cgroup while RESIDENT or SWAPIN; a frame zapped
while a GUP reference is still held stays charged until its last ``put_page``.
Reclaim (victim choice, eviction, swap write-back) lives in ``reclaim.py`` and
works on these arrays; ``HostMemory`` calls it when a charge hits the limit.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from functools import partial
from typing import Any, Generator, Protocol

import numpy as np

from asyncpf.abi import PAGE_SHIFT, PAGE_SIZE
from asyncpf.host.swap import SwapDevice
from asyncpf.mirrors import mirrors
from asyncpf.sim import Environment, Event


class PageState(enum.IntEnum):
    NONE = 0        # never touched
    RESIDENT = 1    # in memory, mapped in the process page table
    SWAPCACHE = 2   # evicted, frame released, write-back in flight: a touch is a MINOR fault
    SWAPPED = 3     # only on the swap device: a touch is a MAJOR fault (swap-in IO)
    SWAPIN = 4      # swap-in read in flight (frame allocated and charged)


# plain ints: comparing numpy scalars with IntEnum members is several times slower
NONE, RESIDENT, SWAPCACHE, SWAPPED, SWAPIN = (int(s) for s in PageState)

GUP_EFAULT = -1          # GUP result when hva is not in an anonymous VMA: the caller (KVM) decides
MMAP_BASE = 0x7F0000000000
PFN_BASE = 0x100000      # first frame of the pool

_FREE = -1               # _frame_page: frame on the free list
_ORPHAN = -2             # _frame_page: page zapped while a GUP reference held the frame
_POPULATE_LOOKAHEAD = 256  # make_pages_present: pages examined past the free room per run


@dataclass
class Vma:
    """One mapping of the VMM process (``vm_area_struct``)."""

    name: str
    start: int            # hva, bytes, page aligned
    npages: int
    kind: str             # "anon" | "pfnmap"
    pgoff: int = 0        # first pfn of a pfnmap region
    writable: bool = True
    index: int = 0        # anon index of its first page

    @property
    def end(self) -> int:
        return self.start + (self.npages << PAGE_SHIFT)

    def contains(self, hva: int) -> bool:
        return self.start <= hva < self.end


class MmuNotifier(Protocol):
    """What KVM implements (``kvm_mmu_notifier_*``).

    Callbacks must not call back into the GUP family: they run in the middle
    of reclaim or zap, as they do in Linux (under locks that forbid it).
    """

    def invalidate_page(self, mm: "HostMemory", hva: int) -> None: ...
    def invalidate_range_start(self, mm: "HostMemory", start: int, end: int) -> None: ...
    def invalidate_range_end(self, mm: "HostMemory", start: int, end: int) -> None: ...


def _check_count(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} is {value!r}; expected an int >= {minimum}")
    return int(value)


class HostMemory:
    """The VMM's mm_struct in a memory cgroup of ``limit_pages`` pages, backed by ``swap``."""

    def __init__(self, env: Environment, *, limit_pages: int, swap: SwapDevice,
                 reclaim: str = "clock", batch: int = 32):
        from asyncpf.host.reclaim import RECLAIM_POLICIES, Reclaimer  # here: reclaim.py imports this module

        _check_count(limit_pages, "limit_pages", 1)
        _check_count(batch, "batch", 1)
        if reclaim not in RECLAIM_POLICIES:
            raise ValueError(f"reclaim policy {reclaim!r}; expected one of {RECLAIM_POLICIES}")
        if not isinstance(swap, SwapDevice):
            raise ValueError(f"swap is {swap!r}; expected a SwapDevice")
        self.env = env
        self.swap = swap
        self.limit_pages = int(limit_pages)
        self.batch = int(batch)            # SWAP_CLUSTER_MAX
        self.reclaim_policy = reclaim
        self.vmas: list[Vma] = []
        self._vma_starts: list[int] = []
        self._next_hva = MMAP_BASE
        self._last_vma: Vma | None = None  # one-entry cache, like mm->mmap_cache
        self._anon_first = np.zeros(0, np.int64)   # anon index of each anon VMA's first page
        self._anon_start = np.zeros(0, np.int64)   # its hva
        # per page (anon index)
        self._state = np.zeros(0, np.int8)
        self._pfn = np.zeros(0, np.int64)
        self._dirty = np.zeros(0, bool)         # differs from its swap copy (or has none)
        self._swap_valid = np.zeros(0, bool)    # a complete, current copy is on the device
        self._wb_seq = np.zeros(0, np.int64)    # id of the latest write-back holding it; 0 = none
        self._referenced = np.zeros(0, bool)    # clock: accessed since the hand passed
        self._last_access = np.zeros(0, np.int64)  # lru: access tick
        # per frame (pfn - PFN_BASE)
        self._frame_page = np.full(self.limit_pages, _FREE, np.int64)
        self._frame_refs = np.zeros(self.limit_pages, np.int32)
        self._free_stack = np.arange(self.limit_pages - 1, -1, -1, dtype=np.int64)  # top = frame 0
        self._nfree = self.limit_pages
        self.nr_charged = 0
        self.total_page_refs = 0
        self._nr_orphans = 0
        self._tick = 1
        self._swapins: dict[int, Event] = {}   # anon index -> read in flight (few at a time)
        self._notifiers: list[MmuNotifier] = []
        self.stats = dict.fromkeys(
            ("minor_faults", "major_faults", "zero_fills", "swapcache_hits", "swapins",
             "evictions", "writeback_pages", "write_ios"), 0)
        self._reclaimer = Reclaimer(self)

    # ------------------------------------------------------------------ VMAs
    def _add_vma(self, name: str, npages: int, kind: str, pgoff: int, index: int) -> Vma:
        vma = Vma(name, self._next_hva, npages, kind, pgoff, True, index)
        self._next_hva = vma.end + PAGE_SIZE  # one guard page: an overrun hits no VMA
        self.vmas.append(vma)
        self._vma_starts.append(vma.start)
        return vma

    @mirrors("mm/mmap.c", "do_mmap_pgoff")
    def mmap_anon(self, npages: int, name: str = "guest-ram") -> Vma:
        """Map ``npages`` of private anonymous memory (guest RAM); nothing is populated.

        Simplification: addresses grow upward from MMAP_BASE with a one-page gap
        between mappings; no merging, no munmap, no THP.
        """
        npages = _check_count(npages, "npages", 1)
        index = len(self._state)
        vma = self._add_vma(name, npages, "anon", 0, index)
        self._anon_first = np.append(self._anon_first, index)
        self._anon_start = np.append(self._anon_start, vma.start)
        grow = {"_state": np.int8, "_pfn": np.int64, "_dirty": bool, "_swap_valid": bool,
                "_wb_seq": np.int64, "_referenced": bool, "_last_access": np.int64}
        for attr, dtype in grow.items():
            fill = -1 if attr == "_pfn" else 0
            old = getattr(self, attr)
            if not len(old) and not fill:  # np.zeros maps lazily: pages never touched cost no memory
                setattr(self, attr, np.zeros(npages, dtype))
            else:
                setattr(self, attr, np.concatenate([old, np.full(npages, fill, dtype)]))
        return vma

    @mirrors("mm/memory.c", "remap_pfn_range")
    def mmap_pfnmap(self, npages: int, pgoff: int, name: str = "mmio") -> Vma:
        """Map ``npages`` of device memory starting at pfn ``pgoff`` (VM_PFNMAP).

        Simplification: no frames or page state; KVM computes the pfn from pgoff
        (hva_to_pfn's VM_PFNMAP branch), GUP returns GUP_EFAULT.
        """
        npages = _check_count(npages, "npages", 1)
        pgoff = _check_count(pgoff, "pgoff", 0)
        return self._add_vma(name, npages, "pfnmap", pgoff, 0)

    @mirrors("mm/mmap.c", "find_vma")
    def find_vma(self, hva: int) -> Vma | None:
        """The VMA containing ``hva``, or None.

        Simplification: Linux returns the first VMA ending above addr and callers
        check ``addr < vm_start``; here that check is folded in.  Lookup is a
        bisect over the (few) VMAs behind a one-entry cache (mm->mmap_cache).
        """
        vma = self._last_vma
        if vma is not None and vma.start <= hva < vma.end:
            return vma
        k = bisect.bisect_right(self._vma_starts, hva) - 1
        if k < 0 or not self.vmas[k].contains(hva):
            return None
        self._last_vma = vma = self.vmas[k]
        return vma

    def _anon_vma(self, hva: int, what: str) -> Vma:
        """The anon VMA holding ``hva``; ValueError (naming ``what``) otherwise."""
        if isinstance(hva, bool) or not isinstance(hva, (int, np.integer)) or hva < 0:
            raise ValueError(f"{what}: hva {hva!r}; expected a non-negative int address")
        vma = self.find_vma(hva)
        if vma is None or vma.kind != "anon":
            where = "no VMA" if vma is None else f"{vma.kind} VMA {vma.name!r}"
            raise ValueError(f"{what}: hva {hva:#x} is in {where}; expected an anonymous VMA")
        return vma

    def _index(self, vma: Vma, hva: int) -> int:
        return vma.index + ((hva - vma.start) >> PAGE_SHIFT)

    def _hvas(self, idx: np.ndarray) -> np.ndarray:
        """hva of each anon index (vectorised over the anon VMAs)."""
        k = np.searchsorted(self._anon_first, idx, side="right") - 1
        return self._anon_start[k] + ((idx - self._anon_first[k]) << PAGE_SHIFT)

    @mirrors("mm/mmu_notifier.c", "mmu_notifier_register")
    def mmu_notifier_register(self, notifier: MmuNotifier) -> None:
        """Subscribe ``notifier`` to invalidations of this mm.

        Simplification: no SRCU, no release/clear_flush_young/change_pte callbacks;
        notifiers are called in registration order.
        """
        for name in ("invalidate_page", "invalidate_range_start", "invalidate_range_end"):
            if not callable(getattr(notifier, name, None)):
                raise ValueError(f"notifier {notifier!r} lacks {name}(); expected an MmuNotifier")
        self._notifiers.append(notifier)

    # ------------------------------------------------------------- queries
    def page_state(self, hva: int) -> PageState:
        """The state of the anon page holding ``hva``."""
        vma = self._anon_vma(hva, "page_state")
        return PageState(int(self._state[self._index(vma, hva)]))

    def is_mapped(self, hva: int) -> bool:
        """True if the page holding ``hva`` is RESIDENT (mapped in the process page table)."""
        return self.page_state(hva) == PageState.RESIDENT

    def _frame(self, pfn: int, what: str) -> int:
        if isinstance(pfn, bool) or not isinstance(pfn, (int, np.integer)) \
                or not PFN_BASE <= pfn < PFN_BASE + self.limit_pages:
            shown = hex(pfn) if isinstance(pfn, (int, np.integer)) else repr(pfn)
            raise ValueError(f"{what}: pfn {shown} is not a frame of this mm; expected "
                             f"{PFN_BASE:#x}..{PFN_BASE + self.limit_pages - 1:#x}")
        return int(pfn) - PFN_BASE

    @mirrors("include/linux/mm.h", "page_count")
    def page_count(self, pfn: int) -> int:
        """Outstanding GUP references on frame ``pfn``.

        Simplification: counts only GUP references (no mapping or LRU references);
        a pfn outside this mm's frame pool (e.g. a VM_PFNMAP pfn) has none: 0.
        """
        if isinstance(pfn, bool) or not isinstance(pfn, (int, np.integer)) or pfn < 0:
            raise ValueError(f"page_count: pfn {pfn!r}; expected a non-negative int")
        if not PFN_BASE <= pfn < PFN_BASE + self.limit_pages:
            return 0
        return int(self._frame_refs[pfn - PFN_BASE])

    # ------------------------------------------------------------ frames
    @mirrors("mm/memcontrol.c", "__mem_cgroup_try_charge")
    def _charge(self) -> int:
        """Charge one page to the cgroup and hand out a frame, reclaiming a batch if at the limit.

        Simplification: reclaim is synchronous and takes no time; when every
        resident page is pinned the charge fails with RuntimeError (Linux would OOM).
        """
        self._make_room()
        self.nr_charged += 1
        self._nfree -= 1
        return int(self._free_stack[self._nfree])

    def _make_room(self) -> None:
        """Before one charge: at the limit, reclaim a batch; OOM (RuntimeError) if none could go."""
        if self.nr_charged >= self.limit_pages and self._reclaimer.reclaim(self.batch) == 0:
            raise RuntimeError(
                f"memory cgroup limit of {self.limit_pages} pages reached and no page can be "
                f"reclaimed ({self.total_page_refs} GUP references pin resident pages): OOM")

    def _release_frames(self, frames: np.ndarray) -> None:
        """Return frames to the pool (LIFO) and uncharge them."""
        n = len(frames)
        self._frame_page[frames] = _FREE
        self._free_stack[self._nfree:self._nfree + n] = frames
        self._nfree += n
        self.nr_charged -= n

    def _install(self, i: int | np.ndarray, frame: int | np.ndarray, state: int) -> None:
        """Map page(s) ``i`` to frame(s) ``frame`` in ``state`` (scalars or matching arrays)."""
        self._pfn[i] = PFN_BASE + frame
        self._frame_page[frame] = i
        self._state[i] = state

    def _get_page(self, i: int, write: bool) -> int:
        """Take a reference on page ``i``'s frame and mark it accessed (FOLL_GET|FOLL_TOUCH)."""
        pfn = int(self._pfn[i])
        self._frame_refs[pfn - PFN_BASE] += 1
        self.total_page_refs += 1
        self._touch(i, write)
        return pfn

    def _touch(self, i: int, write: bool) -> None:
        self._referenced[i] = True
        self._last_access[i] = self._tick
        self._tick += 1
        if write:
            self._dirty[i] = True

    @mirrors("mm/swap.c", "put_page")
    def put_page(self, pfn: int) -> None:
        """Drop one GUP reference on ``pfn``; ValueError if it holds none.

        Simplification: only GUP references are counted; the last put of a frame
        whose page was zapped meanwhile frees and uncharges it.
        """
        frame = self._frame(pfn, "put_page")
        if self._frame_refs[frame] <= 0:
            raise ValueError(f"put_page: pfn {pfn:#x} has no reference to drop")
        self._frame_refs[frame] -= 1
        self.total_page_refs -= 1
        if self._frame_refs[frame] == 0 and self._frame_page[frame] == _ORPHAN:
            self._nr_orphans -= 1
            self._release_frames(np.array([frame], np.int64))

    # ------------------------------------------------------------- GUP
    def _gup_vma(self, hva: int) -> Vma | None:
        vma = self.find_vma(hva)
        return vma if vma is not None and vma.kind == "anon" else None

    @mirrors("arch/x86/mm/gup.c", "__get_user_pages_fast")
    def get_user_pages_fast(self, hva: int, write: bool) -> int | None:
        """pfn (with a reference) if the page is RESIDENT and, for write, writable; never faults.

        Simplification: lockless page-table walk reduced to a state lookup; a
        pte is writable iff its VMA is (no COW, no read-only zero page).
        Returns GUP_EFAULT when hva is not in an anonymous VMA, None on a miss.
        """
        vma = self._gup_vma(hva)
        if vma is None:
            return GUP_EFAULT
        i = self._index(vma, hva)
        if self._state[i] != RESIDENT or (write and not vma.writable):
            return None
        return self._get_page(i, write)

    @mirrors("mm/memory.c", "get_user_pages_noio", generations="seed, legacy")
    def get_user_pages_nowait(self, hva: int, write: bool) -> int | None:
        """pfn (with a reference) after serving minor faults inline; None if IO is needed.

        Simplification: a first touch is zero-filled and a swap-cache page is
        re-mapped inline (each a minor fault, charged, may reclaim); SWAPPED or
        SWAPIN returns None and starts NO IO (the seed's noio semantics; the
        2.6.39 FOLL_NOWAIT path would start readahead).  GUP_EFAULT when hva is
        not in an anonymous VMA or a write hits a read-only one.
        """
        vma = self._gup_vma(hva)
        if vma is None or (write and not vma.writable):
            return GUP_EFAULT
        return self._fault_nowait(self._index(vma, hva), write)

    @mirrors("mm/memory.c", "get_user_pages")
    def get_user_pages(self, hva: int, write: bool) -> Generator[Any, Any, int]:
        """Blocking GUP: ``pfn = yield from mm.get_user_pages(hva, write)``, pfn with a reference.

        Simplification: minor faults are served inline; a SWAPPED page gets a
        charged frame, state SWAPIN and one read IO, and the caller waits on an
        engine Event; a caller finding SWAPIN joins that read.  After the wait
        the fault is retried (as Linux retries after lock_page), so a page
        zapped meanwhile is zero-filled and one evicted meanwhile is read again.
        GUP_EFAULT when hva is not in an anonymous VMA or a write hits a
        read-only one.
        """
        vma = self._gup_vma(hva)
        if vma is None or (write and not vma.writable):
            return GUP_EFAULT
        i = self._index(vma, hva)
        waited = False
        while True:
            pfn = self._fault_nowait(i, write)
            if pfn is not None:
                return pfn
            if not waited:
                self.stats["major_faults"] += 1
                waited = True
            event = self._swapins.get(i)
            if event is None:
                event = self._swap_readpage(i, hva)
            yield event

    @mirrors("mm/memory.c", "handle_mm_fault")
    def _fault_nowait(self, i: int, write: bool) -> int | None:
        """Resolve page ``i`` without IO: hit, zero fill or swap-cache hit; None if IO is needed.

        Simplification: the swap-cache page's frame was released at eviction, so
        a swap-cache hit charges a fresh frame; no page locks.
        """
        state = self._state[i]
        if state == RESIDENT:
            return self._get_page(i, write)
        if state == NONE:
            self._install(i, self._charge(), RESIDENT)
            self.stats["zero_fills"] += 1
        elif state == SWAPCACHE:
            # the write-back in flight still completes and validates the swap copy
            self._install(i, self._charge(), RESIDENT)
            self.stats["swapcache_hits"] += 1
        else:
            return None
        self.stats["minor_faults"] += 1
        return self._get_page(i, write)

    @mirrors("mm/memory.c", "make_pages_present")
    def make_pages_present(self, hva: int, npages: int, write: bool) -> int:
        """Fault in ``npages`` pages from ``hva`` with no IO and no reference kept; returns how many were done.

        Simplification: FOLL_NOWAIT semantics: it stops at the first SWAPPED or
        SWAPIN page (the caller does a blocking get_user_pages for it) where
        Linux would read it in.  The result is exactly get_user_pages_nowait +
        put_page page by page, in order (same frames, access ticks, stats and
        reclaim calls); runs of pages between two charges that hit the limit
        are faulted in with numpy.  The range must lie in one anonymous VMA;
        ``write`` is the caller's (Linux derives it from the VMA's flags).
        """
        vma = self._anon_vma(hva, "make_pages_present")
        npages = _check_count(npages, "npages", 1)
        end = hva + (npages << PAGE_SHIFT)
        if end > vma.end:
            raise ValueError(f"make_pages_present: {npages} pages from {hva:#x} end at {end:#x}, "
                             f"past VMA {vma.name!r} ending at {vma.end:#x}")
        if write and not vma.writable:
            raise ValueError(f"make_pages_present: write to read-only VMA {vma.name!r}")
        lo = self._index(vma, hva)
        i, hi = lo, lo + npages
        while i < hi:
            state = self._state[i]
            if state >= SWAPPED:  # SWAPPED or SWAPIN: needs a read
                break
            if state != RESIDENT:  # page i needs a charge: reclaim now if at the limit, as _charge would
                if self.nr_charged >= self.limit_pages:  # hot path (asyncpf/hotpath.py): many rounds at once
                    j = self._reclaimer.fill_rounds(i, hi, write)
                    if j != i:
                        i = j
                        continue
                self._make_room()
            i = self._fault_run(i, hi, write)
        return i - lo

    def _fault_run(self, i: int, hi: int, write: bool) -> int:
        """Minor-fault pages ``i``.. while charges fit under the limit and no page needs IO; returns the end.

        A page's charge may reclaim, which changes the state of pages ahead, so
        a run ends before the first charge past the free room.
        """
        room = self.limit_pages - self.nr_charged
        state = self._state[i:min(hi, i + room + _POPULATE_LOOKAHEAD)]
        io = np.flatnonzero(state >= SWAPPED)
        if len(io):
            state = state[:io[0]]
        charged = np.flatnonzero(state != RESIDENT)
        if len(charged) > room:
            state, charged = state[:charged[room]], charged[:room]
        n, c = len(state), len(charged)
        if c:
            new = charged + i
            frames = self._free_stack[self._nfree - c:self._nfree][::-1]  # popped top first, as _charge
            hits = int(np.count_nonzero(state[charged] == SWAPCACHE))
            self._nfree -= c
            self.nr_charged += c
            self._install(new, frames, RESIDENT)
            self.stats["zero_fills"] += c - hits
            self.stats["swapcache_hits"] += hits
            self.stats["minor_faults"] += c
        self._referenced[i:i + n] = True
        self._last_access[i:i + n] = np.arange(self._tick, self._tick + n)
        self._tick += n
        if write:
            self._dirty[i:i + n] = True
        return i + n

    @mirrors("mm/page_io.c", "swap_readpage")
    def _swap_readpage(self, i: int, hva: int) -> Event:
        """Charge a frame for page ``i`` (at ``hva``), mark it SWAPIN and submit its read; the Event fires at completion.

        The Event is named "swapin <page hva>" so that a checker can tell which page a sleeping thread waits for.
        Simplification: no readahead (swapin_readahead reads one page here).
        """
        self._install(i, self._charge(), SWAPIN)
        event = self.env.event(f"swapin {hva >> PAGE_SHIFT << PAGE_SHIFT:#x}")
        self._swapins[i] = event
        self.swap.submit("read", 1, partial(self._end_swap_bio_read, i, event))
        return event

    @mirrors("mm/page_io.c", "end_swap_bio_read")
    def _end_swap_bio_read(self, i: int, event: Event) -> None:
        """A swap-in read completed: the page becomes RESIDENT, clean, with a valid swap copy.

        Simplification: if the page was zapped while the read was in flight the
        data is dropped; waiters wake either way and retry their fault.
        """
        if self._swapins.get(i) is event:
            del self._swapins[i]
            self._state[i] = RESIDENT
            self._swap_valid[i] = True
            self._dirty[i] = False
            self._touch(i, False)  # just faulted: do not make it the next victim
            self.stats["swapins"] += 1
        event.succeed()

    @mirrors("mm/swap.c", "mark_page_accessed")
    def mark_accessed(self, hva: int, write: bool) -> None:
        """Record a guest access through an existing KVM mapping (EPT accessed/dirty bits).

        Simplification: the A/D bits are harvested at once instead of by
        page_referenced / kvm_age_hva.  ValueError if the page is not RESIDENT
        (a KVM mapping of it should have been invalidated) or a write hits a
        read-only VMA.
        """
        vma = self._anon_vma(hva, "mark_accessed")
        i = self._index(vma, hva)
        if self._state[i] != RESIDENT:
            raise ValueError(f"mark_accessed: hva {hva:#x} is {PageState(int(self._state[i])).name}; "
                             "expected RESIDENT (a KVM mapping of it should have been invalidated)")
        if write and not vma.writable:
            raise ValueError(f"mark_accessed: write to hva {hva:#x} in read-only VMA {vma.name!r}")
        self._touch(i, write)

    # ------------------------------------------------------------- zap
    @mirrors("mm/madvise.c", "madvise_dontneed")
    def zap_range(self, hva: int, npages: int) -> None:
        """MADV_DONTNEED: drop ``npages`` pages from ``hva`` (frames and swap copies); they read back as zero.

        Simplification: the range must lie in one anonymous VMA; a frame still
        referenced by GUP stays charged until its last put_page; a swap-in in
        flight is abandoned (its waiters retry and zero-fill).
        """
        vma = self._anon_vma(hva, "zap_range")
        if hva % PAGE_SIZE:
            raise ValueError(f"zap_range: hva {hva:#x} is not page aligned")
        npages = _check_count(npages, "npages", 1)
        end = hva + (npages << PAGE_SHIFT)
        if end > vma.end:
            raise ValueError(f"zap_range: {npages} pages from {hva:#x} end at {end:#x}, "
                             f"past VMA {vma.name!r} ending at {vma.end:#x}")
        for notifier in self._notifiers:
            notifier.invalidate_range_start(self, hva, end)
        lo = self._index(vma, hva)
        self._zap(lo, lo + npages)
        for notifier in self._notifiers:
            notifier.invalidate_range_end(self, hva, end)

    def _zap(self, lo: int, hi: int) -> None:
        state = self._state[lo:hi]
        held = np.flatnonzero((state == RESIDENT) | (state == SWAPIN)) + lo
        for i in (np.flatnonzero(state == SWAPIN) + lo).tolist():
            del self._swapins[i]
        frames = self._pfn[held] - PFN_BASE
        pinned = self._frame_refs[frames] > 0
        self._frame_page[frames[pinned]] = _ORPHAN
        self._nr_orphans += int(pinned.sum())
        self._release_frames(frames[~pinned])
        self._state[lo:hi] = NONE
        self._pfn[lo:hi] = -1
        for arr in (self._dirty, self._swap_valid, self._referenced):
            arr[lo:hi] = False
        self._wb_seq[lo:hi] = 0
        self._last_access[lo:hi] = 0

    # ------------------------------------------------------------- reclaim
    def reclaim(self, nr: int) -> int:
        """Evict up to ``nr`` unpinned RESIDENT pages now; returns how many were evicted (see reclaim.py)."""
        return self._reclaimer.reclaim(nr)

    # ------------------------------------------------------------- checks
    def check(self) -> list[str]:
        """Consistency problems as strings; [] when the state is sound."""
        problems: list[str] = []

        def need(ok: Any, text: str) -> None:
            if not ok:
                problems.append(text)

        st = self._state
        need(((st >= NONE) & (st <= SWAPIN)).all(), "page state outside PageState")
        held = (st == RESIDENT) | (st == SWAPIN)
        idx = np.flatnonzero(held)
        need(self.nr_charged == len(idx) + self._nr_orphans,
             f"nr_charged {self.nr_charged} != RESIDENT+SWAPIN {len(idx)} + orphans {self._nr_orphans}")
        need(self.nr_charged <= self.limit_pages, f"nr_charged {self.nr_charged} > limit {self.limit_pages}")
        need(((self._pfn == -1) | held).all(), "a page without a frame has a pfn")
        frames = self._pfn[idx] - PFN_BASE
        need(((frames >= 0) & (frames < self.limit_pages)).all(), "a charged page has no valid pfn")
        if problems:
            return problems
        need((self._frame_page[frames] == idx).all(), "pfn -> page reverse map disagrees")
        used = self._frame_page != _FREE
        need(int(used.sum()) == self.nr_charged, "frames in use != nr_charged")
        need(int((self._frame_page == _ORPHAN).sum()) == self._nr_orphans, "orphan count is off")
        need(np.array_equal(np.sort(self._free_stack[:self._nfree]), np.flatnonzero(~used)),
             "free list != frames not in use")
        refs = self._frame_refs
        need((refs >= 0).all(), "negative page reference count")
        need((refs[~used] == 0).all(), "a free frame holds references")
        need((refs[self._frame_page == _ORPHAN] > 0).all(), "an orphan frame holds no reference")
        need(int(refs.sum()) == self.total_page_refs,
             f"total_page_refs {self.total_page_refs} != sum of frame references {int(refs.sum())}")
        need(self._swap_valid[st == SWAPPED].all(), "a SWAPPED page has no valid swap copy")
        need((self._wb_seq[st == SWAPCACHE] > 0).all(), "a SWAPCACHE page has no write-back in flight")
        writing = self._wb_seq > 0
        need(((st[writing] == RESIDENT) | (st[writing] == SWAPCACHE)).all(),
             "a page in write-back is neither RESIDENT nor SWAPCACHE")
        need(not (self._swap_valid & writing).any(), "a page in write-back already has a valid copy")
        need(not (self._swap_valid | self._dirty)[st == NONE].any(), "an untouched page has data")
        need(sorted(self._swapins) == np.flatnonzero(st == SWAPIN).tolist(),
             "reads in flight != SWAPIN pages")
        return problems

    def __repr__(self) -> str:
        return (f"<HostMemory {len(self._state)} anon pages, {self.nr_charged}/{self.limit_pages} "
                f"charged, {self.reclaim_policy}, swap={self.swap.name}>")
