"""The checker: runs the invariant registry against one machine as it runs.

:class:`Checker` attaches to a :class:`~asyncpf.machine.Machine` whose
engine runs under a choice policy (any :class:`~asyncpf.sim.ChoicePolicy`;
:func:`attach` installs the FIFO one if none is set).  It wraps three things
on that one machine only, all instance attributes, none of the model's code:

* ``env.step`` -- the policy loop calls ``self.step()``, so an instance
  attribute sees every step (the policy-free hot loop is never used here);
* ``env.tracer`` -- chained in front of the machine's own tracer;
* each guest cpu's ``next_op`` -- the guest's instruction boundaries.

From those hooks it keeps the token :class:`~asyncpf.check.invariants.Ledger`
and the observations the event invariants judge.  :func:`check` returns
:class:`~asyncpf.check.invariants.Violation` records and never raises.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from .. import abi
from ..abi import KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_ENABLED, KVM_ASYNC_PF_SEND_ALWAYS, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from ..host import x86
from ..host.async_pf import peek
from ..host.kvm_main import gfn_to_hva, gfn_to_memslot, kvm_is_error_hva, read_guest_bytes
from ..host.interrupt.lapic import KVM_REQ_APF_READY
from ..host.mm import PageState
from ..host.mmu import spte_mapped
from ..sim import ChoicePolicy
from . import msr_abi
from .invariants import (END_INVARIANTS, EVENT_INVARIANTS, REGISTRY, SAFETY_INVARIANTS, Invariant, Ledger, Obs, View,
                         Violation, WALK)

if TYPE_CHECKING:
    from ..guest.kernel import GuestKernel
    from ..machine import Machine


def apf_msr(machine: "Machine", vcpu) -> int:
    """MSR_KVM_ASYNC_PF_EN as the host holds it: ``msr_val`` until 5.7, ``msr_en_val`` in the interrupt era."""
    apf = vcpu.arch.apf
    return apf.msr_en_val if machine.gen.page_ready_delivery == "interrupt" else apf.msr_val


def send_always(machine: "Machine", vcpu) -> bool:
    """Whether the guest asked for not-present at CPL0: SEND_ALWAYS in the MSR value the host holds.

    Read from the ABI value, not from the flag the host derives from it (2.6.38's ``send_user_only``, 6.15+'s
    ``send_always``), so that a host that derives it wrongly is judged, not believed.  The seed has no such bit.
    """
    if machine.gen.name == "seed":
        return False
    return bool(apf_msr(machine, vcpu) & KVM_ASYNC_PF_SEND_ALWAYS)


def reason_word(machine: "Machine", vcpu) -> int:
    """The u32 reason word (``flags`` in the interrupt era) at the vcpu's registered APF area (0 if none)."""
    gpa = vcpu.arch.apf.data.gpa
    if not apf_msr(machine, vcpu) & KVM_ASYNC_PF_ENABLED and not gpa:
        return 0
    return int.from_bytes(read_guest_bytes(machine.kvm, gpa, 4), "little")


def token_slot(machine: "Machine", vcpu) -> int:
    """The interrupt era's page-ready ``token`` word (bytes 4-7 of the area; 0 = free, and 0 before 5.8)."""
    if machine.gen.page_ready_delivery != "interrupt":
        return 0
    return int.from_bytes(read_guest_bytes(machine.kvm, vcpu.arch.apf.data.gpa + 4, 4), "little")


def token_slot_free(machine: "Machine", vcpu) -> bool:
    """6.18's apf_pageready_slot_free restated: the token word reads 0 -- and can be read at all (an area left
    outside guest memory by a refused enable fails the read, which counts as busy)."""
    area = vcpu.arch.apf.data.gpa
    return gfn_to_memslot(machine.kvm, area >> abi.PAGE_SHIFT) is not None and token_slot(machine, vcpu) == 0


# The token kvm_async_pf_ready prints for the ~0 broadcast: 2.6.38 traces before it makes the token ~0
# (arch/x86/kvm/x86.c@v2.6.38 kvm_arch_async_page_present), 6.18 after (x86.c@v6.18, same function).
BROADCAST_AS_TRACED = {"legacy": 0, "interrupt": abi.BROADCAST_TOKEN}


def can_tell_not_present(machine: "Machine", vcpu) -> bool:
    """The guest can be sent a not-present now, restated from the MSR value and the vcpu's CPL (not the host's flags).

    Enabled (ENABLED, and DELIVERY_AS_INT in the interrupt era: kvm_pv_async_pf_enabled@v6.18) and, at CPL0, only
    with SEND_ALWAYS (2.6.38 kvm_arch_async_page_not_present's send_user_only; 6.18 kvm_can_deliver_async_pf).
    """
    on = KVM_ASYNC_PF_ENABLED | (KVM_ASYNC_PF_DELIVERY_AS_INT if machine.gen.page_ready_delivery == "interrupt" else 0)
    return apf_msr(machine, vcpu) & on == on and (vcpu.arch.cpl != 0 or send_always(machine, vcpu))


def area_writable(machine: "Machine", vcpu) -> bool:
    """The registered area lies in guest RAM, so the host's write of the reason word (flags) cannot fail."""
    return not kvm_is_error_hva(gfn_to_hva(machine.kvm, vcpu.arch.apf.data.gpa >> abi.PAGE_SHIFT))


class Livelock(Exception):
    """Raised out of the engine's step when a schedule breaks its step budget: the run ends, reported."""


