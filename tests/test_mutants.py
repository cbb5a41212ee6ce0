"""Every historical bug, switched back on, is caught by its expected invariant (and the correct model is not).

The explorer catches every mutant; the stateful machine and the named scenarios are the kill table's
other columns, each asserted here on mutants they are known to catch.  The bugs that do not depend on the
generation are also caught on seed configurations, so the seed's invariants are not vacuous.
"""

from dataclasses import replace

import pytest

from asyncpf.check.explore import explore, replay
from asyncpf.check.models import CONFIGS
from asyncpf.check.mutants import MUTANTS, run_mutant, scenario_verdict, stateful_verdict
from asyncpf.host.legacy import x86 as legacy_x86
from asyncpf.scenarios import stage


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_caught(name):
    v = run_mutant(name, max_seconds=30)
    assert v.caught, v.as_dict()
    assert v.caught_by == ["explorer"]
    assert v.invariant in v.found and v.invariant not in v.baseline
    assert v.counterexample is not None
    assert v.choices == len(v.counterexample) and v.ftrace_lines == v.length and v.length > 0


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_no_predicate_raises_with_or_without_the_bug(name):
    # the checker reports a predicate that raises as a violation of it (a run must go on): a typo in a predicate
    # (once, a name its module no longer imported) would then look like the bug caught
    m = MUTANTS[name]
    for patch in (None, m.patch):
        rep = explore(m.config, patch=patch, stop_at_first=False, trace_counterexample=False)
        assert not [v.detail for v in rep.violated.values() if v.detail.startswith("predicate raised")], name


def test_monkeypatches_are_undone():
    before = (legacy_x86.kvm_arch_async_page_not_present, legacy_x86.kvm_arch_async_page_present, stage.Machine)
    run_mutant("ready_without_not_present")
    run_mutant("no_dummy_node", methods=("explorer", "scenario"))
    assert (legacy_x86.kvm_arch_async_page_not_present, legacy_x86.kvm_arch_async_page_present, stage.Machine) == before


@pytest.mark.parametrize("name", ["sti_before_reason", "ready_without_not_present", "no_clear_on_disable"])
def test_caught_by_stateful(name):
    v = stateful_verdict(MUTANTS[name])
    assert v["caught"] and MUTANTS[name].invariant in v["invariants"], v
    assert v["baseline"] == []          # the correct model passes at the same settings


@pytest.mark.parametrize("name", ["cpl0_without_send_always", "hash_delete_no_shift", "no_dummy_node"])
def test_caught_by_scenario(name):
    v = scenario_verdict(MUTANTS[name])
    assert v["caught"], v


def test_scenario_by_expected_invariant():
    v = scenario_verdict(MUTANTS["cpl0_without_send_always"])
    assert v["by_invariant"] == ["kernel_mode_fault_without_send_always"], v
    assert "cpl0_only_with_send_always" in v["scenarios"]["kernel_mode_fault_without_send_always"]["new_invariants"]


def test_every_method_in_one_verdict():
    v = run_mutant("sti_before_reason", methods=("explorer", "stateful", "scenario"))
    assert v.caught_by == ["explorer", "stateful", "scenario"], v.as_dict()
    assert v.as_dict()["caught_by"] == v.caught_by


# --- the generation-independent bugs, on the seed ----------------------------------------------

def _seed(cfg, name):
    return replace(cfg, name=name, generation="seed")


@pytest.mark.parametrize("mutant,config,expected", [
    ("sti_before_reason", lambda: CONFIGS["seed_one_task"], {"reason_read_before_reenable"}),
    ("worker_uses_freed_work", lambda: _seed(CONFIGS["tick_completion"], "seed_tick_completion"),
     {"no_use_after_free"}),
    # the seed's reason word is observed through kvm_send_async_pf (traced after the write)
    ("no_reinjection_check", lambda: _seed(CONFIGS["delivery_fault"], "seed_delivery_fault"),
     {"no_two_apf_pf_in_one_entry", "reason_not_clobbered"}),
])
def test_seed_invariants_are_not_vacuous(mutant, config, expected):
    m, cfg = MUTANTS[mutant], config()
    base = explore(cfg, stop_at_first=False, trace_counterexample=False)
    bug = explore(cfg, patch=m.bug, stop_at_first=False, trace_counterexample=False)
    assert base.violated == {} and base.complete, base.summary()
    assert expected <= set(bug.violated), bug.summary()
    assert "kvm_send_async_pf" in replay(cfg, bug.counterexample, patch=m.bug).trace_text()
