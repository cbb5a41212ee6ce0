"""The historical bugs as mutants the checker must catch.

Each mutant is the correct model with one historical bug put back by a
patch applied from outside: a context manager that replaces one kernel twin
(or wraps it) in its module for the length of a run and puts it back after,
so the twins themselves read like the kernel -- together with the
configuration that exposes it and the invariant it is expected to break.

*Caught* is differential: the expected invariant is violated on some
schedule of the mutant and on no schedule of the correct model in the same
configuration (the correct model may have other, documented violations
there -- ``kernel_touch`` shows 2.6.38's own stray page-ready, bugzilla
208081, which the generation does not promise to avoid).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

from ..abi import BROADCAST_TOKEN, KVM_ASYNC_PF_ENABLED
from ..guest import kvm as pv
from ..guest.ops import Sti
from ..host import async_pf as host_async_pf
from ..host import x86
from ..host.legacy import async_pf as legacy_apf
from ..host.legacy import mmu as legacy_mmu
from ..host.legacy import x86 as legacy_x86
from ..host.seed import mmu as seed_mmu
from ..host import interrupt as irq_host
from ..host.interrupt import async_pf as irq_apf
from ..host.interrupt import lapic as irq_lapic
from ..host.interrupt import mmu as irq_mmu
from ..host.interrupt import x86 as irq_x86
from ..abi import make_token, U32, TOKEN_VCPU_BITS
from .checker import Checker
from .explore import Report, explore
from .models import CONFIGS, ModelConfig


@dataclass
class Mutant:
    name: str
    summary: str
    invariant: str
    config: ModelConfig
    bug: Callable[[], Any]                           # context manager factory: the historical bug, patched in
    harness: Callable[[], Any] | None = None         # context manager factory around both runs (forced situations)
    setup: Callable[[Any, Any], None] | None = None  # (machine, checker) before boot: forced situations
    source: str = ""

    def patch(self) -> Any:
        """The bug and the harness together, as one context manager."""
        return _both(self.bug, self.harness)


# --- patching from outside ------------------------------------------------------------------------

@contextlib.contextmanager
def _replaced(module: Any, name: str, make: Callable[[Callable], Callable]) -> Iterator[None]:
    """Replace ``module.name`` by ``make(original)`` while active (the twins call each other through modules)."""
    original = getattr(module, name)
    setattr(module, name, make(original))
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def _both(first: Callable[[], Any], second: Callable[[], Any] | None) -> Iterator[None]:
    with first(), (second() if second is not None else contextlib.nullcontext()):
        yield


def _no_dummy_node() -> Any:
    """Guest without the dummy node (before v2): a page-ready with nobody waiting is dropped, not remembered."""
    def make(wake: Callable) -> Callable:
        def kvm_async_pf_task_wake(cpu: Any, token: int) -> None:
            if token != BROADCAST_TOKEN and pv._find_apf_task(pv._bucket(cpu, token), token) is None:
                return
            wake(cpu, token)
        return kvm_async_pf_task_wake
    return _replaced(pv, "kvm_async_pf_task_wake", make)


def _not_present_with_apf(field: str, value: Callable[[int], Any]) -> Any:
    """kvm_arch_async_page_not_present run with ``vcpu.arch.apf.<field>`` seen as ``value(actual)``."""
    def make(not_present: Callable) -> Callable:
        def kvm_arch_async_page_not_present(vcpu: Any, work: Any) -> None:
            apf = vcpu.arch.apf
            saved = getattr(apf, field)
            setattr(apf, field, value(saved))
            try:
                not_present(vcpu, work)
            finally:
                setattr(apf, field, saved)
        return kvm_arch_async_page_not_present
    return _replaced(legacy_x86, "kvm_arch_async_page_not_present", make)


def _ready_without_not_present() -> Any:
    """The host sets up the async PF but never tells the guest (as if APF were off), yet page-ready follows."""
    return _not_present_with_apf("msr_val", lambda msr: msr & ~KVM_ASYNC_PF_ENABLED)


@contextlib.contextmanager
def _no_reinjection_check() -> Iterator[None]:
    """can_do_async_pf without its kvm_event_needs_reinjection test, in both generations."""
    def seed_can_do_async_pf(vcpu: Any) -> bool:
        return bool(vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED) and vcpu.arch.cpl != 0

    with _replaced(legacy_mmu, "can_do_async_pf", lambda _orig: x86.kvm_arch_interrupt_allowed), \
            _replaced(seed_mmu, "can_do_async_pf", lambda _orig: seed_can_do_async_pf):
        yield


def _cpl0_without_send_always() -> Any:
    """kvm_arch_async_page_not_present that ignores send_user_only: #PF injected at CPL0 regardless."""
    return _not_present_with_apf("send_user_only", lambda _user_only: False)


