"""The async PF MSR write rules as the ABI documents them, restated for the checker (not the twins' code).

What a guest WRMSR to an async PF MSR must get -- accepted or #GP -- and
what an accepted write leaves behind, per generation:

* the seed (v2 patch 02/12, Msg-Id 1258985167-29178-3-git-send-email-gleb@redhat.com): MSR 0x13, the area
  at data & ~0x3f, bit 0 enables; bits 5:1 are refused (the generation's ABI table; v2 does not spell it
  out) and an enabling write needs its area in guest memory.  Every check comes before any store, so a
  refused write changes nothing; a disable frees the done list (seed 000 kvm_clear_async_pf_completion_queue).
* 2.6.38 (Documentation/kvm/msr.txt@v2.6.38; arch/x86/kvm/x86.c@v2.6.38
  kvm_set_msr_common, kvm_pv_enable_async_pf): MSR_KVM_ASYNC_PF_EN bits 5:2
  are reserved; an enabling write needs its 64-byte area in guest memory.
  Accepted: the value reads back, SEND_ALWAYS decides whether CPL0 faults
  are sent, an enable queues the wake-all (unless ``done`` already holds
  work), a disable empties the completion queue and the gfn hash.
* 6.18 (Documentation/virt/kvm/x86/msr.rst and cpuid.rst@v6.18;
  arch/x86/kvm/x86.c@v6.18): EN bits 5:4 reserved, DELIVERY_AS_PF_VMEXIT
  and DELIVERY_AS_INT each need their CPUID bit under PV-CPUID
  enforcement, no non-zero value without an in-kernel irqchip, an enabling
  write (ENABLED and DELIVERY_AS_INT) needs its area in guest memory; INT
  bits 63:8 reserved and it needs the in-kernel irqchip; with enforcement EN
  needs KVM_FEATURE_ASYNC_PF, INT and ACK KVM_FEATURE_ASYNC_PF_INT.

An async PF MSR another generation defines, or :data:`NO_SUCH_MSR`, is unknown to a generation that
lacks it: refused to the guest and the VMM alike (x86.c@v2.6.38 kvm_set_msr_common / kvm_get_msr_common
default case: 1 unless the ignore_msrs parameter, off by default; x86.c@v6.18: KVM_MSR_RET_UNSUPPORTED,
which kvm_do_msr_access passes on for an MSR KVM does not advertise).  The seed's MSR 0x13 is unknown
from 2.6.38 on (asm/kvm_para.h@v2.6.38 stops at 0x12 below the 0x4b564d00 range), and the
0x4b564d00 range to the seed.

The VMM (KVM_SET_MSRS / KVM_GET_MSRS) goes through the same switch, and no async PF case looks at
``host_initiated`` (2.6.38 has none): the VMM's writes get the guest's verdicts, and a read the guest
would be refused (an MSR the PV CPUID does not offer under enforcement) fails for the VMM too; 6.18's
kvm_do_msr_access zeroes the value of any refused read.  Since 5bb9ac186512 (after v6.18, for stable)
the cases report such an MSR unsupported instead, and kvm_do_msr_access then accepts the VMM's write of
0 and answers its read with 0 (:func:`lenient_since_5bb9ac186512`): the kernel of the measured MSR
table (data/live/msr-table.json, 6.18.44) behaves so.
"""

from __future__ import annotations

from typing import Any

from .. import abi
from ..abi import (KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT, KVM_ASYNC_PF_ENABLED,
                   KVM_ASYNC_PF_SEND_ALWAYS, PAGE_SHIFT)
from ..host.kvm_main import gfn_to_memslot
from ..host.x86 import GFN_SLOT_EMPTY

AREA_MASK = ~0x3F & abi.U64    # the area is 64-byte aligned: bits 63:6 of EN
NO_SUCH_MSR = 0x4B564DFF       # in KVM's PV MSR range (0x4b564d00-0x4b564dff), defined by no generation


def _async_pf_msrs(generation: str) -> frozenset[int]:
    gen = abi.generation(generation)
    return frozenset(m for m in (gen.msr_async_pf_en, gen.msr_async_pf_int, gen.msr_async_pf_ack) if m is not None)


def judged(msr: int) -> bool:
    """The rules speak of this MSR: an async PF MSR of some generation, or NO_SUCH_MSR."""
    return msr == NO_SUCH_MSR or any(msr in _async_pf_msrs(g.name) for g in (abi.SEED, abi.LEGACY, abi.INTERRUPT))


