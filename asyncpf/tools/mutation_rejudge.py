"""Judge one module's mutation campaign again, keeping the stored kills nothing has invalidated.

After new configurations or rules, only the survivors need exploring again::

    python -m asyncpf.tools.mutation_rejudge asyncpf.host.x86 old/asyncpf.host.x86.json --max-seconds 20 \\
        [--rerun-killed-by RULE ...] [--rerun-functions NAME ...] > asyncpf.host.x86.json

Name the rules weakened since the stored run (their kills are judged again) and the functions whose code changed
(judged again whole); the output is ``check --mutation --json``'s, for ``asyncpf.tools.mutation_campaign``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ..check.invariants import REGISTRY
    from ..check.mutation import PROTOCOL_MODULES, rejudge

    p = argparse.ArgumentParser(prog="python -m asyncpf.tools.mutation_rejudge", description=__doc__.split("\n")[0])
    p.add_argument("module", help="a protocol twin module, e.g. asyncpf.host.x86")
    p.add_argument("stored", help="that module's earlier check --mutation --json output")
    p.add_argument("--max-seconds", type=float, default=8.0, help="budget of each mutant judged again (0.1..3600)")
    p.add_argument("--rerun-killed-by", nargs="*", default=[], metavar="RULE")
    p.add_argument("--rerun-functions", nargs="*", default=[], metavar="NAME")
    args = p.parse_args(argv)
    if args.module not in PROTOCOL_MODULES:
        p.error(f"module {args.module!r}: expected one of {', '.join(sorted(PROTOCOL_MODULES))}")
    if not 0.1 <= args.max_seconds <= 3600:
        p.error(f"--max-seconds {args.max_seconds!r}: expected 0.1..3600")
    unknown = sorted(set(args.rerun_killed_by) - set(REGISTRY))
    if unknown:
        p.error(f"--rerun-killed-by {','.join(unknown)}: expected invariants of the registry")
    try:
        stored = json.loads(Path(args.stored).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        p.error(f"{args.stored}: expected a check --mutation --json file ({exc.__class__.__name__})")
    if not isinstance(stored, dict) or not isinstance(stored.get("killed"), list):
        p.error(f"{args.stored}: expected a check --mutation --json file (no 'killed' list)")
    c = rejudge(args.module, stored, max_seconds=args.max_seconds, rerun_killed_by=args.rerun_killed_by,
                rerun_functions=args.rerun_functions,
                progress=lambda r: print(f"{r.status:9} {r.spec.id} {r.how}", file=sys.stderr, flush=True))
    print(json.dumps(c.as_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
