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


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def size_bytes(text: str) -> int:
    """'512M', '2G', '4096' (bytes; K/M/G/T are powers of 1024)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1] if t and t[-1] in _SIZE_UNITS else ""
    number = t[: len(t) - len(unit)]
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; expected e.g. 4096, 512M, 2G") from None
    if value <= 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number of bytes")
    return int(value)


def duration_ns(text: str, default_unit: str = "s") -> int:
    """'60', '1.5s', '8ms', '50us', '700ns' -> nanoseconds (a bare number is in ``default_unit``)."""
    t = text.strip().lower()
    unit = next((u for u in ("ns", "us", "ms", "s") if t.endswith(u)), "")
    number = t[: len(t) - len(unit)] if unit else t
    try:
        value = float(number) * _TIME_UNITS[unit or default_unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; expected e.g. 60, 1.5s, 8ms, 50us") from None
    if value <= 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return int(round(value))
