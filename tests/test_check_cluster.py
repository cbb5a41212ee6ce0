"""``check`` explorations spread over Dask (``--scheduler``): the same reports as in this process; the door."""

from __future__ import annotations

import json

import pytest

from asyncpf.__main__ import main

CONFIGS = ["--config", "one_task", "--config", "kernel_touch", "--config", "seed_msr_disable"]
WALL = ("seconds", "states_per_s", "cpu_s")   # the only figures that may differ between two runs (time)


def _without_wall_time(out: str) -> dict:
    d = json.loads(out)
    for c in d["correct"]["configs"]:
        for k in WALL:
            c.pop(k)
    d["correct"].pop("speed")
    return d


def test_a_cluster_gives_the_serial_reports(cluster, capsys):
    assert main(["check", *CONFIGS, "--json"]) == 0
    serial = _without_wall_time(capsys.readouterr().out)
    assert main(["check", *CONFIGS, "--json", "--scheduler", cluster.scheduler_address]) == 0
    assert _without_wall_time(capsys.readouterr().out) == serial
    assert [c["config"] for c in serial["correct"]["configs"]] == ["one_task", "kernel_touch", "seed_msr_disable"]
    assert serial["correct"]["configs"][1]["violated"] == ["ready_only_after_not_present"]


def test_subtrees_on_a_cluster_give_the_serial_subtrees_and_the_whole_searchs_answer(cluster, capsys):
    argv = ["check", "--config", "two_vcpus", "--config", "kernel_touch", "--json"]
    assert main(argv) == 0
    whole = _without_wall_time(capsys.readouterr().out)
    assert main([*argv, "--subtrees", "3"]) == 0
    serial = _without_wall_time(capsys.readouterr().out)
    assert main([*argv, "--subtrees", "3", "--scheduler", cluster.scheduler_address]) == 0
    assert _without_wall_time(capsys.readouterr().out) == serial
    answer = ("config", "distinct_states", "violated", "violations", "counterexample", "complete")
    for w, s in zip(whole["correct"]["configs"], serial["correct"]["configs"]):
        assert {k: w[k] for k in answer} == {k: s[k] for k in answer}
        assert s["schedules"] >= w["schedules"]


def test_check_reports_its_speed(capsys):
    assert main(["check", "--config", "one_task", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    c, speed = d["correct"]["configs"][0], d["correct"]["speed"]
    assert c["states_per_s"] > 0 and c["schedules_per_state"] == round(c["schedules"] / c["distinct_states"], 2)
    assert speed["distinct_states"] == c["distinct_states"] and speed["schedules"] == c["schedules"]
    assert main(["check", "--config", "one_task"]) == 0
    text = capsys.readouterr().out
    assert "states/s" in text and "schedules/state" in text and "total:" in text


@pytest.mark.parametrize("argv, expected", [
    (["--jobs", "2"], "--jobs 2: only with --scheduler local"),
    (["--scheduler", "local", "--list"], "--scheduler local: explorations of the correct model only"),
    (["--scheduler", "nowhere"], "'nowhere': expected local, serial or a Dask scheduler address"),
    (["--scheduler", "local", "--jobs", "0"], "--jobs"),
    (["--subtrees", "0"], "--subtrees"),
    (["--list", "--subtrees", "2"], "--subtrees 2: explorations of the correct model only"),
])
def test_the_door_refuses_what_cannot_run(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--config", "one_task", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
