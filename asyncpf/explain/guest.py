"""Helpers for notebook 05: the PV guest side.

Each situation boots the small guest of :func:`asyncpf.build.small_guest`
(8 MiB, a 1 MiB cgroup, a 512-page buffer half on swap) and is watched one
engine step at a time: a :class:`Snapshot` is kept whenever something a
reader cares about changes -- the sleeper hash, a task's state, who runs on
a cpu, the reason word.  ``wake_before_wait`` is the scenario of the same
name (:mod:`asyncpf.scenarios`), watched as it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .. import abi, scenarios
from ..build import Booted, small_guest
from ..guest import kvm as pv
from ..guest.kernel import GuestKernel
from ..guest.ops import Touch, Work
from ..guest.sched import TASK_DEAD
from ..host.kvm_main import read_guest_bytes
from ..machine import Machine
from ..scenarios.stage import Stage
from ..sim import ChoicePolicy
from ..trace import TraceEvent, tracepoints
from ..workloads import kernel_section, steps
from .common import APF_EVENTS

FINISH_LIMIT_NS = 1_000_000_000   # a situation's tasks must have exited within this much simulated time


def reason_word(cpu: Any) -> int:
    """The ``reason`` u32 of a guest cpu's APF area as it is in guest memory now."""
    return int.from_bytes(read_guest_bytes(cpu.vcpu.kvm, cpu.apf_gpa, 4), "little")


def node_text(node: pv.KvmTaskSleepNode) -> str:
    who = "dummy" if node.task is None else node.task.comm
    return f"{node.token:#x}@cpu{node.cpu}:{who}{' (halted)' if node.halted else ''}"


def sleepers(kernel: GuestKernel) -> list[str]:
    """The sleeper hash, one string per node (bucket order): ``token@cpuN:task`` or ``...:dummy``."""
    return [node_text(n) for n in pv.all_nodes(kernel.sleepers)]


def task_states(kernel: GuestKernel) -> dict[str, str]:
    """comm -> R (running/runnable), D (sleeping uninterruptible), X (exited); ``*`` marks a cpu's current task."""
    curr = {c.rq.curr.pid for c in kernel.cpus if c.rq.curr is not None}
    return {t.comm: t.state + ("*" if t.pid in curr and t.state != TASK_DEAD else "") for t in kernel.tasks}


def running(kernel: GuestKernel) -> list[str]:
    """What each cpu runs now (``swapper/N`` is the idle task)."""
    return [c.rq.curr.comm if c.rq.curr is not None else "-" for c in kernel.cpus]


@dataclass
class Snapshot:
    """The guest as a reader sees it at one instant of :func:`step_through`."""

    t_ns: int
    running: list[str]
    tasks: dict[str, str]
    sleepers: list[str]
    reason: list[int]
    vcpu_halted: list[bool]
    trace: list[str] = field(default_factory=list)  # APF trace lines since the previous snapshot

    def key(self) -> tuple:
        return (tuple(self.running), tuple(self.tasks.items()), tuple(self.sleepers), tuple(self.reason))

    def text(self) -> str:
        tasks = " ".join(f"{k}={v}" for k, v in self.tasks.items())
        lines = [f"t={self.t_ns / 1000:9.3f} us  running {','.join(self.running)}  tasks {tasks}",
                 f"    sleeper hash: {', '.join(self.sleepers) or 'empty'}; reason word {self.reason}"]
        lines += [f"    trace: {ln}" for ln in self.trace]
        return "\n".join(lines)


def _snap(m: Machine) -> Snapshot:
    kernel = m.guest
    return Snapshot(m.env.now, running(kernel), task_states(kernel), sleepers(kernel),
                    [reason_word(c) if c.vcpu is not None else 0 for c in kernel.cpus],
                    [bool(v.arch.apf.halted) if hasattr(v.arch.apf, "halted") else False for v in m.vcpus])


