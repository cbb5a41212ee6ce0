"""x86 side of async PF: arch hooks, token, gfn hash, MSR, exception queueing.

The parts of ``arch/x86/kvm/x86.c`` every modelled generation shares (the
exception queue, interrupt gates, requests, the per-vcpu gfn hash, the
reason-word write, the MSR switch); the hooks that differ live in the
generation packages (``asyncpf.host.seed``, ``asyncpf.host.legacy``) and are
reached through ``kvm.twins``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

import numpy as np

from .. import abi
from ..mirrors import mirrors
from .kvm_main import GfnToHvaCache, kvm_write_guest_cached

if TYPE_CHECKING:
    from .vcpu import KvmVcpu

DF_VECTOR, GP_VECTOR, PF_VECTOR = 8, 13, 14
EXCEPTION_NAMES = {6: "#UD", DF_VECTOR: "#DF", GP_VECTOR: "#GP", PF_VECTOR: "#PF"}
_CONTRIBUTORY = {0, 10, 11, 12, 13}       # #DE #TS #NP #SS #GP

KVM_REQ_TRIPLE_FAULT = 1 << 4
KVM_REQ_UNHALT = 1 << 10
KVM_REQ_APF_HALT = 1 << 12                # 2.6.38: generic request bit 12 (include/linux/kvm_host.h@v2.6.38)

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
    """``vcpu->arch.apf``: 2.6.38's fields (``id`` is the seed's ``async_pf_id``), then the interrupt era's.

    The 5.8+ fields (``msr_en_val`` replaces ``msr_val``; ``send_always``
    replaced ``send_user_only`` in 6.15) are used only by that generation's twins.
    """

    halted: bool = False
    gfns: np.ndarray = field(default_factory=lambda: np.full(64, GFN_SLOT_EMPTY, dtype=np.uint64))
    data: GfnToHvaCache = field(default_factory=GfnToHvaCache)
    msr_val: int = 0
    id: int = 0
    send_user_only: bool = False
    msr_en_val: int = 0
    msr_int_val: int = 0
    vec: int = 0
    send_always: bool = False
    delivery_as_pf_vmexit: bool = False
    pageready_pending: bool = False


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
    pv_cpuid_enforce: bool = False   # KVM_CAP_ENFORCE_PV_FEATURE_CPUID (off unless the VMM asks)


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

    Simplification: any pending exception counts (queued exceptions are delivered at the next entry).
    """
    arch = vcpu.arch
    return arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_interrupt_allowed")
def kvm_arch_interrupt_allowed(vcpu: "KvmVcpu") -> bool:
    """Interrupts can be taken now: RFLAGS.IF set and no STI/MOV-SS shadow.

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

    Simplification: no pf_guest statistics.
    """
    vcpu.arch.cr2 = address & abi.U64
    kvm_multiple_exception(vcpu, PF_VECTOR, True, error_code)


def kvm_queue_exception(vcpu: "KvmVcpu", nr: int) -> None:
    """Mirrors arch/x86/kvm/x86.c:kvm_queue_exception(_e): #GP carries error code 0."""
    kvm_multiple_exception(vcpu, nr, nr in (DF_VECTOR, GP_VECTOR, PF_VECTOR), 0)


# --- token and the per-vcpu gfn hash ---------------------------------------------------

@mirrors("include/linux/hash.h", "hash_32", generations="seed, legacy")
def hash_32(val: int, bits: int) -> int:
    """The top ``bits`` of the 32-bit product with 2.6.3x's GOLDEN_RATIO_PRIME_32 (4.7 changed the multiplier)."""
    return ((val * GOLDEN_RATIO_PRIME_32) & abi.U32) >> (32 - bits)


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_hash_fn", generations="legacy")
def kvm_async_pf_hash_fn(gfn: int) -> int:
    """Home slot of ``gfn``: hash_32(gfn & 0xffffffff, order_base_2(64)), with 2.6.38's hash_32.

    The gfn table's functions reach it as ``vcpu.kvm.twins.kvm_async_pf_hash_fn``:
    the interrupt era's hashes with the multiplier hash.h has had since 4.7.
    """
    return hash_32(gfn & abi.U32, 6)


def kvm_async_pf_next_probe(key: int) -> int:
    """Mirrors arch/x86/kvm/x86.c:kvm_async_pf_next_probe: linear probing, wrapping at 64."""
    return (key + 1) & 63


@mirrors("arch/x86/kvm/x86.c", "kvm_add_async_pf_gfn", generations="legacy")
def kvm_add_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> None:
    """Record ``gfn`` as having an outstanding APF: first free slot from its home."""
    gfns = vcpu.arch.apf.gfns
    key = vcpu.kvm.twins.kvm_async_pf_hash_fn(gfn)
    while gfns[key] != GFN_SLOT_EMPTY:
        key = kvm_async_pf_next_probe(key)
    gfns[key] = gfn


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_gfn_slot", generations="legacy")
def kvm_async_pf_gfn_slot(vcpu: "KvmVcpu", gfn: int) -> int:
    """The slot holding ``gfn``, or where the probe stopped (an empty slot); at most 64 probes."""
    gfns = vcpu.arch.apf.gfns
    key = vcpu.kvm.twins.kvm_async_pf_hash_fn(gfn)
    for _ in range(64):
        if gfns[key] == gfn or gfns[key] == GFN_SLOT_EMPTY:
            break
        key = kvm_async_pf_next_probe(key)
    return key


@mirrors("arch/x86/kvm/x86.c", "kvm_find_async_pf_gfn", generations="legacy")
def kvm_find_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> bool:
    """Whether an APF for ``gfn`` is outstanding on this vcpu."""
    return int(vcpu.arch.apf.gfns[kvm_async_pf_gfn_slot(vcpu, gfn)]) == gfn


