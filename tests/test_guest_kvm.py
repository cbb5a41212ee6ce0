"""The PV guest side of async PF (asyncpf.guest.kvm): registration, reason word, sleeper hash, wake-ups."""

from __future__ import annotations

import pytest

from asyncpf import abi
from asyncpf.abi import KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS
from asyncpf.guest import kvm as pv
from asyncpf.guest import sched
from asyncpf.guest.ops import Cli, SafeHalt, Schedule, Sti, Touch, Work
from asyncpf.host import x86
from asyncpf.host.kvm_main import read_guest_bytes, write_guest_bytes
from asyncpf.host.vcpu import Compute, RESCHEDULE_VECTOR
from asyncpf.workloads import kernel_section, steps

from conftest import boot_guest

MS = 1_000_000


def boot(vcpus=1, prefault_pages=0, msr_log=None, monkeypatch=None, **guest):
    if msr_log is not None:
        real = x86.kvm_set_msr_common

        def logged(vcpu, msr, data):
            msr_log.append((vcpu.vcpu_id, msr, data))
            return (yield from real(vcpu, msr, data))

        monkeypatch.setattr(x86, "kvm_set_msr_common", logged)
    return boot_guest(vcpus, prefault_pages, guest=guest)


def sleeper(cpu, pid, token, halted=False):
    t = sched.Task(pid=pid, comm=f"s{pid}", cpu=cpu.id, state=sched.TASK_UNINTERRUPTIBLE)
    node = pv.KvmTaskSleepNode(token, cpu.id, halted=halted, task=t)
    cpu.kernel.sleepers[x86.hash_32(token, 8)].insert(0, node)
    return t, node


# --- registration -------------------------------------------------------------------------

@pytest.mark.parametrize("preemptible", [True, False])
def test_cpu_init_writes_the_msr_and_sets_enabled(monkeypatch, preemptible):
    log = []
    m, k, _ = boot(vcpus=2, msr_log=log, monkeypatch=monkeypatch, preemptible=preemptible)
    gen = m.gen
    assert sorted(v for v, _, _ in log) == [0, 1]
    for vcpu_id, msr, data in log:
        cpu = k.cpus[vcpu_id]
        assert msr == gen.msr_async_pf_en
        assert data & ~0x3F == cpu.apf_gpa
        assert data & KVM_ASYNC_PF_ENABLED
        assert bool(data & KVM_ASYNC_PF_SEND_ALWAYS) == preemptible
        assert m.vcpus[vcpu_id].arch.apf.msr_val == data
        assert cpu.apf_enabled
        assert read_guest_bytes(m.kvm, cpu.apf_gpa + gen.area_size - 4, 4) == (1).to_bytes(4, "little")
    assert k.cpus[0].apf_gpa != k.cpus[1].apf_gpa


def test_non_pv_guest_never_writes_the_msr_and_faults_go_to_do_page_fault(monkeypatch):
    log = []
    m, k, _ = boot(msr_log=log, monkeypatch=monkeypatch, pv=False)
    assert log == [] and not k.cpus[0].apf_enabled and m.vcpus[0].arch.apf.msr_val == 0
    entered = []
    cpu = k.cpus[0]
    real_enter = type(cpu)._enter
    monkeypatch.setattr(type(cpu), "_enter", lambda self, name, make, irqs_on=False:
                        (entered.append(name), real_enter(self, name, make, irqs_on))[1])
    cpu.deliver_exception(m.vcpus[0], x86.PF_VECTOR, 0)
    assert entered == ["do_page_fault"]


def test_read_and_reset_pf_reason():
    m, k, _ = boot()
    cpu = k.cpus[0]
    write_guest_bytes(m.kvm, cpu.apf_gpa, abi.KVM_PV_REASON_PAGE_NOT_PRESENT.to_bytes(4, "little"))
    assert pv.kvm_read_and_reset_pf_reason(cpu) == abi.KVM_PV_REASON_PAGE_NOT_PRESENT
    assert read_guest_bytes(m.kvm, cpu.apf_gpa, 4) == bytes(4)
    assert pv.kvm_read_and_reset_pf_reason(cpu) == 0
    write_guest_bytes(m.kvm, cpu.apf_gpa, abi.KVM_PV_REASON_PAGE_READY.to_bytes(4, "little"))
    write_guest_bytes(m.kvm, cpu.apf_gpa + m.gen.area_size - 4, bytes(4))   # apf_reason.enabled cleared
    assert pv.kvm_read_and_reset_pf_reason(cpu) == 0      # APF off: not even read
    assert cpu.apf_enabled   # the word in the area decides, as in 2.6.38, not the model's mirror of it