def _trace_lines(m: Machine, evs: Sequence[TraceEvent]) -> list[str]:
    tps = tracepoints(m.gen)
    return [f"{ev.t_ns / 1000:9.3f} us {ev.name}: {tps[ev.name].message(ev.args)}" for ev in evs if ev.name in APF_EVENTS]


class StepWatcher:
    """Keeps a :class:`Snapshot` after every engine step that changes one, until the guest's tasks have exited.

    It runs the engine of ``m`` under the FIFO choice policy (the same order
    as without one) and wraps ``env.step`` of that machine only, as the
    checker does.  The first snapshot is the state before the first step.
    """

    def __init__(self, m: Machine):
        self.m = m
        self.snaps: list[Snapshot] = []
        self.mark = 0
        env = m.env
        if env.policy is None:
            env.policy = ChoicePolicy()
        inner = env.step

        def step() -> None:
            if not self.snaps:
                self.snaps.append(_snap(m))
                self.mark = len(m.tracer.events)
            watching = not self.done()
            inner()
            if watching:
                self._after_step()

        env.step = step

    def done(self) -> bool:
        return all(t.state == TASK_DEAD for t in self.m.guest.tasks)

    def _after_step(self) -> None:
        s = _snap(self.m)
        if s.key() != self.snaps[-1].key():
            s.trace = _trace_lines(self.m, self.m.tracer.events[self.mark:])
            self.mark = len(self.m.tracer.events)
            self.snaps.append(s)


def step_through(m: Machine, limit_ns: int = 200_000_000, max_steps: int = 400_000) -> list[Snapshot]:
    """Run ``m`` one engine step at a time until the guest's tasks exited; a snapshot at each visible change."""
    watcher = StepWatcher(m)
    env = m.env
    end = env.now + limit_ns
    for _ in range(max_steps):
        if watcher.done() or env.peek() is None or env.peek() > end:
            break
        env.step()
    return watcher.snaps or [_snap(m)]


def steps_text(snaps: Sequence[Snapshot]) -> str:
    return "\n".join(f"[{i}] {s.text()}" for i, s in enumerate(snaps))


def first(snaps: Sequence[Snapshot], pred: Callable[[Snapshot], bool]) -> int:
    """Index of the first snapshot satisfying ``pred`` (ValueError if none)."""
    for i, s in enumerate(snaps):
        if pred(s):
            return i
    raise ValueError("no snapshot matches")


# --- 05: the situations -----------------------------------------------------------------------

def guest_scenario(name: str, seed: int = 0) -> dict[str, Any]:
    """Run one of :data:`GUEST_SCENARIOS` step by step; snapshots, guest stats, vcpu time split, leaks."""
    if name not in GUEST_SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {list(GUEST_SCENARIOS)}")
    return GUEST_SCENARIOS[name](seed)


def _finish(b: Booted, snaps: list[Snapshot], name: str, since: int, **extra: Any) -> dict[str, Any]:
    """Run until the tasks exited (if the watch stopped early), destroy the VM; the :func:`_result`."""
    b.run_until_exited(b.kernel.tasks, FINISH_LIMIT_NS)
    b.machine.shutdown()
    return _result(b.machine, snaps, name, since, **extra)


def _result(m: Machine, snaps: list[Snapshot], name: str, since: int, **extra: Any) -> dict[str, Any]:
    """What notebook 05 shows of a run whose VM was destroyed: snapshots, guest stats, time split, leaks, APF trace
    since trace index ``since``."""
    kernel: GuestKernel = m.guest
    st = kernel.stats
    return {"name": name, "snaps": snaps, "stats": {k: st[k] for k in
            ("sleeps", "halted_waits", "dummies_created", "dummies_consumed", "dummies_dropped")},
            "work_ns": {t.comm: t.cpu_ns for t in kernel.tasks}, "acct": m.account(), "leaks": m.leaks(),
            "apf_halts": sum(v.stat["apf_halts"] for v in m.vcpus),
            "trace": _trace_lines(m, m.tracer.events[since:]), **extra}


def _touch(gva: int, *, kernel: bool = False) -> Touch:
    return Touch(gva, True, 0, kernel=kernel)


