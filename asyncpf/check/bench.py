"""``asyncpf bench-explore``: where the explorer's time goes, and what a faster way back to a choice point could gain.

The explorer re-runs a configuration from the start for every schedule
(:mod:`asyncpf.check.explore`): it builds and boots the machine, replays the
prefix (only the predicates that remember between steps run on it), judges
the steps beyond it, keys the state at each new choice point and tears the
machine down.  Each run's CPU time is split into those phases
(``Report.cpu``), so a search tells exactly what it spent where.

From that split this benchmark derives two ceilings, in distinct states per
CPU second, for an explorer that got back to a choice point some other way:

* ``free_return`` -- getting back costs nothing (no build, no replay): the
  judged steps, keys and teardowns alone.  No checkpointing scheme beats it.
* ``fork_return`` -- one ``fork`` per schedule instead of build and replay
  (the issue's suggestion), with the fork+_exit+waitpid of this very process
  measured here, in CPU time of parent and child.  An upper bound: it leaves
  out the child's copy-on-write faults and sending its states back.

The phases are CPU time of this process (``time.process_time``); the fork is
timed right after the searches.  Both are ceilings for one process: parts
searched on several cores (``check --subtrees``) add up.  The numbers move
with the machine's load; compare them within one run.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import time
from typing import Callable

from ..argtypes import integer, seconds
from ..cli import UsageError, command
from ..progress import bar
from ..speed import peak_rss_bytes
from .explore import CONFIGS, PHASES, Report, explore, fast_configs

GOAL_STATES_PER_S = 2000   # issue 14's goal for the explorer


def fork_seconds(n: int) -> tuple[float, float] | None:
    """``fork`` + ``_exit`` in the child + ``waitpid`` of this process, ``n`` times: the median CPU seconds (parent and
    child, user and system) and the median wall seconds of one (None: this platform cannot fork, or it refused).

    Signals are blocked around each fork, so a Ctrl-C cannot reach the child before it exits (it stays pending in
    the parent, which takes it once they are unblocked).
    """
    if not hasattr(os, "fork"):
        return None
    cpu, wall = [], []
    every = set(signal.valid_signals())
    for _ in range(n):
        c0, w0 = _cpu_with_children(), time.perf_counter()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, every)
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        except OSError:
            return None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        wall.append(time.perf_counter() - w0)
        cpu.append(_cpu_with_children() - c0)
    return statistics.median(cpu), statistics.median(wall)


def _cpu_with_children() -> float:
    """User and system seconds of this process and of the children it has waited for (getrusage: microseconds)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cost(reports: list[Report], fork: tuple[float, float] | None) -> dict:
    """The searches' phases added up, per schedule and per step, and the ceilings they imply (``fork``: what
    :func:`fork_seconds` measured)."""
    all_ = Report.combined(reports)
    cpu, by_phase = all_.cpu, all_.phase_steps
    total = sum(cpu.values())
    states, schedules, steps, replayed, keys = all_.states, all_.schedules, all_.steps, all_.replayed_steps, all_.keys
    fork_s = None if fork is None else fork[0]
    beyond = cpu["judged"] + cpu["keys"] + cpu["teardown"]   # what a run costs once it is back at its choice point

    def rate(seconds_: float) -> float:
        return round(states / seconds_, 1) if seconds_ > 0 else 0.0

    out = {
        "configs": [r.config for r in reports], "complete": all_.complete,
        "distinct_states": states, "schedules": schedules, "steps": steps, "replayed_steps": replayed,
        "judged_steps": steps - replayed, "steps_by_phase": by_phase, "state_keys": keys,
        "cpu_s": {p: round(s, 4) for p, s in cpu.items()}, "cpu_s_total": round(total, 4),
        "share": {p: round(s / total, 4) if total else 0.0 for p, s in cpu.items()},
        "per_schedule_ms": {p: round(s / schedules * 1e3, 4) if schedules else 0.0 for p, s in cpu.items()},
        # per step of the phase's own (the boot's steps are in build's time)
        "replayed_step_us": round(cpu["replay"] / by_phase["replay"] * 1e6, 2) if by_phase["replay"] else 0.0,
        "judged_step_us": round(cpu["judged"] / by_phase["judged"] * 1e6, 2) if by_phase["judged"] else 0.0,
        "key_us": round(cpu["keys"] / keys * 1e6, 2) if keys else 0.0,
        "schedules_per_state": round(schedules / states, 3) if states else float(schedules),
        "fork_ms": None if fork is None else round(fork[0] * 1e3, 4),
        "fork_wall_ms": None if fork is None else round(fork[1] * 1e3, 4),
        "peak_rss": peak_rss_bytes(),
        "states_per_cpu_s": {
            "now": rate(total),
            "free_return": rate(beyond),
            "fork_return": None if fork_s is None else rate(beyond + schedules * fork_s),
        },
        "goal_states_per_s": GOAL_STATES_PER_S,
        "note": "CPU time of this process; free_return: getting back to a choice point costs nothing; fork_return: "
                "one fork per schedule (its CPU time, parent and child) instead of build and replay, the child's "
                "copy-on-write faults and sending its states back left out; both upper bounds for one process",
    }
    return out


