"""The LAPIC as the interrupt era's page-ready path sees it: ``arch/x86/kvm/lapic.c@v6.18``.

Page-ready is a fixed-mode interrupt now, so whether the LAPIC accepts it
(software-enabled or not) is part of the protocol: the 2021 fix
("KVM: x86: Properly handle APF vs disabled LAPIC situation") made KVM hold
page-ready back while the LAPIC is disabled and look again when it is enabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from ...mirrors import mirrors
from .. import vcpu as vcpu_mod
from .. import x86

if TYPE_CHECKING:
    from ..vcpu import KvmVcpu

APIC_DM_FIXED = 0
X2APIC_MSR_SPIV = 0x80F        # APIC_BASE_MSR + (APIC_SPIV >> 4)
APIC_SPIV_APIC_ENABLED = 1 << 8
KVM_REQ_APF_READY = 1 << 26    # KVM_ARCH_REQ(26)


@mirrors("arch/x86/kvm/lapic.c", "kvm_apic_set_irq", generations="interrupt")
def kvm_apic_set_irq(vcpu: "KvmVcpu", vector: int) -> bool:
    """Send a fixed, edge-triggered interrupt: traced, then dropped by a software-disabled LAPIC or made pending.

    __apic_accept_irq traces kvm_apic_accept_irq before it looks at the
    LAPIC; the accepted vector goes to IRR and the vcpu is kicked.
    Simplification: fixed delivery, no TPR, no posted interrupts.
    """
    vcpu.kvm.env.trace("kvm_apic_accept_irq", ctx=x86.trace_ctx(vcpu), apicid=vcpu.vcpu_id,
                       dm=APIC_DM_FIXED, tm=False, vec=vector)
    return vcpu_mod.kvm_apic_set_irq(vcpu, vector)


@mirrors("arch/x86/kvm/lapic.h", "kvm_lapic_enabled", generations="interrupt")
def kvm_lapic_enabled(vcpu: "KvmVcpu") -> bool:
    """An in-kernel LAPIC that is software-enabled (SPIV bit 8).

    Simplification: the LAPIC is always hardware-enabled (APIC_BASE).
    """
    return vcpu.kvm.irqchip_in_kernel and vcpu.apic_sw_enabled


@mirrors("arch/x86/kvm/lapic.c", "apic_set_spiv", generations="interrupt")
def apic_set_spiv(vcpu: "KvmVcpu", data: int) -> Generator[Any, Any, int]:
    """A write of the spurious-interrupt register (x2APIC MSR 0x80f): software enable or disable.

    Every write with the enable bit set asks for KVM_REQ_APF_READY, so
    page-ready events held back while the LAPIC was off are looked at again
    (the 2021 fix).
    Simplification: only bit 8 matters; reached through the x2APIC MSR.
    """
    enabled = bool(data & APIC_SPIV_APIC_ENABLED)
    vcpu.apic_sw_enabled = enabled
    if enabled:
        x86.kvm_make_request(vcpu, KVM_REQ_APF_READY)
    return 0
    yield
