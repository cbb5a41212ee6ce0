"""The ``scenario`` command: list the scenarios, or run one and print its checks, leaks and trace."""

from __future__ import annotations

import argparse
import json

from .. import __version__, abi, perfetto
from ..argtypes import integer, output_file
from ..cli import UsageError, command
from ..outputs import distinct, write_text
from ..trace import event_lines
from .stage import APF_EVENTS, SCENARIOS, ScenarioResult, get


def _name(text: str) -> str:
    try:
        return get(text).name
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", type=_name, metavar="NAME", help="scenario to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios with a one-line summary (with --json: "
                                                       "name, generation and summary of each)")
    p.add_argument("--generation", choices=list(abi.MODELLED),
                   help="only the scenarios of this protocol generation (with --list), or check that NAME is one: "
                        "legacy (2.6.38), interrupt (page-ready by interrupt, as Linux 6.18)")
    p.add_argument("--trace", metavar="FILE", type=output_file(), help="write the whole ftrace text of the run to FILE")
    p.add_argument("--perfetto", metavar="FILE", type=output_file((".json",)),
                   help="write the run as a Chrome trace-event JSON timeline (ui.perfetto.dev, chrome://tracing)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=integer(0, 2**63 - 1), default=None, metavar="N", help="random seed (default 0)")
    p.add_argument("--trace-lines", type=integer(0, 100_000), default=None, metavar="N",
                   help="async-PF trace lines to show, 0..100000 (default 30)")


def excerpt(result: ScenarioResult, lines: int = 30) -> str:
    tracer = result.tracer
    if tracer is None:
        return ""
    events = [e for e in tracer.events if e.name in APF_EVENTS]
    return "\n".join(event_lines(events[:lines], tracer.generation))


@command("scenario", "run a named async-PF scenario and check its expected outcome (--list to see them)", configure)
def main(args: argparse.Namespace) -> int:
    if args.list:
        extra = [(o, v) for o, v in (("NAME", args.name), ("--trace", args.trace), ("--perfetto", args.perfetto),
                                     ("--seed", args.seed), ("--trace-lines", args.trace_lines)) if v is not None]
        if extra:
            raise UsageError(f"{extra[0][0]} {str(extra[0][1])!r}: not with --list, which only lists; "
                             "expected one or the other")
        return _list(args.json, args.generation)
    if not args.name:
        raise UsageError(f"NAME: expected a scenario name or --list; known: {', '.join(SCENARIOS)}")
    if args.generation and get(args.name).generation != args.generation:
        raise UsageError(f"NAME {args.name!r}: a scenario of the {get(args.name).generation} generation, not "
                         f"{args.generation}; expected one of {', '.join(_names(args.generation)) or 'none'}")
    distinct(trace=args.trace, perfetto=args.perfetto)
    args.seed = 0 if args.seed is None else args.seed
    args.trace_lines = 30 if args.trace_lines is None else args.trace_lines
    sc = get(args.name)
    if sc.arch != "x86":
        for option, path in (("--trace", args.trace), ("--perfetto", args.perfetto)):
            if path:
                raise UsageError(f"{option} {str(path)!r}: scenario {sc.name} runs a {sc.arch} vcpu, which "
                                 "emits no ftrace events; expected an x86 scenario")
    result = sc.run(seed=args.seed, trace=True, record=bool(args.perfetto))
    if args.trace:
        write_text(args.trace, result.tracer.text())
    if args.perfetto:
        events = perfetto.host_events(1, f"scenario {sc.name} ({sc.generation})", result.recorder,
                                      result.tracer.events, sc.generation)
        write_text(args.perfetto, perfetto.document(events, {"asyncpf": __version__, "command": "scenario",
                                                             "scenario": sc.name, "seed": args.seed}))
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return 0 if result.ok else 1
    print(f"scenario {sc.name} ({sc.generation} generation, seed {args.seed})")
    print(f"  {sc.summary}\n")
    for c in result.checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}" + (f"  [{c.detail}]" if c.detail else ""))
    if result.tracer is None:
        print(f"\n({sc.arch} vcpu without an x86 Machine: no VM destroy, no ftrace events; counts: "
              f"{json.dumps(result.counts, sort_keys=True)})")
    else:
        print("\nleak check after VM destroy:", "clean" if not result.leaks else
              "only the expected" if not result.unexpected_leaks else "LEAKS")
        for line in result.leaks:
            print(f"  {'expected' if line in result.expected_leaks else 'LEAK'}: {line}")
        for line in result.known_leaks:
            print(f"  the generation's own leak, reproduced: {line}")
        events = [e for e in result.tracer.events if e.name in APF_EVENTS]
        print(f"\nasync-PF trace events (first {min(args.trace_lines, len(events))} of {len(events)}):")
        print(excerpt(result, args.trace_lines))
    for option, path in (("whole trace", args.trace), ("timeline", args.perfetto)):
        if path:
            print(f"\n{option} written to {path}")
    print(f"\n{sc.name}: {'OK' if result.ok else 'FAILED'}")
    return 0 if result.ok else 1


def _names(generation: str | None) -> list[str]:
    return [sc.name for sc in SCENARIOS.values() if generation in (None, sc.generation)]


def _list(as_json: bool, generation: str | None = None) -> int:
    shown = [SCENARIOS[name] for name in _names(generation)]
    if as_json:
        print(json.dumps([{"name": sc.name, "generation": sc.generation, "summary": sc.summary}
                          for sc in shown], indent=2))
        return 0
    width = max(map(len, SCENARIOS))
    for sc in shown:
        print(f"{sc.name:<{width}}  {_one_line(sc.summary)}")
    return 0


def _one_line(summary: str, width: int = 110) -> str:
    return summary if len(summary) <= width else summary[: width - 3] + "..."
