"""The protocol's invariants: a registry of named predicates, each with its source.

An invariant is a pure function ``fn(view) -> list[str]``: the empty list
when the property holds, otherwise one detail line per offending object.  It
never changes the model and never raises on a bad state.  Three kinds, as
TLA+ keeps ``TypeOK``/``Inv`` apart from ``Prop``:

* ``safety`` -- a predicate on the current state, checked after every engine
  step (and at every instruction boundary the guest reaches);
* ``event`` -- a predicate on what the guest has just been handed (an
  exception with its reason word and CR2, a reason word the host is about to
  overwrite, an instruction boundary), checked as it happens;
* ``end`` -- a property of a quiescent run: after the tasks are done and the
  VM has been destroyed.

Sources are the sentences of ``Documentation/virtual/kvm/msr.txt``, kernel
comments, fix commits and list messages, each cited publicly (file@tag, commit, Msg-Id).

Generations: an invariant holds the generations it speaks of
(``Invariant.generations``; ``None`` = every modelled one).  The gfn hash, the
per-vcpu limit, the ``queued`` count and the ~0 broadcast exist only in the
merged (legacy) ABI, so their invariants say ``("legacy",)`` and a checker on
a seed-generation machine does not run them.  Behaviour a generation shows by
design is recorded in :data:`~asyncpf.check.known.KNOWN` with its source
(reported, never held against the model).

:mod:`asyncpf.check.checker` runs the registry against a machine and fills
the :class:`Ledger` and :class:`Obs` records a :class:`View` hands to each
predicate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..abi import (KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_ENABLED, KVM_PV_REASON_PAGE_NOT_PRESENT,
                   KVM_PV_REASON_PAGE_READY)
from ..guest import kvm as pv
from ..guest.sched import TASK_DEAD, TASK_RUNNING
from ..host import x86
from ..host.async_pf import peek
from ..host.interrupt.lapic import KVM_REQ_APF_READY
from ..host.kvm_main import gfn_to_hva, read_guest_bytes

if TYPE_CHECKING:
    from ..guest.kernel import GuestKernel
    from ..machine import Machine

SAFETY, EVENT, END = "safety", "event", "end"


@dataclass(frozen=True)
class Violation:
    """One broken invariant: its name, the simulated time (ns) and what was wrong."""

    name: str
    t: int
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "t": self.t, "detail": self.detail}


@dataclass(frozen=True)
class Invariant:
    name: str
    kind: str
    doc: str
    source: str
    fn: Callable[["View"], list[str]]
    generations: tuple[str, ...] | None = None   # None: every modelled generation
    why_not: str = ""                            # why the other generations have nothing to check
    remembers: bool = False                      # keeps state in View.memory: must see every step

    def applies_to(self, generation: str) -> bool:
        return self.generations is None or generation in self.generations


REGISTRY: dict[str, Invariant] = {}


def invariant(kind: str, source: str, *, generations: tuple[str, ...] | None = None, why_not: str = "",
              remembers: bool = False):
    """Register ``fn`` under its own name; its docstring's first sentence is the property.

    ``generations`` limits it to the protocol generations that have the state
    it speaks of; ``why_not`` says what the others lack (with a source).
    ``remembers``: the predicate keeps state between calls in ``View.memory``
    (and nowhere else), so the explorer must show it every step, a replayed
    prefix included.
    """
    if generations is not None and not why_not:
        raise ValueError("an invariant limited to some generations must say why the others are left out")

    def register(fn: Callable[["View"], list[str]]) -> Callable[["View"], list[str]]:
        if fn.__name__ in REGISTRY:
            raise ValueError(f"invariant {fn.__name__!r} registered twice")
        doc = (fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        REGISTRY[fn.__name__] = Invariant(fn.__name__, kind, doc, source, fn, generations, why_not, remembers)
        return fn
    return register


def applicable(generation: str) -> list[Invariant]:
    """The invariants a machine of ``generation`` is held to, in registration order."""
    return [i for i in REGISTRY.values() if i.applies_to(generation)]


# --- what a predicate sees ---------------------------------------------------------------

@dataclass(frozen=True)
class Obs:
    """One guest-visible happening recorded by the checker's hooks (raw facts, no judgement)."""

    t: int
    kind: str          # deliver | host_write | boundary
    vcpu: int
    data: dict


@dataclass
class Ledger:
    """Book-keeping of the token conversation, per vcpu, from what the guest was handed.

    ``awaiting[v]``: tokens of page-not-present #PFs delivered on vcpu ``v``
    and not yet answered.  ``msr[v]``: the MSR value the current *epoch* was
    opened with -- a write to MSR_KVM_ASYNC_PF_EN or a reset starts a new one
    and forgets what was awaited (msr.txt: disabling drops outstanding
    faults, the guest wakes its own sleepers).
    """

    awaiting: dict[int, dict[int, int]] = field(default_factory=dict)
    woken_by_broadcast: dict[int, set[int]] = field(default_factory=dict)  # awaited tokens a ~0 answered
    msr: dict[int, int] = field(default_factory=dict)
    delivered: Counter = field(default_factory=Counter)  # (kind) -> count, for reports
    # per vcpu: wake-alls seen (a ~0 delivered, or an epoch change), page-readys and not-presents by token
    wake_alls: Counter = field(default_factory=Counter)
    readied: dict[int, Counter] = field(default_factory=dict)
    not_presents: dict[int, Counter] = field(default_factory=dict)
    # per vcpu: the gfn of its last EPT violation and whether async PF was possible then (the host's fault path)
    fault_at: dict[int, dict] = field(default_factory=dict)


@dataclass
class View:
    """The state a predicate reads: the machine, its guest kernel, the ledger, fresh observations."""

    machine: "Machine"
    kernel: "GuestKernel | None"
    ledger: Ledger
    obs: list[Obs] = field(default_factory=list)
    shut_down: bool = False
    # progress: set by the explorer from its configuration (None: not checked), counted by the checker
    answer_bound_ns: int | None = None     # a delivered not-present must be answered within this
    grace_ns: int | None = None            # a blocked vcpu with completions on done must wake within this
    step_budget: int | None = None         # engine steps one schedule may take
    instant_budget: int | None = None      # engine steps at one simulated instant (a livelock beyond)
    steps: int = 0
    steps_at_instant: int = 0
    probe_task: str | None = None          # the configuration's MSR probe thread (its refused writes are on purpose)
    memory: dict = field(default_factory=dict)   # what the progress predicates remember between steps
    nodes_now: list | None = field(default=None, repr=False)  # the sleepers, walked once per batch (see below)

    @property
    def vcpus(self) -> list:
        return self.machine.vcpus

    @property
    def sleeper_nodes(self) -> list:
        """Every node in the guest's sleeper hash, bucket by bucket.

        The checker walks the 256 buckets once per batch of predicates (:meth:`Checker.check_state`, an
        observation, the end) instead of once per predicate: it sets ``nodes_now`` to :data:`WALK` before each
        batch and to None after, and predicates change nothing.  Outside a batch (None) every call walks afresh.
        """
        nodes = self.nodes_now
        if nodes is None:
            return pv.all_nodes(self.kernel.sleepers)
        if nodes is WALK:
            nodes = self.nodes_now = pv.all_nodes(self.kernel.sleepers)
        return nodes


WALK: list = []   # View.nodes_now in a batch before the first walk (a list of its own, told apart by identity)


def _vcpu_thread_waits(vcpu) -> list:
    """What the vcpu thread sleeps on: its engine wait and, with host CPUs modelled, what its host thread slept on
    until it runs its own code again (it may be back from the wait but still waiting for its CPU)."""
    proc = vcpu.proc
    thread = getattr(vcpu, "host_thread", None)
    return [ev for ev in (getattr(proc, "_waiting_on", None) if proc is not None else None,
                          thread.sleeping_on if thread is not None else None) if ev is not None]


def _is_clearing(vcpu) -> bool:
    """The vcpu thread waits in cancel_work_sync (kvm_clear_async_pf_completion_queue) for a worker.

    With host CPUs modelled the wait goes on after the worker is done: the vcpu
    thread waits for its CPU and runs its sched_in notifiers before it is back in
    the clear, which still has ``queued`` and the hash to reset.
    """
    return any(ev.name.startswith("work#") for ev in _vcpu_thread_waits(vcpu))


# --- safety: host bookkeeping --------------------------------------------------------------


@invariant(SAFETY, "virt/kvm/async_pf.c@v2.6.38: queued++ in kvm_setup_async_pf and "
                   "kvm_async_pf_wakeup_all, queued-- in kvm_check_async_pf_completion",
           generations=("legacy", "interrupt"),
           why_not="the seed keeps no count: a done list and one not-yet-injected slot (v2 patch 08/12, Msg-Id 1258985167-29178-9-git-send-email-gleb@redhat.com)")
def queued_counts_outstanding(v: View) -> list[str]:
    """``async_pf.queued`` equals the outstanding work items plus the broadcast items waiting on ``done``."""
    out = []
    for vcpu in v.vcpus:
        if _is_clearing(vcpu):
            continue  # cancel_work_sync sleeps in the middle of the clear; queued is reset at its end
        apf = vcpu.async_pf
        broadcast = sum(1 for w in apf.done if w.wakeup_all and w not in apf.queue)
        if apf.queued != len(apf.queue) + broadcast:
            out.append(f"vcpu{vcpu.vcpu_id}: queued={apf.queued} but |queue|={len(apf.queue)} + broadcast={broadcast}")
    return out


@invariant(SAFETY, "virt/kvm/async_pf.c@v2.6.38 kvm_setup_async_pf: "
                   "'if (vcpu->async_pf.queued >= ASYNC_PF_PER_VCPU) return 0'",
           generations=("legacy", "interrupt"),
           why_not="the seed has no per-vcpu limit; it arrived with v4 (v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com)")