# --- not present / page ready ----------------------------------------------------------------

def test_not_present_puts_the_task_to_sleep_and_page_ready_wakes_it():
    b = boot(prefault_pages=8192)
    m, k = b.machine, b.kernel
    gva = b.gva(b.swapped(1)[0])
    t = b.spawn("t", steps(Touch(gva), Work(1000)))
    m.run(m.env.now + 1 * MS)                               # the HDD read takes ~8 ms
    assert t.state == sched.TASK_UNINTERRUPTIBLE and not t.on_rq
    [node] = list(pv.all_nodes(k.sleepers))
    assert node.task is t and not node.halted and node.cpu == 0
    assert node.token & 0xFFF == 0
    assert node in k.sleepers[x86.hash_32(node.token, 8)]
    assert k.stats["sleeps"] == 1
    m.run(m.env.now + 50 * MS)
    assert t.state == "X" and t.cpu_ns == 1000
    assert list(pv.all_nodes(k.sleepers)) == [] and k.leaks() == []
    assert k.cpus[0].stats["apf_ready"] >= 1


def test_page_ready_first_leaves_a_dummy_that_the_wait_consumes():
    m, k, _ = boot()
    cpu = k.cpus[0]
    token = 0x5000
    pv.kvm_async_pf_task_wake(cpu, token)
    [dummy] = list(pv.all_nodes(k.sleepers))
    assert dummy.task is None and dummy.token == token and dummy.cpu == 0
    assert dummy in k.sleepers[x86.hash_32(token, 8)]
    assert k.leaks() and "dummy node" in k.leaks()[0]
    wait = pv.kvm_async_pf_task_wait(cpu, token)
    with pytest.raises(StopIteration):
        next(wait)                                          # returns without sleeping
    assert list(pv.all_nodes(k.sleepers)) == [] and k.stats["dummies_consumed"] == 1
    assert k.stats["sleeps"] == 0 and k.leaks() == []


def test_sleeper_wait_loop_marks_d_enables_irqs_and_schedules():
    m, k, _ = boot()
    cpu = k.cpus[0]
    t = sched.Task(pid=50, comm="t", cpu=0, on_rq=True)
    cpu.rq.curr = t
    wait = pv.kvm_async_pf_task_wait(cpu, 0x7000)
    ops = [next(wait), next(wait), next(wait)]
    assert ops == [Sti(), Compute(k.params["context_switch_ns"]), Schedule()]
    assert t.state == sched.TASK_UNINTERRUPTIBLE
    pv.kvm_async_pf_task_wake(cpu, 0x7000)
    assert t.state == sched.TASK_RUNNING
    assert next(wait) == Cli()
    with pytest.raises(StopIteration):
        next(wait)
    assert t.state == sched.TASK_RUNNING and list(pv.all_nodes(k.sleepers)) == []


@pytest.mark.parametrize("who", ["idle", "preempt_disabled"])
def test_idle_or_preempt_disabled_context_halts_and_page_ready_sends_an_ipi(who):
    m, k, _ = boot(vcpus=2)
    cpu = k.cpus[1]
    if who == "preempt_disabled":
        t = sched.Task(pid=51, comm="k", cpu=1, on_rq=True, preempt_count=1)
        cpu.rq.curr = t
    else:
        t = cpu.idle
        assert cpu.curr is t
    wait = pv.kvm_async_pf_task_wait(cpu, 0x9001)
    assert next(wait) == SafeHalt()
    [node] = list(pv.all_nodes(k.sleepers))
    assert node.halted and node.task is t and t.state == sched.TASK_RUNNING
    assert k.stats["halted_waits"] == 1 and k.stats["sleeps"] == 0
    m.vcpus[1].irr.discard(RESCHEDULE_VECTOR)
    pv.kvm_async_pf_task_wake(cpu, 0x9001)
    assert RESCHEDULE_VECTOR in m.vcpus[1].irr
    assert next(wait) == Cli()
    with pytest.raises(StopIteration):
        next(wait)


def test_kernel_section_fault_halts_end_to_end():
    b = boot(prefault_pages=8192)
    m, k = b.machine, b.kernel
    gva = b.gva(b.swapped(1)[0])
    t = b.spawn("ks", kernel_section(Touch(gva, kernel=True), Work(1000)))
    m.run(m.env.now + 100 * MS)
    assert t.state == "X"
    assert k.stats["halted_waits"] == 1 and k.stats["sleeps"] == 0
    assert k.leaks() == []


