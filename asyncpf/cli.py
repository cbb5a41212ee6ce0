"""Command registry and argument parser shared by the command-line modules.

Each module that offers a command calls :func:`command` at import time;
``asyncpf/__main__.py`` imports those modules and dispatches.  Every refusal
is one line on stderr, ``asyncpf CMD: error: <option> <value>: expected ...``,
with exit status 2 and nothing else done.
"""

from __future__ import annotations

import argparse
import re
from typing import Callable, NoReturn

Runner = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Runner]] = {}


class UsageError(Exception):
    """Bad command-line input found after parsing (a relation between options): exit status 2."""


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(run: Runner) -> Runner:
        COMMANDS[name] = (help, configure, run)
        return run

    return register


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and values that start with '-' taken as values.

    argparse reads ``--guest-mem -2G`` as a missing value followed by an
    unknown option; every option here takes a number, size or name, so a
    token that starts with '-' and a digit, '.', 'inf' or 'nan' is a value
    (refused by the option's own check, which names it).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        # Python 3.11 argparse drops the value of '--opt=--' and stores [] unconverted (appended, for
        # repeatable options); no option here has an empty list as a value, so refuse it by name
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            if action.option_strings and isinstance(value, list) and (not value or [] in value):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one value, got '--'")
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(2, one_line(f"{self.prog}: error: {message}") + "\n")


def one_line(text: str) -> str:
    return " ".join(text.split())
