"""``python -m asyncpf COMMAND``: the command line."""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli import COMMANDS, UsageError

# Modules that register commands (see asyncpf/cli.py).
COMMAND_MODULES = ("asyncpf.engine_bench", "asyncpf.bm_cli", "asyncpf.demo", "asyncpf.scenarios", "asyncpf.check.cli")


def build_parser() -> argparse.ArgumentParser:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    parser = argparse.ArgumentParser(
        prog="python -m asyncpf",
        description="asyncpf: an executable specification of KVM asynchronous page faults. "
                    "Start with `bm` (the seed's benchmark); `COMMAND -h` explains each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in sorted(COMMANDS):
        help_text, configure, run = COMMANDS[name]
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        parser.error(str(exc))
        return 2  # not reached: parser.error exits


if __name__ == "__main__":
    sys.exit(main())
