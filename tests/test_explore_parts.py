"""A search by several parts in rounds (explore_in_parts, PartsSearch, check --subtrees) gives the whole search's answer.

Searching in parts is also what showed that the state key merged states with different futures: a part, not
seeing the states another part met, reached states the whole search had pruned away.  The key now names each
work item by its id wherever the workqueue does (see test_the_key_tells_apart_items_that_swap_ids).
"""

from __future__ import annotations

import pytest

from asyncpf.check.explore import PartsSearch, explore, explore_in_parts, explore_round, state_key
from asyncpf.check.models import CONFIGS, build
from asyncpf.sim import ReplayPolicy

# multi-vcpu, multi-worker, interrupt-era and seed configurations, a violating one (kernel_touch_offline) among them
CONFIGS_CUT = ["two_vcpus", "two_tasks", "tick_completion", "irq_ack_race", "irq_two_tasks", "seed_two_tasks",
               "kernel_touch_offline", "two_vcpus_disable"]


def outcome(rep) -> tuple:
    return rep.states, sorted(rep.violated), rep.complete, rep.counterexample, rep.counterexample_trace


@pytest.mark.parametrize("name", CONFIGS_CUT)
@pytest.mark.parametrize("parts, per_round", [(2, 50), (5, 3)])
def test_a_search_in_parts_has_the_whole_searchs_states_violations_and_counterexample(name, parts, per_round):
    whole = explore(name, stop_at_first=False)
    cut = explore_in_parts(name, parts, round_schedules=per_round)
    assert outcome(cut) == outcome(whole)
    assert cut.schedules >= whole.schedules   # parts of a round may meet one state twice: never fewer runs


def test_one_part_searches_as_one_search_does():
    whole = explore("two_vcpus", stop_at_first=False)
    one = explore_in_parts("two_vcpus", 1, round_schedules=7)
    assert outcome(one) == outcome(whole) and one.schedules == whole.schedules


def test_the_rounds_run_wherever_the_caller_says_and_the_answer_does_not_depend_on_it():
    rounds = []

    def backwards(calls):  # another order, as a cluster may finish them
        rounds.append(len(calls))
        return [explore_round(*c) for c in calls[::-1]][::-1]

    assert outcome(explore_in_parts("two_vcpus", 3, round_schedules=10, run_parts=backwards)) == \
        outcome(explore_in_parts("two_vcpus", 3, round_schedules=10))
    assert len(rounds) > 1 and max(rounds) == 3


def test_a_capped_configuration_is_searched_by_one_part():
    assert PartsSearch("limit64", 4).parts == 1
    assert outcome(explore_in_parts("limit64", 4)) == outcome(explore("limit64", stop_at_first=False))


@pytest.mark.parametrize("arg", [{"parts": 0}, {"parts": True}, {"parts": 1.5}, {"parts": 2, "round_schedules": 0}])
def test_a_search_in_no_parts_or_empty_rounds_is_refused(arg):
    with pytest.raises(ValueError, match="expected a positive number"):
        explore_in_parts("one_task", **arg)


def _machine_at(cfg, choices, point):
    """The machine of ``cfg`` replayed under ``choices`` and stopped as choice point ``point`` is met."""
    met = {}

    class Stop(Exception):
        pass

    class AtPoint(ReplayPolicy):
        def choose(self, env, labels):
            if len(self.points) == point:
                met["labels"] = tuple(labels)
                raise Stop
            return super().choose(env, labels)

    try:
        b = build(cfg, policy=AtPoint(choices), trace=False, before_boot=lambda m: met.setdefault("m", m))
        while True:
            b.machine.run(b.machine.env.now + 50_000)
    except Stop:
        return met["m"], met["labels"]


def test_the_key_tells_apart_items_that_swap_ids():
    # four_tasks_two_vcpus, two schedules to the same instant: vcpu 1's item is #3 on worker slot 0 in one and #4 on
    # slot 1 in the other (vcpu 0's the reverse).  Everything else is alike, but the worker that wakes next is
    # kworker/u:0#3 in one and kworker/u:1#4 in the other: the key without the ids merged them, and the whole search
    # then never met the states behind the second (a search in 8 parts met 126 more of them)
    cfg = CONFIGS["four_tasks_two_vcpus"]
    one, labels_one = _machine_at(cfg, [0, 0, 0, 1] + [0] * 11, 15)
    other, labels_other = _machine_at(cfg, [0] * 13 + [1, 1], 15)
    assert labels_one == labels_other
    ids = {m: {w.vcpu.vcpu_id: w.id for v in m.vcpus for w in v.async_pf.queue} for m in (one, other)}
    assert ids[one] == {0: 4, 1: 3} and ids[other] == {0: 3, 1: 4}
    assert state_key(one, cfg.memory_pages) != state_key(other, cfg.memory_pages)


def test_a_search_in_parts_keeps_to_its_cap_on_schedules():
    whole = explore("two_vcpus_three_tasks", stop_at_first=False, max_schedules=3)
    cut = explore_in_parts("two_vcpus_three_tasks", 8, max_schedules=3)
    assert whole.schedules == cut.schedules == 3 and not cut.complete


def test_a_search_in_parts_refuses_a_configuration_its_parts_cannot_find_by_name():
    import dataclasses

    with pytest.raises(ValueError, match="not the registered one"):
        PartsSearch(dataclasses.replace(CONFIGS["two_vcpus"], name="my_two_vcpus"), 2)


def test_entries_of_one_process_with_different_identities_key_without_error():
    # a process's sleep and its _resume_unless_stale carry one label but None and a tuple: keyed by repr, they sort
    from asyncpf.check.explore import due_key
    from asyncpf.sim import Environment

    env = Environment()

    def sleeper():
        yield 5

    p = env.process(sleeper(), "p")
    entries = [(0, 1, 0, p, 1), (0, 1, 1, p._resume_unless_stale, (2, None))]
    assert len(due_key(entries)) == 2
