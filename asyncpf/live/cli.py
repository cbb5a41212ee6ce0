"""``asyncpf live``: run the live programs on this host's /dev/kvm and on the model, and compare.

Prints, per program, what the real kernel did and what the model did, and a
verdict: ``agree``, ``disagree`` (a deterministic fact differs), ``pending``
(the model lacks the generation the program needs) or ``failed`` (the run
could not be carried out).  Every result names the kernel, the KVM backend
module and the CPU it was measured on.  ``--stored`` judges the captures
stored in data/live instead (anywhere, no /dev/kvm needed).  Exit status 0
when nothing disagreed or failed, 1 otherwise, 2 for bad input or a host
that cannot run the programs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..argtypes import Bad
from ..cli import UsageError, command
from ..outputs import write_text
from . import hostinfo, msrtable, programs, runner
from .observe import NOT_COMPARED


def _program(text: str) -> str:
    try:
        return programs.get(text).name
    except KeyError as exc:
        raise Bad(exc.args[0]) from None


def _folder(text: str) -> Path:
    path = Path(text)
    if not text.strip() or not path.is_dir():
        raise Bad(f"{text!r}: expected an existing folder")
    import os
    if not os.access(path, os.W_OK | os.X_OK):
        raise Bad(f"{text!r}: the folder is not writable")
    return path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true", help="list the programs (with --json: as JSON)")
    p.add_argument("--program", action="append", type=_program, metavar="P",
                   help=f"run only this program (repeatable): {', '.join(programs.PROGRAMS)}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--keep-trace", type=_folder, metavar="DIR",
                   help="write each program's real trace (P.real.trace) and model trace (P.model.trace) into DIR")
    p.add_argument("--stored", action="store_true",
                   help="judge the captures stored in data/live (recorded on this project's machines) instead of "
                        "running /dev/kvm")


@command("live", "run scripted guest programs on this host's /dev/kvm and on the model, and compare them", configure)
def main(args: argparse.Namespace) -> int:
    if args.program and len(set(args.program)) != len(args.program):
        raise UsageError(f"--program {','.join(args.program)}: expected each program once")
    chosen = [programs.get(n) for n in (args.program or programs.PROGRAMS)]
    if args.list:
        if args.program or args.keep_trace or args.stored:
            raise UsageError("--list: not with --program, --keep-trace or --stored; it only lists")
        return _list(args.json)
    if not args.stored:
        why = hostinfo.cannot_run()
        if why:
            raise UsageError(f"cannot run live programs on this host: {why}; --stored judges the captures "
                             "stored in data/live")
    results = []
    for program in chosen:
        results.append(_one(program, args.stored))
        if args.keep_trace:
            for side, text in results[-1].get("_traces", {}).items():
                write_text(args.keep_trace / f"{program.name}.{side}.trace", text)
    host = hostinfo.describe()
    bad = [r["program"] for r in results if r["verdict"]["verdict"] in ("disagree", "failed")]
    if args.json:
        for r in results:
            r.pop("_traces", None)
        print(json.dumps({"host": host, "source": "stored captures" if args.stored else "this host",
                          "results": results, "not_compared": list(NOT_COMPARED)}, indent=2, sort_keys=True))
    else:
        print(render(results, host, args.stored))
        if args.keep_trace:
            print(f"\ntraces written to {args.keep_trace}")
    return 1 if bad else 0


def _one(program: programs.Program, stored: bool) -> dict[str, Any]:
    try:
        cap = runner.stored(program) if stored else runner.capture(program)
        if cap is None:
            return _failed(program, "no stored capture in data/live")
        return runner.judge(program, cap)
    except (OSError, RuntimeError, ValueError) as exc:  # a run that could not be carried out: not a verdict on KVM
        return _failed(program, f"{type(exc).__name__}: {exc}")


def _failed(program: programs.Program, reason: str) -> dict[str, Any]:
    gen, why = programs.model_generation(program)
    return {"program": program.name, "summary": program.summary, "model_generation": gen, "model_why": why,
            "verdict": {"verdict": "failed", "mismatches": [], "expected_differences": [], "reason": reason,
                        "relaxed": []}}


def _list(as_json: bool) -> int:
    rows = []
    for p in programs.PROGRAMS.values():
        gen, why = programs.model_generation(p)
        rows.append({"name": p.name, "summary": p.summary, "model_generation": gen, "model_why": why,
                     "vcpu_id": p.vm.vcpu_id, "stored_capture": runner.stored(p) is not None})
    if as_json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    for r in rows:
        print(f"{r['name']:<16} model: {r['model_generation'] or 'pending'}; {r['summary']}")
    return 0


def summary(obs: dict | None) -> str:
    """One line of what a side did."""
    if not obs:
        return "-"
    c = obs["counts"]
    parts = [f"{c['not_present']} not-present", f"{c['ready']} ready", f"{c['repeated_fault']} repeated",
             f"{c['pf_injected']} #PF", f"{c['irq_accepted']} irq", f"{c['ack_writes']} ACK"]
    if obs["first_counter"] is not None:
        parts.append(f"tokens from {obs['first_counter']}<<12")
    return ", ".join(parts)


def render(results: list[dict], host: dict, stored: bool) -> str:
    where = "stored captures (data/live)" if stored else "this host"
    lines = [f"asyncpf live: real KVM vs the model, from {where}",
             f"this host: Linux {host['uname_r']}, {host['backend']}, {host['cpu']}", ""]
    for r in results:
        v = r["verdict"]
        prov = r.get("provenance")
        lines.append(f"{r['program']}: {v['verdict'].upper()}" + (f" -- {v['reason']}" if v["reason"] else ""))
        if prov:
            lines.append(f"  measured on: Linux {prov['uname_r']}, {prov['backend']}, {prov['cpu']}, {prov['date']}")
        if "table" in r.get("real", {}):
            real_t = r["real"]["table"]
            lines.append(f"  real: {_table_summary(real_t)}")
            if "model" in r:
                lines.append(f"  model ({r['model_generation']}): {_table_summary(r['model']['table'])}")
                fixed = set(msrtable.judge(real_t, r["model"]["table"], vmm_writes=False).fixed)
                lines.append("  " + msrtable.render(real_t, r["model"]["table"], fixed).replace("\n", "\n  "))
        elif "real" in r:
            lines.append(f"  real: {summary(r['real']['observation'])}")
        if "model" in r and "observation" in r["model"]:
            lines.append(f"  model ({r['model_generation']}): {summary(r['model']['observation'])}")
        elif "model" not in r:
            lines.append(f"  model: {r['model_why']}")
        lines += [f"  mismatch: {m}" for m in v["mismatches"]]
        lines += [f"  expected difference: {e}" for e in v["expected_differences"]]
        lines += [f"  not compared in this run: {e}" for e in v.get("relaxed", [])]
    lines += ["", "not compared (not deterministic, or not modelled):"] + [f"  - {n}" for n in NOT_COMPARED]
    return "\n".join(lines)


def _table_summary(table: dict) -> str:
    cells = [c for rows in table.values() for c in rows.values()]
    accepted = sum(1 for c in cells if c["accepted"])
    return f"{len(cells)} writes in {len(table)} VM configurations, {accepted} accepted, {len(cells) - accepted} refused"
