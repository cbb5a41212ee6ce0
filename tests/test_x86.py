"""x86: MSR validation, tokens, the gfn hash, exception queueing, can_do_async_pf."""

import contextlib
import sys

import pytest
from conftest import enable_apf, machine, run
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpf.abi import KVM_ASYNC_PF_ENABLED as EN, KVM_ASYNC_PF_SEND_ALWAYS as SA
from asyncpf.check.mutants import MUTANTS
from asyncpf.host import mmu, x86
from asyncpf.host import vcpu as vcpu_mod
from asyncpf.host.kvm_main import kvm_is_error_hva
from asyncpf.host.vcpu import Stop, WrMsr
from asyncpf.machine import ERROR_GFN, MMIO_BASE_GFN
from asyncpf.standin import APF_AREA_GPA

LEG_MSR, SEED_MSR = 0x4B564D02, 0x13
RAM_TOP = (4 << 20)  # guest_mem of the small machines


# --- MSR_KVM_ASYNC_PF_EN --------------------------------------------------------------------

REFUSED = [
    *[("legacy", LEG_MSR, APF_AREA_GPA | EN | (1 << b), f"reserved bit {b}") for b in (2, 3, 4, 5)],
    ("legacy", LEG_MSR, 1 << 64 | APF_AREA_GPA | EN, ">= 2**64"),
    ("legacy", SEED_MSR, APF_AREA_GPA | EN, "seed MSR on a legacy host"),
    ("seed", LEG_MSR, APF_AREA_GPA | EN, "legacy MSR on a seed host"),
    ("seed", SEED_MSR, APF_AREA_GPA | EN | SA, "bit 1 reserved in the seed"),
    ("seed", SEED_MSR, RAM_TOP | EN, "seed: gfn beyond RAM"),
]


@pytest.mark.parametrize("gen,msr,data,why", REFUSED, ids=[r[3] for r in REFUSED])
def test_msr_refused_leaves_state_unchanged(gen, msr, data, why):
    m = machine(gen)
    vcpu = m.vcpus[0]
    assert enable_apf(m) == 0
    apf = vcpu.arch.apf
    before = (apf.msr_val, apf.data.gpa, apf.data.hva, apf.send_user_only, len(vcpu.async_pf.done))
    assert run(m, vcpu_mod.handle_wrmsr(vcpu, msr, data)) == 1
    assert (apf.msr_val, apf.data.gpa, apf.data.hva, apf.send_user_only, len(vcpu.async_pf.done)) == before
    last = m.tracer.text().splitlines()[-1]
    assert last.endswith(f"kvm_msr: msr_write {msr:x} = {data & (2**64 - 1):#x} (#GP)")
    assert vcpu.arch.exception.nr == x86.GP_VECTOR


BAD_GPA = [(RAM_TOP | EN, "gfn beyond the RAM slot"), (((MMIO_BASE_GFN - 1) << 12) | EN, "MMIO hole below the BAR"),
           ((ERROR_GFN << 12) | EN, "ERROR_GFN")]


@pytest.mark.parametrize("data,why", BAD_GPA, ids=[b[1] for b in BAD_GPA])
def test_legacy_bad_gpa_leaves_apf_half_enabled(data, why):
    """arch/x86/kvm/x86.c@v2.6.38 kvm_pv_enable_async_pf stores msr_val before it resolves the area, and
    kvm_gfn_to_hva_cache_init overwrites the cache before its check: the write is refused (#GP) yet APF reads
    as enabled, with a cache that can no longer be written -- fixed by 923ca078f08c (2025-26)."""
    m = machine("legacy")
    vcpu = m.vcpus[0]
    assert enable_apf(m) == 0
    apf = vcpu.arch.apf
    assert run(m, vcpu_mod.handle_wrmsr(vcpu, LEG_MSR, data)) == 1
    assert apf.msr_val == data and apf.msr_val & EN
    assert apf.data.gpa == data & ~0x3F and kvm_is_error_hva(apf.data.hva)
    assert x86.apf_put_user(vcpu, 1) == -14                  # no event can be written any more


@pytest.mark.parametrize("gen,flags,user_only", [
    ("legacy", EN | SA, False), ("legacy", EN, True), ("seed", EN, True)])
def test_msr_valid_enable(gen, flags, user_only):
    m = machine(gen)
    vcpu = m.vcpus[0]
    data = 0x3040 | flags
    assert run(m, vcpu_mod.handle_wrmsr(vcpu, m.gen.msr_async_pf_en, data)) == 0
    apf = vcpu.arch.apf
    assert apf.msr_val == data and apf.data.gpa == 0x3040 and apf.send_user_only is (user_only and gen == "legacy")
    assert m.tracer.text().splitlines()[-1].endswith(f"kvm_msr: msr_write {m.gen.msr_async_pf_en:x} = {data:#x}")


