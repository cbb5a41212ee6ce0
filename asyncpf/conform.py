"""Hold a captured trace against the specification: ``asyncpf conform TRACE...``.

Each :class:`Rule` is a property the cited kernel code guarantees of the *trace* itself, judged only from
what one thread of one vcpu wrote, in the order that thread wrote it, and from per-token chains: never from
the global order of lines or their timestamps (worker and vcpu threads trace into per-CPU buffers with
per-CPU clocks, and a completion can be traced after the page-ready it caused).  Where a rule is the
trace-side reading of an invariant of :mod:`asyncpf.check.invariants`, ``Rule.invariant`` names it.
What the registry holds that a trace cannot show is listed in :data:`NOT_JUDGED` with the reason.

A capture may start after a vcpu's first async PF.  Tokens count up from the generation's first counter
(0; 1 since the 2022 non-zero-token fix), so a vcpu whose first not-present in the capture has a later
counter was already faulting when the capture began: page-readies of its older tokens, and its repeated
faults, are then not judged (the verdict says so).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .abi import BROADCAST_TOKEN, INTERRUPT, TOKEN_VCPU_BITS
from .trace import Capture

MSR_KVM_ASYNC_PF_EN = INTERRUPT.msr_async_pf_en      # the merged ABI's numbers (2.6.38 on)
MSR_KVM_ASYNC_PF_INT = INTERRUPT.msr_async_pf_int
MSR_KVM_ASYNC_PF_ACK = INTERRUPT.msr_async_pf_ack
COUNTER_BITS = 32 - TOKEN_VCPU_BITS
VCPU_MASK = (1 << TOKEN_VCPU_BITS) - 1
ALL = ("seed", "legacy", "interrupt")
MERGED = ("legacy", "interrupt")

MMU_618 = "arch/x86/kvm/mmu/mmu.c@v6.18 __kvm_mmu_faultin_pfn"
MMU_2638 = "arch/x86/kvm/mmu.c@v2.6.38 try_async_pf"
X86_618 = "arch/x86/kvm/x86.c@v6.18"
TOKEN_SRC = ("arch/x86/kvm/x86.c@v6.18 alloc_apf_token / kvm_arch_setup_async_pf; arch/x86/kvm/mmu.c@v2.6.38 "
             "kvm_arch_setup_async_pf: token = (apf.id++ << 12) | vcpu_id; seed: Msg-Id "
             "1258985167-29178-9-git-send-email-gleb@redhat.com")


@dataclass(frozen=True)
class Rule:
    name: str
    text: str
    source: str
    generations: tuple[str, ...]
    invariant: str | None = None  # the asyncpf.check.invariants entry this is the trace-side reading of


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("try-before-not-present",
         "a kvm_async_pf_not_present follows, on its vcpu thread, a kvm_try_async_get_page of the same gva "
         "with no async-PF event between them",
         f"{MMU_618} (trace_kvm_try_async_get_page, then kvm_arch_setup_async_pf -> virt/kvm/async_pf.c "
         f"kvm_setup_async_pf -> {X86_618} kvm_arch_async_page_not_present); {MMU_2638}", MERGED),
    Rule("try-before-repeated-fault",
         "a repeated fault (kvm_async_pf_repeated_fault; 2.6.38: kvm_async_pf_doublefault) follows, on its vcpu "
         "thread, a kvm_try_async_get_page of the same gva and gfn with no async-PF event between them",
         f"{MMU_618}; {MMU_2638}", MERGED),
    Rule("repeated-fault-gfn-outstanding",
         "a repeated fault names a gfn whose not-present on that vcpu is still unanswered (the per-vcpu gfn "
         "hash holds exactly the outstanding gfns)",
         f"{X86_618} kvm_arch_async_page_not_present (kvm_add_async_pf_gfn) / kvm_arch_async_page_present "
         "(kvm_del_async_pf_gfn), kvm_find_async_pf_gfn; arch/x86/kvm/x86.c@v2.6.38 likewise", MERGED,
         "hash_iff_outstanding"),
    Rule("ready-answers-not-present",
         "a page-ready other than the wake-all answers an earlier unanswered not-present of the same token, "
         "with the same gva",
         "virt/kvm/async_pf.c@v6.18 kvm_setup_async_pf (the item is queued after kvm_arch_async_page_not_present) "
         f"and kvm_check_async_pf_completion -> {X86_618} kvm_arch_async_page_present; bugzilla 208081, "
         "Msg-Id 873673b8gc.fsf@vitty.brq.redhat.com (notpresent_injected)", ALL, "ready_only_after_not_present"),
    Rule("one-ready-per-token",
         "a token gets one page-ready per not-present, and is not issued again while it is outstanding",
         TOKEN_SRC, ALL, "tokens_unique"),
    Rule("token-vcpu-bits",
         "a not-present token's low 12 bits are the id of the vcpu whose thread traced it (its kvm_entry)",
         TOKEN_SRC, ALL),
    Rule("token-counter-increases",
         "per vcpu, the counter above a token's low 12 bits increases from one not-present to the next "
         "(modulo 2^20)", TOKEN_SRC, ALL),
    Rule("token-nonzero",
         "a not-present token is never 0 (0 means 'slot free' in the interrupt-era area)",
         "'KVM: x86/mmu: make apf token non-zero to fix bug', Msg-Id "
         "20220210084113.73005-1-zhangliang5@huawei.com (alloc_apf_token)", ("interrupt",)),
    Rule("wake-all-shape",
         "a page-ready with token 0xffffffff is the wake-all: gva 0 (2.6.38 traces that item before setting "
         "~0, so there it reads token 0 gva 0)",
         f"virt/kvm/async_pf.c@v6.18 kvm_async_pf_wakeup_all (a zeroed item); {X86_618} "
         "kvm_arch_async_page_present (token = ~0, then the trace); arch/x86/kvm/x86.c@v2.6.38 (trace first)",
         MERGED),
    Rule("completed-for-ready",
         "every page-ready of a real fault has a kvm_async_pf_completed of its gva somewhere in the capture "
         "(in any order: the worker traces after queuing the item)",
         "virt/kvm/async_pf.c@v6.18 async_pf_execute; virt/kvm/async_pf.c@v2.6.38 async_pf_execute", ALL),
    Rule("page-ready-irq",
         "the page-ready interrupt (the kvm_apic_accept_irq right after kvm_async_pf_ready on the vcpu thread) "
         "is Fixed, edge, at the vector the guest wrote to MSR_KVM_ASYNC_PF_INT (0x4b564d06), the same for "
         "every page-ready of the vcpu",
         f"{X86_618} kvm_arch_async_page_present (APIC_DM_FIXED, apf.vec); "
         "Documentation/virt/kvm/x86/msr.rst@v6.18 MSR_KVM_ASYNC_PF_INT", ("interrupt",)),
    Rule("ack-answers-page-ready",
         "the guest writes 1 to MSR_KVM_ASYNC_PF_ACK (0x4b564d07) once per page-ready interrupt it handled: "
         "per vcpu, ACKs never outnumber page-ready interrupts (judged from the vcpu's enable wake-all on)",
         "Documentation/virt/kvm/x86/msr.rst@v6.18 MSR_KVM_ASYNC_PF_ACK; arch/x86/kernel/kvm.c@v6.18 "
         "(the page-ready handler clears token, then writes the ACK)", ("interrupt",)),
)}

NOT_JUDGED: tuple[tuple[str, str], ...] = (
    ("the order of kvm_async_pf_completed against not-present and page-ready",
     "the worker traces on another CPU, after queuing the item (virt/kvm/async_pf.c async_pf_execute), and "
     "ftrace's per-CPU clocks do not order lines across CPUs"),
    ("#PF injection (kvm_inj_exception) against page-ready",
     "the #PF is traced when injected on the next entry, KVM_REQ_APF_READY is handled earlier in "
     "vcpu_enter_guest: a page-ready can be traced first (seen on 6.18 for a few percent of tokens)"),
    ("every not-present is answered (every_not_present_answered)",
     "an end-of-run property: a capture can stop with faults in flight, and MSR disable or vcpu reset clear "
     "the queue without a trace line"),
    ("at most 64 outstanding per vcpu (queue_within_limit)", "clearing the queue leaves no trace line"),
    ("page-ready only for injected not-presents (notpresent_injected)",
     "kvm_inj_exception carries no token, and real #PFs of the guest are traced alike"),
    ("no page-ready after the wake-all answered it (no_ready_after_broadcast)",
     "needs what the guest's sleepers were woken by, which the host's trace does not show"),
    ("the guest's reason word, sleepers and dummies (reason_read_before_reenable, no_task_sleeps_forever, ...)",
     "guest state: not in the host's trace"),
    ("global order and timestamps", "nondeterministic on a real host: only per-vcpu and per-token order is judged"),
)


@dataclass(frozen=True)
class Violation:
    line: int
    rule: str
    detail: str

    def as_dict(self) -> dict:
        return {"line": self.line, "rule": self.rule, "detail": self.detail, "source": RULES[self.rule].source}


@dataclass
class Verdict:
    generation: str
    inferred: bool
    layout: str
    events: int
    apf_events: int
    rules: list[str]
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict:
        return {"generation": self.generation, "generation_inferred": self.inferred, "layout": self.layout,
                "events": self.events, "async_pf_events": self.apf_events, "verdict": "conforms" if self.ok
                else "violates", "rules_judged": self.rules,
                "violations": [v.as_dict() for v in self.violations], "notes": self.notes}


def _kind(name: str, args: tuple) -> tuple[str, tuple] | None:
    """The event as the checker sees it: (kind, args)."""
    if name == "kvm_try_async_get_page":
        return ("try", args) if len(args) == 2 and not isinstance(args[0], bool) else ("try-seed", args)
    if name == "kvm_async_pf_not_present":
        return "np", args
    if name == "kvm_async_pf_ready":
        return "ready", args
    if name == "kvm_send_async_pf":  # the seed: one event, reason 1 not present, 2 ready
        token, gva, reason = args
        return ("np" if reason == 1 else "ready"), (token, gva)
    if name in ("kvm_async_pf_repeated_fault", "kvm_async_pf_doublefault"):
        return "repeated", args
    if name == "kvm_async_pf_completed":
        return "completed", (args[-1],)  # gva is TP_PROTO's last arg in every generation
    if name in ("kvm_entry", "kvm_apic_accept_irq", "kvm_msr"):
        return name, args
    return None


def _in_irq(flags: str | None) -> bool:
    """The line was traced in hard/soft interrupt context (the irq-flags column's third character)."""
    return flags is not None and len(flags) >= 3 and flags[2] != "."


@dataclass
class _Thread:
    vcpu: int | None = None          # from kvm_entry
    last_apf: tuple | None = None    # (kind, args, line) of its last async-PF event
    after_ready: tuple | None = None  # (line, token) when its last process-context event was a page-ready
    int_vec: int | None = None       # what it wrote to MSR_KVM_ASYNC_PF_INT
    seen_vec: int | None = None
    irqs: int = 0
    acks: int = 0
    enabled_seen: bool = False       # its enable wake-all was delivered in the capture
    token_vcpu: int | None = None    # the vcpu bits of the tokens it issued


def check(capture: Capture) -> Verdict:
    gen = capture.generation
    rules = [r.name for r in RULES.values() if gen in r.generations]
    first_counter = 0 if gen != "interrupt" else 1
    entries = [e for e in capture.entries if e.known]
    kinds = [(e, _kind(e.event.name, e.event.args)) for e in entries]
    apf = [(e, k) for e, k in kinds if k and k[0] in ("try", "try-seed", "np", "ready", "repeated", "completed")]
    verdict = Verdict(gen, capture.inferred, capture.layout, len(capture.entries), len(apf), rules)
    out = verdict.violations

    def bad(line: int, rule: str, detail: str) -> None:
        if rule in rules:
            out.append(Violation(line, rule, detail))

    # a vcpu "covered from its start": its first not-present in the capture has the first counter
    first_np: dict[int, int] = {}
    for e, k in kinds:
        if k and k[0] == "np":
            first_np.setdefault(k[1][0] & VCPU_MASK, k[1][0] >> TOKEN_VCPU_BITS)
    late = {v: c for v, c in first_np.items() if c != first_counter}
    for v, c in sorted(late.items()):
        verdict.notes.append(f"vcpu {v}: its first not-present here has counter {c:#x}, not {first_counter}: the "
                             "capture starts after its first async PF, so page-readies of older tokens and its "
                             "repeated faults are not judged")
    if capture.lost:
        verdict.notes.append(f"{capture.lost} events were overwritten or dropped (line "
                             f"{', '.join(map(str, capture.lost_lines))}): rules needing a missing line may report it")
    names = {e.event.name for e in entries}
    if "kvm_entry" not in names:
        verdict.notes.append("kvm_entry not traced: token-vcpu-bits is not judged")
    if gen == "interrupt" and "kvm_apic_accept_irq" not in names:
        verdict.notes.append("kvm_apic_accept_irq not traced: page-ready-irq and ack-answers-page-ready are not judged")

    threads: dict[int, _Thread] = {}
    outstanding: dict[int, tuple[int, int, int | None, int]] = {}  # token -> (line, gva, gfn, pid)
    answered: dict[int, int] = {}                                   # token -> line of its page-ready
    last_counter: dict[int, int] = {}
    ready_gvas: list[tuple[int, int]] = []                          # (gva, line) of real page-readies
    completed: Counter = Counter()
    irqs_traced = "kvm_apic_accept_irq" in names

    for e, k in kinds:
        if k is None:
            continue
        kind, args = k
        line, pid = e.line, e.event.pid
        th = threads.setdefault(pid, _Thread())
        if kind == "completed":
            completed[args[0]] += 1  # the worker's thread: nothing else to judge
            continue
        if kind == "kvm_apic_accept_irq" and _in_irq(e.flags):
            continue  # a timer or device interrupt that came in on this thread: not the page-ready path
        after_ready, th.after_ready = th.after_ready, None
        if kind == "kvm_entry":
            th.vcpu = args[0]
        elif kind == "kvm_msr":
            write, ecx, data, exc = args
            if write and not exc and ecx == MSR_KVM_ASYNC_PF_INT:
                th.int_vec = data & 0xFF
            if write and not exc and ecx == MSR_KVM_ASYNC_PF_ACK and data & 1:
                th.acks += 1
                if irqs_traced and th.enabled_seen and th.acks > th.irqs:
                    bad(line, "ack-answers-page-ready",
                        f"ACK #{th.acks} on this vcpu thread (pid {pid}) after {th.irqs} page-ready interrupts")
        elif kind == "kvm_apic_accept_irq":
            if after_ready is not None:
                apicid, dm, tm, vec = args
                th.irqs += 1
                th.enabled_seen = th.enabled_seen or after_ready[1] == BROADCAST_TOKEN
                want = th.int_vec if th.int_vec is not None else th.seen_vec
                problems = [f"delivery mode {dm}, not Fixed" for _ in [0] if dm != 0]
                problems += ["level-triggered, not edge" for _ in [0] if tm]
                if want is not None and vec != want:
                    problems.append(f"vector {vec}, not {want}" + (" (written to MSR_KVM_ASYNC_PF_INT)"
                                                                   if th.int_vec is not None else
                                                                   " (of this vcpu's earlier page-readies)"))
                if problems:
                    bad(line, "page-ready-irq", f"for the page-ready at line {after_ready[0]}: "
                                                + "; ".join(problems))
                if th.seen_vec is None:
                    th.seen_vec = vec
        elif kind in ("try", "try-seed"):
            th.last_apf = (kind, args, line)
        elif kind == "np":
            token, gva = args
            prev, th.last_apf = th.last_apf, (kind, args, line)
            gfn = None
            if prev is not None and gen != "seed":
                if prev[0] == "try" and prev[1][0] == gva:
                    gfn = prev[1][1]
                else:
                    bad(line, "try-before-not-present",
                        f"not-present {token:#x} gva {gva:#x}: the vcpu thread's previous async-PF event is "
                        f"line {prev[2]} ({prev[0]} {', '.join(f'{a:#x}' for a in prev[1])})")
            vcpu = th.token_vcpu = token & VCPU_MASK
            if th.vcpu is not None and vcpu != th.vcpu:
                bad(line, "token-vcpu-bits", f"token {token:#x} has vcpu bits {vcpu} but the thread (pid {pid}) "
                                             f"runs vcpu {th.vcpu} (its kvm_entry)")
            counter = token >> TOKEN_VCPU_BITS
            if vcpu in last_counter:
                step = (counter - last_counter[vcpu]) % (1 << COUNTER_BITS)
                if not 0 < step < 1 << (COUNTER_BITS - 1):
                    bad(line, "token-counter-increases",
                        f"token {token:#x}: counter {counter:#x} after {last_counter[vcpu]:#x} on vcpu {vcpu}")
            last_counter[vcpu] = counter
            if token == 0:
                bad(line, "token-nonzero", "not-present with token 0")
            if token in outstanding:
                bad(line, "one-ready-per-token", f"token {token:#x} issued again while its not-present at line "
                                                 f"{outstanding[token][0]} is unanswered")
            outstanding[token] = (line, gva, gfn, pid)
            answered.pop(token, None)
        elif kind == "ready":
            token, gva = args
            th.last_apf = (kind, args, line)
            th.after_ready = (line, token)
            legacy_wake_all = (gen == "legacy" and token == 0 and gva == 0
                               and not (0 in outstanding and outstanding[0][1] == 0))
            if token == BROADCAST_TOKEN or legacy_wake_all:
                if token == BROADCAST_TOKEN and gva != 0:
                    bad(line, "wake-all-shape", f"wake-all page-ready with gva {gva:#x}, not 0")
                th.after_ready = (line, BROADCAST_TOKEN)
                continue
            if token in outstanding:
                np_line, np_gva, _gfn, _pid = outstanding.pop(token)
                answered[token] = line
                if np_gva != gva:
                    bad(line, "ready-answers-not-present", f"page-ready {token:#x} has gva {gva:#x}, its "
                                                           f"not-present at line {np_line} had {np_gva:#x}")
                ready_gvas.append((gva, line))
            elif token in answered:
                bad(line, "one-ready-per-token", f"second page-ready for token {token:#x} (first at line "
                                                 f"{answered[token]})")
            else:
                vcpu, counter = token & VCPU_MASK, token >> TOKEN_VCPU_BITS
                if vcpu in first_np and counter >= first_np[vcpu]:  # issued within the capture
                    bad(line, "ready-answers-not-present", f"page-ready {token:#x} with no unanswered not-present "
                                                           "of that token before it")
                # else: a fault begun before the capture (its not-present and completion may be before it too)
        elif kind == "repeated":
            gva, gfn = args
            prev, th.last_apf = th.last_apf, (kind, args, line)
            if prev is not None and not (prev[0] == "try" and tuple(prev[1]) == (gva, gfn)):
                bad(line, "try-before-repeated-fault",
                    f"repeated fault gva {gva:#x} gfn {gfn:#x}: the vcpu thread's previous async-PF event is line "
                    f"{prev[2]} ({prev[0]} {', '.join(f'{a:#x}' for a in prev[1])})")
            mine = [o for o in outstanding.values() if o[3] == pid]
            vcpu = th.vcpu if th.vcpu is not None else th.token_vcpu
            covered = vcpu is not None and vcpu in first_np and vcpu not in late  # from its first async PF on
            if covered and not any(o[2] == gfn for o in mine):
                bad(line, "repeated-fault-gfn-outstanding",
                    f"gfn {gfn:#x} has no unanswered not-present on this vcpu thread (pid {pid})")
    for gva, line in ready_gvas:
        if completed[gva]:
            completed[gva] -= 1
        else:
            bad(line, "completed-for-ready", f"no kvm_async_pf_completed for gva {gva:#x} in the capture")
    out.sort(key=lambda v: (v.line, v.rule))
    return verdict


# --- the command ----------------------------------------------------------------------

def _generation_name(text: str) -> str:
    import argparse

    if text not in ALL:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(ALL)}")
    return text


