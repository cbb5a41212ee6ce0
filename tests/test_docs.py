"""The README and notebook 00 say only what is true about the notebooks and the bm command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from asyncpf import explain
from asyncpf.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def readme_reading_order() -> dict[str, str]:
    """The README's 'notebooks, in reading order' table: notebook -> idea (backticks dropped)."""
    section = README.split("## The notebooks, in reading order", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \|$", section, re.MULTILINE)
    return {name: idea.replace("`", "") for name, idea in rows}


def test_the_notebook_map_of_00_and_the_readme_table_list_the_notebooks_that_exist():
    names = [p.stem for p in NOTEBOOKS]
    assert list(explain.NOTEBOOKS) == names
    assert list(readme_reading_order()) == names
    assert {nb: idea for nb, (idea, _files) in explain.NOTEBOOKS.items()} == readme_reading_order()


def test_notebook_00_shows_the_current_map():
    nb = nbformat.read(ROOT / "notebooks" / "00_overview.ipynb", as_version=4)
    shown = [o.text for c in nb.cells if c.cell_type == "code" and "notebook_map()" in c.source for o in c.outputs]
    assert shown == [explain.notebook_map() + "\n"]


@pytest.mark.parametrize("path", [ROOT / "README.md", *NOTEBOOKS], ids=lambda p: p.name)
def test_nothing_is_announced_as_coming(path):
    text = path.read_text()
    assert "(coming)" not in text and "being written" not in text


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_every_notebook_after_00_ends_with_a_widget(path):
    """The README and notebook 00 say so: a widget among the last two code cells (the last may assert on it)."""
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert any(re.search(r"widgets\.\w+_view\(", src) for src in code[-2:])


def test_the_readme_picture_and_the_bm_options_it_lists_exist():
    assert "](docs/bm.png)" in README and (ROOT / "docs" / "bm.png").read_bytes().startswith(b"\x89PNG")
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = README.split("Options (`asyncpf bm -h`", 1)[1].split("`.", 1)[0]
    for action in sub["bm"]._actions:
        for flag in action.option_strings:
            assert flag in options or flag in ("-h", "--help"), flag


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_widget_views_have_their_state(path):
    """A widget shown in a stored output can be drawn without a kernel: its model, and every model it names, is saved."""
    nb = nbformat.read(path, as_version=4)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    views = [o.data["application/vnd.jupyter.widget-view+json"]["model_id"] for c in nb.cells
             for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert set(views) <= set(state)
    named = set(re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state)))
    assert named <= set(state)


def test_the_readme_bm_table_is_what_bm_prints(capsys):
    """The front door's table is the default bm's output, line for line (it had drifted by a few swap-ins)."""
    from asyncpf.__main__ import main
    block = README.split("`make demo` runs it on three hosts", 1)[1].split("```", 2)[1]
    shown = [line for line in block.strip("\n").splitlines() if line.strip()]
    assert main(["bm"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(shown) > 10 and all(line in printed for line in shown), [line for line in shown if line not in printed]
