"""x86 side of async PF: arch hooks, token, gfn hash, MSR, exception queueing.

Mirrors ``arch/x86/kvm/x86.c`` and ``mmu.c`` of the seed series (v2, [V2-08])
and of 2.6.38 ([M-6ADB], [M-7C90]).  Generic code (``async_pf.py``) calls the
``kvm_arch_*`` hooks here; what differs between generations is read from
``vcpu.kvm.gen`` (see ``asyncpf/abi.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

import numpy as np

from .. import abi
from ..abi import (
    KVM_ASYNC_PF_ENABLED,
    KVM_ASYNC_PF_SEND_ALWAYS,
    KVM_PV_REASON_PAGE_NOT_PRESENT,
    KVM_PV_REASON_PAGE_READY,
)
from ..mirrors import mirrors
from . import async_pf, mmu
from .kvm_main import (
    GfnToHvaCache,
    kvm_gfn_to_hva_cache_init,
    kvm_write_guest_cached,
    read_guest_bytes,
    write_guest_bytes,
)

if TYPE_CHECKING:
    from .async_pf import KvmAsyncPf
    from .vcpu import KvmVcpu

DF_VECTOR, GP_VECTOR, PF_VECTOR = 8, 13, 14
EXCEPTION_NAMES = {6: "#UD", DF_VECTOR: "#DF", GP_VECTOR: "#GP", PF_VECTOR: "#PF"}
_CONTRIBUTORY = {0, 10, 11, 12, 13}       # #DE #TS #NP #SS #GP

KVM_REQ_TRIPLE_FAULT = 1 << 4
KVM_REQ_UNHALT = 1 << 10
KVM_REQ_APF_HALT = 1 << 12                # 2.6.38: generic request bit 12 [M-AF58]

KVM_MP_STATE_RUNNABLE = "RUNNABLE"
KVM_MP_STATE_HALTED = "HALTED"

GFN_SLOT_EMPTY = abi.U64                  # ~0 marks a free slot of apf.gfns
GOLDEN_RATIO_PRIME_32 = 0x9E370001        # hash_32() of the 2.6.3x kernels


@dataclass
class KvmQueuedException:
    """``vcpu->arch.exception``: one exception waiting to be delivered at entry."""

    pending: bool = False
    nr: int = 0
    has_error_code: bool = False
    error_code: int = 0
    reinject: bool = False


@dataclass
class KvmApf:
    """``vcpu->arch.apf`` (2.6.38); ``id`` is the seed's ``async_pf_id``."""

    halted: bool = False
    gfns: np.ndarray = field(default_factory=lambda: np.full(64, GFN_SLOT_EMPTY, dtype=np.uint64))
    data: GfnToHvaCache = field(default_factory=GfnToHvaCache)
    msr_val: int = 0
    id: int = 0
    send_user_only: bool = False


@dataclass
class KvmVcpuArch:
    """The slice of ``struct kvm_vcpu_arch`` the protocol touches, plus guest-visible registers."""

    apf: KvmApf = field(default_factory=KvmApf)
    exception: KvmQueuedException = field(default_factory=KvmQueuedException)
    mp_state: str = KVM_MP_STATE_RUNNABLE
    cr2: int = 0
    cpl: int = 3                     # guest privilege level (the guest model sets it)
    rflags_if: bool = True           # guest IF
    interrupt_shadow: bool = False   # STI / MOV SS blocking
    nmi_injected: bool = False
    interrupt_injected: int | None = None
    cpuid_features: int = 0          # CPUID 0x40000001 EAX as exposed to the guest


# --- requests, exceptions, interrupts -------------------------------------------------

def kvm_make_request(vcpu: "KvmVcpu", req: int) -> None:
    """Mirrors include/linux/kvm_host.h:kvm_make_request: set a bit in vcpu->requests."""
    vcpu.requests |= req


def kvm_check_request(vcpu: "KvmVcpu", req: int) -> bool:
    """Mirrors include/linux/kvm_host.h:kvm_check_request: test and clear a request bit."""
    if vcpu.requests & req:
        vcpu.requests &= ~req
        return True
    return False


