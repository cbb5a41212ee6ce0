"""What a run shows that does not depend on timing: the deterministic facts the comparison holds side by side.

Both sides -- the real capture (:mod:`asyncpf.live.realtrace`) and the
model's trace -- are reduced to the same :class:`Observation`:

* ``guest``: the guest-visible log in order (#PF with its flags word and
  CR2, interrupts with vector and token, ACKs, MSR writes, done), tokens
  replaced by their order of appearance (``T1``, ``T2``, ...; ``ALL`` for the
  wake-all token ~0);
* ``chains``: per token, the vcpu thread's events in order (``try``,
  ``not_present``, ``repeated_fault``, ``ready``) and the touched page's index;
* ``completed``: per token, how many times the worker traced ``completed``;
* token shape: the low 12 bits equal the vcpu id, the counter goes up by one
  per token, and its first value;
* counts of each kind of event, #PF injections (reinjections excluded) and the
  vectors of accepted interrupts.

What is left out on purpose is listed in :data:`NOT_COMPARED`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

from .. import abi
from ..trace import TraceEvent, tracepoints
from .layout import LogRecord
from .realtrace import Event

SHORT = {"kvm_try_async_get_page": "try", "kvm_async_pf_not_present": "not_present",
         "kvm_async_pf_repeated_fault": "repeated_fault", "kvm_async_pf_doublefault": "repeated_fault",
         "kvm_async_pf_ready": "ready", "kvm_async_pf_completed": "completed"}
MSR_NAMES = {abi.INTERRUPT.msr_async_pf_en: "EN", abi.INTERRUPT.msr_async_pf_int: "INT",
             abi.INTERRUPT.msr_async_pf_ack: "ACK"}
NOT_COMPARED = (
    "timing: timestamps, page-in latencies and run time",
    "which pages the host evicts and reads around (the real run checks with mincore that every touched page was "
    "out of the page cache before it started; the model puts exactly the touched frames on swap)",
    "the global interleaving of worker (kworker) and vcpu-thread events; only per-token and per-vcpu order is "
    "compared, and how many completed each token has",
    "the order of a token's completed and ready: async_pf_execute (virt/kvm/async_pf.c@v6.18) traces completed "
    "after it has put the item on the done list and kicked the vcpu, so the vcpu can trace ready first (seen on "
    "this machine kind when the vcpu thread had moved to another CPU)",
    "the position of kvm_inj_exception among the async PF events (on the real host 1-3 % of tokens have their "
    "ready traced before the #PF injection); the guest-visible order is compared instead",
    "for a token whose ready was traced before its #PF injection (the vcpu thread was preempted in between; "
    "'late_pf' in the observation), whether the guest's retry found the page still in flight: its repeated "
    "fault (and the try before it) is left out of that token's chain and the counts",
    "which of two racing host threads goes first when the guest disables async PF with a fault outstanding: "
    "a kworker that has not had a CPU yet has its item cancelled (cancel_work_sync in "
    "kvm_clear_async_pf_completion_queue, virt/kvm/async_pf.c@v6.18) and the page is faulted again; such a run "
    "is compared with the model on one host CPU shared by the vcpu thread and its kworker",
    "for a token delivered late (above) whose page-ready was already pending in the LAPIC when the guest "
    "disabled async PF: that page-ready, which reaches the guest after the disable",
    "'[reinjected]' #PF lines (an injection cut short and delivered again; counted once)",
    "kvm_eoi lines (on this PVM backend the vector's EOI is traced at delivery and the guest's x2APIC EOI "
    "write then finds no vector in service, 'vector -1'; the model traces no EOI)",
    "host addresses, pids, comms and CPUs; gfns (the model's frames are not the real gpas: touches are "
    "compared by index)",
    "the first and last exceptions of the real guest that are not async PF (#UD of the final ud2)",
)


@dataclass
class Observation:
    guest: list[list] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)
    pages: dict[str, int | None] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    token_vcpu_bits: bool = True
    token_steps: list[int] = field(default_factory=list)
    first_counter: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    irq_vectors: list[int] = field(default_factory=list)
    late_pf: list[str] = field(default_factory=list)   # tokens whose ready was traced before their #PF injection

    def to_json(self) -> dict:
        return asdict(self)


def from_model(events: Iterable[TraceEvent], generation: str) -> list[Event]:
    """The model's trace as live-capture events (fields by the tracepoint's argument names)."""
    tps = tracepoints(generation)
    return [Event(i, ev.comm, ev.pid, ev.t_ns // 1000, ev.name, dict(zip(tps[ev.name].args, ev.args)))
            for i, ev in enumerate(events, 1)]


class _Labels:
    def __init__(self) -> None:
        self.of: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        if token == abi.BROADCAST_TOKEN:
            return "ALL"
        if token not in self.of:
            self.of[token] = f"T{len(self.of) + 1}"
        return self.of[token]


def observe(events: list[Event], log: list[LogRecord], *, vcpu_id: int, touches: dict[int, int]) -> Observation:
    """Reduce one run to its deterministic facts; ``touches`` maps a traced address to its touch's index."""
    obs = Observation()
    label = _Labels()
    tokens: list[int] = []
    by_gva: dict[int, str] = {}          # gva -> label of its outstanding token
    last_of: dict[int, str] = {}         # gva -> label of its last token that got ready (completed may come after)
    tries: dict[int, int] = {}           # gva -> tries not yet followed by not_present
    pf_tokens = [r.b for r in log if r.kind == "pf" and r.a & 1]   # not-present #PFs the guest took, in order
    injected: set[str] = set()
    counts = {k: 0 for k in ("try", "not_present", "repeated_fault", "ready", "completed", "pf_injected",
                             "irq_accepted", "ack_writes", "en_writes", "int_writes")}

    for ev in events:
        short = SHORT.get(ev.name)
        f = ev.fields
        if short is not None:
            counts[short] += 1
        if short == "try":
            tries[f["gva"]] = tries.get(f["gva"], 0) + 1
        elif short == "not_present":
            tok = f["token"]
            tokens.append(tok)
            lab = label(tok)
            by_gva[f["gva"]] = lab
            obs.chains[lab] = ["try"] * tries.pop(f["gva"], 0) + ["not_present"]
            obs.pages[lab] = touches.get(f["gva"])
        elif short == "repeated_fault":
            lab = by_gva.get(f["gva"])
            n = tries.get(f["gva"], 0)
            if lab is not None:
                if n:
                    tries[f["gva"]] = n - 1
                    obs.chains[lab].append("try")
                obs.chains[lab].append("repeated_fault")
        elif short == "completed":
            lab = by_gva.get(f["gva"], last_of.get(f["gva"]))
            if lab is not None:
                obs.completed[lab] = obs.completed.get(lab, 0) + 1
        elif short == "ready":
            lab = label(f["token"])
            obs.chains.setdefault(lab, []).append("ready")
            if f["token"] in pf_tokens and lab not in injected:
                obs.late_pf.append(lab)
            if lab != "ALL":
                last_of[f["gva"]] = by_gva.pop(f["gva"], lab)
        elif ev.name == "kvm_inj_exception" and f["exception"] == 14 and not f.get("reinjected"):
            counts["pf_injected"] += 1
            if counts["pf_injected"] <= len(pf_tokens):  # the n-th injection delivered the guest's n-th #PF
                injected.add(label(pf_tokens[counts["pf_injected"] - 1]))
        elif ev.name == "kvm_apic_accept_irq":
            counts["irq_accepted"] += 1
            obs.irq_vectors.append(f["vec"])
        elif ev.name == "kvm_msr" and f["write"]:
            which = MSR_NAMES.get(f["ecx"])
            if which is not None:
                counts[f"{which.lower()}_writes"] += 1
    obs.counts = counts
    obs.irq_vectors = sorted(set(obs.irq_vectors))
    obs.token_vcpu_bits = all(abi.token_vcpu(t) == vcpu_id for t in tokens)
    counters = [t >> abi.TOKEN_VCPU_BITS for t in tokens]
    obs.first_counter = counters[0] if counters else None
    obs.token_steps = sorted({b - a for a, b in zip(counters, counters[1:])})
    obs.guest = [_guest_line(r, label) for r in log]
    return obs


def _guest_line(r: LogRecord, label: _Labels) -> list:
    if r.kind == "pf":
        return ["pf", f"flags={r.a}", f"cr2={label(r.b)}" if r.a & 1 else f"cr2={r.b:#x}"]
    if r.kind == "irq":
        return ["irq", f"vector={r.a:#x}", f"token={label(r.b)}"]
    if r.kind == "ack":
        return ["ack", r.b]
    if r.kind == "wrmsr":
        return ["wrmsr", MSR_NAMES.get(r.a, hex(r.a)), hex(r.b)]
    if r.kind == "done":
        return ["done", r.b]
    return [r.kind, r.a, r.b]
