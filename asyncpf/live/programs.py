"""The live programs: each one guest program, the VM it runs in, and the model generation it is held against.

A touching program is ``guest.S`` with :class:`~asyncpf.live.layout.GuestParams`
in a VM of :class:`~asyncpf.live.realrun.VmConfig`; the MSR table is a list of
VMM-side MSR writes (:mod:`asyncpf.live.msrtable`).  The halt-path programs
are held against the interrupt generation once the model has it, and against
``legacy`` until then (the halt path's causal chain -- try, not present,
completed, ready, no guest-visible event -- is the same in 2.6.38 and 6.18);
the PV programs need the interrupt generation and are *pending* until it is
modelled (:func:`model_generation`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import abi
from .layout import AREA, PF_DISABLE, PF_RETRY, PF_WAIT, GuestParams
from .realrun import VmConfig

PAGE_READY_VECTOR = 0xF3   # what Linux uses (HYPERVISOR_CALLBACK_VECTOR), and the reference runs
PV_ENABLE = AREA | abi.KVM_ASYNC_PF_ENABLED | abi.KVM_ASYNC_PF_DELIVERY_AS_INT   # as a 5.9+ Linux guest writes it
HALT_PAGES = 8
PV_PAGES = 8


@dataclass(frozen=True)
class Program:
    name: str
    summary: str
    params: GuestParams | None      # None: the MSR table
    vm: VmConfig = VmConfig()
    needs: str = "interrupt"        # the generation whose behaviour the program shows ("halt": any with the halt path)


PROGRAMS: dict[str, Program] = {p.name: p for p in (
    Program("halt-path", f"the guest never enables async PF and touches {HALT_PAGES} evicted pages: each becomes "
            "not-present -> APF halt -> completed -> ready, nothing guest-visible",
            GuestParams(count=HALT_PAGES), needs="halt"),
    Program("halt-path-vcpu3", "the halt path on vcpu id 3: tokens (id << 12) | 3",
            GuestParams(count=HALT_PAGES), VmConfig(vcpu_id=3), needs="halt"),
    Program("pv-wakeall", "the guest writes MSR_KVM_ASYNC_PF_INT = 0xf3, then enables async PF with "
            "DELIVERY_AS_INT: the enable queues a wake-all, delivered as interrupt 0xf3 with token ~0, and ACKed",
            GuestParams(count=0, int_val=PAGE_READY_VECTOR, en_val=PV_ENABLE)),
    Program("pv-pages", f"PV enabled; {PV_PAGES} evicted pages, each #PF (CR2 = token, flags = 1), the handler "
            "waits (STI; HLT) for that token's page-ready interrupt, clears the token, EOIs and ACKs",
            GuestParams(count=PV_PAGES, int_val=PAGE_READY_VECTOR, en_val=PV_ENABLE, pf_mode=PF_WAIT)),
    Program("pv-pages-xapic", "pv-pages with the LAPIC in xAPIC mode: the handler EOIs by a write to the "
            "memory-mapped EOI register (0xfee000b0) instead of x2APIC MSR 0x80b",
            GuestParams(count=4, int_val=PAGE_READY_VECTOR, en_val=PV_ENABLE, pf_mode=PF_WAIT, x2apic=False)),
    Program("pv-retry", "PV enabled; the #PF handler returns at once and the touch is retried while the page is "
            "in flight: a repeated fault, the vcpu halts until page-ready",
            GuestParams(count=8, int_val=PAGE_READY_VECTOR, en_val=PV_ENABLE, pf_mode=PF_RETRY)),
    Program("pv-disable", "PV enabled; the #PF handler disables async PF (EN = 0) with the fault outstanding: "
            "the queue is cleared without a page-ready, later faults take the halt path",
            GuestParams(count=2, int_val=PAGE_READY_VECTOR, en_val=PV_ENABLE, pf_mode=PF_DISABLE)),
    Program("msr-table", "every class of MSR_KVM_ASYNC_PF_EN/_INT/_ACK write by the guest (WRMSR; #GP = refused), "
            "with and without an in-kernel irqchip, with PV-CPUID enforcement on and off and the CPUID bits "
            "offered or not: accepted/refused and read back; and the same writes by the VMM (KVM_SET_MSRS)",
            None),
)}


def get(name: str) -> Program:
    try:
        return PROGRAMS[name]
    except KeyError:
        raise KeyError(f"{name!r}: expected a live program: {', '.join(PROGRAMS)}") from None


def interrupt_modelled() -> bool:
    """Whether the model has host twins for the interrupt generation."""
    from ..host import twins
    return abi.INTERRUPT.modelled and "interrupt" in twins.SOURCES


def model_generation(program: Program) -> tuple[str | None, str]:
    """(generation to run the model with, or None when pending; why)."""
    if interrupt_modelled():
        return "interrupt", "the interrupt generation (5.8+), as the running 6.18 kernel"
    if program.needs == "halt":
        return "legacy", ("legacy (2.6.38): the interrupt generation is not modelled yet, and the halt path's causal "
                          "chain is the same in 2.6.38 and 6.18")
    return None, ("pending: needs the interrupt generation (page-ready as an interrupt, ACK MSR), which this "
                  "model does not have (no asyncpf.host.interrupt twins)")
