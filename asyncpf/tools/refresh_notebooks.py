"""Re-execute the notebooks and normalise them so strict nbval compares against fresh outputs.

``python -m asyncpf.tools.refresh_notebooks notebooks`` (what ``make notebooks`` runs):

* executes every ``*.ipynb`` of the folder, in name order, with nbclient
  (kernel ``python3``, cwd = the notebook's folder, cells tagged
  ``skip-execution`` skipped), keeping the widget state in the notebook's
  metadata so the widgets show when the file is opened without a kernel;
* merges consecutive stream outputs (their split into messages is timing);
* numbers the widget models 1, 2, ... in order of creation, in the state and
  in the outputs that show them (the kernel picks random ids; nbval never
  compares widget views);
* strips metadata noise with nbstripout's ``--keep-output --keep-count``
  semantics: outputs and execution counts stay (strict nbval needs them),
  execution timings and random cell ids go;
* writes the file only if it changed.  Running it twice gives byte-identical files.

``--check`` executes into memory and exits 1, listing the files, if any stored
notebook differs from a fresh run (for CI).  Progress lines carry wall time;
notebook outputs never do.  A development tool: nbclient, nbformat and
nbstripout (the dev extra) are imported when it runs, not when the package is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

# nbstripout's own default extra keys (nbstripout/_nbstripout.py:main), less metadata.widgets: the state is kept
EXTRA_KEYS = [
    "metadata.signature",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
]


def coalesce_streams(nb: Any) -> None:
    """Merge consecutive stdout (stderr) outputs of a cell: how a print is split into messages is timing."""
    for cell in nb.cells:
        merged: list = []
        for out in cell.get("outputs", []):
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def number_widgets(nb: Any) -> Any:
    """``nb`` with each widget model id replaced by its creation number (state, references and views)."""
    import nbformat

    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    text = nbformat.writes(nb)
    for n, model_id in enumerate(state, 1):  # ids are uuid4 hex: no id is part of another, or of other text
        text = text.replace(model_id, f"{n:032x}")
    return nbformat.reads(text, as_version=4)


def normalise(nb: Any) -> str:
    """The notebook as stored: streams coalesced, nbstripout --keep-output --keep-count, widgets numbered."""
    import nbformat
    from nbstripout import strip_output

    coalesce_streams(nb)
    nb = strip_output(nb, keep_output=True, keep_count=True, keep_id=False, extra_keys=list(EXTRA_KEYS))
    return nbformat.writes(number_widgets(nb)) + "\n"  # keys sorted: the numbers keep creation order


def execute(path: Path, timeout: int = 120) -> str:
    """Run ``path`` top to bottom in a fresh ``python3`` kernel; the normalised text."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, skip_cells_with_tag="skip-execution",
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    return normalise(nb)


def notebooks(paths: list[str]) -> list[Path]:
    """The notebooks named, folders expanded to their ``*.ipynb`` in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.glob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.suffix == ".ipynb" and p.is_file():
            out.append(p)
        else:
            raise SystemExit(f"refresh_notebooks: {p} is neither a folder nor a notebook")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m asyncpf.tools.refresh_notebooks", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=["notebooks"], help="notebooks or folders (default: notebooks)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if a stored notebook is stale")
    ap.add_argument("--timeout", type=int, default=120, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    stale = []
    for path in notebooks(args.paths):
        t0 = time.perf_counter()
        try:
            fresh = execute(path, args.timeout)
        except CellExecutionError as exc:
            print(f"{path}: FAILED ({time.perf_counter() - t0:.1f} s)\n{exc}", file=sys.stderr)
            return 1
        stored = path.read_text(encoding="utf-8")
        changed = fresh != stored
        if changed:
            stale.append(path)
            if not args.check:
                path.write_text(fresh, encoding="utf-8")
        status = ("stale" if args.check else "updated") if changed else "unchanged"
        print(f"{path}: {status} ({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.check and stale:
        print("stale notebooks (run `make notebooks`):", *map(str, stale), sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
