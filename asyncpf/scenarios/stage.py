"""The stage a scenario runs on: results, the registry and ``@scenario``, :class:`Stage`, shared helpers."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..build import Booted, small_guest
from ..guest.kernel import AddressSpace, GuestConfig, GuestKernel
from ..guest.ops import Touch
from ..host import mmu
from ..host.kvm_main import gfn_to_hva
from ..host.mm import PageState
from .. import machine as machine_mod
from ..machine import HostConfig, Machine
from ..timeline import Recorder
from ..trace import Tracer
from ..workloads import steps

FINISH_LIMIT_NS = 5_000_000_000  # a scenario's tasks must all have exited within this much simulated time
APF_EVENTS = ("kvm_try_async_get_page", "kvm_async_pf_not_present", "kvm_async_pf_doublefault",
              "kvm_async_pf_repeated_fault", "kvm_async_pf_completed", "kvm_async_pf_ready", "kvm_inj_exception",
              "kvm_apic_accept_irq", "kvm_msr")


# --- results ---------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ScenarioResult:
    name: str
    machine: Machine | None              # None: a scenario of another arch's vcpu, run without a Machine
    tracer: Tracer | None
    checks: list[Check] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    expected_leaks: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    recorder: Recorder | None = None     # the run's timeline, when run with record=True
    known_leaks: list[str] = field(default_factory=list)   # the generation's own, reproduced (Machine.known_leaks)

    @property
    def unexpected_leaks(self) -> list[str]:
        return [line for line in self.leaks if line not in self.expected_leaks]

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks) and not self.unexpected_leaks

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
                "leaks": list(self.leaks), "expected_leaks": list(self.expected_leaks),
                "known_leaks": list(self.known_leaks), "counts": dict(sorted(self.counts.items()))}


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    generation: str
    body: Callable[["Stage"], None]
    arch: str = "x86"                    # "ppc-book3s": a Book3S vcpu on the generic block/kick, no Machine or trace

    def run(self, seed: int = 0, trace: bool = True, on_built: Callable[["Stage"], None] | None = None,
            record: bool = False) -> ScenarioResult:
        """Run the scenario on a fresh machine; ``on_built(stage)`` is called once it has booted.

        ``record`` keeps the run after boot as a :class:`~asyncpf.timeline.Recorder` (``result.recorder``).
        """
        stage = Stage(self, seed, trace, on_built, record)
        try:
            self.body(stage)
        except Exception as exc:  # the model raised: report it as a failed check, keep the machine
            stage.check("scenario ran to completion", False, f"{type(exc).__name__}: {exc}")
            if stage.m is None and self.arch == "x86":
                raise
        return stage.result()


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, summary: str, generation: str = "legacy", arch: str = "x86"):
    def register(body: Callable[["Stage"], None]) -> Callable[["Stage"], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, summary, generation, body, arch)
        return body

    return register


def get(name: str) -> Scenario:
    if name not in SCENARIOS:
        close = difflib.get_close_matches(name, SCENARIOS, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(SCENARIOS)}"
        raise KeyError(f"unknown scenario {name!r}{hint}")
    return SCENARIOS[name]


# --- the stage a scenario runs on -------------------------------------------------------

class Stage:
    """One scenario run: builds the machine, hooks the trace, collects checks, finishes.

    ``on_built(stage)``, if given, is called once the machine has booted and
    before the scenario spawns anything (a caller watching the run attaches
    there).  With ``record`` the run after boot goes through a
    :class:`~asyncpf.timeline.Recorder`.
    """

    def __init__(self, sc: Scenario, seed: int, trace: bool, on_built: Callable[["Stage"], None] | None = None,
                 record: bool = False):
        self.sc = sc
        self.seed = seed
        self.trace = trace
        self.on_built = on_built
        self.record = record
        self.recorder: Recorder | None = None
        self.checks: list[Check] = []
        self.expected_leaks: list[str] = []
        self.events: Counter = Counter()          # every tracepoint hit (kept even with trace=False)
        self.hooks: list[Callable[[int, str, dict], None]] = []
        self.booted: Booted | None = None
        self.m: Machine | None = None
        self.kernel: GuestKernel | None = None
        self.leaks: list[str] = []
        self.known_leaks: list[str] = []
        self.counts: dict[str, int] = {}         # what a scenario without a Machine reports as its counts

    # set-up
    def build(self, *, vcpus: int = 1, pv: bool = True, preemptible: bool = True, swap: str = "nvme_gen4",
              workers: int | None = None, guest_generation: str | None = None,
              before_boot: Callable[[Machine], None] | None = None) -> Machine:
        """The small guest (build.small_guest) of this scenario's generation and seed, booted.

        ``guest_generation``: the guest kernel's async PF code when it differs from the host's (an old guest
        on a new host); ``before_boot(machine)`` runs before anything runs on the machine.
        """
        def prepare(m: Machine) -> None:
            self.m = m                     # hooks may look at the machine while it boots
            self._count_events(m)
            if before_boot is not None:
                before_boot(m)

        # the machine is made through this module's global ``Machine``: check.mutants.scenario_hook swaps it
        self.booted = small_guest(GuestConfig(pv=pv, preemptible=preemptible, generation=guest_generation),
                                  trace=self.trace or self.record, before_boot=prepare, make_machine=Machine,
                                  generation=self.sc.generation, vcpus=vcpus, swap_device=swap, workers=workers,
                                  seed=self.seed)
        self.m, self.kernel = self.booted.machine, self.booted.kernel
        return self._built(Recorder(self.m, self.kernel) if self.record else None)

    def build_program(self, guest: Callable, *, guest_mem: int, host_limit: int, swap: str = "nvme_gen4",
                      written: tuple[int, int] | None = None) -> Machine:
        """One vcpu running a scripted guest program instead of the guest kernel (``guest(vcpu_id)`` -> GuestCpu).

        ``written = (first_gfn, npages)``: a buffer the guest wrote once before (``Machine.prefault``: what
        does not fit in ``host_limit`` is on swap).  The program starts at once: there is no boot, so every
        event of the run counts (``since_boot`` is since the start).
        """
        host = HostConfig(generation=self.sc.generation, vcpus=1, guest_mem=guest_mem, host_limit=host_limit,
                          swap_device=swap, mmio_pages=0, seed=self.seed)
        # Not the swappable global ``Machine`` of build(): check.mutants.scenario_hook attaches a checker that
        # watches a guest kernel, and this guest is a program; under a mutant its own checks still run.
        self.m = m = machine_mod.Machine(host, guest, trace=self.trace or self.record)
        self._count_events(m)
        if written is not None:
            m.prefault(*written)
        m.start()
        return self._built(Recorder(m) if self.record else None)

    def _built(self, recorder: Recorder | None) -> Machine:
        """The common end of both builds: the recorder, the counts at the start line, the on_built hook."""
        if recorder is not None:
            self.recorder = recorder
        self.boot_events = Counter(self.events)
        self.boot_alloc = self.m.kvm.stat.async_pf_allocated
        if self.on_built is not None:
            self.on_built(self)
        return self.m

    def _count_events(self, m: Machine) -> None:
        inner = m.env.tracer

        def hook(t_ns: int, name: str, fields: dict) -> None:
            if inner is not None:
                inner(t_ns, name, fields)
            self.events[name] += 1
            for fn in list(self.hooks):
                fn(t_ns, name, fields)

        m.env.tracer = hook

    def swapped(self, n: int, start: int = 0) -> list[int]:
        """``n`` buffer gfns that are swapped out on the host now (lowest first)."""
        return self.booted.swapped(n, start)

    def resident_unmapped(self) -> int:
        """A buffer gfn resident on the host but with no spte (the guest never touched it)."""
        array = self.booted.array
        for gfn in range(array.gfn, array.gfn + array.pages):
            if self.m.mm.page_state(gfn_to_hva(self.m.kvm, gfn)) == PageState.RESIDENT \
                    and not mmu.spte_mapped(self.m.vcpus[0], gfn):
                return gfn
        raise RuntimeError("no resident page without an spte")

    def advance(self, until_ns: int) -> None:
        """Run the machine to ``until_ns``, event by event through the recorder when recording."""
        (self.m.run if self.recorder is None else self.recorder.run)(until_ns)

    def gva(self, gfn: int) -> int:
        return self.booted.gva(gfn)

    def spawn(self, comm: str, program: Callable, cpu: int = 0, mm: AddressSpace | None = None):
        return self.booted.spawn(comm, program, cpu, mm)

    def touchers(self, n: int, cpu: int = 0) -> list:
        """``n`` tasks named a, b, ... each touching its own swapped-out page once (so each sleeps on an APF)."""
        return [self.spawn(chr(ord("a") + i), _prog(_touch(self.gva(gfn))), cpu)
                for i, gfn in enumerate(self.swapped(n))]

    def on(self, name: str, fn: Callable[[int, dict], None], once: bool = True) -> None:
        """Call ``fn(t_ns, fields)`` when tracepoint ``name`` fires (the first time only, if ``once``)."""
        def hook(t_ns: int, ev: str, fields: dict) -> None:
            if ev != name:
                return
            if once:
                self.hooks.remove(hook)
            fn(t_ns, fields)

        self.hooks.append(hook)

    def at(self, delay_ns: int, fn: Callable[[], None]) -> None:
        self.m.env.schedule(delay_ns, lambda _arg: fn())

    def since_boot(self, name: str) -> int:
        return self.events[name] - self.boot_events[name]

    # checks
    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def expect_leak(self, line: str, why: str) -> None:
        self.expected_leaks.append(line)
        self.check(f"expected leak: {line}", True, why)

    def finish(self, tasks: list, limit_ns: int = FINISH_LIMIT_NS,
               expect: Callable[[], list[tuple[str, str]]] | None = None) -> None:
        """Run until every task exited, destroy the VM, and check for leaks.

        ``expect`` (called after the run) names leak lines that are the scenario's expected outcome,
        each with why; the leak check then demands exactly those.
        """
        m = self.m
        alive = [f"{t.comm}({t.state})" for t in self.booted.run_until_exited(tasks, limit_ns, self.advance)]
        self.check("every task exited", not alive, "still alive: " + ", ".join(alive) if alive
                   else f"{len(tasks)} tasks exited by t={m.env.now}")
        self.check("guest did not panic", self.kernel.panicked is None, self.kernel.panicked or "")
        self._teardown(expect)

    def finish_program(self, done: Callable[[], bool], what: str, limit_ns: int = FINISH_LIMIT_NS,
                       expect: Callable[[], list[tuple[str, str]]] | None = None) -> None:
        """For :meth:`build_program`: run in 1 ms steps until ``done()`` (checked as ``what``), then as finish."""
        m = self.m
        end = m.env.now + limit_ns
        while not done() and m.env.now < end:
            self.advance(min(m.env.now + 1_000_000, end))
        self.check(what, done(), f"by t={m.env.now}")
        self._teardown(expect)

    def _teardown(self, expect: Callable[[], list[tuple[str, str]]] | None) -> None:
        """Destroy the VM and demand exactly the expected leaks."""
        m = self.m
        m.shutdown()
        self.leaks = m.leaks()
        self.known_leaks = m.known_leaks()   # not counted by leaks(): named, with the kernel's fix
        for line, why in (expect() if expect is not None else []):
            self.expect_leak(line, why)
        missing = [line for line in self.expected_leaks if line not in self.leaks]
        unexpected = [line for line in self.leaks if line not in self.expected_leaks]
        self.check("quiescent after shutdown (leaks)", not unexpected and not missing,
                   "clean" if not self.leaks else
                   f"unexpected: {unexpected}; expected but absent: {missing}" if unexpected or missing
                   else f"only the expected: {self.leaks}")

    def result(self) -> ScenarioResult:
        m = self.m
        if m is None:  # another arch's vcpu: its own checks (quiescence among them) and counts
            return ScenarioResult(self.sc.name, None, None, self.checks, [], [], dict(self.counts))
        counts = {name: self.events[name] for name in APF_EVENTS if self.events[name]}
        counts.update({
            "apf_not_present_injected": sum(v.stat["apf_not_present_injected"] for v in m.vcpus),
            "apf_halts": sum(v.stat["apf_halts"] for v in m.vcpus),
            "async_pf_limit_hits": sum(v.stat["async_pf_limit_hits"] for v in m.vcpus),
            "mmu_notifier_retries": sum(v.stat["mmu_notifier_retries"] for v in m.vcpus),
            "async_pf_allocated": m.kvm.stat.async_pf_allocated,
            "async_pf_alloc_failures": m.kvm.stat.async_pf_alloc_failures,
            "swapins": m.mm.stats["swapins"],
        })
        for key in ("sleeps", "halted_waits", "dummies_created", "dummies_consumed", "dummies_dropped"):
            if self.kernel is not None:  # None: a scripted guest program (build_program)
                counts[f"guest_{key}"] = self.kernel.stats[key]
        for v in m.vcpus:
            for state in ("stalled", "halted"):
                counts[f"vcpu{v.vcpu_id}_{state}_ns"] = v.acct[state]
        return ScenarioResult(self.sc.name, m, m.tracer, self.checks, self.leaks, self.expected_leaks, counts,
                              self.recorder, self.known_leaks)


def _touch(gva: int, *, kernel: bool = False) -> Touch:
    return Touch(gva, True, 0, kernel=kernel)


_prog = steps  # fixed steps; callables among them run as kernel code


