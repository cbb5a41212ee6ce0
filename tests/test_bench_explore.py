"""Where the explorer's time goes: the per-run phase split, its counters, and ``asyncpf bench-explore``.

No timing assertions: the counters are exact, the CPU seconds are only held to
being disjoint parts of the run that measured them.
"""

from __future__ import annotations

import json
import time

import pytest

from asyncpf.__main__ import main
from asyncpf.check.bench import cost, format_report, run_bench
from asyncpf.check.explore import PHASES, CONFIGS, execute, explore, explore_in_parts


def test_a_fifo_run_judges_every_step_and_keys_its_choice_points():
    cfg = CONFIGS["two_vcpus"]
    visited: set = set()
    r = execute(cfg, [], visited=visited)
    assert r.replayed_steps == 0 and r.steps > 0
    # every point before the teardown is keyed, and new on an empty visited set; the teardown's are not keyed here
    assert 0 < r.keys == len(visited) < len(r.points)
    assert set(r.cpu) == set(PHASES) and all(s >= 0 for s in r.cpu.values())
    assert r.cpu["replay"] == 0.0


def test_a_replayed_run_counts_its_prefix_apart():
    cfg = CONFIGS["two_vcpus"]
    first = execute(cfg, [], visited=set())
    fifo = [0] * (first.keys // 2)     # a prefix that ends halfway through the points before the teardown
    again = execute(cfg, fifo, judge_prefix=False)
    assert again.steps == first.steps                      # the same machine, the same steps
    assert 0 < again.replayed_steps < again.steps           # judged from the last choice of the prefix on
    assert again.keys == 0                                   # no visited set, no keys
    judged_from_start = execute(cfg, fifo, judge_prefix=True)
    assert judged_from_start.replayed_steps == 0


def test_the_phases_are_disjoint_parts_of_the_run():
    cfg = CONFIGS["three_tasks"]
    t0 = time.process_time()
    r = execute(cfg, [], visited=set(), end_states=set())
    spent = time.process_time() - t0
    assert sum(r.cpu.values()) <= spent + 1e-6


def test_a_search_adds_up_its_runs():
    rep = explore("two_vcpus", stop_at_first=False)
    assert 0 < rep.replayed_steps < rep.steps
    # one key per distinct state, and one per run that met a state already expanded at a choice point
    assert rep.states <= rep.keys <= rep.states + rep.pruned
    ref = explore("two_vcpus", stop_at_first=False, reference=True)
    assert ref.replayed_steps == 0 and ref.states == rep.states
    parts = explore_in_parts("two_vcpus", 2, round_schedules=7)
    assert parts.states == rep.states and parts.keys >= parts.states and parts.replayed_steps > 0
    assert set(parts.as_dict()["cpu_s"]) == set(PHASES)


def test_the_ceilings_follow_from_the_split():
    c = run_bench(["two_vcpus", "one_task"], forks=3, max_seconds=60)
    assert c["configs"] == ["two_vcpus", "one_task"] and c["complete"]
    assert c["judged_steps"] + c["replayed_steps"] == c["steps"]
    assert c["state_keys"] >= c["distinct_states"] > 0
    rates = c["states_per_cpu_s"]
    assert rates["free_return"] >= rates["now"] > 0
    assert rates["free_return"] >= rates["fork_return"] > 0 and c["fork_ms"] > 0
    assert abs(sum(c["share"].values()) - 1) < 1e-3
    text = format_report(c)
    assert "if getting back to a choice point were free" in text and "fork+exit+wait" in text


def test_no_fork_no_fork_ceiling():
    rep = explore("one_task", stop_at_first=False)
    c = cost([rep], None)
    assert c["fork_ms"] is None and c["states_per_cpu_s"]["fork_return"] is None
    assert "no fork on this platform" in format_report(c)


def test_the_command_prints_one_json_object(capsys):
    assert main(["bench-explore", "--config", "one_task", "--forks", "2", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    report = json.loads(out)
    assert report["configs"] == ["one_task"] and report["goal_states_per_s"] == 2000


@pytest.mark.parametrize("argv", [["--forks", "0"], ["--config", "nope"], ["--max-seconds", "0"]])
def test_bad_input_is_refused_before_any_search(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench-explore", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
