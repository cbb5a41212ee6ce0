"""``python -m asyncpf check [--mutants] [--json] [--full]``: explore the correct model, then every mutant.

Register by adding ``"asyncpf.check.cli"`` to ``COMMAND_MODULES`` in
``asyncpf/__main__.py``; ``main(argv)`` here also runs stand-alone.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import command
from .explore import CONFIGS, explore, fast_configs
from .invariants import REGISTRY, KNOWN_BY_CONFIG
from .mutants import MUTANTS, run_mutant


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mutants", action="store_true", help="also run every mutant and print the kill table")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--full", action="store_true", help="explore the bigger configurations too")
    p.add_argument("--config", action="append", default=None, help="explore only this configuration (repeatable)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time budget per configuration")


@command("check", "protocol checker: invariants on every schedule of small configurations; mutants", configure)
def main(args: argparse.Namespace) -> int:
    if args.config:
        cfgs = [CONFIGS[name] for name in args.config]
    else:
        cfgs = list(CONFIGS.values()) if args.full else fast_configs()
    known = KNOWN_BY_CONFIG  # 2.6.38's own behaviour: reported, not counted against "correct"
    reports = [explore(c, stop_at_first=False, max_seconds=args.max_seconds) for c in cfgs]
    correct = [v for r in reports for v in r.violations if v.name not in known.get(r.config, set())]
    out: dict = {"correct": {"violations": [dict(v.as_dict(), config=r.config) for r in reports
                                            for v in r.violations if v.name not in known.get(r.config, set())],
                             "configs": [r.as_dict() for r in reports],
                             "known_generation_behaviour": {k: sorted(s) for k, s in known.items()}},
           "invariants": [{"name": i.name, "kind": i.kind, "doc": i.doc, "source": i.source}
                          for i in REGISTRY.values()]}
    verdicts = [run_mutant(m, max_seconds=args.max_seconds) for m in MUTANTS] if args.mutants else []
    out["mutants"] = [v.as_dict() for v in verdicts]
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        print("correct model:")
        for r in reports:
            print("  " + r.summary())
            if r.violations and r.config not in known:
                print("  shortest counterexample (choice list):", r.counterexample)
                print("\n".join("    " + line for line in r.counterexample_trace.splitlines()[-30:]))
        if verdicts:
            print()
            print(f"{'mutant':28} {'expected invariant':30} {'caught by':10} {'cex lines':>9}  violated")
            for v in verdicts:
                print(f"{v.mutant:28} {v.invariant:30} {v.caught_by if v.caught else 'MISSED':10} "
                      f"{v.length if v.length is not None else '-':>9}  {', '.join(v.found)}")
    ok = not correct and all(v.caught for v in verdicts)
    return 0 if ok else 1


def run(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asyncpf check")
    configure(p)
    return main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