def _sleep_and_schedule(seed: int) -> dict[str, Any]:
    """A touches a swapped page then exits; B computes 1 ms.  A sleeps, B runs, page-ready wakes A."""
    b = small_guest(seed=seed)
    since = len(b.machine.tracer.events)
    (gfn,) = b.swapped(1)
    b.spawn("A", steps(_touch(b.gva(gfn))))
    b.spawn("B", steps(Work(1_000_000)))
    return _finish(b, step_through(b.machine), "sleep_and_schedule", since, gfn=gfn)


def _halt_in_kernel_section(seed: int) -> dict[str, Any]:
    """A touches a swapped page with preemption disabled (a kernel section); B computes.  A halts the cpu."""
    b = small_guest(seed=seed)
    since = len(b.machine.tracer.events)
    (gfn,) = b.swapped(1)
    b.spawn("A", kernel_section(_touch(b.gva(gfn), kernel=True)))
    b.spawn("B", steps(Work(1_000_000)))
    return _finish(b, step_through(b.machine), "halt_in_kernel_section", since, gfn=gfn)


def _wake_before_wait(seed: int) -> dict[str, Any]:
    """The scenario ``wake_before_wait``, watched step by step: page-ready for T reaches the guest before its
    not-present, a dummy node is left, the wait returns at once (see the scenario for how it is forced)."""
    watched: dict[str, Any] = {}

    def watch(stage: Stage) -> None:
        watched["since"] = len(stage.m.tracer.events)
        watched["watcher"] = StepWatcher(stage.m)

    result = scenarios.get("wake_before_wait").run(seed, on_built=watch)
    token, gpa = result.tracer.of("kvm_async_pf_not_present")[0].args[:2]
    return _result(result.machine, watched["watcher"].snaps, "wake_before_wait", watched["since"],
                   gfn=gpa >> abi.PAGE_SHIFT, token=token)


def _wake_all(seed: int) -> dict[str, Any]:
    """Two vcpus; A sleeps on cpu 0, C on cpu 1, a dummy waits on cpu 0; then token ~0 on cpu 0.

    The broadcast is delivered by calling the guest twin
    ``kvm_async_pf_task_wake(0xffffffff)`` on cpu 0 directly (the host sends
    it when the guest (re)registers its area).
    """
    b = small_guest(seed=seed, vcpus=2, swap_device="hdd_7200_2010")
    m = b.machine
    since = len(m.tracer.events)
    g0, g1 = b.swapped(2)
    b.spawn("A", steps(_touch(b.gva(g0))), cpu=0)
    b.spawn("B", steps(Work(2_000_000)), cpu=0)
    b.spawn("C", steps(_touch(b.gva(g1))), cpu=1)
    while sum(1 for n in pv.all_nodes(b.kernel.sleepers) if n.task is not None) < 2:
        m.env.step()
    pv.kvm_async_pf_task_wake(b.kernel.cpus[0], 0x5a5a5)     # a page-ready nobody waits for: a dummy on cpu 0
    before = _snap(m)
    pv.kvm_async_pf_task_wake(b.kernel.cpus[0], abi.BROADCAST_TOKEN)
    after = _snap(m)
    snaps = [before, after] + step_through(m)[1:]
    return _finish(b, snaps, "wake_all", since)


GUEST_SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "sleep_and_schedule": _sleep_and_schedule,
    "halt_in_kernel_section": _halt_in_kernel_section,
    "wake_before_wait": _wake_before_wait,
    "wake_all": _wake_all,
}


def entry_steps() -> list[tuple[int, str]]:
    """(reason word, where do_async_page_fault sends the #PF) for each reason a PV #PF can carry."""
    names = {0: "do_page_fault (an ordinary guest #PF)",
             abi.KVM_PV_REASON_PAGE_NOT_PRESENT: "kvm_async_pf_task_wait(token)",
             abi.KVM_PV_REASON_PAGE_READY: "kvm_async_pf_task_wake(token)"}
    return [(r, name) for r, name in names.items()]
