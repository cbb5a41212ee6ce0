"""`python -m asyncpf bench-engine`: the command's contract, on a tiny workload.

No timing assertions: only the shape of the report and that the three engines
did the same work.
"""

from __future__ import annotations

import json
import sys

import pytest

from asyncpf import engine_bench
from asyncpf.__main__ import main


def run_json(capsys, *extra: str) -> dict:
    status = main(["bench-engine", "--json", "--repeat", "1", *extra])
    out = capsys.readouterr().out
    assert status == 0
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


def test_json_report(capsys):
    report = run_json(capsys, "--events", "20000")
    for key in ("events_per_s", "ratio_vs_simpy", "ratio_vs_heapq", "events", "entities",
                "repeat", "targets", "python", "counts", "seconds"):
        assert key in report, key
    assert set(report["events_per_s"]) == {"asyncpf", "heapq", "simpy"}
    assert all(v > 0 for v in report["events_per_s"].values())
    assert report["entities"] == 100 and report["repeat"] == 1
    assert report["events"] == 20000
    assert report["counts"] == {"asyncpf": 20000, "heapq": 20000, "simpy": 20000}
    assert report["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert set(report["targets"]) == {"vs_simpy", "vs_heapq"}
    assert report["targets"]["vs_simpy"]["min"] == 1.5
    assert report["targets"]["vs_heapq"]["min"] == 0.6
    for key in ("vs_simpy", "vs_heapq"):
        t = report["targets"][key]
        assert t["met"] == (report[f"ratio_{key}"] >= t["min"])
    eps = report["events_per_s"]
    assert report["ratio_vs_simpy"] == pytest.approx(eps["asyncpf"] / eps["simpy"])
    assert report["ratio_vs_heapq"] == pytest.approx(eps["asyncpf"] / eps["heapq"])


def test_counts_equal_for_odd_sizes(capsys):
    report = run_json(capsys, "--events", "5000", "--entities", "7", "--seed", "3")
    per = 5000 // 7
    assert report["events"] == 7 * per
    assert len(set(report["counts"].values())) == 1
    assert report["counts"]["asyncpf"] == 7 * per


def test_more_entities_than_events(capsys):
    report = run_json(capsys, "--events", "3", "--entities", "10")
    assert report["counts"] == dict.fromkeys(("asyncpf", "heapq", "simpy"), 10)


@pytest.mark.parametrize("name", ["asyncpf", "heapq", "simpy"])
def test_each_runner_counts_its_wakeups(name):
    runner = engine_bench.RUNNERS[name]
    n, end = runner(4, 25, 1)
    assert n == 100
    # the same seed gives the same simulated end time on every engine
    assert end == engine_bench.run_heapq(4, 25, 1)[1]
    assert runner(4, 25, 2)[1] != end  # another seed, other delays


def test_table_report(capsys):
    status = main(["bench-engine", "--events", "2000", "--repeat", "1"])
    out = capsys.readouterr().out
    assert status == 0
    for word in ("asyncpf", "heapq", "simpy", "events/s", "asyncpf/simpy", "asyncpf/heapq",
                 ">= 1.5x", ">= 0.6x"):
        assert word in out, word


@pytest.mark.parametrize(
    "argv, value",
    [
        (["--events", "0"], "'0'"),
        (["--events", "-5"], "'-5'"),
        (["--entities", "x"], "'x'"),
        (["--repeat", "0"], "'0'"),
        (["--seed", "-1"], "'-1'"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, value):
    with pytest.raises(SystemExit) as info:
        main(["bench-engine", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert value in err
    assert argv[0] in err


def test_missing_simpy_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "simpy", None)  # makes `import simpy` fail
    status = main(["bench-engine", "--events", "100", "--repeat", "1"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert "SimPy" in captured.err and "pip install simpy" in captured.err
