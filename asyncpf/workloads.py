"""Guest task programs: the ``bm`` benchmark of the v4/v7 cover letters, and small building blocks.

A program is a function ``program(task) -> generator`` yielding
``asyncpf.guest.ops`` steps (:class:`Touch`, :class:`Work`, :class:`Exit`...);
``GuestKernel.spawn`` runs it as a task.  The helpers here compose programs
for tests and notebooks.

``bm`` (the C program posted with the v4 series, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com): F fault threads each write one byte to a
uniformly random page of an M-byte array, forever; W work threads only
count; the array is touched once before timing starts.  The metric is the
work threads' progress: CPU seconds obtained (and increments at a stated
rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, Iterable

from . import abi
from .guest.kernel import AddressSpace, GuestKernel
from .guest.ops import Exit, PreemptDisable, PreemptEnable, Touch, Work

Program = Callable[..., Generator]
ARRAY_GVA = 0x7F0000000000 >> 4      # where bm's array lives in every task's address space
BM_INCREMENTS_PER_S = 1.08e9          # derived from the best run of the v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com


class StopFlag:
    """bm's ``volatile int stop``: the threads leave their loops once it is set."""

    def __init__(self) -> None:
        self.set = False


def fault_thread(kernel: GuestKernel, array_gva: int, pages: int, touch_ns: int, stop: StopFlag) -> Program:
    """bm's fault thread: ``while (!stop) array[random() % pages * 4096] = 1;``."""

    def program(task) -> Generator:
        randrange = kernel.env.rng(f"bm-fault/{task.pid}").randrange
        while not stop.set:
            yield Touch(array_gva + (randrange(pages) << abi.PAGE_SHIFT), True, touch_ns)

    return program


def work_thread(stop: StopFlag, chunk_ns: int = 1_000_000) -> Program:
    """bm's work thread: ``while (!stop) counter++;`` -- pure CPU, no memory traffic."""

    def program(task) -> Generator:
        chunk = Work(chunk_ns)  # ops are frozen: one for every step (asyncpf/hotpath.py)
        while not stop.set:
            yield chunk

    return program


def sequential_touch(array_gva: int, pages: int, touch_ns: int = 0, write: bool = True) -> Program:
    """Walk an array once, one touch per page, then exit."""

    def program(task) -> Generator:
        for i in range(pages):
            yield Touch(array_gva + (i << abi.PAGE_SHIFT), write, touch_ns)
        yield Exit()

    return program


def steps(*items: object) -> Program:
    """A fixed list of steps, then exit: ``steps(Touch(a), Work(1000), Touch(b))``.

    A callable among them is kernel code run at that point, in the task's
    context: it may return None or a generator of steps (e.g. a guest twin
    such as ``kvm_pv_disable_apf`` bound to a cpu).
    """

    def program(task) -> Generator:
        for item in items:
            if callable(item):
                result = item()
                if result is not None:
                    yield from result
            else:
                yield item
        yield Exit()

    return program


def kernel_section(*items: object) -> Program:
    """Steps run with preemption disabled (a kernel section, e.g. under a spinlock), then exit."""
    return steps(PreemptDisable(), *items, PreemptEnable())


def forever(*items: object) -> Program:
    """Repeat ``items`` for ever."""

    def program(task) -> Generator:
        while True:
            yield from items

    return program


@dataclass
class Array:
    """A buffer mapped at the same gva in several tasks, backed by contiguous guest frames."""

    gva: int
    gfn: int
    pages: int

    def map_into(self, mm: AddressSpace) -> None:
        mm.map(self.gva, self.pages, self.gfn)


def shared_array(kernel: GuestKernel, pages: int, gva: int = ARRAY_GVA) -> Array:
    """Allocate ``pages`` guest frames for a buffer (the caller maps it into tasks)."""
    if pages <= 0:
        raise ValueError(f"array of {pages} pages: expected a positive size")
    return Array(gva, kernel.alloc_gfns(pages), pages)


def spawn_bm(kernel: GuestKernel, array: Array, fault_threads: int, work_threads: int,
             touch_ns: int, stop: StopFlag) -> tuple[list, list]:
    """Create bm's threads, spread round-robin over the cpus: fault threads first, then work threads."""
    ncpu = len(kernel.cpus)
    faults, works = [], []
    for i in range(fault_threads):
        mm = AddressSpace()
        array.map_into(mm)
        program = fault_thread(kernel, array.gva, array.pages, touch_ns, stop)
        faults.append(kernel.spawn(f"bm-fault{i}", program, i % ncpu, mm))
    for i in range(work_threads):
        works.append(kernel.spawn(f"bm-work{i}", work_thread(stop), (fault_threads + i) % ncpu))
    return faults, works


def touches(gvas: Iterable[int], *, write: bool = True, touch_ns: int = 0) -> Program:
    """Touch each of ``gvas`` once, then exit."""
    return steps(*(Touch(g, write, touch_ns) for g in gvas))