def _sti_before_reason() -> Any:
    """The guest's #PF entry enables interrupts before it reads the reason word."""
    def make(entry: Callable) -> Callable:
        def do_async_page_fault(cpu: Any, saved: Any, cr2: int, error_code: int) -> Any:
            yield Sti()
            return (yield from entry(cpu, saved, cr2, error_code))
        return do_async_page_fault
    return _replaced(pv, "do_async_page_fault", make)


def _hash_delete_no_shift() -> Any:
    """kvm_del_async_pf_gfn that only empties the slot: entries probed past it become unreachable."""
    def kvm_del_async_pf_gfn(vcpu: Any, gfn: int) -> None:
        slot = x86.kvm_async_pf_gfn_slot(vcpu, gfn)
        if vcpu.arch.apf.gfns[slot] == gfn:
            vcpu.arch.apf.gfns[slot] = x86.GFN_SLOT_EMPTY
    return _replaced(x86, "kvm_del_async_pf_gfn", lambda _orig: kvm_del_async_pf_gfn)


def _no_clear_on_disable() -> Any:
    """kvm_pv_enable_async_pf(0) that leaves the completion queue alone."""
    def kvm_clear_async_pf_completion_queue(vcpu: Any) -> Any:
        yield from ()
    return _replaced(legacy_apf, "kvm_clear_async_pf_completion_queue", lambda _orig: kvm_clear_async_pf_completion_queue)


def _worker_uses_freed_work() -> Any:
    """async_pf_execute reads its item's hva again after publishing it on ``done``, when the vcpu may have freed it.

    Nothing here reports the read: the poison of a freed item (KASAN's part, asyncpf.host.async_pf.free_work) does.
    """
    def make(tail: Callable) -> Callable:
        def worker_done(work: Any, ctx: Any, addr: int, pfn: int, gva: int) -> None:
            tail(work, ctx, work.addr, pfn, gva)
        return worker_done
    return _replaced(host_async_pf, "worker_done", make)


def _wake_before_wait(machine: Any, checker: Any) -> None:
    """The page-ready for T reaches the guest before its wait for T (forced, as scenario wake_before_wait).

    At the instant KVM traces not-present T, the guest twin
    kvm_async_pf_task_wake(T) runs on cpu 0; KVM's own page-ready for T is
    then taken to *be* that early one (its injection is skipped, see
    :func:`_skip_ready_for_early`), so T is answered exactly once.
    """
    env = machine.env
    inner = env.tracer
    early: set[int] = set()
    machine._check_early_tokens = early
    cpu0 = machine.guest.cpus[0]

    def tracer(t_ns: int, name: str, fields: dict) -> None:
        inner(t_ns, name, fields)
        if name == "kvm_async_pf_not_present" and not early:
            token = fields["token"]
            early.add(token)
            env.schedule(0, lambda _a: pv.kvm_async_pf_task_wake(cpu0, token))
        elif name == "kvm_async_pf_ready" and fields["token"] in early:
            checker.ledger.awaiting[fields["ctx"][2]].pop(fields["token"], None)

    env.tracer = tracer