class Checker:
    """Runs the registry against one machine as it runs; collects :class:`Violation` records.

    Only the first violation of each invariant is kept (``first_only``) so a
    broken run stays cheap; ``counts`` still counts every one.
    """

    def __init__(self, machine: "Machine", kernel: "GuestKernel | None" = None, *,
                 names: list[str] | None = None, first_only: bool = True):
        self.m = machine
        self.kernel = kernel
        self.ledger = Ledger()
        self.view = View(machine, kernel, self.ledger)
        chosen = set(names) if names is not None else set(REGISTRY)
        gen = machine.gen.name
        self.generation = gen
        self.safety = [i for i in SAFETY_INVARIANTS if i.name in chosen and i.applies_to(gen)]
        self.events = [i for i in EVENT_INVARIANTS if i.name in chosen and i.applies_to(gen)]
        self.end = [i for i in END_INVARIANTS if i.name in chosen and i.applies_to(gen)]
        # Off while the explorer replays a prefix it has judged before: then only the predicates that remember
        # between calls run (they must see every step); the bookkeeping below goes on regardless.
        self.judging = True
        self._remembering_safety = [i for i in self.safety if remembers(i)]
        self._remembering_events = [i for i in self.events if remembers(i)]
        # The reason word is an event only while its #PF is queued or has been handed to the guest: a vcpu
        # reset drops the queued #PF and leaves the word behind, which no guest could know to read.
        self._handed: dict[int, bool] = {}          # vcpu -> the current word came with a delivered #PF
        # The seed traces its injection (kvm_send_async_pf) after writing the word, 2.6.38 before it; for the
        # seed the word as it stood is the one sampled when the vcpu last left the guest.
        self._trace_after_write = "kvm_send_async_pf" in machine.gen.tracepoints
        self._word_at_exit: dict[int, tuple[int, bool]] = {}   # vcpu -> (word, an event?) at the last exit
        # The interrupt era: page-ready is an interrupt on apf.vec with the token in the area's slot, acked by MSR.
        self._irq = machine.gen.page_ready_delivery == "interrupt"
        # 2.6.38 and 6.18 trace both events (kvm_async_pf_not_present/_ready) and have the APF halt; the seed neither
        self._apf_traced = "kvm_async_pf_not_present" in machine.gen.tracepoints
        self._slot_before: dict[int, int] = {}      # vcpu -> the token slot as it stood when ready was traced
        self._gp_owed: dict[int, tuple[int, int]] = {}   # vcpu -> (msr, data) of a refused WRMSR not yet answered
        self._acked: dict[int, bool] = {}           # vcpu -> the guest has ACKed since its last page-ready
        self._ready_unacked: dict[int, bool] = {}   # vcpu -> a page-ready interrupt raised and not ACKed since
        self._ready_req_since_exit: dict[int, bool] = {}   # 6.18: KVM_REQ_APF_READY set, unbroken, since the exit
        self._raised_in_guest: dict[int, bool] = {}  # vcpu -> a page-ready raised since its last entry (by an ACK)
        self._seq_at_fault: dict[tuple[int, int], int] = {}   # (vcpu, token) -> mmu_notifier_seq at its not-present
        self.violations: list[Violation] = []
        self.counts: Counter = Counter()
        self.first_only = first_only
        self.steps = 0
        self._last_now = -1
        self._ever_done: set[int] = set()    # ids of work items seen on a done list (publication order)
        self._halt_owed: dict[int, tuple[int, int, int]] = {}  # vcpu -> (gfn, apf_halts, epoch) at a repeated fault
        self._msr_at_entry: dict[int, tuple] = {}   # vcpu -> its async PF MSR state at its last entry (msr_abi.held)
        self._answer_owed: dict[int, dict] = {}     # vcpu -> what the host owes the guest before it enters again
        self._traced: dict[int, list[tuple[str, int]]] = {}   # vcpu -> (tracepoint, token) not yet delivered
        self._done_at_exit: dict[int, frozenset] = {}        # 2.6.38: vcpu -> ids on done at its last exit
        self._done_while_requested: dict[int, set] = {}      # 6.18: vcpu -> ids on done while KVM_REQ_APF_READY was set
        self._halt_woken: dict[int, bool] = {}       # vcpu -> left the guest halting (HLT, APF halt): woken since?
        self._setting_up: int | None = None          # the vcpu whose fault path is setting an async PF up
        self._token_next: dict[int, int] = {}        # vcpu -> the token counter after its last traced not-present
        self._setup_attempts: Counter = Counter()     # vcpu -> async PF set-ups tried since that not-present
        self.abort_on_livelock = True
        self.enabled = True
        self.on_violation: Callable[[Violation], None] | None = None
        for vcpu in machine.vcpus:
            self.ledger.awaiting[vcpu.vcpu_id] = {}
            self.ledger.msr[vcpu.vcpu_id] = apf_msr(machine, vcpu)
            self._acked[vcpu.vcpu_id] = True

    # -- hooks ------------------------------------------------------------------------------
    def attach(self) -> "Checker":
        env = self.m.env
        if env.policy is None:
            env.policy = ChoicePolicy()  # FIFO, but through Environment.step, which is what we wrap
        inner_step = env.step
        inner_tracer = env.tracer

        view = self.view

        def step() -> None:
            inner_step()
            if self.enabled:
                self.steps += 1
                view.steps = self.steps
                now = env.now
                if now != self._last_now:
                    self._last_now, view.steps_at_instant = now, 0
                view.steps_at_instant += 1
                self.check_state()
                if "schedule_makes_progress" in self.counts and self.abort_on_livelock:
                    raise Livelock(self.violations[-1] if self.violations else None)

        def tracer(t_ns: int, name: str, fields: dict) -> None:
            if inner_tracer is not None:
                inner_tracer(t_ns, name, fields)
            if self.enabled:
                self._on_trace(t_ns, name, fields)
                self._on_fault_path(t_ns, name, fields)
                self._on_run_loop(t_ns, name, fields)

        env.step = step
        env.tracer = tracer
        self._adopt_events_in_flight()
        self._wrap_reset()
        self._wrap_alloc_fail()
        if self.kernel is not None:
            for cpu in self.kernel.cpus:
                self._wrap_next_op(cpu)
                if self._irq:
                    self._wrap_deliver_interrupt(cpu)
        return self

    def _wrap_reset(self) -> None:
        """Observe each vcpu as the generation's INIT/RESET leaves it: the twin runs unchanged, the checker looks after.

        The wrapper sits on this machine's twin table (an instance attribute, as the guest hooks are); glue that
        wraps the reset later (a migration restoring MSRs) wraps this one, so what is seen is the reset alone.
        """
        twins = getattr(self.m.kvm, "twins", None)
        inner = getattr(twins, "kvm_arch_vcpu_reset", None)
        if inner is None:
            return

        def kvm_arch_vcpu_reset(vcpu: Any) -> Any:
            yield from inner(vcpu)
            self._gp_owed.pop(vcpu.vcpu_id, None)         # a reset drops the queued #GP with every pending event
            self._token_next.pop(vcpu.vcpu_id, None)      # learnt again: a migration lands on a new vcpu, id 0
            if vcpu.vcpu_id in self._halt_woken:
                self._halt_woken[vcpu.vcpu_id] = True     # a reset ends any halt (RUNNABLE, apf.halted = false)
            if self.enabled:
                self._observe(Obs(self.m.env.now, "after_reset", vcpu.vcpu_id, self._reset_facts(vcpu)))

        twins.kvm_arch_vcpu_reset = kvm_arch_vcpu_reset

    def _wrap_alloc_fail(self) -> None:
        """Note each work-item allocation the configuration's fault injection refuses, against the fault it is for.

        The injector (``kvm.alloc_fail``) is the configuration's glue; the checker wraps it on this machine only, and
        attributes a refusal to the vcpu whose fault path tried a set-up (kvm_try_async_get_page) since its last exit.
        """
        inner = self.m.kvm.alloc_fail
        if inner is None:
            return

        def alloc_fail() -> bool:
            refused = inner()
            fault = self.ledger.fault_at.get(self._setting_up) if self._setting_up is not None else None
            if refused and fault is not None:
                fault["refused"] = True
            return refused

        self.m.kvm.alloc_fail = alloc_fail

    def _reset_facts(self, vcpu: Any) -> dict:
        """What a reset must have cleared, read from the vcpu's state (see reset_leaves_no_async_pf_state)."""
        arch, apf = vcpu.arch, vcpu.async_pf
        return {"msr": apf_msr(self.m, vcpu), "msr_int": getattr(arch.apf, "msr_int_val", 0) if self._irq else 0,
                "halted": arch.apf.halted, "exception": arch.exception.pending,
                "queue": len(apf.queue), "done": len(apf.done), "queued": apf.queued,
                "hashed": sum(1 for g in arch.apf.gfns if int(g) != x86.GFN_SLOT_EMPTY),
                "in_service": sorted(vcpu.isr) if self._irq else []}

    def _wrap_deliver_interrupt(self, cpu: Any) -> None:
        """The interrupt era's page-ready reaches the guest as its vector: record the token the slot holds."""
        inner = cpu.deliver_interrupt

        def deliver_interrupt(vcpu: Any, vector: int) -> None:
            if self.enabled and cpu.apf_enabled and vector == vcpu.arch.apf.vec:
                self._sync_epoch(vcpu)
                token = token_slot(self.m, vcpu)
                data = {"reason": KVM_PV_REASON_PAGE_READY, "token": token, "by_interrupt": True,
                        "unacked": not self._acked.get(vcpu.vcpu_id, True),
                        "traced": self._was_traced(vcpu.vcpu_id, KVM_PV_REASON_PAGE_READY, token)}
                self._acked[vcpu.vcpu_id] = False
                self._deliver_ready(vcpu, data)
                self._observe(Obs(self.m.env.now, "deliver", vcpu.vcpu_id, data))
            inner(vcpu, vector)

        cpu.deliver_interrupt = deliver_interrupt

    def _wrap_next_op(self, cpu: Any) -> None:
        inner = cpu.next_op

        def next_op(vcpu: Any) -> Any:
            op = inner(vcpu)
            if self.enabled and vcpu.arch.rflags_if and cpu.apf_enabled and self._handed.get(vcpu.vcpu_id):
                word = reason_word(self.m, vcpu)
                if word:
                    ctx = cpu.curr.stack[-1].name if cpu.curr.stack else "?"
                    self._observe(Obs(self.m.env.now, "boundary", vcpu.vcpu_id, {"word": word, "ctx": ctx}))
            return op

        cpu.next_op = next_op

    def _sync_epoch(self, vcpu: Any) -> None:
        vid = vcpu.vcpu_id
        msr = apf_msr(self.m, vcpu)
        if self.ledger.msr.get(vid) != msr:
            self.ledger.msr[vid] = msr
            self.ledger.wake_alls[vid] += 1   # a new epoch: the guest wakes its own sleepers (offline, reset)
            self.ledger.awaiting[vid] = {}
            self.ledger.woken_by_broadcast[vid] = set()

    def _on_trace(self, t_ns: int, name: str, fields: dict) -> None:
        if name == "kvm_entry":   # what a refused WRMSR in guest mode must leave
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._msr_at_entry[vcpu.vcpu_id] = msr_abi.held(self.m.gen.name, vcpu)
        if name in ("kvm_msr", "kvm_inj_exception"):
            self._on_gp_owed(t_ns, name, fields)
        if name in ("kvm_async_pf_not_present", "kvm_async_pf_ready"):
            self._on_prefault_point(t_ns, name, self.m.vcpus[fields["ctx"][2]], fields)
            self._traced.setdefault(fields["ctx"][2], []).append((name, fields["token"]))
        if name == "kvm_inj_exception":
            if fields.get("exception") != x86.PF_VECTOR:
                return
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._sync_epoch(vcpu)
            reason = reason_word(self.m, vcpu)
            if reason not in (KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY):
                return
            self._handed[vcpu.vcpu_id] = True
            token = vcpu.arch.cr2 & abi.U32
            awaiting = self.ledger.awaiting[vcpu.vcpu_id]
            data = {"reason": reason, "token": token, "cpl": vcpu.arch.cpl, "error_code": fields["error_code"],
                    "send_always": send_always(self.m, vcpu), "if": vcpu.arch.rflags_if,
                    "registered": bool(apf_msr(self.m, vcpu) & KVM_ASYNC_PF_ENABLED)}
            data["traced"] = self._was_traced(vcpu.vcpu_id, reason, token)
            if reason == KVM_PV_REASON_PAGE_NOT_PRESENT:
                data["duplicate"] = token in awaiting
                awaiting[token] = t_ns
                self.ledger.delivered["not_present"] += 1
                self.ledger.not_presents.setdefault(vcpu.vcpu_id, Counter())[token] += 1
            else:
                self._deliver_ready(vcpu, data)
            self._observe(Obs(t_ns, "deliver", vcpu.vcpu_id, data))
        elif self._irq and name == "kvm_async_pf_ready":
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._sync_epoch(vcpu)
            self._slot_before[vcpu.vcpu_id] = token_slot(self.m, vcpu)   # traced before the token is written
        elif self._irq and name == "kvm_apic_accept_irq":
            vcpu = self.m.vcpus[fields["ctx"][2]]
            if fields["vec"] == vcpu.arch.apf.vec and vcpu.vcpu_id in self._slot_before:
                self._ready_unacked[vcpu.vcpu_id] = self._raised_in_guest[vcpu.vcpu_id] = True
                self._observe(Obs(t_ns, "ready_irq", vcpu.vcpu_id,
                                  {"slot_before": self._slot_before.pop(vcpu.vcpu_id),
                                   "token": token_slot(self.m, vcpu), "lapic_enabled": vcpu.apic_sw_enabled}))
        elif name == "kvm_msr":
            self._on_registration(fields)
            self._on_msr_refused(fields)
            self._on_msr_abi(fields)
            if self._irq:
                self._on_pv_msr(fields)
        elif name == "kvm_async_pf_completed":
            self._on_completed(t_ns, fields)
        elif name in ("kvm_async_pf_not_present", "kvm_async_pf_ready"):
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._sync_epoch(vcpu)
            if name == "kvm_async_pf_not_present" and vcpu.arch.cpl == 0 and not send_always(self.m, vcpu) \
                    and apf_msr(self.m, vcpu) & KVM_ASYNC_PF_ENABLED and self.kernel is not None:
                self._observe(Obs(t_ns, "kernel_fault_halted", vcpu.vcpu_id,
                                  {"token": fields["token"], "preemptible": self.kernel.config.preemptible}))
            if apf_msr(self.m, vcpu) & KVM_ASYNC_PF_ENABLED:
                word = reason_word(self.m, vcpu)
                if word and self._word_is_event(vcpu):
                    self._observe(Obs(t_ns, "host_write", vcpu.vcpu_id,
                                      {"word": word, "event": name.removeprefix("kvm_async_pf_")}))
                self._handed[vcpu.vcpu_id] = False
        elif self._trace_after_write and name in ("kvm_exit", "kvm_send_async_pf"):
            # seed: only this vcpu's thread writes its word, between an exit and the next entry, at most once
            # (kvm_check_async_pf_completion in vcpu_enter_guest); the guest resets it in guest mode.  So the
            # word sampled at the last exit is the one the host has just overwritten.
            vcpu = self.m.vcpus[fields["ctx"][2]]
            vid = vcpu.vcpu_id
            if name == "kvm_send_async_pf":
                self._sync_epoch(vcpu)
                before, event_word = self._word_at_exit.get(vid, (0, False))
                if before and event_word:
                    event = "not_present" if fields["reason"] == KVM_PV_REASON_PAGE_NOT_PRESENT else "ready"
                    self._observe(Obs(t_ns, "host_write", vid, {"word": before, "event": event}))
                self._handed[vid] = False
            self._word_at_exit[vid] = (reason_word(self.m, vcpu), self._word_is_event(vcpu))

    def _adopt_events_in_flight(self) -> None:
        """Attached to a machine already running: an event queued for the guest was traced before we came."""
        if not self._apf_traced:
            return
        for vcpu in self.m.vcpus:
            exc, traced = vcpu.arch.exception, self._traced.setdefault(vcpu.vcpu_id, [])
            word, queued = reason_word(self.m, vcpu), exc.pending and exc.nr == x86.PF_VECTOR
            if queued and word == KVM_PV_REASON_PAGE_NOT_PRESENT:
                traced.append(("kvm_async_pf_not_present", vcpu.arch.cr2 & abi.U32))
            token = token_slot(self.m, vcpu) if self._irq else \
                (vcpu.arch.cr2 & abi.U32 if queued and word == KVM_PV_REASON_PAGE_READY else 0)
            if token:
                traced.append(("kvm_async_pf_ready", self._as_traced(token)))

    def _as_traced(self, token: int) -> int:
        """The token kvm_async_pf_ready prints for a page-ready carrying ``token``."""
        return BROADCAST_AS_TRACED[self.generation] if token == abi.BROADCAST_TOKEN else token

    def _was_traced(self, vid: int, reason: int, token: int) -> bool:
        """Match an event the guest receives with the host's tracepoint for it (consumed; earliest first).

        True where the generation has no such tracepoints (the seed traces kvm_send_async_pf instead).
        """
        if not self._apf_traced:
            return True
        if reason == KVM_PV_REASON_PAGE_NOT_PRESENT:
            want = ("kvm_async_pf_not_present", token)
        else:
            want = ("kvm_async_pf_ready", self._as_traced(token))
        traced = self._traced.get(vid, [])
        if want not in traced:
            return False
        traced.remove(want)
        return True

    def _on_prefault_point(self, t_ns: int, name: str, vcpu: Any, fields: dict) -> None:
        """Page-ready is traced after the prefault: is the page mapped, as no invalidation since its fault excuses?

        The token's gva is the faulting gpa (two-dimensional paging); a wake-all had no not-present of its own.
        """
        key, seq = (vcpu.vcpu_id, fields["token"]), self.m.kvm.mmu_notifier_seq
        if name == "kvm_async_pf_not_present":
            self._seq_at_fault[key] = seq
            return
        at_fault = self._seq_at_fault.pop(key, None)
        gfn = fields["gva"] >> abi.PAGE_SHIFT
        if at_fault == seq and self.m.kvm.mm.is_mapped(gfn_to_hva(self.m.kvm, gfn) & ~(abi.PAGE_SIZE - 1)):
            self._observe(Obs(t_ns, "ready_after_prefault", vcpu.vcpu_id,
                              {"token": fields["token"], "gfn": gfn, "mapped": spte_mapped(vcpu, gfn)}))

    def _on_completed(self, t_ns: int, fields: dict) -> None:
        """A worker reports its item complete (just before waking the vcpu): is the item on ``done`` yet?"""
        addr, slot = fields.get("address"), fields["ctx"][2]
        for vcpu in self.m.vcpus:
            for w, s in list(vcpu.workqueue.running.values()):
                if s == slot and peek(w, "addr") == addr and w.vcpu is vcpu:   # the item this worker runs (may be freed)
                    published = w in vcpu.async_pf.done or w.id in self._ever_done
                    self._observe(Obs(t_ns, "completed", vcpu.vcpu_id, {"addr": addr, "published": published}))
                    if "pfn" in fields:
                        self._observe(Obs(t_ns, "completed_pfn", vcpu.vcpu_id,
                                          {"addr": addr, "pfn": fields["pfn"], "frame": self._frame_at(addr)}))
                    return

    def _needs_io(self, gfn: int | None) -> bool:
        """The page behind ``gfn`` can only be had with IO: a memslot backs it and its page is swapped out or being read."""
        if gfn is None:
            return False
        hva = gfn_to_hva(self.m.kvm, gfn)
        mm = self.m.kvm.mm
        vma = None if kvm_is_error_hva(hva) else mm.find_vma(hva)
        return vma is not None and vma.kind == "anon" and mm.page_state(hva) in (PageState.SWAPPED, PageState.SWAPIN)

    def _frame_at(self, hva: int) -> int:
        """The host frame behind ``hva`` as the host mm holds it now, 0 if no anonymous page is there.

        Read from the mm's page table (the glue's arrays, as the timeline reads them), not from the worker.
        """
        mm = self.m.kvm.mm
        vma = mm.find_vma(hva)
        if vma is None or vma.kind != "anon" or not mm.is_mapped(hva):
            return 0
        return int(mm._pfn[mm._index(vma, hva)])

    def _deliver_ready(self, vcpu: Any, data: dict) -> None:
        """Match a page-ready the guest received against the not-presents it awaits (or the ~0 broadcast)."""
        token = data["token"]
        awaiting = self.ledger.awaiting[vcpu.vcpu_id]
        broadcasted = self.ledger.woken_by_broadcast.setdefault(vcpu.vcpu_id, set())
        if token == abi.BROADCAST_TOKEN:
            self.ledger.wake_alls[vcpu.vcpu_id] += 1
            broadcasted.update(awaiting)
            awaiting.clear()
            data["matched"] = True
            self.ledger.delivered["broadcast"] += 1
        else:
            data["after_broadcast"] = token in broadcasted and token not in awaiting
            broadcasted.discard(token)
            data["matched"] = awaiting.pop(token, None) is not None or data["after_broadcast"]
            self.ledger.readied.setdefault(vcpu.vcpu_id, Counter())[token] += 1
            self.ledger.delivered["ready"] += 1

    def _on_registration(self, fields: dict) -> None:
        """A guest write to MSR_KVM_ASYNC_PF_EN, enabling or disabling: the CPUID bit it relies on.

        ASYNC_PF_INT for an enable with interrupt delivery, ASYNC_PF for any other write (a disable too: the
        kernels write the MSR back to 0 only from a cpu they registered, kvm_pv_disable_apf's guard).
        """
        spec, data = self.m.gen, fields["data"]
        if fields["ecx"] != spec.msr_async_pf_en or self._by_probe(fields["ctx"][2]):   # a probe's write is no registration
            return
        vcpu = self.m.vcpus[fields["ctx"][2]]
        feature = abi.KVM_FEATURE_ASYNC_PF_INT if data & KVM_ASYNC_PF_DELIVERY_AS_INT else spec.kvm_feature_async_pf
        asked = self.kernel is None or self.kernel.config.pv
        self._observe(Obs(self.m.env.now, "registration", vcpu.vcpu_id,
                          {"feature": feature, "offered": bool(vcpu.arch.cpuid_features & (1 << feature)),
                           "asked": asked, "enabling": bool(data & KVM_ASYNC_PF_ENABLED)}))

    def _by_probe(self, vcpu_id: int) -> bool:
        """The guest task running on the vcpu is the configuration's MSR probe thread."""
        probe = self.view.probe_task
        return probe is not None and self.kernel is not None and self.kernel.cpus[vcpu_id].curr.comm == probe

    def _on_msr_refused(self, fields: dict) -> None:
        """A guest WRMSR the host refused (#GP) -- unless it is one the configuration's probe thread makes."""
        if fields["write"] and fields["exception"] and not self._by_probe(fields["ctx"][2]):
            self._observe(Obs(self.m.env.now, "msr_refused", fields["ctx"][2],
                              {"msr": fields["ecx"], "data": fields["data"]}))

    def _on_gp_owed(self, t_ns: int, name: str, fields: dict) -> None:
        """A refused guest WRMSR owes the guest #GP(0), the next exception injected on that vcpu (refused_wrmsr_gets_gp)."""
        vid = fields["ctx"][2]
        owed = self._gp_owed.pop(vid, None)
        if owed is not None:
            got = (fields["exception"], fields["error_code"]) if name == "kvm_inj_exception" else None
            if got != (x86.GP_VECTOR, 0):
                self._observe(Obs(t_ns, "gp_not_answered", vid, {"msr": owed[0], "data": owed[1],
                                                                  "instead": got or "another WRMSR first"}))
        if name == "kvm_msr" and fields["write"] and fields["exception"]:
            self._gp_owed[vid] = (fields["ecx"], fields["data"])

    def _on_msr_abi(self, fields: dict) -> None:
        """Any guest write to an async PF MSR (the kernel's or a probe's): the verdict and state the ABI implies."""
        gen = self.m.gen.name
        if not fields["write"]:
            return
        vcpu = self.m.vcpus[fields["ctx"][2]]
        msr, data = fields["ecx"], fields["data"]
        why = msr_abi.refusal(gen, vcpu, msr, data)
        if bool(why) != fields["exception"]:
            wrongs = ["refused (#GP)" if fields["exception"] else f"accepted ({why})"]
        elif why:
            wrongs = msr_abi.refused_aftermath(gen, vcpu, data, why, self._msr_at_entry.get(vcpu.vcpu_id))
        else:
            wrongs = msr_abi.aftermath(gen, vcpu, msr, data)
        for wrong in wrongs:
            self._observe(Obs(self.m.env.now, "msr_abi", vcpu.vcpu_id, {"msr": msr, "data": data, "wrong": wrong}))

    def on_vmm_msr(self, vcpu: Any, msr: int, data: int | None, refused: bool, value: int | None,
                   before: tuple) -> None:
        """A VMM KVM_SET_MSRS (``data``) or KVM_GET_MSRS (``data`` None, ``value`` read) of a judged MSR, just made.

        ``before``: :func:`msr_abi.held` as it stood before the access.  The seed's reads are not judged
        (no read rule is known for its patches).
        """
        gen = self.m.gen.name
        if not self.enabled or not msr_abi.judged(msr):
            return
        if data is None:
            if gen == "seed":
                return
            wrongs = self._vmm_read_wrongs(vcpu, msr, refused, value)
        else:
            why = msr_abi.refusal(gen, vcpu, msr, data)   # the VMM's write takes the guest's switch (msr_abi)
            if bool(why) != refused:
                wrongs = ["refused" if refused else f"accepted ({why})"]
            elif why:
                wrongs = msr_abi.refused_aftermath(gen, vcpu, data, why, before)
            else:
                wrongs = msr_abi.aftermath(gen, vcpu, msr, data)
        for wrong in wrongs:
            self._observe(Obs(self.m.env.now, "vmm_msr", vcpu.vcpu_id,
                              {"msr": msr, "access": "KVM_GET_MSRS" if data is None else f"KVM_SET_MSRS {data:#x}",
                               "wrong": wrong}))

    def _vmm_read_wrongs(self, vcpu: Any, msr: int, refused: bool, value: int | None) -> list[str]:
        """A VMM read against msr_abi.vmm_read: refused or not, the value; 6.18 zeroes a refused read's value."""
        expected = msr_abi.vmm_read(self.m.gen.name, vcpu, msr)
        if expected is None:
            if not refused:
                return [f"read {value:#x} of an MSR the generation does not know or the PV CPUID does not offer"]
            return [f"refused, yet returned {value:#x} (6.18 zeroes it)"] if self._irq and value != 0 else []
        if refused:
            return [f"refused (holds {expected:#x})"]
        return [] if value == expected else [f"reads {value:#x}, holds {expected:#x}"]

    def _on_pv_msr(self, fields: dict) -> None:
        """An MSR write in the interrupt era: the ACK, and whether a PV MSR the CPUID does not offer was accepted."""
        vcpu = self.m.vcpus[fields["ctx"][2]]
        spec = self.m.gen
        msr, accepted = fields["ecx"], fields["write"] and not fields["exception"]
        if msr == spec.msr_async_pf_ack and accepted and fields["data"] & 1:
            self._acked[vcpu.vcpu_id] = True
            # the ACK ends the pending page-ready, even one raised at the entry before it; one raised since that entry
            # came from the ACK's own look at done (traced before kvm_msr) and is pending
            self._ready_unacked[vcpu.vcpu_id] = self._raised_in_guest.get(vcpu.vcpu_id, False)
        feature = {spec.msr_async_pf_en: spec.kvm_feature_async_pf, spec.msr_async_pf_int: abi.KVM_FEATURE_ASYNC_PF_INT,
                   spec.msr_async_pf_ack: abi.KVM_FEATURE_ASYNC_PF_INT}.get(msr)
        if feature is not None and accepted and vcpu.arch.pv_cpuid_enforce \
                and not vcpu.arch.cpuid_features & (1 << feature):
            self._observe(Obs(self.m.env.now, "pv_msr_accepted", vcpu.vcpu_id, {"msr": msr, "feature": feature}))

    def _word_is_event(self, vcpu: Any) -> bool:
        """The reason word belongs to an event: its #PF is still queued, or was delivered to the guest.

        A vcpu reset (kvm_arch_vcpu_reset) drops a queued #PF but not the word the host wrote for it;
        that word tells the guest nothing, and writing over it clobbers nothing.
        """
        return bool(self._handed.get(vcpu.vcpu_id)) or vcpu.arch.exception.pending

    # -- the host's fault path (issue 15): what it decided, judged at a sleep and at the next entry ----------
    def _on_fault_path(self, t_ns: int, name: str, fields: dict) -> None:
        """Record whether an EPT violation could go async, and owe an APF halt after a repeated fault.

        ``ledger.fault_at[vcpu]``: the gfn of the vcpu's last EPT violation and whether async PF was
        possible then (in-kernel irqchip, interrupts allowed, no event awaiting reinjection -- can_do_async_pf@v2.6.38,
        kvm_can_do_async_pf@v6.18), read by :func:`~asyncpf.check.invariants.no_sync_stall_on_outstanding_gfn`.
        A repeated fault (doublefault in 2.6.38) owes a halt before the vcpu's next entry.  The guest runs nothing
        in between, so the ledger's epoch count (``wake_alls``) moves there only when the VMM resets the vcpu
        (its MSR goes to 0, :meth:`_sync_epoch`): such an entry is reported as after a reset.
        """
        if name == "kvm_page_fault":
            vcpu = self.m.vcpus[fields["ctx"][2]]
            arch = vcpu.arch     # restated from the state, not asked of the twins judged here
            reinjecting = arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected
            if self.m.gen.name == "seed":   # seed 000 can_do_async_pf: registered, nothing to reinject, not CPL0
                possible = arch.apf.msr_val & KVM_ASYNC_PF_ENABLED and not reinjecting and arch.cpl != 0
            else:
                possible = vcpu.kvm.irqchip_in_kernel and arch.rflags_if and not arch.interrupt_shadow \
                    and not reinjecting
            self.ledger.fault_at[vcpu.vcpu_id] = \
                {"gfn": fields["fault_address"] >> abi.PAGE_SHIFT, "async_possible": bool(possible)}
        elif name == "kvm_try_async_get_page":
            vid = fields["ctx"][2]
            self._setup_attempts[vid] += 1      # a set-up follows unless the gfn is outstanding (below)
            self._setting_up = vid
            fault = self.ledger.fault_at.get(vid)
            self._observe(Obs(t_ns, "async_pf_tried", vid, {"gfn": None if fault is None else fault["gfn"],
                                                            "possible": fault is not None and fault["async_possible"]}))
            gfn = fields["gfn"] if "gfn" in fields else None if fault is None else fault["gfn"]
            if not fields.get("r", False):   # the seed traces every lookup, with r = 1 when it got the pfn at once
                self._observe(Obs(t_ns, "went_async", vid, {"gfn": gfn, "needs_io": self._needs_io(gfn)}))
        elif name in ("kvm_async_pf_doublefault", "kvm_async_pf_repeated_fault"):
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._setup_attempts[vcpu.vcpu_id] -= 1
            self._sync_epoch(vcpu)
            self._halt_owed[vcpu.vcpu_id] = (fields["gfn"], vcpu.stat["apf_halts"],
                                             self.ledger.wake_alls[vcpu.vcpu_id])
        elif name == "kvm_async_pf_not_present" and self._apf_traced:
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._sync_epoch(vcpu)
            self._on_token(t_ns, vcpu.vcpu_id, fields["token"])
            self._on_told_after_refusal(t_ns, vcpu.vcpu_id, fields["token"])
            self._answer_owed[vcpu.vcpu_id] = {
                "token": fields["token"], "can_tell": can_tell_not_present(self.m, vcpu),
                "area_ok": area_writable(self.m, vcpu), "halts": vcpu.stat["apf_halts"],
                "epoch": self.ledger.wake_alls[vcpu.vcpu_id]}
        elif name == "kvm_send_async_pf" and fields["reason"] == KVM_PV_REASON_PAGE_NOT_PRESENT:   # the seed's
            self._on_told_after_refusal(t_ns, fields["ctx"][2], fields["token"])
        elif name == "kvm_exit":   # 6.18: the exit's handler may have queued a wake-all and its request (EN write)
            vcpu = self.m.vcpus[fields["ctx"][2]]
            self._setting_up = None
            if self._irq:
                self._note_requested_completions(vcpu)
                self._ready_req_since_exit[vcpu.vcpu_id] = bool(vcpu.requests & KVM_REQ_APF_READY)
            else:
                self._done_at_exit[vcpu.vcpu_id] = frozenset(w.id for w in vcpu.async_pf.done)
        elif name == "kvm_entry":
            vid = fields["ctx"][2]
            self._on_entry_with_completions(t_ns, self.m.vcpus[vid])
            if self._irq:
                self._observe(Obs(t_ns, "entry_with_ready_request", vid,
                                  {"pending": bool(self._ready_req_since_exit.pop(vid, False)
                                                   and self.m.vcpus[vid].requests & KVM_REQ_APF_READY)}))
                self._observe(Obs(t_ns, "pageready_handshake", vid,
                                  {"pending": self.m.vcpus[vid].arch.apf.pageready_pending,
                                   "unacked": self._ready_unacked.get(vid, False)}))
                self._raised_in_guest[vid] = False
            if vid in self._halt_owed:
                vcpu = self.m.vcpus[vid]
                self._sync_epoch(vcpu)
                gfn, halts, epoch = self._halt_owed.pop(vid)
                self._observe(Obs(t_ns, "entry_after_repeated_fault", vid,
                                  {"gfn": gfn, "halted": vcpu.stat["apf_halts"] > halts,
                                   "reset": self.ledger.wake_alls[vid] != epoch}))
            if vid in self._answer_owed:
                self._on_entry_after_not_present(t_ns, self.m.vcpus[vid], self._answer_owed.pop(vid))

    def _on_told_after_refusal(self, t_ns: int, vid: int, token: int) -> None:
        """A not-present for the vcpu's last fault: was that fault's item allocation refused (see _wrap_alloc_fail)?"""
        fault = self.ledger.fault_at.get(vid)
        if fault is not None and fault.get("refused"):
            self._observe(Obs(t_ns, "not_present_after_refusal", vid, {"token": token, "gfn": fault["gfn"]}))

    def _on_token(self, t_ns: int, vid: int, token: int) -> None:
        """A not-present's token against the vcpu's counter, restated: one value per set-up tried since the last one.

        2.6.38's kvm_arch_setup_async_pf takes ``apf.id++`` before kvm_setup_async_pf may refuse (limit, allocation),
        so a refused set-up uses a value too; 6.18's alloc_apf_token also skips the value whose token id is 0.
        The first not-present of a vcpu only sets the counter.
        """
        tried, self._setup_attempts[vid] = self._setup_attempts[vid], 0
        mask = abi.U32 >> abi.TOKEN_VCPU_BITS
        counter = self._token_next.get(vid)
        if counter is not None:
            expected = None     # a not-present with no set-up tried for it has no token to expect
            for _ in range(tried):
                if self._irq and counter == 0:
                    counter = 1
                expected, counter = abi.make_token(counter, vid), (counter + 1) & mask
            self._observe(Obs(t_ns, "token_allocated", vid, {"token": token, "expected": expected, "tried": tried}))
        self._token_next[vid] = ((token >> abi.TOKEN_VCPU_BITS) + 1) & mask

    def _note_requested_completions(self, vcpu: Any) -> None:
        """6.18: the completions on ``done`` while KVM_REQ_APF_READY is pending are due at the request's service."""
        if vcpu.requests & KVM_REQ_APF_READY:
            self._done_while_requested.setdefault(vcpu.vcpu_id, set()).update(w.id for w in vcpu.async_pf.done)

    def _on_entry_with_completions(self, t_ns: int, vcpu: Any) -> None:
        """Completions the host was due to consume before this entry (see completion_taken_when_possible)."""
        if not self._apf_traced:
            return
        vid, on_done = vcpu.vcpu_id, {w.id for w in vcpu.async_pf.done}
        arch = vcpu.arch
        if self._irq:
            if vcpu.requests & KVM_REQ_APF_READY:
                return
            due = self._done_while_requested.pop(vid, set()) & on_done
            on = KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT
            gate = arch.apf.msr_en_val & on != on or (vcpu.kvm.irqchip_in_kernel and vcpu.apic_sw_enabled
                                                      and token_slot_free(self.m, vcpu))
            left = len(due) if gate else 0
        else:
            due = self._done_at_exit.pop(vid, frozenset())
            reinjecting = arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected
            can_take = not arch.apf.msr_val & KVM_ASYNC_PF_ENABLED or \
                (arch.rflags_if and not arch.interrupt_shadow and not reinjecting)
            left = len(due) if due and due <= on_done and can_take else 0
        if left:
            self._observe(Obs(t_ns, "entry_with_completions", vid, {"left": left}))

    def _on_entry_after_not_present(self, t_ns: int, vcpu: Any, owed: dict) -> None:
        """The first entry after a not-present was traced: was the guest told (its #PF queued), or did it halt?"""
        self._sync_epoch(vcpu)
        exc = vcpu.arch.exception
        told = exc.pending and exc.nr == x86.PF_VECTOR and vcpu.arch.cr2 & abi.U32 == owed["token"]
        self._observe(Obs(t_ns, "entry_after_not_present", vcpu.vcpu_id,
                          {"token": owed["token"], "can_tell": owed["can_tell"], "area_ok": owed["area_ok"],
                           "told": bool(told), "halted": vcpu.stat["apf_halts"] > owed["halts"],
                           "reset": self.ledger.wake_alls[vcpu.vcpu_id] != owed["epoch"]}))

    # -- the run loop (issue 15): what an entry needs, and what must come between a halt and the next entry ----------
    def _on_run_loop(self, t_ns: int, name: str, fields: dict) -> None:
        """At each entry, record the vcpu's run state; from an exit that halts it (HLT, KVM_REQ_APF_HALT), owe a wake.

        The wake conditions are those of kvm_arch_vcpu_runnable (2.6.38, v6.18) restated from the state
        (:meth:`_halt_wake_seen`), plus a page-ready traced for the vcpu (the completion that ends the halt) and a
        reset (:meth:`_wrap_reset`), so a vcpu that leaves the halt with nothing to wake it is caught at its entry.
        """
        if name not in ("kvm_entry", "kvm_exit", "kvm_async_pf_ready"):
            return
        vid = fields["ctx"][2]
        vcpu = self.m.vcpus[vid]
        if name == "kvm_async_pf_ready":
            if vid in self._halt_woken:
                self._halt_woken[vid] = True
            return
        if name == "kvm_exit":
            if vcpu.requests & x86.KVM_REQ_APF_HALT or vcpu.arch.mp_state == x86.KVM_MP_STATE_HALTED:
                self._halt_woken[vid] = self._halt_wake_seen(vcpu)
            return
        arch = vcpu.arch
        owed = vid in self._halt_woken
        woken = self._halt_woken.pop(vid, True) or self._halt_wake_seen(vcpu)
        self._observe(Obs(t_ns, "entry", vid, {"mp_state": arch.mp_state, "halted": arch.apf.halted,
                                               "halt_requested": bool(vcpu.requests & x86.KVM_REQ_APF_HALT),
                                               "after_halt": owed, "woken": woken}))

    @staticmethod
    def _halt_wake_seen(vcpu: Any) -> bool:
        """Something that makes a halted vcpu runnable: a completion on done, a pending exception, an allowed interrupt."""
        arch = vcpu.arch
        return bool(vcpu.async_pf.done or arch.exception.pending
                    or (vcpu.irr and arch.rflags_if and not arch.interrupt_shadow) or vcpu.stopped)

    def _observe(self, obs: Obs) -> None:
        view = self.view
        view.obs.append(obs)
        view.nodes_now = WALK
        self._run_all(self.events if self.judging else self._remembering_events)
        view.nodes_now = None
        view.obs.clear()

    # -- running predicates -----------------------------------------------------------------
    def _run_all(self, invs: Any) -> None:
        """Run each predicate on the view (one loop for a batch: a Python call less per predicate and step)."""
        view = self.view
        for inv in invs:
            try:
                details = inv.fn(view)
            except Exception as exc:  # a predicate must not take the run down; report it as data
                details = [f"predicate raised {type(exc).__name__}: {exc}"]
            if details:
                self._record(inv, details)

    def _record(self, inv: Invariant, details: list[str]) -> None:
        self.counts[inv.name] += 1
        if self.first_only and self.counts[inv.name] > 1:
            return
        v = Violation(inv.name, self.m.env.now, "; ".join(details))
        self.violations.append(v)
        if self.on_violation is not None:
            self.on_violation(v)

    def check_state(self) -> None:
        for vcpu in self.m.vcpus:
            if self._halt_woken.get(vcpu.vcpu_id) is False and self._halt_wake_seen(vcpu):
                self._halt_woken[vcpu.vcpu_id] = True
            for w in vcpu.async_pf.done:
                self._ever_done.add(w.id)
            if self._irq:
                self._note_requested_completions(vcpu)
                if not vcpu.requests & KVM_REQ_APF_READY:
                    self._ready_req_since_exit[vcpu.vcpu_id] = False
                elif vcpu.mode == "blocked":     # made while it sleeps: its next vcpu_enter_guest must look at it
                    self._ready_req_since_exit[vcpu.vcpu_id] = True
            if self.ledger.msr.get(vcpu.vcpu_id) != apf_msr(self.m, vcpu):
                self._sync_epoch(vcpu)
        view = self.view
        view.nodes_now = WALK
        self._run_all(self.safety if self.judging else self._remembering_safety)
        view.nodes_now = None

    def check_end(self, shut_down: bool = True) -> list[Violation]:
        view = self.view
        view.shut_down = shut_down
        before = len(self.violations)
        view.nodes_now = WALK
        self._run_all(self.end)
        view.nodes_now = None
        return self.violations[before:]