def test_msr_disable_accepted(gen):
    m = machine(gen)
    enable_apf(m)
    assert run(m, x86.kvm_set_msr_common(m.vcpus[0], m.gen.msr_async_pf_en, 0)) == 0
    assert m.vcpus[0].arch.apf.msr_val == 0 and not m.vcpus[0].async_pf.done


class MsrGuest:
    """Writes one MSR, records what is delivered, then stops."""

    def __init__(self, msr, data):
        self.ops, self.got = [WrMsr(msr, data)], []

    def next_op(self, vcpu):
        return self.ops.pop(0) if self.ops else Stop()

    def op_done(self, vcpu, op, result):
        self.got.append(("result", result))

    def deliver_exception(self, vcpu, nr, ec):
        self.got.append(("exc", nr, ec))

    def op_progress(self, *a):
        pass

    def deliver_interrupt(self, *a):
        pass

    def delivery_gfn(self, vcpu):
        return None


def test_refused_write_queues_gp_for_the_guest():
    from asyncpf.machine import Machine
    from conftest import small
    m = Machine(small("legacy"), lambda i: MsrGuest(LEG_MSR, APF_AREA_GPA | EN | 4))
    m.start().run()
    assert m.vcpus[0].guest.got == [("result", 1), ("exc", x86.GP_VECTOR, 0)]
    assert m.tracer.count("kvm_inj_exception") == 1


def test_area_in_pfnmap_slot_is_accepted_and_gets_the_wake_all():
    """The BAR is a memslot, so the host accepts the area there and writes the wake-all's reason into it."""
    from asyncpf.host.kvm_main import read_guest_bytes
    m = machine("legacy")
    vcpu = m.vcpus[0]
    assert run(m, x86.kvm_set_msr_common(vcpu, LEG_MSR, (MMIO_BASE_GFN << 12) | EN | SA)) == 0
    assert vcpu.arch.apf.data.gpa == MMIO_BASE_GFN << 12 and [w.wakeup_all for w in vcpu.async_pf.done] == [True]
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert vcpu.arch.exception.pending and vcpu.arch.exception.nr == x86.PF_VECTOR and vcpu.arch.cr2 == 0xFFFFFFFF
    assert read_guest_bytes(m.kvm, MMIO_BASE_GFN << 12, 4) == (2).to_bytes(4, "little")   # PAGE_READY


# --- tokens -------------------------------------------------------------------------------------

def test_token_format_per_vcpu():
    m = machine("legacy", vcpus=4)
    v3 = m.vcpus[3]
    for g in (40, 41, 42):
        mmu.kvm_arch_setup_async_pf(v3, g << 12, g)
        v3.arch.exception.pending = False
    tokens = [w.arch.token for w in v3.async_pf.queue]
    assert tokens == [0x0003, 0x1003, 0x2003]
    assert [ev.args[0] for ev in m.tracer.of("kvm_async_pf_not_present")] == tokens


def test_token_wraps_after_2_20_ids():
    m = machine("legacy", vcpus=4)
    v3 = m.vcpus[3]
    v3.arch.apf.id = (1 << 20) - 1
    for g in (40, 41):
        mmu.kvm_arch_setup_async_pf(v3, g << 12, g)
        v3.arch.exception.pending = False
    assert [w.arch.token for w in v3.async_pf.queue] == [0xFFFFF003, 0x00000003]
    assert v3.arch.apf.id == 1


# --- the gfn hash -------------------------------------------------------------------------------

def _homes():
    by_home = {}
    for g in range(1, 200_000):
        by_home.setdefault(x86.kvm_async_pf_hash_fn(g), []).append(g)
    return by_home


HOMES = _homes()
# a crowded pool: 6 gfns for each of homes 61, 62, 63, 0, 1 (clusters wrap around slot 63)
POOL = [g for h in (61, 62, 63, 0, 1) for g in HOMES[h][:6]]
_M = machine("legacy")
V = _M.vcpus[0]


def test_hash_range():
    assert set(HOMES) == set(range(64))
    assert all(0 <= x86.kvm_async_pf_hash_fn(g) < 64 for g in (0, 2**32 - 1, 2**40 + 7, 2**64 - 1))


def test_colliding_gfns_probe_linearly():
    x86.kvm_async_pf_hash_reset(V)
    a, b, c = HOMES[63][:3]
    for g in (a, b, c):
        x86.kvm_add_async_pf_gfn(V, g)
    assert [int(V.arch.apf.gfns[i]) for i in (63, 0, 1)] == [a, b, c]
    assert all(x86.kvm_find_async_pf_gfn(V, g) for g in (a, b, c))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(POOL)), max_size=60))