def queue_within_limit(v: View) -> list[str]:
    """No vcpu has more real (non-broadcast) work outstanding than the generation's per-vcpu limit."""
    limit = v.machine.gen.async_pf_per_vcpu
    if limit is None:
        return []
    return [f"vcpu{vc.vcpu_id}: {len(vc.async_pf.queue)} outstanding > {limit}"
            for vc in v.vcpus if len(vc.async_pf.queue) > limit]


# hash_32's multiplier per generation (include/linux/hash.h): 2.6.38's GOLDEN_RATIO_PRIME_32, since v4.7
# GOLDEN_RATIO_32.  Restated here so that the gfn table is judged against the kernel's layout, not the model's.
_HASH_32_MULTIPLIER = {"legacy": 0x9E370001, "interrupt": 0x61C88647}


def _gfn_found(gfns: "list[int]", gfn: int, multiplier: int) -> bool:
    """Whether the kernel's probe finds ``gfn``: from its home, hash_32(gfn & 0xffffffff, 6), slot by slot
    (wrapping at 64) until the gfn or a free slot (~0), at most 64 slots."""
    key = (((gfn & 0xFFFFFFFF) * multiplier) & 0xFFFFFFFF) >> 26
    for _ in range(64):
        if gfns[key] == gfn:
            return True
        if gfns[key] == x86.GFN_SLOT_EMPTY:
            return False
        key = (key + 1) & 63
    return False


@invariant(SAFETY, "arch/x86/kvm/x86.c@v2.6.38 kvm_add/del/find_async_pf_gfn (and @v6.18, with hash.h's "
                   "newer hash_32 multiplier); the backward-shift deletion keeps every probe chain intact",
           generations=("legacy", "interrupt"),
           why_not="the seed has no gfn hash: it came with the APF halt in v6/v7 ('Halt vcpu if page it tries to access is swapped out', v7 02/12, af585b921e5d)")
def hash_iff_outstanding(v: View) -> list[str]:
    """A gfn is in the per-vcpu hash, once, where the kernel's probe from its home finds it, if and only if a real
    work item for it is outstanding on that vcpu."""
    if not v.machine.gen.apf_halt:
        return []
    multiplier = _HASH_32_MULTIPLIER[v.machine.gen.name]
    out = []
    for vcpu in v.vcpus:
        if _is_clearing(vcpu):
            continue
        slots = vcpu.arch.apf.gfns.tolist()
        if not vcpu.async_pf.queue and slots.count(x86.GFN_SLOT_EMPTY) == len(slots):
            continue  # the common step: nothing outstanding, an empty table (judged as the loops below would)
        outstanding = {w.arch.gfn for w in vcpu.async_pf.queue}
        stored = Counter(g for g in slots if g != x86.GFN_SLOT_EMPTY)
        for gfn in sorted(outstanding):
            if not _gfn_found(slots, gfn, multiplier):
                out.append(f"vcpu{vcpu.vcpu_id}: gfn {gfn:#x} is outstanding but the probe from its home misses it")
        for gfn in sorted(set(stored) - outstanding):
            out.append(f"vcpu{vcpu.vcpu_id}: gfn {gfn:#x} is in the hash with no outstanding work")
        out += [f"vcpu{vcpu.vcpu_id}: gfn {gfn:#x} is in the hash {n} times" for gfn, n in sorted(stored.items()) if n > 1]
    return out


@invariant(SAFETY, "arch/x86/kvm/mmu.c:try_async_pf (2.6.38): an outstanding gfn makes the vcpu halt "
                   "(kvm_async_pf_doublefault) instead of starting a second APF",
           generations=("legacy", "interrupt"),
           why_not="the seed looks no gfn up: a second fault on a page in flight starts a second APF "
                   "(seed 000 tdp_page_fault; config seed_same_page)")
def gfn_outstanding_once(v: View) -> list[str]:
    """No vcpu has two outstanding work items for the same gfn."""
    if not v.machine.gen.apf_halt:
        return []
    out = []
    for vcpu in v.vcpus:
        if len(vcpu.async_pf.queue) < 2:
            continue  # no two items to share a gfn (most steps; a Counter costs more than the rest)
        seen = Counter(w.arch.gfn for w in vcpu.async_pf.queue)
        out += [f"vcpu{vcpu.vcpu_id}: {n} work items for gfn {g:#x}" for g, n in sorted(seen.items()) if n > 1]
    return out


@invariant(SAFETY, "arch/x86/kvm/mmu.c@v2.6.38 kvm_arch_setup_async_pf: token = (apf.id++ << 12) | vcpu_id identifies one outstanding fault")
def tokens_unique(v: View) -> list[str]:
    """Tokens are unique among the outstanding work items of the VM, and among the not-presents awaiting an answer."""
    tokens = [w.arch.token for vc in v.vcpus for w in vc.async_pf.queue]
    seen = Counter(tokens) if len(tokens) > 1 else {}
    out = [f"token {t:#x} held by {n} outstanding work items" for t, n in sorted(seen.items()) if n > 1]
    for o in v.obs:
        if o.kind == "deliver" and o.data.get("duplicate"):
            out.append(f"vcpu{o.vcpu}: page-not-present {o.data['token']:#x} delivered while one with that token "
                       "was still unanswered")
    return out


@invariant(EVENT, "arch/x86/kvm/mmu.c@v2.6.38 kvm_arch_setup_async_pf: 'arch.token = (vcpu->arch.apf.id++ << 12) | "
                  "vcpu->vcpu_id', taken before kvm_setup_async_pf may refuse; arch/x86/kvm/mmu/mmu.c@v6.18 "
                  "alloc_apf_token (the same counter, skipping the value whose token id is 0: 'KVM: x86/mmu: make apf "
                  "token non-zero to fix bug', Msg-Id 20220210084113.73005-1-zhangliang5@huawei.com)",
           generations=("legacy", "interrupt"),
           why_not="the seed traces no not-present of its own (kvm_send_async_pf comes at the injection, from one slot)")
def tokens_follow_the_counter(v: View) -> list[str]:
    """Each not-present a vcpu traces carries the next value of its token counter: one step per set-up tried since the last.

    The counter is restated from the tokens traced and the set-ups the fault path traced (kvm_try_async_get_page
    without a repeated fault), not read from the host.
    """
    return [f"vcpu{o.vcpu}: not-present token {o.data['token']:#x} after {o.data['tried']} set-up(s) tried, expected "
            + ("none (no set-up tried)" if o.data["expected"] is None else f"{o.data['expected']:#x}")
            for o in v.obs if o.kind == "token_allocated" and o.data["token"] != o.data["expected"]]


@invariant(SAFETY, "9a6e7c39810e (2017: 'Fix #DF due to inject Page not Present and Page Ready exceptions "
                   "simultaneously', 2a266f23550b 'check pending exception before injecting APF')")
def no_two_apf_pf_in_one_entry(v: View) -> list[str]:
    """Two asynchronous #PFs are never queued for one entry (which the CPU would merge into a #DF)."""
    out = []
    for vcpu in v.vcpus:
        exc = vcpu.arch.exception
        if vcpu.stat["double_faults"] or vcpu.stat["triple_faults"] or (exc.pending and exc.nr == x86.DF_VECTOR):
            out.append(f"vcpu{vcpu.vcpu_id}: double_faults={vcpu.stat['double_faults']} "
                       f"triple_faults={vcpu.stat['triple_faults']} pending={exc.nr if exc.pending else None}")
    return out


@invariant(SAFETY, "the guest kernel never panics in a correct protocol run (an unexpected #DF panics it)")
def guest_alive(v: View) -> list[str]:
    """The guest kernel has not panicked."""
    k = v.kernel
    return [k.panicked] if k is not None and k.panicked else []


# --- events: what the guest is handed ------------------------------------------------------


@invariant(EVENT, "msr.txt (2.6.38): 'If bit 1 is 1 ... asynchronous page faults can be injected when vcpu is "
                  "in cpl == 0'; arch/x86/kvm/x86.c:kvm_arch_async_page_not_present (send_user_only); seed 000 "
                  "can_do_async_pf: never at CPL0")
def cpl0_only_with_send_always(v: View) -> list[str]:
    """A page-not-present #PF reaches the guest at CPL0 only if the guest registered with SEND_ALWAYS.

    The seed has no SEND_ALWAYS bit (the host records every registration as
    user-only), so there it reads "never at CPL0": its can_do_async_pf
    refuses a fault taken at CPL0 (seed 000).
    """
    return [f"vcpu{o.vcpu}: not-present {o.data['token']:#x} delivered at CPL0 without SEND_ALWAYS"
            for o in v.obs if o.kind == "deliver" and o.data["reason"] == KVM_PV_REASON_PAGE_NOT_PRESENT
            and o.data["cpl"] == 0 and not o.data["send_always"]]


@invariant(EVENT, "(2020, bugzilla 208081, Msg-Id 873673b8gc.fsf@vitty.brq.redhat.com: page-ready for a never-injected not-present "
                  "left stale dummies -> notpresent_injected); msr.txt: page-ready carries the not-present's token")
