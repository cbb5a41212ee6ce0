"""Generic async PF: work items, the worker pool, completion and queue clearing.

The parts of ``virt/kvm/async_pf.c`` (2.6.38; ``kvm_main.c`` in the seed)
every generation shares: the item, the per-vcpu lists, the worker pool and
the worker.  Setting up, consuming and clearing differ, and live in the
generation packages (``asyncpf.host.seed``, ``asyncpf.host.legacy``).

Accounting (for "nothing leaks"): every work item is counted when allocated
and freed (``kvm.stat.async_pf_allocated/freed``); while it exists it holds a
kvm reference (``kvm.users_count``) and an mm reference
(``kvm.stat.mm_count``) until the worker drops them, and a page reference
from get_user_pages until the completion is consumed or cleared.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

from ..mirrors import mirrors
from ..sim import Event
from .kvm_main import BAD_PFN, gfn_to_hva, kvm_is_error_hva
from .mm import GUP_EFAULT

if TYPE_CHECKING:
    from ..sim import Environment
    from .vcpu import KvmVcpu

WORKER_PID_BASE = 200


@dataclass
class KvmArchAsyncPf:
    """``struct kvm_arch_async_pf``: the token and (2.6.38) the gfn."""

    token: int = 0
    gfn: int = 0


@dataclass(eq=False)
class KvmAsyncPf:
    """``struct kvm_async_pf``: one outstanding asynchronous fault.

    ``page`` is None until the worker has faulted the page in; a wake-all item
    carries ``BAD_PFN`` (2.6.38 used bad_page as the broadcast marker).
    ``state`` is model bookkeeping: queued -> running -> done -> freed.
    """

    id: int
    vcpu: "KvmVcpu"
    gva: int = 0
    addr: int = 0
    arch: KvmArchAsyncPf = field(default_factory=KvmArchAsyncPf)
    page: int | None = None
    done: bool = False
    notpresent_injected: bool = False
    state: str = "queued"
    finished: Event | None = None

    @property
    def wakeup_all(self) -> bool:
        """A broadcast item (2.6.38 marks it with bad_page; later kernels with ``wakeup_all``)."""
        return self.page == BAD_PFN

    def __repr__(self) -> str:
        return f"<KvmAsyncPf #{self.id} token={self.arch.token:#x} gfn={self.arch.gfn:#x} {self.state}>"


@dataclass
class KvmVcpuAsyncPf:
    """``vcpu->async_pf``: ``queue`` = all outstanding items, ``done`` = completed ones.

    ``slot`` is the seed's ``vcpu->async_pf_work``: set up, not yet injected.
    """

    queued: int = 0
    queue: list[KvmAsyncPf] = field(default_factory=list)
    done: deque[KvmAsyncPf] = field(default_factory=deque)
    slot: KvmAsyncPf | None = None


class Workqueue:
    """The pool that runs ``async_pf_execute``: slow-work threads (seed) or the system workqueue.

    ``max_active`` None means every queued item gets a worker at once (the
    concurrency-managed workqueue starts another worker when one sleeps).
    Simulation glue, not a kernel twin.
    """

    def __init__(self, env: "Environment", comm: str, max_active: int | None = None):
        self.env = env
        self.comm = comm
        self.max_active = max_active
        self.pending: deque[KvmAsyncPf] = deque()
        self.running: dict[int, tuple[KvmAsyncPf, int]] = {}  # work id -> (work, worker slot)
        self.host_threads: dict[int, Any] = {}  # hostsched: work id -> the worker thread spawned for it

    def queue_work(self, work: KvmAsyncPf) -> None:
        self.pending.append(work)
        self._start()

    def cancel_work(self, work: KvmAsyncPf) -> bool:
        """True if the item had not started (it will never run); False if it runs or ran.

        With host CPUs modelled, an item whose worker still waits on a runqueue
        for its first CPU has not started either.
        """
        if work in self.pending:
            self.pending.remove(work)
            return True
        thread = self.host_threads.get(work.id)
        if thread is not None and work.state == "queued" and work.vcpu.kvm.hostsched.cancel_unstarted(thread):
            self.finished(work)
            return True
        return False

    def _start(self) -> None:
        while self.pending and (self.max_active is None or len(self.running) < self.max_active):
            work = self.pending.popleft()
            busy = {slot for _, slot in self.running.values()}
            slot = next(i for i in range(len(busy) + 1) if i not in busy)
            self.running[work.id] = (work, slot)
            execute = work.vcpu.kvm.twins.async_pf_execute
            hostsched = getattr(work.vcpu.kvm, "hostsched", None)  # hostsched: the worker needs a host CPU
            if hostsched is not None:
                self.host_threads[work.id] = hostsched.spawn_worker(
                    execute(work, self.ctx(slot)), f"{self.comm % slot}#{work.id}", work.vcpu, pid=self.ctx(slot)[1])
                continue
            self.env.process(execute(work, self.ctx(slot)), f"{self.comm % slot}#{work.id}")

    def ctx(self, slot: int) -> tuple[str, int, int]:
        return self.comm % slot, WORKER_PID_BASE + slot, slot

    def finished(self, work: KvmAsyncPf) -> None:
        del self.running[work.id]
        self.host_threads.pop(work.id, None)
        self._start()


def alloc_work(vcpu: "KvmVcpu") -> KvmAsyncPf | None:
    """``kmem_cache_zalloc(async_pf_cache, ...)``: a new item, or None when the allocation fails."""
    kvm = vcpu.kvm
    if kvm.alloc_fail is not None and kvm.alloc_fail():
        kvm.stat.async_pf_alloc_failures += 1
        return None
    kvm.stat.async_pf_allocated += 1
    work = KvmAsyncPf(id=kvm.stat.async_pf_allocated, vcpu=vcpu)
    work.finished = kvm.env.event(f"work#{work.id}")
    return work


def new_work(vcpu: "KvmVcpu", gva: int, gfn: int, arch: KvmArchAsyncPf) -> KvmAsyncPf | None:
    """The start of both generations' kvm_setup_async_pf: allocate, fill, take an mm and a kvm reference,
    and undo it all for an error hva ("can't really happen", the kernel says).  None means go synchronous."""
    work = alloc_work(vcpu)
    if work is None:
        return None
    kvm = vcpu.kvm
    work.gva, work.addr, work.arch = gva, gfn_to_hva(kvm, gfn), arch
    kvm.stat.mm_count += 1
    kvm.users_count += 1
    if kvm_is_error_hva(work.addr):
        kvm.stat.mm_count -= 1
        kvm.users_count -= 1
        free_work(work)
        return None
    return work


# The fields a kernel function reads from a ``struct kvm_async_pf``; the rest (id, vcpu, state, finished) is glue.
POISONED_FIELDS = frozenset({"gva", "addr", "arch", "page", "done", "notpresent_injected", "wakeup_all"})


class FreedKvmAsyncPf(KvmAsyncPf):
    """A freed item, poisoned as KASAN poisons a freed slab object: every read of a kernel field is reported.

    KASAN (Documentation/dev-tools/kasan.rst@v6.18: a freed object's memory is
    poisoned in shadow memory, and an access to it is reported as
    "use-after-free") reports the class of bug async_pf.c has had (the 2024
    'Always flush async #PF workqueue when vCPU is being destroyed': a worker
    could still run after its vCPU was gone).  A read appends ("use_after_free", now,
    "<field> of <item>") to ``kvm.stat_violations`` and still returns the value,
    as a KASAN report does not stop the kernel.
    Only freed items get this class: a live item's reads cost nothing extra.
    """

    def __getattribute__(self, name: str) -> Any:
        if name in POISONED_FIELDS:
            kvm = object.__getattribute__(self, "vcpu").kvm
            kvm.stat_violations.append(("use_after_free", kvm.env.now, f"{name} of {self!r}"))
        return object.__getattribute__(self, name)

    def __repr__(self) -> str:
        arch = peek(self, "arch")
        return f"<KvmAsyncPf #{self.id} token={arch.token:#x} gfn={arch.gfn:#x} freed>"


def peek(work: KvmAsyncPf, name: str) -> Any:
    """A field read by simulation glue (checker, timeline), which KASAN does not see: never reported."""
    return object.__getattribute__(work, name)


def free_work(work: KvmAsyncPf) -> None:
    """``kmem_cache_free``: counted and poisoned (:class:`FreedKvmAsyncPf`); a double free is an error of the model."""
    if work.state == "freed":
        raise AssertionError(f"{work!r} freed twice")
    work.state = "freed"
    work.vcpu.kvm.stat.async_pf_freed += 1
    work.__class__ = FreedKvmAsyncPf


def put_work_page(work: KvmAsyncPf) -> None:
    """``if (work->page) put_page(work->page)``: the worker's GUP reference (none for bad_page)."""
    if work.page is not None and work.page != BAD_PFN:
        work.vcpu.kvm.mm.put_page(work.page)


