"""Access to the shipped data files in the top-level ``data/`` folder."""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def data_path(name: str) -> Path:
    """The path of ``data/<name>``; FileNotFoundError if there is no such file."""
    path = DATA_DIR / name
    # a name must stay inside data/ (no absolute paths, no "..")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"data file name {name!r} must be relative to {DATA_DIR} without '..'")
    if not path.is_file():
        raise FileNotFoundError(f"data file {name!r} not found: expected {path}")
    return path


def load_json(name: str) -> dict:
    """The parsed JSON object in ``data/<name>``."""
    with data_path(name).open(encoding="utf-8") as f:
        value = json.load(f)
    if not isinstance(value, dict):
        raise ValueError(f"data file {name!r} holds a {type(value).__name__}; expected a JSON object")
    return value
