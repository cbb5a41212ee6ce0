"""The x86 async PF hooks and run loop of the seed series: ``arch/x86/kvm/x86.c`` of the v2 patches.

v2 patch 02/12 (the MSR, Message-Id ``1258985167-29178-3-...``) and 08/12
(injection, ``-9-...``).  Both events are a #PF with CR2 = token after the
reason word was written, sent from ``vcpu_enter_guest`` before entry; there
is no gfn hash, no APF halt and no wake-all yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ... import abi
from ...abi import KVM_ASYNC_PF_ENABLED, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from ...mirrors import mirrors
from .. import vcpu as vcpu_mod
from .. import x86
from ..kvm_main import GfnToHvaCache, kvm_gfn_to_hva_cache_init
from . import async_pf

if TYPE_CHECKING:
    from ..async_pf import KvmAsyncPf
    from ..vcpu import KvmVcpu

MSR_RESERVED_BITS = 0x3E  # v2: gpa = data & ~0x3f, bit 0 enables; bits 5:1 refused (as merged; UNCONFIRMED for v2)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_inject_async_page_not_present", generations="seed")
def kvm_arch_inject_async_page_not_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Write reason=PAGE_NOT_PRESENT, queue #PF (CR2 = token), trace kvm_send_async_pf.

    Simplification: with APF disabled meanwhile nothing is injected, nor when
    the reason cannot be written (inject_apf_event, as 2.6.38): v2 (seed 000)
    wrote and injected unconditionally, a #PF with a stale reason to a guest
    that had unregistered; 2.6.38's kvm_arch_async_page_present tests the
    ENABLED bit and both of its injections the write's result.
    """
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return
    if x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_NOT_PRESENT, work.arch.token):
        work.notpresent_injected = True
        vcpu.stat["apf_not_present_injected"] += 1
    vcpu.kvm.env.trace("kvm_send_async_pf", ctx=x86.trace_ctx(vcpu), token=work.arch.token,
                       gva=work.gva, reason=KVM_PV_REASON_PAGE_NOT_PRESENT)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_inject_async_page_present", generations="seed")
def kvm_arch_inject_async_page_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Write reason=PAGE_READY, queue #PF (CR2 = token), trace kvm_send_async_pf.

    Simplification: as for not-present (v2 injected whatever the MSR and the write).
    """
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return
    x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_READY, work.arch.token)
    vcpu.kvm.env.trace("kvm_send_async_pf", ctx=x86.trace_ctx(vcpu), token=work.arch.token,
                       gva=work.gva, reason=KVM_PV_REASON_PAGE_READY)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_can_inject_async_page_present", generations="seed")
def kvm_arch_can_inject_async_page_present(vcpu: "KvmVcpu") -> bool:
    """May page-ready be sent now?  No event awaiting reinjection and interrupts allowed."""
    return not x86.kvm_event_needs_reinjection(vcpu) and x86.kvm_arch_interrupt_allowed(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_pv_enable_async_pf", generations="seed")
def kvm_pv_enable_async_pf(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """A write to MSR_KVM_ASYNC_PF_EN (0x13): 0 accepted, 1 refused (the guest gets #GP).

    Reserved bits -> refuse; ENABLED clear -> clear the completion queue;
    else resolve the area (outside guest RAM -> refuse).  No wake-all (v3).
    Simplification: v2 kept a user pointer probed with get_user; here the
    same gfn_to_hva cache as 2.6.38 resolves the area, and every check runs
    before any state changes; clearing the queue on a disable is 2.6.38's
    (v2's clear, from 08/12, ran at VM destroy only: ``check.known`` names the
    difference).
    """
    if data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS:
        return 1
    apf = vcpu.arch.apf
    if not data & KVM_ASYNC_PF_ENABLED:
        apf.msr_val = data
        yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
        return 0
    cache = GfnToHvaCache()
    if kvm_gfn_to_hva_cache_init(vcpu.kvm, cache, data & ~0x3F & abi.U64):
        return 1
    apf.msr_val = data
    apf.data = cache
    return 0


def msr_handlers(spec: abi.Generation) -> dict:
    """The async PF cases of this kernel's kvm_set_msr_common switch."""
    return {spec.msr_async_pf_en: kvm_pv_enable_async_pf}


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_reset", generations="seed")
def kvm_arch_vcpu_reset(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """INIT/RESET: APF off, completion queue cleared, no pending events.

    Simplification: only the state the protocol touches is reset; the queue
    is cleared as 2.6.38 does (the seed cleared it at VM destroy only); the
    pending exception and RUNNABLE are the VMM's part of the reset, done here
    too (:func:`asyncpf.host.x86.reset_events`).
    """
    vcpu.arch.apf.msr_val = 0
    yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
    x86.reset_events(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_runnable", generations="seed")
def kvm_arch_vcpu_runnable(vcpu: "KvmVcpu") -> bool:
    """Whether a blocked vcpu should wake: RUNNABLE, a completion on ``async_pf_done``, or an interrupt.

    Simplification: no NMI or SIPI; any pending vector counts (kvm_cpu_has_interrupt also weighs it against
    the one in service).
    """
    return (vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE or bool(vcpu.async_pf.done)
            or (x86.kvm_arch_interrupt_allowed(vcpu) and bool(vcpu.irr)))


@mirrors("arch/x86/kvm/x86.c", "__vcpu_run", generations="seed")
def __vcpu_run(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """The vcpu thread's loop: enter while RUNNABLE, else block until UNHALT.

    Simplification: no signals, no userspace exits; a reset request is served here.
    """
    vcpu.account("host")
    while not vcpu.stopped:
        yield from vcpu_mod.serve_reset(vcpu)
        if vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE:
            yield from vcpu_enter_guest(vcpu)
        else:
            yield from vcpu_mod.block_until_unhalt(vcpu)
        if vcpu_mod.triple_fault(vcpu):
            break
    vcpu_mod.vcpu_exit_thread(vcpu)


@mirrors("arch/x86/kvm/x86.c", "vcpu_enter_guest", generations="seed")
def vcpu_enter_guest(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """One entry: first tell the guest about async PFs (kvm_check_async_pf_completion), then inject, run, exit."""
    yield from async_pf.kvm_check_async_pf_completion(vcpu)
    yield from vcpu_mod.enter_guest_mode(vcpu)
