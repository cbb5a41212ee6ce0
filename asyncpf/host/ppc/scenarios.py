"""Book3S scenarios: what wakes a waiting vcpu, and edge vs level delivery of a level-triggered device.

Each function builds a fresh engine and one Book3S vcpu, runs a short guest
script and returns ``{check name: (passed, detail)}``; ``tests/test_ppc.py``
and notebook 13 hold them to it.
"""

from __future__ import annotations

from typing import Any

from ...sim import Environment
from . import book3s as b

US = 1_000


def _machine(level_support: bool = True) -> tuple[Environment, Any]:
    env = Environment(0)
    return env, b.new_vcpu(env, level_support=level_support)


QUIESCENT = "quiescent at the end: the guest script ran out, nothing pending"


def quiescent(v: Any) -> tuple[bool, str]:
    """The vcpu thread left its script and no interrupt priority is still pending."""
    return (v.mode == "exited" and v.arch.pending_exceptions == 0,
            f"mode={v.mode} pending={v.arch.pending_exceptions:#x}")


def woken_by_level_interrupt() -> dict[str, tuple[bool, str]]:
    """A vcpu waits (MSR_POW); 50 us later the device raises its line: the vcpu wakes and takes it once serviced."""
    env, v = _machine()
    dev = b.LevelDevice(v)
    guest = b.PpcGuest([b.Wait(), b.Run(10 * US)], {b.BOOK3S_INTERRUPT_EXTERNAL: lambda vc: dev.service_one()})
    env.schedule(50 * US, lambda _a: dev.raise_event())
    blocked: list[bool] = []
    env.schedule(20 * US, lambda _a: blocked.append(v.mode == "blocked" and not b.kvm_arch_vcpu_runnable(v)))
    env.process(b.run_vcpu(v, guest), "ppc-vcpu0")
    env.run()
    return {
        "the vcpu was blocked in kvm_vcpu_block (MSR_WE, nothing pending)": (blocked == [True], f"{blocked}"),
        "the level interrupt woke it (halt_wakeup) at 50 us": (v.stat["halt_wakeup"] >= 1 and guest.log
                                                              and guest.log[0][0] == 50 * US, f"{guest.log}"),
        "delivered once: the handler emptied the device, the VMM unset the line": (
            len(guest.log) == 1 and dev.serviced == 1 and v.arch.pending_exceptions == 0, f"{guest.log}"),
        "its wait was charged to idle": (v.acct["idle"] == 50 * US, f"{v.acct}"),
        QUIESCENT: quiescent(v),
    }


def level_redelivered_until_unset() -> dict[str, tuple[bool, str]]:
    """Three events behind one line: the guest's handler takes one per interrupt; the level is delivered three times."""
    env, v = _machine()
    dev = b.LevelDevice(v)
    guest = b.PpcGuest([b.Run(10 * US), b.Run(30 * US)], {b.BOOK3S_INTERRUPT_EXTERNAL: lambda vc: dev.service_one()})
    env.schedule(5 * US, lambda _a: dev.raise_event(3))
    env.process(b.run_vcpu(v, guest), "ppc-vcpu0")
    env.run()
    return {
        "delivered three times while the line stayed up": (len(guest.log) == 3, f"{guest.log}"),
        "every event serviced, none spurious": (dev.serviced == 3 and dev.spurious == 0,
                                                f"serviced={dev.serviced} spurious={dev.spurious}"),
        "after UNSET nothing is pending": (v.arch.pending_exceptions == 0 and v.arch.int_pending == 0,
                                           f"pending={v.arch.pending_exceptions:#x}"),
        QUIESCENT: quiescent(v),
    }


def edge_only_loses_and_invents(level_support: bool) -> dict[str, Any]:
    """The same device under edge-only delivery (before the commit) and with level + unset.

    Spurious: the line rises while the guest runs with MSR_EE off and polls
    the device empty; the edge is still delivered when EE comes back.
    Lost: two events behind one rising edge -- the second is never delivered.
    """
    env, v = _machine(level_support)
    dev = b.LevelDevice(v)
    guest = b.PpcGuest([b.Run(20 * US), b.SetEE(False), b.Run(20 * US), b.SetEE(True), b.Run(20 * US),
                        b.Run(40 * US)], {b.BOOK3S_INTERRUPT_EXTERNAL: lambda vc: dev.service_one()})
    env.schedule(5 * US, lambda _a: dev.raise_event(1))            # an ordinary interrupt
    env.schedule(25 * US, lambda _a: dev.raise_event(1))           # while EE is off ...
    env.schedule(30 * US, lambda _a: dev.service_one())            # ... the guest polls it empty
    env.schedule(65 * US, lambda _a: dev.raise_event(2))           # two events, one rising edge
    env.process(b.run_vcpu(v, guest), "ppc-vcpu0")
    env.run()
    return {"delivered": len(guest.log), "serviced": dev.serviced, "left_in_device": dev.events,
            "spurious": dev.spurious, "quiescent": quiescent(v)[0]}


def decrementer_wakes() -> dict[str, tuple[bool, str]]:
    """mtdec(100 us), then wait: the DEC expiry queues DEC and wakes the vcpu; DEC stays pending until mtdec."""
    env, v = _machine()
    rearm = []

    def dec_handler(vc: Any) -> None:
        rearm.append(env.now)
        b.kvmppc_emulate_dec(vc, 10_000 * US)  # the guest's handler re-arms: this lowers the DEC line

    guest = b.PpcGuest([b.Mtdec(100 * US), b.Wait(), b.Run(10 * US)], {b.BOOK3S_INTERRUPT_DECREMENTER: dec_handler})
    env.process(b.run_vcpu(v, guest), "ppc-vcpu0")
    env.run(500 * US)
    return {
        "the decrementer woke the waiting vcpu at 100 us": (rearm[:1] == [100 * US], f"{rearm}"),
        "one DEC delivered (the handler's mtdec lowered it)": (v.stat["delivered_0x900"] == 1, f"{dict(v.stat)}"),
        QUIESCENT: quiescent(v),
    }
