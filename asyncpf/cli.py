"""Command registry shared by the command-line modules.

Each module that offers a command calls :func:`command` at import time;
``asyncpf/__main__.py`` imports those modules and dispatches.
"""

from __future__ import annotations

import argparse
from typing import Callable

Runner = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Runner]] = {}


class UsageError(Exception):
    """Bad command-line input: printed as ``asyncpf: error: ...`` with exit status 2."""


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(run: Runner) -> Runner:
        COMMANDS[name] = (help, configure, run)
        return run

    return register


def positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or a positive integer")
    return value
