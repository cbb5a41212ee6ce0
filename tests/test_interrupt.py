"""The interrupt era (arch/x86/kvm/x86.c@v6.18): MSR writes accepted or refused as 6.18 does, the state each
leaves, page-ready as an interrupt held back by a busy slot or a disabled LAPIC, the ACK, the non-zero token."""

import pytest
from conftest import machine, run

from asyncpf import abi
from asyncpf.abi import (
    BROADCAST_TOKEN,
    KVM_ASYNC_PF_DELIVERY_AS_INT as INT,
    KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT as VMEXIT,
    KVM_ASYNC_PF_ENABLED as EN,
    KVM_ASYNC_PF_SEND_ALWAYS as SA,
)
from asyncpf.host import x86
from asyncpf.host import vcpu as vcpu_mod
from asyncpf.host.interrupt import async_pf as apf_mod
from asyncpf.host.interrupt import lapic, mmu
from asyncpf.host.interrupt import x86 as ix86
from asyncpf.host.kvm_main import read_guest_bytes, write_guest_bytes
from asyncpf.standin import APF_AREA_GPA

EN_MSR, INT_MSR, ACK_MSR = 0x4B564D02, 0x4B564D06, 0x4B564D07
ASYNC_PF, ASYNC_PF_INT, ASYNC_PF_VMEXIT = 1 << 4, 1 << 14, 1 << 10
RAM_TOP = 4 << 20
GOOD = APF_AREA_GPA | EN | INT


def _vcpu(irqchip=True, enforce=False, cpuid=ASYNC_PF | ASYNC_PF_INT):
    m = machine("interrupt")
    m.kvm.irqchip_in_kernel = irqchip
    v = m.vcpus[0]
    v.arch.pv_cpuid_enforce = enforce
    v.arch.cpuid_features = cpuid
    return m, v


def _wrmsr(m, v, msr, data):
    return run(m, x86.kvm_set_msr_common(v, msr, data))


def _state(v):
    a = v.arch.apf
    return a.msr_en_val, a.msr_int_val, a.vec, a.send_always, a.delivery_as_pf_vmexit, len(v.async_pf.done)


