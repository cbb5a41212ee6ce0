"""``python -m asyncpf check [--mutants] [--methods M,..] [--json] [--full]``: explore the correct model, then every mutant.

Register by adding ``"asyncpf.check.cli"`` to ``COMMAND_MODULES`` in
``asyncpf/__main__.py``; ``main(argv)`` here also runs stand-alone.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..cli import command
from .explore import CONFIGS, explore, fast_configs
from .invariants import REGISTRY
from .known import KNOWN, KNOWN_BY_CONFIG
from .mutants import METHODS, MUTANTS, STATEFUL_SETTINGS, run_mutant

DEFAULT_METHODS = "explorer,stateful,scenario"


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {','.join(METHODS)}")
    return names


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mutants", action="store_true", help="also run every mutant and print the kill table")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--full", action="store_true", help="explore the bigger configurations too")
    p.add_argument("--config", action="append", default=None, help="explore only this configuration (repeatable)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time budget per configuration")
    p.add_argument("--methods", type=_methods, default=DEFAULT_METHODS, metavar="M[,M..]",
                   help="with --mutants: which methods try to catch each mutant (default: all three, "
                        "%(default)s; ~10 s more than the explorer alone). explorer: exhaustive schedules of the mutant's "
                        "configuration, differential against the correct model; stateful: the Hypothesis state "
                        f"machine with the bug on (derandomized, {STATEFUL_SETTINGS['max_examples']} examples x "
                        f"{STATEFUL_SETTINGS['stateful_step_count']} steps, ~1 s per mutant); scenario: every "
                        "named scenario with the bug on and the checker attached (~0.3 s per mutant). "
                        "The explorer alone is what the 'ftrace lines'/'choices' columns need")


@command("check", "protocol checker: invariants on every schedule of small configurations; mutants", configure)
def main(args: argparse.Namespace) -> int:
    if args.config:
        cfgs = [CONFIGS[name] for name in args.config]
    else:
        cfgs = list(CONFIGS.values()) if args.full else fast_configs()
    known = KNOWN_BY_CONFIG  # the generation's own behaviour (with its source): reported, not counted
    reports = [explore(c, stop_at_first=False, max_seconds=args.max_seconds) for c in cfgs]
    # every invariant broken on some schedule, not only the shortest counterexample's
    correct = [dict(v.as_dict(), config=r.config) for r in reports for name, v in sorted(r.violated.items())
               if name not in known.get(r.config, set())]
    out: dict = {"correct": {"violations": correct,
                             "configs": [r.as_dict() for r in reports],
                             "known_generation_behaviour": {k: sorted(s) for k, s in known.items()},
                             "known": [{"invariant": k.invariant, "generation": k.generation,
                                        "configs": list(k.configs), "source": k.source, "why": k.why}
                                       for k in KNOWN]},
           "invariants": [{"name": i.name, "kind": i.kind, "doc": i.doc, "source": i.source,
                           "generations": list(i.generations) if i.generations else "all",
                           "why_not": i.why_not}
                          for i in REGISTRY.values()]}
    verdicts = [run_mutant(m, max_seconds=args.max_seconds, methods=args.methods)
                for m in MUTANTS] if args.mutants else []
    out["mutants"] = [v.as_dict() for v in verdicts]
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
    else:
        print("correct model:")
        for r in reports:
            print("  " + r.summary())
            expected = set(r.violated) & known.get(r.config, set())
            if expected:
                print(f"    known {r.generation} behaviour, not a model error: {', '.join(sorted(expected))}")
            if set(r.violated) - known.get(r.config, set()):
                print("  shortest counterexample (choice list):", r.counterexample)
                print("\n".join("    " + line for line in r.counterexample_trace.splitlines()[-30:]))
        explored = {r.config for r in reports}
        shown = {name for r in reports for name in r.violated}
        notes = [k for k in KNOWN if explored & set(k.configs) and k.invariant in shown]
        if notes:
            print()
            print("known generation behaviour (source; why):")
            for k in notes:
                print(f"  {k.invariant} on {', '.join(c for c in k.configs if c in explored)} "
                      f"[{k.generation}]: {k.source}; {k.why}")
        if verdicts:
            print()
            print(f"kill table (methods run: {', '.join(m for m in METHODS if m in args.methods)}; "
                  "ftrace lines / choices: the explorer's shortest counterexample -- lines of its ftrace text / "
                  "length of its choice list)")
            print(f"{'mutant':26} {'expected invariant':29} {'caught by':27} {'ftrace lines':>12} {'choices':>7}"
                  "  violated (explorer)")
            for v in verdicts:
                by = ",".join(v.caught_by) if v.caught else "MISSED"
                print(f"{v.mutant:26} {v.invariant:29} {by:27} {_dash(v.ftrace_lines):>12} {_dash(v.choices):>7}"
                      f"  {', '.join(v.found) or '-'}")
            notes = [_note(v) for v in verdicts]
            if any(notes):
                print()
                print("not caught with the expected invariant:")
                print("\n".join(n for n in notes if n))
    # the exit status holds the explorer to catching every mutant (as before); the other columns inform
    ok = not correct and all(("explorer" in v.caught_by) if "explorer" in v.methods else v.caught for v in verdicts)
    return 0 if ok else 1


def _dash(x: object) -> str:
    return "-" if x is None else str(x)


def _note(v) -> str:
    """What a method that ran but did not catch the mutant saw instead (empty if nothing to say)."""
    out = []
    if v.stateful is not None and not v.stateful["caught"]:
        seen = ", ".join(v.stateful["invariants"]) or (v.stateful["error"] if v.stateful["failed"] else "")
        out.append(f"stateful: {'broke ' + seen if v.stateful['failed'] else 'passed'}")
    if v.scenario is not None and not v.scenario["caught"]:
        out.append("scenario: every scenario passed, expected invariant not reported")
    return f"  {v.mutant}: " + "; ".join(out) if out else ""


def run(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m asyncpf check")
    configure(p)
    return main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
