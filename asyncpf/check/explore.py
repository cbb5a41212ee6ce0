"""Exhaustive exploration of the orderings a small configuration allows.

The engine asks its choice policy whenever several steps are due at the same
instant and priority (:meth:`asyncpf.sim.Environment._choose`).  A schedule
is the list of choices made at those points; :class:`asyncpf.sim.ReplayPolicy`
re-runs the whole machine under one.  The explorer is a depth-first search
over schedules (stateless model checking): run with a prefix, take FIFO
beyond it, record every choice point met, and push the untried alternatives
of every *new* point.

Pruning is by state hashing: at each new choice point the canonical state
summary (:func:`state_key` -- the clock, the queue by label and what each
entry acts on, the entries due now as a set, the host's per-vcpu async-PF
state with each item's id, the workqueue's slots, the swap device's waiting
requests, the gfn hash, the guest's tasks, contexts and sleepers, the reason
words, the page states, the token ledger) is looked up;
a state already expanded is not expanded again and the run stops there (its
continuations were or will be explored from the first visit).  Interleavings
of independent steps that commute reach the same summary and merge -- a
cheap stand-in for partial-order reduction.  The summary abstracts away
generator internals; what a process will do next is represented by its
queue entry and the guest contexts' pending operations.

Every invariant is checked on every step of every schedule, once: a run
replays a prefix that an earlier run met and judged (same machine, same
steps), so on the prefix only the predicates that remember between steps
run (:func:`asyncpf.check.checker.remembers`), and at its last choice the
checker takes the violations that run had there.  The teardown (checker
frozen, only the end invariants after it) is hashed with the ledger where
it starts and at its choice points (:func:`_prune_known_ends`): orderings
that end in the same state are expanded once.  ``explore(reference=True)``
is the plain explorer (every step of every run judged, no teardown keys),
kept as the oracle this one is held to: same states, violations and
counterexamples (``tests/test_explore_equivalence.py``).

Not done, and why.  *Checkpoints by fork* instead of replay: each run's CPU
time is split into phases (:data:`PHASES`, ``Report.cpu``), and
``asyncpf bench-explore`` (:mod:`asyncpf.check.bench`) derives from the split
what a faster way back to a choice point could reach.  On this project's
machines (2 shared cores in a VM) a fork, _exit and waitpid of the explorer
process costs 3.4-7 ms of CPU (parent and child), about what or more than
build, boot and replay cost together (2.5 + 1.5 ms a schedule on the fast
configurations), before the child's copy-on-write faults and sending its
states back; and even a free way back leaves the judged steps (~180-230 us
each), the keys (~300 us) and the teardown: at most ~390-570 distinct states
per CPU second.  *State keys after
every step* before the teardown: a key costs more than a step (~0.25 ms),
and the predicates' memory holds model objects, so a key with the checker's
history cannot be made; a key without it would prune runs the choice-point
keys let through, and with them violations that depend on history.
*Sleep sets*: steps are Python callbacks on shared objects with no declared
read/write sets, so no independence relation can be argued sound; converging
orders merge through the state keys instead.

A key must hold everything that decides the future, or two states with
different futures merge and the search never meets what lies behind the
second; and it must hold nothing that does not, or one state counts as two
depending on the path.  Searching in parts (:class:`PartsSearch`: each part
prunes only against the states met before its round) is the check: the
parts must meet exactly the states the whole search meets.  It found one gap
of each kind -- the key named work items by their vcpu, token and gfn but
not by their id, which the workqueue's slots and the workers' labels use;
and it took the due entries in the order they were scheduled, which only
numbers the choices (:func:`due_key`) -- and now agrees on every
configuration (``tests/test_explore_parts.py``).

The report gives schedules run, distinct states (at choice points), the
teardown states keyed, time, states/s, schedules per state, every invariant
broken on some schedule (``violated``), and the shortest violating
schedule, which :func:`replay` reproduces exactly (trace text included).
A configuration runs the protocol generation it names
(``ModelConfig.generation``).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from functools import partial
from dataclasses import dataclass, field, fields, is_dataclass
from time import process_time
from typing import Any, Callable

import numpy as np

from ..guest import kvm as pv
from ..host import x86
from ..host.kvm_main import gfn_to_hva
from ..sim import Event, Process, ReplayPolicy, describe
from .checker import Checker, Livelock, reason_word, remembers, token_slot
from .invariants import Violation
from .models import CONFIGS, PROBE_TASK, Built, ModelConfig, build


# Where a run's CPU time goes (:class:`_PhaseClock`): building and booting the machine (the boot's steps included,
# judged or not: ``boot_steps``), replaying the prefix beyond the boot (only the remembering predicates run), the steps
# beyond the prefix (every invariant), the state keys at choice points before the teardown, the teardown (its own
# keys included).
PHASES = ("build", "replay", "judged", "keys", "teardown")


class _PhaseClock:
    """A run's CPU time split into :data:`PHASES`; the policy's state keys counted apart from the phase they fall in.

    Measured with ``time.process_time`` at the few places a run changes phase (a handful of calls per run, against
    milliseconds of work): it tells what a schedule costs and so what a faster way back to a choice point could
    gain (``asyncpf bench-explore``).
    """

    def __init__(self, policy: "ExplorePolicy"):
        self.policy = policy
        self.cpu = dict.fromkeys(PHASES, 0.0)
        self.phase = "build"
        self.t, self.k = process_time(), 0.0

    def enter(self, phase: str) -> None:
        t, k = process_time(), self.policy.key_cpu
        self.cpu[self.phase] += (t - self.t) - (k - self.k)
        self.phase, self.t, self.k = phase, t, k

    def stop(self) -> dict[str, float]:
        self.enter(self.phase)
        self.cpu["keys"] += self.policy.key_cpu   # no phase is entered as "keys": the policy times its own
        return self.cpu


class _Pruned(Exception):
    """Raised from the policy to abandon a run that reached an already expanded state."""


class ExplorePolicy(ReplayPolicy):
    """ReplayPolicy that hashes the state at every new choice point and stops on a visited one.

    ``on_new_point(k)`` runs at each choice point kept beyond the prefix; ``on_prefix_end()`` once the last
    choice of the prefix is taken (every step from there on is new to the exploration).
    """

    def __init__(self, choices: list[int], visited: set | None, key_fn: Any = None,
                 on_new_point: Any = None, on_prefix_end: Any = None):
        super().__init__(choices)
        self.visited = visited
        self.key_fn = key_fn
        self.new_states = 0
        self.keys = 0          # state keys made at choice points, and the CPU seconds they took
        self.key_cpu = 0.0
        self.on_new_point = on_new_point
        self.on_prefix_end = on_prefix_end

    @property
    def beyond_prefix(self) -> bool:
        return len(self.points) >= len(self.choices)

    def choose(self, env: Any, labels: list[str]) -> int:
        k = len(self.points)
        if k >= len(self.choices):
            if self.visited is not None and self.key_fn is not None:
                t0 = process_time()
                summary = self.key_fn()
                if summary is not None:
                    key = digest((summary, due_key(env.due)))
                    self.keys += 1
                    self.key_cpu += process_time() - t0
                    if key in self.visited:
                        raise _Pruned
                    self.visited.add(key)
                    self.new_states += 1
            if self.on_new_point is not None:
                self.on_new_point(k)
        taken = super().choose(env, labels)
        if k == len(self.choices) - 1 and self.on_prefix_end is not None:
            self.on_prefix_end()
        return taken


@dataclass
class RunResult:
    choices: list[int]
    points: list[tuple[tuple[str, ...], int]]
    violations: list[Violation]
    pruned: bool
    steps: int
    built: Built | None = None
    # point -> (violations, counts) the checker held when the point was met, where any (see ``execute``)
    inherited: dict[int, tuple[list[Violation], Counter]] = field(default_factory=dict)
    replayed_steps: int = 0     # steps of the prefix, run again but not judged (judge_prefix=False)
    keys: int = 0               # state keys made at choice points before the teardown
    boot_steps: int = 0         # steps taken while the machine was built and booted (their time is "build")
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    known_leaks: tuple[str, ...] = ()   # the generation's own leaks its teardown reproduced (Machine.known_leak_names)

    @property
    def phase_steps(self) -> dict[str, int]:
        """The run's steps by the phase their time is in: the boot's in build, then the replayed, then the judged."""
        past_prefix = max(self.replayed_steps, self.boot_steps)
        return {"build": self.boot_steps, "replay": past_prefix - self.boot_steps, "judged": self.steps - past_prefix}

    @property
    def schedule(self) -> list[int]:
        """The choices actually taken (the replayable list), trailing FIFO choices dropped."""
        taken = [t for _, t in self.points]
        while taken and taken[-1] == 0:
            taken.pop()
        return taken

    def trace_text(self) -> str:
        m = self.built.machine if self.built else None
        return m.tracer.text() if m is not None and m.tracer is not None else ""


def state_key(m: Any, gfns: tuple[int, ...]) -> tuple:
    """A canonical, hashable summary of everything that decides the future of the run."""
    k = m.guest
    env = m.env
    now = env.now
    queue = tuple(sorted((e[0] - now, e[1], describe(e), repr(_pending_identity(e))) for e in env._queue))
    vcpus = []
    for v in m.vcpus:
        a = v.arch
        apf = v.async_pf
        exc = a.exception
        vcpus.append((
            v.mode, v.requests, v.stopped, v.reset_pending, a.mp_state, a.apf.halted, a.apf.msr_val, a.apf.id,
            a.cpl, a.rflags_if, a.cr2, (exc.pending, exc.nr, exc.reinject), tuple(sorted(v.irr)),
            # with each item's id: the workqueue's slots, its pending list and the workers' labels name items by id
            tuple((w.id, w.arch.token, w.arch.gfn, w.state) for w in apf.queue),
            tuple((w.id, w.arch.token, w.state) for w in apf.done), apf.queued,
            tuple(sorted(g for g in a.apf.gfns.tolist() if g != x86.GFN_SLOT_EMPTY)),   # tolist: ints in C
            reason_word(m, v),
            # the interrupt era's state: MSRs, page-ready in flight, the token slot, the LAPIC
            a.apf.msr_en_val, a.apf.msr_int_val, a.apf.pageready_pending, token_slot(m, v),
            tuple(sorted(v.isr)), v.apic_sw_enabled,
        ))
    cpus = []
    for c in k.cpus:
        cpus.append((c.rq.curr.pid if c.rq.curr else None, c.need_resched, tuple(t.pid for t in c.rq.queue),
                     c.apf_enabled))
    tasks = tuple((t.pid, t.state, t.preempt_count, t.on_rq,
                   tuple((ctx.name, repr(ctx.op)) for ctx in t.stack)) for t in k.tasks)
    idle = tuple(tuple((ctx.name, repr(ctx.op)) for ctx in c.idle.stack) for c in k.cpus)
    nodes = tuple(sorted((n.token, n.cpu, n.halted, n.task.pid if n.task else -1)
                         for n in pv.all_nodes(k.sleepers)))
    pages = tuple(int(m.mm.page_state(gfn_to_hva(m.kvm, g))) for g in gfns)
    sptes = tuple(int(m.kvm.spte_pfn[g]) >= 0 for g in gfns)
    swap = m.mm.swap   # requests waiting for the device, in the order it will serve them
    waiting_io = tuple((op, npages, _identity(on_done)) for op, npages, on_done in swap._queue)
    # which worker slot runs which item: a blocked worker is in no queue entry, yet its slot names the next one's
    wq = (tuple(w.id for w in m.workqueue.pending),
          tuple(sorted((wid, slot) for wid, (_w, slot) in m.workqueue.running.items())))
    hostsched = getattr(m.kvm, "hostsched", None)  # hostsched: who runs on which host CPU decides the future too
    return (now, queue, tuple(vcpus), tuple(cpus), tasks, idle, nodes, pages, sptes, wq, waiting_io,
            m.kvm.stat.async_pf_allocated - m.kvm.stat.async_pf_freed, m.kvm.users_count, m.kvm.stat.mm_count,
            hostsched.state_key() if hostsched is not None else None)


def due_key(due: list) -> tuple:
    """The entries due at a choice point, for the state key: each by its label and what it acts on, in sorted
    order.  The order they are offered in is that of their scheduling, which two paths to one state need not
    share; the search tries every one of them first either way, so it decides nothing but the choices' numbering
    (a key with the labels in offered order made two paths to one state count as two, and a search in parts then
    met different states from the whole search)."""
    return tuple(sorted((describe(e), repr(_pending_identity(e))) for e in due))


def digest(key: tuple) -> bytes:
    """A state key as the visited sets hold it: 16 bytes of BLAKE2b over its repr (canonical for the ints, strings,
    None and tuples a key is made of).  A search in parts ships its sets between processes every round, and a
    key's tuple is kilobytes; two different keys share a digest with odds of about n^2 / 2^129."""
    return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


