"""The host mm: GUP family, cgroup charging, reclaim, write-back, notifiers, zap."""

import random

import numpy as np
import pytest
from conftest import mm_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpf.host.mm import GUP_EFAULT, MMAP_BASE, PFN_BASE, HostMemory, PageState
from asyncpf.host.swap import SwapDevice
from asyncpf.sim import Environment

PAGE = 4096
READ_NS = 1000   # fixed-time device: 1000 ns positioning + 10 ns per page
S = PageState


def fixed_device(qd=1):
    part = {"positioning_ns": [{"uniform_ns": [READ_NS, READ_NS]}], "transfer_ns_per_page": 10}
    return {"name": "fixed", "queue_depth": qd, "read": part, "write": part}


class Recorder:
    def __init__(self):
        self.calls = []

    def invalidate_page(self, mm, hva):
        self.calls.append(("page", hva, mm.page_state(hva)))

    def invalidate_range_start(self, mm, start, end):
        self.calls.append(("start", start, end))

    def invalidate_range_end(self, mm, start, end):
        self.calls.append(("end", start, end))


def make(limit=8, npages=32, reclaim="clock", batch=4, device=None, seed=0):
    env = Environment(seed)
    swap = SwapDevice(env, device or fixed_device())
    mm = HostMemory(env, limit_pages=limit, swap=swap, reclaim=reclaim, batch=batch)
    vma = mm.mmap_anon(npages)
    rec = Recorder()
    mm.mmu_notifier_register(rec)
    return env, mm, vma, rec


def at(vma, k):
    return vma.start + k * PAGE


def touch(mm, hva, write=False):
    pfn = mm.get_user_pages_nowait(hva, write)
    assert pfn is not None and pfn != GUP_EFAULT
    mm.put_page(pfn)
    return pfn


def blocking(env, mm, hva, write=False, hold=0):
    """Start a blocking GUP in a process; its result (pfn) lands in the returned list."""
    out = []

    def proc():
        pfn = yield from mm.get_user_pages(hva, write)
        out.append(pfn)
        yield hold
        mm.put_page(pfn)

    env.process(proc())
    return out


def evict_to_swapped(env, mm, vma, k, write=True):
    """Make page k SWAPPED: touch it, evict everything, let the write-back finish."""
    touch(mm, at(vma, k), write)
    mm.reclaim(mm.limit_pages)
    env.run()
    assert mm.page_state(at(vma, k)) == S.SWAPPED


def test_mmap_layout_and_find_vma():
    env, mm, vma, _ = make()
    io = mm.mmap_pfnmap(4, pgoff=0xFEE00)
    ram2 = mm.mmap_anon(3, "ram2")
    assert vma.start == MMAP_BASE and vma.start % PAGE == 0
    assert vma.end < io.start < io.end < ram2.start and ram2.index == vma.npages
    assert mm.find_vma(io.start + 5) is io and mm.find_vma(vma.end) is None
    assert mm.find_vma(at(vma, 31)) is vma and mm.find_vma(ram2.start) is ram2
    for hva in (io.start, vma.end, 0):
        assert mm.get_user_pages_fast(hva, False) == GUP_EFAULT
        assert mm.get_user_pages_nowait(hva, True) == GUP_EFAULT
        gen = mm.get_user_pages(hva, False)
        with pytest.raises(StopIteration) as stop:
            next(gen)
        assert stop.value.value == GUP_EFAULT
    assert touch(mm, ram2.start) >= PFN_BASE and mm.page_state(ram2.start) == S.RESIDENT


def test_fast_path_miss_then_zero_fill_then_hit():
    env, mm, vma, _ = make()
    h = at(vma, 3) + 123  # any byte of the page
    assert mm.get_user_pages_fast(h, False) is None
    assert mm.page_state(h) == S.NONE and mm.nr_charged == 0
    pfn = mm.get_user_pages_nowait(h, False)
    assert pfn == PFN_BASE and mm.is_mapped(h) and mm.nr_charged == 1
    assert mm.stats["zero_fills"] == mm.stats["minor_faults"] == 1
    assert mm.get_user_pages_fast(h, True) == pfn
    assert mm.page_count(pfn) == 2 and mm.total_page_refs == 2
    assert mm.page_count(0xFEE00) == mm.page_count(PFN_BASE + 5) == 0  # not a frame of this mm
    mm.put_page(pfn)
    mm.put_page(pfn)
    assert mm.total_page_refs == 0 and mm.check() == []
    with pytest.raises(ValueError, match=hex(pfn)):
        mm.put_page(pfn)