@lru_cache(maxsize=None)
def remembers(inv: Invariant) -> bool:
    """Whether a predicate keeps state between calls, so that it must see every step (its ``remembers`` flag).

    The explorer skips the others on a replayed prefix.
    """
    return inv.remembers


def attach(machine: "Machine", kernel: "GuestKernel | None" = None, **kw: Any) -> Checker:
    """A :class:`Checker` hooked into ``machine`` (before it runs)."""
    return Checker(machine, kernel, **kw).attach()


def check_state(machine: "Machine", kernel: "GuestKernel | None" = None, *, end: bool = False,
                shut_down: bool = False) -> list[Violation]:
    """Evaluate the safety (and with ``end``, the end-of-run) invariants on a machine as it stands now."""
    c = Checker(machine, kernel)
    c.check_state()
    if end:
        c.check_end(shut_down)
    return c.violations


def check(run: Any) -> list[Violation]:
    """The violations of a finished run: anything with a ``checker`` (or ``violations``) attribute, or a machine.

    Never raises: a machine without a checker is judged on its current state
    (safety and end-of-run invariants).
    """
    checker = getattr(run, "checker", None)
    if checker is not None:
        return list(checker.violations)
    if hasattr(run, "violations"):
        return list(run.violations)
    try:
        return check_state(run, getattr(run, "guest", None), end=True, shut_down=getattr(run, "shut_down", False))
    except Exception as exc:
        return [Violation("check", 0, f"could not check {run!r}: {type(exc).__name__}: {exc}")]
