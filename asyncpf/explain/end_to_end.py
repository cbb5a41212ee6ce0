"""Helpers for notebook 06: guest and host together.

:func:`e2e_run` runs bm's threads for a fraction of a second with the trace on
and samples who runs on every vcpu; :func:`apf_pairs` pairs not-present with
page-ready by token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .. import bm
from ..guest.kernel import load_guest_params
from ..trace import TraceEvent
from ..workloads import StopFlag, spawn_bm
from .common import APF_EVENTS as APF_EVENTS  # re-exported: notebook 06 filters a run's trace with it
from .common import MiB

HOSTS = tuple(bm.MODES)  # unpatched, halt, pv


# --- 06: a whole run ---------------------------------------------------------------------------

@dataclass
class RunTimeline:
    """A recorded run: per vcpu, (t_ns, running comm) changes; the trace; summary values."""

    host: str
    start_ns: int
    end_ns: int
    runs: dict[int, list[tuple[int, str]]]
    events: list[TraceEvent]
    tasks: dict[str, int]
    acct: dict[int, dict[str, int]]
    leaks: list[str]
    stats: dict[str, int]
    after: list[TraceEvent]          # events after the window: the drain once ``stop`` is set, and shutdown


E2E_PARAMS = bm.BmParams(vcpus=2, guest_mem=64 * MiB, host_limit=16 * MiB, array=32 * MiB, fault_threads=2,
                         work_threads=2, duration_ns=200_000_000)


def e2e_run(host: str = "pv", params: bm.BmParams = E2E_PARAMS) -> RunTimeline:
    """bm's threads on ``host`` for ``params.duration_ns`` (booted first by ``bm.build``), trace on.

    The engine is stepped one event at a time and every change of a guest
    cpu's current task is recorded (a change list per vcpu).  Then ``stop`` is set, the threads drain, the VM
    is destroyed and checked for leaks.
    """
    machine, kernel, array = bm.build(host, params, trace=True)
    stop = StopFlag()
    faults, works = spawn_bm(kernel, array, params.fault_threads, params.work_threads,
                             load_guest_params()["touch_ns"], stop)
    start = machine.env.now
    end = start + params.duration_ns
    env = machine.env
    first_ev = len(machine.tracer.events)
    runs: dict[int, list[tuple[int, str]]] = {c.id: [(start, c.rq.curr.comm)] for c in kernel.cpus}
    while env.peek() is not None and env.peek() <= end:
        env.step()
        for c in kernel.cpus:
            if runs[c.id][-1][1] != c.rq.curr.comm:
                runs[c.id].append((env.now, c.rq.curr.comm))
    machine.run(end)
    machine.flush_accounts()
    acct = machine.account()
    events = list(machine.tracer.events[first_ev:])
    tasks = {tk.comm: tk.cpu_ns for tk in faults + works}
    stop.set = True
    stuck = bm.drain_after_stop(machine, faults + works)
    machine.shutdown()
    after = list(machine.tracer.events[first_ev + len(events):])
    st = kernel.stats
    return RunTimeline(host, start, end, runs, events, tasks, acct, machine.leaks() + stuck,
                       {k: st[k] for k in ("sleeps", "halted_waits", "dummies_created", "dummies_consumed",
                                          "dummies_dropped")}, after)


def apf_pairs(events: Iterable[TraceEvent]) -> list[dict[str, int]]:
    """Each not-present paired with the first later page-ready of the same token (ready None if none)."""
    open_: dict[int, dict[str, Any]] = {}
    out = []
    for ev in events:
        if ev.name == "kvm_async_pf_not_present":
            rec = {"token": ev.args[0], "gva": ev.args[1], "vcpu": ev.args[0] & 0xFFF, "not_present": ev.t_ns,
                   "completed": None, "ready": None, "ready_vcpu": None}
            open_[ev.args[0]] = rec
            out.append(rec)
        elif ev.name == "kvm_async_pf_completed":
            for rec in open_.values():
                if rec["gva"] == ev.args[2] and rec["completed"] is None:
                    rec["completed"] = ev.t_ns
                    break
        elif ev.name == "kvm_async_pf_ready" and ev.args[0] in open_:
            rec = open_.pop(ev.args[0])
            rec["ready"] = ev.t_ns
            rec["ready_vcpu"] = ev.cpu
    return out


def task_share(r: RunTimeline) -> dict[str, float]:
    """Each bm thread's CPU time in its own work, as a fraction of the run."""
    d = r.end_ns - r.start_ns
    return {k: round(v / d, 3) for k, v in r.tasks.items()}


def timeline_summary(r: RunTimeline) -> str:
    pairs = apf_pairs(r.events)
    share = ", ".join(f"{k} {v:.0%}" for k, v in task_share(r).items())
    return (f"{r.host}: {len(pairs)} not-present, {sum(p['ready'] is not None for p in pairs)} answered within the run; "
            f"sleeps {r.stats['sleeps']}; cpu share {share}; leaks {len(r.leaks)}")


def plot_timeline(r: RunTimeline, ax: Any = None, window_ns: tuple[int, int] | None = None) -> Any:
    """Per vcpu: a bar coloured by the running task; below it, one line per APF in flight on that vcpu."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    lo, hi = window_ns or (r.start_ns, r.end_ns)
    comms = sorted({c for runs in r.runs.values() for _, c in runs})
    palette = dict(zip(comms, plt.get_cmap("tab10").colors))
    pairs = apf_pairs(r.events)
    ms = lambda t: (t - r.start_ns) / 1e6  # noqa: E731
    for vcpu, runs in r.runs.items():
        y = vcpu * 2
        segs = []
        for i, (t0, comm) in enumerate(runs):
            t1 = runs[i + 1][0] if i + 1 < len(runs) else r.end_ns
            a, z = max(t0, lo), min(t1, hi)
            if z > a:
                segs.append((a, z, comm))
        for a, z, comm in sorted(segs, key=lambda sg: sg[0] - sg[1]):  # long runs first, short ones drawn on top
            # at least 0.3% of the window wide, so a few-us run of the fault thread shows
            ax.barh(y + 1, max(ms(z) - ms(a), 0.003 * (hi - lo) / 1e6), left=ms(a), height=0.8, color=palette[comm],
                    label=comm if comm not in ax.get_legend_handles_labels()[1] else None)
        mine = [p for p in pairs if p["vcpu"] == vcpu]
        for k, p in enumerate(mine):
            t1 = p["ready"] if p["ready"] is not None else r.end_ns
            if t1 >= lo and p["not_present"] <= hi:
                yy = y + 0.1 + 0.6 * (k % 4) / 4
                ax.plot([ms(max(p["not_present"], lo)), ms(min(t1, hi))], [yy, yy], color="black", lw=1)
    ax.set_yticks([v * 2 + 1 for v in r.runs] + [v * 2 + 0.3 for v in r.runs],
                  [f"vcpu{v} runs" for v in r.runs] + [f"vcpu{v} APFs" for v in r.runs])
    ax.set_xlim(ms(lo), ms(hi))
    ax.set_xlabel("ms since bm started")
    ax.set_title(f"{r.host} host: running task per vcpu; black lines = not-present .. page-ready")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=7, ncol=len(comms), frameon=False)
    return ax
