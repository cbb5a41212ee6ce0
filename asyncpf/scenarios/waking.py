"""x86's page-ready as the edge case of the waking contract: what makes a halted vcpu runnable, per generation.

The generic ``kvm_vcpu_block`` sleeps until the arch's ``kvm_arch_vcpu_runnable``
says yes.  In 2.6.38 (``arch/x86/kvm/x86.c@v2.6.38``) that predicate asks for
a RUNNABLE, un-APF-halted vcpu, a completion on ``async_pf.done``, or an
interrupt the guest can take -- not for a queued exception, and 2.6.38's
page-ready *is* a queued #PF.  In 6.18 (``kvm_vcpu_has_events``) a pending
exception counts, and page-ready is a fixed-mode LAPIC interrupt, which the
predicate sees through the LAPIC.

Each scenario samples the vcpu every few microseconds after the forced
moment and, while the vcpu is halted, evaluates the generation's own
``kvm_arch_vcpu_runnable`` twin with everything pending set aside but one
thing (a probe: the state is put back at once; nothing is injected).
"""

from __future__ import annotations

from typing import Any, Callable

from ..guest.ops import Work
from ..host import x86
from ..host.interrupt.lapic import APIC_DM_FIXED
from ..host.legacy import x86 as legacy_x86
from ..host.vcpu import LOCAL_TIMER_VECTOR
from .stage import Stage, _prog, _touch, scenario

SAMPLE_NS = 2_000
WINDOW_NS = 12_000_000


def runnable_with(vcpu: Any, *, exception: bool = False, vector: int | None = None,
                  predicate: Callable[[Any], bool] | None = None) -> bool:
    """The generation's kvm_arch_vcpu_runnable on the vcpu's state with nothing else pending but this one thing.

    ``done`` emptied, IRR holding only ``vector`` (if any), ``exception.pending``
    as given; everything is put back before returning.  ``predicate``: another
    generation's twin to ask instead of the machine's own.
    """
    saved = (vcpu.async_pf.done, vcpu.irr, vcpu.arch.exception.pending)
    try:
        vcpu.async_pf.done = type(saved[0])()
        vcpu.irr = set() if vector is None else {vector}
        vcpu.arch.exception.pending = exception
        return (predicate or vcpu.kvm.twins.kvm_arch_vcpu_runnable)(vcpu)
    finally:
        vcpu.async_pf.done, vcpu.irr, vcpu.arch.exception.pending = saved


def sample(s: Stage, vcpu: Any, samples: list[dict], until: int) -> None:
    """Record the vcpu's waking state every SAMPLE_NS until ``until`` (simulated time)."""
    env = s.m.env

    def probe(_arg: Any) -> None:
        blocked = vcpu.mode == "blocked"
        samples.append({"t": env.now, "mode": vcpu.mode, "mp_state": vcpu.arch.mp_state,
                        "exception": vcpu.arch.exception.pending and vcpu.arch.exception.nr == x86.PF_VECTOR,
                        "done": len(vcpu.async_pf.done), "irr": sorted(vcpu.irr),
                        "runnable": vcpu.kvm.twins.kvm_arch_vcpu_runnable(vcpu),
                        "probe": (runnable_with(vcpu, exception=True), runnable_with(vcpu, vector=LOCAL_TIMER_VECTOR))
                        if blocked else None})
        if env.now + SAMPLE_NS <= until:
            env.schedule(SAMPLE_NS, probe)

    env.schedule(0, probe)


def _busy_until(flag: dict) -> Callable:
    """A task that computes in 20 us pieces until ``flag['stop']`` is set, then exits (no exit to KVM meanwhile)."""
    def program(task: Any):
        while not flag.get("stop"):
            yield Work(20_000)

    return program


@scenario("page_ready_exception_does_not_wake_halted_vcpu",
          "2.6.38, the edge case of waking: the swap-in completes while another task runs (2.6.38 wakes only a "
          "blocked vcpu: no kick); that task exits, the idle HLTs, and page-ready is queued as a #PF on the "
          "HALTED vcpu; kvm_arch_vcpu_runnable ignores a pending exception, so the vcpu blocks with it until the "
          "tick's LAPIC interrupt makes it runnable (forced: the busy task stops at the completion; probes "
          "evaluate the predicate)")
