"""The fidelity table is true: every twin listed, every named test exists, the file is current; and the
differences from the released trees that were fixed, each pinned here or where the table says."""

import re
from pathlib import Path

from conftest import enable_apf, machine, run

from asyncpf import fidelity
from asyncpf.build import make_swapped
from asyncpf.host import mmu, x86
from asyncpf.host import vcpu as vcpu_mod
from asyncpf.host.legacy import x86 as legacy_x86
from asyncpf.host.seed import x86 as seed_x86
from asyncpf.mirrors import MIRRORS, load_all

ROOT = Path(__file__).resolve().parent.parent


def test_docs_fidelity_is_current():
    assert (ROOT / "docs" / "fidelity.md").read_text() == fidelity.table(), \
        "run: python -m asyncpf.tools.fidelity_table"


def test_every_verdict_names_a_twin_and_an_existing_test():
    load_all()
    assert set(fidelity.VERDICTS) <= set(MIRRORS)
    for key, v in fidelity.VERDICTS.items():
        assert v.kind in (fidelity.IDENTICAL, fidelity.SIMPLIFIED, fidelity.DEFECT, fidelity.FIXED), key
        if v.kind in (fidelity.FIXED, fidelity.DEFECT):
            assert v.test, f"{key}: a fixed difference or a reproduced defect must name the test that pins it"
        if v.test:
            path, name = v.test.split("::")
            assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), v.test


def test_page_present_unhalts():
    m = machine("legacy")
    v = m.vcpus[0]
    make_swapped(m, 40)
    mmu.kvm_arch_setup_async_pf(v, 40 << 12, 40)       # APF off: not-present becomes the APF halt
    v.arch.apf.halted = True
    m.env.run()
    (work,) = v.async_pf.done
    legacy_x86.kvm_arch_async_page_present(v, work)
    assert not v.arch.apf.halted


def test_triple_fault_ends_the_loop_before_completions():
    m = machine("legacy")
    v = m.vcpus[0]
    make_swapped(m, 40)
    mmu.kvm_arch_setup_async_pf(v, 40 << 12, 40)
    m.env.run()
    assert v.async_pf.done
    x86.kvm_make_request(v, x86.KVM_REQ_TRIPLE_FAULT)
    run(m, legacy_x86.__vcpu_run(v))
    assert v.stat["shutdown"] == 1 and len(v.async_pf.done) == 1   # not consumed after the shutdown


def test_vmm_msr_write_is_not_traced():
    m = machine("legacy")
    v = m.vcpus[0]
    before = m.tracer.count("kvm_msr")
    assert run(m, x86.kvm_set_msr_common(v, v.kvm.abi.msr_async_pf_en, 0)) == 0   # KVM_SET_MSRS path
    assert m.tracer.count("kvm_msr") == before
    assert run(m, vcpu_mod.handle_wrmsr(v, v.kvm.abi.msr_async_pf_en, 0)) == 0    # the guest's WRMSR exit
    assert m.tracer.count("kvm_msr") == before + 1


def test_seed_done_makes_runnable():
    m = machine("seed")
    v = m.vcpus[0]
    enable_apf(m)
    v.arch.mp_state = x86.KVM_MP_STATE_HALTED
    v.arch.rflags_if = False
    assert not seed_x86.kvm_arch_vcpu_runnable(v)
    make_swapped(m, 40)
    v.arch.cpl = 3
    v.arch.exception.pending = False
    assert mmu.kvm_arch_setup_async_pf(v, 40 << 12, 40)
    m.env.run()
    assert v.async_pf.done and seed_x86.kvm_arch_vcpu_runnable(v)
