"""Access to the shipped data files: the top-level ``data/`` folder, installed as the package ``asyncpf.data``.

Read through :mod:`importlib.resources`, so the same call works in a checkout
(editable install) and from a wheel, wherever it is installed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

PACKAGE = "asyncpf.data"


def data_path(name: str) -> Traversable:
    """The resource ``data/<name>``; FileNotFoundError if there is no such file."""
    # a name must stay inside data/ (no absolute paths, no "..")
    if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
        raise ValueError(f"data file name {name!r} must be relative to data/ without '..'")
    path = files(PACKAGE).joinpath(name)
    if not path.is_file():
        raise FileNotFoundError(f"data file {name!r} not found in the package {PACKAGE} (the data/ folder)")
    return path


@lru_cache(maxsize=None)
def _text(name: str) -> str:
    """A data file's text, read once per process: the explorer builds a machine per schedule, four files each."""
    return data_path(name).read_text(encoding="utf-8")


def load_json(name: str) -> dict:
    """The parsed JSON object in ``data/<name>``."""
    value = json.loads(_text(name))
    if not isinstance(value, dict):
        raise ValueError(f"data file {name!r} holds a {type(value).__name__}; expected a JSON object")
    return value
