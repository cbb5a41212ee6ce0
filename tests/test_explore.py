"""The explorer on the fast configurations: counts, determinism, a clean correct model, replayable counterexamples."""

import pytest

from asyncpf.check.explore import execute, explore, fast_configs, replay
from asyncpf.check.models import CONFIGS

CLEAN_FAST = [c.name for c in fast_configs() if c.name != "kernel_touch"]


@pytest.mark.parametrize("name", CLEAN_FAST)
def test_correct_model_is_clean(name):
    rep = explore(name, stop_at_first=False, max_seconds=30)
    assert rep.complete and rep.violations == [], rep.summary()
    assert rep.schedules >= 2 and rep.states >= 2 and rep.pruned >= 1


def test_counts_are_deterministic():
    a = explore("two_tasks", stop_at_first=False)
    b = explore("two_tasks", stop_at_first=False)
    assert (a.schedules, a.states, a.steps, a.pruned) == (b.schedules, b.states, b.steps, b.pruned)


def test_same_choices_same_trace():
    assert replay("two_tasks", [0, 1]).trace_text() == replay("two_tasks", [0, 1]).trace_text()


def test_kernel_touch_shows_the_2010_stray_page_ready():
    # 2.6.38 halts instead of injecting at CPL0 without SEND_ALWAYS, then still sends page-ready (bugzilla 208081)
    rep = explore("kernel_touch")
    assert [v.name for v in rep.violations] == ["ready_only_after_not_present"]


def test_counterexample_replays():
    bugs = {"worker_uses_freed_work": True}
    rep = explore("tick_completion", bugs=bugs)
    assert rep.counterexample and "kvm_async_pf_completed" in rep.counterexample_trace
    again = replay("tick_completion", rep.counterexample, bugs=bugs)
    assert [v.name for v in again.violations] == [v.name for v in rep.violations]
    assert again.trace_text() == rep.counterexample_trace
    assert execute(CONFIGS["tick_completion"], [], bugs=bugs).violations == []  # FIFO alone misses it