def ready_only_after_not_present(v: View) -> list[str]:
    """Every page-ready the guest receives answers a page-not-present it received with the same token (or is the ~0 broadcast)."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} with no unanswered not-present for it"
            for o in v.obs if o.kind == "deliver" and o.data["reason"] == KVM_PV_REASON_PAGE_READY
            and not o.data["matched"]]


@invariant(EVENT, "include/trace/events/kvm.h@v2.6.38 and @v6.18 (kvm_async_pf_not_present, kvm_async_pf_ready: "
                  "the token each event carries), traced by arch/x86/kvm/x86.c kvm_arch_async_page_not_present / "
                  "kvm_arch_async_page_present before the guest is told -- 2.6.38 before it sets a broadcast's "
                  "token to ~0 (so it prints 0), 6.18 after; perf, Perfetto and the live comparison read these lines",
           generations=("legacy", "interrupt"),
           why_not="the seed traces its injections as kvm_send_async_pf (seed 000), matched by reason_not_clobbered")
def apf_events_traced(v: View) -> list[str]:
    """Every not-present and page-ready the guest receives was traced by the host beforehand, once, with its token."""
    return [f"vcpu{o.vcpu}: {'not-present' if o.data['reason'] == KVM_PV_REASON_PAGE_NOT_PRESENT else 'page-ready'} "
            f"{o.data['token']:#x} reached the guest without its tracepoint (as that kernel prints it)"
            for o in v.obs if o.kind == "deliver" and not o.data.get("traced", True)]


@invariant(EVENT, "msr.txt (2.6.38): after the ~0 broadcast 'no individual type 2 events follow' for the faults "
                  "it answered; 2.6.38 breaks this when the wake-all waits on done behind a newer not-present",
           generations=("legacy", "interrupt"), why_not="the seed has no ~0 broadcast; it came with v3's migration support "
                                            "(seed 004)")
def no_ready_after_broadcast(v: View) -> list[str]:
    """A not-present answered by the ~0 broadcast gets no page-ready of its own afterwards."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} after a broadcast had already woken its waiter"
            for o in v.obs if o.kind == "deliver" and o.data.get("after_broadcast")]


@invariant(EVENT, "msr.txt (2.6.38): 'Guest should ... read and reset this [reason] before enabling interrupts "
                  "... and before any normal page fault can happen'; arch/x86/kernel/kvm.c:do_async_page_fault")
def reason_read_before_reenable(v: View) -> list[str]:
    """At every guest instruction boundary with interrupts enabled, the reason word has been read and reset to 0."""
    return [f"vcpu{o.vcpu}: IF=1 at an instruction boundary in {o.data['ctx']} with reason {o.data['word']} unread"
            for o in v.obs if o.kind == "boundary"]


@invariant(EVENT, "msr.txt (2.6.38): the reason word is written before the #PF is injected, one event at a time; "
                  "Documentation/kvm/msr.txt@v2.6.38 (reason must be read before another event); seed 000: put_user of the reason, then the #PF")
def reason_not_clobbered(v: View) -> list[str]:
    """The host writes a new reason only after the guest has read and reset the previous one.

    2.6.38 traces kvm_async_pf_not_present/_ready before the write, so the
    checker reads the word there; the seed traces kvm_send_async_pf after it,
    so the checker compares with the word sampled at the vcpu's last exit.
    """
    return [f"vcpu{o.vcpu}: {o.data['event']} overwrites unread reason {o.data['word']}"
            for o in v.obs if o.kind == "host_write" and o.data["word"]]


# --- end of run: quiescence --------------------------------------------------------------


@invariant(END, "Documentation/kvm/msr.txt@v2.6.38: every delivered not-present is answered by one page-ready, a broadcast, "
                "or a documented clear (MSR disable, reset, destroy)")
def every_not_present_answered(v: View) -> list[str]:
    """At quiescence no delivered page-not-present is left without its page-ready (or broadcast, or clear)."""
    return [f"vcpu{vid}: not-present {tok:#x} (t={t}) never answered"
            for vid, toks in sorted(v.ledger.awaiting.items()) for tok, t in sorted(toks.items())]


@invariant(END, "arch/x86/kernel/kvm.c:kvm_async_pf_task_wait/_wake (2.6.38): a dummy node makes a wake that "
                "comes first count; every sleeper is woken by its page-ready or by wake-all")
def no_task_sleeps_forever(v: View) -> list[str]:
    """At quiescence every task has exited and no sleeper node waits in the guest's hash."""
    k = v.kernel
    if k is None:
        return []
    out = [f"task {t.pid} ({t.comm}) still in state {t.state}" for t in k.tasks if t.state != "X"]
    out += [f"task {n.task.pid} sleeps on token {n.token:#x} (cpu {n.cpu})"
            for n in v.sleeper_nodes if n.task is not None]
    return out


@invariant(END, "asyncpf.machine.Machine.leaks (kvm_destroy_vm gives back every work item, reference and "
                "sleeper node); bugzilla 208081 (2020 stale dummies); 'KVM: Always flush async #PF workqueue when vCPU is being destroyed' (2024)")
def nothing_leaks(v: View) -> list[str]:
    """After the VM is destroyed no work item, kvm/mm/page reference, dummy or sleeper node is left."""
    if not v.shut_down:
        return []
    return list(v.machine.leaks())


@invariant(SAFETY, "arch/x86/kernel/kvm.c@v2.6.38: kvm_async_pf_task_wake allocates a dummy node when nobody waits "
                   "for the token, kvm_async_pf_task_wait unlinks and kfree's the one it finds, and apf_task_wake_one "
                   "unlinks a node without mm and returns -- a dummy apf_task_wake_all meets is never freed (a leak "
                   "the guest's count keeps, so that nothing_leaks can report it)")
def dummy_nodes_accounted(v: View) -> list[str]:
    """Every dummy node the guest made is still hashed, consumed by the wait for its token, or counted as dropped (leaked)."""
    k = v.kernel
    if k is None:
        return []
    s = k.stats
    hashed = sum(1 for n in v.sleeper_nodes if n.task is None)
    if s["dummies_created"] == hashed + s["dummies_consumed"] + s["dummies_dropped"]:
        return []
    return [f"{s['dummies_created']} dummy nodes made, but {hashed} hashed + {s['dummies_consumed']} consumed + "
            f"{s['dummies_dropped']} dropped by wake-all"]


@invariant(SAFETY, "Documentation/dev-tools/kasan.rst@v6.18 (a freed object is poisoned; any access is reported "
                "as use-after-free); virt/kvm/async_pf.c:async_pf_execute (2024 'Always flush async #PF workqueue "
                "when vCPU is being destroyed'): nothing reads an item after kmem_cache_free")
def no_use_after_free(v: View) -> list[str]:
    """No kernel code read a field of a work item after it was freed (the poison's reports in ``kvm.stat_violations``)."""
    return [f"{name} at t={t}: {what}" for name, t, what in v.machine.kvm.stat_violations]


@invariant(EVENT, "v2 patch 03/12 (Msg-Id 1258985167-29178-4-git-send-email-gleb@redhat.com: the guest registers "
                  "only with KVM_FEATURE_ASYNC_PF, bit 3 then); Documentation/kvm/cpuid.txt@v2.6.38 "
                  "(KVM_FEATURE_ASYNC_PF, 4: 'async pf can be enabled by writing to msr 0x4b564d02'); "
                  "Documentation/virt/kvm/x86/cpuid.rst@v6.18 (KVM_FEATURE_ASYNC_PF_INT, "
                  "14: 'guest checks this feature bit before using the second async pf control msr 0x4b564d06'); "
                  "arch/x86/kernel/kvm.c kvm_guest_cpu_init (2.6.38, v6.18) registers only with them, and "
                  "kvm_pv_disable_apf (2.6.38, v6.18) writes the MSR back to 0 only on a cpu that registered "
                  "('if (!apf_reason.enabled) return')")
def registers_only_when_offered(v: View) -> list[str]:
    """The guest writes MSR_KVM_ASYNC_PF_EN (to enable or to disable) only if CPUID offers async PF (ASYNC_PF_INT for interrupt delivery).

    Whatever the host does with the write: without PV-CPUID enforcement it is accepted, and the guest relies on an
    interface the VMM did not offer (a host without the MSR makes it a #GP, an oops in 2.6.38).  (A raw probe of
    MSRs 0x4b564d06/07 is not a registration.)
    """
    return [f"vcpu{o.vcpu}: MSR_KVM_ASYNC_PF_EN {'enabled' if o.data['enabling'] else 'written'} while CPUID lacks "
            f"feature bit {o.data['feature']}" for o in v.obs if o.kind == "registration" and not o.data["offered"]]


# --- the interrupt era (5.8+): page-ready as an interrupt with a token slot and an ACK -------------------

_IRQ = ("interrupt",)
_IRQ_WHY = "page-ready is a #PF with the reason word before 5.8: there is no token slot, ACK or vector"


@invariant(EVENT, "arch/x86/kvm/x86.c@v6.18 kvm_arch_can_dequeue_async_page_present / apf_pageready_slot_free "
                  "(2635b5c4a0e4, 2020): the next page-ready waits until the guest has cleared the token word",
           generations=_IRQ, why_not=_IRQ_WHY)
def page_ready_slot_free(v: View) -> list[str]:
    """The host writes a page-ready token only into a free slot (the guest has consumed the previous one)."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} written over unconsumed token {o.data['slot_before']:#x}"
            for o in v.obs if o.kind == "ready_irq" and o.data["slot_before"]]


@invariant(EVENT, "arch/x86/kvm/x86.c@v6.18 kvm_arch_can_dequeue_async_page_present requires kvm_lapic_enabled; "
                  "'KVM: x86: Properly handle APF vs disabled LAPIC situation' (2021, cloud-hypervisor#2277)",
           generations=_IRQ, why_not=_IRQ_WHY)
def page_ready_lapic_enabled(v: View) -> list[str]:
    """A page-ready interrupt is never sent to a software-disabled LAPIC (which would drop it, leaving the slot busy)."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} sent while the LAPIC is software-disabled"
            for o in v.obs if o.kind == "ready_irq" and not o.data["lapic_enabled"]]


@invariant(EVENT, "Documentation/virt/kvm/x86/msr.rst@v6.18 (MSR_KVM_ASYNC_PF_ACK: the guest writes 1 after it "
                  "has consumed a page-ready); 557a961abbe0 (2020)",
           generations=_IRQ, why_not=_IRQ_WHY)
