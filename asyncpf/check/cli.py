"""``asyncpf check [--mutants] [--methods M,..] [--json] [--full] [--list]``: explore the correct model, then every mutant."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from ..argtypes import integer, scheduler_address, seconds
from ..cli import UsageError, command
from ..progress import bar
from ..sweep import Cluster
from .explore import CONFIGS, PartsSearch, Report, explore, explore_round, fast_configs
from .invariants import REGISTRY
from .known import KNOWN, KNOWN_BY_CONFIG
from .mutants import METHODS, MUTANTS, STATEFUL_SETTINGS, run_mutant

DEFAULT_METHODS = "explorer,stateful,scenario"


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated choice of {','.join(METHODS)}")
    return names


def _module(text: str) -> str:
    from .mutation import PROTOCOL_MODULES
    name = text.strip()
    full = name if name.startswith("asyncpf.") else f"asyncpf.{name}"
    if full not in PROTOCOL_MODULES:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a protocol twin module, one of "
                                         f"{', '.join(m.removeprefix('asyncpf.') for m in PROTOCOL_MODULES)}")
    return full


def _operators(text: str) -> list[str]:
    from .mutation import OPERATORS
    names = [o.strip() for o in text.split(",") if o.strip()]
    if not names or any(o not in OPERATORS for o in names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated choice of {','.join(OPERATORS)}")
    return names


def _function(text: str) -> str:
    if not text.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a function name (a Python identifier)")
    return text


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true",
                   help="list the configurations, mutants and methods (with --json: as one JSON object) and stop")
    p.add_argument("--mutants", action="store_true", help="also run every mutant and print the kill table")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--full", action="store_true", help="explore the bigger configurations too")
    p.add_argument("--config", action="append", choices=list(CONFIGS), metavar="NAME",
                   help=f"explore only this configuration (repeatable): {', '.join(CONFIGS)}")
    p.add_argument("--max-seconds", type=seconds(0.1, 3600), default=None, metavar="S",
                   help="wall-clock budget of each exploration, 0.1..3600 s (default 60; with --mutation: of each "
                        "mutant, default 20); one that runs out reports what it explored")
    p.add_argument("--scheduler", type=scheduler_address, default="serial", metavar="ADDRESS",
                   help="where the configurations are explored, each one Dask task: serial (default: this process), "
                        "local (a LocalCluster of --jobs worker processes) or the address of a running Dask scheduler "
                        "such as tcp://10.0.0.5:8786 (asyncpf installed on its workers); the reports do not depend "
                        "on it but for their seconds and CPU split; --mutants still run here")
    p.add_argument("--jobs", type=integer(1, 256), default=None, metavar="N",
                   help="with --scheduler local: worker processes, 1..256 (default: this machine's CPUs)")
    p.add_argument("--subtrees", type=integer(1, 1024), default=1, metavar="N",
                   help="search each configuration with N parts, 1..1024, in rounds of up to 50 schedules each, "
                        "every part of a round one task, all learning every state met between rounds (default 1: a "
                        "configuration is one task); the same states and violated invariants, a cheapest counterexample, "
                        "more schedules (parts of one round may meet a state twice); --max-seconds holds against "
                        "each configuration's tasks, added")
    p.add_argument("--mutation", action="store_true",
                   help="mutation campaign over the protocol twins: mechanical mutants (flipped comparison, dropped "
                        "and/or operand, swapped or deleted statement, integer off by one) judged by the checker "
                        "alone; prints the score per module and per function and the survivors. Per mutant the "
                        "budget is --max-seconds (default here 20 s)")
    p.add_argument("--module", action="append", type=_module, metavar="M",
                   help="with --mutation: only this twin module (repeatable), e.g. host.legacy.async_pf")
    p.add_argument("--function", action="append", type=_function, metavar="F",
                   help="with --mutation: only functions of this name (repeatable)")
    p.add_argument("--operators", type=_operators, metavar="OP[,OP..]",
                   help="with --mutation: only these operators (cmp_flip,bool_drop,stmt_swap,stmt_del,const_off)")
    p.add_argument("--methods", type=_methods, metavar="M[,M..]",
                   help="with --mutants or --mutation: which methods try to catch each mutant (with --mutants the "
                        f"default is all three, {DEFAULT_METHODS}, ~10 s more than the explorer alone; with --mutation "
                        "the explorer alone, and each other method listed runs on every judged mutant and gets its own "
                        "score, apart from the checker's). explorer: exhaustive schedules of the mutant's "
                        "configuration, differential against the correct model; stateful: the Hypothesis state "
                        f"machine with the bug on (derandomized, {STATEFUL_SETTINGS['max_examples']} examples x "
                        f"{STATEFUL_SETTINGS['stateful_step_count']} steps, ~1 s per mutant); scenario: every "
                        "named scenario with the bug on and the checker attached (~0.3 s per mutant). "
                        "The explorer alone is what the 'ftrace lines'/'choices' columns need")


def _refuse_unused(args: argparse.Namespace) -> None:
    """Options that would be silently ignored in this combination are refused instead."""
    mutation_only = [o for o, v in (("--module", args.module), ("--function", args.function),
                                    ("--operators", args.operators)) if v]
    if args.jobs is not None and args.scheduler != "local":
        raise UsageError(f"--jobs {args.jobs}: only with --scheduler local; expected --scheduler local too")
    if args.subtrees != 1 and (args.list or args.mutation):
        raise UsageError(f"--subtrees {args.subtrees}: explorations of the correct model only; expected no --list "
                         "or --mutation with it")
    if args.scheduler != "serial" and (args.list or args.mutation):
        raise UsageError(f"--scheduler {args.scheduler}: explorations of the correct model only; expected no "
                         "--list or --mutation with it")
    if mutation_only and not args.mutation:
        raise UsageError(f"{', '.join(mutation_only)}: only with --mutation; expected --mutation too")
    if args.mutation and (args.list or args.mutants or args.full):
        raise UsageError("--mutation: not with --list, --mutants or --full; expected it alone (with --module, "
                         "--function, --operators, --config, --methods, --json, --max-seconds)")
    if args.mutation and args.methods and "explorer" not in args.methods:
        raise UsageError(f"--methods {','.join(args.methods)}: --mutation always runs the explorer; expected it "
                         "in the list")
    if args.mutation:
        return
    if args.list and (args.mutants or args.full or args.config or args.methods or args.max_seconds is not None):
        raise UsageError("--list: lists only; expected no --mutants, --full, --config, --methods or --max-seconds "
                         "with it")
    if args.methods and not args.mutants:
        raise UsageError(f"--methods {','.join(args.methods)}: only with --mutants; expected --mutants too")
    if args.full and args.config:
        raise UsageError(f"--full: not with --config {','.join(args.config)}, which names the configurations; "
                         "expected one or the other")
    if args.config and len(set(args.config)) != len(args.config):
        raise UsageError(f"--config {','.join(args.config)}: expected each configuration once")


def _list(as_json: bool) -> int:
    listing = {"configs": [{"name": c.name, "generation": c.generation, "fast": c.fast, "note": c.note}
                           for c in CONFIGS.values()],
               "mutants": [{"name": m.name, "invariant": m.invariant, "config": m.config.name, "summary": m.summary}
                           for m in MUTANTS.values()],
               "methods": list(METHODS)}
    if as_json:
        print(json.dumps(listing, indent=1, sort_keys=True))
        return 0
    print("configurations (--config NAME; * = explored without --full):")
    for c in listing["configs"]:
        print(f"  {'*' if c['fast'] else ' '} {c['name']:24} {c['generation']}")
    print("mutants (--mutants runs them all):")
    for m in listing["mutants"]:
        print(f"    {m['name']:28} caught by {m['invariant']} on {m['config']}")
    print(f"methods (--methods): {', '.join(METHODS)}")
    return 0


@command("check", "protocol checker: invariants on every schedule of small configurations; mutants", configure)
def main(args: argparse.Namespace) -> int:
    _refuse_unused(args)
    if args.list:
        return _list(args.json)
    if args.mutation:
        return _mutation(args)
    if args.max_seconds is None:
        args.max_seconds = 60.0
    methods = args.methods or DEFAULT_METHODS.split(",")
    if args.config:
        cfgs = [CONFIGS[name] for name in args.config]
    else:
        cfgs = list(CONFIGS.values()) if args.full else fast_configs()
    known = KNOWN_BY_CONFIG  # the generation's own behaviour (with its source): reported, not counted
    with _cluster(args.scheduler, args.jobs) as cluster, \
            bar(len(cfgs) + (len(MUTANTS) if args.mutants else 0), "check", "runs", quiet=args.json) as progress:
        reports = _explore_all(cluster, cfgs, args.max_seconds, args.subtrees, progress.update)
        verdicts = []
        for m in MUTANTS if args.mutants else ():
            verdicts.append(run_mutant(m, max_seconds=args.max_seconds, methods=methods))
            progress.update()
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
    out["mutants"] = [v.as_dict() for v in verdicts]
    out["correct"]["speed"] = _speed(reports)
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
        speed = out["correct"]["speed"]
        print(f"  total: {speed['distinct_states']} distinct states, {speed['schedules']} schedules in "
              f"{speed['seconds']:.2f} s: {speed['states_per_s']:.0f} states/s, "
              f"{speed['schedules_per_state']:.1f} schedules/state")
        per = {p: s / speed["schedules"] * 1e3 if speed["schedules"] else 0.0 for p, s in speed["cpu_s"].items()}
        print("  CPU per schedule: " + ", ".join(f"{p} {ms:.2f} ms" for p, ms in per.items())
              + " (asyncpf bench-explore: what a faster way back to a choice point could gain)")
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
            print(f"kill table (methods run: {', '.join(m for m in METHODS if m in methods)}; "
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


def _explore_all(cluster: Cluster, cfgs: list, max_seconds: float, subtrees: int, tick: Callable[[], None]) -> list:
    """Each configuration one task, or with ``subtrees`` > 1 each searched by that many parts in rounds
    (:class:`~asyncpf.check.explore.PartsSearch`), every configuration's parts of a round sent at once."""
    if subtrees == 1:
        return cluster.map(explore_config, [(c.name, max_seconds) for c in cfgs], "check", lambda _k: tick())
    searches = [PartsSearch(c, subtrees, max_seconds=max_seconds) for c in cfgs]
    going = list(searches)
    while going:
        rounds = [(search, search.calls()) for search in going]
        for search, calls in rounds:
            if not calls:
                tick()
        rounds = [(search, calls) for search, calls in rounds if calls]
        results = iter(cluster.map(explore_round, [c for _s, calls in rounds for c in calls], "check-round"))
        for search, calls in rounds:
            search.take([next(results) for _ in calls])
        going = [search for search, _calls in rounds]
    return [search.report() for search in searches]