@mirrors("arch/x86/kvm/x86.h", "kvm_event_needs_reinjection")
def kvm_event_needs_reinjection(vcpu: "KvmVcpu") -> bool:
    """True while an event whose delivery was cut short by an exit must be delivered again.

    Mirrors: arch/x86/kvm/x86.h:kvm_event_needs_reinjection (2.6.3x):
    exception.pending || interrupt.pending || nmi_injected.
    Simplification: any pending exception counts (queued exceptions are delivered at the next entry).
    """
    arch = vcpu.arch
    return arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_interrupt_allowed")
def kvm_arch_interrupt_allowed(vcpu: "KvmVcpu") -> bool:
    """Interrupts can be taken now: RFLAGS.IF set and no STI/MOV-SS shadow.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_interrupt_allowed -> vmx_interrupt_allowed (2.6.38).
    Simplification: no nested run pending.
    """
    return vcpu.arch.rflags_if and not vcpu.arch.interrupt_shadow


def _exception_class(nr: int) -> str:
    if nr == PF_VECTOR:
        return "pf"
    return "contributory" if nr in _CONTRIBUTORY else "benign"


@mirrors("arch/x86/kvm/x86.c", "kvm_multiple_exception")
def kvm_multiple_exception(vcpu: "KvmVcpu", nr: int, has_error: bool, error_code: int, reinject: bool = False) -> None:
    """Queue exception ``nr``; combine with one already pending as the SDM says.

    Mirrors: arch/x86/kvm/x86.c:kvm_multiple_exception (2.6.3x): nothing
    pending -> queue; #DF pending -> triple fault; #PF then #PF (or a
    contributory after #PF, or two contributory) -> #DF with error code 0;
    otherwise the new one replaces the old, in the hope that re-executing the
    instruction regenerates it.  This is why two APF #PFs in one entry kill
    the guest (the 2017 #DF fixes, protocol.md §6).
    Simplification: no nested (L2) exits.
    """
    exc = vcpu.arch.exception
    if not exc.pending:
        exc.pending, exc.nr, exc.has_error_code, exc.error_code, exc.reinject = True, nr, has_error, error_code, reinject
        return
    if exc.nr == DF_VECTOR:
        kvm_make_request(vcpu, KVM_REQ_TRIPLE_FAULT)
        vcpu.stat["triple_faults"] += 1
        return
    c1, c2 = _exception_class(exc.nr), _exception_class(nr)
    if (c1 == "contributory" and c2 == "contributory") or (c1 == "pf" and c2 != "benign"):
        exc.nr, exc.has_error_code, exc.error_code, exc.reinject = DF_VECTOR, True, 0, False
        vcpu.stat["double_faults"] += 1
    else:
        exc.nr, exc.has_error_code, exc.error_code, exc.reinject = nr, has_error, error_code, reinject


@mirrors("arch/x86/kvm/x86.c", "kvm_inject_page_fault")
def kvm_inject_page_fault(vcpu: "KvmVcpu", address: int, error_code: int) -> None:
    """Queue a #PF: CR2 := address now, the exception is delivered at the next entry.

    Mirrors: arch/x86/kvm/x86.c:kvm_inject_page_fault (2.6.38, vcpu->arch.fault).
    Simplification: no pf_guest statistics.
    """
    vcpu.arch.cr2 = address & abi.U64
    kvm_multiple_exception(vcpu, PF_VECTOR, True, error_code)


def kvm_queue_exception(vcpu: "KvmVcpu", nr: int) -> None:
    """Mirrors arch/x86/kvm/x86.c:kvm_queue_exception(_e): #GP carries error code 0."""
    kvm_multiple_exception(vcpu, nr, nr in (DF_VECTOR, GP_VECTOR, PF_VECTOR), 0)


# --- token and the per-vcpu gfn hash ---------------------------------------------------

def hash_32(val: int, bits: int) -> int:
    """Mirrors include/linux/hash.h:hash_32 of the 2.6.3x kernels (multiplicative hash)."""
    return ((val * GOLDEN_RATIO_PRIME_32) & abi.U32) >> (32 - bits)


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_hash_fn", generations="legacy")
def kvm_async_pf_hash_fn(gfn: int) -> int:
    """Home slot of ``gfn``: hash_32(gfn & 0xffffffff, order_base_2(64)).

    Mirrors: arch/x86/kvm/x86.c:kvm_async_pf_hash_fn (2.6.38).
    Simplification: none.
    """
    return hash_32(gfn & abi.U32, 6)