@contextlib.contextmanager
def _skip_ready_for_early() -> Iterator[None]:
    original = legacy_x86.kvm_arch_async_page_present

    def present(vcpu: Any, work: Any) -> None:
        early = getattr(_machine_of(vcpu), "_check_early_tokens", set())
        if work.arch.token in early:
            apf = vcpu.arch.apf
            saved = apf.msr_val
            apf.msr_val = saved & ~KVM_ASYNC_PF_ENABLED  # trace + hash delete, no second injection
            try:
                original(vcpu, work)
            finally:
                apf.msr_val = saved
            return
        original(vcpu, work)

    legacy_x86.kvm_arch_async_page_present = present
    try:
        yield
    finally:
        legacy_x86.kvm_arch_async_page_present = original


def _machine_of(vcpu: Any) -> Any:
    guest = vcpu.guest
    return getattr(getattr(guest, "kernel", None), "_machine", None) or _MACHINES.get(id(vcpu.kvm))


_MACHINES: dict[int, Any] = {}


def _wake_before_wait_setup(machine: Any, checker: Any) -> None:
    _MACHINES.clear()
    _MACHINES[id(machine.kvm)] = machine
    _wake_before_wait(machine, checker)


# --- the interrupt era's fix history -------------------------------------------------------------------

@contextlib.contextmanager
def _lapic_disabled_spin() -> Iterator[None]:
    """Before the 2021 fix: page-ready dequeued whatever the LAPIC's state, and enabling it asks for nothing."""
    def can_dequeue(vcpu: Any) -> bool:
        return not irq_x86.kvm_pv_async_pf_enabled(vcpu) or irq_x86.apf_pageready_slot_free(vcpu)

    def apic_set_spiv(vcpu: Any, data: int) -> Any:
        vcpu.apic_sw_enabled = bool(data & irq_lapic.APIC_SPIV_APIC_ENABLED)
        return 0
        yield

    with _replaced(irq_x86, "kvm_arch_can_dequeue_async_page_present", lambda _orig: can_dequeue), \
            _replaced(irq_lapic, "apic_set_spiv", lambda _orig: apic_set_spiv):
        yield


def _ack_on_wrong_cpuid_bit() -> Any:
    """Before the 2021 fix of 66570e966dd9: MSR_KVM_ASYNC_PF_ACK gated on KVM_FEATURE_ASYNC_PF, not _INT."""
    def make(handlers: Callable) -> Callable:
        def msr_handlers(spec: Any) -> dict:
            table = handlers(spec)
            table[spec.msr_async_pf_ack] = irq_x86._gated(irq_x86.KVM_FEATURE_ASYNC_PF, irq_x86.msr_async_pf_ack)
            return table
        return msr_handlers
    return _replaced(irq_host, "msr_handlers", make)


def _zero_token() -> Any:
    """Before 2022: the token is (id++ << 12) | vcpu_id even when that is 0 (vcpu 0, a counter at 0 or wrapped)."""
    def alloc_apf_token(vcpu: Any) -> int:
        apf = vcpu.arch.apf
        token = make_token(apf.id, vcpu.vcpu_id)
        apf.id = (apf.id + 1) & (U32 >> TOKEN_VCPU_BITS)
        return token
    return _replaced(irq_mmu, "alloc_apf_token", lambda _orig: alloc_apf_token)


@contextlib.contextmanager
def _lost_kick() -> Iterator[None]:
    """The 2025 race without barriers: each side's load passes its own store (store-load reordering).

    The worker decides on the kick from ``pageready_pending`` as it read it before publishing the item; the ACK
    scans ``done`` before its store that clears ``pageready_pending`` is seen.
    """
    def async_pf_execute(work: Any, ctx: Any) -> Any:
        vcpu = work.vcpu
        kvm = vcpu.kvm
        addr, gva = work.addr, work.gva
        work.state = "running"
        yield kvm.cost("worker_wakeup_ns")
        pfn = yield from kvm.mm.get_user_pages(addr, True)
        kvm.mm.put_page(pfn)
        kvm.stat.async_pf_completed += 1
        pending_seen = vcpu.arch.apf.pageready_pending
        # the stale load is this mutant's own state: put it where the explorer's state summary sees it
        work.done, work.state = True, f"done (saw pageready_pending={pending_seen})"
        yield None
        first = not vcpu.async_pf.done
        vcpu.async_pf.done.append(work)
        if first:
            irq_x86.x86.kvm_make_request(vcpu, irq_x86.KVM_REQ_APF_READY)
            if not pending_seen:
                vcpu.kick()
        kvm.env.trace("kvm_async_pf_completed", ctx=ctx, address=addr, gva=gva)
        vcpu.wake_up()
        vcpu.workqueue.finished(work)
        work.finished.succeed(work.id)

    def msr_async_pf_ack(vcpu: Any, data: int) -> Any:
        if data & 0x1:
            yield from irq_apf.kvm_check_async_pf_completion(vcpu)
            vcpu.arch.apf.pageready_pending = False
        return 0

    with _replaced(irq_host, "async_pf_execute", lambda _orig: async_pf_execute), \
            _replaced(irq_x86, "msr_async_pf_ack", lambda _orig: msr_async_pf_ack):
        yield


