"""``asyncpf COMMAND`` (or ``python -m asyncpf COMMAND``): the command line.

Exit status: 0 done, 1 the run found a problem (a leak, a failed check),
2 bad input (one line on stderr, nothing run), 130 interrupted (Ctrl-C;
files are written only at the end, so none is left half-written), 141 the
reader of stdout went away (``| head``): quietly, as a C tool killed by SIGPIPE.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import __version__
from .cli import COMMANDS, Parser, UsageError, one_line

# Modules that register commands (see asyncpf/cli.py).
COMMAND_MODULES = ("asyncpf.engine_bench", "asyncpf.bm_cli", "asyncpf.demo", "asyncpf.scenarios", "asyncpf.check.cli",
                   "asyncpf.check.bench", "asyncpf.live.cli", "asyncpf.conform")


def build_parser() -> Parser:
    for mod in COMMAND_MODULES:
        importlib.import_module(mod)
    parser = Parser(
        prog="asyncpf",
        description="asyncpf: an executable specification of KVM asynchronous page faults. "
                    "Start with `bm` (the seed's benchmark); `COMMAND -h` explains each command.")
    parser.add_argument("--version", action="version", version=f"asyncpf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, title="commands")
    for name in sorted(COMMANDS):
        help_text, configure, run = COMMANDS[name]
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(run=run, prog=p.prog)
    return parser


def main(argv: list[str] | None = None) -> int:
    prog = "asyncpf"
    try:
        args, stray = build_parser().parse_known_args(argv)
        prog = args.prog
        if stray:  # reported here, so the message names the subcommand whose options these are not
            raise UsageError(f"unrecognized arguments: {' '.join(stray)} (see {prog} -h)")
        return args.run(args)
    except UsageError as exc:  # refused like argparse refuses: same line, same SystemExit(2)
        print(one_line(f"{prog}: error: {exc}"), file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial output file was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point stdout at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
