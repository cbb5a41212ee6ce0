"""Helpers for notebook 10: why page-ready moved off #PF, the ACK handshake, a legacy guest on a new host, bm x 3.

Imported as a module (``from asyncpf.explain import interrupt_era as ie``): it
runs scenarios and ``bm``.  Every helper returns plain values or text.
"""

from __future__ import annotations

from typing import Any, Sequence

from .. import abi, bm, scenarios
from ..scenarios.stage import APF_EVENTS, ScenarioResult
from ..trace import TraceEvent, render, tracepoints
from .benchmark import SWEEP_BASE, short_params
from .common import text_table

PV_VECTOR = abi.HYPERVISOR_CALLBACK_VECTOR
ACK = abi.generation("interrupt").msr_async_pf_ack

# The reasons given in 2020 for moving page-ready off #PF, each with its public source.
REASONS_2020: tuple[tuple[str, str], ...] = (
    ("#PF is abused for a paravirtual event: a page-ready #PF has nothing to do with the instruction it interrupts "
     "and can collide with a real fault; the plan: #VE (or similar) for not-present, an ordinary APIC interrupt "
     "for page-ready -- the series does the latter",
     "Vitaly Kuznetsov, '[PATCH 0/8] KVM: x86: Interrupt-based mechanism for async_pf \"page present\" "
     "notifications', 2020-05-11, Msg-Id 20200511164752.2158645-1-vkuznets@redhat.com"),
    ("an interrupt is not taken at once (IF=0, a higher-priority vector in service), so before sending the next "
     "page-ready the host must know the guest consumed the last one: the token word in the shared area (0 = free) "
     "and the ACK MSR",
     "'[PATCH v2 05/10] KVM: x86: interrupt based APF \"page ready\" event delivery', 2020-05-25, "
     "Msg-Id 20200525144125.143875-6-vkuznets@redhat.com (commit 2635b5c4a0e4)"),
    ("back-to-back page-ready events waited for the next exit-driven check of the run loop; the guest's ACK write "
     "makes KVM look at its done list at once, and KVM_REQ_APF_READY (with a kick) replaces the polling",
     "'[PATCH 5/8] KVM: x86: acknowledgment mechanism for async pf page ready notifications', 2020-05-11, "
     "Msg-Id 20200511164752.2158645-6-vkuznets@redhat.com (commit 557a961abbe0)"),
    ("#PF in kernel mode is reentrancy trouble (RCU, instrumentation, a halt-based wait): not-present is sent to "
     "user mode only, and a kernel-mode one panics the guest",
     "Thomas Gleixner, 'x86/kvm: Restrict ASYNC_PF to user space', commit 3a7c8fafd1b4 (2020)"),
)


def reasons_table(width: int = 100) -> str:
    """The 2020 reasons, numbered, each followed by its source."""
    import textwrap
    out = []
    for i, (reason, source) in enumerate(REASONS_2020, 1):
        out.append(textwrap.fill(reason, width, initial_indent=f"{i}. ", subsequent_indent="   "))
        out.append(textwrap.fill(source, width, initial_indent="   -- ", subsequent_indent="      "))
    return "\n".join(out)


# --- the handshake as a trace --------------------------------------------------------------------

def run_scenario(name: str, seed: int = 0) -> ScenarioResult:
    """One named scenario of the interrupt era, run (trace on)."""
    sc = scenarios.get(name)
    if sc.generation != "interrupt":
        raise ValueError(f"{name!r} is a {sc.generation} scenario; expected one of {interrupt_scenarios()}")
    return sc.run(seed=seed)


def interrupt_scenarios() -> list[str]:
    return [n for n, sc in scenarios.SCENARIOS.items() if sc.generation == "interrupt"]


def fields(ev: TraceEvent) -> dict[str, Any]:
    """A trace event's arguments by name."""
    return dict(zip(tracepoints("interrupt")[ev.name].args, ev.args))


STEPS = (
    ("kvm_async_pf_not_present", "token"), ("kvm_inj_exception", None), ("kvm_async_pf_completed", "gva"),
    ("kvm_async_pf_ready", "token"), ("kvm_apic_accept_irq", None), ("kvm_msr", None),
)


