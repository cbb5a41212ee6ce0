"""Hypothesis drives the protocol's entry points; the invariant registry is the oracle.

Rules: a guest task touches a page, time passes (workers finish, vcpus enter,
ticks), the guest disables and re-enables async PF, a guest cpu goes
offline, the VMM resets a vcpu (the guest re-registers), the host reclaims
memory.  After every rule no safety or event
invariant may have been violated (the checker runs on every engine step);
at teardown the run is brought to quiescence, the VM destroyed and the
end-of-run invariants checked.

:class:`AsyncPfMachine` is the correct model on the legacy generation and
:class:`SeedAsyncPfMachine` the same rules on the seed generation
(``tests/test_stateful.py`` runs both); :func:`run_stateful` runs
one derandomized and reports which invariants the failing run broke (the
kill table's "stateful" column).  A generation's documented behaviour
(:data:`~asyncpf.check.known.KNOWN`) is not a failure.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, Verbosity, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition, rule,
                                 run_state_machine_as_test)

from ..guest import kvm as pv
from ..guest.kernel import AddressSpace
from ..guest.ops import Cli, Sti, Touch, Work
from ..sim import ChoicePolicy
from ..workloads import steps
from .checker import Checker
from .known import KNOWN_INTERRUPT_BEHAVIOUR, KNOWN_LEGACY_BEHAVIOUR, KNOWN_SEED_BEHAVIOUR
from .models import TASK_GVA, X2APIC_SPIV, ModelConfig, _wrmsr, build, vmm_reset_vcpu

PAGES = (1100, 1101, 1102)
MAX_TASKS = 6

_prog = steps


class InvariantFailure(AssertionError):
    """The state machine's oracle failed; ``names`` are every invariant the checker saw broken in that run."""

    def __init__(self, found: list, names: list[str]):
        super().__init__(repr(found))
        self.found = found
        self.names = names


KNOWN_BEHAVIOUR = {"legacy": KNOWN_LEGACY_BEHAVIOUR, "seed": KNOWN_SEED_BEHAVIOUR,
                   "interrupt": KNOWN_INTERRUPT_BEHAVIOUR}


class AsyncPfMachine(RuleBasedStateMachine):
    generation = "legacy"

    def __init__(self):
        super().__init__()
        self.known = KNOWN_BEHAVIOUR[self.generation]
        cfg = ModelConfig("stateful", generation=self.generation, vcpus=2, workers=1, tasks=(), pages=PAGES)
        box = {}
        self.b = build(cfg, policy=ChoicePolicy(), before_boot=lambda m: box.setdefault(
            "c", Checker(m, m.guest).attach()))
        self.checker = box["c"]
        self.m, self.kernel = self.b.machine, self.b.kernel
        self.spawned = 0

    def _fail(self, found: list) -> None:
        names = sorted({v.name for v in self.checker.violations if v.name not in self.known})
        raise InvariantFailure(found, names)

    @precondition(lambda self: self.spawned < MAX_TASKS)
    @rule(page=st.sampled_from(PAGES), cpu=st.integers(0, 1), kernel=st.booleans())
    def guest_touches_page(self, page, cpu, kernel):
        mm = AddressSpace()
        mm.map(TASK_GVA, 1, page)
        self.kernel.spawn(f"touch{self.spawned}", _prog(Touch(TASK_GVA, True, 0, kernel=kernel)), cpu, mm)
        self.spawned += 1

    @rule(ns=st.sampled_from([1_000, 3_000, 5_000, 20_000, 200_000]))
    def time_passes(self, ns):
        """Workers finish, vcpus enter and inject, ticks fire."""
        self.m.run(self.m.env.now + ns)

    @precondition(lambda self: self.spawned < MAX_TASKS)
    @rule(cpu=st.integers(0, 1))
    def guest_disables_and_reenables_msr(self, cpu):
        c = self.kernel.cpus[cpu]

        def off_on():
            yield Cli()
            yield from pv.kvm_pv_disable_apf(c)
            pv.apf_task_wake_all(c)
            yield from c.kernel.twins.kvm_guest_cpu_init(c)
            yield Sti()
        self.kernel.spawn(f"msr{self.spawned}", _prog(off_on), cpu, AddressSpace())
        self.spawned += 1

    @precondition(lambda self: self.spawned < MAX_TASKS)
    @rule()
    def cpu1_goes_offline(self):
        c = self.kernel.cpus[1]

        def offline():
            yield Cli()
            yield from pv.kvm_guest_cpu_offline(c)
            yield Sti()
        self.kernel.spawn(f"off{self.spawned}", _prog(offline), 1, AddressSpace())
        self.spawned += 1

    @precondition(lambda self: self.spawned < MAX_TASKS)
    @rule(cpu=st.integers(0, 1))
    def vmm_resets_vcpu(self, cpu):
        vmm_reset_vcpu(self.m, self.kernel, cpu)
        self.spawned += 1

    @rule(n=st.integers(1, 2))
    def host_reclaims(self, n):
        self.m.mm.reclaim(n)

    @invariant()
    def registry_holds(self):
        # a generation's documented behaviour (2.6.38's late wake-all, the seed's uncancelled swap-ins) is not
        # a model error
        found = [v for v in self.checker.violations if v.name not in self.known]
        if found:
            self._fail(found)

    def teardown(self):
        m = self.m
        end = m.env.now + 20_000_000
        while any(t.state != "X" for t in self.kernel.tasks) and m.env.now < end:
            m.run(m.env.now + 100_000)
        self.checker.enabled = False
        m.shutdown()
        self.checker.enabled = True
        # dummies dropped by wake-all are a known 2.6.38 leak (arch/x86/kernel/kvm.c@v2.6.38 apf_task_wake_all), not judged here; so are the
        # stale dummies a known behaviour leaves (the seed's page-ready after re-registration)
        ends = [v for v in self.checker.check_end(shut_down=True)
                if not (v.name == "nothing_leaks" and "dummy" in v.detail and "sleeping" not in v.detail)]
        if ends:
            self._fail(ends)