# --- the mutants ---------------------------------------------------------------------------

MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("no_dummy_node", "guest without the dummy node: a wake that comes before the wait is lost",
           "no_sleeper_without_pending_work", CONFIGS["one_task"], _no_dummy_node,
           harness=_skip_ready_for_early, setup=_wake_before_wait_setup,
           source="arch/x86/kernel/kvm.c:kvm_async_pf_task_wake (dummy node since v2)"),
    Mutant("ready_without_not_present", "host sends page-ready for a not-present it never injected",
           "ready_only_after_not_present", CONFIGS["one_task"], _ready_without_not_present,
           source="bugzilla 208081; 2020 notpresent_injected"),
    Mutant("no_reinjection_check", "async PF started while an event needs reinjection: two APF #PFs -> #DF",
           "no_two_apf_pf_in_one_entry", CONFIGS["delivery_fault"], _no_reinjection_check,
           source="2a266f23550b (2017)"),
    Mutant("cpl0_without_send_always", "async PF injected at CPL0 although the guest did not ask for SEND_ALWAYS",
           "cpl0_only_with_send_always", CONFIGS["kernel_touch"], _cpl0_without_send_always,
           source="msr.txt bit 1; 2.6.38 send_user_only"),
    Mutant("sti_before_reason", "guest enables interrupts before reading the reason word",
           "reason_read_before_reenable", CONFIGS["one_task"], _sti_before_reason,
           source="msr.txt: read the reason before enabling interrupts"),
    Mutant("hash_delete_no_shift", "gfn hash deletion just empties the slot (no backward shift)",
           "hash_iff_outstanding", CONFIGS["hash_chain"], _hash_delete_no_shift,
           source="arch/x86/kvm/x86.c:kvm_del_async_pf_gfn"),
    Mutant("no_clear_on_disable", "queue not cleared on MSR disable: old work delivered after re-enable",
           "msr_writes_follow_the_abi", CONFIGS["msr_disable"], _no_clear_on_disable,
           source="kvm_pv_enable_async_pf -> kvm_clear_async_pf_completion_queue"),
    Mutant("worker_uses_freed_work", "the worker touches its work item after the vcpu freed it",
           "no_use_after_free", CONFIGS["tick_completion"], _worker_uses_freed_work,
           source="2024 'Always flush async #PF workqueue when vCPU is being destroyed'"),
    Mutant("lapic_disabled_spin", "page-ready sent to a software-disabled LAPIC: the interrupt is dropped, the "
           "slot stays busy and the vcpu spins on a done list it can never drain",
           "page_ready_lapic_enabled", CONFIGS["irq_lapic_off"], _lapic_disabled_spin,
           source="'KVM: x86: Properly handle APF vs disabled LAPIC situation' (2021)"),
    Mutant("ack_on_wrong_cpuid_bit", "MSR_KVM_ASYNC_PF_ACK gated on KVM_FEATURE_ASYNC_PF instead of _INT",
           "pv_msrs_gated_by_cpuid", CONFIGS["irq_msr_probe"], _ack_on_wrong_cpuid_bit,
           source="2021 fix of 66570e966dd9 'only provide PV features if enabled in guest's CPUID'"),
    Mutant("zero_token", "token 0 is issued and then reads as a free slot: the next page-ready overwrites it",
           "tokens_non_zero", CONFIGS["irq_two_tasks"], _zero_token,
           source="'KVM: x86/mmu: make apf token non-zero to fix bug' (2022, Msg-Id "
                  "20220210084113.73005-1-zhangliang5@huawei.com)"),
    Mutant("lost_kick", "present_queued and the ACK each read before their store is visible: a completion waits "
           "unkicked while the vcpu runs guest code",
           "completion_kicks_vcpu", CONFIGS["irq_ack_race"], _lost_kick,
           source="'KVM: x86: Fix a semi theoretical bug in kvm_arch_async_page_present_queued' (2025)"),
]}


