"""Generic async PF as released in 2.6.38: ``virt/kvm/async_pf.c@v2.6.38``.

The work item's life: :func:`kvm_setup_async_pf` queues it and tells the
guest at once; the worker (``asyncpf.host.async_pf.async_pf_execute``) puts it
on ``done``; :func:`kvm_check_async_pf_completion` consumes one completion per
call; :func:`kvm_clear_async_pf_completion_queue` forgets everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...mirrors import mirrors
from .. import async_pf
from ..async_pf import KvmArchAsyncPf, alloc_work, free_work, new_work, put_work_page, retire_work
from ..kvm_main import BAD_PFN
from . import x86

if TYPE_CHECKING:
    from ..vcpu import KvmVcpu

ASYNC_PF_PER_VCPU = 64


@mirrors("virt/kvm/async_pf.c", "kvm_setup_async_pf", generations="legacy")
def kvm_setup_async_pf(vcpu: "KvmVcpu", gva: int, gfn: int, arch: KvmArchAsyncPf) -> bool:
    """Queue a worker to fault ``gfn`` in and tell the guest; False means "handle it synchronously".

    Refuses at ASYNC_PF_PER_VCPU outstanding; the GFP_NOWAIT allocation may
    fail (then the vcpu sleeps in the fault instead); the item takes an mm and
    a kvm reference; an error hva is refused.
    Simplification: allocation failure is injected through ``kvm.alloc_fail``;
    schedule_work cannot fail.
    """
    if vcpu.async_pf.queued >= ASYNC_PF_PER_VCPU:
        vcpu.stat["async_pf_limit_hits"] += 1
        return False
    work = new_work(vcpu, gva, gfn, arch)
    if work is None:
        return False
    vcpu.workqueue.queue_work(work)
    vcpu.async_pf.queue.append(work)
    vcpu.async_pf.queued += 1
    x86.kvm_arch_async_page_not_present(vcpu, work)
    return True


@mirrors("virt/kvm/async_pf.c", "kvm_check_async_pf_completion", generations="legacy")
def kvm_check_async_pf_completion(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """After a round of the vcpu loop: consume completions while the guest can take them.

    While ``done`` is non-empty and kvm_arch_can_inject_async_page_present:
    unlink the first item, prefault its page (kvm_arch_async_page_ready),
    send page-ready (kvm_arch_async_page_present), unlink it from ``queue``,
    ``queued--``, put the page and free the item.  With APF enabled the
    injected #PF is a pending exception, so the gate closes after one item;
    with APF disabled the gate stays open and the loop drains ``done``.
    Simplification: the prefault may sleep (a synchronous fault), so this is a generator.
    """
    apf = vcpu.async_pf
    while apf.done and x86.kvm_arch_can_inject_async_page_present(vcpu):
        work = apf.done.popleft()
        if work.page is not None:
            yield from x86.kvm_arch_async_page_ready(vcpu, work)
        x86.kvm_arch_async_page_present(vcpu, work)
        retire_work(vcpu, work)


@mirrors("virt/kvm/async_pf.c", "kvm_clear_async_pf_completion_queue", generations="legacy")
def kvm_clear_async_pf_completion_queue(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Forget every outstanding fault without telling the guest.

    An item that had not started is freed, but its mm and kvm references are
    not given back: 2.6.38's cancelled branch only frees the item, so each
    cancel leaks an mm_count and a kvm reference (counted in
    ``kvm.stat.cancel_leaked_refs``; ``asyncpf.check.known.KNOWN_LEAKS``
    names the later fix).
    Called on MSR disable, vcpu reset and VM destroy.
    Simplification: cancel_work_sync's wait is a wait on the item's finish event.
    """
    kvm = vcpu.kvm
    apf = vcpu.async_pf
    while apf.queue:
        work = apf.queue.pop(0)
        if vcpu.workqueue.cancel_work(work):
            kvm.stat.cancel_leaked_refs += 1
            free_work(work)
        elif not work.finished.triggered:
            vcpu.account("stalled")
            yield work.finished
            vcpu.account("host")
    while apf.done:
        work = apf.done.popleft()
        put_work_page(work)
        free_work(work)
    apf.queued = 0


@mirrors("virt/kvm/async_pf.c", "kvm_async_pf_wakeup_all", generations="legacy")
def kvm_async_pf_wakeup_all(vcpu: "KvmVcpu") -> int:
    """Queue a broadcast completion (token ~0): every task waiting for an APF retries.

    Nothing to do if ``done`` is already non-empty; else allocate an item
    marked with bad_page, append it to ``done`` (never to ``queue``) and count
    it in ``queued``.  Returns 0 or -ENOMEM (-12).
    Simplification: the GFP_ATOMIC allocation can fail through ``kvm.alloc_fail``.
    """
    apf = vcpu.async_pf
    if apf.done:
        return 0
    work = alloc_work(vcpu)
    if work is None:
        return -12
    work.page = BAD_PFN
    work.done = True
    work.state = "done"
    apf.done.append(work)
    apf.queued += 1
    return 0


__all__ = ["ASYNC_PF_PER_VCPU", "async_pf", "kvm_async_pf_wakeup_all", "kvm_check_async_pf_completion",
           "kvm_clear_async_pf_completion_queue", "kvm_setup_async_pf"]
