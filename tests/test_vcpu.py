"""vcpu: APF halt on repeated faults, halt/wake, non-PV vs PV guests, CPL0 without SEND_ALWAYS."""

import contextlib

import pytest
from conftest import enable_apf, machine, run

from asyncpf.check.mutants import MUTANTS
from asyncpf.build import make_swapped
from asyncpf.host import mmu, vcpu as vcpu_mod, x86
from asyncpf.host.legacy import x86 as legacy_x86


def _fault(m, gfn):
    return run(m, mmu.kvm_mmu_page_fault(m.vcpus[0], gfn << 12, 2))


def test_repeated_fault_requests_apf_halt():
    m = machine("legacy")
    v = m.vcpus[0]
    enable_apf(m)
    run(m, v.kvm.twins.kvm_check_async_pf_completion(v))
    v.arch.exception.pending = False
    make_swapped(m, 40)
    p = m.env.process(mmu.kvm_mmu_page_fault(v, 40 << 12, 2), "f1")
    m.env.run(until=m.env.now + 1)
    assert p.value == mmu.RET_RETRY and x86.kvm_find_async_pf_gfn(v, 40)
    v.arch.exception.pending = False  # the guest took the not-present
    p = m.env.process(mmu.kvm_mmu_page_fault(v, 40 << 12, 2), "f2")
    m.env.run(until=m.env.now + 1)
    assert p.value == mmu.RET_RETRY
    (ev,) = m.tracer.of("kvm_async_pf_doublefault")
    assert ev.args == (40 << 12, 40)
    assert v.requests & x86.KVM_REQ_APF_HALT and m.kvm.stat.async_pf_allocated == 2  # wake-all + one


def test_halted_vcpu_blocks_until_completion_lands_on_done():
    m = machine("legacy")
    v = m.vcpus[0]  # APF not enabled: not-present turns into KVM_REQ_APF_HALT
    make_swapped(m, 40)
    mmu.kvm_arch_setup_async_pf(v, 40 << 12, 40)
    assert v.requests & x86.KVM_REQ_APF_HALT
    woke = []

    def thread():
        yield from legacy_x86.vcpu_enter_guest(v)
        assert v.arch.apf.halted
        yield from vcpu_mod.kvm_vcpu_block(v)
        woke.append(m.env.now)

    p = m.env.process(thread(), "vcpu")
    m.env.run(until=m.env.now + 5000)
    assert p.is_alive and v.mode == "blocked"
    m.env.run()
    (done,) = m.tracer.of("kvm_async_pf_completed")
    assert woke == [done.t_ns] and v.requests & x86.KVM_REQ_UNHALT
    assert v.acct["halted"] > 0 and m.tracer.count("kvm_entry") == 0


SCRIPTS = {"a": [(40, 20_000), (41, 20_000)], "b": [(50, 20_000), (51, 20_000)]}


def _loaded(pv, **kw):
    m = machine("legacy", scripts=SCRIPTS, pv=pv, send_always=True, swap_device="sata_ssd_2010", **kw)
    make_swapped(m, 40, 41, 50, 51)
    return m


def test_non_pv_guest_is_halted_pv_guest_is_not():
    acct = {}
    for pv in (False, True):
        m = _loaded(pv)
        m.start().run()
        acct[pv] = m.account()[0]
        assert all(s.finished for s in m.vcpus[0].guest.scripts)
        m.shutdown()
        assert m.leaks() == []
    assert acct[False]["halted"] > 0 and acct[False]["stalled"] == 0
    assert acct[True]["halted"] == 0


@pytest.mark.parametrize("send_always,mutant,expect_halt", [
    (False, False, True), (True, False, False), (False, True, False)])
def test_cpl0_fault_without_send_always_halts(send_always, mutant, expect_halt):
    m = machine("legacy")
    v = m.vcpus[0]
    enable_apf(m, send_always=send_always)
    run(m, v.kvm.twins.kvm_check_async_pf_completion(v))
    v.arch.exception.pending = False
    bug = MUTANTS["cpl0_without_send_always"].bug() if mutant else contextlib.nullcontext()
    v.arch.cpl = 0
    make_swapped(m, 40)
    with bug:
        mmu.kvm_arch_setup_async_pf(v, 40 << 12, 40)
    assert bool(v.requests & x86.KVM_REQ_APF_HALT) is expect_halt
    assert v.arch.exception.pending is (not expect_halt)
    assert m.tracer.count("kvm_async_pf_not_present") == 1
