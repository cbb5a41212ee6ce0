"""The checker's restatement of the async PF MSR rules (asyncpf.check.msr_abi), held against the real KVM.

The 6.18 rules are compared with the MSR table measured on this machine kind's real KVM
(data/live/msr-table.json, `python -m asyncpf.live.record msr-table`): every row's write, in every VM
configuration, accepted or refused as the rules say.  The seed and 2.6.38 rules are checked on their
documented cases; the invariant built on them is shown to fire on planted bugs of every generation's handler.
"""

from types import SimpleNamespace

import pytest

from asyncpf import abi
from asyncpf.check import msr_abi
from asyncpf.check.explore import explore
from asyncpf.check.models import CONFIGS
from asyncpf.check.mutation import applied, mutant_by_id
from asyncpf.datafiles import load_json
from asyncpf.host.kvm_main import KvmMemorySlot
from asyncpf.live import layout, msrtable

EN, SA, INTD = abi.KVM_ASYNC_PF_ENABLED, abi.KVM_ASYNC_PF_SEND_ALWAYS, abi.KVM_ASYNC_PF_DELIVERY_AS_INT


def vcpu(*, irqchip=True, enforce=False, features=0, ram_bytes=layout.LOW_SIZE):
    """Just what the rules read: the PV CPUID and its enforcement, the irqchip, the memslots."""
    kvm = SimpleNamespace(irqchip_in_kernel=irqchip, memslots=[KvmMemorySlot(0, 0, ram_bytes >> 12, 0)])
    return SimpleNamespace(kvm=kvm, arch=SimpleNamespace(pv_cpuid_enforce=enforce, cpuid_features=features))


def _measured():
    table = load_json("live/msr-table.json")["table"]
    for cname, rows in sorted(table.items()):
        for row in msrtable.ROWS:
            yield cname, row, rows[row.name]["accepted"]


@pytest.mark.parametrize("cname,row,accepted", list(_measured()), ids=lambda x: getattr(x, "name", str(x)))
def test_6_18_rules_agree_with_the_real_kvm(cname, row, accepted):
    vm = msrtable.CONFIGS[cname]
    features = (vm.cpuid_async_pf << abi.KVM_FEATURE_ASYNC_PF) | (vm.cpuid_async_pf_int << abi.KVM_FEATURE_ASYNC_PF_INT)
    v = vcpu(irqchip=vm.irqchip, enforce=vm.enforce_pv_cpuid, features=features)
    msr, data = row.write
    assert (msr_abi.refusal("interrupt", v, msr, data) is None) == accepted


@pytest.mark.parametrize("data,refused", [
    *[(0x7F000 | EN | (1 << bit), True) for bit in (2, 3, 4, 5)],
    (0x7F000 | EN | SA, False), (0, False), (0x8000_0000 | EN, True), (0x8000_0000, False),
    ((layout.LOW_SIZE - 64) | EN, False),
])
def test_2_6_38_rules(data, refused):
    assert (msr_abi.refusal("legacy", vcpu(), abi.LEGACY.msr_async_pf_en, data) is not None) == refused


@pytest.mark.parametrize("data,refused", [
    *[(0x7F000 | EN | (1 << bit), True) for bit in (1, 2, 3, 4, 5)],
    (0x7F000 | EN, False), (0, False), (0x8000_0000 | EN, True), (0x8000_0000, False),
])
def test_seed_rules(data, refused):
    assert (msr_abi.refusal("seed", vcpu(), abi.SEED.msr_async_pf_en, data) is not None) == refused


def test_only_async_pf_msrs_are_judged():
    assert msr_abi.refusal("legacy", vcpu(), abi.INTERRUPT.msr_async_pf_int, 1 << 40) is None
    assert msr_abi.refusal("interrupt", vcpu(), 0x80F, 1 << 40) is None


@pytest.mark.parametrize("mid,config", [
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_del:0", "msr_table"),          # reserved bits accepted
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:4", "msr_table"),         # refused, yet SEND_ALWAYS taken
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_del:2", "irq_msr_probe"),   # AS_INT without its CPUID bit
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:2", "irq_msr_table"),  # vector 0 refused
    ("asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:4", "seed_msr_table"),     # a refused area stored
])
def test_msr_writes_follow_the_abi_kills_planted_bugs(mid, config):
    name = "msr_writes_follow_the_abi"
    assert name not in explore(CONFIGS[config], stop_at_first=False, trace_counterexample=False).violated
    with applied(mutant_by_id(mid)):
        assert name in explore(CONFIGS[config], stop_at_first=False, trace_counterexample=False).violated