def test_eviction_of_unwritten_page_goes_through_swapcache():
    env, mm, vma, rec = make(limit=2, batch=1)
    touch(mm, at(vma, 0))
    touch(mm, at(vma, 1))
    touch(mm, at(vma, 2))  # over the limit: the clock takes page 0 after one full sweep
    assert mm.page_state(at(vma, 0)) == S.SWAPCACHE
    assert rec.calls == [("page", at(vma, 0), S.SWAPCACHE)]
    assert mm.swap.stats["writes"] == 1 and mm.stats["write_ios"] == 1
    env.run()
    assert mm.page_state(at(vma, 0)) == S.SWAPPED
    # a major fault: nowait refuses and starts no IO
    assert mm.get_user_pages_nowait(at(vma, 0), False) is None
    assert mm.swap.stats["reads"] == 0 and env.peek() is None and mm.check() == []


def test_refault_during_writeback_is_minor_and_copy_becomes_valid():
    env, mm, vma, _ = make(limit=1, batch=1)
    touch(mm, at(vma, 0), write=True)
    touch(mm, at(vma, 1))  # evicts page 0 (dirty): write-back in flight
    assert mm.page_state(at(vma, 0)) == S.SWAPCACHE
    touch(mm, at(vma, 0))  # swap-cache hit: evicts page 1 in turn
    assert mm.stats["swapcache_hits"] == 1 and mm.stats["minor_faults"] == 3
    assert mm.swap.stats["reads"] == 0
    env.run()  # page 0's write lands while it is resident: its copy is now valid
    assert mm.page_state(at(vma, 0)) == S.RESIDENT
    writes = mm.swap.stats["writes"]
    mm.reclaim(1)  # clean with a valid copy: SWAPPED at once, no write
    assert mm.page_state(at(vma, 0)) == S.SWAPPED and mm.swap.stats["writes"] == writes
    assert mm.check() == []


def test_page_evicted_twice_waits_for_the_newer_write():
    env, mm, vma, _ = make(limit=1, batch=1)
    touch(mm, at(vma, 0), write=True)
    mm.reclaim(1)       # write #1 (1010 ns)
    touch(mm, at(vma, 0))
    mm.reclaim(1)       # write #2 queued behind it (done at 2020 ns)
    env.run(until=1500)
    assert mm.page_state(at(vma, 0)) == S.SWAPCACHE  # write #1 no longer counts
    assert mm.check() == []
    env.run()
    assert mm.page_state(at(vma, 0)) == S.SWAPPED and mm.check() == []


def test_blocking_gup_reads_and_leaves_a_clean_page():
    env, mm, vma, _ = make(limit=4)
    h = at(vma, 5)
    evict_to_swapped(env, mm, vma, 5)
    start = env.now
    got = blocking(env, mm, h)
    env.run(until=start)
    assert mm.page_state(h) == S.SWAPIN and mm.nr_charged == 1
    env.run()
    assert got and env.now == start + READ_NS + 10
    assert mm.stats["major_faults"] == mm.stats["swapins"] == mm.swap.stats["reads"] == 1
    assert mm.page_state(h) == S.RESIDENT and mm.total_page_refs == 0
    writes = mm.swap.stats["writes"]
    mm.reclaim(4)
    assert mm.page_state(h) == S.SWAPPED and mm.swap.stats["writes"] == writes  # clean: no write


def test_blocking_gup_write_marks_dirty():
    env, mm, vma, _ = make(limit=4)
    h = at(vma, 5)
    evict_to_swapped(env, mm, vma, 5)
    blocking(env, mm, h, write=True)
    env.run()
    mm.reclaim(4)
    assert mm.page_state(h) == S.SWAPCACHE  # dirty: written again


