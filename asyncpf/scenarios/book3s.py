"""The PPC Book3S scenarios (asyncpf.host.ppc.scenarios) as named scenarios: what wakes a vcpu, edge vs level.

They run a Book3S vcpu on the generic ``kvm_vcpu_block``/``kvm_vcpu_kick``
without an x86 Machine, so they have checks and counts but no ftrace text;
each ends with its quiescence check (the guest script ran out, nothing pending).
"""

from __future__ import annotations

from ..host.ppc import scenarios as ppc
from .stage import Stage, scenario

ARCH = "ppc-book3s"


def _checks(s: Stage, checks: dict[str, tuple[bool, str]]) -> None:
    for name, (passed, detail) in checks.items():
        s.check(name, passed, detail)


@scenario("ppc_woken_by_level_interrupt",
          "PPC Book3S (v2.6.38): a vcpu waits (MSR_POW, nothing pending: kvm_vcpu_block); a device raises its "
          "line (KVM_INTERRUPT_SET_LEVEL) 50 us later: kvm_arch_vcpu_runnable sees pending_exceptions, the vcpu "
          "wakes, takes the interrupt once; the handler empties the device and the VMM unsets the line",
          arch=ARCH)
def _woken(s: Stage) -> None:
    _checks(s, ppc.woken_by_level_interrupt())


@scenario("ppc_level_redelivered_until_unset",
          "PPC Book3S (v2.6.38): three events behind one level line; the guest's handler services one per "
          "interrupt and the level stays pending (clear_irqprio keeps EXTERNAL_LEVEL), so it is delivered three "
          "times, until the VMM's KVM_INTERRUPT_UNSET",
          arch=ARCH)
def _redelivered(s: Stage) -> None:
    _checks(s, ppc.level_redelivered_until_unset())


@scenario("ppc_edge_only_lost_and_spurious",
          "PPC Book3S: a level-triggered device driven by edges only (before 'KVM: PPC: Implement Level "
          "interrupts on Book3S', 2010) loses an interrupt (two events, one rising edge) and delivers a spurious "
          "one (a line polled empty with MSR_EE off); the same device with SET_LEVEL/UNSET loses and invents none",
          arch=ARCH)
def _edge_only(s: Stage) -> None:
    edge = ppc.edge_only_loses_and_invents(level_support=False)
    level = ppc.edge_only_loses_and_invents(level_support=True)
    for kind, run in (("edge", edge), ("level", level)):
        s.counts.update({f"{kind}_{k}": v for k, v in run.items() if k != "quiescent"})
    s.check("edge only: one event lost (still in the device, never delivered again)", edge["left_in_device"] == 1,
            f"{edge}")
    s.check("edge only: one spurious interrupt (the line had fallen before the guest took it)",
            edge["spurious"] == 1, f"{edge}")
    s.check("level + unset: nothing lost, nothing spurious", level["left_in_device"] == 0 and level["spurious"] == 0,
            f"{level}")
    s.check(ppc.QUIESCENT, edge["quiescent"] and level["quiescent"],
            f"edge {edge['quiescent']}, level {level['quiescent']}")


@scenario("ppc_decrementer_wakes",
          "PPC Book3S (v2.6.38): the guest arms the decrementer (mtdec 100 us) and waits; the DEC hrtimer's "
          "kvmppc_decrementer_func queues DECREMENTER and wakes the vcpu through the generic kick; DEC stays "
          "pending until the handler's mtdec lowers it, so it is delivered once",
          arch=ARCH)
def _decrementer(s: Stage) -> None:
    _checks(s, ppc.decrementer_wakes())
