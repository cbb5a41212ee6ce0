"""The checker's restatement of the async PF MSR rules (asyncpf.check.msr_abi), held against the real KVM.

The 6.18 rules are compared with the MSR table measured on this machine kind's real KVM
(data/live/msr-table.json, `python -m asyncpf.live.record msr-table`): every row's write, in every VM
configuration, accepted or refused as the rules say.  The seed and 2.6.38 rules are checked on their
documented cases; the invariant built on them is shown to fire on planted bugs of every generation's handler.
"""

from types import SimpleNamespace

import pytest
from conftest import assert_rule_kills

from asyncpf import abi
from asyncpf.check import msr_abi
from asyncpf.datafiles import load_json
from asyncpf.host.kvm_main import KvmMemorySlot
from asyncpf.live import layout, msrtable

EN, SA, INTD = abi.KVM_ASYNC_PF_ENABLED, abi.KVM_ASYNC_PF_SEND_ALWAYS, abi.KVM_ASYNC_PF_DELIVERY_AS_INT


def vcpu(*, irqchip=True, enforce=False, features=0, ram_bytes=layout.LOW_SIZE, en=0, int_val=0):
    """Just what the rules read: the PV CPUID and its enforcement, the irqchip, the memslots, the MSRs held."""
    kvm = SimpleNamespace(irqchip_in_kernel=irqchip, memslots=[KvmMemorySlot(0, 0, ram_bytes >> 12, 0)])
    apf = SimpleNamespace(msr_val=en, msr_en_val=en, msr_int_val=int_val)
    return SimpleNamespace(kvm=kvm, arch=SimpleNamespace(pv_cpuid_enforce=enforce, cpuid_features=features, apf=apf))


def _measured(table="table"):
    measured = load_json("live/msr-table.json")[table]
    for cname, rows in sorted(measured.items()):
        for row in msrtable.ROWS:
            yield cname, row, rows[row.name]


def _vm_vcpu(cname, **held):
    vm = msrtable.CONFIGS[cname]
    features = (vm.cpuid_async_pf << abi.KVM_FEATURE_ASYNC_PF) | (vm.cpuid_async_pf_int << abi.KVM_FEATURE_ASYNC_PF_INT)
    return vcpu(irqchip=vm.irqchip, enforce=vm.enforce_pv_cpuid, features=features, **held)


@pytest.mark.parametrize("cname,row,cell", list(_measured()), ids=lambda x: getattr(x, "name", str(x)))
def test_6_18_rules_agree_with_the_real_kvm(cname, row, cell):
    msr, data = row.write
    assert (msr_abi.refusal("interrupt", _vm_vcpu(cname), msr, data) is None) == cell["accepted"]


@pytest.mark.parametrize("cname,row,cell", list(_measured("vmm_table")), ids=lambda x: getattr(x, "name", str(x)))
def test_6_18_vmm_rules_agree_with_the_real_kvm(cname, row, cell):
    """KVM_SET_MSRS as measured: each write's verdict, and KVM_GET_MSRS of EN, INT, ACK as the VMM read them back."""
    msr, data = row.write
    read = {name: int(value, 16) for name, value in cell["read"].items()}
    v = _vm_vcpu(cname, en=read["EN"], int_val=read["INT"])
    assert (msr_abi.vmm_refusal("interrupt", v, msr, data) is None) == cell["accepted"]
    if msr_abi.vmm_ignored("interrupt", v, msr, data):
        assert read[{msrtable.EN: "EN", msrtable.INT: "INT", msrtable.ACK: "ACK"}[msr]] == 0
    assert [msr_abi.vmm_read("interrupt", v, m) for m in (msrtable.EN, msrtable.INT, msrtable.ACK)] == \
        [read["EN"], read["INT"], read["ACK"]]


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
    assert msr_abi.refusal("interrupt", vcpu(), 0x80F, 1 << 40) is None
    assert not msr_abi.judged(0x80F)


