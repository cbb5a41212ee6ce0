"""How fast the model runs, measured against a reference in the same process: events/s, the heapq ratio, peak RSS.

The machines this project runs on are shared, so an events/s figure alone
says little: the same run is twice as slow when another job holds the other
core.  A *ratio* to a reference measured in the same process, just before,
is what can be compared across runs and machines.  The reference is the bare
heapq loop of ``bench-engine`` (:func:`asyncpf.engine_bench.run_heapq`): pop
``(t, seq, k)``, call entity k's callback, which pushes its next wake-up.

Both are measured in CPU time of the process (``time.process_time``), not
wall time: on a loaded machine wall time also counts the time other
processes held the core.  Wall time and peak resident memory are reported
beside them.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any, Callable

REFERENCE_EVENTS = 60_000   # per heapq timing: ~0.05 s on the project's machines
REFERENCE_REPEAT = 3        # the median of three


def heapq_events_per_s(events: int = REFERENCE_EVENTS, repeat: int = REFERENCE_REPEAT) -> float:
    """The bare heapq loop's events per CPU second in this process now (median of ``repeat``)."""
    from .engine_bench import run_heapq

    rates = []
    for _ in range(repeat):
        t0 = time.process_time()
        n, _end = run_heapq(100, max(1, events // 100), 0)
        rates.append(n / max(time.process_time() - t0, 1e-9))
    return statistics.median(rates)


def peak_rss_bytes() -> int:
    """Peak resident set of this process and of the children it waited for (bytes)."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * scale


def timed(run: Callable[[], dict], events: Callable[[dict], int]) -> tuple[dict, dict[str, Any]]:
    """Run ``run()`` between two heapq references; its result and ``{events, cpu_s, wall_s, ..., peak_rss}``.

    The reference is the mean of the loop's rate just before and just after the run (the machine's load drifts).
    """
    before = heapq_events_per_s()
    c0, w0 = time.process_time(), time.perf_counter()
    result = run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    reference = (before + heapq_events_per_s()) / 2
    n = events(result)
    rate = n / max(cpu, 1e-9)
    return result, {"events": n, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
                    "events_per_s": round(rate), "heapq_events_per_s": round(reference),
                    "ratio_vs_heapq": round(rate / reference, 4), "peak_rss": peak_rss_bytes()}


def summary(per_run: dict[str, dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """All runs together: events over CPU seconds, the median reference, the ratio, wall time, peak RSS."""
    events = sum(s["events"] for s in per_run.values())
    cpu = sum(s["cpu_s"] for s in per_run.values())
    reference = statistics.median(s["heapq_events_per_s"] for s in per_run.values())
    rate = events / max(cpu, 1e-9)
    return {"events": events, "cpu_s": round(cpu, 3), "events_per_s": round(rate),
            "heapq_events_per_s": round(reference), "ratio_vs_heapq": round(rate / reference, 4),
            "wall_s": round(wall_s, 3),
            "peak_rss": max([peak_rss_bytes()] + [s["peak_rss"] for s in per_run.values()]),
            "runs": per_run,
            "note": "events/s in CPU time of each host's process (set-up included); the heapq loop of "
                    "bench-engine timed in the same process just before and after; wall_s is the whole command's"}


def line(s: dict[str, Any]) -> str:
    """One line for a table's footer."""
    return (f"speed: {s['events_per_s']:,} events/s of CPU (set-up included), bare heapq loop "
            f"{s['heapq_events_per_s']:,} events/s in the same processes: ratio {s['ratio_vs_heapq']:.3f}; "
            f"wall {s['wall_s']:.2f} s; peak RSS {s['peak_rss'] / (1 << 20):,.0f} MiB")