def test_hash_insert_delete_matches_a_set(ops):
    x86.kvm_async_pf_hash_reset(V)
    model = set()
    for add, g in ops:
        if add and g not in model:
            x86.kvm_add_async_pf_gfn(V, g)
            model.add(g)
        elif not add:
            x86.kvm_del_async_pf_gfn(V, g)
            model.discard(g)
        for p in POOL:
            assert x86.kvm_find_async_pf_gfn(V, p) == (p in model), (p, model)
    assert int((V.arch.apf.gfns != x86.GFN_SLOT_EMPTY).sum()) == len(model)


@pytest.mark.parametrize("mutant", [False, True])
def test_delete_without_shift_mutant_loses_a_gfn(mutant):
    m = machine("legacy")
    v = m.vcpus[0]
    bug = MUTANTS["hash_delete_no_shift"].bug() if mutant else contextlib.nullcontext()
    a, b = HOMES[10][:2]
    x86.kvm_add_async_pf_gfn(v, a)
    x86.kvm_add_async_pf_gfn(v, b)  # probes to slot 11
    with bug:
        x86.kvm_del_async_pf_gfn(v, a)
    assert x86.kvm_find_async_pf_gfn(v, b) is (not mutant)


# --- exceptions ---------------------------------------------------------------------------------

def test_pf_then_pf_is_double_fault_then_triple():
    m = machine("legacy")
    v = m.vcpus[0]
    x86.kvm_inject_page_fault(v, 0x1000, 0)
    x86.kvm_inject_page_fault(v, 0x2000, 0)
    exc = v.arch.exception
    assert (exc.nr, exc.error_code) == (x86.DF_VECTOR, 0) and v.stat["double_faults"] == 1
    assert not v.requests & x86.KVM_REQ_TRIPLE_FAULT
    x86.kvm_queue_exception(v, 6)
    assert v.requests & x86.KVM_REQ_TRIPLE_FAULT and v.stat["triple_faults"] == 1


def test_gp_after_pf_is_double_fault_benign_replaces():
    m = machine("legacy")
    v = m.vcpus[0]
    x86.kvm_inject_page_fault(v, 0x1000, 0)
    x86.kvm_queue_exception(v, x86.GP_VECTOR)
    assert v.arch.exception.nr == x86.DF_VECTOR
    v.arch.exception.pending = False
    x86.kvm_inject_page_fault(v, 0x1000, 0)
    x86.kvm_queue_exception(v, 6)  # #UD is benign: replaces
    assert v.arch.exception.nr == 6 and v.stat["double_faults"] == 1


def test_can_do_async_pf_and_reinjection(gen):
    m = machine(gen)
    v = m.vcpus[0]
    enable_apf(m)
    v.arch.exception.pending = False
    assert v.kvm.twins.can_do_async_pf(v)
    x86.kvm_queue_exception(v, x86.GP_VECTOR)
    assert not v.kvm.twins.can_do_async_pf(v)
    with MUTANTS["no_reinjection_check"].bug():
        assert not v.kvm.twins.can_do_async_pf(v)  # the twins hold the original function...
        assert sys.modules[f"asyncpf.host.{gen}.mmu"].can_do_async_pf(v)  # ...which the mutant replaced in its module


def test_legacy_can_do_async_pf_needs_interrupts():
    m = machine("legacy")
    v = m.vcpus[0]
    assert v.kvm.twins.can_do_async_pf(v)  # 2.6.38 does not look at the MSR here
    v.arch.rflags_if = False
    assert not v.kvm.twins.can_do_async_pf(v)


def test_seed_can_do_async_pf_needs_msr_and_cpl3():
    m = machine("seed")
    v = m.vcpus[0]
    assert not v.kvm.twins.can_do_async_pf(v)
    enable_apf(m)
    assert v.kvm.twins.can_do_async_pf(v)
    v.arch.cpl = 0
    assert not v.kvm.twins.can_do_async_pf(v)


def test_each_generation_hashes_gfns_with_its_kernels_hash_32():
    """hash.h's multiplier changed in v4.7: 2.6.38's table and 6.18's put the same gfn in different home slots."""
    from asyncpf.abi import generation
    from asyncpf.host.twins import select
    homes = {g: select(generation(g)).kvm_async_pf_hash_fn for g in ("legacy", "interrupt")}
    assert homes["legacy"](1) == 0x9E370001 >> 26 == 39
    assert homes["interrupt"](1) == 0x61C88647 >> 26 == 24
    assert homes["interrupt"](2**32 + 1) == 24   # only the low 32 bits of the gfn are hashed
    assert select(generation("seed")).kvm_async_pf_hash_fn is None   # the seed keeps no gfn table
