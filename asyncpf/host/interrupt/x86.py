"""The x86 async PF hooks, MSRs and run loop of the interrupt era: ``arch/x86/kvm/x86.c@v6.18``.

Not-present is still a #PF with CR2 = token (``flags`` written first), only
from guest user mode unless the guest asked for SEND_ALWAYS.  Page-ready is
a fixed-mode interrupt on the vector the guest wrote to MSR_KVM_ASYNC_PF_INT,
with the token in the area's ``token`` word; the host sends the next one only
once the guest has cleared that word (the slot is free), and the guest's
write of 1 to MSR_KVM_ASYNC_PF_ACK makes it look again at once.  Completions
are no longer polled by the run loop: a worker that finds ``done`` empty raises
KVM_REQ_APF_READY (and kicks the vcpu unless a page-ready is still pending).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ... import abi
from ...abi import (
    KVM_ASYNC_PF_DELIVERY_AS_INT,
    KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
    KVM_ASYNC_PF_ENABLED,
    KVM_ASYNC_PF_SEND_ALWAYS,
    KVM_ASYNC_PF_VEC_MASK,
    KVM_FEATURE_ASYNC_PF,
    KVM_FEATURE_ASYNC_PF_INT,
    KVM_FEATURE_ASYNC_PF_VMEXIT,
    KVM_PV_REASON_PAGE_NOT_PRESENT,
)
from ...mirrors import mirrors
from .. import vcpu as vcpu_mod
from .. import x86
from ..kvm_main import (
    kvm_gfn_to_hva_cache_init,
    kvm_read_guest_offset_cached,
    kvm_write_guest_cached,
    kvm_write_guest_offset_cached,
)
from . import async_pf, lapic, mmu

if TYPE_CHECKING:
    from ..async_pf import KvmAsyncPf
    from ..vcpu import KvmVcpu

KVM_REQ_APF_READY = lapic.KVM_REQ_APF_READY
EN_RESERVED_BITS = 0x30        # bits 5:4 of MSR_KVM_ASYNC_PF_EN
TOKEN_OFFSET = 4               # offsetof(struct kvm_vcpu_pv_apf_data, token)


# --- the shared area -------------------------------------------------------------------------

GOLDEN_RATIO_32 = 0x61C88647   # include/linux/hash.h since v4.7 (2.6.38 multiplied by 0x9e370001)


@mirrors("include/linux/hash.h", "hash_32", generations="interrupt")
def hash_32(val: int, bits: int) -> int:
    """The top ``bits`` of the 32-bit product with GOLDEN_RATIO_32 (x86 has no arch-specific __hash_32)."""
    return ((val * GOLDEN_RATIO_32) & abi.U32) >> (32 - bits)


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_hash_fn", generations="interrupt")
def kvm_async_pf_hash_fn(gfn: int) -> int:
    """Home slot of ``gfn`` in the 64-slot table: hash_32(gfn & 0xffffffff, order_base_2(64)), as in 2.6.38."""
    return hash_32(gfn & abi.U32, 6)


@mirrors("arch/x86/kvm/x86.c", "apf_put_user_notpresent", generations="interrupt")
def apf_put_user_notpresent(vcpu: "KvmVcpu") -> int:
    """Write ``flags`` = PAGE_NOT_PRESENT (bytes 0-3 of the area); 0 or -EFAULT."""
    return kvm_write_guest_cached(vcpu.kvm, vcpu.arch.apf.data, KVM_PV_REASON_PAGE_NOT_PRESENT.to_bytes(4, "little"))


@mirrors("arch/x86/kvm/x86.c", "apf_put_user_ready", generations="interrupt")
def apf_put_user_ready(vcpu: "KvmVcpu", token: int) -> int:
    """Write the token into the area's ``token`` word (bytes 4-7); 0 or -EFAULT."""
    return kvm_write_guest_offset_cached(vcpu.kvm, vcpu.arch.apf.data, (token & abi.U32).to_bytes(4, "little"),
                                         TOKEN_OFFSET)