def unknown(generation: str, msr: int) -> bool:
    """A judged MSR this generation does not define."""
    return judged(msr) and msr not in _async_pf_msrs(generation)


def _in_guest_memory(kvm: Any, gpa: int) -> bool:
    """Some memslot holds the area's frame (what kvm_gfn_to_hva_cache_init needs to succeed)."""
    return gfn_to_memslot(kvm, gpa >> PAGE_SHIFT) is not None


def _offered(vcpu: Any, feature: int) -> bool:
    """Without PV-CPUID enforcement every PV feature counts as offered (cpuid.rst@v6.18)."""
    return not vcpu.arch.pv_cpuid_enforce or bool(vcpu.arch.cpuid_features & (1 << feature))


def refusal(generation: str, vcpu: Any, msr: int, data: int) -> str | None:
    """Why the ABI refuses this write (#GP), or None when it must be accepted.  Only async PF MSRs are judged."""
    kvm = vcpu.kvm
    if unknown(generation, msr):
        return f"MSR unknown to {generation}"
    if generation in ("seed", "legacy"):
        gen = abi.generation(generation)
        if msr != gen.msr_async_pf_en:
            return None
        if data & gen.msr_reserved_mask:       # bits 5:1 in the seed, 5:2 in 2.6.38
            return "reserved bits set"
        if data & KVM_ASYNC_PF_ENABLED and not _in_guest_memory(kvm, data & AREA_MASK):
            return "area outside guest memory"
        return None
    spec = abi.INTERRUPT
    unoffered = _unoffered(vcpu, msr)
    if unoffered:
        return unoffered
    if msr == spec.msr_async_pf_en:
        if data & spec.msr_reserved_mask:             # bits 5:4 (2 and 3 are the delivery modes)
            return "reserved bits 5:4 set"
        if data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT and not _offered(vcpu, abi.KVM_FEATURE_ASYNC_PF_VMEXIT):
            return "DELIVERY_AS_PF_VMEXIT without KVM_FEATURE_ASYNC_PF_VMEXIT"
        if data & KVM_ASYNC_PF_DELIVERY_AS_INT and not _offered(vcpu, abi.KVM_FEATURE_ASYNC_PF_INT):
            return "DELIVERY_AS_INT without KVM_FEATURE_ASYNC_PF_INT"
        if data and not kvm.irqchip_in_kernel:
            return "non-zero without an in-kernel irqchip"
        if _enables(generation, data) and not _in_guest_memory(kvm, data & AREA_MASK):
            return "area outside guest memory"
        return None
    if msr == spec.msr_async_pf_int:
        if data >> 8:
            return "reserved bits 63:8 set"
        if not kvm.irqchip_in_kernel:
            return "no in-kernel irqchip"
    return None


def _unoffered(vcpu: Any, msr: int) -> str | None:
    """6.18: the PV CPUID bit an async PF MSR needs is not offered under enforcement (refused, 1)."""
    spec = abi.INTERRUPT
    if msr == spec.msr_async_pf_en and not _offered(vcpu, abi.KVM_FEATURE_ASYNC_PF):
        return "KVM_FEATURE_ASYNC_PF not offered"
    if msr in (spec.msr_async_pf_int, spec.msr_async_pf_ack) and not _offered(vcpu, abi.KVM_FEATURE_ASYNC_PF_INT):
        return "KVM_FEATURE_ASYNC_PF_INT not offered"
    return None


def lenient_since_5bb9ac186512(generation: str, vcpu: Any, msr: int, data: int | None) -> bool:
    """Whether 5bb9ac186512 turns 6.18's refusal of this VMM access into success: a write of 0, or a read
    (``data`` None), of an async PF MSR the PV CPUID does not offer.  Not a rule of any modelled generation:
    what a 6.18.y kernel carrying the fix (the measured one) does differently."""
    return generation == "interrupt" and not data and _unoffered(vcpu, msr) is not None


