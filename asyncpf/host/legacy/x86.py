"""The x86 async PF hooks and run loop as released in 2.6.38: ``arch/x86/kvm/x86.c@v2.6.38``.

Both events reach the guest as a #PF with CR2 = token after the reason word
was written; a vcpu that cannot be told (APF off, or CPL0 without
SEND_ALWAYS) is put into the synthetic *APF halt* until a completion or an
interrupt makes it runnable.  The gfn hash and the exception queue these
hooks use are shared with later generations (``asyncpf.host.x86``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ... import abi
from ...abi import KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from ...mirrors import mirrors
from .. import vcpu as vcpu_mod
from .. import x86
from ..kvm_main import kvm_gfn_to_hva_cache_init
from . import async_pf, mmu

if TYPE_CHECKING:
    from ..async_pf import KvmAsyncPf
    from ..vcpu import KvmVcpu

MSR_RESERVED_BITS = 0x3C  # bits 5:2 of MSR_KVM_ASYNC_PF_EN


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_not_present", generations="legacy")
def kvm_arch_async_page_not_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Tell the guest the page is not present, or halt the vcpu if it cannot be told.

    Trace, add the gfn to the hash; if APF is off, or the vcpu is at CPL0 and
    the guest did not ask for SEND_ALWAYS -> KVM_REQ_APF_HALT (v7 "halt vcpu
    for non-PV guests"); else write reason=PAGE_NOT_PRESENT and queue #PF with
    CR2 = token.  A failed write of the reason word tells nobody and halts
    nobody (the item still completes later).
    """
    vcpu.kvm.env.trace("kvm_async_pf_not_present", ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    x86.kvm_add_async_pf_gfn(vcpu, work.arch.gfn)
    apf = vcpu.arch.apf
    if not apf.msr_val & KVM_ASYNC_PF_ENABLED or (apf.send_user_only and vcpu.arch.cpl == 0):
        x86.kvm_make_request(vcpu, x86.KVM_REQ_APF_HALT)
    elif x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_NOT_PRESENT, work.arch.token):
        work.notpresent_injected = True
        vcpu.stat["apf_not_present_injected"] += 1


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_present", generations="legacy")
def kvm_arch_async_page_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """The page is back: drop its gfn from the hash, send page-ready (token ~0 = wake all), unhalt.

    Trace ready with the token as it stands (0 for a wake-all item); a
    broadcast item (bad_page) gets token ~0, any other has its gfn deleted
    from the hash; if APF is enabled, write reason=PAGE_READY and queue #PF
    with CR2 = token; finally ``apf.halted = false`` in every case.
    """
    vcpu.kvm.env.trace("kvm_async_pf_ready", ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    if work.wakeup_all:
        work.arch.token = abi.BROADCAST_TOKEN
    else:
        x86.kvm_del_async_pf_gfn(vcpu, work.arch.gfn)
    if vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_READY, work.arch.token)
    vcpu.arch.apf.halted = False


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_ready", generations="legacy")
def kvm_arch_async_page_ready(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> Generator[Any, Any, None]:
    """Prefault the page that just arrived, so the guest's retry does not exit again.

    v7 "Retry fault before vmentry": not for an error page (the wake-all
    item's bad_page); call the MMU's page_fault with prefault set, so it
    cannot start another APF.
    Simplification: the MMU is always direct-map (EPT), so the direct_map and
    cr3 checks always pass.
    """
    if work.wakeup_all:
        return
    yield from mmu.tdp_page_fault(vcpu, work.gva, 0, prefault=True)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_can_inject_async_page_present", generations="legacy")
def kvm_arch_can_inject_async_page_present(vcpu: "KvmVcpu") -> bool:
    """May a completion be consumed now?  With APF off always (it is consumed silently)."""
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return True
    return not x86.kvm_event_needs_reinjection(vcpu) and x86.kvm_arch_interrupt_allowed(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_pv_enable_async_pf", generations="legacy")
def kvm_pv_enable_async_pf(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """A write to MSR_KVM_ASYNC_PF_EN: 0 accepted, 1 refused (the guest gets #GP).

    Reserved bits 5:2 -> refuse, nothing stored.  Otherwise ``msr_val = data``
    first; ENABLED clear -> clear the completion queue and the gfn hash;
    else resolve the area (outside guest RAM -> refuse, but ``msr_val``
    already says enabled: the VM is left half-enabled with a stale area
    cache -- fixed in 2025-26 by 923ca078f08c "Don't leave APF half-enabled
    on bad APF data GPA"), remember SEND_ALWAYS, queue a wake-all so every
    waiting guest task retries (how migration restarts waiters, v3).
    Simplification: clearing the queue may wait for a running worker
    (cancel_work_sync), hence a generator.
    """
    if data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS:
        return 1
    apf = vcpu.arch.apf
    apf.msr_val = data
    if not data & KVM_ASYNC_PF_ENABLED:
        yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
        x86.kvm_async_pf_hash_reset(vcpu)
        return 0
    if kvm_gfn_to_hva_cache_init(vcpu.kvm, apf.data, data & ~0x3F & abi.U64):
        return 1
    apf.send_user_only = not data & KVM_ASYNC_PF_SEND_ALWAYS
    async_pf.kvm_async_pf_wakeup_all(vcpu)
    return 0


def msr_handlers(spec: abi.Generation) -> dict:
    """The async PF cases of this kernel's kvm_set_msr_common switch."""
    return {spec.msr_async_pf_en: kvm_pv_enable_async_pf}


def msr_read_handlers(spec: abi.Generation) -> dict:
    """The async PF case of 2.6.38's kvm_get_msr_common: MSR_KVM_ASYNC_PF_EN reads back ``msr_val``."""
    return {spec.msr_async_pf_en: lambda vcpu: (0, vcpu.arch.apf.msr_val)}


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_reset", generations="legacy")
def kvm_arch_vcpu_reset(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """INIT/RESET: APF off, queue cleared, hash reset, no synthetic halt, no pending events.

    Simplification: only the state the protocol touches is reset; the pending
    exception and RUNNABLE are the VMM's part of the reset, done here too
    (:func:`asyncpf.host.x86.reset_events`): v2.6.38's function keeps a queued
    exception, which the VMM's KVM_SET_VCPU_EVENTS then drops.
    """
    apf = vcpu.arch.apf
    apf.msr_val = 0
    yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
    x86.kvm_async_pf_hash_reset(vcpu)
    apf.halted = False
    x86.reset_events(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_runnable", generations="legacy")
def kvm_arch_vcpu_runnable(vcpu: "KvmVcpu") -> bool:
    """Whether a blocked vcpu should wake: RUNNABLE and not APF-halted, a completion on ``done``, or an interrupt.

    Simplification: no NMI or SIPI; any pending vector counts (kvm_cpu_has_interrupt also weighs it
    against the one in service).
    """
    arch = vcpu.arch
    return ((arch.mp_state == x86.KVM_MP_STATE_RUNNABLE and not arch.apf.halted)
            or bool(vcpu.async_pf.done)
            or (x86.kvm_arch_interrupt_allowed(vcpu) and bool(vcpu.irr)))


@mirrors("arch/x86/kvm/x86.c", "__vcpu_run", generations="legacy")
def __vcpu_run(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """The vcpu thread's loop: enter while runnable, else block; check completions after every round.

    Enter only if RUNNABLE and not APF-halted, else kvm_vcpu_block and, on
    UNHALT, HALTED -> RUNNABLE and ``apf.halted = false``; after every round
    kvm_check_async_pf_completion.
    Simplification: no signals, no userspace exits; a reset request is served here.
    """
    vcpu.account("host")
    while not vcpu.stopped:
        yield from vcpu_mod.serve_reset(vcpu)
        arch = vcpu.arch
        if arch.mp_state == x86.KVM_MP_STATE_RUNNABLE and not arch.apf.halted:
            yield from vcpu_enter_guest(vcpu)
        elif (yield from vcpu_mod.block_until_unhalt(vcpu)):
            arch.apf.halted = False
        if vcpu_mod.triple_fault(vcpu):
            break
        yield from async_pf.kvm_check_async_pf_completion(vcpu)
    vcpu_mod.vcpu_exit_thread(vcpu)


@mirrors("arch/x86/kvm/x86.c", "vcpu_enter_guest", generations="legacy")
def vcpu_enter_guest(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """One entry: KVM_REQ_APF_HALT makes the synthetic halt instead; otherwise inject, run, handle the exit."""
    if x86.kvm_check_request(vcpu, x86.KVM_REQ_APF_HALT):
        vcpu.arch.apf.halted = True
        vcpu.stat["apf_halts"] += 1
        return
    yield from vcpu_mod.enter_guest_mode(vcpu)
