"""asyncpf.explain: the notebooks' helpers return what the notebooks assert, deterministically."""

from pathlib import Path

import pytest

from asyncpf import abi, explain
from asyncpf.tools import refresh_notebooks


def test_text_table_aligns_and_underlines():
    t = explain.text_table(("a", "bb"), [(1, "x"), (22, "yyy")], right=(0,))
    assert t.splitlines() == [" a  bb", "--  ---", " 1  x", "22  yyy"]


def test_map_and_vocabulary():
    by_file = explain.mirrors_by_file()
    assert "kvm_setup_async_pf" in by_file["virt/kvm/async_pf.c"]
    assert f"virt/kvm/async_pf.c ({len(by_file['virt/kvm/async_pf.c'])})" in explain.mirror_map()
    on_disk = sorted(p.stem for p in (Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
    assert list(explain.NOTEBOOKS) == sorted(explain.NOTEBOOKS) == on_disk
    assert "08_mmu_notifiers" in explain.notebook_map() and "dummy node" in explain.vocabulary()
    assert "kworker/u:%d" in explain.actors_table()


def test_touch_run_modes_and_determinism():
    runs = {mode: explain.touch_run(mode) for mode in explain.MODES}
    assert runs["unpatched"]["stalled"] > 0 and runs["pv"]["stalled"] == runs["halt"]["stalled"] == 0
    assert runs["halt"]["halted"] > 0 and all(r["leaks"] == [] for r in runs.values())
    assert explain.touch_run("unpatched") == runs["unpatched"]
    with pytest.raises(ValueError, match="unknown mode"):
        explain.touch_run("nope")


def test_stall_is_proportional_to_latency():
    a, b = explain.latency_sweep([100_000, 1_000_000])
    assert a["swapins"] == b["swapins"] and 9.9 < b["stalled"] / a["stalled"] < 10.1


def test_one_sync_fault_stalls_for_the_read():
    r = explain.one_sync_fault("nvme_gen4")
    assert r["result"] == "mapped" and r["stalled_ns"] == r["elapsed_ns"] >= 39_000 and r["async_events"] == 0


def test_area_and_msr_layouts():
    assert "enabled      64" in explain.area_layout("legacy") and "(total 68 bytes)" in explain.area_layout("legacy")
    assert "1     KVM_ASYNC_PF_SEND_ALWAYS" in explain.msr_layout("legacy")
    assert "1     reserved" in explain.msr_layout("seed")


@pytest.mark.parametrize("gen", ["seed", "legacy"])
def test_every_refusal_is_a_gp_and_only_2638_bad_areas_change_state(gen):
    _, results = explain.refusal_table(gen)
    cases = explain.msr_refusals(gen)
    assert len(results) == len(cases) >= 7
    for (why, _, _), r in zip(cases, results):
        assert r["result"] == 1 and r["exceptions"] == ["#GP"], why
        half_enabled = gen == "legacy" and why.startswith("area gpa")  # v2.6.38 stores msr_val first
        assert (r["before"] != r["after"]) is half_enabled, why


def test_accepted_write():
    r = explain.msr_write("legacy", 0x3040 | abi.KVM_ASYNC_PF_ENABLED)
    assert r["result"] == 0 and r["after"] == (0x3041, 0x3040, True) and r["leaks"] == []


@pytest.mark.parametrize("gen", ["seed", "legacy"])
def test_gfn_paths(gen):
    paths = {s: explain.gfn_path(s, gen) for s in explain.GFN_STATES}
    assert {s for s, r in paths.items() if r["async"]} == {"swapped", "swapin"}
    assert all(r["refs_left"] == 0 for r in paths.values())
    traced = {s for s, r in paths.items() if r["trace"]}
    assert traced == (set(explain.GFN_STATES) if gen == "seed" else {"swapped", "swapin"})
    assert "answered now" in explain.path_text(paths["mmio"])
    with pytest.raises(ValueError, match="unknown gfn state"):
        explain.gfn_path("nope", gen)


def test_limit_and_fallback():
    assert explain.limit_probe(66) == {"faults": 66, "async": 64, "sync": 2, "limit_hits": 2}
    fb = explain.sync_fallback()
    assert fb["result"] == "mapped" and fb["stalled_ns"] > 0 and fb["leaks"] == []


def test_hash_helpers():
    gs = explain.colliding_gfns(5, 3)
    assert len(set(gs)) == 3


def test_timeline_and_repeated_fault():
    m = explain.pv_run()
    rows = explain.work_timeline(m)
    assert len(rows) == 6 and all(r["not_present"] < r["completed"] <= r["ready"] for r in rows) and m.leaks() == []
    rf = explain.repeated_fault()
    assert rf["allocated"] == 1 and rf["trace"][-1].startswith("kvm_async_pf_doublefault")


@pytest.mark.parametrize("how", ["msr_disable", "reset"])
def test_clear_scenario(how):
    cs = explain.clear_scenario(how)
    assert cs["after"]["items"] == ("freed", "freed") and not cs["pending_ran"] and cs["leaks"] == []
    assert cs["after"]["mm_refs"] == 1 and len(cs["known_leaks"]) == 1  # the cancelled item's, as in 2.6.38


@pytest.mark.parametrize("race", explain.RACES)
def test_notifier_race(race):
    r = explain.notifier_race(race)
    assert r["fault"] == ("mapped" if race == "none" else "retry") and r["page_refs_end"] == 0
    assert r["refault_maps_current_page"]


def test_refresh_coalesces_streams():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    nb = new_notebook(cells=[new_code_cell("print(1); print(2)", outputs=[
        new_output("stream", name="stdout", text="1\n"), new_output("stream", name="stdout", text="2\n")])])
    text = refresh_notebooks.normalise(nb)
    cell = nbformat.reads(text, as_version=4).cells[0]
    assert [o.text for o in cell.outputs] == ["1\n2\n"] and cell.id == "0"


def test_refresh_keeps_widget_state_with_ids_numbered_in_creation_order():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    box, slider = "9f1c2a7e5b3d4c6e8a0b1c2d3e4f5a6b", "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": box, "version_major": 2, "version_minor": 0},
            "text/plain": "VBox()"}
    nb = new_notebook(cells=[new_code_cell("view", outputs=[new_output("execute_result", data=view,
                                                                        execution_count=1)])])
    state = {box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{slider}"]}},
             slider: {"model_name": "IntSliderModel", "state": {"value": 3}}}
    nb.metadata["widgets"] = {refresh_notebooks.WIDGET_STATE: {"state": state, "version_major": 2,
                                                               "version_minor": 0}}
    text = refresh_notebooks.normalise(nb)
    back = nbformat.reads(text, as_version=4)
    one, two = f"{1:032x}", f"{2:032x}"
    assert back.cells[0].outputs[0].data["application/vnd.jupyter.widget-view+json"]["model_id"] == one
    stored = back.metadata["widgets"][refresh_notebooks.WIDGET_STATE]["state"]
    assert list(stored) == [one, two] and stored[one]["state"]["children"] == [f"IPY_MODEL_{two}"]
    assert box not in text and slider not in text
    assert refresh_notebooks.normalise(nbformat.reads(text, as_version=4)) == text