def handshake_events(result: ScenarioResult, which: int = 0) -> list[TraceEvent]:
    """The trace events of the ``which``-th fault's handshake after boot, in order: not-present, #PF, completed,
    ready, the interrupt on the PV vector, the ACK write."""
    events = result.tracer.events
    nps = [i for i, e in enumerate(events) if e.name == "kvm_async_pf_not_present"]
    start = nps[which]
    token, gva = fields(events[start])["token"], fields(events[start])["gva"]
    chain, i = [events[start]], start
    wanted = {
        "kvm_inj_exception": lambda f: f["exception"] == 14,
        "kvm_async_pf_completed": lambda f: f["gva"] == gva,
        "kvm_async_pf_ready": lambda f: f["token"] == token,
        "kvm_apic_accept_irq": lambda f: f["vec"] == PV_VECTOR,
        "kvm_msr": lambda f: f["ecx"] == ACK and f["data"] == 1,
    }
    for name, pred in wanted.items():
        i = next(j for j in range(i + 1, len(events)) if events[j].name == name and pred(fields(events[j])))
        chain.append(events[i])
    return chain


def trace_text(events: Sequence[TraceEvent]) -> str:
    """Events as ftrace lines (the header dropped)."""
    return "\n".join(line for line in render(events, "interrupt").splitlines() if not line.startswith("#"))


LANES = ("guest", "KVM (vcpu thread)", "worker")
# event -> (from lane, to lane, what happens)
ARROWS = {
    "kvm_async_pf_not_present": (1, 2, "not-present: flags = 1, #PF queued with CR2 = token; work queued"),
    "kvm_inj_exception": (1, 0, "#PF (CR2 = token): flags read and cleared, the task sleeps"),
    "kvm_async_pf_completed": (2, 1, "page in; on done; KVM_REQ_APF_READY + kick"),
    "kvm_async_pf_ready": (1, 1, "slot free (token word 0): token written"),
    "kvm_apic_accept_irq": (1, 0, "interrupt 243: read token, wake the task, token word = 0"),
    "kvm_msr": (0, 1, "WRMSR ACK = 1: pageready_pending off, look at done again"),
}


LANE_X = (2, 10, 18)          # the column of each lane in the chart's arrow field


def arrow(a: int, b: int, width: int = 21) -> str:
    """Lane ``a`` to lane ``b`` as text: ``o---->`` (a mark ``*`` when an actor acts alone)."""
    cells = [" "] * width
    for x in LANE_X:
        cells[x] = ":"
    if a == b:
        cells[LANE_X[a]] = "*"
    else:
        lo, hi = sorted((LANE_X[a], LANE_X[b]))
        for x in range(lo, hi + 1):
            cells[x] = "-"
        cells[LANE_X[a]] = "o"
        cells[LANE_X[b]] = ">" if b > a else "<"
    return "".join(cells).rstrip()


def sequence_chart(events: Sequence[TraceEvent]) -> str:
    """A text sequence chart of the handshake: time since not-present, the arrow between lanes, what happens."""
    t0 = events[0].t_ns
    head = [" "] * (LANE_X[-1] + 4)
    for x, name in zip(LANE_X, ("guest", "KVM", "worker")):
        start = x - len(name) // 2
        head[start:start + len(name)] = name
    rows = [(f"{(e.t_ns - t0) / 1000:.1f}", arrow(*ARROWS[e.name][:2]), e.name, ARROWS[e.name][2]) for e in events]
    return text_table(("t (us)", "".join(head).rstrip(), "trace event", "what happens"), rows, right=(0,))