def _pending_identity(entry: tuple) -> Any:
    """What a queue entry will act on, beyond its label (keys hold its repr: one label may carry None, a string or
    a tuple, which do not sort together): a swap completion's request (which page it reads, which
    write-back it ends), a timer's vcpu.  Two entries with one label and one due time are otherwise told apart by
    nothing, and which one runs first decides the future.  No configuration has needed it yet (the items' ids
    were what two merged states differed in), but the key must not rest on that."""
    target, arg = entry[3], entry[4]
    if target.__class__ is Process:
        return None
    if isinstance(arg, tuple):
        return tuple(_identity(a) for a in arg)
    closure = getattr(target, "__closure__", None)
    return tuple(_identity(c.cell_contents, shallow=True) for c in closure) if closure else _identity(arg)


def _identity(x: Any, shallow: bool = False) -> Any:
    """A canonical, hashable stand-in for a callback's argument: values as they are, an event by its name, a
    ``functools.partial`` by its function and arguments, a vcpu by its id; anything else by its type."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, Event):
        return ("event", x.name)
    if isinstance(x, np.ndarray):
        return tuple(x.tolist())
    vcpu_id = getattr(x, "vcpu_id", None)
    if isinstance(vcpu_id, int):
        return ("vcpu", vcpu_id)
    if not shallow and isinstance(x, partial):
        return (x.func.__qualname__, tuple(_identity(a, True) for a in x.args))
    if not shallow and isinstance(x, (tuple, list)):
        return tuple(_identity(a, True) for a in x)
    return type(x).__name__


def execute(cfg: ModelConfig, choices: list[int] = (), *, visited: set | None = None,
            trace: bool = False, patch: Any = None,
            setup: Any = None, stop_on_violation: bool = True, judge_prefix: bool = True,
            inherited: tuple[list[Violation], Counter] | None = None, end_states: set | None = None) -> RunResult:
    """Run ``cfg`` once under ``choices`` (FIFO beyond them) with every invariant checked.

    ``patch`` is a context manager factory (a mutant's monkeypatch) entered
    around the whole run.  With ``visited`` the run stops early at a state
    already expanded (``pruned``).

    ``judge_prefix=False``: the steps up to the last choice of ``choices``
    were judged in the run that met that choice point (same machine, same
    steps), so only the predicates that remember between steps run on them;
    at that point the checker takes the violations and counts that run had
    there (``inherited``, from its ``RunResult.inherited``).  With
    ``end_states`` the teardown is hashed too: see :func:`_prune_known_ends`.
    """
    holder: dict[str, Any] = {}
    inherited_at: dict[int, tuple[list[Violation], Counter]] = {}

    def note_violations(k: int) -> None:
        c = holder["checker"]
        if c.counts:
            inherited_at[k] = (list(c.violations), Counter(c.counts))

    def judge_from_here() -> None:
        c = holder["checker"]
        if not c.judging:
            holder["replayed"] = c.steps
            clock = holder["clock"]
            if clock.phase != "build":   # a prefix that ends in the boot: the rest of the build stays "build"
                clock.enter("judged")
            c.judging = True
            c.violations = list(inherited[0]) if inherited else []
            c.counts = Counter(inherited[1]) if inherited else Counter()

    policy = ExplorePolicy(list(choices), visited,
                           lambda: state_key(holder["m"], cfg.memory_pages) if "m" in holder else None,
                           on_new_point=note_violations, on_prefix_end=judge_from_here)

    def before_boot(m: Any) -> None:
        holder["m"] = m
        holder["checker"] = c = Checker(m, m.guest).attach()  # boot is checked too
        c.judging = judge_prefix or not choices
        view = c.view
        view.answer_bound_ns, view.grace_ns = cfg.answer_bound_ns, cfg.grace_ns
        view.step_budget, view.instant_budget = cfg.step_budget, cfg.instant_budget
        view.probe_task = PROBE_TASK if cfg.probe_msrs else None
        if setup is not None:
            setup(m, c)

    ctx = patch() if patch is not None else _null()
    pruned = False
    b = None
    clock = holder["clock"] = _PhaseClock(policy)
    with ctx:
        try:
            b = build(cfg, policy=policy, trace=trace, before_boot=before_boot,
                      on_vmm_msr=lambda *access: holder["checker"].on_vmm_msr(*access))
            checker = holder["checker"]
            holder["boot_steps"] = checker.steps
            clock.enter("judged" if checker.judging else "replay")
            m = b.machine
            end = m.env.now + cfg.limit_ns
            while any(t.state != "X" for t in b.tasks) and m.env.now < end:
                if stop_on_violation and checker.violations:
                    break
                if b.kernel.panicked:
                    break
                m.run(min(m.env.now + 50_000, end))
            if not (stop_on_violation and checker.violations):
                clock.enter("teardown")
                checker.enabled = False
                holder.pop("m")            # no choice-point states during the teardown
                if end_states is not None:
                    _prune_known_ends(m, checker, policy, end_states, cfg.memory_pages)
                m.shutdown()
                holder["known_leaks"] = tuple(m.known_leak_names())
                checker.enabled = True
                checker.check_end(shut_down=True)
        except _Pruned:
            pruned = True
        except Livelock:
            pass    # the checker has recorded schedule_makes_progress; this schedule ends here
    checker = holder["checker"]
    replayed = holder.get("replayed", 0 if checker.judging else checker.steps)
    return RunResult(list(choices), list(policy.points), checker.violations, pruned, checker.steps, b,
                     inherited_at, replayed, policy.keys, holder.get("boot_steps", checker.steps), clock.stop(),
                     holder.get("known_leaks", ()))


def _prune_known_ends(m: Any, checker: Checker, policy: ExplorePolicy, end_states: set,
                      gfns: tuple[int, ...]) -> None:
    """Hash the teardown where it starts and at each of its new choice points; stop at a state reached before.

    During the teardown the checker is frozen and only the end invariants
    run after it, on the machine and the ledger.  So the outcome of every
    teardown from a state is decided by (the ledger, :func:`state_key`, what
    :meth:`~asyncpf.machine.Machine.leaks` counts); a state met again was
    expanded, with all its orderings, the first time.  Without a canonical
    ledger (an end invariant that remembers more) nothing is pruned.  Only
    where orderings can meet is worth a key (a key costs several teardown
    steps): the start, and the choice points.
    """
    ledger = end_key(checker)
    if ledger is None:
        return

    def prune_if_seen() -> None:
        key = digest((ledger, state_key(m, gfns), tuple(m.leaks())))
        if key in end_states:
            raise _Pruned
        end_states.add(key)

    if policy.beyond_prefix:
        prune_if_seen()
    note_violations = policy.on_new_point

    def on_new_point(k: int) -> None:
        prune_if_seen()
        note_violations(k)

    policy.on_new_point = on_new_point


def end_key(checker: Checker) -> tuple | None:
    """What the end invariants read of the checker's history, canonical (None: they read more than the ledger)."""
    if any(remembers(inv) for inv in checker.end):
        return None
    try:
        return canonical(checker.view.ledger)
    except TypeError:
        return None


def canonical(x: Any) -> Any:
    """A hashable value equal for equal contents: dicts and sets sorted, dataclasses by field."""
    if x is None or isinstance(x, (bool, int, float, str, bytes)):
        return x
    if isinstance(x, dict):
        return tuple(sorted(((canonical(k), canonical(v)) for k, v in x.items()), key=repr))
    if isinstance(x, (set, frozenset)):
        return tuple(sorted((canonical(v) for v in x), key=repr))
    if isinstance(x, (list, tuple)):
        return tuple(canonical(v) for v in x)
    if is_dataclass(x):
        return (type(x).__name__,) + tuple(canonical(getattr(x, f.name)) for f in fields(x))
    raise TypeError(f"no canonical form for {type(x).__name__}")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


@dataclass
class Report:
    config: str
    generation: str = "legacy"
    schedules: int = 0
    pruned: int = 0
    states: int = 0
    steps: int = 0
    seconds: float = 0.0
    complete: bool = True
    violations: list[Violation] = field(default_factory=list)   # those of the shortest counterexample
    violated: dict[str, Violation] = field(default_factory=dict)  # first of each invariant, over every schedule
    counterexample: list[int] | None = None
    counterexample_trace: str = ""
    max_points: int = 0
    end_states: int = 0       # distinct teardown states hashed (0 for the reference explorer)
    replayed_steps: int = 0   # of ``steps``, those of replayed prefixes (judged by the remembering predicates only)
    keys: int = 0             # state keys made at choice points before the teardown: one per distinct state, one per
    #                           run pruned at one
    phase_steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("build", "replay", "judged"), 0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))  # CPU seconds per phase
    known_leaks: set[str] = field(default_factory=set)   # the generation's own leaks some teardown reproduced

    def add_run(self, r: "RunResult | Report") -> None:
        """Count a run's (or a part's) steps, keys, CPU time and reproduced known leaks in."""
        self.known_leaks.update(r.known_leaks)
        self.steps += r.steps
        self.replayed_steps += r.replayed_steps
        self.keys += r.keys
        for phase, n in r.phase_steps.items():
            self.phase_steps[phase] += n
        for phase, s in r.cpu.items():
            self.cpu[phase] += s

    @classmethod
    def combined(cls, reports: list["Report"]) -> "Report":
        """Several searches' reports added up: schedules, states, steps, keys, seconds and CPU by phase."""
        total = cls("+".join(r.config for r in reports), complete=all(r.complete for r in reports))
        for r in reports:
            total.schedules += r.schedules
            total.pruned += r.pruned
            total.states += r.states
            total.seconds += r.seconds
            total.add_run(r)
        return total

    @property
    def states_per_s(self) -> float:
        """Distinct states per wall second: the explorer's speed (on a shared machine, compare within one run)."""
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def schedules_per_state(self) -> float:
        """Runs per distinct state: what each state costs in schedules (replay work, or pruned duplicates)."""
        return self.schedules / self.states if self.states else float(self.schedules)

    def as_dict(self) -> dict:
        return {"config": self.config, "generation": self.generation, "schedules": self.schedules,
                "pruned": self.pruned, "distinct_states": self.states, "steps": self.steps,
                "seconds": round(self.seconds, 3), "states_per_s": round(self.states_per_s, 1),
                "schedules_per_state": round(self.schedules_per_state, 2),
                "complete": self.complete, "max_choice_points": self.max_points, "end_states": self.end_states,
                "replayed_steps": self.replayed_steps, "state_keys": self.keys,
                "steps_by_phase": dict(self.phase_steps),
                "cpu_s": {phase: round(s, 4) for phase, s in self.cpu.items()},
                "violations": [v.as_dict() for v in self.violations],
                "violated": sorted(self.violated), "counterexample": self.counterexample,
                "known_leaks_reproduced": sorted(self.known_leaks)}

    def summary(self) -> str:
        verdict = "clean" if not self.violated else \
            f"{len(self.violated)} violation(s): " + ", ".join(sorted(self.violated))
        if self.known_leaks:   # expected, and named: the generation's own (asyncpf.check.known.KNOWN_LEAKS)
            verdict += f" (reproduces the generation's own leak: {', '.join(sorted(self.known_leaks))})"
        budget = "" if self.complete else " (budget hit)"
        return (f"{self.config} [{self.generation}]: {self.schedules} schedules ({self.pruned} pruned), "
                f"{self.states} distinct states, {self.steps} steps, {self.seconds:.2f} s{budget}, "
                f"{self.states_per_s:.0f} states/s, {self.schedules_per_state:.1f} schedules/state -- {verdict}")