def ack_between_page_readys(v: View) -> list[str]:
    """Between two page-ready interrupts on a vcpu the guest has acknowledged the first (MSR_KVM_ASYNC_PF_ACK)."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} arrived before the previous one was acknowledged"
            for o in v.obs if o.kind == "deliver" and o.data.get("by_interrupt") and o.data["unacked"]]


@invariant(EVENT, "arch/x86/kvm/x86.c@v6.18 vcpu_enter_guest (every pending request, KVM_REQ_APF_READY included, is "
                  "looked at before the entry; one made after the look cancels it: kvm_vcpu_exit_request)",
           generations=_IRQ, why_not="before 5.8 completions are polled by the run loop after every round, with no request")
def ready_request_served_before_entry(v: View) -> list[str]:
    """A vcpu does not enter the guest with a KVM_REQ_APF_READY already pending when it last exited or while it was blocked."""
    return [f"vcpu{o.vcpu}: entered the guest at t={o.t} with the KVM_REQ_APF_READY of its last exit still pending"
            for o in v.obs if o.kind == "entry_with_ready_request" and o.data["pending"]]


@invariant(EVENT, "arch/x86/kvm/x86.c@v6.18 kvm_arch_async_page_present (pageready_pending set with the page-ready "
                  "interrupt), the MSR_KVM_ASYNC_PF_ACK case of kvm_set_msr_common (cleared, then "
                  "kvm_check_async_pf_completion) and kvm_arch_async_page_present_queued (no kick while it is set); "
                  "2635b5c4a0e4 (2020); a reset leaves it (kvm_vcpu_reset@v6.18)",
           generations=_IRQ, why_not=_IRQ_WHY)
def pageready_pending_until_ack(v: View) -> list[str]:
    """The host counts a page-ready as pending exactly from its interrupt until the guest's ACK (at every entry).

    "Raised" and "ACKed" are restated from the trace (kvm_apic_accept_irq on the vector after kvm_async_pf_ready,
    the accepted ACK write); a page-ready the ACK's own look at ``done`` raises is pending after it.
    """
    return [f"vcpu{o.vcpu}: entered with pageready_pending={o.data['pending']} while a page-ready is "
            f"{'raised and not ACKed' if o.data['unacked'] else 'not pending (none raised since the last ACK)'}"
            for o in v.obs if o.kind == "pageready_handshake" and o.data["pending"] != o.data["unacked"]]


@invariant(SAFETY, "'KVM: x86/mmu: make apf token non-zero to fix bug' (Liang Zhang, 2022, Msg-Id "
                   "20220210084113.73005-1-zhangliang5@huawei.com): token 0 would read as a free slot",
           generations=_IRQ, why_not="before 5.8 a token is only a #PF's CR2; 0 is a valid token there")
def tokens_non_zero(v: View) -> list[str]:
    """No outstanding work item carries token 0 (0 means "slot free" to the page-ready handshake)."""
    return [f"vcpu{vc.vcpu_id}: work item for gfn {w.arch.gfn:#x} has token 0"
            for vc in v.vcpus for w in vc.async_pf.queue if w.arch.token == 0]


@invariant(EVENT, "Documentation/virt/kvm/x86/cpuid.rst@v6.18 (KVM_FEATURE_ASYNC_PF_INT gates MSRs 0x4b564d06 "
                  "and 0x4b564d07); arch/x86/kvm/x86.c@v6.18 kvm_set_msr_common (guest_pv_has); the ACK was gated "
                  "on KVM_FEATURE_ASYNC_PF until the 2021 fix of 66570e966dd9",
           generations=_IRQ, why_not="PV-CPUID enforcement (KVM_CAP_ENFORCE_PV_FEATURE_CPUID) came in 2020")
def pv_msrs_gated_by_cpuid(v: View) -> list[str]:
    """With PV-CPUID enforcement a guest write to an async PF MSR is refused unless its CPUID feature bit is exposed."""
    return [f"vcpu{o.vcpu}: write to MSR {o.data['msr']:#x} accepted without CPUID feature bit {o.data['feature']}"
            for o in v.obs if o.kind == "pv_msr_accepted"]


@invariant(SAFETY, "arch/x86/kvm/x86.c@v6.18 kvm_arch_async_page_present_queued (request + kick unless a "
                   "page-ready is pending) and 'Fix a semi theoretical bug in kvm_arch_async_page_present_queued' "
                   "(Maxim Levitsky, 2025: a lost kick between pageready_pending and the ACK)",
           generations=_IRQ, why_not="before 5.8 completions are polled by the run loop after every exit")
def completion_kicks_vcpu(v: View) -> list[str]:
    """No vcpu keeps running guest code while a completion it could deliver now waits behind KVM_REQ_APF_READY.

    "Could deliver now" is 6.18's dequeue gate, restated from the state (not by calling the twin it judges):
    async PF on (ENABLED and DELIVERY_AS_INT), the LAPIC software-enabled, the token slot free.
    """
    on = KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT
    return [f"vcpu{vc.vcpu_id}: runs guest code with {len(vc.async_pf.done)} deliverable completion(s) "
            "and KVM_REQ_APF_READY pending, unkicked"
            for vc in v.vcpus
            if vc.mode == "compute" and vc.requests & KVM_REQ_APF_READY and vc.async_pf.done
            and vc.arch.apf.msr_en_val & on == on and vc.kvm.irqchip_in_kernel and vc.apic_sw_enabled
            and checker.token_slot_free(v.machine, vc)]


# --- progress, who may be woken, when an async PF may be taken, publication order (issue 15) -------------


@invariant(SAFETY, "msr.txt (2.6.38): 'page ready ... when the page is ready' answers every not-present; a bound "
                   "follows from the configuration (swap time, quanta per task, ticks), as TLA+ checks a liveness "
                   "property in a finite model with a deadline")
def not_present_answered_in_bound(v: View) -> list[str]:
    """Every delivered page-not-present is answered (page-ready, ~0, or a clear) within the configuration's bound."""
    if v.answer_bound_ns is None:
        return []
    now = v.machine.env.now
    return [f"vcpu{vid}: not-present {tok:#x} delivered at t={t} still unanswered after {now - t} ns "
            f"(bound {v.answer_bound_ns} ns)"
            for vid, toks in sorted(v.ledger.awaiting.items()) for tok, t in sorted(toks.items())
            if now - t > v.answer_bound_ns]


@invariant(SAFETY, "the explorer's per-schedule budgets: a schedule that takes more engine steps than its "
                   "configuration can need, or keeps stepping without the clock moving, is a livelock -- reported "
                   "with its schedule, never a hang (issue 15)")
def schedule_makes_progress(v: View) -> list[str]:
    """No schedule steps past its step budget, and no engine loop runs at one instant past the instant budget."""
    out = []
    if v.step_budget is not None and v.steps > v.step_budget:
        out.append(f"{v.steps} engine steps in one schedule > budget {v.step_budget}")
    if v.instant_budget is not None and v.steps_at_instant > v.instant_budget:
        out.append(f"{v.steps_at_instant} engine steps at t={v.machine.env.now} without the clock moving "
                   f"(> {v.instant_budget})")
    return out


def _idle_blocked(vcpu, cpu) -> bool:
    """The vcpu thread sleeps in kvm_vcpu_block and its guest cpu has nothing to run (it halted in idle)."""
    return vcpu.mode == "blocked" and cpu is not None and (cpu.rq.curr is None or cpu.rq.curr.is_idle) \
        and not cpu.rq.queue


def _page_ready_in_flight(v: View, vcpu) -> bool:
    return bool(vcpu.async_pf.queue or vcpu.async_pf.done or vcpu.arch.exception.pending or vcpu.irr or vcpu.isr
                or checker.reason_word(v.machine, vcpu) or checker.token_slot(v.machine, vcpu))


@invariant(SAFETY, "arch/x86/kernel/kvm.c:kvm_async_pf_task_wait (2.6.38): a sleeper is woken only by its "
                   "page-ready or a wake-all; msr.txt: the host answers every not-present -- so a cpu that halts "
                   "idle while the host holds nothing for it must have no sleeper (a lost wake-up)")
def no_sleeper_without_pending_work(v: View) -> list[str]:
    """No guest cpu halts idle with a task asleep on an async PF while its vcpu has nothing queued, done or in flight."""
    k = v.kernel
    if k is None:
        return []
    out = []
    for vcpu, cpu in zip(v.vcpus, k.cpus):
        if not _idle_blocked(vcpu, cpu) or _page_ready_in_flight(v, vcpu):
            continue
        out += [f"cpu{cpu.id}: task {n.task.pid} sleeps on token {n.token:#x}, the cpu halted idle and vcpu"
                f"{vcpu.vcpu_id} holds no work for it" for n in v.sleeper_nodes
                if n.task is not None and n.cpu == cpu.id]
    return out


@invariant(SAFETY, "arch/x86/kvm/x86.c:kvm_arch_vcpu_runnable (2.6.38, v6.18): a completion on done makes a "
                   "blocked vcpu runnable; virt/kvm/async_pf.c:async_pf_execute wakes it after publishing",
           remembers=True)
def done_work_wakes_vcpu(v: View) -> list[str]:
    """A vcpu does not stay blocked (beyond a grace of a few quanta) while a completion waits on its ``done`` list."""
    if v.grace_ns is None:
        return []
    now = v.machine.env.now
    since = v.memory.setdefault("done_blocked_since", {})
    out = []
    for vc in v.vcpus:
        if vc.mode == "blocked" and vc.async_pf.done and not vc.stopped:
            t = since.setdefault(vc.vcpu_id, now)
            if now - t > v.grace_ns:
                out.append(f"vcpu{vc.vcpu_id}: blocked for {now - t} ns with {len(vc.async_pf.done)} completion(s) "
                           "on done")
        else:
            since.pop(vc.vcpu_id, None)
    return out


