"""Progress bars (tqdm) on stderr, shown only to a person: silent when stderr is not a terminal or with --json."""

from __future__ import annotations

import sys

from tqdm import tqdm


def bar(total: float, desc: str, unit: str, *, quiet: bool = False) -> tqdm:
    """A bar over ``total`` units; a no-op object when nobody is watching."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty(), bar_format="{l_bar}{bar}| {n:g}/{total:g} {unit} "
                                                                    "[{elapsed}<{remaining}]")