def explore(cfg: ModelConfig | str, *, patch: Any = None, setup: Any = None,
            max_schedules: int = 20_000, max_seconds: float = 60.0, stop_at_first: bool = True,
            trace_counterexample: bool = True, reference: bool = False) -> Report:
    """Depth-first search over every schedule of ``cfg``; every invariant on every path.

    Stops at the first violating schedule when ``stop_at_first`` (DFS visits
    short prefixes first along each branch; the counterexample reported is
    the violating schedule with the fewest non-FIFO choices found).

    Each run judges only the steps beyond its replayed prefix and hashes its
    teardown (:func:`_prune_known_ends`).  ``reference=True`` is the plain
    explorer it is held to: every step of every run judged, no teardown
    hashing; same states, violations and counterexamples, more schedules
    (``tests/test_explore_equivalence.py``).
    """
    if isinstance(cfg, str):
        cfg = CONFIGS[cfg]
    search = _Search(cfg, patch=patch, setup=setup, max_schedules=max_schedules, max_seconds=max_seconds,
                     stop_at_first=stop_at_first, reference=reference)
    search.run()
    return search.report(trace_counterexample)


class _Search:
    """The explorer's depth-first search: a stack of prefixes, the states met, the teardowns keyed, the tally."""

    def __init__(self, cfg: ModelConfig, *, patch: Any = None, setup: Any = None, max_schedules: int = 20_000,
                 max_seconds: float = 60.0, stop_at_first: bool = True, reference: bool = False,
                 stack: list | None = None, visited: set | None = None, end_states: set | None = None):
        self.cfg, self.patch, self.setup = cfg, patch, setup
        self.rep = Report(cfg.name, cfg.generation)
        self.max_schedules = max_schedules if cfg.max_schedules is None else min(max_schedules, cfg.max_schedules)
        self.max_seconds, self.stop_at_first, self.reference = max_seconds, stop_at_first, reference
        self.visited: set = set() if visited is None else set(visited)
        self.end_states: set | None = None if reference else set(end_states or ())
        self.stack: list[tuple[list[int], Any]] = [([], None)] if stack is None else list(stack)
        self.best: RunResult | None = None
        self.t0 = time.perf_counter()

    def run(self, until_frontier: int | None = None, pause_after: int | None = None) -> None:
        """Search until the stack is empty, a budget is spent, a violation stops it (``stop_at_first``), with
        ``until_frontier`` the stack holds that many prefixes still to explore, or with ``pause_after`` that many
        schedules have run (the stack keeps the rest)."""
        rep = self.rep
        stack = self.stack
        stop_at = None if pause_after is None else rep.schedules + pause_after
        while stack and (until_frontier is None or len(stack) < until_frontier) and rep.schedules != stop_at:
            if rep.schedules >= self.max_schedules or time.perf_counter() - self.t0 > self.max_seconds:
                rep.complete = False
                break
            prefix, inherited = stack.pop()
            r = execute(self.cfg, prefix, visited=self.visited, patch=self.patch, setup=self.setup,
                        judge_prefix=self.reference, inherited=inherited, end_states=self.end_states)
            rep.schedules += 1
            rep.pruned += r.pruned
            rep.add_run(r)
            rep.max_points = max(rep.max_points, len(r.points))
            if r.violations:
                for v in r.violations:
                    rep.violated.setdefault(v.name, v)
                if self.best is None or _cost(r.schedule) < _cost(self.best.schedule):
                    self.best = r
                if self.stop_at_first:
                    break
            # alternatives at each new point, deepest last so the DFS tries late branches first
            for k in range(len(prefix), len(r.points)):
                labels, _taken = r.points[k]
                base = [t for _, t in r.points[:k]]
                for alt in range(len(labels) - 1, 0, -1):
                    stack.append((base + [alt], r.inherited.get(k)))

    def report(self, trace_counterexample: bool = True) -> Report:
        rep = self.rep
        rep.states = len(self.visited)
        rep.end_states = len(self.end_states or ())
        rep.seconds = time.perf_counter() - self.t0
        if self.best is not None:
            rep.violations = self.best.violations
            rep.counterexample = self.best.schedule
            if trace_counterexample:
                rep.counterexample_trace = replay(self.cfg, self.best.schedule, patch=self.patch,
                                                  setup=self.setup).trace_text()
        return rep