@invariant(EVENT, "virt/kvm/async_pf.c kvm_check_async_pf_completion, called by arch/x86/kvm/x86.c@v2.6.38 "
                  "__vcpu_run after every round (one item when kvm_arch_can_inject_async_page_present: always with "
                  "APF off, else interrupts allowed and nothing to reinject) and by x86.c@v6.18 vcpu_enter_guest on "
                  "KVM_REQ_APF_READY (every item while kvm_arch_can_dequeue_async_page_present: always with async PF "
                  "off, else an enabled LAPIC and a free token slot)",
           generations=("legacy", "interrupt"),
           why_not="the seed consumes one completion per entry from its own slot (seed 000 vcpu_enter_guest), judged "
                   "by done_work_wakes_vcpu and the answer bound")
def completion_taken_when_possible(v: View) -> list[str]:
    """A vcpu does not enter the guest leaving on ``done`` the completions the host was due to consume and could.

    2.6.38: one of those on ``done`` at the last exit, if the guest can take one now; 6.18: those on ``done`` while
    KVM_REQ_APF_READY was pending, once the request is served, if the gate is open now (restated from the MSR, the
    CPU state, the LAPIC and the token slot, never by calling the twins).
    """
    return [f"vcpu{o.vcpu}: entered the guest with {o.data['left']} completion(s) left on done that the host could "
            "have consumed" for o in v.obs if o.kind == "entry_with_completions"]


@invariant(EVENT, "arch/x86/kvm/x86.c@v2.6.38 __vcpu_run (vcpu_enter_guest only if mp_state == "
                  "KVM_MP_STATE_RUNNABLE && !apf.halted) and vcpu_enter_guest (KVM_REQ_APF_HALT is taken before the "
                  "entry: the synthetic halt, no entry); arch/x86/kvm/x86.c@v6.18 vcpu_run (kvm_vcpu_running) and "
                  "vcpu_enter_guest; the seed's __vcpu_run enters only RUNNABLE")
def enters_only_when_running(v: View) -> list[str]:
    """A vcpu enters the guest only RUNNABLE, outside the synthetic APF halt, and with no APF-halt request pending."""
    out = []
    for o in v.obs:
        if o.kind != "entry":
            continue
        d = o.data
        why = [w for w, bad in ((f"mp_state {d['mp_state']}", d["mp_state"] != x86.KVM_MP_STATE_RUNNABLE),
                                ("APF-halted", d["halted"]), ("KVM_REQ_APF_HALT pending", d["halt_requested"])) if bad]
        if why:
            out.append(f"vcpu{o.vcpu}: entered the guest at t={o.t} with {', '.join(why)}")
    return out


@invariant(EVENT, "arch/x86/kvm/x86.c@v2.6.38 __vcpu_run (a HALTED or APF-halted vcpu goes to kvm_vcpu_block; "
                  "vcpu_enter_guest turns KVM_REQ_APF_HALT into apf.halted, no entry) and kvm_arch_vcpu_runnable "
                  "(what wakes it: a completion on done, an interrupt the guest allows -- not one it has masked); "
                  "kvm_arch_async_page_present ends the APF halt; the same chain in v6.18 (vcpu_block, "
                  "kvm_vcpu_has_events adds a pending exception); Intel SDM vol. 2 HLT (with IF=0 only NMI, SMI, "
                  "INIT or RESET resume the CPU)")
def halted_vcpu_waits_for_wake(v: View) -> list[str]:
    """A vcpu that halts (HLT, or the APF halt) re-enters the guest only after something that wakes a halted vcpu came.

    Something: a completion on ``done`` or its page-ready, a pending exception, an interrupt the guest allows, or a
    reset -- the checker watches from the exit to the entry.
    """
    return [f"vcpu{o.vcpu}: re-entered the guest at t={o.t} after a halt with nothing to wake it "
            "(no completion, page-ready, allowed interrupt, exception or reset since the exit)"
            for o in v.obs if o.kind == "entry" and o.data["after_halt"] and not o.data["woken"]]


@invariant(EVENT, "arch/x86/kvm/x86.c@v2.6.38 kvm_arch_vcpu_reset (apf.msr_val = 0, "
                  "kvm_clear_async_pf_completion_queue, kvm_async_pf_hash_reset, apf.halted = false, no queued "
                  "exception) and arch/x86/kvm/x86.c@v6.18 kvm_vcpu_reset (kvm_lapic_reset empties IRR/ISR, "
                  "msr_en_val = msr_int_val = 0, the same clears); the seed's reset as the model has it (the "
                  "MSR off, done freed, no queued exception -- seed 000's clear frees only done)")
def reset_leaves_no_async_pf_state(v: View) -> list[str]:
    """Right after an INIT/RESET the vcpu holds no async PF state: MSRs 0, no halt, nothing queued or hashed.

    Also no exception pending and, in the interrupt era (the LAPIC is reset), no vector in service.  The IRR is not
    judged: a timer may fire while the reset waits for a worker.  The seed's clear cancels no work in flight (seed
    000; cancelling came with v4, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com) and it keeps no count,
    so for the seed the queue and its count are not judged.
    """
    keys = ("msr", "msr_int", "queue", "done", "queued", "hashed", "halted", "exception", "in_service")
    if v.machine.gen.name == "seed":
        keys = tuple(k for k in keys if k not in ("queue", "queued"))
    out = []
    for o in v.obs:
        if o.kind != "after_reset":
            continue
        d = o.data
        left = [f"{k}={d[k]}" for k in keys if d[k]]
        if left:
            out.append(f"vcpu{o.vcpu}: after the reset at t={o.t}: {', '.join(left)}")
    return out


@invariant(EVENT, "arch/x86/kvm/mmu.c:can_do_async_pf (2.6.38): kvm_arch_interrupt_allowed; v6.18 "
                  "kvm_can_do_async_pf and the guest's 'Host injected async #PF in interrupt disabled region' "
                  "panic (arch/x86/kernel/kvm.c@v6.18 __kvm_handle_async_pf); seed 000 never at CPL0, where IF=0 "
                  "code runs")
def async_pf_only_with_interrupts_on(v: View) -> list[str]:
    """A page-not-present #PF is injected only for a fault the guest took with interrupts enabled (IF=1)."""
    return [f"vcpu{o.vcpu}: not-present {o.data['token']:#x} injected for a fault taken with IF=0"
            for o in v.obs if o.kind == "deliver" and o.data["reason"] == KVM_PV_REASON_PAGE_NOT_PRESENT
            and not o.data.get("if", True)]


@invariant(SAFETY, "virt/kvm/async_pf.c:kvm_setup_async_pf (2.6.38, v6.18): 'if (vcpu->async_pf.queued >= "
                   "ASYNC_PF_PER_VCPU) return 0' -- the fault is refused at the limit and only there",
           generations=("legacy", "interrupt"),
           why_not="the seed has no per-vcpu limit; it arrived with v4 (v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com)",
           remembers=True)
def limit_refuses_only_at_limit(v: View) -> list[str]:
    """A vcpu refuses an async PF for the per-vcpu limit only with the limit (64) already queued."""
    limit = v.machine.gen.async_pf_per_vcpu
    seen = v.memory.setdefault("limit_hits", {})
    out = []
    for vc in v.vcpus:
        hits = vc.stat["async_pf_limit_hits"]
        if hits != seen.get(vc.vcpu_id, 0):
            seen[vc.vcpu_id] = hits
            if limit is not None and vc.async_pf.queued < limit:
                out.append(f"vcpu{vc.vcpu_id}: async PF refused for the limit with {vc.async_pf.queued} queued "
                           f"< {limit}")
    return out


@invariant(SAFETY, "arch/x86/kernel/kvm.c@v2.6.38 apf_task_wake_all ('if (n->cpu == smp_processor_id())') and "
                   "kvm_async_pf_task_wake/_wait (a node is unhashed by the page-ready of its token; a dummy is "
                   "consumed by the wait for its token)",
           remembers=True)
def wake_only_own(v: View) -> list[str]:
    """A sleeper leaves the hash only after its own page-ready or a wake-all of its own cpu; a dummy only for its own token."""
    k = v.kernel
    if k is None:
        return []
    known = v.memory.get("nodes")                # id(node) -> (node, wake_alls, readied) when first seen
    if known is None:
        known = v.memory["nodes"] = {}
    nodes = v.sleeper_nodes
    if {id(n) for n in nodes} == known.keys():
        return []  # the same nodes as at the last step (known holds them, so no id was reused): nothing to judge
    led = v.ledger
    consumed = v.memory.setdefault("dummies_consumed", Counter())
    now_nodes = {id(n): n for n in nodes}
    out = []
    for nid, (node, wakes, ready) in list(known.items()):
        if nid in now_nodes:
            continue
        del known[nid]
        c = node.cpu
        if led.wake_alls[c] > wakes:
            continue
        if node.task is not None:
            if led.readied.get(c, Counter())[node.token] <= ready:
                out.append(f"task {node.task.pid}'s node {node.token:#x} (cpu {c}) unhashed without its page-ready "
                           f"or a wake-all of cpu {c}")
        else:
            consumed[(c, node.token)] += 1
            if consumed[(c, node.token)] > led.not_presents.get(c, Counter())[node.token]:
                out.append(f"dummy {node.token:#x} (cpu {c}) consumed with no not-present for its token on cpu {c}")
    for nid, node in now_nodes.items():
        if nid not in known:
            known[nid] = (node, led.wake_alls[node.cpu], led.readied.get(node.cpu, Counter())[node.token])
    return out