@mirrors("arch/x86/kvm/x86.c", "apf_pageready_slot_free", generations="interrupt")
def apf_pageready_slot_free(vcpu: "KvmVcpu") -> bool:
    """The guest has consumed the last page-ready: its ``token`` word reads 0 (an unreadable area: not free)."""
    raw = kvm_read_guest_offset_cached(vcpu.kvm, vcpu.arch.apf.data, TOKEN_OFFSET, 4)
    return raw is not None and int.from_bytes(raw, "little") == 0


# --- may we, and how ----------------------------------------------------------------------------

@mirrors("arch/x86/kvm/x86.h", "kvm_pv_async_pf_enabled", generations="interrupt")
def kvm_pv_async_pf_enabled(vcpu: "KvmVcpu") -> bool:
    """Async PF is on only when both ENABLED and DELIVERY_AS_INT are set in MSR_KVM_ASYNC_PF_EN."""
    mask = KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT
    return vcpu.arch.apf.msr_en_val & mask == mask


@mirrors("arch/x86/kvm/x86.c", "kvm_can_deliver_async_pf", generations="interrupt")
def kvm_can_deliver_async_pf(vcpu: "KvmVcpu") -> bool:
    """May not-present be sent as a #PF now?  Enabled, and user mode unless SEND_ALWAYS.

    Simplification: no L2 (guest mode), guest state never protected (no
    SEV-ES), paging always on (CR0.PG = 1, so the 2022 real-mode rule passes).
    """
    if not kvm_pv_async_pf_enabled(vcpu):
        return False
    if not vcpu.arch.apf.send_always and vcpu.arch.cpl == 0:
        return False
    return True


@mirrors("arch/x86/kvm/x86.c", "kvm_can_do_async_pf", generations="interrupt")
def kvm_can_do_async_pf(vcpu: "KvmVcpu") -> bool:
    """May this fault go async at all?  In-kernel LAPIC, no event to reinject, no pending exception, IF=1.

    Simplification: HLT always exits (no KVM_X86_DISABLE_EXITS_HLT), so the
    hlt-in-guest rule never applies; the model's pending exception is both
    "needs reinjection" and "kvm_is_exception_pending".
    """
    if not vcpu.kvm.irqchip_in_kernel or x86.kvm_event_needs_reinjection(vcpu) or vcpu.arch.exception.pending:
        return False
    return x86.kvm_arch_interrupt_allowed(vcpu)


# --- the arch hooks of async_pf.c ----------------------------------------------------------------