def test_broadcast_wakes_every_node_of_this_cpu_only_and_drops_its_dummies():
    m, k, _ = boot(vcpus=2)
    c0, c1 = k.cpus
    t0, _ = sleeper(c0, 60, 0x1000)
    t0b, _ = sleeper(c0, 61, 0x2000)
    t1, n1 = sleeper(c1, 62, 0x1001)
    pv.kvm_async_pf_task_wake(c0, 0x3000)                   # a dummy of cpu 0
    pv.kvm_async_pf_task_wake(c1, 0x3001)                   # a dummy of cpu 1
    pv.kvm_async_pf_task_wake(c0, abi.BROADCAST_TOKEN)
    assert t0.state == t0b.state == sched.TASK_RUNNING
    assert t1.state == sched.TASK_UNINTERRUPTIBLE
    left = list(pv.all_nodes(k.sleepers))
    assert {n.token for n in left} == {0x1001, 0x3001}
    assert k.stats["dummies_dropped"] == 1
    assert any("1 dummy nodes unlinked by wake-all and never freed" in x for x in k.leaks())


def test_cpu_offline_disables_apf_and_wakes_local_sleepers(monkeypatch):
    log = []
    m, k, _ = boot(vcpus=2, msr_log=log, monkeypatch=monkeypatch)
    c0, c1 = k.cpus
    t0, _ = sleeper(c0, 70, 0x4000)
    t1, _ = sleeper(c1, 71, 0x4001)
    log.clear()
    off = pv.kvm_guest_cpu_offline(c0)
    op = next(off)
    assert op.msr == m.gen.msr_async_pf_en and op.data == 0
    with pytest.raises(StopIteration):
        off.send(0)
    assert not c0.apf_enabled and c1.apf_enabled
    assert read_guest_bytes(m.kvm, c0.apf_gpa + m.gen.area_size - 4, 4) == bytes(4)
    assert t0.state == sched.TASK_RUNNING and t1.state == sched.TASK_UNINTERRUPTIBLE
    assert pv.kvm_read_and_reset_pf_reason(c0) == 0


def test_disable_tests_the_areas_enabled_word_not_the_models_mirror():
    """2.6.38's kvm_pv_disable_apf returns at once unless apf_reason.enabled (in the area) is set."""
    m, k, _ = boot()
    cpu = k.cpus[0]
    write_guest_bytes(m.kvm, cpu.apf_gpa + m.gen.area_size - 4, bytes(4))   # enabled cleared, the mirror still set
    assert cpu.apf_enabled and list(pv.kvm_pv_disable_apf(cpu)) == []
    write_guest_bytes(m.kvm, cpu.apf_gpa + m.gen.area_size - 4, (1).to_bytes(4, "little"))
    assert [op.data for op in pv.kvm_pv_disable_apf(cpu)] == [0]


def test_a_refused_registration_oopses_the_pf_era_guest(monkeypatch):
    """2.6.3x's wrmsrl has no exception-table entry: the #GP of a refused MSR_KVM_ASYNC_PF_EN write is an oops."""
    real = x86.kvm_set_msr_common
    en = abi.generation("legacy").msr_async_pf_en

    def refuse(vcpu, msr, data):
        if msr == en and data:
            return 1
        return (yield from real(vcpu, msr, data))

    monkeypatch.setattr(x86, "kvm_set_msr_common", refuse)
    m, k, _ = boot()
    assert k.panicked.startswith("unexpected exception #GP on cpu 0") and not k.cpus[0].apf_enabled


def test_each_generation_hashes_sleepers_with_its_kernels_hash_32():
    """The sleeper table's bucket is hash_32(token, 8) with the generation's hash.h multiplier (changed in v4.7)."""
    from types import SimpleNamespace

    from asyncpf.guest import interrupt, legacy, seed
    token = 0x1000
    for module, multiplier in ((seed, 0x9E370001), (legacy, 0x9E370001), (interrupt, 0x61C88647)):
        kernel = SimpleNamespace(twins=module, sleepers=pv.new_sleeper_table())
        bucket = pv._bucket(SimpleNamespace(kernel=kernel), token)
        assert bucket is kernel.sleepers[((token * multiplier) & 0xFFFFFFFF) >> 24], module.__name__
    assert legacy.SLEEPER_HASH(token, 8) != interrupt.SLEEPER_HASH(token, 8)