def test_second_blocking_gup_joins_the_read_in_flight():
    env, mm, vma, _ = make(limit=4)
    h = at(vma, 2)
    evict_to_swapped(env, mm, vma, 2)
    a = blocking(env, mm, h, hold=50)
    b = blocking(env, mm, h, hold=50)
    env.run(until=env.now + READ_NS + 20)
    assert a == b and len(a) == 1 and mm.page_count(a[0]) == 2
    env.run()
    assert mm.swap.stats["reads"] == 1 and mm.stats["major_faults"] == 2
    assert mm.total_page_refs == 0 and mm.check() == []


@pytest.mark.parametrize("policy, victim", [("clock", 0), ("lru", 1)])
def test_reclaim_policies(policy, victim):
    env, mm, vma, _ = make(limit=4, reclaim=policy)
    for k in range(4):
        touch(mm, at(vma, k))
    mm.mark_accessed(at(vma, 0), write=False)
    # lru: page 1 is now the oldest; clock: every page is referenced, so the
    # hand clears all bits and takes page 0 on its second pass
    assert mm.reclaim(1) == 1
    assert [mm.page_state(at(vma, k)) for k in range(4)].count(S.RESIDENT) == 3
    assert mm.page_state(at(vma, victim)) == S.SWAPCACHE


def test_clock_gives_a_second_chance():
    env, mm, vma, _ = make(limit=4)
    for k in range(4):
        touch(mm, at(vma, k))
    mm.reclaim(1)                      # page 0, hand now at page 1, all bits clear
    mm.mark_accessed(at(vma, 1), False)
    mm.reclaim(1)
    assert mm.page_state(at(vma, 1)) == S.RESIDENT
    assert mm.page_state(at(vma, 2)) == S.SWAPCACHE


@pytest.mark.parametrize("policy", ["clock", "lru"])
def test_limit_reclaims_one_batch_in_one_write(policy):
    env, mm, vma, rec = make(limit=8, batch=4, reclaim=policy)
    for k in range(9):
        touch(mm, at(vma, k), write=True)
    assert mm.nr_charged == 5 and mm.stats["evictions"] == 4
    assert mm.stats["write_ios"] == mm.swap.stats["writes"] == 1
    assert mm.swap.stats["pages_written"] == mm.stats["writeback_pages"] == 4
    assert [c[0] for c in rec.calls] == ["page"] * 4
    assert all(state == S.SWAPCACHE for _, _, state in rec.calls)  # pte gone before the notifier
    env.run()
    assert all(mm.page_state(hva) == S.SWAPPED for _, hva, _ in rec.calls)
    assert mm.check() == []


@pytest.mark.parametrize("policy", ["clock", "lru"])
def test_pinned_pages_are_not_reclaimed(policy):
    env, mm, vma, _ = make(limit=4, reclaim=policy)
    pins = [mm.get_user_pages_nowait(at(vma, k), True) for k in range(2)]
    touch(mm, at(vma, 2))
    assert mm.reclaim(4) == 1
    assert mm.is_mapped(at(vma, 0)) and mm.is_mapped(at(vma, 1))
    touch(mm, at(vma, 2))
    touch(mm, at(vma, 3))
    touch(mm, at(vma, 4))  # at the limit: page 2 or 3 goes, never 0 or 1
    assert mm.is_mapped(at(vma, 0)) and mm.is_mapped(at(vma, 1)) and mm.is_mapped(at(vma, 4))
    pins += [mm.get_user_pages_nowait(at(vma, k), True) for k in (4, 5)]
    assert mm.nr_charged == 4 and mm.total_page_refs == 4
    with pytest.raises(RuntimeError, match="OOM"):
        mm.get_user_pages_nowait(at(vma, 6), False)
    assert mm.page_state(at(vma, 6)) == S.NONE and mm.check() == []
    for pfn in pins:
        mm.put_page(pfn)
    assert mm.total_page_refs == 0


def test_zap_range_notifies_around_and_frees():
    env, mm, vma, rec = make(limit=4, batch=1)
    for k in range(5):
        touch(mm, at(vma, k), write=True)  # page 0 evicted to SWAPCACHE
    pinned = mm.get_user_pages_nowait(at(vma, 2), False)
    rec.calls.clear()
    mm.zap_range(at(vma, 0), 3)
    assert rec.calls == [("start", at(vma, 0), at(vma, 3)), ("end", at(vma, 0), at(vma, 3))]
    assert [mm.page_state(at(vma, k)) for k in range(4)] == [S.NONE] * 3 + [S.RESIDENT]
    assert mm.nr_charged == 3  # pages 3, 4 and the zapped-but-pinned frame of page 2
    assert mm.check() == []
    mm.put_page(pinned)
    assert mm.nr_charged == 2 and mm.page_count(pinned) == 0 and mm.check() == []
    env.run()  # page 0's write-back lands after the zap: the page stays NONE
    assert mm.page_state(at(vma, 0)) == S.NONE
    touch(mm, at(vma, 0))
    assert mm.stats["zero_fills"] == 6 and mm.check() == []


