"""The host's CPUs and its fair scheduler: vcpu threads and async PF workers compete for them.

Without this module (``HostConfig.host_cpus=None``, the default) every host
thread has a CPU of its own and switching is free, which is what every
result of the model assumed before.  With ``host_cpus=N`` each host thread --
a vcpu thread, an async PF worker -- runs under :class:`HostScheduler`:

* ``N`` CPUs, each with a CFS runqueue.  The queue logic is the guest's
  (:mod:`asyncpf.guest.sched`: ``update_curr``, ``sched_slice``,
  ``place_entity``, ``enqueue_task_fair``, ``pick_next_task_fair``,
  ``check_preempt_wakeup``), applied to host CPUs -- the host of 2010 ran the
  same ``kernel/sched_fair.c``.  Its tunables are 2.6.38's, scaled by
  ``1 + ilog2(N)`` (``data/host_sched.json``).
* A host thread is a generator wrapped by :meth:`HostScheduler.thread`: a
  delay it yields is CPU work and needs the CPU; an Event it yields is a
  sleep, so the thread leaves the CPU (``schedule()``) and, when woken,
  waits on a runqueue until a CPU picks it.  Waiting is charged to the
  vcpu's ``runq`` account ("waiting for a host CPU").
* Every switch fires the thread's preempt notifiers
  (:mod:`asyncpf.host.preempt`): a vcpu thread's ``kvm_sched_out`` puts its
  guest state, ``kvm_sched_in`` loads it again, on another CPU after a
  migration.  So every place the vcpu thread sleeps in the host -- the
  synchronous ``gfn_to_pfn`` stall, ``kvm_vcpu_block`` for HLT and the APF
  halt -- puts and reloads the vcpu.
* Preemption: a thread that runs guest code (``Compute``) past its slice, or
  when a woken thread deserves the CPU (``check_preempt_wakeup``), takes an
  exit (the host timer / reschedule IPI arrives in guest mode) and is
  switched out at its next piece of host work, as ``__vcpu_run``'s
  ``need_resched()`` -> ``kvm_resched`` does.  Host work itself is not cut
  (it is microseconds long; the 2010 host kernels were ``PREEMPT_VOLUNTARY``).
* Wake-up placement: the CPU the thread last ran on if idle, else any idle
  CPU, else the last one; an idle CPU pulls a queued thread from the busiest
  runqueue (new-idle balancing).  Async PF workers of 2.6.38 and 6.18 run on
  the per-CPU system workqueue (``schedule_work`` queues on the submitting
  CPU, whose kworker is bound there), so they are pinned to the CPU of the
  vcpu that queued them; the seed's slow-work threads are not bound.

Simulation glue except where a function says ``Mirrors``.
Simplification: one scheduling class and nice 0 for every thread; no
periodic load balancing besides new-idle pulls; slices are checked exactly
(not at host ticks); reclaim runs inline in the faulting thread at no CPU
cost (the model's reclaim is free), so kswapd is not a thread here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator

from ..datafiles import load_json
from ..guest import sched as cfs
from ..guest.sched import CfsRq, Task
from ..sim import Event, Interrupt

if TYPE_CHECKING:
    from ..sim import Environment
    from .vcpu import KvmVcpu

RESCHED = "host-resched"          # cause of the interrupt a reschedule IPI makes in a thread running guest code
HOST_PREEMPT = "host-preempt"     # cause of the exit that interrupt is turned into for the vcpu loop
RUNQ = "runq"                      # the vcpu account: runnable, waiting for a host CPU


def load_host_sched(era: str = "2010") -> dict[str, int]:
    """The host scheduler's tunables and switch costs of ``era`` from ``data/host_sched.json``."""
    table = load_json("host_sched.json")
    if era not in table:
        raise ValueError(f"unknown era {era!r} in host_sched.json; expected one of "
                         f"{sorted(k for k in table if not k.startswith('_'))}")
    return {name: int(entry["value"]) for name, entry in table[era].items()}