@invariant(EVENT, "virt/kvm/async_pf.c:async_pf_execute (2.6.38, v6.18): list_add_tail(&apf->link, "
                  "&vcpu->async_pf.done) under the lock, then trace_kvm_async_pf_completed, then the wake-up")
def completion_published_before_wake(v: View) -> list[str]:
    """When a worker reports its completion (and wakes the vcpu), the item is already on the vcpu's ``done`` list."""
    return [f"vcpu{o.vcpu}: work for hva {o.data['addr']:#x} reported complete before it is on done"
            for o in v.obs if o.kind == "completed" and not o.data["published"]]



@invariant(EVENT, "include/trace/events/kvm.h@v2.6.38 kvm_async_pf_completed (address, pfn: page_to_pfn of the page the "
                  "worker's get_user_pages returned, 0 when it returned none), traced by virt/kvm/async_pf.c@v2.6.38 "
                  "async_pf_execute while it still holds that page; seed 000's slow-work execute traces the same",
           generations=("seed", "legacy"),
           why_not="since 2020 (no page reference kept) kvm_async_pf_completed prints no pfn (async_pf.c@v6.18)")
def completion_traced_with_its_page(v: View) -> list[str]:
    """A worker's completion tracepoint prints the frame that now backs its address (0 only when there is none)."""
    return [f"vcpu{o.vcpu}: kvm_async_pf_completed for hva {o.data['addr']:#x} prints pfn {o.data['pfn']:#x}, "
            f"but the page there is frame {o.data['frame']:#x}"
            for o in v.obs if o.kind == "completed_pfn" and o.data["pfn"] != o.data["frame"]]


# --- the guest's side of the contract: its MSR writes, its entry code, its wait loops (issue 15) -----------------


@invariant(EVENT, "arch/x86/kernel/kvm.c kvm_guest_cpu_init / kvm_pv_disable_apf / the page-ready ACK (2.6.38, "
                  "v6.18) write only MSRs the CPUID they checked offers; a refused write is a #GP -- an oops in "
                  "2.6.38, an 'unchecked MSR access error' warning from arch/x86/mm/extable.c ex_handler_msr in 6.18")
def guest_msr_writes_accepted(v: View) -> list[str]:
    """The guest kernel's own MSR writes are all accepted by the host (a probe thread's are not judged)."""
    return [f"vcpu{o.vcpu}: the guest's WRMSR {o.data['msr']:#x} <- {o.data['data']:#x} refused (#GP)"
            for o in v.obs if o.kind == "msr_refused"]


@invariant(EVENT, "arch/x86/kvm/vmx.c@v2.6.38 handle_wrmsr ('kvm_inject_gp(vcpu, 0)' when vmx_set_msr "
                  "fails); arch/x86/kvm/x86.c@v6.18 kvm_emulate_wrmsr -> kvm_complete_insn_gp (kvm_inject_gp(vcpu, 0))")
def refused_wrmsr_gets_gp(v: View) -> list[str]:
    """A guest WRMSR the host refuses is answered with #GP and error code 0, the next exception that vcpu is given."""
    return [f"vcpu{o.vcpu}: WRMSR {o.data['msr']:#x} <- {o.data['data']:#x} was refused, but the next thing the vcpu "
            f"got was {o.data['instead']}, not #GP(0)" for o in v.obs if o.kind == "gp_not_answered"]


@invariant(EVENT, "seed 000 kvm_arch_inject_async_page_not_present / _present ('kvm_inject_page_fault(vcpu, "
                  "work->arch.token, 0)'); arch/x86/kvm/x86.c@v2.6.38 and @v6.18 kvm_arch_async_page_not_present "
                  "(and 2.6.38's _present): 'fault.error_code = 0'")
def apf_pf_error_code_zero(v: View) -> list[str]:
    """A #PF carrying an async PF reason comes with error code 0 (the token in CR2 is all the guest is told)."""
    return [f"vcpu{o.vcpu}: async PF #PF (reason {o.data['reason']}, token {o.data['token']:#x}) with error code "
            f"{o.data['error_code']:#x}, expected 0"
            for o in v.obs if o.kind == "deliver" and not o.data.get("by_interrupt") and o.data["error_code"] != 0]


@invariant(EVENT, "seed 000 kvm_arch_inject_async_page_not_present / _present (only with the area registered); "
                  "arch/x86/kvm/x86.c@v2.6.38 kvm_arch_async_page_not_present (halt when APF is off) and "
                  "kvm_arch_async_page_present ('if (vcpu->arch.apf.msr_val & KVM_ASYNC_PF_ENABLED)'); "
                  "x86.c@v6.18 kvm_can_deliver_async_pf and kvm_arch_async_page_present (kvm_pv_async_pf_enabled)")
def apf_events_only_while_registered(v: View) -> list[str]:
    """A #PF carrying an async PF reason reaches the guest only while its MSR_KVM_ASYNC_PF_EN has ENABLED set.

    (A 6.18 page-ready interrupt is not judged here: it may wait in the IRR across a disable.)
    """
    return [f"vcpu{o.vcpu}: async PF #PF (reason {o.data['reason']}, token {o.data['token']:#x}) delivered while "
            "MSR_KVM_ASYNC_PF_EN has ENABLED clear"
            for o in v.obs if o.kind == "deliver" and not o.data.get("by_interrupt") and not o.data["registered"]]


@invariant(EVENT, "v2 patch 02/12 (Msg-Id 1258985167-29178-3-git-send-email-gleb@redhat.com), "
                  "Documentation/kvm/msr.txt@v2.6.38 and Documentation/virt/kvm/x86/msr.rst, cpuid.rst@v6.18 "
                  "(reserved bits, the CPUID bits that gate each MSR and delivery mode, the 64-byte area in guest "
                  "memory); arch/x86/kvm/x86.c kvm_pv_enable_async_pf, kvm_pv_enable_async_pf_int, "
                  "kvm_set_msr_common (2.6.38, v6.18) for what an accepted write leaves")
def msr_writes_follow_the_abi(v: View) -> list[str]:
    """Every guest write to an async PF MSR is accepted or refused as the ABI says, and an accepted one takes effect.

    Judged for the kernel's writes and a probe thread's alike (the rules are restated in
    :mod:`asyncpf.check.msr_abi`): refused for a reserved bit, a delivery mode or MSR whose CPUID bit is
    not offered under PV-CPUID enforcement, a missing in-kernel irqchip, an area outside guest memory;
    accepted, the value reads back, the flags are taken as written, an enable queues the wake-all and a
    disable leaves no work and no gfn in the hash.
    """
    return [f"vcpu{o.vcpu}: WRMSR {o.data['msr']:#x} <- {o.data['data']:#x}: {o.data['wrong']}"
            for o in v.obs if o.kind == "msr_abi"]


@invariant(EVENT, "arch/x86/kvm/x86.c@v2.6.38 kvm_set_msr_common / kvm_get_msr_common (the VMM's KVM_SET_MSRS and "
                  "KVM_GET_MSRS take the guest's switch; an MSR without a case fails unless ignore_msrs); "
                  "x86.c@v6.18 kvm_set_msr_common / kvm_get_msr_common (the async PF cases refuse with 1 for the "
                  "VMM too, EN and INT read back, ACK reads 0) and kvm_do_msr_access (a failed read is zeroed)")
def vmm_msr_accesses_follow_the_abi(v: View) -> list[str]:
    """The VMM's KVM_SET_MSRS / KVM_GET_MSRS of async PF MSRs fail only as the ABI says; reads return what is held.

    The rules are :mod:`asyncpf.check.msr_abi`'s (refusal, vmm_read): a write is judged like the guest's
    (in 6.18 too, until 5bb9ac186512 let the VMM write 0 to an MSR the PV CPUID does not offer); an MSR
    the generation does not define, or does not offer, fails both ways.
    """
    return [f"vcpu{o.vcpu}: {o.data['access']} of MSR {o.data['msr']:#x}: {o.data['wrong']}"
            for o in v.obs if o.kind == "vmm_msr"]


@invariant(EVENT, "Documentation/admin-guide/kernel-parameters.txt ('no-kvmapf: disable paravirtualized "
                  "asynchronous page fault handling'); arch/x86/kernel/kvm.c kvm_guest_cpu_init (2.6.38, v6.18) "
                  "registers only while kvmapf is set",
           generations=("legacy", "interrupt"), why_not="the seed series has no no-kvmapf switch")
def no_registration_with_no_kvmapf(v: View) -> list[str]:
    """A guest booted with no-kvmapf (or without PV async PF) never enables MSR_KVM_ASYNC_PF_EN."""
    return [f"vcpu{o.vcpu}: MSR_KVM_ASYNC_PF_EN enabled by a guest booted with no-kvmapf"
            for o in v.obs if o.kind == "registration" and o.data["enabling"] and not o.data["asked"]]


@invariant(END, "arch/x86/kernel/kvm.c (2.6.38, v6.18): apf_reason.enabled is set after the enabling write and "
                "cleared by kvm_pv_disable_apf; kvm_read_and_reset_apf_flags and the page-ready handler trust it")
def guest_registration_matches_host(v: View) -> list[str]:
    """At quiescence each cpu's ``apf_reason.enabled`` agrees with the enable bit the host holds for its vcpu.

    In the #PF era the word itself -- the last u32 of the area -- is judged too; the interrupt-era guest keeps
    it as its per-cpu flag only (a simplification of the model).
    """
    k = v.kernel
    if k is None:
        return []
    gen = v.machine.gen
    out = []
    for vcpu, cpu in zip(v.vcpus, k.cpus):
        host = bool(checker.apf_msr(v.machine, vcpu) & KVM_ASYNC_PF_ENABLED)
        views = [("counts", cpu.apf_enabled)]
        if gen.page_ready_delivery == "#PF":
            word = int.from_bytes(read_guest_bytes(v.machine.kvm, cpu.apf_gpa + gen.area_size - 4, 4), "little")
            views.append(("has apf_reason.enabled", word == 1))
        for what, on in views:
            if on != host:
                out.append(f"cpu{cpu.id}: the guest {what} async PF as {'on' if on else 'off'}, "
                           f"vcpu{vcpu.vcpu_id}'s MSR_KVM_ASYNC_PF_EN has it {'on' if host else 'off'}")
    return out


