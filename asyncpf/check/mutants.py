"""The historical bugs as mutants the checker must catch.

Each mutant is the correct model with one historical bug switched back on --
a ``kvm.bugs[...]`` switch the model already has, or, where the model has no
switch yet, a documented monkeypatch of the one function involved (applied
only inside :func:`patched`, a context manager, and undone after the run) --
together with the configuration that exposes it and the invariant it is
expected to break.

*Caught* is differential: the expected invariant is violated on some
schedule of the mutant and on no schedule of the correct model in the same
configuration (the correct model may have other, documented violations
there -- ``kernel_touch`` shows 2.6.38's own stray page-ready, bugzilla
208081, which the generation does not promise to avoid).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..abi import KVM_ASYNC_PF_ENABLED
from ..guest import kvm as pv
from ..host import x86
from ..host.mmu import spte_mapped
from .explore import Report, explore
from .models import CONFIGS, DATA_GFN, ModelConfig, TaskSpec


@dataclass
class Mutant:
    name: str
    summary: str
    invariant: str
    config: ModelConfig
    bugs: dict[str, bool] = field(default_factory=dict)
    patch: Callable[[], Any] | None = None           # context manager factory (monkeypatch)
    setup: Callable[[Any, Any], None] | None = None  # (machine, checker) before boot: forced situations
    source: str = ""
    proposed_switch: str = ""                        # the kvm.bugs switch to add to the model, if missing


# --- monkeypatches (first version; see each proposed_switch) --------------------------------------

def _delivery_faults_on_stack(machine: Any, checker: Any) -> None:
    """Force an exit while delivering the #PF: the guest's kernel stack page (swapped out) is touched.

    The guest model assumes its stacks resident; this makes vcpu 0's exception
    delivery fault on the config's page 1 while a not-present #PF is pending --
    the only way the model reaches tdp_page_fault with an event needing
    reinjection (the 2017 #DF bugs).
    """
    cpu = machine.guest.cpus[0]
    stack_gfn = DATA_GFN + 1

    def delivery_gfn(vcpu: Any) -> int | None:
        exc = vcpu.arch.exception
        if exc.pending and exc.nr == x86.PF_VECTOR and not spte_mapped(vcpu, stack_gfn):
            return stack_gfn
        return None

    cpu.delivery_gfn = delivery_gfn


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
    original = x86.kvm_arch_async_page_present

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

    x86.kvm_arch_async_page_present = present
    try:
        yield
    finally:
        x86.kvm_arch_async_page_present = original


def _machine_of(vcpu: Any) -> Any:
    guest = vcpu.guest
    return getattr(getattr(guest, "kernel", None), "_machine", None) or _MACHINES.get(id(vcpu.kvm))


_MACHINES: dict[int, Any] = {}


def _wake_before_wait_setup(machine: Any, checker: Any) -> None:
    _MACHINES.clear()
    _MACHINES[id(machine.kvm)] = machine
    _wake_before_wait(machine, checker)


# --- the mutants ---------------------------------------------------------------------------

STACK_CFG = ModelConfig("delivery_fault", tasks=(TaskSpec((0,)),), note="page 1 is the guest's (swapped) stack")

MUTANTS: dict[str, Mutant] = {m.name: m for m in [
    Mutant("no_dummy_node", "guest without the dummy node: a wake that comes before the wait is lost",
           "no_task_sleeps_forever", CONFIGS["one_task"], {"no_dummy_node": True},
           patch=_skip_ready_for_early, setup=_wake_before_wait_setup,
           source="arch/x86/kernel/kvm.c:kvm_async_pf_task_wake (dummy node since v2)"),
    Mutant("ready_without_not_present", "host sends page-ready for a not-present it never injected",
           "ready_only_after_not_present", CONFIGS["one_task"], {"ready_without_not_present": True},
           source="bugzilla 208081; 2020 notpresent_injected"),
    Mutant("no_reinjection_check", "async PF started while an event needs reinjection: two APF #PFs -> #DF",
           "no_two_apf_pf_in_one_entry", STACK_CFG, {"no_reinjection_check": True}, setup=_delivery_faults_on_stack,
           source="2a266f23550b (2017)"),
    Mutant("cpl0_without_send_always", "async PF injected at CPL0 although the guest did not ask for SEND_ALWAYS",
           "cpl0_only_with_send_always", CONFIGS["kernel_touch"], {"cpl0_without_send_always": True},
           source="msr.txt bit 1; 2.6.38 send_user_only"),
    Mutant("sti_before_reason", "guest enables interrupts before reading the reason word",
           "reason_read_before_reenable", CONFIGS["one_task"], {"sti_before_reason": True},
           source="msr.txt: read the reason before enabling interrupts"),
    Mutant("hash_delete_no_shift", "gfn hash deletion just empties the slot (no backward shift)",
           "hash_iff_outstanding", CONFIGS["hash_chain"], {"hash_delete_no_shift": True},
           source="arch/x86/kvm/x86.c:kvm_del_async_pf_gfn"),
    Mutant("no_clear_on_disable", "queue not cleared on MSR disable: old work delivered after re-enable",
           "hash_iff_outstanding", CONFIGS["msr_disable"], {"no_clear_on_disable": True},
           source="kvm_pv_enable_async_pf -> kvm_clear_async_pf_completion_queue"),
    Mutant("worker_uses_freed_work", "the worker touches its work item after the vcpu freed it",
           "no_use_after_free", CONFIGS["tick_completion"], {"worker_uses_freed_work": True},
           source="2024 'Always flush async #PF workqueue when vCPU is being destroyed'"),
]}


@dataclass
class Verdict:
    mutant: str
    invariant: str
    caught: bool
    caught_by: str
    found: list[str]
    baseline: list[str]
    counterexample: list[int] | None
    length: int | None
    report: Report | None = None

    def as_dict(self) -> dict:
        return {"name": self.mutant, "invariant": self.invariant, "caught": self.caught, "caught_by": self.caught_by,
                "violated": self.found, "baseline_violations": self.baseline,
                "counterexample": self.counterexample, "counterexample_length": self.length}


def run_mutant(mut: Mutant | str, *, max_seconds: float = 60.0) -> Verdict:
    """Explore the mutant's configuration with and without the bug; caught = expected invariant only with it."""
    if isinstance(mut, str):
        mut = MUTANTS[mut]
    base_setup = mut.setup
    base_patch = _skip_ready_for_early if mut.name == "no_dummy_node" else None
    baseline = explore(mut.config, setup=base_setup, patch=base_patch, stop_at_first=False,
                       max_seconds=max_seconds, trace_counterexample=False)
    rep = explore(mut.config, bugs=mut.bugs, patch=mut.patch, setup=mut.setup, max_seconds=max_seconds)
    found = sorted({v.name for v in rep.violations})
    base = sorted({v.name for v in baseline.violations})
    caught = mut.invariant in found and mut.invariant not in base
    length = len(rep.counterexample_trace.splitlines()) if rep.counterexample is not None else None
    return Verdict(mut.name, mut.invariant, caught, "explorer" if caught else "-", found, base,
                   rep.counterexample, length, rep)