def retire_work(vcpu: "KvmVcpu", work: KvmAsyncPf) -> None:
    """The end of a consumed completion: off ``queue``, ``queued--``, page put, item freed."""
    if work in vcpu.async_pf.queue:
        vcpu.async_pf.queue.remove(work)
    vcpu.async_pf.queued -= 1
    put_work_page(work)
    free_work(work)


@mirrors("virt/kvm/async_pf.c", "async_pf_execute")
def async_pf_execute(work: KvmAsyncPf, ctx: tuple[str, int, int]) -> Generator[Any, Any, None]:
    """The worker: fault the page in (this is where the swap-in IO happens), then report done.

    Once the item is on ``done`` the vcpu may free it, so only local copies
    are used from there on.  A GUP that fails (no vma behind the address)
    leaves ``page`` None and traces pfn 0, as 2.6.38 does.  The seed's
    slow-work ``execute`` (virt/kvm/kvm_main.c in seed 000) is the same
    sequence, except that it dropped only the mm reference itself and its
    ``put_ref`` callback dropped the kvm reference right after.
    Simplification: use_mm/mmap_sem are implicit; for the seed, a failed GUP
    leaves ``page`` None as 2.6.38 does, where v2 left it uninitialised (and
    later put that garbage as a page).
    """
    vcpu = work.vcpu
    kvm = vcpu.kvm
    addr, gva = work.addr, work.gva
    work.state = "running"
    yield kvm.cost("worker_wakeup_ns")
    pfn = yield from kvm.mm.get_user_pages(addr, True)
    page = None if pfn == GUP_EFAULT else pfn  # a failed GUP leaves page NULL (2.6.38 initialises it so)
    work.page = page
    work.done = True
    work.state = "done"
    kvm.stat.async_pf_completed += 1
    vcpu.async_pf.done.append(work)
    yield None  # interleaving point: from here the vcpu may consume and free the item
    worker_done(work, ctx, addr, 0 if page is None else page, gva)


def worker_done(work: KvmAsyncPf, ctx: tuple[str, int, int], addr: int, pfn: int, gva: int) -> None:
    """async_pf_execute after the item is published: trace, wake, drop references (uses no field of ``work``'s data)."""
    vcpu = work.vcpu
    kvm = vcpu.kvm
    kvm.env.trace("kvm_async_pf_completed", ctx=ctx, address=addr, pfn=pfn, gva=gva)
    vcpu.wake_up()
    kvm.stat.mm_count -= 1
    kvm.users_count -= 1
    vcpu.workqueue.finished(work)
    work.finished.succeed(work.id)