def explore_in_parts(cfg: ModelConfig | str, parts: int, *, round_schedules: int = 50, max_schedules: int = 20_000,
                     max_seconds: float = 60.0, run_parts: Callable[[list[tuple]], list] | None = None) -> Report:
    """Every schedule of ``cfg`` (as ``explore(stop_at_first=False)``), searched by ``parts`` parts in rounds.

    ``run_parts`` maps :func:`explore_round` over a round's argument tuples, results in order (a Dask cluster's
    map; by default one after the other here).  See :class:`PartsSearch`.
    """
    search = PartsSearch(cfg, parts, round_schedules=round_schedules, max_schedules=max_schedules,
                         max_seconds=max_seconds)
    while calls := search.calls():
        search.take(run_parts(calls) if run_parts is not None else [explore_round(*c) for c in calls])
    return search.report()


class PartsSearch:
    """The search of one configuration by ``parts`` parts, in rounds, for a cluster: the same answer as one search.

    A short search here yields the first prefixes to explore.  Each round deals every prefix still to explore
    round robin to the parts; each part (:func:`explore_round`, one task) searches its prefixes' subtrees for up to
    ``round_schedules`` runs, pruning against every state met before the round, and sends back the states it met
    and the prefixes it has left.  A part does not see what another meets in the same round, so some states are
    explored twice (more schedules in all); between rounds all parts learn all states.  The states counted are
    the union, the same as one search's (``tests/test_explore_parts.py``).  Of the violated invariants the first
    met is kept, in part order; the counterexample is a cheapest violating schedule (ties: the earlier part, which
    need not be the one the whole search meets first; on every configuration tested it is).  Its seconds are the
    time of its own tasks, added (the search's work, not its wall time), and ``max_seconds`` is held against
    them.  A search that runs to the end depends on ``parts`` and ``round_schedules`` alone, so it reports the
    same whatever runs the rounds; one cut short by a budget reports what it explored.  A configuration with its
    own cap on schedules is searched by one part, which searches as one search does.
    """

    def __init__(self, cfg: ModelConfig | str, parts: int, *, round_schedules: int = 50,
                 max_schedules: int = 20_000, max_seconds: float = 60.0):
        cfg = CONFIGS[cfg] if isinstance(cfg, str) else cfg
        if CONFIGS.get(cfg.name) is not cfg:
            raise ValueError(f"configuration {cfg.name!r} is not the registered one of that name; expected one of "
                             "CONFIGS (a part looks its configuration up by name)")
        for name, value in (("parts", parts), ("round_schedules", round_schedules)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive number")
        self.parts = 1 if cfg.max_schedules is not None else parts
        self.round_schedules = round_schedules
        self.root = _Search(cfg, max_schedules=max_schedules, max_seconds=max_seconds, stop_at_first=False)
        self.root.run(until_frontier=self.parts)
        self.rep = self.root.rep
        self.rep.seconds = time.perf_counter() - self.root.t0
        self.pending, self.root.stack = self.root.stack, []
        self.best = None if self.root.best is None else (self.root.best.schedule, self.root.best.violations)

    def calls(self) -> list[tuple]:
        """This round's :func:`explore_round` arguments, one tuple per part (none: the search is over)."""
        root, rep = self.root, self.rep
        if not self.pending or not rep.complete:
            return []
        left = root.max_schedules - rep.schedules
        if left <= 0 or rep.seconds > root.max_seconds:   # its own tasks' time: other searches' rounds do not count
            rep.complete = False
            return []
        groups = [g for g in (self.pending[i::self.parts] for i in range(self.parts)) if g]
        groups, held = groups[:left], groups[left:]   # fewer runs left than parts: one each, the rest wait
        self.pending = [item for g in held for item in g]
        per = max(1, min(self.round_schedules, left // len(groups)))
        return [(root.cfg.name, g, root.visited, root.end_states, per) for g in groups]

    def take(self, results: list) -> None:
        """Add up a round's results, in part order."""
        rep, root = self.rep, self.root
        for part, stack, visited, end_states, best in results:
            rep.schedules += part.schedules
            rep.seconds += part.seconds
            rep.pruned += part.pruned
            rep.add_run(part)
            rep.max_points = max(rep.max_points, part.max_points)
            for name, v in part.violated.items():
                rep.violated.setdefault(name, v)
            root.visited |= visited
            root.end_states |= end_states
            self.pending += stack
            if best is not None and (self.best is None or _cost(best[0]) < _cost(self.best[0])):
                self.best = best

    def report(self) -> Report:
        rep = self.rep
        rep.states, rep.end_states = len(self.root.visited), len(self.root.end_states)
        if self.best is not None:
            rep.counterexample, rep.violations = self.best
            rep.counterexample_trace = replay(self.root.cfg, self.best[0]).trace_text()
        return rep


def explore_round(name: str, stack: list, visited: set, end_states: set,
                  schedules: int) -> tuple[Report, list, set, set, tuple | None]:
    """One part's round of a :class:`PartsSearch` (a Dask task): up to ``schedules`` runs from these prefixes.

    Returns its tally, the prefixes it has left, the states and teardowns it met that ``visited`` and
    ``end_states`` did not hold, and its cheapest violating schedule with its violations.
    """
    search = _Search(CONFIGS[name], stop_at_first=False, stack=stack, visited=visited, end_states=end_states)
    search.run(pause_after=schedules)
    search.rep.seconds = time.perf_counter() - search.t0
    best = None if search.best is None else (search.best.schedule, search.best.violations)
    return search.rep, search.stack, search.visited - visited, search.end_states - end_states, best


def _cost(schedule: list[int]) -> tuple[int, int]:
    return (sum(1 for c in schedule if c), len(schedule))


def replay(cfg: ModelConfig | str, choices: list[int], *, patch: Any = None, setup: Any = None) -> RunResult:
    """Re-run one schedule exactly, with the trace kept (ftrace text via ``.trace_text()``)."""
    if isinstance(cfg, str):
        cfg = CONFIGS[cfg]
    return execute(cfg, choices, patch=patch, setup=setup, trace=True)


def fast_configs() -> list[ModelConfig]:
    return [c for c in CONFIGS.values() if c.fast]
