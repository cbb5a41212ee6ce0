"""Store a mutation campaign's outcome in ``data/mutation_campaign.json`` (what notebook 09 shows).

A campaign takes tens of minutes, so the notebook reads its stored outcome
instead of running it.  Regenerate after a change to a twin, a configuration
or an invariant::

    python -m asyncpf check --mutation --module M --max-seconds 8 --json > M.json    # each protocol twin module M
    python -m asyncpf check --mutation --module asyncpf.guest.kvm --max-seconds 30 --json > asyncpf.guest.kvm.json
    python -m asyncpf.tools.mutation_campaign --after *.json [--before before/*.json ...] \\
        --module-seconds asyncpf.guest.kvm=30 ...

(one ``--json`` file per module, run in as many processes as there are cores; the shared twins --
asyncpf.host.x86, asyncpf.host.async_pf, asyncpf.guest.kvm -- run in every configuration, so they get a longer
budget, recorded per module).
After new configurations or rules, ``python -m asyncpf.tools.mutation_rejudge`` gives a module's verdicts
in the time its survivors take (it keeps the stored kills nothing has invalidated).
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


def record(after: list[dict], before: list[dict], max_seconds: float,
           module_seconds: dict[str, float] | None = None) -> dict:
    """The stored form: per module the score rows (before, after), per mutant its verdict, every equivalence reason.

    ``module_seconds`` names the modules run with another per-mutant budget than ``max_seconds`` (the shared
    twins run in every configuration, so a survivor needs longer to be explored to the end).
    """
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
    budgets = {m: (module_seconds or {}).get(m, max_seconds) for m in modules}
    return {"max_seconds_per_mutant": max_seconds, "seconds_per_mutant_by_module": dict(sorted(budgets.items())),
            "modules": dict(sorted(modules.items())),
            "mutants": dict(sorted(mutants.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asyncpf.tools.mutation_campaign", description=__doc__.split("\n")[0])
    p.add_argument("--after", nargs="+", required=True, metavar="FILE", help="check --mutation --json outputs")
    p.add_argument("--before", nargs="*", default=[], metavar="FILE", help="an earlier campaign's outputs")
    p.add_argument("--max-seconds", type=float, default=8.0, help="the per-mutant budget the campaign ran with")
    p.add_argument("--module-seconds", nargs="*", default=[], metavar="MODULE=SECONDS",
                   help="modules run with another per-mutant budget")
    args = p.parse_args(argv)
    module_seconds = {}
    for item in args.module_seconds:
        module, _, seconds = item.partition("=")
        try:
            module_seconds[module] = float(seconds)
        except ValueError:
            p.error(f"--module-seconds {item!r}: expected MODULE=SECONDS")
    OUT.write_text(json.dumps(record(_load(args.after), _load(args.before), args.max_seconds, module_seconds),
                              indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
