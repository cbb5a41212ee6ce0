"""The explorer against the plain replay explorer it replaced (``explore(reference=True)``).

The reference re-runs every schedule from build and boot and judges every step; the explorer judges only the
steps beyond a run's replayed prefix and hashes the teardown.  Same distinct states, same violations, same
shortest counterexample (choice list and ftrace text) on every fast configuration, and on mutants that the
explorer must catch; never more schedules.
"""

from collections import Counter

import pytest

from asyncpf.check.explore import canonical, explore, fast_configs
from asyncpf.check.invariants import Ledger
from asyncpf.check.mutants import MUTANTS


def _verdict(rep):
    return (rep.states, sorted(rep.violated), [v.as_dict() for v in rep.violated.values()],
            [v.as_dict() for v in rep.violations], rep.counterexample, rep.counterexample_trace, rep.complete)


@pytest.mark.parametrize("name", [c.name for c in fast_configs()])
def test_same_report_as_the_replay_explorer(name):
    ref = explore(name, stop_at_first=False, reference=True, max_seconds=300)
    new = explore(name, stop_at_first=False, max_seconds=300)
    assert _verdict(new) == _verdict(ref), (ref.summary(), new.summary())
    assert new.schedules <= ref.schedules and new.steps <= ref.steps


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_same_counterexample_for_a_mutant(mutant):
    m = MUTANTS[mutant]
    ref = explore(m.config, patch=m.patch, setup=m.setup, reference=True)
    new = explore(m.config, patch=m.patch, setup=m.setup)
    assert ref.violated and _verdict(new) == _verdict(ref)


def test_the_teardown_is_hashed_with_the_ledger():
    rep = explore("two_tasks", stop_at_first=False)
    ref = explore("two_tasks", stop_at_first=False, reference=True)
    assert rep.end_states > 0 and ref.end_states == 0 and rep.schedules < ref.schedules


def test_canonical_ignores_insertion_order_and_keeps_contents():
    a, b = Ledger(), Ledger()
    a.awaiting[0] = {0x1000: 5, 0x2000: 7}
    b.awaiting[0] = {0x2000: 7}
    b.awaiting[0][0x1000] = 5
    a.woken_by_broadcast[1], b.woken_by_broadcast[1] = {3, 1, 2}, {2, 3, 1}
    a.wake_alls, b.wake_alls = Counter({1: 2}), Counter({1: 2})
    assert canonical(a) == canonical(b) and hash(canonical(a)) == hash(canonical(b))
    b.wake_alls[1] += 1
    assert canonical(a) != canonical(b)
    with pytest.raises(TypeError):
        canonical(object())


def test_the_end_invariants_read_only_what_the_teardown_key_holds():
    # _prune_known_ends keys a teardown state with the ledger and the machine: an end invariant reading more of the
    # checker's history (its memory, steps, observations) would make that pruning unsound; extend end_key first
    import inspect
    import re

    from asyncpf.check.invariants import END_INVARIANTS

    for inv in END_INVARIANTS:
        read = set(re.findall(r"\bv\.(\w+)", inspect.getsource(inv.fn)))
        # sleeper_nodes is the kernel's sleeper hash, walked (View.sleeper_nodes): machine state, not history
        assert read <= {"ledger", "kernel", "machine", "vcpus", "shut_down", "sleeper_nodes"}, (inv.name, read)


def test_the_speed_tool_compares_both_explorers_and_refuses_unknown_names(capsys):
    from asyncpf.tools import explorer_speed

    assert explorer_speed.main(["one_task"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("one_task")][0].split()
    assert int(row[4]) < int(row[1]) and row[2] == row[5] and row[-1] == "same"   # fewer schedules, same states
    assert explorer_speed.main(["nonesuch"]) == 2
    err = capsys.readouterr().err
    assert "'nonesuch': expected configuration names" in err and len(err.strip().splitlines()) == 1