def vmm_read(generation: str, vcpu: Any, msr: int) -> int | None:
    """What KVM_GET_MSRS must return for a judged MSR on 2.6.38 or 6.18: its value, or None when refused.

    EN reads back what it holds (msr_val, 6.18 msr_en_val), INT its value, ACK 0 (x86.c@v6.18
    kvm_get_msr_common); an unknown MSR is refused, and in 6.18 so is one the PV CPUID does not offer.
    """
    if unknown(generation, msr):
        return None
    apf = vcpu.arch.apf
    if generation == "legacy":
        return apf.msr_val
    if _unoffered(vcpu, msr):
        return None
    return {abi.INTERRUPT.msr_async_pf_en: apf.msr_en_val, abi.INTERRUPT.msr_async_pf_int: apf.msr_int_val}.get(msr, 0)


def _enables(generation: str, data: int) -> bool:
    """Whether the value turns async PF on: ENABLED, and in the interrupt era DELIVERY_AS_INT too (msr.rst@v6.18)."""
    need = KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT if generation == "interrupt" else KVM_ASYNC_PF_ENABLED
    return data & need == need


def aftermath(generation: str, vcpu: Any, msr: int, data: int) -> list[str]:
    """What an accepted write left wrong in the host's state (empty when it did what the ABI says)."""
    apf, queue = vcpu.arch.apf, vcpu.async_pf
    out = []
    if msr == abi.INTERRUPT.msr_async_pf_int and generation == "interrupt":
        if apf.msr_int_val != data or apf.vec != data & 0xFF:
            out.append(f"INT reads {apf.msr_int_val:#x} with vector {apf.vec:#x}")
        return out
    if msr != abi.generation(generation).msr_async_pf_en:
        return out
    held = apf.msr_en_val if generation == "interrupt" else apf.msr_val
    if held != data:
        out.append(f"EN reads {held:#x}")
    if generation == "seed":
        if data & KVM_ASYNC_PF_ENABLED and apf.data.gpa != data & AREA_MASK:
            out.append(f"the area is at {apf.data.gpa:#x}")
        if not data & KVM_ASYNC_PF_ENABLED and queue.done:
            out.append(f"{len(queue.done)} done item(s) left after a disable")
        return out
    if _enables(generation, data):
        if apf.data.gpa != data & AREA_MASK:
            out.append(f"the area is at {apf.data.gpa:#x}")
        sends_cpl0 = not apf.send_user_only if generation == "legacy" else apf.send_always
        if sends_cpl0 != bool(data & KVM_ASYNC_PF_SEND_ALWAYS):
            out.append("SEND_ALWAYS not taken as written")
        if generation == "interrupt" and apf.delivery_as_pf_vmexit != bool(data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT):
            out.append("DELIVERY_AS_PF_VMEXIT not taken as written")
        if not queue.done and vcpu.kvm.alloc_fail is None:
            out.append("no wake-all queued (done is empty)")
    elif generation == "legacy" or vcpu.kvm.irqchip_in_kernel:   # 6.18 without one returns before the clear
        if queue.queue or queue.done:
            out.append(f"{len(queue.queue)} queued and {len(queue.done)} done item(s) left after a disable")
        if (apf.gfns != GFN_SLOT_EMPTY).any():
            out.append("the gfn hash is not empty after a disable")
    return out


def held(generation: str, vcpu: Any) -> tuple:
    """The MSR state a write can change: the EN value, the send-at-CPL0 flag, and in 6.18 the delivery flag and INT."""
    apf = vcpu.arch.apf
    if generation == "seed":
        return (apf.msr_val,)
    if generation == "legacy":
        return apf.msr_val, not apf.send_user_only
    return apf.msr_en_val, apf.send_always, apf.delivery_as_pf_vmexit, apf.msr_int_val, apf.vec


def refused_aftermath(generation: str, vcpu: Any, data: int, why: str, before: tuple | None) -> list[str]:
    """What a refused write changed (``before``: the state at the vcpu's entry into the guest that made it).

    Nothing, except the kernel's own defect: an enable whose area is outside guest memory has already
    stored the value (x86.c@v2.6.38 and @v6.18 kvm_pv_enable_async_pf; fixed after 6.18 by 923ca078f08c
    "KVM: x86: Don't leave APF half-enabled on bad APF data GPA").
    """
    if before is None:
        return []
    half_enabled = why == "area outside guest memory" and generation != "seed"   # the seed checks before it stores
    expected = (data, *before[1:]) if half_enabled else before
    after = held(generation, vcpu)
    return [] if after == expected else [f"refused ({why}) yet the MSR state went from {before} to {after}"]
