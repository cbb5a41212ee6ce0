"""PPC Book3S on the generic block/wake code: level vs edge interrupts, the decrementer (asyncpf.host.ppc)."""

import pytest

from asyncpf.host.ppc import book3s as b
from asyncpf.host.ppc import scenarios
from asyncpf.sim import Environment


@pytest.mark.parametrize("name", ["woken_by_level_interrupt", "level_redelivered_until_unset", "decrementer_wakes"])
def test_book3s_scenarios(name):
    checks = getattr(scenarios, name)()
    assert all(ok for ok, _ in checks.values()), {k: d for k, (ok, d) in checks.items() if not ok}


def test_edge_only_delivery_loses_one_and_invents_one_level_delivery_neither():
    edge = scenarios.edge_only_loses_and_invents(level_support=False)
    level = scenarios.edge_only_loses_and_invents(level_support=True)
    assert edge["spurious"] == 1 and edge["left_in_device"] == 1
    assert level["spurious"] == 0 and level["left_in_device"] == 0


def test_runnable_is_not_waiting_or_something_pending():
    v = b.new_vcpu(Environment(0))
    assert b.kvm_arch_vcpu_runnable(v)
    v.arch.msr |= b.MSR_WE
    assert not b.kvm_arch_vcpu_runnable(v)
    b.kvm_vcpu_ioctl_interrupt(v, b.KVM_INTERRUPT_SET_LEVEL)
    assert b.kvm_arch_vcpu_runnable(v)
    b.kvm_vcpu_ioctl_interrupt(v, b.KVM_INTERRUPT_UNSET)
    assert not b.kvm_arch_vcpu_runnable(v) and v.arch.int_pending == 0


def test_unset_is_refused_before_level_support():
    v = b.new_vcpu(Environment(0), level_support=False)
    assert b.kvm_vcpu_ioctl_interrupt(v, b.KVM_INTERRUPT_UNSET) == -22
    b.kvm_vcpu_ioctl_interrupt(v, b.KVM_INTERRUPT_SET_LEVEL)
    assert v.arch.pending_exceptions == 1 << b.BOOK3S_IRQPRIO_EXTERNAL  # an edge, the only kind there was
