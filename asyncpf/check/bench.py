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
  measured here.  An upper bound: it leaves out the child's copy-on-write
  faults and sending its states back.

Everything is CPU time of this process (``time.process_time``), and the fork
is timed right after the searches, with their visited sets in memory.  The
numbers move with the machine's load; compare them within one run.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable

from ..argtypes import integer, seconds
from ..cli import UsageError, command
from ..progress import bar
from ..speed import peak_rss_bytes
from .explore import CONFIGS, PHASES, Report, explore, fast_configs

GOAL_STATES_PER_S = 2000   # issue 14's goal for the explorer


def fork_seconds(n: int) -> float | None:
    """The median CPU-and-wait time of ``fork`` + ``_exit`` in the child + ``waitpid``, over ``n`` (None: no fork)."""
    if not hasattr(os, "fork"):
        return None
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cost(reports: list[Report], fork_s: float | None) -> dict:
    """The searches' phases added up, per schedule and per step, and the ceilings they imply."""
    cpu = {p: sum(r.cpu[p] for r in reports) for p in PHASES}
    total = sum(cpu.values())
    states, schedules = sum(r.states for r in reports), sum(r.schedules for r in reports)
    steps, replayed = sum(r.steps for r in reports), sum(r.replayed_steps for r in reports)
    keys = sum(r.keys for r in reports)
    judged = steps - replayed
    beyond = cpu["judged"] + cpu["keys"] + cpu["teardown"]   # what a run costs once it is back at its choice point

    def rate(seconds_: float) -> float:
        return round(states / seconds_, 1) if seconds_ > 0 else 0.0

    out = {
        "configs": [r.config for r in reports], "complete": all(r.complete for r in reports),
        "distinct_states": states, "schedules": schedules, "steps": steps, "replayed_steps": replayed,
        "judged_steps": judged, "state_keys": keys,
        "cpu_s": {p: round(s, 4) for p, s in cpu.items()}, "cpu_s_total": round(total, 4),
        "share": {p: round(s / total, 4) if total else 0.0 for p, s in cpu.items()},
        "per_schedule_ms": {p: round(s / schedules * 1e3, 4) if schedules else 0.0 for p, s in cpu.items()},
        "build_ms": round(cpu["build"] / schedules * 1e3, 4) if schedules else 0.0,
        "replayed_step_us": round(cpu["replay"] / replayed * 1e6, 2) if replayed else 0.0,
        "judged_step_us": round(cpu["judged"] / judged * 1e6, 2) if judged else 0.0,
        "key_us": round(cpu["keys"] / keys * 1e6, 2) if keys else 0.0,
        "schedules_per_state": round(schedules / states, 3) if states else float(schedules),
        "fork_ms": None if fork_s is None else round(fork_s * 1e3, 4),
        "peak_rss": peak_rss_bytes(),
        "states_per_cpu_s": {
            "now": rate(total),
            "free_return": rate(beyond),
            "fork_return": None if fork_s is None else rate(beyond + schedules * fork_s),
        },
        "goal_states_per_s": GOAL_STATES_PER_S,
        "note": "CPU time of this process; free_return: getting back to a choice point costs nothing; fork_return: "
                "one fork per schedule instead of build and replay, the child's copy-on-write faults and sending "
                "its states back left out (both upper bounds)",
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
        f"{c['state_keys']} state keys" + ("" if c["complete"] else " (a budget was hit)"),
        f"  CPU per schedule ({c['cpu_s_total']:.2f} s in all):",
    ]
    what = {"build": "build and boot", "replay": "replayed prefix", "judged": "judged steps",
            "keys": "state keys", "teardown": "teardown"}
    for p in PHASES:
        lines.append(f"    {what[p]:<16} {ms[p]:8.3f} ms  {share[p]:6.1%}")
    lines.append(f"  unit costs: build {c['build_ms']:.3f} ms, replayed step {c['replayed_step_us']:.1f} us, judged "
                 f"step {c['judged_step_us']:.1f} us, state key {c['key_us']:.1f} us"
                 + ("" if c["fork_ms"] is None else f", fork+exit+wait {c['fork_ms']:.2f} ms") +
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
