"""Named scenarios: small deterministic machines that each show one async-PF behaviour.

Each scenario builds a tiny host (1-2 vcpus, 8 MiB of guest RAM in a 1 MiB
memory cgroup, an nvme or 2010-HDD swap device), boots the real guest kernel
(:class:`~asyncpf.guest.kernel.GuestKernel`) for 20 ms as ``bm`` does, spawns
a few tasks, forces its situation, and records *checks* -- what it expects
to happen -- instead of stopping at the first failed assert.  Every scenario
ends the same way: run until its tasks have exited, destroy the VM
(:meth:`Machine.shutdown`) and demand :meth:`Machine.leaks` be empty, except
for leak lines a scenario names in advance as the expected consequence.

``python -m asyncpf scenario --list`` lists them; ``python -m asyncpf scenario
NAME [--trace FILE] [--json] [--seed N]`` runs one.

Situations the host cannot produce on its own are forced at exact instants
through a trace hook (a callback when a tracepoint fires; the hook sees every
event whether or not the ftrace text is kept) or by calling the guest/host
twins directly, and each scenario's summary says which.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from . import abi
from .cli import UsageError, command, nonnegative_int
from .guest import kvm as pv
from .guest.kernel import AddressSpace, GuestConfig, GuestKernel
from .guest.ops import PreemptDisable, PreemptEnable, Touch, Work
from .guest.sched import TASK_DEAD
from .host import mmu, x86
from .host.kvm_main import gfn_to_hva
from .host.mm import PageState
from .machine import ERROR_GFN, MMIO_BASE_GFN, MMIO_HOST_PFN, HostConfig, Machine
from .trace import Tracer, render
from .workloads import Array, shared_array, steps

MiB = 1 << 20
BOOT_NS = 20_000_000            # as bm.build: the guest registers async PF and takes the boot wake-all
FINISH_LIMIT_NS = 5_000_000_000  # a scenario's tasks must all have exited within this much simulated time
DATA_PAGES = 512                # prefaulted buffer; the first 256 pages end up swapped out (1 MiB cgroup)
APF_EVENTS = ("kvm_try_async_get_page", "kvm_async_pf_not_present", "kvm_async_pf_doublefault",
              "kvm_async_pf_completed", "kvm_async_pf_ready", "kvm_inj_exception", "kvm_msr")


# --- results ---------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ScenarioResult:
    name: str
    machine: Machine
    tracer: Tracer | None
    checks: list[Check] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    expected_leaks: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

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
                "counts": dict(sorted(self.counts.items()))}


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    generation: str
    body: Callable[["Stage"], None]

    def run(self, seed: int = 0, trace: bool = True) -> ScenarioResult:
        stage = Stage(self, seed, trace)
        try:
            self.body(stage)
        except Exception as exc:  # the model raised: report it as a failed check, keep the machine
            stage.check("scenario ran to completion", False, f"{type(exc).__name__}: {exc}")
            if stage.m is None:
                raise
        return stage.result()


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, summary: str, generation: str = "legacy"):
    def register(body: Callable[["Stage"], None]) -> Callable[["Stage"], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, summary, generation, body)
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
    """One scenario run: builds the machine, hooks the trace, collects checks, finishes."""

    def __init__(self, sc: Scenario, seed: int, trace: bool):
        self.sc = sc
        self.seed = seed
        self.trace = trace
        self.checks: list[Check] = []
        self.expected_leaks: list[str] = []
        self.events: Counter = Counter()          # every tracepoint hit (kept even with trace=False)
        self.hooks: list[Callable[[int, str, dict], None]] = []
        self.m: Machine | None = None
        self.kernel: GuestKernel | None = None
        self.array: Array | None = None
        self.leaks: list[str] = []

    # set-up
    def build(self, *, vcpus: int = 1, pv: bool = True, preemptible: bool = True, swap: str = "nvme_gen4",
              workers: int | None = None, policy: Any = None) -> Machine:
        self.kernel = GuestKernel(GuestConfig(pv=pv, preemptible=preemptible))
        cfg = HostConfig(generation=self.sc.generation, vcpus=vcpus, guest_mem=8 * MiB, host_limit=1 * MiB,
                         swap_device=swap, workers=workers, seed=self.seed)
        self.m = m = Machine(cfg, self.kernel, trace=self.trace, policy=policy)
        inner = m.env.tracer

        def hook(t_ns: int, name: str, fields: dict) -> None:
            if inner is not None:
                inner(t_ns, name, fields)
            self.events[name] += 1
            for fn in list(self.hooks):
                fn(t_ns, name, fields)

        m.env.tracer = hook
        self.array = shared_array(self.kernel, DATA_PAGES)
        m.prefault(self.array.gfn, self.array.pages)
        m.start()
        m.run(m.env.now + BOOT_NS)
        m.reset_accounts()
        self.boot_events = Counter(self.events)
        self.boot_alloc = m.kvm.stat.async_pf_allocated
        return m

    def swapped(self, n: int, start: int = 0) -> list[int]:
        """``n`` buffer gfns that are swapped out on the host now (lowest first)."""
        out = []
        for gfn in range(self.array.gfn + start, self.array.gfn + self.array.pages):
            if self.m.mm.page_state(gfn_to_hva(self.m.kvm, gfn)) == PageState.SWAPPED:
                out.append(gfn)
                if len(out) == n:
                    return out
        raise RuntimeError(f"only {len(out)} swapped pages, wanted {n}")

    def resident_unmapped(self) -> int:
        """A buffer gfn resident on the host but with no spte (the guest never touched it)."""
        for gfn in range(self.array.gfn, self.array.gfn + self.array.pages):
            if self.m.mm.page_state(gfn_to_hva(self.m.kvm, gfn)) == PageState.RESIDENT \
                    and not mmu.spte_mapped(self.m.vcpus[0], gfn):
                return gfn
        raise RuntimeError("no resident page without an spte")

    def gva(self, gfn: int) -> int:
        return self.array.gva + ((gfn - self.array.gfn) << abi.PAGE_SHIFT)

    def mm(self) -> AddressSpace:
        mm = AddressSpace()
        self.array.map_into(mm)
        return mm

    def spawn(self, comm: str, program: Callable, cpu: int = 0, mm: AddressSpace | None = None):
        return self.kernel.spawn(comm, program, cpu, mm if mm is not None else self.mm())

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
        end = m.env.now + limit_ns
        while any(t.state != TASK_DEAD for t in tasks) and m.env.now < end:
            m.run(min(m.env.now + 1_000_000, end))
        alive = [f"{t.comm}({t.state})" for t in tasks if t.state != TASK_DEAD]
        self.check("every task exited", not alive, "still alive: " + ", ".join(alive) if alive
                   else f"{len(tasks)} tasks exited by t={m.env.now}")
        self.check("guest did not panic", self.kernel.panicked is None, self.kernel.panicked or "")
        m.shutdown()
        self.leaks = m.leaks()
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
            counts[f"guest_{key}"] = self.kernel.stats[key]
        for v in m.vcpus:
            for state in ("stalled", "halted"):
                counts[f"vcpu{v.vcpu_id}_{state}_ns"] = v.acct[state]
        return ScenarioResult(self.sc.name, m, m.tracer, self.checks, self.leaks, self.expected_leaks, counts)


def _touch(gva: int, *, kernel: bool = False) -> Touch:
    return Touch(gva, True, 0, kernel=kernel)


_prog = steps  # fixed steps; callables among them run as kernel code


def _acct(m: Machine, vcpu: int, state: str) -> int:
    m.flush_accounts()
    return m.vcpus[vcpu].acct[state]


# --- the scenarios ----------------------------------------------------------------------

@scenario("wake_before_wait",
          "page-ready for T reaches the guest before its not-present for T (forced: at the instant KVM queues "
          "not-present T, the guest twin kvm_async_pf_task_wake(T) runs on the cpu -- a page-ready routed "
          "there, as msr.txt allows -- since on one vcpu the pending #PF gates page-ready): a dummy is left, "
          "the wait consumes it without sleeping; KVM's own later page-ready T then finds no waiter and "
          "leaves a second dummy (expected leak)")
def _wake_before_wait(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    cpu0 = s.kernel.cpus[0]
    seen: dict[str, int] = {}

    def early_wake(t_ns: int, fields: dict) -> None:
        token = fields["token"]
        seen["token"] = token
        seen["dummies_before"] = s.kernel.stats["dummies_created"]

        def wake() -> None:
            pv.kvm_async_pf_task_wake(cpu0, token)
            seen["dummy_at_wake"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers)
                                        if n.task is None and n.token == token)
        s.at(0, wake)

    s.on("kvm_async_pf_not_present", early_wake)
    task = s.spawn("waiter", _prog(_touch(s.gva(gfn))))
    s.finish([task], expect=lambda: [(
        f"guest: dummy node for token {seen.get('token', -1):#x} on cpu 0",
        "KVM's own page-ready for T arrives after the early wake and finds no waiter: a duplicated "
        "page-ready is never consumed (why the host must send exactly one page-ready per delivered "
        "not-present)")])
    token = seen.get("token")
    st = s.kernel.stats
    s.check("not-present injected for T", token is not None and m.vcpus[0].stat["apf_not_present_injected"] >= 1,
            f"token {token!r}")
    s.check("the early wake left a dummy node for T", seen.get("dummy_at_wake") == 1,
            f"dummies for T right after the wake: {seen.get('dummy_at_wake')}")
    s.check("the wait consumed the dummy", st["dummies_consumed"] == 1, f"dummies_consumed={st['dummies_consumed']}")
    s.check("the waiter never slept", st["sleeps"] == 0 and st["halted_waits"] == 0,
            f"sleeps={st['sleeps']} halted_waits={st['halted_waits']}")
    s.check("the retry met the outstanding gfn (doublefault -> APF halt) and then succeeded",
            s.since_boot("kvm_async_pf_doublefault") >= 1 and m.vcpus[0].stat["apf_halts"] >= 1,
            f"doublefaults={s.since_boot('kvm_async_pf_doublefault')} apf_halts={m.vcpus[0].stat['apf_halts']}")
    s.check("KVM's own page-ready for T created a second dummy", st["dummies_created"] == 2,
            f"dummies_created={st['dummies_created']}")


@scenario("repeated_fault_halts",
          "two tasks on one vcpu touch the same swapped page (2010 HDD): the first gets not-present and sleeps, "
          "the second faults on the outstanding gfn -> kvm_async_pf_doublefault, the vcpu is APF-halted until "
          "the page arrives, then both finish")
def _repeated_fault_halts(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    a = s.spawn("first", _prog(_touch(s.gva(gfn))))
    b = s.spawn("second", _prog(Work(50_000), _touch(s.gva(gfn))))
    s.finish([a, b])
    v = m.vcpus[0]
    s.check("one not-present injected (the first task)", v.stat["apf_not_present_injected"] == 1,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("first task slept", s.kernel.stats["sleeps"] >= 1, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("kvm_async_pf_doublefault traced", s.since_boot("kvm_async_pf_doublefault") >= 1,
            f"{s.since_boot('kvm_async_pf_doublefault')} doublefault events")
    s.check("vcpu APF-halted", v.stat["apf_halts"] >= 1, f"apf_halts={v.stat['apf_halts']}")
    s.check("halted time > 0", v.acct["halted"] > 0, f"halted={v.acct['halted']} ns")
    s.check("only one swap-in for the page", m.mm.stats["swapins"] >= 1 and m.kvm.stat.async_pf_allocated - 0 >= 1,
            f"swapins={m.mm.stats['swapins']}")


@scenario("queue_full_falls_back_to_sync",
          "66 tasks on one vcpu each touch a distinct swapped page of a 2010 HDD: 64 APFs are outstanding, the "
          "65th fault finds the queue full (ASYNC_PF_PER_VCPU) and runs gfn_to_pfn synchronously in the vcpu "
          "thread (stalled time, async_pf_limit_hits)")
def _queue_full(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    gfns = s.swapped(66)
    peak = {"queued": 0}

    def watch(t_ns: int, fields: dict) -> None:
        peak["queued"] = max(peak["queued"], m.vcpus[0].async_pf.queued)

    s.on("kvm_async_pf_not_present", watch, once=False)
    tasks = [s.spawn(f"t{i}", _prog(_touch(s.gva(g)))) for i, g in enumerate(gfns)]
    s.finish(tasks)
    v = m.vcpus[0]
    limit = m.gen.async_pf_per_vcpu
    s.check(f"{limit} APFs outstanding at the peak", peak["queued"] == limit, f"peak queued={peak['queued']}")
    s.check("the queue limit was hit", v.stat["async_pf_limit_hits"] >= 1,
            f"async_pf_limit_hits={v.stat['async_pf_limit_hits']}")
    s.check("synchronous fallback: stalled time > 0", v.acct["stalled"] > 0, f"stalled={v.acct['stalled']} ns")
    s.check("never more than 64 not-present in flight", m.kvm.stat.async_pf_allocated <= len(gfns) + 1,
            f"allocated={m.kvm.stat.async_pf_allocated}")


@scenario("kernel_mode_fault_without_send_always",
          "a non-preemptible guest (no SEND_ALWAYS) touches swapped memory from kernel mode (Touch(kernel=True), "
          "a copy_to_user): KVM sets up the APF but halts the vcpu instead of injecting #PF at CPL0; the later "
          "page-ready is still sent and leaves a stale dummy (expected leak, fixed in 2020)")
def _kernel_mode_no_send_always(s: Stage) -> None:
    m = s.build(preemptible=False)
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    s.check("guest registered without SEND_ALWAYS", v.arch.apf.send_user_only and
            v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED, f"msr_val={v.arch.apf.msr_val:#x}")
    token: list[int] = []
    s.on("kvm_async_pf_not_present", lambda t_ns, f: token.append(f["token"]))
    t = s.spawn("syscall", _prog(_touch(s.gva(gfn), kernel=True)))
    s.finish([t], expect=lambda: [(
        f"guest: dummy node for token {token[0] if token else -1:#x} on cpu 0",
        "2.6.38 sends page-ready even for a not-present it never injected (halted instead): the guest "
        "finds no waiter and keeps a dummy for ever -- the 2020 notpresent_injected fix")])
    s.check("an APF was set up (not-present traced)", s.since_boot("kvm_async_pf_not_present") == 1,
            f"{s.since_boot('kvm_async_pf_not_present')} not-present events")
    s.check("no #PF injected at CPL0", v.stat["apf_not_present_injected"] == 0,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("vcpu APF-halted instead", v.stat["apf_halts"] >= 1 and v.acct["halted"] > 0,
            f"apf_halts={v.stat['apf_halts']} halted={v.acct['halted']} ns")
    s.check("the guest never waited", s.kernel.stats["sleeps"] == 0 and s.kernel.stats["halted_waits"] == 0,
            f"stats={dict(s.kernel.stats)}")


@scenario("non_preemptible_context_halts",
          "a preemptible guest (SEND_ALWAYS) takes not-present inside a preempt-disabled kernel section: "
          "it cannot schedule, so kvm_async_pf_task_wait halts the cpu (STI;HLT) and page-ready wakes it "
          "with a reschedule IPI")
def _non_preemptible(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    ipis = s.kernel.stats["resched_ipis"]
    s.check("guest registered with SEND_ALWAYS", not v.arch.apf.send_user_only, f"msr_val={v.arch.apf.msr_val:#x}")
    spawn_ipis = 1
    t = s.spawn("spinlocked", _prog(PreemptDisable(), _touch(s.gva(gfn), kernel=True), PreemptEnable()))
    other = s.spawn("other", _prog(Work(200_000)))
    s.finish([t, other])
    st = s.kernel.stats
    s.check("not-present injected at CPL0", v.stat["apf_not_present_injected"] == 1,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("the wait halted instead of sleeping", st["halted_waits"] == 1 and st["sleeps"] == 0,
            f"halted_waits={st['halted_waits']} sleeps={st['sleeps']}")
    s.check("page-ready woke it with a reschedule IPI", st["resched_ipis"] - ipis > 2 * spawn_ipis,
            f"resched_ipis since spawn={st['resched_ipis'] - ipis} (2 of them are the spawns)")
    s.check("no APF halt on the host", v.stat["apf_halts"] == 0, f"apf_halts={v.stat['apf_halts']}")


@scenario("msr_disable_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when a guest kernel thread writes 0 to MSR_KVM_ASYNC_PF_EN and "
          "then wakes its waiters (apf_task_wake_all): the host clears the queue (waiting for running workers), "
          "no page-ready follows, references balance, the woken tasks retry and finish")
def _msr_disable(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    g1, g2 = s.swapped(2)
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def disable():
        snap["queued_before"] = v.async_pf.queued
        yield from pv.kvm_pv_disable_apf(cpu0)              # raw WRMSR 0
        snap["queue_after"] = (len(v.async_pf.queue), len(v.async_pf.done), v.async_pf.queued)
        snap["injected"] = v.stat["apf_injected"]
        snap["guest_ready"] = cpu0.stats["apf_ready"]
        snap["hash_empty"] = bool((v.arch.apf.gfns == x86.GFN_SLOT_EMPTY).all())
        pv.apf_task_wake_all(cpu0)

    a = s.spawn("a", _prog(_touch(s.gva(g1))))
    b = s.spawn("b", _prog(_touch(s.gva(g2))))
    k = s.spawn("disabler", _prog(Work(100_000), disable))
    s.finish([a, b, k])
    s.check("two APFs were outstanding at the disable", snap.get("queued_before") == 2, f"{snap}")
    s.check("the MSR write cleared queue, done and queued", snap.get("queue_after") == (0, 0, 0), f"{snap}")
    s.check("the gfn hash was reset", snap.get("hash_empty") is True, f"{snap}")
    s.check("no event injected after the disable", v.stat["apf_injected"] == snap.get("injected") and
            cpu0.stats["apf_ready"] == snap.get("guest_ready"),
            f"apf_injected {snap.get('injected')} -> {v.stat['apf_injected']}")
    s.check("both sleepers had slept", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("APF is off on the host", not v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED,
            f"msr_val={v.arch.apf.msr_val:#x}")


@scenario("vcpu_reset_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when the VMM resets the vcpu (reset_pending): queue cleared and "
          "nothing delivered; the guest re-registers (kvm_guest_cpu_init) and the host's wake-all makes the "
          "sleepers retry")
def _vcpu_reset(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    g1, g2 = s.swapped(2)
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def reregister():
        snap["after_reset"] = (v.arch.apf.msr_val, len(v.async_pf.queue), len(v.async_pf.done), v.async_pf.queued)
        snap["ready_before"] = cpu0.stats["apf_ready"]
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None)
        yield from pv.kvm_guest_cpu_init(cpu0)

    def reset() -> None:
        snap["queued_at_reset"] = v.async_pf.queued
        snap["events_at_reset"] = s.events["kvm_async_pf_ready"]
        v.reset_pending = True
        v.kick()
        s.spawn("reregister", _prog(reregister))

    a = s.spawn("a", _prog(_touch(s.gva(g1))))
    b = s.spawn("b", _prog(_touch(s.gva(g2))))
    s.at(300_000, reset)
    s.finish([a, b])
    s.check("two APFs outstanding at the reset", snap.get("queued_at_reset") == 2, f"{snap}")
    s.check("reset: APF off, queue and done empty", snap.get("after_reset") == (0, 0, 0, 0), f"{snap}")
    s.check("both tasks were still asleep before re-registration", snap.get("sleepers") == 2, f"{snap}")
    s.check("nothing delivered between reset and re-registration", snap.get("ready_before") == 1, f"{snap} (1 = boot wake-all)")
    s.check("exactly one page-ready after the reset: the wake-all",
            s.events["kvm_async_pf_ready"] - snap.get("events_at_reset", 0) == 1 and cpu0.stats["apf_ready"] == 2,
            f"ready events since reset={s.events['kvm_async_pf_ready'] - snap.get('events_at_reset', 0)}")
    s.check("APF enabled again", bool(v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED) or m.shut_down,
            f"msr_val={v.arch.apf.msr_val:#x}")


@scenario("migration_wakes_all",
          "two tasks sleep on APFs (2010 HDD) when the VM migrates: the VMM saves MSR_KVM_ASYNC_PF_EN, the "
          "destination vcpu starts from reset state (no queue: reset_pending on the vcpu thread), and after the "
          "downtime the VMM restores the MSR (kvm_pv_enable_async_pf) -> one wake-all (token 0xffffffff) wakes "
          "both sleepers, which retry on the destination")
def _migration(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    g1, g2 = s.swapped(2)
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}
    tokens: list[int] = []
    orig = cpu0.deliver_exception

    def spy(vcpu, nr, error_code):  # what the guest is told: page-ready tokens, as CR2 carries them
        if nr == x86.PF_VECTOR and x86.read_reason(vcpu) == abi.KVM_PV_REASON_PAGE_READY:
            tokens.append(vcpu.arch.cr2 & abi.U32)
        orig(vcpu, nr, error_code)

    def stop_source() -> None:
        snap["saved"] = v.arch.apf.msr_val
        snap["queued"] = v.async_pf.queued
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None)
        snap["tokens_before"] = len(tokens)
        v.reset_pending = True          # the destination vcpu: fresh state, empty queue
        v.kick()

    def restore() -> None:              # KVM_SET_MSRS from the VMM on the destination
        snap["before_restore"] = (v.arch.apf.msr_val, v.async_pf.queued, len(tokens) - snap["tokens_before"],
                                  sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None))
        gen = x86.kvm_pv_enable_async_pf(v, snap["saved"])
        try:
            while True:
                next(gen)               # the enable path never waits
        except StopIteration as stop:
            snap["restore"] = stop.value
        snap["done"] = [w.wakeup_all for w in v.async_pf.done]
        v.kick()

    cpu0.deliver_exception = spy
    a = s.spawn("a", _prog(_touch(s.gva(g1))))
    b = s.spawn("b", _prog(_touch(s.gva(g2))))
    s.at(300_000, stop_source)
    s.at(100_000_000, restore)
    s.finish([a, b])
    s.check("two sleepers and two APFs when the source stopped",
            snap.get("queued") == 2 and snap.get("sleepers") == 2, f"{snap}")
    s.check("destination before the restore: APF off, no queue, nothing delivered, both still asleep",
            snap.get("before_restore") == (0, 0, 0, 2), f"{snap}")
    s.check("MSR restore accepted and queued one wake-all", snap.get("restore") == 0 and snap.get("done") == [True],
            f"{snap}")
    after = tokens[snap.get("tokens_before", 0):]
    s.check("page-ready after migration: only token 0xffffffff", after == [abi.BROADCAST_TOKEN],
            f"page-ready tokens after migration: {[hex(t) for t in after]}")
    s.check("both sleepers had slept", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")


@scenario("cpu_offline_wakes_all",
          "two vcpus; two tasks on cpu1 sleep on APFs (2010 HDD) when kvm_guest_cpu_offline runs on cpu1: APF "
          "off there (the MSR write waits for the running workers), every local sleeper woken; their next "
          "faults on swapped pages are APF-halted on the host (no #PF); cpu0 keeps APF on")
def _cpu_offline(s: Stage) -> None:
    m = s.build(vcpus=2, swap="hdd_7200_2010")
    g1, g2, g3, g4 = s.swapped(4)
    v1 = m.vcpus[1]
    cpu1 = s.kernel.cpus[1]
    snap: dict[str, Any] = {}

    def offline():
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None and n.cpu == 1)
        snap["queued"] = v1.async_pf.queued
        yield from pv.kvm_guest_cpu_offline(cpu1)
        snap["after"] = (cpu1.apf_enabled, v1.arch.apf.msr_val, v1.async_pf.queued,
                         sum(1 for _ in pv.all_nodes(s.kernel.sleepers)))
        snap["halts"] = v1.stat["apf_halts"]

    a = s.spawn("a", _prog(_touch(s.gva(g1)), _touch(s.gva(g3))), cpu=1)
    b = s.spawn("b", _prog(_touch(s.gva(g2)), _touch(s.gva(g4))), cpu=1)
    k = s.spawn("cpuhp/1", _prog(Work(100_000), offline), cpu=1)
    s.finish([a, b, k])
    s.check("two sleepers on cpu1 when it went down", snap.get("sleepers") == 2 and snap.get("queued") == 2, f"{snap}")
    s.check("APF off on cpu1, queue empty, no node left", snap.get("after") == (False, 0, 0, 0), f"{snap}")
    s.check("later faults on cpu1 were APF-halted, not injected",
            v1.stat["apf_halts"] >= 2 + snap.get("halts", 0) and v1.acct["halted"] > 0
            and v1.stat["apf_not_present_injected"] == 2,
            f"apf_halts={v1.stat['apf_halts']} halted={v1.acct['halted']} ns "
            f"not_present_injected={v1.stat['apf_not_present_injected']}")
    s.check("no sleep after the offline", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("cpu0 still has APF on", s.kernel.cpus[0].apf_enabled and
            bool(m.vcpus[0].arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED), "")


@scenario("mmio_gfn",
          "a task touches a gva mapped onto the VM_PFNMAP slot (MMIO_BASE_GFN + 3): the pfn comes from the "
          "region's offset, the spte is installed synchronously, no async PF")
def _mmio(s: Stage) -> None:
    m = s.build()
    gfn = MMIO_BASE_GFN + 3
    mm = AddressSpace()
    mm.map(0x40000000, 1, gfn)
    t = s.spawn("bar-reader", _prog(_touch(0x40000000 + 8)), mm=mm)
    s.finish([t])
    s.check("spte maps the BAR pfn", mmu.spte_mapped(m.vcpus[0], gfn) and int(m.kvm.spte_pfn[gfn]) == MMIO_HOST_PFN + 3,
            f"spte={int(m.kvm.spte_pfn[gfn]) if gfn < len(m.kvm.spte_pfn) else None:#x} expected {MMIO_HOST_PFN + 3:#x}")
    s.check("no async PF", s.since_boot("kvm_async_pf_not_present") == 0 and s.since_boot("kvm_try_async_get_page") == 0,
            "")
    s.check("one EPT violation, not stalled", m.vcpus[0].stat["ept_violations"] == 1 and m.vcpus[0].acct["stalled"] == 0,
            f"ept_violations={m.vcpus[0].stat['ept_violations']}")


@scenario("error_gfn",
          "a task touches a gfn outside every slot (ERROR_GFN): error pfn, the access is emulated, no async PF, "
          "nothing mapped")
def _error_gfn(s: Stage) -> None:
    m = s.build()
    mm = AddressSpace()
    mm.map(0x40000000, 1, ERROR_GFN)
    t = s.spawn("apic-poker", _prog(_touch(0x40000000), Work(10_000)), mm=mm)
    faults = []
    s.on("kvm_page_fault", lambda t_ns, f: faults.append(f["fault_address"] >> abi.PAGE_SHIFT), once=False)
    s.finish([t])
    s.check("the fault was at ERROR_GFN", faults == [ERROR_GFN], f"faulting gfns {[hex(g) for g in faults]}")
    s.check("nothing mapped", not mmu.spte_mapped(m.vcpus[0], ERROR_GFN), "")
    s.check("no async PF", s.since_boot("kvm_async_pf_not_present") == 0 and m.kvm.stat.async_pf_allocated == s.boot_alloc,
            f"not-present={s.since_boot('kvm_async_pf_not_present')} work items since boot="
            f"{m.kvm.stat.async_pf_allocated - s.boot_alloc}")


@scenario("reclaim_races_fault",
          "host reclaim runs between tdp_page_fault's mmu_notifier_seq snapshot and its mmu_notifier_retry "
          "check (a callback placed exactly at the `yield None` instant, keyed on the kvm_page_fault "
          "tracepoint): no spte, mmu_notifier_retries counted, the guest faults again and succeeds")
def _reclaim_race(s: Stage) -> None:
    m = s.build()
    gfn = s.resident_unmapped()
    v = m.vcpus[0]
    snap: dict[str, Any] = {}
    ept = m.kvm.cost("ept_fault_ns")

    def arm(t_ns: int, fields: dict) -> None:
        if fields["fault_address"] >> abi.PAGE_SHIFT != gfn:
            return
        s.hooks.remove(hook_ref[0])
        # at t+ept the vcpu resumes and does the lookup, then `yield None`; a callback queued at t+ept
        # *after* that resumption runs in the window (before the deferred mmu_notifier_retry check)
        def in_window() -> None:
            snap["seq"] = m.kvm.mmu_notifier_seq
            snap["reclaimed"] = m.mm.reclaim(1)
            snap["spte_at_reclaim"] = bool(mmu.spte_mapped(v, gfn))
        s.at(ept, lambda: s.at(0, in_window))

    s.on("kvm_page_fault", arm, once=False)
    hook_ref = [s.hooks[-1]]
    faults: list[int] = []
    s.on("kvm_page_fault", lambda t_ns, f: faults.append(f["fault_address"] >> abi.PAGE_SHIFT), once=False)
    t = s.spawn("toucher", _prog(_touch(s.gva(gfn)), Work(10_000)))
    s.finish([t])
    s.check("reclaim ran in the window", snap.get("reclaimed") == 1 and not snap.get("spte_at_reclaim", True),
            f"{snap}")
    s.check("mmu_notifier_retry said retry", v.stat["mmu_notifier_retries"] == 1,
            f"mmu_notifier_retries={v.stat['mmu_notifier_retries']}")
    s.check("the guest faulted twice on the page, then succeeded", faults.count(gfn) == 2,
            f"faults on gfn: {faults.count(gfn)}")
    s.check("no async PF (the page was resident)", s.since_boot("kvm_async_pf_not_present") == 0, "")


@scenario("allocation_failure_falls_back",
          "kvm.alloc_fail makes the work-item allocation fail (GFP_NOWAIT): the fault is handled synchronously "
          "by gfn_to_pfn in the vcpu thread (stalled), counted in kvm.stat.async_pf_alloc_failures")
def _alloc_failure(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    m.kvm.alloc_fail = lambda: True
    t = s.spawn("toucher", _prog(_touch(s.gva(gfn))))
    other = s.spawn("other", _prog(Work(100_000)))
    s.finish([t, other])
    v = m.vcpus[0]
    s.check("allocation failure counted", m.kvm.stat.async_pf_alloc_failures == 1,
            f"async_pf_alloc_failures={m.kvm.stat.async_pf_alloc_failures}")
    s.check("no work item, no not-present", m.kvm.stat.async_pf_allocated == s.boot_alloc
            and v.stat["apf_not_present_injected"] == 0, "")
    s.check("synchronous: stalled time > 0", v.acct["stalled"] > 0, f"stalled={v.acct['stalled']} ns")
    s.check("the page was swapped in", m.mm.stats["swapins"] >= 1, "")


@scenario("wakeall_after_not_present_leaks_dummy",
          "2.6.38 quirk: a wake-all (the VMM re-writing MSR_KVM_ASYNC_PF_EN, e.g. after migration, without "
          "clearing the queue) arrives after not-present T: the sleeper wakes early and retries (doublefault "
          "-> APF halt), and the real page-ready T later finds nobody and leaves a dummy that is never freed "
          "(expected leak)")
def _wakeall_dummy(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    snap: dict[str, Any] = {}

    def rewrite():
        r = yield from x86.kvm_pv_enable_async_pf(v, v.arch.apf.msr_val)
        snap["r"] = r
        v.kick()

    s.on("kvm_async_pf_not_present", lambda t_ns, f: snap.setdefault("token", f["token"]))
    a = s.spawn("a", _prog(_touch(s.gva(gfn))))
    s.at(200_000, lambda: m.env.process(rewrite(), "vmm-set-msr"))
    s.finish([a], expect=lambda: [(
        f"guest: dummy node for token {snap.get('token', -1):#x} on cpu 0",
        "the page-ready for T after the early wake-all finds nobody waiting; 2.6.38 never frees it")])
    s.check("the MSR rewrite queued a wake-all", snap.get("r") == 0, f"{snap}")
    s.check("the sleeper slept, was woken early and halted on its retry",
            s.kernel.stats["sleeps"] == 1 and v.stat["apf_halts"] >= 1,
            f"sleeps={s.kernel.stats['sleeps']} apf_halts={v.stat['apf_halts']}")
    s.check("the late page-ready created a dummy", s.kernel.stats["dummies_created"] == 1,
            f"dummies_created={s.kernel.stats['dummies_created']}")


# --- command line -------------------------------------------------------------------------

def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="scenario to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios with a one-line summary")
    p.add_argument("--trace", metavar="FILE", help="write the whole ftrace text of the run to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--trace-lines", type=nonnegative_int, default=30, help="async-PF trace lines to show")


def excerpt(result: ScenarioResult, lines: int = 30) -> str:
    tracer = result.tracer
    if tracer is None:
        return ""
    events = [e for e in tracer.events if e.name in APF_EVENTS]
    return "\n".join(render(events[:lines], tracer.generation).splitlines()[5:])


@command("scenario", "run a named async-PF scenario and check its expected outcome (--list to see them)", configure)
def main(args: argparse.Namespace) -> int:
    if args.list:
        width = max(map(len, SCENARIOS))
        for sc in SCENARIOS.values():
            print(f"{sc.name:<{width}}  {_one_line(sc.summary)}")
        return 0
    if not args.name:
        raise UsageError("scenario: give a NAME or --list")
    try:
        sc = get(args.name)
    except KeyError as exc:
        raise UsageError(f"scenario: {exc.args[0]}") from None
    result = sc.run(seed=args.seed, trace=True)
    if args.trace:
        with open(args.trace, "w") as f:
            f.write(result.tracer.text())
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return 0 if result.ok else 1
    print(f"scenario {sc.name} ({sc.generation} generation, seed {args.seed})")
    print(f"  {sc.summary}\n")
    for c in result.checks:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}" + (f"  [{c.detail}]" if c.detail else ""))
    print("\nleak check after VM destroy:", "clean" if not result.leaks else
          "only the expected" if not result.unexpected_leaks else "LEAKS")
    for line in result.leaks:
        print(f"  {'expected' if line in result.expected_leaks else 'LEAK'}: {line}")
    events = [e for e in result.tracer.events if e.name in APF_EVENTS]
    print(f"\nasync-PF trace events (first {min(args.trace_lines, len(events))} of {len(events)}):")
    print(excerpt(result, args.trace_lines))
    if args.trace:
        print(f"\nwhole trace written to {args.trace}")
    print(f"\n{sc.name}: {'OK' if result.ok else 'FAILED'}")
    return 0 if result.ok else 1


def _one_line(summary: str, width: int = 110) -> str:
    return summary if len(summary) <= width else summary[: width - 3] + "..."


if __name__ == "__main__":  # until asyncpf.__main__ lists this module: python -m asyncpf.scenarios ...
    import sys

    from .__main__ import main as _main
    sys.exit(_main(["scenario", *sys.argv[1:]]))
