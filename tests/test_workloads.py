"""Guest task programs (asyncpf.workloads)."""

from __future__ import annotations

import pytest

from asyncpf import abi
from asyncpf.guest.ops import Exit, PreemptDisable, PreemptEnable, Touch, Work
from asyncpf.workloads import (ARRAY_GVA, StopFlag, forever, kernel_section, sequential_touch, shared_array,
                               spawn_bm, steps)

from conftest import boot_guest

MS = 1_000_000


def boot(vcpus=2):
    m, kernel, _ = boot_guest(vcpus)
    return m, kernel


def take(program, n):
    gen = program(None)
    return [next(gen) for _ in range(n)]


def test_steps_yields_items_then_exits():
    assert list(steps(Work(5), Touch(0x1000))(None)) == [Work(5), Touch(0x1000), Exit()]


def test_sequential_touch_walks_each_page_once():
    assert list(sequential_touch(0x10000, 3, touch_ns=7, write=False)(None)) == [
        Touch(0x10000, False, 7), Touch(0x11000, False, 7), Touch(0x12000, False, 7), Exit()]


def test_kernel_section_brackets_with_preempt_disable():
    assert list(kernel_section(Work(1))(None)) == [PreemptDisable(), Work(1), PreemptEnable(), Exit()]


def test_forever_repeats():
    assert take(forever(Work(1), Work(2)), 5) == [Work(1), Work(2), Work(1), Work(2), Work(1)]


def test_shared_array_allocates_frames_and_refuses_empty():
    m, k = boot()
    first = k.next_free_gfn
    a = shared_array(k, 16)
    assert (a.gva, a.gfn, a.pages) == (ARRAY_GVA, first, 16) and k.next_free_gfn == first + 16
    with pytest.raises(ValueError, match="0 pages"):
        shared_array(k, 0)


def test_spawn_bm_places_fault_threads_first_round_robin_and_stop_ends_them():
    m, k = boot(vcpus=2)
    a = shared_array(k, 256)
    stop = StopFlag()
    faults, works = spawn_bm(k, a, 3, 2, 200, stop)
    assert [t.cpu for t in faults] == [0, 1, 0] and [t.cpu for t in works] == [1, 0]
    assert all(t.mm.translate(a.gva + 5 * abi.PAGE_SIZE) == a.gfn + 5 for t in faults)
    m.run(m.env.now + 50 * MS)
    assert all(t.state == "R" for t in faults + works)
    assert sum(t.cpu_ns for t in works) > 30 * MS          # ~(1/3 + 1/2) of 50 ms
    stop.set = True
    m.run(m.env.now + 20 * MS)
    assert all(t.state == "X" for t in faults + works)
    m.shutdown()
    assert m.leaks() == []