def _legacy_edge(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    flag: dict[str, Any] = {}
    samples: list[dict] = []

    def on_completed(t_ns: int, _f: dict) -> None:
        flag["stop"] = True
        flag["mode_at_completion"] = v.mode
        sample(s, v, samples, t_ns + WINDOW_NS)

    s.on("kvm_async_pf_completed", on_completed)
    a = s.spawn("a", _prog(_touch(s.gva(gfn))))
    b = s.spawn("b", _busy_until(flag))
    s.finish([a, b])
    stuck = [x for x in samples if x["mode"] == "blocked" and x["exception"]
             and x["mp_state"] == x86.KVM_MP_STATE_HALTED and not x["done"]]
    s.check("the worker finished while the vcpu ran guest code (no kick in 2.6.38)",
            flag.get("mode_at_completion") in ("guest", "compute"), f"mode={flag.get('mode_at_completion')}")
    s.check("page-ready was queued as a #PF on the HALTED vcpu, which then blocked with it pending",
            bool(stuck), f"{len(stuck)} samples, ~{len(stuck) * SAMPLE_NS} ns blocked with the #PF pending")
    s.check("kvm_arch_vcpu_runnable said no all that time", bool(stuck) and not any(x["runnable"] for x in stuck),
            f"runnable in {sum(x['runnable'] for x in stuck)} of {len(stuck)}")
    after = [x for x in samples if stuck and x["t"] > stuck[-1]["t"]]
    woke = after[0] if after else None
    s.check("what made it runnable: the tick (LAPIC timer vector in IRR); the #PF was still pending",
            woke is not None and woke["runnable"] and LOCAL_TIMER_VECTOR in woke["irr"] and woke["exception"]
            and not woke["done"], f"first sample after: {woke}")
    probes = sorted({x["probe"] for x in stuck})
    s.check("the predicate alone (probe on the halted vcpu): a pending exception -> no, a timer interrupt -> yes",
            probes == [(False, True)], f"(exception only, timer only) -> {probes}")
    s.check("the sleeper was woken by that page-ready and exited", s.kernel.stats["sleeps"] == 1 and a.state == "X",
            f"sleeps={s.kernel.stats['sleeps']}")


@scenario("page_ready_interrupt_wakes_halted_vcpu",
          "6.18: a task sleeps on an APF (2010 HDD) and the idle HLTs; the completion goes on done and kicks, the "
          "vcpu leaves kvm_vcpu_block, and page-ready is a fixed-mode LAPIC interrupt on the PV vector, delivered "
          "at that entry; probes on the halted vcpu show 6.18's kvm_arch_vcpu_runnable says yes to that vector "
          "alone (through the LAPIC) and to a pending exception alone, where 2.6.38's refused the exception",
          generation="interrupt")
def _interrupt_edge(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    seen: dict[str, Any] = {}

    def on_completed(_t: int, _f: dict) -> None:
        seen["at_completion"] = (v.mode, v.arch.mp_state, len(v.async_pf.done))
        seen["probe"] = (runnable_with(v, vector=v.arch.apf.vec), runnable_with(v, exception=True),
                         runnable_with(v, exception=True, predicate=legacy_x86.kvm_arch_vcpu_runnable),
                         runnable_with(v))

    def on_irq(_t: int, f: dict) -> None:
        if f["vec"] == v.arch.apf.vec:
            seen.setdefault("irq", (f["dm"], v.arch.mp_state, v.mode))

    s.on("kvm_async_pf_completed", on_completed)
    s.on("kvm_apic_accept_irq", on_irq, once=False)
    a = s.spawn("a", _prog(_touch(s.gva(gfn))))
    s.finish([a])
    s.check("the worker finished while the vcpu was blocked in HLT, with the completion on done",
            seen.get("at_completion") == ("blocked", x86.KVM_MP_STATE_HALTED, 1), f"{seen.get('at_completion')}")
    s.check("page-ready came as a fixed-mode interrupt on the PV vector, after the vcpu was RUNNABLE again",
            seen.get("irq", (None,))[0] == APIC_DM_FIXED and seen.get("irq", (0, None))[1] == x86.KVM_MP_STATE_RUNNABLE,
            f"(delivery mode, mp_state, mode) at kvm_apic_accept_irq: {seen.get('irq')}")
    s.check("probe: 6.18 runnable with only the page-ready vector in IRR (fixed interrupt, IF=1) -> yes",
            seen.get("probe", (None,))[0] is True, f"(vector, exception, 2.6.38 exception, nothing) -> "
                                                    f"{seen.get('probe')}")
    s.check("probe: a pending exception alone -> yes in 6.18 (kvm_vcpu_has_events), no in 2.6.38; nothing -> no",
            seen.get("probe", (None,) * 4)[1:] == (True, False, False), f"{seen.get('probe')}")
    s.check("the sleeper was woken and exited", s.kernel.stats["sleeps"] == 1 and a.state == "X",
            f"sleeps={s.kernel.stats['sleeps']}")