def kvm_async_pf_next_probe(key: int) -> int:
    """Mirrors arch/x86/kvm/x86.c:kvm_async_pf_next_probe: linear probing, wrapping at 64."""
    return (key + 1) & 63


@mirrors("arch/x86/kvm/x86.c", "kvm_add_async_pf_gfn", generations="legacy")
def kvm_add_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> None:
    """Record ``gfn`` as having an outstanding APF: first free slot from its home.

    Mirrors: arch/x86/kvm/x86.c:kvm_add_async_pf_gfn (2.6.38).
    Simplification: none (the table never fills: at most 64 are outstanding).
    """
    gfns = vcpu.arch.apf.gfns
    key = kvm_async_pf_hash_fn(gfn)
    while gfns[key] != GFN_SLOT_EMPTY:
        key = kvm_async_pf_next_probe(key)
    gfns[key] = gfn


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_gfn_slot", generations="legacy")
def kvm_async_pf_gfn_slot(vcpu: "KvmVcpu", gfn: int) -> int:
    """The slot holding ``gfn``, or where the probe stopped (an empty slot).

    Mirrors: arch/x86/kvm/x86.c:kvm_async_pf_gfn_slot with the fixed stop
    condition ``slot != gfn && slot != ~0`` (protocol.md §3.7; the 2010 text
    read ``||`` and so never stopped early).  ``vcpu.kvm.bugs`` may switch the
    deletion mutant on (see kvm_del_async_pf_gfn).
    Simplification: none.
    """
    gfns = vcpu.arch.apf.gfns
    key = kvm_async_pf_hash_fn(gfn)
    for _ in range(64):
        if gfns[key] == gfn or gfns[key] == GFN_SLOT_EMPTY:
            break
        key = kvm_async_pf_next_probe(key)
    return key


@mirrors("arch/x86/kvm/x86.c", "kvm_find_async_pf_gfn", generations="legacy")
def kvm_find_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> bool:
    """Whether an APF for ``gfn`` is outstanding on this vcpu (the seed has no hash: False).

    Mirrors: arch/x86/kvm/x86.c:kvm_find_async_pf_gfn (2.6.38).
    Simplification: none.
    """
    if not vcpu.kvm.gen.apf_halt:
        return False
    return int(vcpu.arch.apf.gfns[kvm_async_pf_gfn_slot(vcpu, gfn)]) == gfn


@mirrors("arch/x86/kvm/x86.c", "kvm_del_async_pf_gfn", generations="legacy")
def kvm_del_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> None:
    """Remove ``gfn`` and close the gap by backward-shift deletion.

    Mirrors: arch/x86/kvm/x86.c:kvm_del_async_pf_gfn (2.6.38): walk on from
    the hole i; an entry j whose home slot k is not cyclically in (i, j]
    moves into the hole, which moves to j; stop at an empty slot.
    Simplification: a missing gfn is ignored (5.8 WARNs).  The historical
    mutant "just empty the slot" is ``vcpu.kvm.bugs["hash_delete_no_shift"]``.
    """
    gfns = vcpu.arch.apf.gfns
    i = j = kvm_async_pf_gfn_slot(vcpu, gfn)
    if gfns[i] != gfn:
        return
    if vcpu.kvm.bugs.get("hash_delete_no_shift"):
        gfns[i] = GFN_SLOT_EMPTY
        return
    while True:
        gfns[i] = GFN_SLOT_EMPTY
        while True:
            j = kvm_async_pf_next_probe(j)
            if gfns[j] == GFN_SLOT_EMPTY:
                return
            k = kvm_async_pf_hash_fn(int(gfns[j]))
            # keep j where it is if its home k lies cyclically in (i, j]
            if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
                continue
            break
        gfns[i] = gfns[j]
        i = j


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_hash_reset", generations="legacy")
def kvm_async_pf_hash_reset(vcpu: "KvmVcpu") -> None:
    """Mark every slot free (~0).

    Mirrors: arch/x86/kvm/x86.c:kvm_async_pf_hash_reset (2.6.38).
    Simplification: none.
    """
    vcpu.arch.apf.gfns[:] = GFN_SLOT_EMPTY