def _configure(p) -> None:
    from .argtypes import input_file

    p.add_argument("traces", nargs="*", type=input_file, metavar="TRACE",
                   help="ftrace text: tracefs trace/trace_pipe (with or without the irq-flags column) or "
                        "`trace-cmd report` output; - reads standard input")
    p.add_argument("--generation", type=_generation_name, metavar="G",
                   help="protocol generation of the traces: seed, legacy or interrupt (default: named in the "
                        "trace, else inferred from its events)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rules", action="store_true", help="list the rules judged and what is not judged, with sources")


def _read_all(paths: list[str], generation: str | None) -> list[tuple[str, Capture]]:
    """Every file read before anything is printed: an unreadable one refuses the whole run (exit 2)."""
    import sys

    from .cli import UsageError
    from .trace import TraceParseError, read

    out = []
    for path in paths:
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: byte {exc.start} is not UTF-8: expected ftrace text") from None
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}: expected a readable file") from None
        try:
            capture = read(text, generation)
        except TraceParseError as exc:
            raise UsageError(f"{path}: {exc}") from None
        if not any(e.event.name.startswith("kvm") for e in capture.entries):   # would conform to every rule
            raise UsageError(f"{path}: no KVM trace events in it: expected an ftrace capture of a run")
        out.append((path, capture))
    return out