def sysctl_factor(ncpus: int) -> int:
    """kernel/sched.c get_update_sysctl_factor (2.6.38, SCHED_TUNABLESCALING_LOG): 1 + ilog2(min(ncpus, 8))."""
    return 1 + (min(ncpus, 8).bit_length() - 1)


class HostCpu:
    """One physical CPU: its CFS runqueue, the thread on it, and KVM's per-cpu VMX state.

    Duck-types the ``cpu`` the shared CFS functions expect (``rq``,
    ``params``, ``kernel.env``, ``scd``, ``need_resched``, ``smp_send_reschedule``).
    ``current_vmcs`` is ``per_cpu(current_vmcs)``; ``vcpus_on_cpu`` the VMCSs
    active (launched, not cleared) here; ``loaded`` the vcpu whose guest
    state is loaded -- between ``kvm_arch_vcpu_load`` and ``kvm_arch_vcpu_put``.
    """

    def __init__(self, sched: "HostScheduler", cpu_id: int):
        self.sched = sched
        self.kernel = sched            # the CFS functions read cpu.kernel.env.now
        self.id = cpu_id
        self.rq = CfsRq()
        self.scd = None                # the host's runqueue clock is its own time (no tick window)
        self.params = sched.params
        self.need_resched = False
        self.current: HostThread | None = None
        self.current_vmcs: Any = None
        self.vcpus_on_cpu: set = set()
        self.loaded: Any = None

    def smp_send_reschedule(self) -> None:
        """The reschedule IPI: a thread running guest code exits at once; host work finishes first."""
        thread = self.current
        if thread is not None and thread.in_guest_slice and thread.vcpu.mode == "compute":
            thread.in_guest_slice = False
            thread.vcpu.mode = "guest"  # a kick at this instant then only marks the vcpu (one interrupt)
            thread.proc.interrupt(RESCHED)

    def __repr__(self) -> str:
        return f"<HostCpu {self.id} current={self.current.name if self.current else None}>"


@dataclass(eq=False)
class HostThread:
    """A host task: its CFS entity, its CPU, its preempt notifiers and what it was charged."""

    name: str
    task: Task
    pinned: int | None = None          # a bound kworker runs only on this CPU
    vcpu: Any = None                   # the KvmVcpu this thread runs, if it is a vcpu thread
    state: str = "new"                 # new | runnable | running | sleeping | exited | cancelled (never ran)
    cpu: HostCpu | None = None         # the CPU it runs on or is queued on
    last_cpu: int | None = None
    notifiers: list = field(default_factory=list)
    proc: Any = None
    dispatched: Event | None = None
    in_guest_slice: bool = False
    in_notifier: bool = False          # running a switch, a preempt notifier or load/put, not its own code
    sleeping_on: Event | None = None   # what it sleeps on, until it runs its own code again (checker's view)
    cpu_ns: int = 0
    runq_ns: int = 0
    switches: int = 0
    migrations: int = 0
    preemptions: int = 0

    def __repr__(self) -> str:
        return f"<HostThread {self.name} {self.state} cpu={self.cpu.id if self.cpu else None}>"