@invariant(SAFETY, "kernel/entry/common.c irqentry_exit (generic entry, x86 since 5.9): "
                   "lockdep_assert_irqs_disabled() first; arch/x86/mm/fault.c@v6.18 handle_page_fault disables "
                   "interrupts again after do_user_addr_fault; kvm_async_pf_task_wait_schedule@v6.18 ends its "
                   "wait loop with local_irq_disable()",
           generations=_IRQ, why_not="2.6.38's error_exit/retint disable interrupts themselves: a handler may "
                                     "return with them on")
def handlers_return_irqs_off(v: View) -> list[str]:
    """No exception or interrupt handler of the guest returns to the entry code with interrupts enabled."""
    k = v.kernel
    if k is None:
        return []
    return [f"cpu{cpu}: {name} returned with interrupts enabled at t={t}" for t, cpu, name in k.irqs_on_at_exit]


@invariant(SAFETY, "include/linux/sched.h set_current_state; kernel/wait.c finish_wait@v2.6.38 and "
                   "kernel/sched/swait.c finish_swait@v6.18 put the waiter back to TASK_RUNNING: a task that goes "
                   "on in TASK_UNINTERRUPTIBLE is dequeued by its next schedule() with nobody to wake it")
def user_code_runs_task_running(v: View) -> list[str]:
    """A task running user code (CPL 3) is in TASK_RUNNING: no wait loop lets its task go on in a sleep state."""
    k = v.kernel
    if k is None:
        return []
    return [f"cpu{cpu.id}: task {t.pid} ({t.comm}) runs user code in state {t.state}"
            for cpu in k.cpus if (t := cpu.rq.curr) is not None and not t.is_idle
            and cpu.vcpu.arch.cpl == 3 and t.state != TASK_RUNNING]


@invariant(SAFETY, "kernel/sched.c@v2.6.38 and kernel/sched/core.c@v6.18 schedule_debug ('BUG: scheduling while "
                   "atomic' when a live task enters schedule() with preemption disabled); arch/x86/kernel/kvm.c@v2.6.38 "
                   "kvm_async_pf_task_wait halts the cpu instead of sleeping when preempt_count() shows more than "
                   "its own bucket lock (n.halted), which is why the halted node exists")
def no_sleep_while_atomic(v: View) -> list[str]:
    """No live task is off its runqueue asleep with preemption disabled: a wait that cannot schedule halts instead."""
    k = v.kernel
    if k is None:
        return []
    return [f"task {t.pid} ({t.comm}) sleeps in state {t.state} with preempt_count {t.preempt_count}"
            for t in k.tasks if not t.on_rq and t.state != TASK_DEAD and t.preempt_count > 0]


@invariant(EVENT, "arch/x86/kernel/kvm.c@v2.6.38 kvm_guest_cpu_init (a CONFIG_PREEMPT kernel registers with "
                  "KVM_ASYNC_PF_SEND_ALWAYS: it can schedule in kernel mode); Documentation/kvm/msr.txt@v2.6.38 "
                  "bit 1; the halt is for a guest that cannot schedule (v7 cover letter, 'halt vcpu if guest "
                  "cannot schedule')",
           generations=("legacy",),
           why_not="the seed has no SEND_ALWAYS bit; since 5.8 no guest asks for it and the host halts on every "
                   "kernel-mode fault by design (kvm_can_deliver_async_pf@v6.18)")
def kernel_fault_halts_only_unpreemptible_guest(v: View) -> list[str]:
    """A kernel-mode fault halts the vcpu (instead of a not-present) only in a guest that cannot schedule there."""
    return [f"vcpu{o.vcpu}: kernel-mode fault (token {o.data['token']:#x}) halts the vcpu of a preemptible guest: "
            "it did not register with SEND_ALWAYS" for o in v.obs if o.kind == "kernel_fault_halted"
            and o.data["preemptible"]]


@invariant(EVENT, "arch/x86/kvm/x86.c kvm_arch_async_page_ready (2.6.38 since v7 'Retry fault before vmentry', "
                  "v6.18): the page that arrived is faulted in with prefault set before page-ready is sent, so the "
                  "woken task's retry does not exit again; only an MMU-notifier invalidation in between may undo it",
           generations=("legacy", "interrupt"), why_not="the seed (v2) has no prefault: it came with v7")
def page_ready_after_prefault(v: View) -> list[str]:
    """When page-ready is sent for a resident page, its gfn is mapped (unless an invalidation ran since the fault)."""
    return [f"vcpu{o.vcpu}: page-ready {o.data['token']:#x} sent with gfn {o.data['gfn']:#x} unmapped (no prefault)"
            for o in v.obs if o.kind == "ready_after_prefault" and not o.data["mapped"]]

# --- hostsched: preempt notifiers (issue 13) -------------------------------------------------------------------

def vcpus_loaded_wrongly(sched) -> list[str]:
    """Where a vcpu's guest state is loaded against where its thread is: running guest code, on its own CPU only."""
    out = []
    for t in sched.threads:
        vcpu = t.vcpu
        if vcpu is None or t.state == "exited":
            continue
        where = [c.id for c in sched.cpus if c.loaded is vcpu]
        if vcpu.mode in ("guest", "compute") and t.state == "running" and not t.in_notifier:
            if where != [t.cpu.id]:
                out.append(f"vcpu{vcpu.vcpu_id} runs guest code on host cpu{t.cpu.id} but is loaded on {where}")
        elif t.state in ("runnable", "sleeping") and where:
            out.append(f"vcpu{vcpu.vcpu_id} is scheduled out ({t.state}) but loaded on host cpu{where}")
    return out


def idle_cpus_with_queue(sched) -> list[str]:
    """Host CPUs with no current thread and a non-empty runqueue."""
    name = {id(t.task): t.name for t in sched.threads}
    return [f"host cpu{c.id} is idle with {', '.join(name[id(x)] for x in c.rq.queue)} queued"
            for c in sched.cpus if c.current is None and c.rq.queue]


@invariant(SAFETY, "virt/kvm/kvm_main.c@v2.6.38 kvm_sched_out/kvm_sched_in -> kvm_arch_vcpu_put/load; "
                   "arch/x86/kvm/vmx.c@v2.6.38 vmx_vcpu_load (vcpu_clear before loading on another CPU); "
                   "RFC: Avi Kivity, '[PATCH][RFC] kvm-scheduler integration', LKML, July 2007")
def guest_state_loaded_once(v: View) -> list[str]:
    """A vcpu running guest code has its guest state loaded on exactly its own host CPU; scheduled out, on none."""
    sched = getattr(v.machine.kvm, "hostsched", None)
    return vcpus_loaded_wrongly(sched) if sched is not None else []


@invariant(SAFETY, "kernel/sched.c@v2.6.38 try_to_wake_up -> check_preempt_curr: a task woken onto a CPU "
                   "that runs its idle task sets need_resched there, and cpu_idle calls schedule() at once")
def no_idle_cpu_with_queued_thread(v: View) -> list[str]:
    """A host CPU with no current thread has an empty runqueue: nobody waits for a CPU that does nothing."""
    sched = getattr(v.machine.kvm, "hostsched", None)
    return idle_cpus_with_queue(sched) if sched is not None else []


# --- the host's fault path: a repeated fault halts, never stalls; a halt is owed before re-entry (issue 15) --------

_HASH_GENS = ("legacy", "interrupt")
_HASH_WHY = ("the seed looks no outstanding gfn up: a second fault on a page in flight starts a second APF "
             "(seed 000 tdp_page_fault; config seed_same_page) and it has no APF halt")


def _sleeps_on_swapin(vcpu) -> int | None:
    """The page hva whose swap-in the vcpu thread sleeps on (mm's "swapin <hva>" Event), or None."""
    for ev in _vcpu_thread_waits(vcpu):
        if ev.name.startswith("swapin "):
            return int(ev.name.split()[1], 16)
    return None


@invariant(SAFETY, "arch/x86/kvm/mmu.c@v2.6.38 try_async_pf and arch/x86/kvm/mmu/mmu.c@v6.18 "
                   "__kvm_mmu_faultin_pfn: when async PF is possible (not a prefault, can_do_async_pf / "
                   "kvm_can_do_async_pf: in-kernel irqchip, interrupts allowed, no event to reinject) a fault on a "
                   "gfn in the vcpu's APF hash requests KVM_REQ_APF_HALT and returns, one not in it sets an async "
                   "PF up and returns; only a refused setup falls through to the synchronous GUP",
           generations=_HASH_GENS, why_not=_HASH_WHY)
def no_sync_stall_on_outstanding_gfn(v: View) -> list[str]:
    """No vcpu thread sleeps in a synchronous swap-in of a page it has an unfinished async PF for, when it faulted with async PF possible.

    The fault's context is the one the checker recorded at the vcpu's last EPT violation
    (``ledger.fault_at``); a prefault is of a completed item and is not judged.
    """
    faults = v.ledger.fault_at
    out = []
    for vc in v.vcpus:
        hva = _sleeps_on_swapin(vc)
        fault = faults.get(vc.vcpu_id)
        if hva is None or fault is None or not fault["async_possible"] \
                or gfn_to_hva(v.machine.kvm, fault["gfn"]) != hva:
            continue
        if any(peek(w, "addr") == hva and not peek(w, "done") for w in vc.async_pf.queue):
            out.append(f"vcpu{vc.vcpu_id}: sleeps in a synchronous swap-in of gfn {fault['gfn']:#x} (hva {hva:#x}) "
                       "while its own async PF for that page is outstanding and async PF was possible")
    return out


