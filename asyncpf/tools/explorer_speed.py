"""The explorer's speed against the plain replay explorer, both measured in this process, one after the other.

``python -m asyncpf.tools.explorer_speed [CONFIG ...] [--full]`` explores each configuration (default: the fast
ones; ``--full``: every one) first with ``explore(reference=True)`` -- every run rebuilt, replayed and judged on
every step, no teardown keys -- then with the explorer, and prints per configuration the schedules, distinct states,
wall seconds, states/s, the ratio of the two times and whether the reports agree (states, violations, shortest
counterexample and its trace).  Wall times on a shared machine move from run to run; their ratio, measured back to
back, is the figure to compare.  A development tool, not a kernel twin.
"""

from __future__ import annotations

import sys
import time

from ..check.explore import Report, explore, fast_configs
from ..check.models import CONFIGS


def verdict(rep: Report) -> tuple:
    """What must not change between the two explorers."""
    return (rep.states, sorted(rep.violated), [v.as_dict() for v in rep.violations], rep.counterexample,
            rep.counterexample_trace, rep.complete)


def timed(name: str, reference: bool) -> tuple[Report, float]:
    t0 = time.perf_counter()
    rep = explore(name, stop_at_first=False, max_seconds=3600, reference=reference)
    return rep, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    full = "--full" in argv
    names = [a for a in argv if a != "--full"]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or (full and names):
        what = f"{unknown[0]!r}" if unknown else "--full with configuration names"
        print(f"explorer_speed: {what}: expected configuration names ({', '.join(CONFIGS)}) or --full",
              file=sys.stderr)
        return 2
    names = names or [c.name for c in (CONFIGS.values() if full else fast_configs())]
    totals = [0.0, 0.0, 0, 0]
    agree = True
    print(f"{'config':34} {'plain: sched states s':>24} {'explorer: sched states s':>27} {'x':>6}  reports")
    for name in names:
        ref, t_ref = timed(name, True)
        new, t_new = timed(name, False)
        same = verdict(ref) == verdict(new)
        agree &= same
        totals[0] += t_ref
        totals[1] += t_new
        totals[2] += ref.states
        totals[3] += new.states
        print(f"{name:34} {ref.schedules:7} {ref.states:6} {t_ref:9.2f} {new.schedules:10} {new.states:6} "
              f"{t_new:9.2f} {t_ref / t_new:6.1f}  {'same' if same else 'DIFFER'}", flush=True)
    print(f"{'total':34} {totals[2] / totals[0]:10.1f} states/s {totals[3] / totals[1]:19.1f} states/s "
          f"{totals[0] / totals[1]:6.1f}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
