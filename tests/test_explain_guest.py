"""The helpers of notebooks 05-07 (asyncpf.explain.guest, .end_to_end, .benchmark)."""

import pytest

from asyncpf import bm, scenarios
from asyncpf.explain import benchmark, end_to_end as e2e, guest as eg


def test_sleep_and_schedule_snapshots():
    r = eg.guest_scenario("sleep_and_schedule")
    snaps = r["snaps"]
    i = eg.first(snaps, lambda s: s.sleepers == ["0x0@cpu0:A"] and s.running == ["B"])
    assert snaps[i].tasks == {"A": "D", "B": "R*"}
    assert snaps[-1].tasks == {"A": "X", "B": "X"} and snaps[-1].sleepers == []
    assert r["stats"]["sleeps"] == 1 and r["leaks"] == []
    assert "t=" in eg.steps_text(snaps[:2])


def test_halt_dummy_and_wake_all():
    h = eg.guest_scenario("halt_in_kernel_section")
    assert h["stats"]["halted_waits"] == 1 and h["stats"]["sleeps"] == 0 and h["leaks"] == []
    w = eg.guest_scenario("wake_before_wait")
    assert w["stats"]["dummies_consumed"] == 1 and w["leaks"] == ["guest: dummy node for token 0x0 on cpu 0"]
    a = eg.guest_scenario("wake_all")
    assert a["snaps"][1].sleepers == ["0x1@cpu1:C"] and a["stats"]["dummies_dropped"] == 1


def test_wake_before_wait_is_the_scenario_watched_step_by_step():
    w = eg.guest_scenario("wake_before_wait")
    sc = scenarios.get("wake_before_wait").run()
    assert w["leaks"] == sc.leaks and w["apf_halts"] == sc.counts["apf_halts"]
    assert w["stats"] == {k: sc.counts[f"guest_{k}"] for k in w["stats"]}
    assert w["snaps"][0].tasks == {"A": "R"} and w["snaps"][-1].tasks == {"A": "X"}
    assert w["snaps"][-1].t_ns < sc.machine.env.now          # the watch ends when the task exits


def test_unknown_names_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        eg.guest_scenario("nope")
    with pytest.raises(ValueError):
        eg.first([], lambda s: True)


def test_e2e_pairs_and_leaks():
    r = e2e.e2e_run("pv", e2e.E2E_PARAMS.replace(duration_ns=50_000_000))
    pairs = e2e.apf_pairs(r.events + r.after)
    assert pairs and all(p["ready"] is not None and p["token"] & 0xFFF == p["vcpu"] for p in pairs)
    assert r.leaks == [] and set(r.runs) == {0, 1}
    assert "not-present" in e2e.timeline_summary(r)


def test_tiny_bm_and_tables():
    t = benchmark.tiny_bm()
    assert 1.7 <= t["pv"] <= 2.5 and "PV/unpatched" in benchmark.tiny_text(t)
    runs = bm.run_three(benchmark.TINY, jobs=1)
    assert "published v7 (10 runs)" in benchmark.ratio_table(runs) and "stalled_s" in benchmark.split_table(runs)
    assert benchmark.short_params(2).duration_ns == 2_000_000_000 and benchmark.short_params(2).array == bm.BmParams().array
