"""Store a mutation campaign's outcome in ``data/mutation_campaign.json`` (what notebook 09 shows).

A campaign takes tens of minutes, so the notebook reads its stored outcome
instead of running it.  Regenerate after a change to a twin, a configuration
or an invariant::

    python -m asyncpf check --mutation --module host.legacy.async_pf --module host.legacy.mmu \\
        --module host.interrupt.async_pf --module host.interrupt.lapic --module guest.legacy \\
        --module guest.interrupt --max-seconds 8 --json > after.json
    python -m asyncpf.tools.mutation_campaign --after after.json [--before before.json ...]

(the campaign may be split over several processes, one ``--json`` file each).
``--before`` keeps an earlier campaign's per-module score beside it.  Only
verdicts are stored -- no timings -- and
``tests/test_mutation.py`` checks that the stored mutants are still the ones
the twins give (same ids, same source) and that the equivalent ones are still
those the rules and :mod:`asyncpf.check.equivalent_mutants` name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "data" / "mutation_campaign.json"


def _load(paths: list[str]) -> list[dict]:
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def record(after: list[dict], before: list[dict], max_seconds: float) -> dict:
    """The stored form: per module the score rows (before, after), per mutant its verdict, every equivalence reason."""
    modules: dict[str, dict] = {}
    for label, runs in (("before", before), ("after", after)):
        for run in runs:
            for module, row in run["by_module"].items():
                modules.setdefault(module, {})[label] = row
    mutants: dict[str, dict] = {}
    for run in after:
        for kind in ("killed", "survivors", "equivalent"):
            for m in run[kind]:
                v = {"status": m["status"], "before": m["before"]}
                if m["status"] == "killed":
                    v["by"] = m["how"]
                if m["status"] == "equivalent":
                    v["reason"] = m["reason"]
                mutants[m["id"]] = v
    return {"max_seconds_per_mutant": max_seconds, "modules": dict(sorted(modules.items())),
            "mutants": dict(sorted(mutants.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asyncpf.tools.mutation_campaign", description=__doc__.split("\n")[0])
    p.add_argument("--after", nargs="+", required=True, metavar="FILE", help="check --mutation --json outputs")
    p.add_argument("--before", nargs="*", default=[], metavar="FILE", help="an earlier campaign's outputs")
    p.add_argument("--max-seconds", type=float, default=8.0, help="the per-mutant budget the campaign ran with")
    args = p.parse_args(argv)
    OUT.write_text(json.dumps(record(_load(args.after), _load(args.before), args.max_seconds), indent=1,
                              sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