@mirrors("arch/x86/kvm/x86.c", "kvm_del_async_pf_gfn", generations="legacy")
def kvm_del_async_pf_gfn(vcpu: "KvmVcpu", gfn: int) -> None:
    """Remove ``gfn`` and close the gap by backward-shift deletion.

    Simplification: a missing gfn is ignored (5.8 WARNs).
    """
    gfns = vcpu.arch.apf.gfns
    i = j = kvm_async_pf_gfn_slot(vcpu, gfn)
    if gfns[i] != gfn:
        return
    while True:
        gfns[i] = GFN_SLOT_EMPTY
        while True:
            j = kvm_async_pf_next_probe(j)
            if gfns[j] == GFN_SLOT_EMPTY:
                return
            k = vcpu.kvm.twins.kvm_async_pf_hash_fn(int(gfns[j]))
            # keep j where it is if its home k lies cyclically in (i, j]
            if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
                continue
            break
        gfns[i] = gfns[j]
        i = j


@mirrors("arch/x86/kvm/x86.c", "kvm_async_pf_hash_reset", generations="legacy")
def kvm_async_pf_hash_reset(vcpu: "KvmVcpu") -> None:
    """Mark every slot free (~0)."""
    vcpu.arch.apf.gfns[:] = GFN_SLOT_EMPTY


@mirrors("arch/x86/kvm/x86.c", "apf_put_user", generations="legacy")
def apf_put_user(vcpu: "KvmVcpu", val: int) -> int:
    """Write the reason word into the guest's area; 0 or -EFAULT.

    kvm_write_guest_cached of a u32 at the registered gpa (the seed wrote
    with put_user through a cached user pointer).
    Simplification: see kvm_write_guest_cached.
    """
    return kvm_write_guest_cached(vcpu.kvm, vcpu.arch.apf.data, val.to_bytes(4, "little"))


def inject_apf_event(vcpu: "KvmVcpu", reason: int, token: int) -> bool:
    """Write ``reason`` to the guest's area and queue #PF with CR2 = token, error code 0; False if the write failed.

    The tail every #PF-delivered event shares (kvm_arch_async_page_not_present/present, the seed's inject_*).
    """
    if apf_put_user(vcpu, reason):
        return False
    kvm_inject_page_fault(vcpu, token, 0)
    vcpu.stat["apf_injected"] += 1
    return True


# --- MSRs, reset, teardown --------------------------------------------------------------

@mirrors("arch/x86/kvm/x86.c", "kvm_set_msr_common")
def kvm_set_msr_common(vcpu: "KvmVcpu", msr: int, data: int,
                       host_initiated: bool = False) -> Generator[Any, Any, int]:
    """Set an MSR for the guest (WRMSR exit) or the VMM (KVM_SET_MSRS, ``host_initiated``); 1 means refused.

    The async PF cases of the switch are the generation's (``kvm.twins.msrs``).
    None of them looks at ``host_initiated``, in v2.6.38 or v6.18: the VMM gets
    the guest's verdict.  (v6.18's kvm_do_msr_access lets the VMM write 0 to an
    advertised MSR a case reports unsupported, but the async PF cases refuse with
    1; they report unsupported only since 5bb9ac186512, after v6.18.)
    Simplification: every other MSR is unknown here and refused.
    """
    handler = vcpu.kvm.twins.msrs.get(msr)
    if handler is None:
        return 1
    return (yield from handler(vcpu, data))


@mirrors("arch/x86/kvm/x86.c", "kvm_get_msr_common")
def kvm_get_msr_common(vcpu: "KvmVcpu", msr: int, host_initiated: bool = False) -> tuple[int, int]:
    """Read an MSR for the guest (RDMSR) or the VMM (KVM_GET_MSRS): ``(0, value)``, or ``(1, 0)`` when refused.

    The async PF cases are the generation's (``kvm.twins.msr_reads``); as for
    writes, none looks at ``host_initiated`` (see :func:`kvm_set_msr_common`).
    Simplification: every other MSR is unknown here and refused.
    """
    handler = vcpu.kvm.twins.msr_reads.get(msr)
    if handler is None:
        return 1, 0
    return handler(vcpu)


def reset_events(vcpu: "KvmVcpu") -> None:
    """The event part of a VMM's INIT/RESET: no queued exception, RUNNABLE.

    Simulation glue, called from each generation's reset twin: v6.18's kvm_vcpu_reset clears the exception
    queue itself, v2.6.38's kvm_arch_vcpu_reset does not (the VMM's KVM_SET_VCPU_EVENTS of its reset state
    does), and in both RUNNABLE comes from the caller (__vcpu_run after a SIPI, or the VMM's KVM_SET_MP_STATE).
    """
    vcpu.arch.exception = KvmQueuedException()
    vcpu.arch.mp_state = KVM_MP_STATE_RUNNABLE


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_destroy_vm")
def kvm_arch_destroy_vm(kvm: Any) -> Generator[Any, Any, None]:
    """Tear the VM down: stop every vcpu and clear its async PF queue before the MMU goes.

    kvm_arch_destroy_vm -> kvm_free_vcpus (2.6.38; the seed added
    kvm_clear_async_pf_completion_queue there).
    Simplification: the vcpu threads are stopped first (the VMM has exited them).
    """
    for vcpu in kvm.vcpus:
        vcpu.stopped = True
        vcpu.kick()
    for vcpu in kvm.vcpus:
        yield from kvm.twins.kvm_clear_async_pf_completion_queue(vcpu)


def trace_ctx(vcpu: "KvmVcpu") -> tuple[str, int, int]:
    """The (comm, pid, cpu) an event traced on this vcpu's thread carries."""
    return vcpu.comm, vcpu.pid, vcpu.vcpu_id
