"""Generic async PF of the interrupt era: ``virt/kvm/async_pf.c@v6.18``.

Since 2020 the item tells the guest before its worker is queued (so a fast
worker cannot complete an item whose not-present was never decided), the
worker kicks the vcpu through ``kvm_arch_async_page_present_queued`` when it
finds ``done`` empty, and completions are consumed while the arch says the
guest can take the next one.  Since 2024 an item holds no kvm or mm
reference and every item leaving ``done`` is flushed before it is freed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...mirrors import mirrors
from ..async_pf import KvmArchAsyncPf, alloc_work, free_work
from ..kvm_main import BAD_PFN, kvm_is_error_hva
from ..mm import GUP_EFAULT
from . import x86

if TYPE_CHECKING:
    from ..async_pf import KvmAsyncPf
    from ..vcpu import KvmVcpu

ASYNC_PF_PER_VCPU = 64


@mirrors("virt/kvm/async_pf.c", "kvm_setup_async_pf", generations="interrupt")
def kvm_setup_async_pf(vcpu: "KvmVcpu", gva: int, hva: int, arch: KvmArchAsyncPf) -> bool:
    """Queue a worker to fault ``hva`` in; False means "handle it synchronously".

    Refused at ASYNC_PF_PER_VCPU outstanding, for an error hva, or when the
    GFP_NOWAIT allocation fails.  The item goes on ``queue``, ``queued++``,
    the guest is told (``notpresent_injected`` remembers whether it was),
    and only then is the work scheduled.
    Simplification: allocation failure is injected through ``kvm.alloc_fail``.
    """
    apf = vcpu.async_pf
    if apf.queued >= ASYNC_PF_PER_VCPU:
        vcpu.stat["async_pf_limit_hits"] += 1
        return False
    if kvm_is_error_hva(hva):
        return False
    work = alloc_work(vcpu)
    if work is None:
        return False
    work.gva, work.addr, work.arch = gva, hva, arch
    apf.queue.append(work)
    apf.queued += 1
    work.notpresent_injected = x86.kvm_arch_async_page_not_present(vcpu, work)
    vcpu.workqueue.queue_work(work)
    return True


@mirrors("virt/kvm/async_pf.c", "async_pf_execute", generations="interrupt")
def async_pf_execute(work: "KvmAsyncPf", ctx: tuple[str, int, int]) -> Generator[Any, Any, None]:
    """The worker: fault the page in on the VM's mm, publish the item on ``done``, notify, trace, wake.

    GUP keeps no page reference (pages = NULL) and may fail (a write to a
    read-only VMA: the fault was a read): the item is published anyway; a first
    item on an empty ``done`` calls kvm_arch_async_page_present_queued; once
    published the item may be freed by the vcpu, so only local copies are used
    after.
    Simplification: mmget_not_zero always succeeds while the VM exists; GUP's
    reference is taken and dropped at once.
    """
    vcpu = work.vcpu
    kvm = vcpu.kvm
    addr, gva = work.addr, work.gva
    work.state = "running"
    yield kvm.cost("worker_wakeup_ns")
    pfn = yield from kvm.mm.get_user_pages(addr, True)
    if pfn != GUP_EFAULT:
        kvm.mm.put_page(pfn)
    work.done = True
    work.state = "done"
    kvm.stat.async_pf_completed += 1
    first = not vcpu.async_pf.done
    vcpu.async_pf.done.append(work)
    yield None  # interleaving point: from here the vcpu may consume and free the item
    if first:
        x86.kvm_arch_async_page_present_queued(vcpu)
    kvm.env.trace("kvm_async_pf_completed", ctx=ctx, address=addr, gva=gva)
    vcpu.wake_up()
    vcpu.workqueue.finished(work)
    work.finished.succeed(work.id)


@mirrors("virt/kvm/async_pf.c", "kvm_flush_and_free_async_pf_work", generations="interrupt")
def kvm_flush_and_free_async_pf_work(work: "KvmAsyncPf") -> Generator[Any, Any, None]:
    """Wait for the item's worker to return (a wake-all item never had one), then free it (2024)."""
    if not work.wakeup_all and not work.finished.triggered:
        work.vcpu.account("stalled")
        yield work.finished
        work.vcpu.account("host")
    free_work(work)


@mirrors("virt/kvm/async_pf.c", "kvm_check_async_pf_completion", generations="interrupt")
def kvm_check_async_pf_completion(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Consume completions while kvm_arch_can_dequeue_async_page_present allows (KVM_REQ_APF_READY, ACK).

    For each: off ``done``, prefault (kvm_arch_async_page_ready), page-ready
    (kvm_arch_async_page_present), off ``queue``, ``queued--``, flush and free.
    With async PF enabled the slot is busy after one page-ready, so one item
    per call; disabled, the loop drains ``done`` silently.
    """
    apf = vcpu.async_pf
    while apf.done and x86.kvm_arch_can_dequeue_async_page_present(vcpu):
        work = apf.done.popleft()
        yield from x86.kvm_arch_async_page_ready(vcpu, work)
        x86.kvm_arch_async_page_present(vcpu, work)
        if work in apf.queue:
            apf.queue.remove(work)
        apf.queued -= 1
        yield from kvm_flush_and_free_async_pf_work(work)


@mirrors("virt/kvm/async_pf.c", "kvm_clear_async_pf_completion_queue", generations="interrupt")
def kvm_clear_async_pf_completion_queue(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Forget every outstanding fault without telling the guest; leak nothing.

    For each item on ``queue``: cancel_work_sync -- one that had not started
    is freed at once; one already running is waited for (it then sits on
    ``done``).  Then flush and free everything on ``done``; ``queued = 0``.
    """
    apf = vcpu.async_pf
    while apf.queue:
        work = apf.queue.pop(0)
        if vcpu.workqueue.cancel_work(work):
            free_work(work)
        elif not work.finished.triggered:
            vcpu.account("stalled")
            yield work.finished
            vcpu.account("host")
    while apf.done:
        work = apf.done.popleft()
        yield from kvm_flush_and_free_async_pf_work(work)
    apf.queued = 0


@mirrors("virt/kvm/async_pf.c", "kvm_async_pf_wakeup_all", generations="interrupt")
def kvm_async_pf_wakeup_all(vcpu: "KvmVcpu") -> int:
    """Queue a broadcast completion (token ~0): every task of this vcpu waiting for a page retries.

    Nothing to do if ``done`` is not empty; else a GFP_ATOMIC item marked
    wake-all goes on ``done`` only, present_queued is called (``done`` was
    empty), and ``queued++``.  Returns 0 or -ENOMEM (-12).
    Simplification: the wake-all mark is the model's BAD_PFN page, as in 2.6.38.
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
    x86.kvm_arch_async_page_present_queued(vcpu)
    apf.queued += 1
    return 0
