"""The guest's async PF registration as released in 2.6.38: ``arch/x86/kernel/kvm.c@v2.6.38``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generator

from ..abi import KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS
from ..mirrors import mirrors
from . import kvm
from .kvm import apf_feature, register_apf_area

if TYPE_CHECKING:
    from .kernel import GuestCpu


@mirrors("arch/x86/kernel/kvm.c", "kvm_guest_cpu_init", generations="legacy")
def kvm_guest_cpu_init(cpu: "GuestCpu") -> Generator:
    """Register this cpu's APF area: MSR_KVM_ASYNC_PF_EN = pa | ENABLED, plus SEND_ALWAYS on CONFIG_PREEMPT.

    Only with KVM_FEATURE_ASYNC_PF; a preemptible kernel can sleep in kernel
    mode, so it asks for not-present events at CPL0 too; then ``enabled = 1``.
    Simplification: the area is a fixed per-cpu gpa.
    """
    if not apf_feature(cpu):
        return
    data = cpu.apf_gpa | KVM_ASYNC_PF_ENABLED
    if cpu.kernel.config.preemptible:
        data |= KVM_ASYNC_PF_SEND_ALWAYS
    yield from register_apf_area(cpu, data)


# the #PF era's entry points, looked up on the generation's module by the guest kernel
PF_ENTRY, INTERRUPT_HANDLERS, WRMSR_FIXUP = kvm.PF_ERA_ENTRY, kvm.PF_ERA_HANDLERS, kvm.PF_ERA_WRMSR_FIXUP
SLEEPER_HASH = kvm.PF_ERA_SLEEPER_HASH
