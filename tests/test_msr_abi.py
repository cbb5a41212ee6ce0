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
def test_6_18_vmm_rules_with_5bb9ac186512_agree_with_the_real_kvm(cname, row, cell):
    """KVM_SET_MSRS as measured, on a 6.18.y kernel carrying 5bb9ac186512: each write's verdict is the guest's
    (v6.18), but where the fix lets the VMM's 0 through; KVM_GET_MSRS of EN, INT, ACK as read back (v6.18's,
    but where the fix turns a refused read into 0)."""
    msr, data = row.write
    read = {name: int(value, 16) for name, value in cell["read"].items()}
    v = _vm_vcpu(cname, en=read["EN"], int_val=read["INT"])
    lenient = msr_abi.lenient_since_5bb9ac186512("interrupt", v, msr, data)
    assert (msr_abi.refusal("interrupt", v, msr, data) is None or lenient) == cell["accepted"]
    if lenient:
        assert read[{msrtable.EN: "EN", msrtable.INT: "INT", msrtable.ACK: "ACK"}[msr]] == 0
    assert [0 if msr_abi.lenient_since_5bb9ac186512("interrupt", v, m, None) else msr_abi.vmm_read("interrupt", v, m)
            for m in (msrtable.EN, msrtable.INT, msrtable.ACK)] == [read["EN"], read["INT"], read["ACK"]]


def test_the_measured_kernel_differs_from_6_18_only_where_5bb9ac186512_says():
    """v6.18's rules alone get the measured VMM table wrong in some cells, and those are exactly the fix's."""
    wrong, fixed = set(), set()
    for cname, row, cell in _measured("vmm_table"):
        msr, data = row.write
        v = _vm_vcpu(cname)
        if (msr_abi.refusal("interrupt", v, msr, data) is None) != cell["accepted"]:
            wrong.add((cname, row.name))
        if msr_abi.lenient_since_5bb9ac186512("interrupt", v, msr, data):
            fixed.add((cname, row.name))
    assert wrong and wrong == fixed


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
    assert msr_abi.vmm_read(generation, enforced, msr) is None


def test_6_18_refuses_the_vmm_an_msr_the_pv_cpuid_hides_even_0_and_5bb9ac186512_lets_0_and_reads_through():
    hidden = vcpu(enforce=True, features=1 << abi.KVM_FEATURE_ASYNC_PF, en=EN | 0x7F000, int_val=0xF3)
    INT, ACK = abi.INTERRUPT.msr_async_pf_int, abi.INTERRUPT.msr_async_pf_ack
    assert msr_abi.refusal("interrupt", hidden, INT, 0) == "KVM_FEATURE_ASYNC_PF_INT not offered"
    assert [msr_abi.vmm_read("interrupt", hidden, m) for m in (abi.INTERRUPT.msr_async_pf_en, INT, ACK)] == \
        [EN | 0x7F000, None, None]
    assert msr_abi.lenient_since_5bb9ac186512("interrupt", hidden, INT, 0)
    assert msr_abi.lenient_since_5bb9ac186512("interrupt", hidden, ACK, None)                   # a read
    assert not msr_abi.lenient_since_5bb9ac186512("interrupt", hidden, ACK, 1)                  # only 0
    assert not msr_abi.lenient_since_5bb9ac186512("interrupt", hidden, abi.INTERRUPT.msr_async_pf_en, 0)  # offered
    assert not msr_abi.lenient_since_5bb9ac186512("legacy", hidden, abi.LEGACY.msr_async_pf_en, 0)


@pytest.mark.parametrize("mid,config", [
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_del:0", "msr_table"),          # reserved bits accepted
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:4", "msr_table"),         # refused, yet SEND_ALWAYS taken
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_del:2", "irq_msr_probe"),   # AS_INT without its CPUID bit
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:2", "irq_msr_table"),  # vector 0 refused
    ("asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:4", "seed_msr_table"),     # a refused area stored
    ("asyncpf.host.interrupt.x86:_gated:const_off:1", "irq_msr_probe"),                 # a hidden MSR's write taken
])
def test_msr_writes_follow_the_abi_kills_planted_bugs(mid, config):
    assert_rule_kills(mid, config, "msr_writes_follow_the_abi")


@pytest.mark.parametrize("mid,config", [
    ("asyncpf.host.interrupt.x86:_gated:stmt_del:3", "irq_vmm_msr_hidden"),        # no gate: the VMM's 0xF3 taken
    ("asyncpf.host.interrupt.x86:msr_read_handlers:const_off:3", "irq_vmm_msr_hidden"),  # hidden MSRs read 0
    ("asyncpf.host.x86:kvm_get_msr_common:const_off:2", "irq_vmm_msr_table"),      # a refused read not zeroed
    ("asyncpf.host.x86:kvm_get_msr_common:const_off:1", "vmm_msr_table"),          # 2.6.38 reads an unknown MSR
    ("asyncpf.host.x86:kvm_set_msr_common:const_off:1", "vmm_msr_table"),          # 2.6.38 takes 6.18's INT
    ("asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:7", "irq_vmm_msr_no_irqchip"),  # INT taken
    ("asyncpf.host.interrupt.x86:msr_read_handlers:const_off:6", "irq_vmm_msr_table"),              # ACK reads 1
])
def test_vmm_msr_accesses_follow_the_abi_kills_planted_bugs(mid, config):
    assert_rule_kills(mid, config, "vmm_msr_accesses_follow_the_abi")
