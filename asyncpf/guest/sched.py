"""The guest scheduler: per-cpu runqueues with fair timeslices (CFS), tick and wake-up preemption.

Mirrors ``kernel/sched.c`` and ``kernel/sched_fair.c`` of 2.6.32-2.6.38, the
guests of the 2010 benchmark, reduced to what decides who waits for what:
every task has equal weight, the task with the least ``vruntime`` runs next,
the tick preempts a task that has used its slice, a woken task preempts one
that is ahead of it by more than the wake-up granularity, and a sleeper is
placed at most half a latency behind the queue when it wakes.

The guest's clock is the engine's (kvmclock): time the vcpu spends stalled
in the host is charged to whatever task was current.  With
``GuestConfig(unstable_sched_clock=True)`` the runqueue clock is filtered as
2010's x86 guests filtered it (:mod:`asyncpf.guest.sched_clock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..mirrors import mirrors
from .sched_clock import sched_clock_local, sched_clock_tick

if TYPE_CHECKING:
    from .kernel import GuestCpu

TASK_RUNNING = "R"
TASK_UNINTERRUPTIBLE = "D"
TASK_DEAD = "X"


@dataclass(eq=False)
class Task:
    """The slice of ``struct task_struct`` (and its ``sched_entity``) the model needs.

    ``stack`` holds the task's execution contexts: its user program at the
    bottom, then any exception/interrupt handlers it is inside of.
    ``regs`` are the CPL and IF it had when it was switched out.
    ``cpu_ns`` is CPU time spent in its own user-mode work -- the benchmark's
    "work" -- as opposed to ``sum_exec_runtime``, which the scheduler charges
    by the guest clock (host stalls included).
    """

    pid: int
    comm: str
    cpu: int
    stack: list[Any] = field(default_factory=list)
    state: str = TASK_RUNNING
    vruntime: int = 0
    sum_exec_runtime: int = 0
    prev_sum_exec_runtime: int = 0
    exec_start: int = 0
    on_rq: bool = False
    is_idle: bool = False
    preempt_count: int = 0
    regs: tuple[int, bool] = (3, True)
    mm: Any = None
    cpu_ns: int = 0
    enqueue_seq: int = 0

    def __repr__(self) -> str:
        return f"<Task {self.pid} {self.comm} cpu{self.cpu} {self.state}>"


@dataclass
class CfsRq:
    """``struct cfs_rq`` of one cpu: the runnable tasks other than the current one."""

    queue: list[Task] = field(default_factory=list)
    curr: Task | None = None
    min_vruntime: int = 0
    seq: int = 0

    @property
    def nr_running(self) -> int:
        curr = self.curr
        return len(self.queue) + (1 if curr is not None and not curr.is_idle and curr.on_rq else 0)


def _now(cpu: "GuestCpu") -> int:
    """The runqueue clock (kernel/sched.c update_rq_clock: sched_clock_cpu of this cpu)."""
    scd = cpu.scd
    return cpu.kernel.env.now if scd is None else sched_clock_local(cpu, scd)


def update_min_vruntime(rq: CfsRq) -> None:
    """Mirrors kernel/sched_fair.c:update_min_vruntime: monotonic, follows the smallest vruntime."""
    candidates = [t.vruntime for t in rq.queue]
    if rq.curr is not None and not rq.curr.is_idle and rq.curr.on_rq:
        candidates.append(rq.curr.vruntime)
    if candidates:
        rq.min_vruntime = max(rq.min_vruntime, min(candidates))


@mirrors("kernel/sched_fair.c", "update_curr", generations="guest 2.6.32-38")
def update_curr(cpu: "GuestCpu") -> None:
    """Charge the current task for the guest time since it was last charged.

    Simplification: nice 0 only; the idle task is not charged.
    """
    curr = cpu.rq.curr
    now = _now(cpu)
    if curr is None or curr.is_idle:
        return
    delta = now - curr.exec_start
    if delta > 0:
        curr.sum_exec_runtime += delta
        curr.vruntime += delta
        curr.exec_start = now
        update_min_vruntime(cpu.rq)


@mirrors("kernel/sched_fair.c", "sched_slice", generations="guest 2.6.32-38")
def sched_slice(cpu: "GuestCpu") -> int:
    """The wall-time slice of the current task: the latency period shared by the runnable tasks.

    Simplification: equal weights, so every task gets period / nr_running.
    """
    p = cpu.params
    nr = max(cpu.rq.nr_running, 1)
    nr_latency = p["sched_latency_ns"] // p["sched_min_granularity_ns"]
    period = p["sched_latency_ns"] if nr <= nr_latency else p["sched_min_granularity_ns"] * nr
    return period // nr


@mirrors("kernel/sched_fair.c", "place_entity", generations="guest 2.6.32-38")
def place_entity(cpu: "GuestCpu", task: Task, initial: bool) -> None:
    """Position a task entering the queue: a waking sleeper gets at most half a latency of credit.

    Simplification: no START_DEBIT for new tasks (they start at min_vruntime).
    """
    vruntime = cpu.rq.min_vruntime
    if not initial:
        vruntime -= cpu.params["sched_latency_ns"] // 2
    task.vruntime = max(task.vruntime, vruntime)


@mirrors("kernel/sched_fair.c", "enqueue_task_fair", generations="guest 2.6.32-38")
def enqueue_task_fair(cpu: "GuestCpu", task: Task, wakeup: bool) -> None:
    """Put a task on the runqueue (placing it first when it wakes up).

    Simplification: a list scanned for the minimum instead of an rbtree.
    """
    rq = cpu.rq
    update_curr(cpu)  # min_vruntime must be current before a waking task is placed against it
    if wakeup:
        place_entity(cpu, task, initial=False)
    rq.seq += 1
    task.enqueue_seq = rq.seq
    task.on_rq = True
    if task is not rq.curr:
        rq.queue.append(task)


def dequeue_task_fair(cpu: "GuestCpu", task: Task) -> None:
    """Mirrors kernel/sched_fair.c:dequeue_task_fair: the task leaves the runqueue."""
    task.on_rq = False
    if task in cpu.rq.queue:
        cpu.rq.queue.remove(task)


@mirrors("kernel/sched_fair.c", "pick_next_task_fair", generations="guest 2.6.32-38")
def pick_next_task_fair(cpu: "GuestCpu") -> Task | None:
    """The runnable task with the least vruntime (ties: the one queued first).

    Simplification: no next/last buddies.
    """
    queue = cpu.rq.queue
    if not queue:
        return None
    best = min(queue, key=lambda t: (t.vruntime, t.enqueue_seq))
    queue.remove(best)
    return best


@mirrors("kernel/sched.c", "resched_task", generations="guest 2.6.32-38")
def resched_task(cpu: "GuestCpu", target: "GuestCpu") -> None:
    """Ask ``target`` to reschedule: set its flag, and send a reschedule IPI if it is another cpu.

    Simplification: the IPI is always sent to a remote cpu (no polling-idle shortcut).
    """
    if target.need_resched:
        return
    target.need_resched = True
    if target is not cpu:
        target.smp_send_reschedule()


@mirrors("kernel/sched_fair.c", "check_preempt_tick", generations="guest 2.6.32-38")
def check_preempt_tick(cpu: "GuestCpu") -> None:
    """At a tick: preempt the current task once it has run its slice (by the guest clock).

    Simplification: the 2.6.36 extra test on the vruntime gap is left out.
    """
    curr = cpu.rq.curr
    if curr is None or curr.is_idle or not cpu.rq.queue:
        return
    if curr.sum_exec_runtime - curr.prev_sum_exec_runtime > sched_slice(cpu):
        resched_task(cpu, cpu)


@mirrors("kernel/sched_fair.c", "check_preempt_wakeup", generations="guest 2.6.32-38")
def check_preempt_wakeup(cpu: "GuestCpu", target: "GuestCpu", woken: Task) -> None:
    """A task woke on ``target``: preempt its current task if that is ahead by more than the granularity.

    Simplification: equal weights, so the granularity is not scaled.
    """
    curr = target.rq.curr
    if curr is None or curr.is_idle:
        resched_task(cpu, target)
        return
    update_curr(target)
    if curr.vruntime - woken.vruntime > target.params["sched_wakeup_granularity_ns"]:
        resched_task(cpu, target)


@mirrors("kernel/sched.c", "try_to_wake_up", generations="guest 2.6.32-38")
def try_to_wake_up(cpu: "GuestCpu", task: Task) -> bool:
    """Make a sleeping task runnable on its cpu; preempt there if it deserves to run now.

    Simplification: no wake-up balancing: a task stays on the cpu it last ran on.
    """
    if task.state == TASK_RUNNING:
        return False
    task.state = TASK_RUNNING
    target = cpu.kernel.cpus[task.cpu]
    if not task.on_rq:
        enqueue_task_fair(target, task, wakeup=True)
    check_preempt_wakeup(cpu, target, task)
    return True


@mirrors("kernel/sched.c", "scheduler_tick", generations="guest 2.6.32-38")
def scheduler_tick(cpu: "GuestCpu") -> None:
    """The periodic tick's scheduler work: charge the current task, maybe preempt it.

    Simplification: no load balancing (tasks stay on their cpu).
    """
    if cpu.scd is not None:
        sched_clock_tick(cpu, cpu.scd)
    update_curr(cpu)
    check_preempt_tick(cpu)


@mirrors("kernel/sched.c", "schedule", generations="guest 2.6.32-38")
def schedule(cpu: "GuestCpu", preempt: bool = False) -> Task:
    """Switch to the next task: the one with the least vruntime, or the idle task.

    ``prev`` resumes where it called: a plain schedule() comes back with
    interrupts on whatever they were (finish_task_switch releases the
    runqueue lock with spin_unlock_irq, 2.6.32-38 and v6.18 alike); the
    interrupt-exit preemption (``preempt``, preempt_schedule_irq) comes back
    with them off, as it was called.
    Simplification: the switch itself is instantaneous here; its cost is
    charged by the caller as kernel work.
    """
    rq = cpu.rq
    prev = rq.curr
    update_curr(cpu)
    cpu.need_resched = False
    arch = cpu.vcpu.arch
    if prev is not None:
        prev.regs = (arch.cpl, arch.rflags_if if preempt else True)
        if not prev.is_idle:
            if prev.state == TASK_RUNNING or (preempt and prev.state != TASK_DEAD):
                rq.seq += 1
                prev.enqueue_seq = rq.seq
                rq.queue.append(prev)
            else:
                prev.on_rq = False
    nxt = pick_next_task_fair(cpu) or cpu.idle
    rq.curr = nxt
    nxt.exec_start = _now(cpu)
    nxt.prev_sum_exec_runtime = nxt.sum_exec_runtime
    arch.cpl, arch.rflags_if = nxt.regs
    if nxt is not prev:
        cpu.stats["context_switches"] += 1
    return nxt
