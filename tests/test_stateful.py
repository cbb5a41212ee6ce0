"""Hypothesis drives the protocol's entry points; the invariant registry is the oracle.

The state machine itself lives in :mod:`asyncpf.check.stateful` (the kill table's
"stateful" column runs it with a mutant's ``kvm.bugs`` switch on); here it runs
on the correct model and must hold.
"""

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from asyncpf.check.stateful import AsyncPfMachine, InvariantFailure, machine_with_bugs, run_stateful

TestAsyncPf = AsyncPfMachine.TestCase
TestAsyncPf.settings = settings(max_examples=25, stateful_step_count=12, deadline=None, derandomize=True,
                                database=None)


def test_stateful_catches_a_mutant():
    with pytest.raises(AssertionError, match="reason_read_before_reenable|guest_alive|reason_not_clobbered"):
        run_state_machine_as_test(machine_with_bugs({"sti_before_reason": True}), settings=settings(
            max_examples=40, stateful_step_count=12, derandomize=True, deadline=None, database=None,
            report_multiple_bugs=False))


def test_failure_names_the_invariants():
    r = run_stateful({"sti_before_reason": True}, max_examples=40, stateful_step_count=12)
    assert r.failed and "reason_read_before_reenable" in r.invariants, r
    assert issubclass(InvariantFailure, AssertionError)


def test_bugs_do_not_leak_into_the_base_machine():
    machine_with_bugs({"sti_before_reason": True})
    assert AsyncPfMachine.bugs == {}
    assert not run_stateful({}, max_examples=25, stateful_step_count=12).failed
