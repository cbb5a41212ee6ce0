"""``python -m asyncpf bench-engine``: the engine against SimPy and a bare heapq loop.

The workload is a classic discrete-event micro-benchmark:
K entities each keep rescheduling themselves; an *event* is one timed wake-up
popped and dispatched.  Delays are integer nanoseconds, uniform on 1..2000,
drawn from one seeded :class:`random.Random` per entity, so every engine sees
exactly the same delays, the same wake-up times and the same number of
wake-ups; the code checks that it does before reporting anything.

Three engines run it:

* ``asyncpf`` -- :class:`asyncpf.sim.Environment`, processes that ``yield <int>``;
* ``heapq``   -- a bare loop: pop ``(t, seq, k)``, call entity k's callback,
  which pushes its next wake-up (the reference of section 5.2);
* ``simpy``   -- SimPy processes that ``yield env.timeout(d)``.

Each is timed with :func:`time.perf_counter` (building the entities included),
best of R runs.  Targets: asyncpf >= 1.5x SimPy and >= 0.6x the bare loop.
The command reports; it exits 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import platform
import random
import sys
import time
from itertools import count
from typing import Callable

from .argtypes import integer
from .cli import UsageError, command
from .progress import bar
from .sim import Environment

TARGET_VS_SIMPY = 1.5
TARGET_VS_HEAPQ = 0.6
MAX_DELAY_NS = 2000  # delays are uniform integers on 1..MAX_DELAY_NS
MAX_TIMED_EVENTS = 20_000_000  # repeat x events per engine: a few minutes on the slowest engine

ENGINES = ("asyncpf", "heapq", "simpy")


class SimPyMissing(RuntimeError):
    pass


def _import_simpy():
    try:
        import simpy  # noqa: PLC0415 - optional, only the benchmark needs it
    except ImportError as exc:
        raise SimPyMissing(
            "bench-engine compares against SimPy, which is not installed in this "
            f"environment ({exc}); install it with `pip install simpy` "
            "(or `pip install -e '.[dev]'`)"
        ) from None
    return simpy


def _entity_rngs(seed: int, entities: int) -> list[Callable[[], float]]:
    """One independent, seeded stream per entity (``random()`` bound methods)."""
    return [random.Random(f"bench-engine:{seed}:{k}").random for k in range(entities)]


# Each runner builds the workload, runs it to the end and returns
# (timed wake-ups dispatched, final simulated time).  An entity draws
# d = int(r() * MAX_DELAY_NS) + 1, sleeps d, and does that `per` times.

def run_asyncpf(entities: int, per: int, seed: int) -> tuple[int, int]:
    env = Environment(seed=seed)

    def entity(r: Callable[[], float]):
        for _ in range(per):
            yield int(r() * MAX_DELAY_NS) + 1

    for k, r in enumerate(_entity_rngs(seed, entities)):
        env.process(entity(r), f"e{k}")
    env.run()
    # events_processed also counts, per entity, the entry that starts the
    # process and the one that notifies its termination
    return env.events_processed - 2 * entities, env.now


def run_heapq(entities: int, per: int, seed: int) -> tuple[int, int]:
    queue: list[tuple[int, int, int]] = []
    seq = count()
    push, pop = heapq.heappush, heapq.heappop

    def make_callback(k: int, r: Callable[[], float]) -> Callable[[int], None]:
        remaining = per

        def callback(t: int) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining:
                push(queue, (t + int(r() * MAX_DELAY_NS) + 1, next(seq), k))

        return callback

    callbacks = []
    for k, r in enumerate(_entity_rngs(seed, entities)):
        callbacks.append(make_callback(k, r))
        push(queue, (int(r() * MAX_DELAY_NS) + 1, next(seq), k))
    n = 0
    t = 0
    while queue:
        t, _s, k = pop(queue)
        n += 1
        callbacks[k](t)
    return n, t


def run_simpy(entities: int, per: int, seed: int) -> tuple[int, int]:
    simpy = _import_simpy()
    env = simpy.Environment()
    timeout = env.timeout

    def entity(r: Callable[[], float]):
        for _ in range(per):
            yield timeout(int(r() * MAX_DELAY_NS) + 1)

    for r in _entity_rngs(seed, entities):
        env.process(entity(r))
    env.run()
    # SimPy numbers every scheduled event; with the queue drained, all were
    # processed: one Initialize and one termination per process besides the
    # timeouts.  (A private counter, read once after the timed run.)
    scheduled = next(env._eid)
    return scheduled - 2 * entities, int(env.now)


RUNNERS: dict[str, Callable[[int, int, int], tuple[int, int]]] = {
    "asyncpf": run_asyncpf,
    "heapq": run_heapq,
    "simpy": run_simpy,
}


def measure(events: int, entities: int, repeat: int, seed: int, progress: Callable[[], None] | None = None) -> dict:
    """Run the workload on every engine; return the report as a dict (``progress()`` after each timed run)."""
    _import_simpy()  # fail before spending time on the others
    per = max(1, events // entities)
    expected = per * entities
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    end_times: dict[str, int] = {}
    for name in ENGINES:
        runner = RUNNERS[name]
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            n, end = runner(entities, per, seed)
            elapsed = time.perf_counter() - t0
            best[name] = min(elapsed, best.get(name, float("inf")))
            if counts.setdefault(name, n) != n or end_times.setdefault(name, end) != end:
                raise AssertionError(f"{name} is not deterministic across repeats")
            if progress is not None:
                progress()
    # the three engines did the same work (checked even under python -O)
    if counts != dict.fromkeys(ENGINES, expected):
        raise AssertionError(f"event counts differ: {counts}, expected {expected} each")
    if len(set(end_times.values())) != 1:
        raise AssertionError(f"final simulated times differ: {end_times}")
    eps = {name: expected / best[name] for name in ENGINES}
    vs_simpy = eps["asyncpf"] / eps["simpy"]
    vs_heapq = eps["asyncpf"] / eps["heapq"]
    simpy = _import_simpy()
    return {
        "events": expected,
        "events_requested": events,
        "entities": entities,
        "wakeups_per_entity": per,
        "repeat": repeat,
        "seed": seed,
        "counts": counts,
        "final_time_ns": end_times["asyncpf"],
        "seconds": best,
        "events_per_s": eps,
        "ratio_vs_simpy": vs_simpy,
        "ratio_vs_heapq": vs_heapq,
        "targets": {
            "vs_simpy": {"min": TARGET_VS_SIMPY, "met": vs_simpy >= TARGET_VS_SIMPY},
            "vs_heapq": {"min": TARGET_VS_HEAPQ, "met": vs_heapq >= TARGET_VS_HEAPQ},
        },
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "simpy": getattr(simpy, "__version__", "unknown"),
    }


def format_report(report: dict) -> str:
    lines = [
        f"bench-engine: {report['entities']} entities x {report['wakeups_per_entity']} wake-ups "
        f"= {report['events']:,} events, delays uniform 1..{MAX_DELAY_NS} ns, seed {report['seed']}, "
        f"best of {report['repeat']}",
        f"{report['implementation']} {report['python']}, SimPy {report['simpy']}",
        "",
        f"{'engine':<10}{'events':>12}{'seconds':>10}{'events/s':>14}",
    ]
    for name in ENGINES:
        lines.append(
            f"{name:<10}{report['counts'][name]:>12,}{report['seconds'][name]:>10.3f}"
            f"{report['events_per_s'][name]:>14,.0f}"
        )
    lines.append("")
    for key, label in (("vs_simpy", "asyncpf/simpy"), ("vs_heapq", "asyncpf/heapq")):
        target = report["targets"][key]
        ratio = report[f"ratio_{key}"]
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"{label:<14} {ratio:5.2f}x   target >= {target['min']}x: {verdict}")
    return "\n".join(lines)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--events", type=integer(1, 10**7), default=1_000_000, metavar="N",
                   help="about N timed wake-ups per engine, 1..10^7 (default 1,000,000)")
    p.add_argument("--entities", type=integer(1, 10**5), default=100, metavar="K",
                   help="number of self-rescheduling entities, 1..10^5 (default 100); each wakes at least once")
    p.add_argument("--repeat", type=integer(1, 10), default=3, metavar="R",
                   help="runs per engine, 1..10, with R x N at most 2x10^7; the best is reported (default 3)")
    p.add_argument("--seed", type=integer(0, 2**63 - 1), default=0, metavar="S",
                   help="seed of the delay streams (default 0)")


@command("bench-engine", "time the event engine against SimPy and a bare heapq loop", configure)
def run(args: argparse.Namespace) -> int:
    if args.repeat * args.events > MAX_TIMED_EVENTS:  # SimPy's share alone would take many minutes
        raise UsageError(f"--repeat {args.repeat} --events {args.events}: expected R x N at most "
                         f"{MAX_TIMED_EVENTS:,}")
    try:
        with bar(len(ENGINES) * args.repeat, "bench-engine", "runs", quiet=args.json) as progress:
            report = measure(args.events, args.entities, args.repeat, args.seed, progress=progress.update)
    except SimPyMissing as exc:
        print(f"asyncpf bench-engine: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_report(report))
    return 0
