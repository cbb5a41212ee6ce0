"""Every historical bug, switched back on, is caught by its expected invariant (and the correct model is not)."""

import pytest

from asyncpf.check.mutants import MUTANTS, run_mutant
from asyncpf.host import x86


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_caught(name):
    v = run_mutant(name, max_seconds=30)
    assert v.caught, v.as_dict()
    assert v.invariant in v.found and v.invariant not in v.baseline
    assert v.counterexample is not None


def test_monkeypatches_are_undone():
    before = (x86.kvm_arch_async_page_not_present, x86.kvm_arch_async_page_present)
    run_mutant("ready_without_not_present")
    run_mutant("no_dummy_node")
    assert (x86.kvm_arch_async_page_not_present, x86.kvm_arch_async_page_present) == before
