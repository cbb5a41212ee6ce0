"""Command-line value types: each turns one option's text into a value or refuses it.

A refusal is an :class:`argparse.ArgumentTypeError` whose message holds the
value and what was expected; argparse prefixes the option's name.  Every type
has a range, so no value can make a run overflow or never end by itself
(relations between options are checked by the commands).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Callable

Bad = argparse.ArgumentTypeError

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_SIZE = re.compile(rf"{_NUMBER}\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
_TIME = re.compile(rf"{_NUMBER}\s*(ns|us|ms|s)?", re.IGNORECASE)
_INT = re.compile(r"\+?\d{1,30}")


def fmt_size(n: int) -> str:
    """Bytes as the largest exact unit: 2G, 1536M, 4096."""
    for unit in ("T", "G", "M", "K"):
        if n and n % SIZE_UNITS[unit] == 0:
            return f"{n // SIZE_UNITS[unit]}{unit}"
    return str(n)


def fmt_time(ns: int) -> str:
    """Nanoseconds in the largest unit that keeps it readable: 60s, 8ms, 1.5us."""
    for unit in ("s", "ms", "us"):
        if ns >= TIME_UNITS[unit]:
            return f"{ns / TIME_UNITS[unit]:g}{unit}"
    return f"{ns}ns"


def integer(lo: int, hi: int) -> Callable[[str], int]:
    """A decimal integer in lo..hi."""

    def parse(text: str) -> int:
        if not _INT.fullmatch(text.strip()):
            raise Bad(f"{text!r}: expected an integer {lo}..{hi}")
        value = int(text)
        if not lo <= value <= hi:
            raise Bad(f"{text!r}: expected an integer {lo}..{hi}")
        return value

    return parse


def size(lo: int, hi: int, multiple: int = 1) -> Callable[[str], int]:
    """A size in bytes such as 4096, 512M or 2G (K/M/G/T are powers of 1024), in lo..hi."""
    expected = f"a size {fmt_size(lo)}..{fmt_size(hi)} such as 512M or 2G"
    if multiple > 1:
        expected += f", a multiple of {multiple} bytes"

    def parse(text: str) -> int:
        m = _SIZE.fullmatch(text.strip())
        if m is None:
            raise Bad(f"{text!r}: expected {expected}")
        value = Fraction(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
        if value.denominator != 1 or not lo <= value <= hi or value % multiple:
            raise Bad(f"{text!r}: expected {expected}")
        return int(value)

    return parse


def duration(lo: int, hi: int, default_unit: str = "s") -> Callable[[str], int]:
    """A time such as 60, 1.5s, 8ms or 50us (a bare number is in ``default_unit``), in lo..hi ns."""
    expected = f"a time {fmt_time(lo)}..{fmt_time(hi)} such as 10s, 8ms or 50us (a bare number is in {default_unit})"

    def parse(text: str) -> int:
        m = _TIME.fullmatch(text.strip())
        if m is None:
            raise Bad(f"{text!r}: expected {expected}")
        value = round(Fraction(m.group(1)) * TIME_UNITS[(m.group(2) or default_unit).lower()])
        if not lo <= value <= hi:
            raise Bad(f"{text!r}: expected {expected}")
        return value

    return parse


def seconds(lo: float, hi: float) -> Callable[[str], float]:
    """A number of seconds in lo..hi (a wall-clock budget)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not lo <= value <= hi:  # also refuses nan
            raise Bad(f"{text!r}: expected a number of seconds {lo:g}..{hi:g}")
        return value

    return parse


def output_file(suffixes: tuple[str, ...] = ()) -> Callable[[str], Path]:
    """A file this run may create: its folder exists and is writable, it is not a folder itself."""
    def parse(text: str) -> Path:
        path = Path(text)
        what = f"a file name ending in {' or '.join(suffixes)}" if suffixes else "a file name"
        if not text.strip() or (suffixes and path.suffix.lower() not in suffixes):
            raise Bad(f"{text!r}: expected {what}")
        folder = path.parent
        if path.is_dir():
            raise Bad(f"{text!r} is a folder: expected {what}")
        if path.exists() and not path.is_file():   # a device or FIFO: the write would replace it with a file
            raise Bad(f"{text!r} is not a regular file: expected {what}")
        if not folder.is_dir():
            raise Bad(f"{text!r}: the folder {str(folder)!r} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise Bad(f"{text!r}: not writable here")
        return path

    return parse


def input_file(text: str) -> str:
    """A file to read (``-`` is standard input): an existing regular file that can be opened."""
    if text == "-":
        return text
    path = Path(text)
    if not text.strip() or not path.exists():
        raise Bad(f"{text!r}: expected an existing file")
    if path.is_dir():
        raise Bad(f"{text!r} is a folder: expected a file")
    if not path.is_file():   # a device or FIFO may never end (/dev/zero)
        raise Bad(f"{text!r} is not a regular file: expected a file")
    if not os.access(path, os.R_OK):
        raise Bad(f"{text!r}: not readable here")
    return text


_ADDRESS = re.compile(r"(?:tcp://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")   # tls/ucx/ws would need settings we lack


def scheduler_address(text: str) -> str:
    """Where a sweep's tasks run: ``local``, ``serial`` or a Dask scheduler's address (``tcp://HOST:PORT``)."""
    text = text.strip()
    if text in ("local", "serial") or re.fullmatch(r"inproc://[^/\s]+/\d+/\d+", text):  # inproc: in this process
        return text
    if not _ADDRESS.fullmatch(text) or not 0 < int(text.rsplit(":", 1)[1]) < 65536:
        raise Bad(f"{text!r}: expected local, serial or a Dask scheduler address such as tcp://10.0.0.5:8786")
    return text
