"""The --perfetto timeline: loaded back, it is the Trace Event Format, and it agrees with the run's own accounts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from asyncpf.__main__ import main
from asyncpf.bm import BmParams, run_three

MiB = 1 << 20
SMALL = BmParams(vcpus=2, guest_mem=64 * MiB, host_limit=16 * MiB, array=32 * MiB, fault_threads=2,
                 work_threads=2, duration_ns=300_000_000)
CLI = ["--vcpus", "2", "--guest-mem", "64M", "--host-limit", "16M", "--array", "32M", "-f", "2", "-w", "2",
       "-t", "0.3", "--jobs", "1"]
METADATA = {"process_name": "name", "process_sort_index": "sort_index", "thread_name": "name",
            "thread_sort_index": "sort_index"}


def check_trace_event_format(doc: dict) -> list[dict]:
    """Assert the JSON Object Format of the Trace Event Format; return the events."""
    assert set(doc) == {"traceEvents", "displayTimeUnit", "otherData"} and doc["displayTimeUnit"] == "ns"
    events = doc["traceEvents"]
    named_threads = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    named_processes = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    for e in events:
        assert e["ph"] in {"X", "i", "b", "e", "M"}, e
        assert isinstance(e["pid"], int) and isinstance(e["name"], str) and e["name"]
        if e["ph"] == "M":
            assert set(e["args"]) == {METADATA[e["name"]]}, e
            continue
        assert isinstance(e["tid"], int) and (e["pid"], e["tid"]) in named_threads and e["pid"] in named_processes
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0 and isinstance(e.get("cat"), str)
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] > 0, e
        if e["ph"] == "i":
            assert e["s"] in {"g", "p", "t"}
        if e["ph"] in "be":
            assert e["cat"] == "apf" and isinstance(e["id"], str)
    return events


def check_async_pairs(events: list[dict]) -> int:
    """Every async span has one begin and one end, same name and category, ending after it begins."""
    spans: dict[str, dict[str, dict]] = defaultdict(dict)
    for e in events:
        if e["ph"] in "be":
            assert e["ph"] not in spans[e["id"]], f"two {e['ph']} for id {e['id']}"
            spans[e["id"]][e["ph"]] = e
    for pair in spans.values():
        b, e = pair["b"], pair["e"]
        assert (b["name"], b["cat"], b["pid"]) == (e["name"], e["cat"], e["pid"]) and e["ts"] >= b["ts"]
    return len(spans)


def check_tracks_do_not_overlap(events: list[dict]) -> dict[tuple[int, int], list[dict]]:
    tracks = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            tracks[e["pid"], e["tid"]].append(e)
    for slices in tracks.values():
        slices.sort(key=lambda e: e["ts"])
        for a, b in zip(slices, slices[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + 1e-6, (a, b)
    return tracks


@pytest.fixture(scope="module")
def bm_runs():
    return run_three(SMALL, jobs=1, record=True)


def test_recording_does_not_change_the_run(bm_runs):
    plain = run_three(SMALL, jobs=1)
    assert {m: {k: v for k, v in r.items() if k != "perfetto"} for m, r in bm_runs.items()} == plain


def test_bm_timeline_is_the_trace_event_format_and_matches_the_accounts(bm_runs):
    from asyncpf.perfetto import document
    doc = json.loads(document([e for r in bm_runs.values() for e in r["perfetto"]], {}))
    events = check_trace_event_format(doc)
    tracks = check_tracks_do_not_overlap(events)
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert processes == {1: "unpatched host", 2: "halt host", 3: "pv host"}
    for pid, mode in enumerate(bm_runs, 1):
        for vcpu, acct in bm_runs[mode]["vcpu_time_s"].items():
            by_state = Counter()
            for e in tracks[pid, 1000 + int(vcpu)]:
                by_state[e["cat"]] += e["dur"] / 1e6
            for state, seconds in acct.items():  # the vcpu track adds up to the vcpu's own time split
                assert by_state[state] == pytest.approx(seconds, abs=2e-6), (mode, vcpu, state)
    spans = Counter(e["pid"] for e in events if e["ph"] == "b")
    assert spans[3] == bm_runs["pv"]["async_pf_sent"] > 0 and spans[1] == 0
    assert check_async_pairs(events) == sum(spans.values())
    workers = [e for e in events if e.get("cat") == "worker"]
    assert Counter(e["pid"] for e in workers)[3] >= bm_runs["pv"]["async_pf_completed"]
    pv_tasks = {e["name"] for e in events if e["pid"] == 3 and e.get("cat") == "guest"}
    assert {"bm-work0", "bm-work1", "bm-fault0", "bm-fault1"} <= pv_tasks
    stalled = {e["pid"] for e in events if e.get("cat") == "stalled"}
    halted = {e["pid"] for e in events if e.get("cat") == "halted"}
    assert stalled == {1} and halted == {2}
    assert any(e["ph"] == "i" and e["name"] == "inject #PF" and e["pid"] == 3 for e in events)


def test_cli_writes_the_same_timeline_twice(tmp_path, capsys):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        assert main(["scenario", "wake_before_wait", "--perfetto", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"timeline written to {paths[1]}" in out
    assert paths[0].read_bytes() == paths[1].read_bytes()
    events = check_trace_event_format(json.loads(paths[0].read_text()))
    check_tracks_do_not_overlap(events)
    assert check_async_pairs(events) >= 1
    assert {e["args"]["name"] for e in events if e["name"] == "thread_name"} >= {"vcpu 0 (qemu-kvm)"}


def test_bm_cli_writes_trace_timeline_and_plot_together(tmp_path, capsys):
    files = {"trace": tmp_path / "pv.trace", "perfetto": tmp_path / "t.json", "plot": tmp_path / "bm.svg"}
    argv = ["bm", *CLI, "--json"] + [a for k, p in files.items() for a in (f"--{k}", str(p))]
    assert main(argv) == 0
    json.loads(capsys.readouterr().out)
    assert all(p.stat().st_size > 0 for p in files.values())
    check_trace_event_format(json.loads(files["perfetto"].read_text()))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.values())  # no leftovers


@pytest.mark.parametrize("extra,expect", [
    (["--generation", "interrupt"], "inject #PF"),          # 6.18's kvm_inj_exception names the vector in its record
    (["--host-cpus", "1"], "waiting for a host CPU"),       # a vcpu on a host runqueue: the "runq" account
])
def test_bm_timeline_of_the_interrupt_era_and_of_modelled_host_cpus(tmp_path, extra, expect):
    path = tmp_path / "t.json"
    assert main(["bm", *CLI, *extra, "--perfetto", str(path)]) == 0
    events = check_trace_event_format(json.loads(path.read_text()))
    check_tracks_do_not_overlap(events)
    assert expect in {e["name"] for e in events}