@mirrors("arch/x86/kvm/mmu.c", "kvm_arch_setup_async_pf")
def kvm_arch_setup_async_pf(vcpu: "KvmVcpu", gva: int, gfn: int) -> bool:
    """Build the token ``(id++ << 12) | vcpu_id`` and hand over to kvm_setup_async_pf.

    Mirrors: arch/x86/kvm/mmu.c:kvm_arch_setup_async_pf (seed: async_pf_id
    [V2-08]; 2.6.38: apf.id and arch.gfn [M-7C90]).
    Simplification: u32 wrap of the token is kept; the 2022 non-zero fix is not in these generations.
    """
    apf = vcpu.arch.apf
    token = abi.make_token(apf.id, vcpu.vcpu_id)
    apf.id = (apf.id + 1) & (abi.U32 >> abi.TOKEN_VCPU_BITS)
    return async_pf.kvm_setup_async_pf(vcpu, gva, gfn, async_pf.KvmArchAsyncPf(token=token, gfn=gfn))


@mirrors("arch/x86/kvm/mmu.c", "can_do_async_pf")
def can_do_async_pf(vcpu: "KvmVcpu") -> bool:
    """May this fault go async at all?  The conditions follow the generation.

    Mirrors: arch/x86/kvm/mmu.c:can_do_async_pf.  Seed [V2-08]: the guest
    registered an area, no event needs reinjection, CPL != 0.  2.6.38
    [M-7C90]: in-kernel irqchip, no event needs reinjection, interrupts
    allowed (CPL and the MSR are checked later, in not_present).
    Simplification: the irqchip is always in-kernel.  The historical mutant
    that skips the reinjection check is ``kvm.bugs["no_reinjection_check"]``.
    """
    if not vcpu.kvm.bugs.get("no_reinjection_check") and kvm_event_needs_reinjection(vcpu):
        return False
    if vcpu.kvm.gen.not_present_at == "entry":
        return bool(vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED) and vcpu.arch.cpl != 0
    return kvm_arch_interrupt_allowed(vcpu)


@mirrors("arch/x86/kvm/x86.c", "apf_put_user", generations="legacy")
def apf_put_user(vcpu: "KvmVcpu", val: int) -> int:
    """Write the reason word into the guest's area; 0 or -EFAULT.

    Mirrors: arch/x86/kvm/x86.c:apf_put_user (2.6.38): kvm_write_guest_cached
    of a u32 at the registered gpa (the seed wrote with put_user through a
    cached user pointer).
    Simplification: see kvm_write_guest_cached.
    """
    return kvm_write_guest_cached(vcpu.kvm, vcpu.arch.apf.data, val.to_bytes(4, "little"))


# --- events to the guest ------------------------------------------------------------

