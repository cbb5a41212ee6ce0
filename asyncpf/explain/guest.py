"""Helpers for notebook 05: the PV guest side.

:class:`GuestBench` boots the real guest kernel on a small host (as ``bm.build``
does) and :func:`step_through` runs it one engine event at a time, keeping a
:class:`Snapshot` whenever something a reader cares about changes: the sleeper
hash, a task's state, who runs on a cpu, the reason word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .. import abi, bm
from ..guest import kvm as pv
from ..guest.kernel import AddressSpace, GuestConfig, GuestKernel
from ..guest.sched import TASK_DEAD
from ..host.kvm_main import gfn_to_hva, read_guest_bytes
from ..host.mm import PageState
from ..machine import HostConfig, Machine
from ..trace import TraceEvent, tracepoints
from ..workloads import shared_array
from .common import APF_EVENTS, MiB

BOOT_NS = bm.BOOT_NS
DATA_PAGES = 512   # prefaulted buffer in an 8 MiB guest, 1 MiB cgroup: the first 256 pages end up on swap


# --- 05: a small booted guest -------------------------------------------------------------

class GuestBench:
    """A booted guest kernel on a small host: 8 MiB guest, 1 MiB cgroup, a 512-page buffer half on swap.

    ``host`` is one of ``unpatched``/``halt``/``pv`` (bm's three hosts).  The
    guest has registered async PF (pv) and taken the boot wake-all; accounts
    start now.  Tasks are spawned with :meth:`spawn` and map the buffer.
    """

    def __init__(self, host: str = "pv", *, vcpus: int = 1, preemptible: bool = True, swap: str = "nvme_gen4",
                 seed: int = 0):
        if host not in bm.MODES:
            raise ValueError(f"unknown host {host!r}; expected one of {list(bm.MODES)}")
        self.host = host
        self.kernel = GuestKernel(GuestConfig(pv=bm.MODES[host]["pv"], preemptible=preemptible))
        cfg = HostConfig(async_pf=bm.MODES[host]["async_pf"], vcpus=vcpus, guest_mem=8 * MiB, host_limit=1 * MiB,
                         swap_device=swap, seed=seed)
        self.m = Machine(cfg, self.kernel)
        self.array = shared_array(self.kernel, DATA_PAGES)
        self.m.prefault(self.array.gfn, self.array.pages)
        self.m.start()
        self.m.run(self.m.env.now + BOOT_NS)
        self.m.reset_accounts()
        self.boot_events = len(self.m.tracer.events)
        self.tasks: list = []

    @property
    def cpus(self) -> list:
        return self.kernel.cpus

    def swapped(self, n: int, start: int = 0) -> list[int]:
        """``n`` buffer gfns that are on swap now (lowest first)."""
        out = [g for g in range(self.array.gfn + start, self.array.gfn + self.array.pages)
               if self.m.mm.page_state(gfn_to_hva(self.m.kvm, g)) == PageState.SWAPPED][:n]
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} swapped pages, wanted {n}")
        return out

    def gva(self, gfn: int) -> int:
        return self.array.gva + ((gfn - self.array.gfn) << abi.PAGE_SHIFT)

    def spawn(self, comm: str, program: Callable, cpu: int = 0) -> Any:
        mm = AddressSpace()
        self.array.map_into(mm)
        task = self.kernel.spawn(comm, program, cpu, mm)
        self.tasks.append(task)
        return task

    def events(self, names: Sequence[str] = APF_EVENTS, since: int | None = None) -> list[TraceEvent]:
        """Trace events (of ``names``) since boot, or since index ``since``."""
        evs = self.m.tracer.events[self.boot_events if since is None else since:]
        return [ev for ev in evs if ev.name in names]

    def finish(self, limit_ns: int = 1_000_000_000) -> list[str]:
        """Run until the spawned tasks exited, destroy the VM; the leak lines."""
        end = self.m.env.now + limit_ns
        while any(t.state != TASK_DEAD for t in self.tasks) and self.m.env.now < end:
            self.m.run(min(self.m.env.now + 1_000_000, end))
        self.m.shutdown()
        return self.m.leaks()


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


def _snap(b: GuestBench) -> Snapshot:
    return Snapshot(b.m.env.now, running(b.kernel), task_states(b.kernel), sleepers(b.kernel),
                    [reason_word(c) if c.vcpu is not None else 0 for c in b.cpus],
                    [bool(v.arch.apf.halted) if hasattr(v.arch.apf, "halted") else False for v in b.m.vcpus])


def _trace_lines(b: GuestBench, evs: Iterable[TraceEvent]) -> list[str]:
    tps = tracepoints(b.m.gen)
    return [f"{ev.t_ns / 1000:9.3f} us {ev.name}: {tps[ev.name].message(ev.args)}" for ev in evs]


def step_through(b: GuestBench, limit_ns: int = 200_000_000, max_steps: int = 400_000) -> list[Snapshot]:
    """Run ``b`` one engine event at a time until its tasks exited; a snapshot at each visible change."""
    env = b.m.env
    snaps = [_snap(b)]
    mark = len(b.m.tracer.events)
    end = env.now + limit_ns
    for _ in range(max_steps):
        if all(t.state == TASK_DEAD for t in b.tasks) or env.peek() is None or env.peek() > end:
            break
        env.step()
        s = _snap(b)
        if s.key() != snaps[-1].key():
            s.trace = _trace_lines(b, b.events(since=mark))
            mark = len(b.m.tracer.events)
            snaps.append(s)
    return snaps


def steps_text(snaps: Sequence[Snapshot]) -> str:
    return "\n".join(f"[{i}] {s.text()}" for i, s in enumerate(snaps))


def first(snaps: Sequence[Snapshot], pred: Callable[[Snapshot], bool]) -> int:
    """Index of the first snapshot satisfying ``pred`` (ValueError if none)."""
    for i, s in enumerate(snaps):
        if pred(s):
            return i
    raise ValueError("no snapshot matches")


# --- 05: the scenarios ------------------------------------------------------------------------

def _touch(gva: int, *, kernel: bool = False) -> Any:
    from ..guest.ops import Touch
    return Touch(gva, True, 0, kernel=kernel)


def guest_scenario(name: str, seed: int = 0) -> dict[str, Any]:
    """Run one of :data:`GUEST_SCENARIOS` step by step; snapshots, guest stats, vcpu time split, leaks."""
    if name not in GUEST_SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {list(GUEST_SCENARIOS)}")
    return GUEST_SCENARIOS[name](seed)


def _result(b: GuestBench, snaps: list[Snapshot], name: str, **extra: Any) -> dict[str, Any]:
    leaks = b.finish()
    acct = b.m.account()
    st = b.kernel.stats
    return {"name": name, "snaps": snaps, "stats": {k: st[k] for k in
            ("sleeps", "halted_waits", "dummies_created", "dummies_consumed", "dummies_dropped")},
            "work_ns": {t.comm: t.cpu_ns for t in b.tasks}, "acct": acct, "leaks": leaks,
            "apf_halts": sum(v.stat["apf_halts"] for v in b.m.vcpus),
            "trace": _trace_lines(b, b.events()), **extra}


def _sleep_and_schedule(seed: int) -> dict[str, Any]:
    """A touches a swapped page then exits; B computes 1 ms.  A sleeps, B runs, page-ready wakes A."""
    from ..workloads import steps
    from ..guest.ops import Work
    b = GuestBench(seed=seed)
    (gfn,) = b.swapped(1)
    b.spawn("A", steps(_touch(b.gva(gfn))))
    b.spawn("B", steps(Work(1_000_000)))
    snaps = step_through(b)
    return _result(b, snaps, "sleep_and_schedule", gfn=gfn)


def _halt_in_kernel_section(seed: int) -> dict[str, Any]:
    """A touches a swapped page with preemption disabled (a kernel section); B computes.  A halts the cpu."""
    from ..workloads import kernel_section, steps
    from ..guest.ops import Work
    b = GuestBench(seed=seed)
    (gfn,) = b.swapped(1)
    b.spawn("A", kernel_section(_touch(b.gva(gfn), kernel=True)))
    b.spawn("B", steps(Work(1_000_000)))
    snaps = step_through(b)
    return _result(b, snaps, "halt_in_kernel_section", gfn=gfn)


def _wake_before_wait(seed: int) -> dict[str, Any]:
    """Page-ready for T reaches the guest before its not-present: a dummy node, the wait returns at once.

    Forced: at the instant KVM traces not-present T, the guest twin
    ``kvm_async_pf_task_wake(T)`` runs on cpu 0 (on one vcpu the pending #PF
    would otherwise gate the page-ready; with several vcpus the order can
    really be inverted).
    """
    from ..workloads import steps
    b = GuestBench(seed=seed)
    (gfn,) = b.swapped(1)
    cpu0 = b.cpus[0]
    seen: dict[str, Any] = {}
    inner = b.m.env.tracer

    def hook(t_ns: int, name: str, fields: dict) -> None:
        inner(t_ns, name, fields)
        if name == "kvm_async_pf_not_present" and "token" not in seen:
            seen["token"] = fields["token"]
            b.m.env.schedule(0, lambda _a: pv.kvm_async_pf_task_wake(cpu0, fields["token"]))

    b.m.env.tracer = hook
    b.spawn("A", steps(_touch(b.gva(gfn))))
    snaps = step_through(b)
    b.m.env.tracer = inner
    return _result(b, snaps, "wake_before_wait", gfn=gfn, token=seen.get("token"))


def _wake_all(seed: int) -> dict[str, Any]:
    """Two vcpus; A sleeps on cpu 0, C on cpu 1, a dummy waits on cpu 0; then token ~0 on cpu 0.

    The broadcast is delivered by calling the guest twin
    ``kvm_async_pf_task_wake(0xffffffff)`` on cpu 0 directly (the host sends
    it when the guest (re)registers its area).
    """
    from ..workloads import steps
    from ..guest.ops import Work
    b = GuestBench(vcpus=2, swap="hdd_7200_2010", seed=seed)
    g0, g1 = b.swapped(2)
    b.spawn("A", steps(_touch(b.gva(g0))), cpu=0)
    b.spawn("B", steps(Work(2_000_000)), cpu=0)
    b.spawn("C", steps(_touch(b.gva(g1))), cpu=1)
    env = b.m.env
    while sum(1 for n in pv.all_nodes(b.kernel.sleepers) if n.task is not None) < 2:
        env.step()
    pv.kvm_async_pf_task_wake(b.cpus[0], 0x5a5a5)     # a page-ready nobody waits for: a dummy on cpu 0
    before = _snap(b)
    pv.kvm_async_pf_task_wake(b.cpus[0], abi.BROADCAST_TOKEN)
    after = _snap(b)
    snaps = [before, after] + step_through(b)[1:]
    return _result(b, snaps, "wake_all")


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