METHODS = ("explorer", "stateful", "scenario")


@dataclass
class Verdict:
    mutant: str
    invariant: str
    caught: bool                     # caught by at least one method run (with only the explorer: its verdict)
    caught_by: list[str]             # every method that caught it, in METHODS order
    found: list[str]                 # explorer: invariants violated with the bug
    baseline: list[str]              # explorer: ... and without it
    counterexample: list[int] | None  # explorer: the shortest violating schedule (choice list)
    length: int | None               # ftrace lines of that counterexample's trace (kept name; see ftrace_lines)
    report: Report | None = None
    methods: list[str] = field(default_factory=lambda: ["explorer"])
    stateful: dict | None = None     # run_stateful's result with the bug: failed, invariants, error
    scenario: dict | None = None     # per scenario that noticed the bug: failed checks, new invariants

    @property
    def ftrace_lines(self) -> int | None:
        return self.length

    @property
    def choices(self) -> int | None:
        return len(self.counterexample) if self.counterexample is not None else None

    def as_dict(self) -> dict:
        return {"name": self.mutant, "invariant": self.invariant, "caught": self.caught, "caught_by": self.caught_by,
                "methods": self.methods, "violated": self.found, "baseline_violations": self.baseline,
                "counterexample": self.counterexample, "counterexample_choices": self.choices,
                "counterexample_ftrace_lines": self.length, "stateful": self.stateful, "scenario": self.scenario}


def _explore_mutant(mut: Mutant, max_seconds: float) -> tuple[bool, list[str], list[str], Report]:
    baseline = explore(mut.config, setup=mut.setup, patch=mut.harness, stop_at_first=False,
                       max_seconds=max_seconds, trace_counterexample=False)
    rep = explore(mut.config, patch=mut.patch, setup=mut.setup, max_seconds=max_seconds)
    found = sorted(rep.violated)
    base = sorted(baseline.violated)   # on any schedule of the correct model, not only its shortest counterexample
    return mut.invariant in found and mut.invariant not in base, found, base, rep


# --- the stateful method: the Hypothesis state machine with the bug on -------------------------------

STATEFUL_SETTINGS = dict(max_examples=100, stateful_step_count=16)


@lru_cache(maxsize=None)
def _stateful_baseline(max_examples: int, stateful_step_count: int, generation: str = "legacy") -> tuple[str, ...]:
    from .stateful import run_stateful  # imports Hypothesis (~1 s): only when this method runs
    r = run_stateful(None, max_examples=max_examples, stateful_step_count=stateful_step_count, generation=generation)
    return tuple(r.invariants) + (("(raised)",) if r.failed and not r.invariants else ())


def stateful_verdict(mut: Mutant, **settings_: int) -> dict:
    """Caught if the derandomized state machine, bug on, fails with the expected invariant (and without it does not)."""
    from .stateful import run_stateful  # as in _stateful_baseline
    kw = {**STATEFUL_SETTINGS, **settings_}
    generation = mut.config.generation   # the state machine of the mutant's own generation
    r = run_stateful(mut.patch, generation=generation, **kw)
    base = list(_stateful_baseline(kw["max_examples"], kw["stateful_step_count"], generation))
    return {"caught": r.failed and mut.invariant in r.invariants and mut.invariant not in base,
            "failed": r.failed, "invariants": r.invariants, "baseline": base, "error": r.error,
            "seconds": round(r.seconds, 2), **kw}


# --- the scenario method: every named scenario with the bug on and the checker attached ---------------