@pytest.mark.parametrize("generation,msr", [
    ("seed", abi.LEGACY.msr_async_pf_en), ("seed", abi.INTERRUPT.msr_async_pf_ack),
    ("legacy", abi.SEED.msr_async_pf_en), ("legacy", abi.INTERRUPT.msr_async_pf_int),
    ("interrupt", abi.SEED.msr_async_pf_en), ("interrupt", msr_abi.NO_SUCH_MSR), ("legacy", msr_abi.NO_SUCH_MSR),
])
def test_an_msr_the_generation_does_not_define_fails_for_guest_and_vmm(generation, msr):
    enforced = vcpu(enforce=True)
    assert msr_abi.refusal(generation, enforced, msr, 0) == f"MSR unknown to {generation}"
    assert msr_abi.vmm_refusal(generation, enforced, msr, 0) == f"MSR unknown to {generation}"
    assert msr_abi.vmm_read(generation, enforced, msr) is None


def test_the_vmm_may_write_0_only_to_an_msr_the_pv_cpuid_hides_and_reads_it_as_0():
    hidden = vcpu(enforce=True, features=1 << abi.KVM_FEATURE_ASYNC_PF, en=EN | 0x7F000, int_val=0xF3)
    INT, ACK = abi.INTERRUPT.msr_async_pf_int, abi.INTERRUPT.msr_async_pf_ack
    assert msr_abi.vmm_ignored("interrupt", hidden, INT, 0) and msr_abi.vmm_refusal("interrupt", hidden, INT, 0) is None
    assert msr_abi.refusal("interrupt", hidden, INT, 0) == "KVM_FEATURE_ASYNC_PF_INT not offered"   # the guest: #GP
    assert msr_abi.vmm_refusal("interrupt", hidden, ACK, 1) == "KVM_FEATURE_ASYNC_PF_INT not offered"
    assert [msr_abi.vmm_read("interrupt", hidden, m) for m in (abi.INTERRUPT.msr_async_pf_en, INT, ACK)] == \
        [EN | 0x7F000, 0, 0]
    assert not msr_abi.vmm_ignored("legacy", hidden, abi.LEGACY.msr_async_pf_en, 0)   # 2.6.38: no host_initiated


@pytest.mark.parametrize("mid,config", [
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_del:0", "msr_table"),          # reserved bits accepted
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:4", "msr_table"),         # refused, yet SEND_ALWAYS taken
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_del:2", "irq_msr_probe"),   # AS_INT without its CPUID bit
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:2", "irq_msr_table"),  # vector 0 refused
    ("asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:4", "seed_msr_table"),     # a refused area stored
    ("asyncpf.host.x86:kvm_set_msr_common:bool_drop:0", "irq_msr_probe"),               # guest 0 to a hidden MSR taken
])
def test_msr_writes_follow_the_abi_kills_planted_bugs(mid, config):
    assert_rule_kills(mid, config, "msr_writes_follow_the_abi")


@pytest.mark.parametrize("mid,config", [
    ("asyncpf.host.x86:kvm_set_msr_common:cmp_flip:2", "irq_vmm_msr_hidden"),      # the VMM's 0 refused, 0xF3 taken
    ("asyncpf.host.x86:kvm_get_msr_common:const_off:6", "irq_vmm_msr_hidden"),     # a hidden MSR reads 1
    ("asyncpf.host.x86:kvm_get_msr_common:const_off:2", "irq_vmm_msr_table"),      # a refused read not zeroed
    ("asyncpf.host.x86:kvm_get_msr_common:const_off:1", "vmm_msr_table"),          # 2.6.38 reads an unknown MSR
    ("asyncpf.host.x86:kvm_set_msr_common:const_off:1", "vmm_msr_table"),          # 2.6.38 takes 6.18's INT
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:6", "irq_vmm_msr_no_irqchip"),  # INT=0 taken
    ("asyncpf.host.interrupt.x86:msr_read_handlers:const_off:4", "irq_vmm_msr_table"),              # ACK reads 1
])
def test_vmm_msr_accesses_follow_the_abi_kills_planted_bugs(mid, config):
    assert_rule_kills(mid, config, "vmm_msr_accesses_follow_the_abi")