# (msr, data, irqchip, enforce, cpuid, refused, (msr_en_val, msr_int_val, vec, send_always, vmexit, done))
MSR_TABLE = [
    ("EN enable, INT delivery", EN_MSR, GOOD, True, False, ASYNC_PF | ASYNC_PF_INT, 0, (GOOD, 0, 0, False, False, 1)),
    ("EN enable + SEND_ALWAYS", EN_MSR, GOOD | SA, True, False, ASYNC_PF | ASYNC_PF_INT, 0,
     (GOOD | SA, 0, 0, True, False, 1)),
    ("EN reserved bit 4", EN_MSR, GOOD | 1 << 4, True, False, ASYNC_PF | ASYNC_PF_INT, 1, (0, 0, 0, False, False, 0)),
    ("EN reserved bit 5", EN_MSR, GOOD | 1 << 5, True, False, ASYNC_PF | ASYNC_PF_INT, 1, (0, 0, 0, False, False, 0)),
    ("EN legacy bits only: stored, not enabled, no wake-all", EN_MSR, APF_AREA_GPA | EN | SA, True, False,
     ASYNC_PF | ASYNC_PF_INT, 0, (APF_AREA_GPA | EN | SA, 0, 0, False, False, 0)),
    ("EN 0 without irqchip", EN_MSR, 0, False, False, ASYNC_PF | ASYNC_PF_INT, 0, (0, 0, 0, False, False, 0)),
    ("EN non-zero without irqchip", EN_MSR, GOOD, False, False, ASYNC_PF | ASYNC_PF_INT, 1,
     (0, 0, 0, False, False, 0)),
    ("EN PF_VMEXIT without its CPUID bit, not enforced", EN_MSR, GOOD | VMEXIT, True, False, ASYNC_PF | ASYNC_PF_INT, 0,
     (GOOD | VMEXIT, 0, 0, False, True, 1)),
    ("EN PF_VMEXIT without its CPUID bit, enforced", EN_MSR, GOOD | VMEXIT, True, True, ASYNC_PF | ASYNC_PF_INT, 1,
     (0, 0, 0, False, False, 0)),
    ("EN DELIVERY_AS_INT without ASYNC_PF_INT, enforced", EN_MSR, GOOD, True, True, ASYNC_PF, 1,
     (0, 0, 0, False, False, 0)),
    ("EN without ASYNC_PF, enforced", EN_MSR, GOOD, True, True, ASYNC_PF_INT, 1, (0, 0, 0, False, False, 0)),
    ("EN GPA beyond RAM: refused, left half-enabled (6.18)", EN_MSR, RAM_TOP | EN | INT, True, False,
     ASYNC_PF | ASYNC_PF_INT, 1, (RAM_TOP | EN | INT, 0, 0, False, False, 0)),
    ("INT vector 0xf3", INT_MSR, 0xF3, True, False, ASYNC_PF | ASYNC_PF_INT, 0, (0, 0xF3, 0xF3, False, False, 0)),
    ("INT bit 8 reserved", INT_MSR, 0x1F3, True, False, ASYNC_PF | ASYNC_PF_INT, 1, (0, 0, 0, False, False, 0)),
    ("INT without irqchip", INT_MSR, 0xF3, False, False, ASYNC_PF | ASYNC_PF_INT, 1, (0, 0, 0, False, False, 0)),
    ("INT without ASYNC_PF_INT, enforced", INT_MSR, 0xF3, True, True, ASYNC_PF, 1, (0, 0, 0, False, False, 0)),
    ("ACK 0 ignored", ACK_MSR, 0, True, False, ASYNC_PF | ASYNC_PF_INT, 0, (0, 0, 0, False, False, 0)),
    ("ACK without ASYNC_PF_INT, enforced (gated on INT since 2021)", ACK_MSR, 1, True, True, ASYNC_PF, 1,
     (0, 0, 0, False, False, 0)),
]


@pytest.mark.parametrize("row", MSR_TABLE, ids=[r[0] for r in MSR_TABLE])
def test_msr_table(row):
    _, msr, data, irqchip, enforce, cpuid, refused, state = row
    m, v = _vcpu(irqchip, enforce, cpuid)
    assert _wrmsr(m, v, msr, data) == refused
    assert _state(v) == state


def test_wake_all_at_enable_is_an_interrupt_with_token_all_ones_in_the_slot():
    m, v = _vcpu()
    assert _wrmsr(m, v, INT_MSR, 0xF3) == 0
    assert _wrmsr(m, v, EN_MSR, GOOD) == 0
    assert v.requests & ix86.KVM_REQ_APF_READY          # present_queued: done was empty
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    assert v.arch.apf.pageready_pending and 0xF3 in v.irr
    assert int.from_bytes(read_guest_bytes(m.kvm, APF_AREA_GPA + 4, 4), "little") == BROADCAST_TOKEN
    assert "kvm_apic_accept_irq: apicid 0 vec 243 (Fixed|edge)" in m.tracer.text()
    assert v.async_pf.queued == 0 and not v.async_pf.done


def _completed_item(m, v, gfn):
    """An item whose not-present was injected and whose worker has finished: what page-ready is sent for."""
    work = apf_mod.alloc_work(v)
    work.arch.token, work.arch.gfn, work.notpresent_injected = mmu.alloc_apf_token(v), gfn, True
    x86.kvm_add_async_pf_gfn(v, gfn)
    work.done, work.state = True, "done"
    work.finished.succeed(work.id)
    v.async_pf.queue.append(work)
    v.async_pf.queued += 1
    v.async_pf.done.append(work)
    m.env.run()
    return work