class SeedAsyncPfMachine(AsyncPfMachine):
    """The same rules on the seed generation (MSR 0x13, no broadcast, no hash, no APF halt)."""

    generation = "seed"


class InterruptAsyncPfMachine(AsyncPfMachine):
    """The same rules on the interrupt era (6.18), plus a guest thread that runs a while with its LAPIC off."""

    generation = "interrupt"

    @precondition(lambda self: self.spawned < MAX_TASKS)
    @rule(ns=st.sampled_from([1_000, 20_000, 200_000]))
    def guest_runs_with_lapic_off(self, ns):
        prog = _prog(_wrmsr(X2APIC_SPIV, 0xFF), Work(ns), _wrmsr(X2APIC_SPIV, 0x1FF))
        self.kernel.spawn(f"spiv{self.spawned}", prog, 0, AddressSpace())
        self.spawned += 1


STATE_MACHINES = {"legacy": AsyncPfMachine, "seed": SeedAsyncPfMachine, "interrupt": InterruptAsyncPfMachine}


SMALL = dict(max_examples=40, stateful_step_count=12)


@dataclass
class StatefulResult:
    failed: bool
    invariants: list[str] = field(default_factory=list)   # broken in the failing run (empty if none / raised)
    error: str = ""                                        # the failure, one line
    seconds: float = 0.0


def run_stateful(patch: Callable[[], Any] | None, *, max_examples: int = SMALL["max_examples"],
                 stateful_step_count: int = SMALL["stateful_step_count"], shrink: bool = False,
                 generation: str = "legacy") -> StatefulResult:
    """Run the state machine derandomized under ``patch`` (a mutant's bug); which invariants did the failing run break?

    Quiet (Hypothesis' falsifying-example report is swallowed), ``database=None``,
    and without shrinking by default: the question is *whether* it fails and how.
    """
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    s = settings(max_examples=max_examples, stateful_step_count=stateful_step_count, derandomize=True,
                 deadline=None, database=None, report_multiple_bugs=False, verbosity=Verbosity.quiet,
                 phases=phases, suppress_health_check=list(HealthCheck))
    t0 = time.perf_counter()
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
                (patch() if patch is not None else contextlib.nullcontext()):
            run_state_machine_as_test(STATE_MACHINES[generation], settings=s)
    except InvariantFailure as exc:
        return StatefulResult(True, list(exc.names), str(exc).splitlines()[0][:200], time.perf_counter() - t0)
    except Exception as exc:  # the model itself raised under the bug: a failure, but of no invariant
        return StatefulResult(True, [], f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
                              time.perf_counter() - t0)
    return StatefulResult(False, [], "", time.perf_counter() - t0)
