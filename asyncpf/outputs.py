"""Output files that appear whole or not at all.

Commands write their files only after the run has finished, each through a
temporary file in the same folder renamed into place, so an interrupted or
failed run never leaves a partial file that looks complete.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from .cli import UsageError


@contextmanager
def replacing(path: Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on success rename it to ``path``, on any error remove it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets what open() would give it
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    with replacing(path) as fh:
        fh.write(text)


def distinct(**paths: Path | None) -> None:
    """Refuse two options naming the same output file."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise UsageError(f"--{option} {str(path)!r}: the same file as --{seen[key]}; expected another file")
        seen[key] = option