def format_report(c: dict) -> str:
    ms, share = c["per_schedule_ms"], c["share"]
    rates = c["states_per_cpu_s"]
    lines = [
        f"bench-explore: {', '.join(c['configs'])}" if len(c["configs"]) <= 4 else
        f"bench-explore: {len(c['configs'])} configurations",
        f"  {c['distinct_states']} distinct states, {c['schedules']} schedules "
        f"({c['schedules_per_state']:.2f} per state), {c['steps']} steps of which {c['replayed_steps']} replayed, "
        f"{c['state_keys']} state keys" + ("" if c["complete"] else " (a budget or a configuration's cap on "
                                                                     "schedules was hit)"),
        f"  CPU per schedule ({c['cpu_s_total']:.2f} s in all):",
    ]
    what = {"build": "build and boot", "replay": "replayed prefix", "judged": "judged steps",
            "keys": "state keys", "teardown": "teardown"}
    for p in PHASES:
        lines.append(f"    {what[p]:<16} {ms[p]:8.3f} ms  {share[p]:6.1%}")
    lines.append(f"  unit costs: replayed step {c['replayed_step_us']:.1f} us, judged step {c['judged_step_us']:.1f} us, "
                 f"state key {c['key_us']:.1f} us"
                 + ("" if c["fork_ms"] is None else f", fork+exit+wait {c['fork_ms']:.2f} ms of CPU "
                                                    f"({c['fork_wall_ms']:.2f} ms wall)") +
                 f" (peak RSS {c['peak_rss'] / (1 << 20):,.0f} MiB)")
    fork = "no fork on this platform" if rates["fork_return"] is None else f"{rates['fork_return']:,.0f}"
    lines.append(f"  distinct states per CPU second: now {rates['now']:,.0f}; if getting back to a choice point "
                 f"were free {rates['free_return']:,.0f}; with a fork per schedule at most {fork} "
                 f"(goal {c['goal_states_per_s']:,})")
    return "\n".join(lines)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", choices=list(CONFIGS), metavar="NAME",
                   help="search this configuration (repeatable; default: the fast ones, as `check` does)")
    p.add_argument("--forks", type=integer(1, 1000), default=50, metavar="N",
                   help="forks of this process to time, 1..1000 (default 50; the median is reported)")
    p.add_argument("--max-seconds", type=seconds(0.1, 3600), default=60.0, metavar="S",
                   help="wall-clock budget of each search, 0.1..3600 s (default 60)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")


def run_bench(names: list[str], forks: int, max_seconds: float,
              tick: Callable[[], None] = lambda: None) -> dict:
    """Search each configuration to the end (as ``check`` does), then time the forks; :func:`cost` of it all."""
    reports = []
    for name in names:
        reports.append(explore(name, stop_at_first=False, max_seconds=max_seconds, trace_counterexample=False))
        tick()
    return cost(reports, fork_seconds(forks))


@command("bench-explore", "where the explorer's CPU time goes per schedule, and the states/s a faster way back to a "
                          "choice point (free, or a fork) could reach", configure)
def main(args: argparse.Namespace) -> int:
    names = args.config or [c.name for c in fast_configs()]
    if len(set(names)) != len(names):
        raise UsageError(f"--config {','.join(names)}: expected each configuration once")
    with bar(len(names), "bench-explore", "configs", quiet=args.json) as progress:
        report = run_bench(names, args.forks, args.max_seconds, progress.update)
    print(json.dumps(report, sort_keys=True) if args.json else format_report(report))
    return 0
