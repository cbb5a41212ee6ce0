"""Where the explorer's time goes: the per-run phase split, its counters, and ``asyncpf bench-explore``.

No timing assertions: the counters are exact, and the phases are held, on a
clock that ticks once per reading, to covering each run exactly once.
"""

from __future__ import annotations

import json

import pytest

from asyncpf.__main__ import main
from asyncpf.check import explore as explore_mod
from asyncpf.check.bench import cost, format_report, run_bench
from asyncpf.check.explore import PHASES, CONFIGS, Report, execute, explore, explore_in_parts


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


class _Ticks:
    """A clock that moves one tick per reading: a run's phases then add up to the readings between its first and last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _run_on_ticks(monkeypatch, *args, **kw):
    ticks = _Ticks()
    monkeypatch.setattr(explore_mod, "process_time", ticks)
    r = execute(*args, **kw)
    return r, ticks.now - 1.0      # from the first reading (the clock's start) to the last (its stop)


@pytest.mark.parametrize("name, choices, kw, empty", [
    ("three_tasks", [], {"visited": set(), "end_states": set()}, {"replay"}),            # judged from the start
    ("three_tasks", [0, 1], {"visited": set(), "judge_prefix": False}, set()),           # a prefix replayed
    ("kernel_touch", [], {"visited": set(), "stop_on_violation": True}, {"replay", "teardown"}),  # stops at a violation
])
def test_the_phases_cover_the_run_once(monkeypatch, name, choices, kw, empty):
    r, span = _run_on_ticks(monkeypatch, CONFIGS[name], choices, **kw)
    assert sum(r.cpu.values()) == span
    assert {p for p, s in r.cpu.items() if s == 0} == empty
    assert sum(r.phase_steps.values()) == r.steps and all(n >= 0 for n in r.phase_steps.values())


def test_a_run_pruned_in_its_teardown_or_at_a_choice_point_is_covered_too(monkeypatch):
    cfg = CONFIGS["three_tasks"]
    visited, ends = set(), set()
    execute(cfg, [], visited=visited, end_states=ends)
    at_point, span = _run_on_ticks(monkeypatch, cfg, [], visited=visited, end_states=ends)
    assert at_point.pruned and sum(at_point.cpu.values()) == span and at_point.cpu["teardown"] == 0
    in_teardown, span = _run_on_ticks(monkeypatch, cfg, [], visited=set(), end_states=ends)   # same end, new states
    assert in_teardown.pruned and sum(in_teardown.cpu.values()) == span and in_teardown.cpu["teardown"] > 0
    assert in_teardown.keys == len(visited)     # the first run's choice points, all keyed again


def test_a_search_adds_up_its_runs():
    rep = explore("two_vcpus", stop_at_first=False)
    assert 0 < rep.replayed_steps < rep.steps and sum(rep.phase_steps.values()) == rep.steps
    # one key per distinct state, and one per run that met a state already expanded at a choice point
    assert rep.states <= rep.keys <= rep.states + rep.pruned
    ref = explore("one_task", stop_at_first=False, reference=True)
    assert ref.replayed_steps == 0 and ref.phase_steps["replay"] == 0 and ref.states
    parts = explore_in_parts("two_vcpus", 2, round_schedules=7)
    assert parts.states == rep.states and parts.keys >= parts.states and parts.replayed_steps > 0
    assert set(parts.as_dict()["cpu_s"]) == set(PHASES)
    both = Report.combined([rep, ref])
    assert (both.config, both.schedules, both.states, both.steps, both.keys) == (
        "two_vcpus+one_task", rep.schedules + ref.schedules, rep.states + ref.states, rep.steps + ref.steps,
        rep.keys + ref.keys)
    assert both.phase_steps == {p: rep.phase_steps[p] + ref.phase_steps[p] for p in rep.phase_steps}
    assert both.cpu == {p: rep.cpu[p] + ref.cpu[p] for p in PHASES}


def test_the_ceilings_follow_from_the_split():
    c = run_bench(["two_vcpus", "one_task"], forks=3, max_seconds=60)
    assert c["configs"] == ["two_vcpus", "one_task"] and c["complete"]
    assert c["judged_steps"] + c["replayed_steps"] == c["steps"] == sum(c["steps_by_phase"].values())
    assert c["state_keys"] >= c["distinct_states"] > 0
    rates = c["states_per_cpu_s"]
    assert rates["free_return"] >= rates["now"] > 0
    assert rates["free_return"] >= rates["fork_return"] > 0 and c["fork_ms"] > 0 and c["fork_wall_ms"] > 0
    assert abs(sum(c["share"].values()) - 1) < 1e-3
    text = format_report(c)
    assert "if getting back to a choice point were free" in text and "fork+exit+wait" in text


def test_no_fork_no_fork_ceiling():
    rep = explore("one_task", stop_at_first=False)
    c = cost([rep], None)
    assert c["fork_ms"] is None and c["states_per_cpu_s"]["fork_return"] is None
    assert "no fork on this platform" in format_report(c)


def test_check_prints_its_cpu_per_schedule(capsys):
    assert main(["check", "--config", "one_task"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "CPU per schedule" in ln)
    assert all(f"{p} " in line for p in PHASES)
    assert main(["check", "--config", "one_task", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["correct"]["speed"]["cpu_s"]) == set(PHASES)


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