def test_a_busy_slot_holds_the_next_page_ready_until_the_guest_clears_it_and_acks():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    _wrmsr(m, v, EN_MSR, GOOD)
    run(m, apf_mod.kvm_check_async_pf_completion(v))                 # the wake-all fills the slot
    a, b = _completed_item(m, v, 0x100), _completed_item(m, v, 0x101)
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    assert list(v.async_pf.done) == [a, b]                            # slot busy: nothing dequeued
    assert _wrmsr(m, v, ACK_MSR, 1) == 0                              # ACK without clearing the token: still busy
    assert list(v.async_pf.done) == [a, b]
    write_guest_bytes(m.kvm, APF_AREA_GPA + 4, bytes(4))              # the guest consumed the token
    assert _wrmsr(m, v, ACK_MSR, 1) == 0
    assert list(v.async_pf.done) == [b]                               # one page-ready, then the slot is busy again
    assert int.from_bytes(read_guest_bytes(m.kvm, APF_AREA_GPA + 4, 4), "little") == a.arch.token


def test_a_software_disabled_lapic_holds_page_ready_and_enabling_it_asks_again():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    assert _wrmsr(m, v, lapic.X2APIC_MSR_SPIV, 0xFF) == 0            # SPIV bit 8 clear: software-disabled
    _wrmsr(m, v, EN_MSR, GOOD)
    v.requests = 0
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    assert len(v.async_pf.done) == 1 and not v.arch.apf.pageready_pending
    assert _wrmsr(m, v, lapic.X2APIC_MSR_SPIV, 0x1FF) == 0
    assert v.requests & ix86.KVM_REQ_APF_READY
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    assert not v.async_pf.done and v.arch.apf.pageready_pending and 0xF3 in v.irr


def test_a_disabled_lapic_drops_a_fixed_interrupt_but_traces_it():
    m, v = _vcpu()
    v.apic_sw_enabled = False
    assert not lapic.kvm_apic_set_irq(v, 0xF3)
    assert not v.irr and "vec 243" in m.tracer.text()


def test_the_token_is_never_zero():
    m, v = _vcpu()
    v.arch.apf.id = 1 << 20                    # id << 12 wraps to 0 in u32: 2022's alloc_apf_token bumps it to 1
    assert mmu.alloc_apf_token(v) == abi.make_token(1, 0) == 0x1000
    v.arch.apf.id = 0
    assert mmu.alloc_apf_token(v) == 0x1000    # the very first token of vcpu 0 is 0x1000 too


def test_not_present_needs_user_mode_without_send_always_and_halts_otherwise():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    _wrmsr(m, v, EN_MSR, GOOD)
    v.arch.cpl = 0
    assert not ix86.kvm_can_deliver_async_pf(v)
    work = apf_mod.alloc_work(v)
    work.arch.token, work.arch.gfn = 0x1000, 0x200
    assert not ix86.kvm_arch_async_page_not_present(v, work)
    assert v.requests & x86.KVM_REQ_APF_HALT and not v.arch.exception.pending
    v.arch.cpl = 3
    assert ix86.kvm_arch_async_page_not_present(v, work)
    assert v.arch.exception.pending and v.arch.cr2 == 0x1000
    assert int.from_bytes(read_guest_bytes(m.kvm, APF_AREA_GPA, 4), "little") == abi.KVM_PV_REASON_PAGE_NOT_PRESENT


def test_page_ready_for_a_never_injected_not_present_is_not_sent():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    _wrmsr(m, v, EN_MSR, GOOD)
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    write_guest_bytes(m.kvm, APF_AREA_GPA + 4, bytes(4))
    v.irr.clear()
    work = _completed_item(m, v, 0x300)
    work.notpresent_injected = False
    v.arch.apf.halted = True
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    assert not v.irr and not v.arch.apf.halted                # unhalted, but no interrupt (bugzilla 208081)


def test_vcpu_reset_zeroes_both_msrs_and_clears_the_queue_but_keeps_pageready_pending():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    _wrmsr(m, v, EN_MSR, GOOD)
    run(m, apf_mod.kvm_check_async_pf_completion(v))
    _completed_item(m, v, 0x400)
    run(m, ix86.kvm_vcpu_reset(v))
    a = v.arch.apf
    assert (a.msr_en_val, a.msr_int_val, v.async_pf.queued, len(v.async_pf.done)) == (0, 0, 0, 0)
    assert a.pageready_pending and a.vec == 0xF3     # 6.18 leaves these as they were
    assert not v.irr and not v.isr