def test_zap_during_swapin_makes_the_waiter_zero_fill():
    env, mm, vma, _ = make(limit=4)
    h = at(vma, 1)
    evict_to_swapped(env, mm, vma, 1)
    got = blocking(env, mm, h)
    env.run(until=env.now)
    mm.zap_range(h, 1)
    env.run()
    assert got and mm.stats["swapins"] == 0 and mm.stats["zero_fills"] == 2
    assert mm.page_state(h) == S.RESIDENT and mm.total_page_refs == 0 and mm.check() == []


def test_stale_read_after_zap_does_not_complete_a_newer_swapin():
    slow_read = {"positioning_ns": [{"uniform_ns": [5000, 5000]}], "transfer_ns_per_page": 10}
    env, mm, vma, _ = make(limit=4, device={**fixed_device(qd=2), "read": slow_read})
    h = at(vma, 1)
    evict_to_swapped(env, mm, vma, 1)
    t0 = env.now
    first = blocking(env, mm, h)
    env.run(until=t0)
    mm.zap_range(h, 1)          # read #1 still in flight
    touch(mm, h, write=True)
    mm.reclaim(4)               # fast write lands at t0+1010: SWAPPED again
    env.run(until=t0 + 2000)
    second = blocking(env, mm, h)  # read #2, done at t0+7010
    env.run(until=t0 + 6000)    # read #1 completed meanwhile: it must not count
    assert mm.page_state(h) == S.SWAPIN and first == second == []
    env.run()
    assert first == second and mm.swap.stats["reads"] == 2 and mm.stats["swapins"] == 1
    assert mm.check() == [] and mm.total_page_refs == 0

def trace_run(seed):
    env, mm, vma, _ = make(limit=64, npages=256, device="hdd_7200_2010", seed=seed)
    times = []
    submit = mm.swap.submit
    mm.swap.submit = lambda op, n, on_done: submit(op, n, lambda: (times.append(env.now), on_done()))
    rng = env.rng("workload")

    def worker():
        for _ in range(400):
            hva = at(vma, rng.randrange(256))
            pfn = mm.get_user_pages_nowait(hva, rng.random() < 0.5)
            if pfn is None:
                pfn = yield from mm.get_user_pages(hva, False)
            mm.put_page(pfn)
            yield 1000

    env.process(worker())
    env.run()
    assert mm.check() == [] and mm.total_page_refs == 0
    return times


def test_determinism():
    a = trace_run(1)
    assert len(a) > 50 and a == trace_run(1)
    assert a != trace_run(2)


