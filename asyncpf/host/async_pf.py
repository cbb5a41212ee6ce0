"""Generic async PF: work items, the worker pool, completion and queue clearing.

Mirrors ``virt/kvm/async_pf.c`` of 2.6.38 ([M-AF58]) and the same code as it
stood in ``virt/kvm/kvm_main.c`` in the seed series (v2, [V2-08]: slow-work
threads, one not-yet-injected work in ``vcpu->async_pf_work``).  Guest-visible
effects go through the ``kvm_arch_*`` hooks in ``x86.py``.

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
from . import x86
from .kvm_main import BAD_PFN, gfn_to_hva, kvm_is_error_hva

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

    def queue_work(self, work: KvmAsyncPf) -> None:
        self.pending.append(work)
        self._start()

    def cancel_work(self, work: KvmAsyncPf) -> bool:
        """True if the item had not started (it will never run); False if it runs or ran."""
        if work in self.pending:
            self.pending.remove(work)
            return True
        return False

    def _start(self) -> None:
        while self.pending and (self.max_active is None or len(self.running) < self.max_active):
            work = self.pending.popleft()
            busy = {slot for _, slot in self.running.values()}
            slot = next(i for i in range(len(busy) + 1) if i not in busy)
            self.running[work.id] = (work, slot)
            self.env.process(async_pf_execute(work, self.ctx(slot)), f"{self.comm % slot}#{work.id}")

    def ctx(self, slot: int) -> tuple[str, int, int]:
        return self.comm % slot, WORKER_PID_BASE + slot, slot

    def finished(self, work: KvmAsyncPf) -> None:
        del self.running[work.id]
        self._start()


def _alloc_work(vcpu: "KvmVcpu") -> KvmAsyncPf | None:
    kvm = vcpu.kvm
    if kvm.alloc_fail is not None and kvm.alloc_fail():
        kvm.stat.async_pf_alloc_failures += 1
        return None
    kvm.stat.async_pf_allocated += 1
    work = KvmAsyncPf(id=kvm.stat.async_pf_allocated, vcpu=vcpu)
    work.finished = kvm.env.event(f"work#{work.id}")
    return work


def _free_work(work: KvmAsyncPf) -> None:
    if work.state == "freed":
        raise AssertionError(f"{work!r} freed twice")
    work.state = "freed"
    work.vcpu.kvm.stat.async_pf_freed += 1


def _put_page(work: KvmAsyncPf) -> None:
    if work.page is not None and work.page != BAD_PFN:
        work.vcpu.kvm.mm.put_page(work.page)


@mirrors("virt/kvm/async_pf.c", "kvm_setup_async_pf")
def kvm_setup_async_pf(vcpu: "KvmVcpu", gva: int, gfn: int, arch: KvmArchAsyncPf) -> bool:
    """Queue a worker to fault ``gfn`` in; False means "handle it synchronously".

    Mirrors: virt/kvm/async_pf.c:kvm_setup_async_pf (2.6.38 [M-AF58]; seed
    v2 in kvm_main.c [V2-08]): refuse above ASYNC_PF_PER_VCPU outstanding
    (2.6.38 only); allocate without sleeping ("if we are going to sleep anyway
    we may as well sleep faulting in the page") -- failure means sync; take an
    mm and a kvm reference; an error hva cannot happen here but is refused;
    queue the work; 2.6.38 then adds it to ``queue`` and tells the guest at
    once (kvm_arch_async_page_not_present), the seed parks it in
    ``async_pf_work`` for the next entry.
    Simplification: allocation failure is injected through ``kvm.alloc_fail``;
    schedule_work cannot fail.
    """
    kvm = vcpu.kvm
    limit = kvm.gen.async_pf_per_vcpu
    if limit is not None and vcpu.async_pf.queued >= limit:
        vcpu.stat["async_pf_limit_hits"] += 1
        return False
    work = _alloc_work(vcpu)
    if work is None:
        return False
    work.gva, work.addr, work.arch = gva, gfn_to_hva(kvm, gfn), arch
    kvm.stat.mm_count += 1
    kvm.users_count += 1
    if kvm_is_error_hva(work.addr):
        kvm.stat.mm_count -= 1
        kvm.users_count -= 1
        _free_work(work)
        return False
    vcpu.async_pf.queue.append(work)
    vcpu.async_pf.queued += 1
    vcpu.workqueue.queue_work(work)
    if kvm.gen.not_present_at == "entry":
        vcpu.async_pf.slot = work
    else:
        x86.kvm_arch_async_page_not_present(vcpu, work)
    return True


@mirrors("virt/kvm/async_pf.c", "async_pf_execute")
def async_pf_execute(work: KvmAsyncPf, ctx: tuple[str, int, int]) -> Generator[Any, Any, None]:
    """The worker: fault the page in (this is where the swap-in IO happens), then report done.

    Mirrors: virt/kvm/async_pf.c:async_pf_execute (2.6.38): get_user_pages
    with write=1 on the VM's mm, append to ``vcpu->async_pf.done`` under the
    lock with ``page`` and ``done`` set, trace completed, wake the vcpu if it
    sleeps on its wait queue (a running vcpu notices at its next exit), then
    drop the mm and kvm references.  After the item is on ``done`` the vcpu
    may free it, so only local copies are used from there on.
    Simplification: use_mm/mmap_sem are implicit; GUP always succeeds for
    guest RAM.  ``kvm.bugs["worker_uses_freed_work"]`` re-reads the item after
    that point (the use-after-free class of bug the 2024 flush fix closed).
    """
    vcpu = work.vcpu
    kvm = vcpu.kvm
    addr, gva = work.addr, work.gva
    work.state = "running"
    yield kvm.cost("worker_wakeup_ns")
    pfn = yield from kvm.mm.get_user_pages(addr, True)
    work.page = pfn
    work.done = True
    work.state = "done"
    kvm.stat.async_pf_completed += 1
    vcpu.async_pf.done.append(work)
    yield None  # interleaving point: from here the vcpu may consume and free the item
    if kvm.bugs.get("worker_uses_freed_work") and work.state == "freed":
        kvm.stat_violations.append(("use_after_free", kvm.env.now, repr(work)))
    kvm.env.trace("kvm_async_pf_completed", ctx=ctx, address=addr, pfn=pfn, gva=gva)
    vcpu.wake_up()
    kvm.stat.mm_count -= 1
    kvm.users_count -= 1
    vcpu.workqueue.finished(work)
    work.finished.succeed(work.id)


@mirrors("virt/kvm/async_pf.c", "kvm_check_async_pf_completion")
def kvm_check_async_pf_completion(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Before entry: tell the guest about finished faults (one per call in these generations).

    Mirrors: virt/kvm/async_pf.c:kvm_check_async_pf_completion.  Seed v2
    [V2-08]: first inject the not-present of the parked ``async_pf_work``
    (or, if its page already arrived, skip both events); then, if ``done`` is
    non-empty and the arch can inject, send page-ready for its first item and
    free it.  2.6.38 [M-AF58]: if ``done`` is non-empty and
    kvm_arch_can_inject_async_page_present: pop the first, prefault it
    (kvm_arch_async_page_ready), page-ready (kvm_arch_async_page_present),
    unlink from ``queue``, ``queued--``, put the page, free.
    Simplification: the prefault may sleep (a synchronous fault), so this is a generator.
    """
    apf = vcpu.async_pf
    gen = vcpu.kvm.gen
    if gen.not_present_at == "entry":
        work, apf.slot = apf.slot, None
        if work is not None:
            if not work.done:
                x86.kvm_arch_inject_async_page_not_present(vcpu, work)
                return
            apf.done.remove(work)  # the page beat the injection: the guest never hears of it
            _retire(vcpu, work)
    budget = gen.completions_per_entry
    while apf.done and (budget is None or budget > 0) and x86.kvm_arch_can_inject_async_page_present(vcpu):
        work = apf.done.popleft()
        if gen.not_present_at == "entry":
            x86.kvm_arch_inject_async_page_present(vcpu, work)
        else:
            yield from x86.kvm_arch_async_page_ready(vcpu, work)
            x86.kvm_arch_async_page_present(vcpu, work)
        _retire(vcpu, work)
        if budget is not None:
            budget -= 1


def _retire(vcpu: "KvmVcpu", work: KvmAsyncPf) -> None:
    if work in vcpu.async_pf.queue:
        vcpu.async_pf.queue.remove(work)
    vcpu.async_pf.queued -= 1
    _put_page(work)
    _free_work(work)


@mirrors("virt/kvm/async_pf.c", "kvm_clear_async_pf_completion_queue")
def kvm_clear_async_pf_completion_queue(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Forget every outstanding fault without telling the guest; leak nothing.

    Mirrors: virt/kvm/async_pf.c:kvm_clear_async_pf_completion_queue (2.6.38):
    for each item on ``queue``: cancel_work_sync -- an item that had not
    started is freed (dropping its mm and kvm references); one that is running
    is waited for until its function returns, and lands on ``done`` -- so is
    one a worker has taken but not begun, and one already on ``done`` whose
    worker has not yet dropped its references (cancel_work_sync waits for
    the work function); then free everything on ``done`` (putting its page)
    and set ``queued = 0``.  The seed only freed ``done``.
    Called on MSR disable, vcpu reset and VM destroy.
    Simplification: cancel_work_sync's wait is a wait on the item's finish event.
    The mutant that skips the clear is ``kvm.bugs["no_clear_on_disable"]``.
    """
    kvm = vcpu.kvm
    apf = vcpu.async_pf
    if kvm.bugs.get("no_clear_on_disable"):
        return
    if kvm.gen.not_present_at != "entry":
        while apf.queue:
            work = apf.queue.pop(0)
            if vcpu.workqueue.cancel_work(work):
                kvm.stat.mm_count -= 1
                kvm.users_count -= 1
                _free_work(work)
            elif not work.finished.triggered:  # a worker has it: wait until its function returns
                vcpu.account("stalled")
                yield work.finished
                vcpu.account("host")
    apf.slot = None
    while apf.done:
        work = apf.done.popleft()
        if work in apf.queue:
            apf.queue.remove(work)
        _put_page(work)
        _free_work(work)
    apf.queued = len(apf.queue)


@mirrors("virt/kvm/async_pf.c", "kvm_async_pf_wakeup_all", generations="legacy")
def kvm_async_pf_wakeup_all(vcpu: "KvmVcpu") -> int:
    """Queue a broadcast completion (token ~0): every task waiting for an APF retries.

    Mirrors: virt/kvm/async_pf.c:kvm_async_pf_wakeup_all (2.6.38): nothing to
    do if ``done`` is already non-empty; else allocate an item marked with
    bad_page, append it to ``done`` (never to ``queue``) and count it in
    ``queued``.  Returns 0 or -ENOMEM (-12).
    Simplification: the GFP_ATOMIC allocation can fail through ``kvm.alloc_fail``.
    """
    apf = vcpu.async_pf
    if apf.done:
        return 0
    work = _alloc_work(vcpu)
    if work is None:
        return -12
    work.page = BAD_PFN
    work.done = True
    work.state = "done"
    apf.done.append(work)
    apf.queued += 1
    return 0