@invariant(EVENT, "seed 000 tdp_page_fault (v2 patch 08/12, Msg-Id 1258985167-29178-9-git-send-email-gleb@redhat.com), "
                  "arch/x86/kvm/mmu.c@v2.6.38 try_async_pf, arch/x86/kvm/mmu/mmu.c@v6.18 __kvm_mmu_faultin_pfn: "
                  "trace_kvm_try_async_get_page only under can_do_async_pf (seed: registered, nothing to reinject, "
                  "CPL != 0; 2.6.38 and 6.18: in-kernel irqchip, nothing to reinject, interrupts allowed)")
def async_pf_tried_only_when_possible(v: View) -> list[str]:
    """A fault goes the async way (kvm_try_async_get_page) only when the generation's can_do_async_pf held at it.

    "Held" is restated from the vcpu's state at its EPT violation (``ledger.fault_at``, recorded by the
    checker), not asked of the twins.
    """
    return [f"vcpu{o.vcpu}: async PF tried for gfn {o.data['gfn'] if o.data['gfn'] is None else hex(o.data['gfn'])} "
            "when can_do_async_pf did not hold" for o in v.obs if o.kind == "async_pf_tried" and not o.data["possible"]]


@invariant(EVENT, "seed 000 gfn_to_pfn_async (an error hva is bad_pfn at once; only a page get_user_pages_noio cannot "
                  "have without IO goes async); virt/kvm/kvm_main.c@v2.6.38 hva_to_pfn (FOLL_NOWAIT: async only when "
                  "the fault would wait for IO) and arch/x86/kvm/mmu.c try_async_pf; arch/x86/kvm/mmu/mmu.c@v6.18 "
                  "__kvm_mmu_faultin_pfn (async only when __kvm_faultin_pfn answered KVM_PFN_ERR_NEEDS_IO)")
def async_pf_only_for_io(v: View) -> list[str]:
    """A fault goes the async way only for a page that needs IO: one a memslot backs, swapped out or being read in.

    Restated from the memslots and the host mm at the kvm_try_async_get_page line (the seed's with r = 0), not
    asked of the lookup it judges.
    """
    return [f"vcpu{o.vcpu}: gfn {'?' if o.data['gfn'] is None else hex(o.data['gfn'])} went the async way although "
            "its page needs no IO (no memslot, or resident)"
            for o in v.obs if o.kind == "went_async" and not o.data["needs_io"]]


@invariant(SAFETY, "seed 000 (v2 patch 08/12, Msg-Id 1258985167-29178-9-git-send-email-gleb@redhat.com): "
                   "tdp_page_fault calls gfn_to_pfn_async whenever can_do_async_pf (the area registered, no event "
                   "to reinject, CPL != 0), and a page that is not resident goes to kvm_arch_setup_async_pf; only a "
                   "refused setup (no memory for the item) falls back to the synchronous gfn_to_pfn",
           generations=("seed",), why_not="2.6.38 and 6.18 are judged by no_sync_stall_on_outstanding_gfn and their "
                                          "own can_do_async_pf, with a per-vcpu limit the seed does not have")
def seed_faults_go_async(v: View) -> list[str]:
    """No seed vcpu thread sleeps in a synchronous swap-in of the page it faulted on when can_do_async_pf held.

    The fault's context is the one the checker recorded at the vcpu's last EPT violation
    (``ledger.fault_at``); a fault whose item allocation the configuration's fault injection refused is not judged.
    """
    out = []
    for vc in v.vcpus:
        hva, fault = _sleeps_on_swapin(vc), v.ledger.fault_at.get(vc.vcpu_id)
        if hva is not None and fault is not None and fault["async_possible"] and not fault.get("refused") \
                and gfn_to_hva(v.machine.kvm, fault["gfn"]) == hva:
            out.append(f"vcpu{vc.vcpu_id}: sleeps in a synchronous swap-in of gfn {fault['gfn']:#x} although "
                       "can_do_async_pf held")
    return out


@invariant(EVENT, "virt/kvm/async_pf.c@v2.6.38 and @v6.18 kvm_setup_async_pf ('work = kmem_cache_zalloc(...); if "
                  "(!work) return 0;'), seed 000 kvm_setup_async_pf (the same, GFP_ATOMIC): a set-up whose item "
                  "cannot be allocated sets nothing up, and the fault is handled synchronously")
def refused_set_up_tells_nothing(v: View) -> list[str]:
    """A fault whose work-item allocation failed sends the guest no not-present: it is handled synchronously.

    The failure is the configuration's fault injection refusing the allocation, as the checker saw it answer.
    """
    return [f"vcpu{o.vcpu}: not-present {o.data['token']:#x} for gfn {o.data['gfn']:#x}, whose item allocation failed"
            for o in v.obs if o.kind == "not_present_after_refusal"]


@invariant(EVENT, "arch/x86/kvm/mmu.c@v2.6.38 try_async_pf (trace_kvm_async_pf_doublefault, then "
                  "kvm_make_request(KVM_REQ_APF_HALT)) and arch/x86/kvm/x86.c@v2.6.38 vcpu_enter_guest (the "
                  "request makes apf.halted, no entry); the same pair in v6.18 (__kvm_mmu_faultin_pfn's "
                  "trace_kvm_async_pf_repeated_fault, vcpu_enter_guest's synthetic halt)",
           generations=_HASH_GENS, why_not=_HASH_WHY)
def repeated_fault_halts_before_entry(v: View) -> list[str]:
    """After a repeated fault on an outstanding gfn the vcpu passes through the APF halt before it next enters the guest (unless reset meanwhile)."""
    return [f"vcpu{o.vcpu}: re-entered the guest after a repeated fault on gfn {o.data['gfn']:#x} without the APF halt"
            for o in v.obs if o.kind == "entry_after_repeated_fault" and not o.data["halted"] and not o.data["reset"]]


@invariant(SAFETY, "seed 000 vcpu_enter_guest (kvm_check_async_pf_completion injects right before the entry that "
                   "delivers the event); arch/x86/kvm/x86.c@v6.18 kvm_arch_vcpu_runnable (kvm_vcpu_has_events: a "
                   "pending exception makes the vcpu runnable, so vcpu_block does not sleep with one)",
           generations=("seed", "interrupt"),
           why_not="2.6.38 consumes completions after each round (__vcpu_run), so a page-ready #PF queued after a HLT "
                   "exit waits in the halted vcpu for its next wake: kvm_arch_vcpu_runnable@v2.6.38 does not count a "
                   "queued exception")
def no_block_with_exception_queued(v: View) -> list[str]:
    """No vcpu thread sleeps in kvm_vcpu_block with an exception queued for the guest: it goes in at the next entry."""
    if v.machine.gen.name == "legacy":   # see why_not: 2.6.38 does, by design
        return []
    return [f"vcpu{vc.vcpu_id}: blocked with exception {vc.arch.exception.nr} queued for the guest"
            for vc in v.vcpus if vc.mode == "blocked" and vc.arch.exception.pending and not vc.stopped]


@invariant(EVENT, "arch/x86/kvm/x86.c@v2.6.38 kvm_arch_async_page_not_present (APF off, or CPL0 without SEND_ALWAYS: "
                  "KVM_REQ_APF_HALT; else the reason word and #PF with CR2 = token; a failed write does neither) and "
                  "x86.c@v6.18 kvm_arch_async_page_not_present (kvm_can_deliver_async_pf and the flags write: the "
                  "#PF; otherwise KVM_REQ_APF_HALT); vcpu_enter_guest turns the request into the synthetic halt",
           generations=_HASH_GENS, why_not="the seed has no APF halt: a fault it cannot tell is handled synchronously "
                                           "(seed 000 can_do_async_pf)")
def not_present_told_or_halted(v: View) -> list[str]:
    """After the host traces a not-present, the vcpu next enters with that #PF queued if the guest can be told, else only after the APF halt.

    "Can be told" is restated from the MSR value and the CPL (never from the host's own flags); a vcpu reset in
    between excuses the entry; a write that cannot reach the area halts in 6.18 and is not judged in 2.6.38.
    """
    irq = v.machine.gen.page_ready_delivery == "interrupt"
    out = []
    for o in v.obs:
        d = o.data
        if o.kind != "entry_after_not_present" or d["reset"]:
            continue
        what = f"vcpu{o.vcpu}: not-present {d['token']:#x}"
        if d["can_tell"] and d["area_ok"]:
            wrong = [w for w, bad in (("without its #PF", not d["told"]), ("after an APF halt", d["halted"])) if bad]
            if wrong:
                out.append(f"{what}: the guest could be told, but the vcpu entered {' and '.join(wrong)}")
        elif not d["can_tell"] or irq:
            wrong = [w for w, bad in (("with the #PF queued", d["told"]), ("without the APF halt", not d["halted"])) if bad]
            if wrong:
                out.append(f"{what}: the guest could not be told, but the vcpu entered {' and '.join(wrong)}")
    return out


SAFETY_INVARIANTS = [i for i in REGISTRY.values() if i.kind == SAFETY]
EVENT_INVARIANTS = [i for i in REGISTRY.values() if i.kind == EVENT]
END_INVARIANTS = [i for i in REGISTRY.values() if i.kind == END]


# The checker's readers of guest memory, bound once (not imported inside each predicate call, which cost ~2 us a
# step): the checker module imports this one first, so it is imported last, whole or partly initialised.
from . import checker  # noqa: E402