class HostScheduler:
    """``ncpus`` host CPUs and the threads that run on them."""

    def __init__(self, env: "Environment", ncpus: int, *, costs: bool = True, era: str = "2010",
                 tsc_unstable: bool = False, bound_workers: bool = True):
        if ncpus < 1:
            raise ValueError(f"host_cpus={ncpus} must be at least 1")
        self.env = env
        self.tsc_unstable = tsc_unstable      # check_tsc_unstable(): the guest TSC offset is adjusted on load
        self.bound_workers = bound_workers    # async PF work runs on the queuing CPU's bound kworker
        table = load_host_sched(era)
        factor = sysctl_factor(ncpus)
        self.params = {k: table[k] * factor for k in
                       ("sched_latency_ns", "sched_min_granularity_ns", "sched_wakeup_granularity_ns")}
        names = ("host_context_switch_ns", "vcpu_put_ns", "vcpu_load_ns", "vcpu_migrate_ns")
        self.costs = {k: (table[k] if costs else 0) for k in names}
        self.cpus = [HostCpu(self, i) for i in range(ncpus)]
        self.threads: list[HostThread] = []
        self._tasks: dict[int, HostThread] = {}
        self._pid = 0

    # --- threads -------------------------------------------------------------------------

    def spawn(self, inner: Generator, name: str, *, pid: int | None = None, pinned: int | None = None,
              vcpu: "KvmVcpu | None" = None):
        """Start ``inner`` (a process body) as a host thread: a Process whose CPU time needs a host CPU."""
        if pid is None:
            self._pid += 1
            pid = 100_000 + self._pid
        t = HostThread(name, Task(pid, name, 0), pinned=pinned, vcpu=vcpu)
        self.threads.append(t)
        self._tasks[id(t.task)] = t
        if vcpu is not None:
            vcpu.host_thread = t
        t.proc = self.env.process(self._run(t, inner), name)
        return t.proc

    def spawn_worker(self, inner: Generator, name: str, vcpu: "KvmVcpu", pid: int | None = None):
        """An async PF worker thread: bound to the CPU its vcpu runs on (per-CPU system workqueue) unless unbound."""
        pinned = None
        if self.bound_workers:
            pinned = self.current_cpu(vcpu)
            if pinned is None:
                t = getattr(vcpu, "host_thread", None)
                pinned = t.last_cpu if t is not None and t.last_cpu is not None else 0
        self.spawn(inner, name, pid=pid, pinned=pinned)
        return self.threads[-1]

    def cancel_unstarted(self, t: HostThread) -> bool:
        """Drop a worker that is still queued for its first CPU (it has not begun its work item); False if it ran."""
        if t.state != "runnable" or t.switches:
            return False
        cfs.dequeue_task_fair(t.cpu, t.task)
        t.state = "cancelled"
        t.dispatched.succeed(None)
        return True

    def current_cpu(self, vcpu: "KvmVcpu") -> int | None:
        """The CPU the vcpu's thread is on now (``smp_processor_id()`` in its context), or None."""
        t = getattr(vcpu, "host_thread", None)
        return t.cpu.id if t is not None and t.state == "running" and t.cpu is not None else None

    def _run(self, t: HostThread, inner: Generator) -> Generator[Any, Any, Any]:
        from . import preempt
        self._wake(t, initial=True)
        yield from self._wait_dispatch(t, fire=False)
        if t.state == "cancelled":  # cancel_work_sync took its item before this worker got a CPU
            inner.close()
            return None
        if t.vcpu is not None:
            yield from self._wrap_cost(t, preempt.vcpu_load(t.vcpu, t))
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                target = inner.throw(exc) if exc is not None else inner.send(value)
            except StopIteration as stop:
                if t.vcpu is not None:
                    yield from self._wrap_cost(t, preempt.vcpu_put(t.vcpu, t))
                self._exit(t)
                return stop.value
            value, exc = None, None
            if target is None or target.__class__ is int and target == 0:
                try:
                    value = yield target
                except Interrupt as e:
                    exc = self._filter(e)
            elif target.__class__ is int:
                exc = yield from self._consume(t, target)
            else:
                value, exc = yield from self._sleep(t, target)

    @staticmethod
    def _filter(e: Interrupt) -> Interrupt | None:
        return None if e.cause == RESCHED else e

    @staticmethod
    def _unexpected(t: HostThread, e: Interrupt) -> None:
        """An interrupt while the scheduler itself waits: only a kick of guest code could be one, and a
        thread in the scheduler's waits is never in guest code (kicks are made with vcpu.mode == compute)."""
        if e.cause != RESCHED:
            raise AssertionError(f"{t.name}: interrupt {e.cause!r} while switching; the vcpu was not in guest code")

    # --- CPU work ----------------------------------------------------------------------------

    def _guest_code(self, t: HostThread) -> bool:
        return t.vcpu is not None and t.vcpu.mode == "compute"

    def _consume(self, t: HostThread, ns: int) -> Generator[Any, Any, Interrupt | None]:
        """``ns`` of CPU work.  Guest code is sliced and may be cut by a reschedule; host work is not."""
        cpu = t.cpu
        if not self._guest_code(t):
            if cpu.need_resched:
                yield from self._preempt(t)
            yield from self._spend(t, ns)
            return None
        if cpu.need_resched:  # entered with a reschedule pending: the timer IPI arrives at once
            return self._exit_for_resched(t)
        run = ns
        if cpu.rq.queue:
            cfs.update_curr(cpu)
            used = t.task.sum_exec_runtime - t.task.prev_sum_exec_runtime
            left = cfs.sched_slice(cpu) - used
            if left <= 0:
                cpu.need_resched = True
                return self._exit_for_resched(t)
            run = min(ns, left)
        t.in_guest_slice = True
        start = self.env.now
        try:
            yield run
        except Interrupt as e:
            t.in_guest_slice = False
            t.cpu_ns += self.env.now - start
            if e.cause == RESCHED:
                return self._exit_for_resched(t)
            return e
        t.in_guest_slice = False
        t.cpu_ns += run
        if run < ns:  # the slice is used up and others wait: the host tick preempts guest code
            cpu.need_resched = True
            return self._exit_for_resched(t)
        return None

    def _exit_for_resched(self, t: HostThread) -> Interrupt:
        """The host's timer or reschedule IPI in guest mode: an exit; the vcpu loop then meets need_resched."""
        t.vcpu.mode = "guest"  # as kvm_vcpu_kick does: a kick from now on only marks the vcpu
        t.vcpu.stat["host_preempt_exits"] += 1
        return Interrupt(HOST_PREEMPT)

    def _spend(self, t: HostThread, ns: int) -> Generator[Any, Any, None]:
        """``ns`` of host work that nothing cuts short (a kick that arrives is kept for later)."""
        end = self.env.now + ns
        while self.env.now < end:
            try:
                yield end - self.env.now
            except Interrupt as e:
                self._unexpected(t, e)
        t.cpu_ns += ns

    def _wrap_cost(self, t: HostThread, gen: Generator) -> Generator[Any, Any, None]:
        """Run a notifier (a generator yielding costs) on the thread's CPU, charged as host time."""
        vcpu = t.vcpu
        saved = None
        if vcpu is not None:
            saved = vcpu._acct_state
            vcpu.account("host")
        t.in_notifier = True
        for step in gen:
            if step:
                yield from self._spend(t, step)
                if vcpu is not None:
                    vcpu.stat["load_put_ns"] += step
        t.in_notifier = False
        if vcpu is not None:
            vcpu.account(saved)

    # --- leaving and getting the CPU -----------------------------------------------------------

    def _preempt(self, t: HostThread) -> Generator[Any, Any, None]:
        """schedule() with the thread still runnable: it yields the CPU unless it still has the least vruntime."""
        from . import preempt
        cpu = t.cpu
        cpu.need_resched = False
        if not cpu.rq.queue:
            return
        cfs.update_curr(cpu)
        cand = min(cpu.rq.queue, key=lambda x: (x.vruntime, x.enqueue_seq))
        if t.task.vruntime < cand.vruntime:  # put_prev_task then pick_next_task would pick it again
            t.task.prev_sum_exec_runtime = t.task.sum_exec_runtime  # set_next_entity: a fresh slice
            return
        cpu.rq.queue.remove(cand)
        nxt = self._thread_of(cand)
        t.preemptions += 1
        yield from self._wrap_cost(t, preempt.fire_sched_out_preempt_notifiers(t, nxt))
        self._leave(t, cpu)
        cpu.rq.seq += 1
        t.task.enqueue_seq = cpu.rq.seq
        t.task.on_rq = True
        cpu.rq.queue.append(t.task)
        t.state = "runnable"
        t.dispatched = self.env.event(f"{t.name}.dispatch")
        self._give(cpu, nxt)
        yield from self._wait_dispatch(t)

    def _sleep(self, t: HostThread, ev: Event) -> Generator[Any, Any, tuple[Any, Interrupt | None]]:
        """The thread sleeps on ``ev``: out through the notifiers, the CPU to the next thread; back when woken."""
        from . import preempt
        if ev.triggered:  # nothing to wait for: the thread does not leave the CPU
            try:
                return (yield ev), None
            except Interrupt as e:
                return None, e
        cpu = t.cpu
        t.sleeping_on = ev
        cfs.update_curr(cpu)
        t.task.on_rq = False
        nxt_task = cfs.pick_next_task_fair(cpu) if cpu.rq.queue else None
        nxt = self._thread_of(nxt_task) if nxt_task is not None else self._pull(cpu)
        yield from self._wrap_cost(t, preempt.fire_sched_out_preempt_notifiers(t, nxt))
        self._leave(t, cpu)
        t.state = "sleeping"
        if nxt is None and cpu.rq.queue:
            # woken onto this runqueue while the notifiers ran: the idle CPU's reschedule IPI runs it at once
            nxt = self._thread_of(cfs.pick_next_task_fair(cpu))
        if nxt is not None:
            self._give(cpu, nxt)
        value: Any = None
        exc: Interrupt | None = None
        try:
            value = yield ev
        except Interrupt as e:  # a sleeping vcpu is woken through its wait queue, never interrupted
            exc = e
        self._wake(t)
        yield from self._wait_dispatch(t)
        t.sleeping_on = None
        return value, exc

    def _leave(self, t: HostThread, cpu: HostCpu) -> None:
        cpu.current = None
        cpu.rq.curr = None
        t.last_cpu = cpu.id

    def _give(self, cpu: HostCpu, nxt: "HostThread") -> None:
        """Hand ``cpu`` to ``nxt`` (already off every queue): it resumes at this instant."""
        if nxt.cpu is not None and nxt.cpu is not cpu:
            nxt.task.vruntime += cpu.rq.min_vruntime - nxt.cpu.rq.min_vruntime
        cpu.current = nxt
        cpu.need_resched = False
        cpu.rq.curr = nxt.task
        nxt.task.on_rq = True
        nxt.task.exec_start = self.env.now
        nxt.task.prev_sum_exec_runtime = nxt.task.sum_exec_runtime
        nxt.cpu = cpu
        nxt.state = "running"
        nxt.dispatched.succeed(cpu.id)

    def _thread_of(self, task: Task) -> "HostThread":
        return self._tasks[id(task)]

    def _pull(self, cpu: HostCpu) -> "HostThread | None":
        """New-idle balancing: take the queued thread with the least vruntime from the busiest other CPU."""
        best = None
        for other in self.cpus:
            if other is cpu:
                continue
            movable = [task for task in other.rq.queue if self._thread_of(task).pinned is None]
            if movable and (best is None or len(other.rq.queue) > len(best[0].rq.queue)):
                best = (other, min(movable, key=lambda x: (x.vruntime - other.rq.min_vruntime, x.enqueue_seq)))
        if best is None:
            return None
        other, task = best
        other.rq.queue.remove(task)
        return self._thread_of(task)

    def _select_cpu(self, t: HostThread) -> HostCpu:
        """select_task_rq_fair reduced: the pinned CPU; else the last CPU if idle, else an idle one, else the last."""
        if t.pinned is not None:
            return self.cpus[t.pinned]
        last = self.cpus[t.last_cpu] if t.last_cpu is not None else None
        if last is not None and last.current is None:
            return last
        for cpu in self.cpus:
            if cpu.current is None:
                return cpu
        if last is not None:
            return last
        return min(self.cpus, key=lambda c: (len(c.rq.queue), c.id))

    def _wake(self, t: HostThread, initial: bool = False) -> None:
        """try_to_wake_up: queue the thread on a CPU; run it there at once if idle, else maybe preempt."""
        cpu = self._select_cpu(t)
        t.dispatched = self.env.event(f"{t.name}.dispatch")
        t.state = "runnable"
        old = t.cpu
        if old is not None and old is not cpu:
            t.task.vruntime += cpu.rq.min_vruntime - old.rq.min_vruntime
        t.cpu = cpu
        t.task.cpu = cpu.id
        if cpu.current is None:
            cfs.place_entity(cpu, t.task, initial=initial)
            self._give(cpu, t)
            return
        if initial:
            cfs.place_entity(cpu, t.task, initial=True)
        cfs.enqueue_task_fair(cpu, t.task, wakeup=not initial)
        cfs.check_preempt_wakeup(None, cpu, t.task)

    def _wait_dispatch(self, t: HostThread, fire: bool = True) -> Generator[Any, Any, None]:
        """Wait on the runqueue for a CPU (``runq`` for a vcpu); then the switch and sched_in notifiers."""
        from . import preempt
        vcpu = t.vcpu
        saved = None
        waited = not t.dispatched.triggered
        if waited and vcpu is not None:
            saved = vcpu._acct_state
            vcpu.account(RUNQ)
        start = self.env.now
        while not t.dispatched.triggered or t.state not in ("running", "cancelled"):
            try:
                yield t.dispatched
            except Interrupt as e:
                self._unexpected(t, e)
        if t.state == "cancelled":
            return
        t.runq_ns += self.env.now - start
        if waited and vcpu is not None:
            vcpu.account(saved)
        t.switches += 1
        if t.last_cpu is not None and t.last_cpu != t.cpu.id:
            t.migrations += 1
        if fire:
            yield from self._wrap_cost(t, self._switch_in(t))
            if t.notifiers:
                yield from self._wrap_cost(t, preempt.fire_sched_in_preempt_notifiers(t, t.cpu.id))

    def _switch_in(self, t: HostThread) -> Generator[int, None, None]:
        yield self.costs["host_context_switch_ns"]

    def _exit(self, t: HostThread) -> None:
        cpu = t.cpu
        cfs.update_curr(cpu)
        t.task.on_rq = False
        nxt_task = cfs.pick_next_task_fair(cpu) if cpu.rq.queue else None
        nxt = self._thread_of(nxt_task) if nxt_task is not None else self._pull(cpu)
        self._leave(t, cpu)
        t.state = "exited"
        if nxt is not None:
            self._give(cpu, nxt)

    # --- what the scheduler shows ----------------------------------------------------------------

    def state_key(self) -> tuple:
        """Everything of the scheduler that decides the future (for the explorer's visited-state set)."""
        cpus = tuple((c.current.name if c.current else None, c.need_resched,
                      tuple(self._thread_of(x).name for x in c.rq.queue), c.rq.min_vruntime,
                      getattr(c.current_vmcs, "vcpu_id", None), getattr(c.loaded, "vcpu_id", None)) for c in self.cpus)
        threads = tuple((t.name, t.state, t.task.vruntime, t.last_cpu, t.in_guest_slice) for t in self.threads)
        return cpus, threads

    def stats(self) -> dict[str, Any]:
        """Per-thread CPU, runqueue wait, switches and migrations (ns and counts)."""
        return {t.name: {"cpu_ns": t.cpu_ns, "runq_ns": t.runq_ns, "switches": t.switches,
                         "migrations": t.migrations, "preemptions": t.preemptions} for t in self.threads}



def attach(machine: Any, ncpus: int, **options: Any) -> HostScheduler:
    """Give ``machine`` (built, not started) ``ncpus`` host CPUs: its vcpus and workers will compete for them."""
    sched = HostScheduler(machine.env, ncpus, **options)
    machine.kvm.hostsched = sched
    for vcpu in machine.vcpus:
        vcpu.acct.setdefault(RUNQ, 0)
    return sched


def busy_thread(sched: HostScheduler, name: str, chunks: list[int], *, pinned: int | None = None):
    """Another host thread (the VMM's I/O thread, a compile job): ``chunks`` of CPU work, back to back."""
    def body():
        for ns in chunks:
            yield ns
    return sched.spawn(body(), name, pinned=pinned)