def _print_rules() -> None:
    for r in RULES.values():
        inv = f" (invariant {r.invariant})" if r.invariant else ""
        print(f"{r.name} [{', '.join(r.generations)}]{inv}\n    {r.text}\n    source: {r.source}")
    print("\nnot judged from a trace:")
    for what, why in NOT_JUDGED:
        print(f"  {what}: {why}")


def _main(args) -> int:
    import json

    from . import __version__
    from .cli import UsageError

    if args.rules:
        if args.traces:
            raise UsageError(f"TRACE {args.traces[0]!r}: not with --rules, which only lists the rules")
        if args.json:
            print(json.dumps({"rules": [{"name": r.name, "text": r.text, "source": r.source,
                                         "generations": list(r.generations), "invariant": r.invariant}
                                        for r in RULES.values()],
                              "not_judged": [{"what": w, "why": y} for w, y in NOT_JUDGED]}, indent=2))
        else:
            _print_rules()
        return 0
    if not args.traces:
        raise UsageError("TRACE: expected at least one trace file (or --rules)")
    if args.traces.count("-") > 1:
        raise UsageError("TRACE '-': standard input can be read once")
    verdicts = [(path, check(cap)) for path, cap in _read_all(args.traces, args.generation)]
    ok = all(v.ok for _p, v in verdicts)
    if args.json:
        print(json.dumps({"asyncpf": __version__, "ok": ok,
                          "files": [{"file": p, **v.as_dict()} for p, v in verdicts]}, indent=2))
        return 0 if ok else 1
    for path, v in verdicts:
        how = "inferred" if v.inferred else "given"
        head = (f"{v.generation} generation ({how}), {v.layout} layout, {v.events} events "
                f"({v.apf_events} async-PF), {len(v.rules)} rules")
        if v.ok:
            print(f"{path}: conforms ({head})")
        else:
            broken = sorted({x.rule for x in v.violations})
            print(f"{path}: VIOLATES {', '.join(broken)} ({head})")
        for x in v.violations:
            print(f"  line {x.line}: {x.rule}: {x.detail}\n      source: {RULES[x.rule].source}")
        for note in v.notes:
            print(f"  note: {note}")
    return 0 if ok else 1


def _register() -> None:
    from .cli import command

    command("conform", "check captured async-PF traces against the specification's rules (exit 1 on a "
                       "violation); --rules lists them with their sources", _configure)(_main)


_register()