@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_not_present", generations="interrupt")
def kvm_arch_async_page_not_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> bool:
    """Tell the guest (flags, then #PF with CR2 = token) and return True; else request the APF halt, False.

    Traced and the gfn hashed first, whatever follows.
    """
    vcpu.kvm.env.trace("kvm_async_pf_not_present", ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    x86.kvm_add_async_pf_gfn(vcpu, work.arch.gfn)
    if kvm_can_deliver_async_pf(vcpu) and not apf_put_user_notpresent(vcpu):
        x86.kvm_inject_page_fault(vcpu, work.arch.token, 0)
        vcpu.stat["apf_injected"] += 1
        vcpu.stat["apf_not_present_injected"] += 1
        return True
    x86.kvm_make_request(vcpu, x86.KVM_REQ_APF_HALT)
    return False


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_present", generations="interrupt")
def kvm_arch_async_page_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Page-ready: unhash the gfn (or make the token ~0 for a wake-all), trace, and raise the interrupt.

    Only for a wake-all or an item whose not-present was injected (2020,
    bugzilla 208081), with async PF enabled and the token written: then
    ``pageready_pending`` and a fixed interrupt on ``apf.vec``.  Always: the
    synthetic halt ends and the vcpu is RUNNABLE.
    """
    if work.wakeup_all:
        work.arch.token = abi.BROADCAST_TOKEN
    else:
        x86.kvm_del_async_pf_gfn(vcpu, work.arch.gfn)
    vcpu.kvm.env.trace("kvm_async_pf_ready", ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    apf = vcpu.arch.apf
    if ((work.wakeup_all or work.notpresent_injected) and kvm_pv_async_pf_enabled(vcpu)
            and not apf_put_user_ready(vcpu, work.arch.token)):
        apf.pageready_pending = True
        vcpu.kvm.twins.kvm_apic_set_irq(vcpu, apf.vec)
        vcpu.stat["apf_page_ready_irqs"] += 1
    apf.halted = False
    vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_present_queued", generations="interrupt")
def kvm_arch_async_page_present_queued(vcpu: "KvmVcpu") -> None:
    """A completion landed on an empty ``done``: ask for KVM_REQ_APF_READY, and kick unless a page-ready is pending.

    Simplification: the model is sequentially consistent, so the 2025 barrier
    fix (Maxim Levitsky, "Fix a semi theoretical bug in
    kvm_arch_async_page_present_queued") changes nothing here.
    """
    x86.kvm_make_request(vcpu, KVM_REQ_APF_READY)
    if not vcpu.arch.apf.pageready_pending:
        vcpu_mod.kvm_vcpu_kick(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_can_dequeue_async_page_present", generations="interrupt")
def kvm_arch_can_dequeue_async_page_present(vcpu: "KvmVcpu") -> bool:
    """May the next completion be consumed?  Always with async PF off; else an enabled LAPIC and a free slot."""
    if not kvm_pv_async_pf_enabled(vcpu):
        return True
    return lapic.kvm_lapic_enabled(vcpu) and apf_pageready_slot_free(vcpu)


# --- MSRs ------------------------------------------------------------------------------------------

def guest_pv_has(vcpu: "KvmVcpu", feature: int) -> bool:
    """arch/x86/kvm/cpuid.h guest_pv_has: without PV-CPUID enforcement every PV feature is allowed."""
    return not vcpu.arch.pv_cpuid_enforce or bool(vcpu.arch.cpuid_features & (1 << feature))


@mirrors("arch/x86/kvm/x86.c", "kvm_pv_enable_async_pf", generations="interrupt")
def kvm_pv_enable_async_pf(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """A write to MSR_KVM_ASYNC_PF_EN: 0 accepted, 1 refused (the guest gets #GP).

    Refused: reserved bits 5:4; DELIVERY_AS_PF_VMEXIT or DELIVERY_AS_INT
    without their CPUID bit (only enforced with PV-CPUID enforcement); any
    non-zero value without an in-kernel LAPIC (0 is accepted and does nothing).
    Then ``msr_en_val = data``; not enabled (ENABLED and DELIVERY_AS_INT) ->
    clear the completion queue and the gfn hash; else resolve the area -- a
    GPA outside guest RAM is refused, but ``msr_en_val`` already holds the
    value: 6.18 leaves APF half-enabled (fixed after 6.18 by 923ca078f08c
    "KVM: x86: Don't leave APF half-enabled on bad APF data GPA") -- remember
    SEND_ALWAYS and DELIVERY_AS_PF_VMEXIT, queue a wake-all.
    """
    if data < 0 or data > abi.U64 or data & EN_RESERVED_BITS:
        return 1
    if not guest_pv_has(vcpu, KVM_FEATURE_ASYNC_PF_VMEXIT) and data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT:
        return 1
    if not guest_pv_has(vcpu, KVM_FEATURE_ASYNC_PF_INT) and data & KVM_ASYNC_PF_DELIVERY_AS_INT:
        return 1
    if not vcpu.kvm.irqchip_in_kernel:
        return 1 if data else 0
    apf = vcpu.arch.apf
    apf.msr_en_val = data
    if not kvm_pv_async_pf_enabled(vcpu):
        yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
        x86.kvm_async_pf_hash_reset(vcpu)
        return 0
    if kvm_gfn_to_hva_cache_init(vcpu.kvm, apf.data, data & ~0x3F & abi.U64):
        return 1
    apf.send_always = bool(data & KVM_ASYNC_PF_SEND_ALWAYS)
    apf.delivery_as_pf_vmexit = bool(data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT)
    async_pf.kvm_async_pf_wakeup_all(vcpu)
    return 0


@mirrors("arch/x86/kvm/x86.c", "kvm_pv_enable_async_pf_int", generations="interrupt")
def kvm_pv_enable_async_pf_int(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """A write to MSR_KVM_ASYNC_PF_INT: the page-ready vector; bits 63:8 reserved, in-kernel LAPIC required."""
    if data < 0 or data >> 8:
        return 1
    if not vcpu.kvm.irqchip_in_kernel:
        return 1
    vcpu.arch.apf.msr_int_val = data
    vcpu.arch.apf.vec = data & KVM_ASYNC_PF_VEC_MASK
    return 0
    yield


def msr_async_pf_ack(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """The MSR_KVM_ASYNC_PF_ACK case of kvm_set_msr_common: bit 0 -> no page-ready pending, look at ``done`` now.

    Any other value is accepted and ignored.
    """
    if data & 0x1:
        vcpu.arch.apf.pageready_pending = False
        yield from async_pf.kvm_check_async_pf_completion(vcpu)
    return 0


def _gated(feature: int, handler: Any) -> Any:
    """A case of kvm_set_msr_common: refused (1) without the PV feature, for the guest (#GP) and the VMM alike.

    As v6.18; since 5bb9ac186512 ("KVM: x86: Return "unsupported" instead of
    "invalid" on access to unsupported PV MSR", after v6.18, for stable) the
    case reports unsupported, and kvm_do_msr_access then accepts the VMM's 0.
    """
    def case(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
        if not guest_pv_has(vcpu, feature):
            return 1
        return (yield from handler(vcpu, data))
    case.__name__ = handler.__name__
    return case


def msr_handlers(spec: abi.Generation) -> dict:
    """The async PF cases of 6.18's kvm_set_msr_common, each gated on its CPUID bit, and the x2APIC SPIV.

    EN needs KVM_FEATURE_ASYNC_PF; INT and ACK need KVM_FEATURE_ASYNC_PF_INT
    (ACK was gated on ASYNC_PF until the 2021 fix of 66570e966dd9).
    Simplification: the model's only LAPIC register write is SPIV (bit 8), as x2APIC MSR 0x80f.
    """
    return {
        spec.msr_async_pf_en: _gated(KVM_FEATURE_ASYNC_PF, kvm_pv_enable_async_pf),
        spec.msr_async_pf_int: _gated(KVM_FEATURE_ASYNC_PF_INT, kvm_pv_enable_async_pf_int),
        spec.msr_async_pf_ack: _gated(KVM_FEATURE_ASYNC_PF_INT, msr_async_pf_ack),
        lapic.X2APIC_MSR_SPIV: lapic.apic_set_spiv,
    }


def msr_read_handlers(spec: abi.Generation) -> dict:
    """The async PF cases of 6.18's kvm_get_msr_common: EN and INT read back what was stored, ACK reads 0.

    Without the PV feature the read is refused (1), for the VMM too, until 5bb9ac186512 (see :func:`_gated`).
    """
    def read(feature: int, value: Any) -> Any:
        return lambda vcpu: (0, value(vcpu)) if guest_pv_has(vcpu, feature) else (1, 0)
    return {
        spec.msr_async_pf_en: read(KVM_FEATURE_ASYNC_PF, lambda v: v.arch.apf.msr_en_val),
        spec.msr_async_pf_int: read(KVM_FEATURE_ASYNC_PF_INT, lambda v: v.arch.apf.msr_int_val),
        spec.msr_async_pf_ack: read(KVM_FEATURE_ASYNC_PF_INT, lambda v: 0),
    }


# --- reset, runnable, the run loop ------------------------------------------------------------------

@mirrors("arch/x86/kvm/x86.c", "kvm_vcpu_reset", generations="interrupt")
def kvm_vcpu_reset(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """INIT/RESET: LAPIC reset, no queued events, both MSRs 0, queue cleared, hash reset, no synthetic halt.

    As 6.18: ``send_always``, ``delivery_as_pf_vmexit``, ``vec`` and
    ``pageready_pending`` are left as they were (the send_always cache was
    dropped in 2026, 7e985021ef2f).
    Simplification: only the state the protocol touches is reset; the LAPIC
    reset empties IRR/ISR but leaves it software-enabled (a real guest
    re-enables it as it boots again); RUNNABLE, the caller's in 6.18 (SIPI or
    the VMM's KVM_SET_MP_STATE), is set here too (reset_events).
    """
    vcpu.irr.clear()
    vcpu.isr.clear()
    x86.reset_events(vcpu)
    apf = vcpu.arch.apf
    apf.msr_en_val = 0
    apf.msr_int_val = 0
    yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
    x86.kvm_async_pf_hash_reset(vcpu)
    apf.halted = False


@mirrors("arch/x86/kvm/x86.c", "kvm_vcpu_running", generations="interrupt")
def kvm_vcpu_running(vcpu: "KvmVcpu") -> bool:
    """RUNNABLE and not in the synthetic APF halt."""
    return vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE and not vcpu.arch.apf.halted


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_runnable", generations="interrupt")
def kvm_arch_vcpu_runnable(vcpu: "KvmVcpu") -> bool:
    """kvm_vcpu_running, or kvm_vcpu_has_events: a completion on ``done``, a pending exception, or an interrupt the guest takes.

    Simplification: no NMI, SMI, SIPI or Hyper-V timers.
    """
    if kvm_vcpu_running(vcpu) or vcpu.async_pf.done or vcpu.arch.exception.pending:
        return True
    return x86.kvm_arch_interrupt_allowed(vcpu) and vcpu_mod.kvm_apic_has_interrupt(vcpu) is not None


@mirrors("arch/x86/kvm/x86.c", "vcpu_run", generations="interrupt")
def vcpu_run(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """The vcpu thread's loop: enter the guest while running, else vcpu_block; completions are not polled here.

    Simplification: no signals, no userspace exits; a reset request is served here.
    """
    vcpu.account("host")
    while not vcpu.stopped:
        yield from vcpu_mod.serve_reset(vcpu)
        if kvm_vcpu_running(vcpu):
            yield from vcpu_enter_guest(vcpu)
        else:
            yield from vcpu_block(vcpu)
        if vcpu_mod.triple_fault(vcpu):
            break
    vcpu_mod.vcpu_exit_thread(vcpu)


@mirrors("arch/x86/kvm/x86.c", "vcpu_block", generations="interrupt")
def vcpu_block(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Block until runnable; then HALTED -> RUNNABLE and, for a RUNNABLE vcpu, the synthetic halt ends.

    Still not runnable after the wait (a VMM stop or reset): back to the
    loop with the state unchanged.
    Simplification: kvm_vcpu_halt's polling is not modelled.
    """
    if not kvm_arch_vcpu_runnable(vcpu):
        yield from vcpu_mod.kvm_vcpu_block(vcpu)
        if not kvm_arch_vcpu_runnable(vcpu):
            return
    x86.kvm_check_request(vcpu, x86.KVM_REQ_UNHALT)  # the 2.6.38 request the shared block still raises
    vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE
    vcpu.arch.apf.halted = False


@mirrors("arch/x86/kvm/x86.c", "vcpu_enter_guest", generations="interrupt")
def vcpu_enter_guest(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """One entry: KVM_REQ_APF_HALT makes the synthetic halt instead; KVM_REQ_APF_READY consumes completions; enter.

    Simplification: only the requests async PF uses are looked at.
    """
    if x86.kvm_check_request(vcpu, x86.KVM_REQ_APF_HALT):
        vcpu.arch.apf.halted = True
        vcpu.stat["apf_halts"] += 1
        return
    if x86.kvm_check_request(vcpu, KVM_REQ_APF_READY):
        yield from async_pf.kvm_check_async_pf_completion(vcpu)
    yield from vcpu_mod.enter_guest_mode(vcpu)


@mirrors("arch/x86/kvm/mmu/mmu.c", "kvm_arch_async_page_ready", generations="interrupt")
def kvm_arch_async_page_ready(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> Generator[Any, Any, None]:
    """Prefault the page that arrived (not for a wake-all item), so the guest's retry does not exit again.

    Simplification: the MMU is always direct-map (TDP), so the direct_map and
    cr3 checks pass; no private memory.
    """
    if work.wakeup_all:
        return
    yield from mmu.kvm_tdp_page_fault(vcpu, work.gva, 0, prefetch=True)
