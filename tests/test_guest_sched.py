"""The guest's CFS twin (asyncpf.guest.sched): pick order, slices, placement, preemption, wake-ups."""

from __future__ import annotations

import pytest

from asyncpf import abi
from asyncpf.guest import sched
from asyncpf.guest.ops import Touch, Work
from asyncpf.host.vcpu import RESCHEDULE_VECTOR
from asyncpf.workloads import forever, steps

from conftest import boot_guest

MS = 1_000_000


def boot(vcpus=1, pv=True, async_pf=True, hz=None, prefault_pages=0, trace=False, **host):
    return boot_guest(vcpus, prefault_pages, trace, guest=dict(pv=pv, hz=hz), async_pf=async_pf, **host)


def task(cpu, pid, vruntime=0, state=sched.TASK_RUNNING):
    return sched.Task(pid=pid, comm=f"t{pid}", cpu=cpu.id, vruntime=vruntime, state=state)


@pytest.fixture
def cpu():
    m, k, _ = boot()
    return k.cpus[0]


def test_least_vruntime_runs_next_ties_in_queue_order(cpu):
    a, b, c, d = (task(cpu, p, v) for p, v in ((1, 30), (2, 10), (3, 20), (4, 10)))
    for t in (a, b, c, d):
        sched.enqueue_task_fair(cpu, t, wakeup=False)
    assert [sched.pick_next_task_fair(cpu) for _ in range(4)] == [b, d, c, a]
    assert sched.pick_next_task_fair(cpu) is None


@pytest.mark.parametrize("nr, slice_ns", [(1, 5 * MS), (2, 2_500_000), (4, 1_250_000), (5, MS), (6, MS), (12, MS)])
def test_sched_slice_is_latency_shared_then_min_granularity(cpu, nr, slice_ns):
    cpu.rq.curr = cpu.idle
    cpu.rq.queue = [task(cpu, 10 + i) for i in range(nr)]
    assert sched.sched_slice(cpu) == slice_ns


def test_tick_preempts_only_after_the_slice(cpu):
    a, b = task(cpu, 1), task(cpu, 2)
    sched.enqueue_task_fair(cpu, b, wakeup=False)
    a.on_rq = True
    cpu.rq.curr = a
    cpu.need_resched = False
    a.exec_start = cpu.kernel.env.now
    a.prev_sum_exec_runtime = 0
    a.sum_exec_runtime = 2_500_000                         # exactly the slice of 2 tasks: not yet
    sched.check_preempt_tick(cpu)
    assert not cpu.need_resched
    a.sum_exec_runtime = 2_500_001
    sched.check_preempt_tick(cpu)
    assert cpu.need_resched


def test_tick_preemption_end_to_end_every_third_1ms_tick():
    """Two hogs, HZ=1000: the 2.5 ms slice is exceeded at the third tick, so a switch every ~3 ticks."""
    m, k, _ = boot(hz=1000)
    k.spawn("a", forever(Work(None)), 0)
    k.spawn("b", forever(Work(None)), 0)
    m.run(m.env.now + 1 * MS)
    cs0, ticks0 = k.cpus[0].stats["context_switches"], k.cpus[0].stats["ticks"]
    m.run(m.env.now + 300 * MS)
    switches = k.cpus[0].stats["context_switches"] - cs0
    ticks = k.cpus[0].stats["ticks"] - ticks0
    assert ticks == pytest.approx(300, abs=2)
    assert switches == pytest.approx(ticks / 3, abs=3)


def test_place_entity_gives_at_most_half_a_latency_and_never_moves_back(cpu):
    cpu.rq.min_vruntime = 100 * MS
    sleeper = task(cpu, 1, vruntime=0)
    sched.place_entity(cpu, sleeper, initial=False)
    assert sleeper.vruntime == 100 * MS - 2_500_000
    recent = task(cpu, 2, vruntime=99 * MS)
    sched.place_entity(cpu, recent, initial=False)
    assert recent.vruntime == 99 * MS                      # never backwards
    new = task(cpu, 3, vruntime=0)
    sched.place_entity(cpu, new, initial=True)
    assert new.vruntime == 100 * MS


def test_waking_sleeper_credit_is_at_most_half_latency_behind_the_running_task():
    m, k, _ = boot()
    hog = k.spawn("hog", forever(Work(None)), 0)
    m.run(m.env.now + 50 * MS)
    # somewhere in the middle of a tick period: the hog has run ~3 ms since it was last charged
    tick = 1_000_000_000 // k.hz
    m.run(m.env.now - m.env.now % tick + tick + 3 * MS)
    sleeper = sched.Task(pid=999, comm="sleeper", cpu=0, vruntime=0, state=sched.TASK_UNINTERRUPTIBLE)
    sched.try_to_wake_up(k.cpus[0], sleeper)
    sched.update_curr(k.cpus[0])
    assert hog.vruntime - sleeper.vruntime <= k.params["sched_latency_ns"] // 2