def _inject(vcpu: "KvmVcpu", reason: int, token: int) -> bool:
    if apf_put_user(vcpu, reason):
        return False
    kvm_inject_page_fault(vcpu, token, 0)
    vcpu.stat["apf_injected"] += 1
    return True


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_not_present", generations="legacy")
def kvm_arch_async_page_not_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Tell the guest the page is not present, or halt the vcpu if it cannot be told.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_async_page_not_present (2.6.38):
    trace, add the gfn to the hash; if APF is off, or the vcpu is at CPL0 and
    the guest did not ask for SEND_ALWAYS -> KVM_REQ_APF_HALT (the v7 "halt
    vcpu for non-PV guests" mode); else write reason=PAGE_NOT_PRESENT and
    queue #PF with CR2 = token.
    Simplification: none beyond apf_put_user's.  The mutant that injects at
    CPL0 without SEND_ALWAYS is ``kvm.bugs["cpl0_without_send_always"]``;
    ``kvm.bugs["ready_without_not_present"]`` never tells the guest, so its
    page-ready later arrives for a not-present it never saw (bugzilla 208081).
    """
    kvm = vcpu.kvm
    kvm.env.trace("kvm_async_pf_not_present", ctx=mmu.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    kvm_add_async_pf_gfn(vcpu, work.arch.gfn)
    apf = vcpu.arch.apf
    cpl0_refused = apf.send_user_only and vcpu.arch.cpl == 0 and not kvm.bugs.get("cpl0_without_send_always")
    untold = kvm.bugs.get("ready_without_not_present")  # the work stays queued, the guest is never told
    if not apf.msr_val & KVM_ASYNC_PF_ENABLED or cpl0_refused or untold:
        kvm_make_request(vcpu, KVM_REQ_APF_HALT)
    elif _inject(vcpu, KVM_PV_REASON_PAGE_NOT_PRESENT, work.arch.token):
        work.notpresent_injected = True
        vcpu.stat["apf_not_present_injected"] += 1


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_present", generations="legacy")
def kvm_arch_async_page_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """The page is back: drop its gfn from the hash and send page-ready (token ~0 = wake all).

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_async_page_present (2.6.38): trace
    ready (with the token as it stands: 0 for a wake-all item), a broadcast
    item (bad_page) gets token ~0, otherwise delete the gfn from the hash; if
    APF is enabled, write reason=PAGE_READY and queue #PF with CR2 = token.
    Simplification: none beyond apf_put_user's.
    """
    kvm = vcpu.kvm
    kvm.env.trace("kvm_async_pf_ready", ctx=mmu.trace_ctx(vcpu), token=work.arch.token, gva=work.gva)
    if work.wakeup_all:
        work.arch.token = abi.BROADCAST_TOKEN
    else:
        kvm_del_async_pf_gfn(vcpu, work.arch.gfn)
    if vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        _inject(vcpu, KVM_PV_REASON_PAGE_READY, work.arch.token)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_async_page_ready", generations="legacy")
def kvm_arch_async_page_ready(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> Generator[Any, Any, None]:
    """Prefault the page that just arrived, so the guest's retry does not exit again.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_async_page_ready (2.6.38, v7 "Retry
    fault before vmentry" [V7-03]): only with a direct-map (TDP) MMU and a
    real page; run the fault handler with no_apf so it cannot start another APF.
    Simplification: the MMU is always direct-map (EPT).
    """
    if work.wakeup_all:
        return
    yield from mmu.tdp_page_fault(vcpu, work.gva, 0, no_apf=True)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_can_inject_async_page_present")
def kvm_arch_can_inject_async_page_present(vcpu: "KvmVcpu") -> bool:
    """May a completion be consumed now?  (With APF off it is consumed silently.)

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_can_inject_async_page_present.
    Seed [V2-08]: no reinjection and interrupts allowed.  2.6.38 [M-6ADB]:
    APF disabled -> true; else the same two conditions.
    Simplification: none.
    """
    if vcpu.kvm.gen.apf_halt and not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return True
    return not kvm_event_needs_reinjection(vcpu) and kvm_arch_interrupt_allowed(vcpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_inject_async_page_not_present", generations="seed")
def kvm_arch_inject_async_page_not_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Seed: write reason=PAGE_NOT_PRESENT, queue #PF (CR2 = token), trace kvm_send_async_pf.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_inject_async_page_not_present (v2 [V2-08]).
    Simplification: with APF disabled meanwhile nothing is injected; v2 would
    have injected a #PF with a stale reason.
    """
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return
    if _inject(vcpu, KVM_PV_REASON_PAGE_NOT_PRESENT, work.arch.token):
        work.notpresent_injected = True
        vcpu.stat["apf_not_present_injected"] += 1
    vcpu.kvm.env.trace("kvm_send_async_pf", ctx=mmu.trace_ctx(vcpu), token=work.arch.token,
                       gva=work.gva, reason=KVM_PV_REASON_PAGE_NOT_PRESENT)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_inject_async_page_present", generations="seed")
def kvm_arch_inject_async_page_present(vcpu: "KvmVcpu", work: "KvmAsyncPf") -> None:
    """Seed: write reason=PAGE_READY, queue #PF (CR2 = token), trace kvm_send_async_pf.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_inject_async_page_present (v2 [V2-08]).
    Simplification: as for not-present.
    """
    if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:
        return
    _inject(vcpu, KVM_PV_REASON_PAGE_READY, work.arch.token)
    vcpu.kvm.env.trace("kvm_send_async_pf", ctx=mmu.trace_ctx(vcpu), token=work.arch.token,
                       gva=work.gva, reason=KVM_PV_REASON_PAGE_READY)


# --- MSR_KVM_ASYNC_PF_EN, reset -------------------------------------------------------

@mirrors("arch/x86/kvm/x86.c", "kvm_pv_enable_async_pf")
def kvm_pv_enable_async_pf(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """Handle a write to MSR_KVM_ASYNC_PF_EN: 0 accepted, 1 refused (the guest gets #GP).

    Mirrors: arch/x86/kvm/x86.c:kvm_pv_enable_async_pf (2.6.38; the seed
    stored a user pointer instead of a gfn_to_hva cache [V2-02]): reserved
    bits -> refuse; ENABLED clear -> clear the completion queue and the gfn
    hash; else resolve the area (outside guest RAM -> refuse), remember
    SEND_ALWAYS, and queue a wake-all so every waiting guest task retries
    (this is how migration "restarts all guest processes" [V3-00]).
    Simplification: every check runs before any state changes, so a refused
    write changes nothing -- the kernel's 2025-26 fix "Don't leave APF
    half-enabled on bad APF data GPA"; 2.6.38 stored msr_val first.  Clearing
    the queue may wait for a running worker (cancel_work_sync), hence a generator.
    """
    gen = vcpu.kvm.gen
    if data < 0 or data > abi.U64 or data & gen.msr_reserved_mask:
        return 1
    apf = vcpu.arch.apf
    if not data & KVM_ASYNC_PF_ENABLED:
        apf.msr_val = data
        yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
        kvm_async_pf_hash_reset(vcpu)
        return 0
    gpa = data & ~0x3F & abi.U64
    cache = GfnToHvaCache()
    if kvm_gfn_to_hva_cache_init(vcpu.kvm, cache, gpa):
        return 1
    apf.msr_val = data
    apf.data = cache
    apf.send_user_only = not data & KVM_ASYNC_PF_SEND_ALWAYS
    if gen.broadcast_token is not None:
        async_pf.kvm_async_pf_wakeup_all(vcpu)
    return 0


@mirrors("arch/x86/kvm/x86.c", "kvm_set_msr_common")
def kvm_set_msr_common(vcpu: "KvmVcpu", msr: int, data: int) -> Generator[Any, Any, int]:
    """Route a guest WRMSR; 1 means the guest gets #GP (unknown MSR or refused value).

    Mirrors: arch/x86/kvm/x86.c:kvm_set_msr_common (the async PF case only).
    Simplification: every other MSR is unknown here and refused.
    """
    if msr == vcpu.kvm.gen.msr_async_pf_en:
        r = yield from kvm_pv_enable_async_pf(vcpu, data)
    else:
        r = 1
    vcpu.kvm.env.trace("kvm_msr", ctx=mmu.trace_ctx(vcpu), write=True, ecx=msr, data=data & abi.U64, exception=bool(r))
    return r


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_reset")
def kvm_arch_vcpu_reset(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """INIT/RESET: APF off, queue cleared, hash reset, no synthetic halt, no pending events.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_vcpu_reset (2.6.38): msr_val = 0,
    kvm_clear_async_pf_completion_queue, kvm_async_pf_hash_reset, apf.halted = false.
    Simplification: only the state the protocol touches is reset.
    """
    apf = vcpu.arch.apf
    apf.msr_val = 0
    yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
    kvm_async_pf_hash_reset(vcpu)
    apf.halted = False
    vcpu.arch.exception = KvmQueuedException()
    vcpu.arch.mp_state = KVM_MP_STATE_RUNNABLE


def read_reason(vcpu: "KvmVcpu") -> int:
    """The reason word as the guest would read it from its registered area."""
    return int.from_bytes(read_guest_bytes(vcpu.kvm, vcpu.arch.apf.data.gpa, 4), "little")


def write_reason(vcpu: "KvmVcpu", value: int) -> None:
    """The guest's own write of the reason word (kvm_read_and_reset_pf_reason resets it)."""
    write_guest_bytes(vcpu.kvm, vcpu.arch.apf.data.gpa, value.to_bytes(4, "little"))



@mirrors("arch/x86/kvm/x86.c", "kvm_arch_destroy_vm")
def kvm_arch_destroy_vm(kvm: Any) -> Generator[Any, Any, None]:
    """Tear the VM down: stop every vcpu and clear its async PF queue before the MMU goes.

    Mirrors: arch/x86/kvm/x86.c:kvm_arch_destroy_vm -> kvm_free_vcpus (2.6.38,
    the seed added kvm_clear_async_pf_completion_queue there [V2-08]).
    Simplification: the vcpu threads are stopped first (the VMM has exited them).
    """
    for vcpu in kvm.vcpus:
        vcpu.stopped = True
        vcpu.kick()
    for vcpu in kvm.vcpus:
        yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)