def test_runnable_counts_a_completion_and_a_deliverable_interrupt():
    m, v = _vcpu()
    v.arch.mp_state = x86.KVM_MP_STATE_HALTED
    assert not ix86.kvm_arch_vcpu_runnable(v)
    v.irr.add(0xF3)
    assert ix86.kvm_arch_vcpu_runnable(v)
    v.isr.add(0xF5)                                    # a higher-priority vector in service masks it
    assert not ix86.kvm_arch_vcpu_runnable(v)
    vcpu_mod.apic_eoi(v)
    assert ix86.kvm_arch_vcpu_runnable(v)


@pytest.mark.parametrize("msr,enforce,cpuid,host,write_ok,read", [
    (ACK_MSR, True, ASYNC_PF, False, 1, (1, 0)),        # the guest: #GP both ways without ASYNC_PF_INT
    (ACK_MSR, True, ASYNC_PF, True, 1, (1, 0)),         # the VMM too, even 0 (until 5bb9ac186512)
    (INT_MSR, True, ASYNC_PF, True, 1, (1, 0)),
    (INT_MSR, False, ASYNC_PF, False, 0, (0, 0)),       # no enforcement: every PV MSR is there
    (EN_MSR, True, ASYNC_PF_INT, False, 1, (1, 0)),
    (EN_MSR, True, ASYNC_PF_INT, True, 1, (1, 0)),
])
def test_unsupported_msrs_for_guest_and_vmm(msr, enforce, cpuid, host, write_ok, read):
    """arch/x86/kvm/x86.c@v6.18 kvm_set_msr_common / kvm_get_msr_common: an async PF MSR whose PV feature is not
    offered under enforcement fails with 1, for the guest and the VMM alike (5bb9ac186512, after v6.18, made it
    "unsupported", which kvm_do_msr_access lets the VMM write 0 to and read 0 from)."""
    m, v = _vcpu(enforce=enforce, cpuid=cpuid)
    assert run(m, x86.kvm_set_msr_common(v, msr, 0, host_initiated=host)) == write_ok
    assert x86.kvm_get_msr_common(v, msr, host_initiated=host) == read


def test_msrs_read_back_what_was_stored():
    m, v = _vcpu()
    _wrmsr(m, v, INT_MSR, 0xF3)
    _wrmsr(m, v, EN_MSR, GOOD)
    assert [x86.kvm_get_msr_common(v, msr) for msr in (EN_MSR, INT_MSR, ACK_MSR)] == [(0, GOOD), (0, 0xF3), (0, 0)]
    lm = machine("legacy")
    assert x86.kvm_get_msr_common(lm.vcpus[0], EN_MSR) == (0, 0)
    assert x86.kvm_get_msr_common(lm.vcpus[0], INT_MSR) == (1, 0)


def test_guest_cpu_offline_wakes_its_waiters_but_a_shutdown_does_not():
    from asyncpf.build import small_guest
    from asyncpf.guest import interrupt as gi
    from asyncpf.guest.kernel import GuestConfig
    from asyncpf.guest.ops import Cli, Sti, Touch, Work
    from asyncpf.workloads import steps
    for shutdown in (False, True):
        b = small_guest(GuestConfig(), generation="interrupt", trace=False, swap_device="hdd_7200_2010")
        cpu = b.kernel.cpus[0]
        (gfn,) = b.swapped(1)
        sleeper = b.spawn("sleeper", steps(Touch(b.gva(gfn))))

        def off():
            yield Cli()
            yield from gi.kvm_guest_cpu_offline(cpu, shutdown=shutdown)
            yield Sti()
        offliner = b.spawn("off", steps(Work(200_000), off))
        left = b.run_until_exited([sleeper, offliner], 100_000_000)
        assert not cpu.apf_enabled and b.kernel.stats["sleeps"] == 1
        assert (sleeper in left) == shutdown     # after a reboot/kexec shutdown nobody wakes the old waiter