def test_check_preempt_wakeup_only_beyond_the_granularity(cpu):
    curr = task(cpu, 1, vruntime=50 * MS)
    curr.on_rq = True
    curr.exec_start = cpu.kernel.env.now
    cpu.rq.curr = curr
    cpu.need_resched = False
    gran = cpu.params["sched_wakeup_granularity_ns"]
    sched.check_preempt_wakeup(cpu, cpu, task(cpu, 2, vruntime=50 * MS - gran))
    assert not cpu.need_resched
    sched.check_preempt_wakeup(cpu, cpu, task(cpu, 3, vruntime=50 * MS - gran - 1))
    assert cpu.need_resched


def test_try_to_wake_up_on_another_cpu_sends_a_reschedule_ipi():
    m, k, _ = boot(vcpus=2)
    c0, c1 = k.cpus
    sleeper = task(c1, 7, state=sched.TASK_UNINTERRUPTIBLE)
    assert RESCHEDULE_VECTOR not in m.vcpus[1].irr
    ipis = k.stats["resched_ipis"]
    assert sched.try_to_wake_up(c0, sleeper) is True
    assert sleeper.state == sched.TASK_RUNNING and sleeper in c1.rq.queue
    assert c1.need_resched and not c0.need_resched
    assert RESCHEDULE_VECTOR in m.vcpus[1].irr
    assert k.stats["resched_ipis"] == ipis + 1
    assert sched.try_to_wake_up(c0, sleeper) is False      # already running: nothing more
    local = task(c0, 8, state=sched.TASK_UNINTERRUPTIBLE)
    sched.try_to_wake_up(c0, local)
    assert k.stats["resched_ipis"] == ipis + 1             # same cpu: flag only, no IPI


def test_granularities_scale_with_the_number_of_cpus():
    m, k, _ = boot(vcpus=4)
    cpu = k.cpus[0]
    cpu.rq.curr = cpu.idle
    cpu.rq.queue = [task(cpu, 10), task(cpu, 11)]
    assert sched.sched_slice(cpu) == 3 * 5 * MS // 2       # factor 1 + ilog2(4) = 3


def test_host_stall_is_charged_to_the_current_task_but_is_not_its_work():
    b = boot(pv=False, async_pf=False, prefault_pages=8192)
    m = b.machine
    gva = b.gva(b.swapped(1)[0])
    t = b.spawn("t", steps(Touch(gva), Work(MS)))
    m.reset_accounts()
    m.run(m.env.now + 100 * MS)
    m.flush_accounts()
    assert t.state == "X"
    stalled = m.vcpus[0].acct["stalled"]
    assert stalled > 2 * MS                                # an HDD swap-in
    assert t.cpu_ns == MS
    assert t.sum_exec_runtime >= MS + stalled


# --- fair share, end to end -----------------------------------------------------------------

def test_two_hogs_on_one_vcpu_share_it_equally():
    m, k, _ = boot()
    a = k.spawn("a", forever(Work(None)), 0)
    b = k.spawn("b", forever(Work(None)), 0)
    m.run(m.env.now + 1_000 * MS)
    assert a.cpu_ns + b.cpu_ns > 0.95 * 1_000 * MS
    assert a.cpu_ns == pytest.approx(b.cpu_ns, rel=0.03)


def test_a_woken_sleeper_preempts_a_hog_within_microseconds():
    """An async-PF sleeper woken by page-ready runs at once (wake-up preemption), not at the next tick."""
    b = boot(prefault_pages=8192, trace=True)
    m, k = b.machine, b.kernel
    gva = b.gva(b.swapped(1)[0])
    resumed = []

    def sleeper(task):
        yield Touch(gva)
        resumed.append(m.env.now)
        yield Work(10_000)

    hog = k.spawn("hog", forever(Work(None)), 0)
    m.run(m.env.now + 20 * MS)                             # the hog builds up vruntime
    s = b.spawn("sleeper", sleeper)
    m.run(m.env.now + 100 * MS)
    assert k.stats["sleeps"] == 1 and s.state == "X"
    [ready] = [ev.t_ns for ev in m.tracer.of("kvm_async_pf_ready")
               if ev.args[0] & 0xFFF == 0 and ev.args[0] != abi.BROADCAST_TOKEN][-1:]
    assert resumed and 0 <= resumed[0] - ready < 50_000    # a tick is 4 ms
    assert hog.cpu_ns > 90 * MS                            # the hog ran while the sleeper slept


@pytest.mark.parametrize("preempt, resumes_with_if", [(False, True), (True, False)])
def test_schedule_returns_with_interrupts_on_unless_preempted_from_an_interrupt(cpu, preempt, resumes_with_if):
    """A plain schedule() comes back with interrupts on (finish_task_switch's spin_unlock_irq), even when called with
    them off; preempt_schedule_irq comes back as it was called, with them off."""
    prev = task(cpu, 1)
    cpu.rq.curr = prev
    cpu.vcpu.arch.cpl, cpu.vcpu.arch.rflags_if = 0, False
    sched.schedule(cpu, preempt=preempt)
    assert prev.regs == (0, resumes_with_if)
