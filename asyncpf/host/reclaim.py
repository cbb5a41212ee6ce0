"""Page reclaim for the VMM's memory cgroup: victim selection, eviction, swap write-back.

``HostMemory`` owns the per-page and per-frame numpy arrays; a ``Reclaimer``
works on them when the cgroup is at its limit (or on request): it chooses
victims by CLOCK or LRU, unmaps and frees them with MMU notifier calls, and
writes the dirty ones to swap in one batched IO whose completion makes them
SWAPPED.  Its own state is the clock hand, the cached LRU window and the next
write-back id.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Iterator

import numpy as np

from asyncpf.host.mm import NONE, PFN_BASE, RESIDENT, SWAPCACHE, SWAPPED, _check_count
from asyncpf.mirrors import mirrors

if TYPE_CHECKING:
    from asyncpf.host.mm import HostMemory

RECLAIM_POLICIES = ("clock", "lru")
CLOCK_WINDOW = 4096      # pages the clock hand examines per numpy step
FILL_ROUNDS = 4096       # fill_rounds: at most this many rounds per call (keeps its arrays ~1 MB)
LRU_WINDOW = 4096        # oldest pages cached per LRU scan (the "inactive list")


class Reclaimer:
    """Reclaim for one ``HostMemory``, by its ``reclaim_policy``, over its arrays."""

    fast_fill = True   # hot path (asyncpf/hotpath.py): fill_rounds may take many rounds of a fill at once

    def __init__(self, mm: HostMemory):
        self.mm = mm
        self._wb_next = 1
        self._hand = 0
        self._lru_queue = np.zeros(0, np.int64)
        self._lru_ticks = np.zeros(0, np.int64)

    @mirrors("mm/vmscan.c", "try_to_free_mem_cgroup_pages")
    def reclaim(self, nr: int) -> int:
        """Evict up to ``nr`` unpinned RESIDENT pages now; returns how many were evicted.

        Simplification: victims are chosen by the clock or LRU policy over the
        whole cgroup (no active/inactive lists, no anon/file balance); see _shrink.
        """
        return self._shrink(_check_count(nr, "nr", 0))

    @mirrors("mm/vmscan.c", "shrink_page_list")
    def _shrink(self, nr: int) -> int:
        """Evict up to ``nr`` victims; dirty ones go to swap in ONE write IO.

        Simplification: pages holding GUP references are skipped (Linux would
        unmap them and free them later); frames are released at once, so the
        write's cost shows up as device occupancy ahead of later reads, not as
        a frame held until the write ends.
        """
        mm = self.mm
        wb = self._wb_next
        evicted, written = 0, []
        victims = self._clock_victims(nr) if mm.reclaim_policy == "clock" else self._lru_victims(nr)
        for chunk in victims:  # each chunk is evicted before the next is chosen
            written.append(self._evict(chunk, wb))
            evicted += len(chunk)
        pages = np.concatenate(written) if written else np.zeros(0, np.int64)
        if len(pages):
            self._wb_next += 1
            mm.stats["write_ios"] += 1
            mm.stats["writeback_pages"] += len(pages)
            mm.swap.submit("write", len(pages), partial(self._end_swap_bio_write, wb, pages))
        return evicted

    @mirrors("mm/rmap.c", "try_to_unmap_one")
    def _evict(self, victims: np.ndarray, wb: int) -> np.ndarray:
        """Unmap and free ``victims``, notify KVM; returns those that need writing.

        Simplification: the notifiers are called after the whole chunk's state
        changed (pte gone, frame released); a clean page with a valid swap copy
        becomes SWAPPED at once, the others SWAPCACHE until write-back ``wb`` ends.
        """
        mm = self.mm
        mm._release_frames(mm._pfn[victims] - PFN_BASE)
        mm._pfn[victims] = -1
        mm._referenced[victims] = False
        clean = mm._swap_valid[victims] & ~mm._dirty[victims]
        mm._state[victims[clean]] = SWAPPED
        write = victims[~clean]
        mm._state[write] = SWAPCACHE
        mm._dirty[write] = False       # the content goes out with this write
        mm._swap_valid[write] = False  # any older copy is stale until it lands
        mm._wb_seq[write] = wb         # an older write-back still in flight no longer counts
        mm.stats["evictions"] += len(victims)
        notifiers = mm._notifiers
        batch = getattr(notifiers[0], "invalidate_pages", None) if len(notifiers) == 1 else None
        if batch is not None:  # hot path (asyncpf/hotpath.py): the same calls, made as one over the chunk
            batch(mm, mm._hvas(victims))
            return write
        for hva in mm._hvas(victims).tolist():
            for notifier in notifiers:
                notifier.invalidate_page(mm, hva)
        return write

    @mirrors("mm/page_io.c", "end_swap_bio_write")
    def _end_swap_bio_write(self, wb: int, pages: np.ndarray) -> None:
        """Write-back ``wb`` landed: its pages get a valid swap copy; those still SWAPCACHE become SWAPPED.

        Simplification: pages zapped or evicted again (a newer write-back) since
        are left alone, which the per-page write-back id tells.
        """
        mm = self.mm
        mine = pages[mm._wb_seq[pages] == wb]
        mm._swap_valid[mine] = True
        mm._wb_seq[mine] = 0
        mm._state[mine[mm._state[mine] == SWAPCACHE]] = SWAPPED

    def fill_rounds(self, i: int, hi: int, write: bool) -> int:
        """Many rounds of ``make_pages_present`` at the cgroup limit at once; returns where the fill got to.

        Hot path (asyncpf/hotpath.py), not a kernel function.  Filling fresh
        memory at the limit repeats one round: reclaim a batch (the clock
        takes the next ``batch`` unreferenced pages past the hand, frees their
        frames, tells KVM, writes the dirty ones in one IO), then zero-fill
        ``batch`` new pages in the frames just freed (popped last first).
        Where the next K rounds cannot meet -- the hand's victims all lie
        below ``i``, pages ``i..`` are untouched, nothing is pinned or orphaned
        and KVM is the only notifier -- this does K rounds with numpy: the
        same victims, frames, access ticks, write IOs in the same order (one
        ``swap.submit`` per round), notifier sequence and statistics as K
        turns of the plain loop (``tests/test_mm.py::test_fill_rounds_*``
        compares every array).  Returns ``i`` unchanged when it does not apply.
        """
        mm = self.mm
        b = mm.batch
        notifiers = mm._notifiers
        if (not self.fast_fill or mm.reclaim_policy != "clock" or mm._nfree or mm._nr_orphans
                or mm.nr_charged != mm.limit_pages or len(notifiers) != 1
                or not hasattr(notifiers[0], "invalidate_pages") or self._hand >= i):
            return i
        hand = self._hand
        hi = min(hi, i + FILL_ROUNDS * b + 1)
        untouched = np.flatnonzero(mm._state[i:hi] != NONE)
        k = (int(untouched[0]) if len(untouched) else hi - i) // b
        # the first victims past the hand are the first unreferenced unpinned pages of any window from it
        cand = np.flatnonzero(mm._state[hand:min(i, hand + 4 * FILL_ROUNDS * b)] == RESIDENT) + hand
        cand = cand[self._unpinned(cand)]
        ref = mm._referenced[cand]
        free = cand[~ref]
        k = min(k, len(free) // b)
        if k and i + k * b < hi and mm._state[i + k * b] == RESIDENT:
            k -= 1  # the plain loop's last run would go on over that resident page
        if k < 2:
            return i
        n = k * b
        victims = free[:n]
        stop = int(victims[-1]) + 1
        mm._referenced[cand[ref & (cand < stop)]] = False   # the hand passed them: second chance used
        self._hand = stop % len(mm._state)
        # reclaim's half of every round (_evict, then one write IO per round that has dirty pages)
        frames = mm._pfn[victims] - PFN_BASE
        clean = mm._swap_valid[victims] & ~mm._dirty[victims]
        mm._pfn[victims] = -1
        mm._referenced[victims] = False
        mm._state[victims[clean]] = SWAPPED
        dirty = ~clean
        out = victims[dirty]
        mm._state[out] = SWAPCACHE
        mm._dirty[out] = False
        mm._swap_valid[out] = False
        writes = dirty.reshape(k, b).sum(axis=1)
        wbs = self._wb_next + np.cumsum(writes > 0) - (writes > 0)  # a round without writes takes no id
        mm._wb_seq[out] = np.repeat(wbs, writes)
        mm.stats["evictions"] += n
        notifiers[0].invalidate_pages(mm, mm._hvas(victims))
        rounds = np.flatnonzero(writes)
        ends = np.cumsum(writes)
        for r in rounds.tolist():
            pages = out[ends[r] - writes[r]:ends[r]]
            wb = int(wbs[r])
            self._wb_next = wb + 1
            mm.stats["write_ios"] += 1
            mm.stats["writeback_pages"] += len(pages)
            mm.swap.submit("write", len(pages), partial(self._end_swap_bio_write, wb, pages))
        # the fill's half: page i + r*b + j gets the frame of victim r*b + (b-1-j)
        new = np.arange(i, i + n)
        mm._install(new, frames.reshape(k, b)[:, ::-1].ravel(), RESIDENT)
        mm._free_stack[:b] = frames[n - b:]  # what the last round left above the empty stack
        mm.stats["zero_fills"] += n
        mm.stats["minor_faults"] += n
        mm._referenced[i:i + n] = True
        mm._last_access[i:i + n] = np.arange(mm._tick, mm._tick + n)
        mm._tick += n
        if write:
            mm._dirty[i:i + n] = True
        return i + n

    def _unpinned(self, idx: np.ndarray) -> np.ndarray:
        mm = self.mm
        return mm._frame_refs[mm._pfn[idx] - PFN_BASE] == 0

    @mirrors("mm/vmscan.c", "page_referenced")
    def _clock_victims(self, nr: int) -> Iterator[np.ndarray]:
        """Yield chunks of victims in clock order: second chance for referenced pages.

        Simplification: one hand sweeps the anon index space in numpy windows;
        a referenced unpinned page passed by the hand loses its bit, the first
        unreferenced unpinned ones are taken; at most two full sweeps.
        """
        mm = self.mm
        n = len(mm._state)
        need, scanned = nr, 0
        while need and n and scanned < 2 * n:
            lo = self._hand
            hi = min(lo + CLOCK_WINDOW, n)
            cand = np.flatnonzero(mm._state[lo:hi] == RESIDENT) + lo
            cand = cand[self._unpinned(cand)]
            ref = mm._referenced[cand]
            free = cand[~ref]
            if len(free) >= need:
                take, stop = free[:need], int(free[need - 1]) + 1
            else:
                take, stop = free, hi
            mm._referenced[cand[ref & (cand < stop)]] = False
            scanned += stop - lo
            self._hand = stop % n
            if len(take):
                need -= len(take)
                yield take

    @mirrors("mm/vmscan.c", "isolate_lru_pages")
    def _lru_victims(self, nr: int) -> Iterator[np.ndarray]:
        """Yield chunks of victims, least recently accessed unpinned page first.

        Simplification: exact LRU by access tick; the oldest LRU_WINDOW pages
        (plus the pinned ones) are cached like an inactive list and rescanned
        only when exhausted; a cached entry whose page was accessed, evicted or
        zapped since (its tick changed) is dropped.
        """
        mm = self.mm
        need = nr
        for attempt in range(2):
            queue, ticks = self._lru_queue, self._lru_ticks
            live = (mm._state[queue] == RESIDENT) & (mm._last_access[queue] == ticks)
            queue, ticks = queue[live], ticks[live]
            pos = np.flatnonzero(self._unpinned(queue))[:need]
            keep = np.ones(len(queue), bool)
            keep[pos] = False
            self._lru_queue, self._lru_ticks = queue[keep], ticks[keep]
            if len(pos):
                need -= len(pos)
                yield queue[pos]
            if not need or attempt:
                return
            self._refill_lru(need)

    def _refill_lru(self, need: int) -> None:
        """Cache the oldest resident pages: enough to hold ``need`` unpinned ones past any pinned."""
        mm = self.mm
        resident = np.flatnonzero(mm._state == RESIDENT)
        k = min(len(resident), max(LRU_WINDOW, need) + int((~self._unpinned(resident)).sum()))
        if k == 0:
            self._lru_queue = self._lru_ticks = np.zeros(0, np.int64)
            return
        ticks = mm._last_access[resident]
        oldest = np.argpartition(ticks, k - 1)[:k]
        oldest = oldest[np.argsort(ticks[oldest], kind="stable")]
        self._lru_queue, self._lru_ticks = resident[oldest], ticks[oldest]
