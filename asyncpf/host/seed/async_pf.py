"""Generic async PF in the seed series: ``virt/kvm/kvm_main.c`` of the v2 patch 08/12 (2009-11-23).

Message-Id ``1258985167-29178-9-git-send-email-gleb@redhat.com``.  Slow-work
threads fault the page in; one set-up item waits in ``vcpu->async_pf_work``
until the next entry tells the guest (or, if its page already arrived,
nobody hears of it); page-ready is sent for one ``done`` item per entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...mirrors import mirrors
from ..async_pf import KvmArchAsyncPf, free_work, new_work, put_work_page, retire_work
from . import x86

if TYPE_CHECKING:
    from ..vcpu import KvmVcpu


@mirrors("virt/kvm/kvm_main.c", "kvm_setup_async_pf", generations="seed")
def kvm_setup_async_pf(vcpu: "KvmVcpu", gva: int, gfn: int, arch: KvmArchAsyncPf) -> bool:
    """Queue a slow-work item to fault ``gfn`` in and park it for the next entry; False = synchronous.

    No per-vcpu limit yet (v4 added it); GFP_ATOMIC allocation; mm and kvm
    references; an error hva is refused; the item is queued, counted and
    parked in ``async_pf_work`` -- the guest is told only at the next entry.
    Simplification: allocation failure is injected through ``kvm.alloc_fail``.
    """
    work = new_work(vcpu, gva, gfn, arch)
    if work is None:
        return False
    vcpu.async_pf.queue.append(work)
    vcpu.async_pf.queued += 1
    vcpu.workqueue.queue_work(work)
    vcpu.async_pf.slot = work
    return True


@mirrors("virt/kvm/kvm_main.c", "kvm_check_async_pf_completion", generations="seed")
def kvm_check_async_pf_completion(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Before entry: inject the parked not-present, else one page-ready.

    The parked item is injected as not-present unless its page already
    arrived, in which case neither event is sent; otherwise, if ``done`` is
    non-empty and the arch can inject, page-ready for its first item, which
    is then freed.
    Simplification: a generator only for the caller's sake (nothing here sleeps).
    """
    apf = vcpu.async_pf
    work, apf.slot = apf.slot, None
    if work is not None:
        if not work.done:
            x86.kvm_arch_inject_async_page_not_present(vcpu, work)
            return
        apf.done.remove(work)
        retire_work(vcpu, work)
    if apf.done and x86.kvm_arch_can_inject_async_page_present(vcpu):
        work = apf.done.popleft()
        x86.kvm_arch_inject_async_page_present(vcpu, work)
        retire_work(vcpu, work)
    yield from ()


@mirrors("virt/kvm/kvm_main.c", "kvm_clear_async_pf_completion_queue", generations="seed")
def kvm_clear_async_pf_completion_queue(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Free what is on ``done`` and forget the parked item; running slow work is not cancelled.

    Cancelling outstanding work arrived with v4, so an item still in flight
    completes later and is answered after the guest re-registers (documented
    in ``asyncpf.check.known``).
    Simplification: called where 2.6.38 calls it (MSR disable, reset, VM destroy); the seed called it at VM destroy.
    """
    apf = vcpu.async_pf
    apf.slot = None
    while apf.done:
        work = apf.done.popleft()
        if work in apf.queue:
            apf.queue.remove(work)
        put_work_page(work)
        free_work(work)
    apf.queued = len(apf.queue)
    yield from ()
