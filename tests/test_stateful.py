"""Hypothesis drives the protocol's entry points; the invariant registry is the oracle.

The state machine itself lives in :mod:`asyncpf.check.stateful` (the kill table's
"stateful" column runs it with a mutant's bug patched in); here it runs
on the correct model, on both generations, and must hold (a generation's
documented behaviour aside).
"""

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from asyncpf.check.known import KNOWN_SEED_BEHAVIOUR
from asyncpf.check.mutants import MUTANTS
from asyncpf.check.stateful import (KNOWN_BEHAVIOUR, AsyncPfMachine, InvariantFailure, SeedAsyncPfMachine,
                                    run_stateful)
from asyncpf.guest import kvm as pv

STI_BEFORE_REASON = MUTANTS["sti_before_reason"].patch

SETTINGS = settings(max_examples=25, stateful_step_count=12, deadline=None, derandomize=True, database=None)

TestAsyncPf = AsyncPfMachine.TestCase
TestAsyncPf.settings = SETTINGS
TestSeedAsyncPf = SeedAsyncPfMachine.TestCase
TestSeedAsyncPf.settings = SETTINGS


def test_stateful_catches_a_mutant():
    with pytest.raises(AssertionError, match="reason_read_before_reenable|guest_alive|reason_not_clobbered"), \
            STI_BEFORE_REASON():
        run_state_machine_as_test(AsyncPfMachine, settings=settings(
            max_examples=40, stateful_step_count=12, derandomize=True, deadline=None, database=None,
            report_multiple_bugs=False))


def test_failure_names_the_invariants():
    r = run_stateful(STI_BEFORE_REASON, max_examples=40, stateful_step_count=12)
    assert r.failed and "reason_read_before_reenable" in r.invariants, r
    assert issubclass(InvariantFailure, AssertionError)


def test_seed_machine_runs_the_seed_and_catches_a_mutant():
    m = SeedAsyncPfMachine()
    assert m.m.gen.name == "seed" and m.checker.generation == "seed" and m.known == KNOWN_SEED_BEHAVIOUR
    m.vmm_resets_vcpu(1)
    m.time_passes(200_000)
    assert m.m.tracer.text().count("msr_write 13 = 0x10081") == 2    # cpu 1: at boot, and again after the reset
    m.teardown()
    # 60 examples: with 40 the derandomized search misses the mutant when asyncpf.__main__ was imported first
    # (reproduced on main's own tree by a script; cause not found: not the hash seed, not the global random)
    r = run_stateful(STI_BEFORE_REASON, max_examples=60, stateful_step_count=12, generation="seed")
    assert r.failed and "reason_read_before_reenable" in r.invariants, r


def test_known_behaviour_is_per_generation():
    assert set(KNOWN_BEHAVIOUR) == {"legacy", "seed", "interrupt"}
    assert set(KNOWN_BEHAVIOUR["interrupt"]) == {"no_ready_after_broadcast"}
    assert "no_ready_after_broadcast" in KNOWN_BEHAVIOUR["legacy"]
    assert set(KNOWN_BEHAVIOUR["seed"]) == {"ready_only_after_not_present"}


def test_a_mutant_is_undone_after_its_run():
    entry = pv.do_async_page_fault
    assert run_stateful(STI_BEFORE_REASON, max_examples=40, stateful_step_count=12).failed
    assert pv.do_async_page_fault is entry
    assert not run_stateful(None, max_examples=25, stateful_step_count=12).failed
    assert not run_stateful(None, max_examples=25, stateful_step_count=12, generation="seed").failed


def test_interrupt_machine_is_clean_and_catches_the_zero_token_and_the_lapic_spin():
    from asyncpf.check.mutants import MUTANTS
    assert not run_stateful(None, max_examples=25, stateful_step_count=12, generation="interrupt").failed
    r = run_stateful(MUTANTS["zero_token"].patch, max_examples=25, stateful_step_count=12, generation="interrupt")
    assert r.failed and "tokens_non_zero" in r.invariants
    r = run_stateful(MUTANTS["lapic_disabled_spin"].patch, max_examples=40, stateful_step_count=12,
                     generation="interrupt")
    assert r.failed and "page_ready_lapic_enabled" in r.invariants