@contextlib.contextmanager
def scenario_hook() -> Iterator[list]:
    """While active, every scenario machine gets a :class:`Checker` attached.

    The scenarios build their machine in :meth:`asyncpf.scenarios.stage.Stage.build` through the module
    global ``stage.Machine``; this swaps that name for a factory (and puts it back), so neither the
    scenarios nor the stage change.  Yields the list of checkers made, one per machine, in order.
    """
    from ..scenarios import stage

    real = stage.Machine
    checkers: list = []

    def factory(*a: Any, **kw: Any) -> Any:
        m = real(*a, **kw)
        checkers.append(Checker(m, m.guest).attach())
        return m

    stage.Machine = factory
    try:
        yield checkers
    finally:
        stage.Machine = real


def run_scenarios(patch: Callable[[], Any] | None) -> dict[str, dict]:
    """Every scenario under ``patch`` (a mutant's bug): its failed checks and the invariants the checker saw broken."""
    from ..scenarios import SCENARIOS

    out: dict[str, dict] = {}
    for name, sc in SCENARIOS.items():
        with (patch() if patch is not None else contextlib.nullcontext()), scenario_hook() as checkers:
            try:
                res = sc.run(seed=0, trace=False)
                failed = [c.name for c in res.checks if not c.passed]
                failed += [f"unexpected leak: {line}" for line in res.unexpected_leaks]
            except Exception as exc:  # the stage re-raises only if no machine was built
                failed = [f"scenario raised {type(exc).__name__}: {exc}"]
        names: set[str] = set()
        for c in checkers:
            if c.m.shut_down:
                c.check_end(shut_down=True)
            names.update(v.name for v in c.violations)
        out[name] = {"failed_checks": failed, "invariants": sorted(names)}
    return out


@lru_cache(maxsize=None)
def _scenario_baseline() -> dict[str, dict]:
    return run_scenarios(None)


def scenario_verdict(mut: Mutant) -> dict:
    """Caught if some scenario's own checks fail only with the bug, or the checker reports the expected invariant
    in a scenario where the correct model does not break it."""
    base = _scenario_baseline()
    with_bug = run_scenarios(mut.bug)
    by_checks, by_invariant, other = [], [], {}
    for name, r in with_bug.items():
        new_failed = [c for c in r["failed_checks"] if c not in base[name]["failed_checks"]]
        new_inv = [i for i in r["invariants"] if i not in base[name]["invariants"]]
        if new_failed:
            by_checks.append(name)
        if mut.invariant in new_inv:
            by_invariant.append(name)
        if new_failed or new_inv:
            other[name] = {"failed_checks": new_failed, "new_invariants": new_inv}
    return {"caught": bool(by_checks or by_invariant), "by_checks": by_checks, "by_invariant": by_invariant,
            "scenarios": other}


def run_mutant(mut: Mutant | str, *, max_seconds: float = 60.0, methods: Sequence[str] = ("explorer",)) -> Verdict:
    """Run the mutant under each method in ``methods`` (see :data:`METHODS`); report every one that catches it.

    explorer: explore the mutant's configuration with and without the bug; caught = expected invariant only with it.
    stateful: :func:`stateful_verdict`.  scenario: :func:`scenario_verdict`.
    """
    if isinstance(mut, str):
        mut = MUTANTS[mut]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    caught_by: list[str] = []
    found: list[str] = []
    base: list[str] = []
    rep: Report | None = None
    cex: list[int] | None = None
    length: int | None = None
    if "explorer" in methods:
        caught, found, base, rep = _explore_mutant(mut, max_seconds)
        cex = rep.counterexample
        length = len(rep.counterexample_trace.splitlines()) if rep.counterexample is not None else None
        if caught:
            caught_by.append("explorer")
    sv = stateful_verdict(mut) if "stateful" in methods else None
    if sv is not None and sv["caught"]:
        caught_by.append("stateful")
    cv = scenario_verdict(mut) if "scenario" in methods else None
    if cv is not None and cv["caught"]:
        caught_by.append("scenario")
    return Verdict(mut.name, mut.invariant, bool(caught_by), caught_by, found, base, cex, length, rep,
                   methods=[m for m in METHODS if m in methods], stateful=sv, scenario=cv)
