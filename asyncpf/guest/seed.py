"""The guest's async PF registration in the seed series (v2 patch 03/12, 2009-11-23).

Message-Id ``1258985167-29178-4-git-send-email-gleb@redhat.com``: MSR 0x13,
no SEND_ALWAYS (a kernel-mode fault never goes async in the seed: its
``can_do_async_pf`` wants CPL != 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generator

from ..abi import KVM_ASYNC_PF_ENABLED
from ..mirrors import mirrors
from . import kvm
from .kvm import apf_feature, register_apf_area

if TYPE_CHECKING:
    from .kernel import GuestCpu


@mirrors("arch/x86/kernel/kvm.c", "kvm_guest_cpu_init", generations="seed")
def kvm_guest_cpu_init(cpu: "GuestCpu") -> Generator:
    """Register this cpu's APF area: MSR_KVM_ASYNC_PF_EN (0x13) = pa | ENABLED.

    Simplification: the area is a fixed per-cpu gpa.
    """
    if not apf_feature(cpu):
        return
    yield from register_apf_area(cpu, cpu.apf_gpa | KVM_ASYNC_PF_ENABLED)


# the #PF era's entry points, looked up on the generation's module by the guest kernel
PF_ENTRY, INTERRUPT_HANDLERS, WRMSR_FIXUP = kvm.PF_ERA_ENTRY, kvm.PF_ERA_HANDLERS, kvm.PF_ERA_WRMSR_FIXUP
SLEEPER_HASH = kvm.PF_ERA_SLEEPER_HASH