def plot_sequence(events: Sequence[TraceEvent], ax: Any = None) -> Any:
    """The handshake as a sequence diagram: a lane per actor, an arrow per event, top to bottom in causal order."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    t0 = events[0].t_ns
    xs = {lane: i for i, lane in enumerate(LANES)}
    for lane, x in xs.items():
        ax.plot([x, x], [-0.5, len(events) - 0.5], color="0.6", lw=1)
        ax.text(x, -0.8, lane, ha="center", va="bottom", fontsize=8, weight="bold")
    for y, e in enumerate(events):
        a, b, what = ARROWS[e.name]
        if a == b:
            ax.plot([a], [y], "o", color="tab:blue")
        else:
            ax.annotate("", xy=(b, y), xytext=(a, y), arrowprops={"arrowstyle": "->", "color": "tab:blue"})
        ax.text(2.15, y, f"+{(e.t_ns - t0) / 1000:.1f} us  {e.name}: {what}", va="center", fontsize=7)
    ax.set(xlim=(-0.3, 6.5), ylim=(len(events) - 0.4, -1.0))
    ax.axis("off")
    return ax


# --- a legacy guest on the new host --------------------------------------------------------------

def legacy_vs_pv() -> list[dict[str, Any]]:
    """The same two swapped-page touches by a 5.9+ guest and by a 2.6.38-style guest on the 6.18 host."""
    out = []
    for name in ("ack_handshake", "legacy_guest_on_interrupt_host"):
        r = run_scenario(name)
        v = r.machine.vcpus[0]
        out.append({"scenario": name, "ok": r.ok, "en": v.arch.apf.msr_en_val,
                    "not_present": r.counts.get("kvm_async_pf_not_present", 0),
                    "pf_injected": r.counts["apf_not_present_injected"],
                    "page_ready_irqs": v.stat["apf_page_ready_irqs"], "apf_halts": r.counts["apf_halts"],
                    "halted_ms": v.acct["halted"] / 1e6, "sleeps": r.counts.get("guest_sleeps", 0)})
    return out


def legacy_table(rows: Sequence[dict[str, Any]]) -> str:
    return text_table(("guest", "MSR_KVM_ASYNC_PF_EN", "not-present", "#PF sent", "page-ready irqs", "APF halts",
                       "halted ms", "task slept"),
                      [("5.9+ (ack_handshake)" if r["scenario"] == "ack_handshake" else "2.6.38-style",
                        f"{r['en']:#x}", r["not_present"], r["pf_injected"], r["page_ready_irqs"], r["apf_halts"],
                        f"{r['halted_ms']:.1f}", r["sleeps"]) for r in rows], right=range(2, 8))


# --- bm across the generations ---------------------------------------------------------------------

GENERATIONS = tuple(abi.MODELLED)


def bm_generations(seconds: float = 2, jobs: int = 2, **changes: Any) -> dict[str, dict[str, dict]]:
    """``bm.run_three`` of the published set-up, shortened to ``seconds``, once per generation: runs by generation."""
    return {g: bm.run_three(short_params(seconds, generation=g, **changes), jobs=jobs) for g in GENERATIONS}


def bm_generations_table(by_gen: dict[str, dict[str, dict]]) -> str:
    """Per generation: work and ratio per host, async PFs sent, swap-ins, APF halts."""
    rows = []
    for g, runs in by_gen.items():
        r = bm.ratios(runs)
        rows.append((g, *(f"{runs[h]['work']:.3f}" for h in bm.MODES), f"{r['halt']:.3f}x", f"{r['pv']:.3f}x",
                     runs["pv"]["async_pf_sent"], runs["pv"]["swapins"], runs["halt"]["apf_halts"]))
    return text_table(("generation", "unpatched s", "halt s", "pv s", "halt/unp", "pv/unp", "pv APFs", "pv swap-ins",
                       "halt halts"), rows, right=range(1, 9))


def fast_disk(latency_ns: int = 100_000, jobs: int = 2) -> dict[str, dict[str, dict]]:
    """The scaled-down bm (notebook 07's sweep set-up) with a fast swap device, legacy vs interrupt."""
    return {g: bm.run_three(SWEEP_BASE.replace(generation=g, swap_latency_ns=latency_ns), jobs=jobs)
            for g in ("legacy", "interrupt")}


# --- the widget's scenario summary ------------------------------------------------------------------

def scenario_summary(name: str) -> dict[str, Any]:
    """A scenario of this generation: ok, its checks, its counts, and the first async-PF trace lines."""
    r = run_scenario(name)
    return {"name": name, "ok": r.ok, "summary": scenarios.get(name).summary,
            "checks": [(c.passed, c.name) for c in r.checks], "leaks": list(r.leaks),
            "irqs_243": sum(1 for e in r.tracer.events if e.name == "kvm_apic_accept_irq"
                            and fields(e)["vec"] == PV_VECTOR),
            "trace": trace_text(apf_events(r)[:12])}


def apf_events(result: ScenarioResult) -> list[TraceEvent]:
    """The run's async-PF events, with only the page-ready interrupts among kvm_apic_accept_irq (no ticks, IPIs)."""
    return [e for e in result.tracer.events if e.name in APF_EVENTS
            and (e.name != "kvm_apic_accept_irq" or fields(e)["vec"] == PV_VECTOR)]


def summary_text(s: dict[str, Any]) -> str:
    lines = [f"{s['name']}: {'OK' if s['ok'] else 'FAILED'}  ({s['irqs_243']} interrupts on vector 243)"]
    lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for ok, name in s["checks"]]
    lines += ["", "first async-PF trace lines:", s["trace"]]
    return "\n".join(lines)