def test_bad_inputs_raise_and_change_nothing():
    env, mm, vma, _ = make(limit=4)
    touch(mm, at(vma, 0))
    io = mm.mmap_pfnmap(2, 0x1000)

    def snapshot():
        return (mm.nr_charged, dict(mm.stats), len(mm.vmas), mm.total_page_refs,
                [mm.page_state(at(vma, k)) for k in range(vma.npages)], env.peek())

    before = snapshot()
    cases = [
        (lambda: mm.mmap_anon(-1), "-1"),
        (lambda: mm.mmap_pfnmap(1, -4), "-4"),
        (lambda: mm.page_state(vma.end), hex(vma.end)),
        (lambda: mm.page_state(io.start), "pfnmap"),
        (lambda: mm.page_state(-8), "-8"),
        (lambda: mm.zap_range(at(vma, 0) + 1, 1), "aligned"),
        (lambda: mm.zap_range(at(vma, 30), 3), "past VMA"),
        (lambda: mm.zap_range(at(vma, 0), 0), "npages"),
        (lambda: mm.zap_range(io.start, 1), "pfnmap"),
        (lambda: mm.reclaim(-1), "-1"),
        (lambda: mm.put_page(0x42), "0x42"),
        (lambda: mm.page_count(-3), "-3"),
        (lambda: mm.mark_accessed(at(vma, 1), True), "NONE"),
        (lambda: mm.mmu_notifier_register(object()), "invalidate_page"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    assert snapshot() == before and mm.check() == []
    env = Environment()
    for kwargs, match in [({"limit_pages": 0}, "limit_pages"), ({"batch": -2}, "-2"),
                          ({"reclaim": "fifo"}, "fifo"), ({"swap": "hdd"}, "hdd")]:
        args = {"limit_pages": 4, "swap": SwapDevice(env), **kwargs}
        with pytest.raises(ValueError, match=match):
            HostMemory(env, **args)


@pytest.mark.parametrize("policy", ["clock", "lru"])
def test_2gib_guest_in_512mib_cgroup(policy):
    env = Environment(seed=5)
    mm = HostMemory(env, limit_pages=131072, swap=SwapDevice(env, "nvme_gen4"), reclaim=policy)
    vma = mm.mmap_anon(524288)
    rng = env.rng("touches")

    def worker():
        for _ in range(50_000):
            hva = vma.start + (rng.randrange(vma.npages) << 12)
            write = rng.random() < 0.5
            pfn = mm.get_user_pages_nowait(hva, write)
            if pfn is None:
                pfn = yield from mm.get_user_pages(hva, write)
            mm.put_page(pfn)
            yield 100

    for _ in range(4):
        env.process(worker())
    env.run()
    assert mm.check() == [] and mm.total_page_refs == 0
    assert mm.nr_charged <= mm.limit_pages and mm.stats["evictions"] > 0
    assert mm.stats["major_faults"] > 0 and mm.stats["write_ios"] > 0


def mm_state(env, mm, rec):
    """The mm snapshot plus what this file's set-up records: notifier calls and the engine's clock."""
    return mm_snapshot(mm), list(rec.calls), env.now, env.peek(), repr(env._seq)


def populate_setup(policy, seed):
    """A full cgroup: swapped pages from 40 on; below, pinned, swap-cache and untouched pages, writes queued."""
    env, mm, vma, rec = make(limit=8, npages=64, batch=3, reclaim=policy, seed=seed)
    rng = random.Random(seed)
    for k in range(40, 50):
        touch(mm, at(vma, k), True)
    env.run()                                   # the evicted ones are SWAPPED
    for k in rng.sample(range(40), 6):
        touch(mm, at(vma, k), rng.random() < 0.5)
    pins = [mm.get_user_pages_fast(at(vma, k), False) for k in range(40)
            if mm.page_state(at(vma, k)) == S.RESIDENT][:2]
    for k in rng.sample(range(40), 6):
        touch(mm, at(vma, k), True)             # reclaims: SWAPCACHE pages, writes queued
    return env, mm, vma, rec, pins


@pytest.mark.parametrize("policy", ["clock", "lru"])
@pytest.mark.parametrize("seed", range(6))
def test_make_pages_present_equals_touching_page_by_page(policy, seed):
    bulk, one = populate_setup(policy, seed), populate_setup(policy, seed)
    assert mm_state(bulk[0], bulk[1], bulk[3]) == mm_state(one[0], one[1], one[3])
    start = 5
    done = bulk[1].make_pages_present(at(bulk[2], start), 64 - start, True)
    env, mm, vma, rec, _ = one
    k = start
    while k < 64 and (pfn := mm.get_user_pages_nowait(at(vma, k), True)) is not None:
        mm.put_page(pfn)
        k += 1
    assert done == k - start and mm.page_state(at(vma, k)) == S.SWAPPED
    assert len(bulk[4]) == 2 and mm.stats["swapcache_hits"] > 0 and mm.stats["zero_fills"] > 30
    assert mm_state(bulk[0], bulk[1], bulk[3]) == mm_state(env, mm, rec)
    assert bulk[1].check() == []


def test_make_pages_present_refuses_bad_ranges():
    _, mm, vma, _ = make()
    io = mm.mmap_pfnmap(2, 0x1000)
    for call, match in [(lambda: mm.make_pages_present(at(vma, 30), 3, True), "past VMA"),
                        (lambda: mm.make_pages_present(at(vma, 0), 0, True), "npages"),
                        (lambda: mm.make_pages_present(io.start, 1, False), "pfnmap")]:
        with pytest.raises(ValueError, match=match):
            call()
    assert mm.nr_charged == 0 and mm._tick == 1


ops = st.lists(st.one_of(
    st.tuples(st.just("touch"), st.integers(0, 23), st.booleans()),
    st.tuples(st.just("wait"), st.integers(0, 23), st.booleans()),
    st.tuples(st.just("pin"), st.integers(0, 23)),
    st.tuples(st.just("unpin")),
    st.tuples(st.just("reclaim"), st.integers(0, 6)),
    st.tuples(st.just("zap"), st.integers(0, 23), st.integers(1, 4)),
    st.tuples(st.just("run"), st.integers(0, 3000)),
), max_size=60)


@settings(max_examples=150, deadline=None)
@given(ops, st.sampled_from(["clock", "lru"]), st.integers(0, 3))
def test_any_sequence_keeps_the_mm_sound(program, policy, seed):
    env, mm, vma, _ = make(limit=10, npages=24, batch=3, reclaim=policy, seed=seed,
                           device={**fixed_device(qd=2), "read": {"positioning_ns": [{"uniform_ns": [100, 3000]}],
                                                                  "transfer_ns_per_page": 10}})
    pins, waiters = [], []
    for op in program:
        if op[0] == "touch":
            pfn = mm.get_user_pages_nowait(at(vma, op[1]), op[2])
            if pfn is not None:
                mm.put_page(pfn)
        elif op[0] == "wait" and len(waiters) < 3:  # bounded: in-flight reads hold frames
            waiters.append(blocking(env, mm, at(vma, op[1]), op[2], hold=500))
        elif op[0] == "pin" and len(pins) < 3:
            pfn = mm.get_user_pages_nowait(at(vma, op[1]), True)
            if pfn is not None:
                pins.append(pfn)
        elif op[0] == "unpin" and pins:
            mm.put_page(pins.pop(0))
        elif op[0] == "reclaim":
            mm.reclaim(op[1])
        elif op[0] == "zap":
            mm.zap_range(at(vma, op[1]), min(op[2], 24 - op[1]))
        elif op[0] == "run":
            env.run(until=env.now + op[1])
            waiters = [w for w in waiters if not w]
        assert mm.check() == [] and mm.nr_charged <= mm.limit_pages
    for pfn in pins:
        mm.put_page(pfn)
    env.run()
    assert mm.check() == [] and mm.total_page_refs == 0 and mm.swap.stats["in_flight"] == 0


# --- the fill's hot path (asyncpf/hotpath.py): many rounds of prefault at the limit at once ----------------

def _prefaulted_state(params, fast, monkeypatch):
    import re

    from asyncpf.bm import build
    from asyncpf.host.reclaim import Reclaimer

    monkeypatch.setattr(Reclaimer, "fast_fill", fast)
    m = build("pv", params).machine
    mm = m.mm
    arrays = {k: v.copy() for k, v in vars(mm).items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in vars(mm).items() if isinstance(v, (int, dict)) and k != "_swapins"}
    swap = re.sub(r" at 0x[0-9a-f]+", "", repr({k: v for k, v in vars(m.swap).items() if k != "env"}))
    return (arrays, scalars, (mm._reclaimer._wb_next, mm._reclaimer._hand), m.kvm.mmu_notifier_seq,
            m.kvm.spte_pfn.copy(), m.env.now, m.env.events_processed, next(m.env._seq), swap)


@pytest.mark.parametrize("guest, limit, array, seed", [(2048, 512, 1024, 0), (64, 3, 40, 0), (256, 20, 200, 3)])
def test_fill_rounds_leave_exactly_the_state_of_the_plain_loop(guest, limit, array, seed, monkeypatch):
    from asyncpf.bm import BmParams

    params = BmParams(guest_mem=guest << 20, host_limit=limit << 20, array=array << 20, seed=seed)
    plain = _prefaulted_state(params, False, monkeypatch)
    fast = _prefaulted_state(params, True, monkeypatch)
    assert plain[0].keys() == fast[0].keys()
    for name in plain[0]:
        assert np.array_equal(plain[0][name], fast[0][name]), name
    assert plain[1:4] == fast[1:4] and np.array_equal(plain[4], fast[4]) and plain[5:] == fast[5:]