def explore_config(name: str, max_seconds: float) -> Report:
    """One configuration of the correct model, every schedule (a Dask task: its report comes back whole)."""
    return explore(CONFIGS[name], stop_at_first=False, max_seconds=max_seconds)


@contextmanager
def _cluster(scheduler: str, jobs: int | None) -> Iterator[Cluster]:
    """The cluster the explorations go to, connected before any work starts (no answer: refused at the door)."""
    cluster = Cluster(scheduler, jobs)
    try:
        cluster.__enter__()
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--scheduler {scheduler}: no Dask scheduler answered there ({exc}); expected the address "
                         "of a running one, such as tcp://10.0.0.5:8786") from None
    try:
        yield cluster
    finally:
        cluster.__exit__(None, None, None)


def _mutation(args: argparse.Namespace) -> int:
    from . import mutation
    specs = mutation.enumerate_mutants(args.module, functions=args.function,
                                       operators=args.operators or mutation.OPERATORS)
    if not specs:
        raise UsageError("--mutation: no mutant matches --module/--function/--operators; expected a function of "
                         "the chosen modules")
    budget = args.max_seconds if args.max_seconds is not None else 20.0
    others = [m for m in (args.methods or []) if m != "explorer"]
    with bar(len(specs), "mutants", "mutants", quiet=args.json) as progress:
        c = mutation.campaign(args.module, functions=args.function, operators=args.operators or mutation.OPERATORS,
                              configs=args.config, max_seconds=budget, methods=others,
                              progress=lambda _r: progress.update())
    if args.json:
        json.dump(c.as_dict(), sys.stdout, indent=1)
        print()
    else:
        print(mutation.render(c))
    return 0


def _speed(reports: list) -> dict:
    """The explorer's speed over every configuration explored (wall time), and its CPU time by phase (both: compare
    within one run)."""
    total = Report.combined(reports)
    return {"distinct_states": total.states, "schedules": total.schedules, "seconds": round(total.seconds, 3),
            "states_per_s": round(total.states_per_s, 1), "schedules_per_state": round(total.schedules_per_state, 2),
            "cpu_s": {p: round(s, 4) for p, s in total.cpu.items()}}


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
