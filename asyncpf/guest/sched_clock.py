"""The guest's scheduler clock when it is not stable: kvm-clock filtered through the tick window.

A 2.6.3x x86 kernel is built with ``CONFIG_HAVE_UNSTABLE_SCHED_CLOCK``
(``arch/x86/Kconfig`` selects it), and it trusts ``sched_clock()`` alone
(``sched_clock_stable``) only on a CPU whose CPUID leaf 0x80000007 reports an
invariant TSC (``early_init_intel`` / ``early_init_amd``, v2.6.36).  KVM did
not pass that bit to guests until the 2014 commit "KVM: x86: expose invariant
tsc cpuid bit (v2)", so every KVM guest of 2010 ran the filtered clock of
``kernel/sched_clock.c``: the runqueue clock is the last tick's time plus the
raw clock's progress since, never more than one tick (``TICK_NSEC``) past the
last tick, and never backwards.  Time beyond that window is only seen at the
next tick (``sched_clock_tick``), and ``update_curr`` then charges it to
whoever is current at that tick.

With kvm-clock the raw clock is ``kvm_clock_read`` (``arch/x86/kernel/kvmclock.c``
v2.6.36 sets ``pv_time_ops.sched_clock`` to it) and GTOD reads the same
kvm-clock clocksource, so both are the engine's time here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..mirrors import mirrors

if TYPE_CHECKING:
    from .kernel import GuestCpu


@dataclass
class SchedClockData:
    """``struct sched_clock_data`` of one cpu: the raw and GTOD time at the last tick, the filtered clock."""

    tick_raw: int = 0
    tick_gtod: int = 0
    clock: int = 0


@mirrors("kernel/sched_clock.c", "sched_clock_init", generations="guest 2.6.32-38")
def sched_clock_init(now: int) -> SchedClockData:
    """A cpu's clock data at boot: the filtered clock and the tick's GTOD start at the current time.

    kernel/sched_clock.c:sched_clock_init at v2.6.36.
    Simplification: ``tick_raw`` starts at the same time, not at 0: the raw
    clock and GTOD are one clock (kvm-clock) here, so the first delta is 0.
    """
    return SchedClockData(tick_raw=now, tick_gtod=now, clock=now)


@mirrors("kernel/sched_clock.c", "sched_clock_local", generations="guest 2.6.32-38")
def sched_clock_local(cpu: "GuestCpu", scd: SchedClockData) -> int:
    """The filtered clock: last tick's GTOD plus the raw progress since, within [old clock, tick + TICK_NSEC].

    kernel/sched_clock.c:sched_clock_local at v2.6.36 (same from v2.6.33).
    Simplification: no cmpxchg retry (one guest cpu updates its own data);
    no wrap-around arithmetic (64-bit nanoseconds from boot do not wrap);
    TICK_NSEC is 1e9 / HZ (2.6.x derives it from LATCH: 999,848 ns at HZ=1000).
    """
    now = cpu.kernel.env.now
    delta = max(now - scd.tick_raw, 0)
    tick_ns = 1_000_000_000 // cpu.kernel.hz
    clock = scd.tick_gtod + delta
    clock = max(clock, scd.tick_gtod, scd.clock)
    clock = min(clock, max(scd.clock, scd.tick_gtod + tick_ns))
    scd.clock = clock
    return clock


@mirrors("kernel/sched_clock.c", "sched_clock_tick", generations="guest 2.6.32-38")
def sched_clock_tick(cpu: "GuestCpu", scd: SchedClockData) -> None:
    """At the tick: take the raw clock and GTOD afresh, so the filtered clock catches up with real time.

    kernel/sched_clock.c:sched_clock_tick at v2.6.36, called first thing in
    kernel/sched.c:scheduler_tick.
    Simplification: the idle wake-up resync (sched_clock_idle_wakeup_event,
    from the NO_HZ idle exit) is left out: the model's guest ticks
    periodically, idle or not.
    """
    now = cpu.kernel.env.now
    scd.tick_raw = now
    scd.tick_gtod = now
    sched_clock_local(cpu, scd)
