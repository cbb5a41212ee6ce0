"""PPC Book3S (KVM "PR", v2.6.38): external interrupts edge or level, the decrementer, and waking a waiting vcpu.

The point of this module is the generic layer's contract, seen from a second
arch.  A Book3S vcpu here is an ordinary :class:`~asyncpf.host.vcpu.KvmVcpu`
whose ``arch`` is :class:`Book3sArch` and whose VM's ``kvm_arch_vcpu_runnable``
is this arch's; waiting is the generic ``kvm_vcpu_block`` and waking the
generic ``kvm_vcpu_kick``/``wake_up`` -- the same code the x86 vcpu and async
PF's page-ready use.  What differs is the arch's answer to "is there
anything to do?": x86 asks its LAPIC and mp_state, Book3S asks
``!(msr & MSR_WE) || pending_exceptions``.

Interrupts from the VMM arrive through ``KVM_INTERRUPT``
(:func:`kvm_vcpu_ioctl_interrupt`):

* ``KVM_INTERRUPT_SET`` -- an **edge**: priority EXTERNAL is set in
  ``pending_exceptions`` and cleared when delivered, once;
* ``KVM_INTERRUPT_SET_LEVEL`` -- a **level**: priority EXTERNAL_LEVEL is set
  and *not* cleared by delivery (``clear_irqprio``); the guest takes it again
  every time it re-enables MSR_EE while the line is still up;
* ``KVM_INTERRUPT_UNSET`` -- the line went down: both priorities cleared.

Level delivery came with "KVM: PPC: Implement Level interrupts on Book3S"
(Alexander Graf, 2010, commit 17bd158006a3); the unset and its
``KVM_CAP_PPC_UNSET_IRQ`` were already there (commit 18978768).  The
commit's message names the defect: KVM treated an interrupt as acknowledged
once delivered, where real hardware keeps the line pulled until the
controller is told it was received, and guests stalled at random; the fix
adds pulling the line (SET_LEVEL) to letting it go (UNSET).  Before it a
VMM could only inject edges, which for a level-triggered device
loses an interrupt (a line still up after the guest's handler is not
delivered again) or makes a spurious one (a line that went down before the
guest took it is delivered anyway); :class:`LevelDevice` and the scenarios
in :mod:`asyncpf.host.ppc.scenarios` show both, and ``level_support=False``
gives the pre-commit behaviour.

The decrementer (DEC) is an hrtimer armed by the guest's ``mtdec``; on expiry
the tasklet ``kvmppc_decrementer_func`` queues priority DECREMENTER and wakes
the vcpu; like a level line it stays pending until the next ``mtdec``.

Simplification: one vcpu per VM object; no MMU, no magic page, no
"critical section" test in delivery; the guest is a script of operations
(:class:`PpcGuest`) and its handlers are Python callbacks; MSR_POW and
MSR_WE are the same bit (18) on 64-bit Book3S, so the guest's wait is "set
MSR_POW" and ``kvm_arch_vcpu_runnable`` reads it as MSR_WE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Generator

from ...mirrors import mirrors
from ...sim import Environment
from .. import vcpu as generic
from ..vcpu import KvmVcpu

MSR_WE = MSR_POW = 1 << 18
MSR_EE = 1 << 15
MSR_PR = 1 << 14

KVM_INTERRUPT_SET = 0xFFFFFFFF        # -1U
KVM_INTERRUPT_UNSET = 0xFFFFFFFE      # -2U
KVM_INTERRUPT_SET_LEVEL = 0xFFFFFFFD  # -3U

BOOK3S_INTERRUPT_EXTERNAL = 0x500
BOOK3S_INTERRUPT_EXTERNAL_LEVEL = 0x501
BOOK3S_INTERRUPT_DECREMENTER = 0x900

BOOK3S_IRQPRIO_EXTERNAL = 13
BOOK3S_IRQPRIO_DECREMENTER = 14
BOOK3S_IRQPRIO_EXTERNAL_LEVEL = 16
BOOK3S_IRQPRIO_MAX = 17
VEC2PRIO = {BOOK3S_INTERRUPT_EXTERNAL: BOOK3S_IRQPRIO_EXTERNAL,
            BOOK3S_INTERRUPT_EXTERNAL_LEVEL: BOOK3S_IRQPRIO_EXTERNAL_LEVEL,
            BOOK3S_INTERRUPT_DECREMENTER: BOOK3S_IRQPRIO_DECREMENTER}


@dataclass
class Book3sArch:
    """``struct kvm_vcpu_arch`` of Book3S, reduced: the shared page's MSR and int_pending, the pending bitmap, DEC."""

    msr: int = MSR_EE
    pending_exceptions: int = 0
    int_pending: int = 0
    dec_deadline: int | None = None
    dec_seq: int = 0
    # the generic kvm_vcpu_block reads arch.apf.halted to name its time account; Book3S has no async PF
    apf: Any = field(default_factory=lambda: SimpleNamespace(halted=False))
    mp_state: int = 0


def new_vcpu(env: Environment, *, level_support: bool = True, vcpu_id: int = 0) -> KvmVcpu:
    """A Book3S vcpu on the generic KvmVcpu, in a VM whose arch hooks are this module's."""
    twins = SimpleNamespace(name="book3s", kvm_arch_vcpu_runnable=kvm_arch_vcpu_runnable)
    kvm = SimpleNamespace(env=env, twins=twins, hostsched=None, level_support=level_support)
    vcpu = KvmVcpu(kvm, vcpu_id, guest=None, workqueue=None, arch=Book3sArch())  # type: ignore[arg-type]
    return vcpu


@mirrors("arch/powerpc/kvm/powerpc.c", "kvm_arch_vcpu_runnable", generations="legacy")
def kvm_arch_vcpu_runnable(vcpu: KvmVcpu) -> bool:
    """Runnable unless the guest waits (MSR_WE) with nothing pending.

    Mirrors arch/powerpc/kvm/powerpc.c:kvm_arch_vcpu_runnable (v2.6.38):
    !(shared->msr & MSR_WE) || pending_exceptions.
    Simplification: the shared (magic) page is the arch object itself.
    """
    return not (vcpu.arch.msr & MSR_WE) or bool(vcpu.arch.pending_exceptions)


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_book3s_queue_irqprio", generations="legacy")
def kvmppc_book3s_queue_irqprio(vcpu: KvmVcpu, vec: int) -> None:
    """Set the priority bit of ``vec`` in pending_exceptions.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_book3s_queue_irqprio (v2.6.38): stat queue_intr++, set_bit.
    Simplification: only the three vectors of this model have a priority.
    """
    vcpu.stat["queue_intr"] += 1
    vcpu.arch.pending_exceptions |= 1 << VEC2PRIO[vec]


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_book3s_dequeue_irqprio", generations="legacy")
def kvmppc_book3s_dequeue_irqprio(vcpu: KvmVcpu, vec: int) -> None:
    """Clear the priority bit of ``vec``; with nothing left, tell the guest nothing is pending.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_book3s_dequeue_irqprio (v2.6.38).
    Simplification: only the three vectors of this model have a priority.
    """
    vcpu.arch.pending_exceptions &= ~(1 << VEC2PRIO[vec])
    if not vcpu.arch.pending_exceptions:
        vcpu.arch.int_pending = 0


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_core_queue_external", generations="legacy")
def kvmppc_core_queue_external(vcpu: KvmVcpu, irq: int) -> None:
    """KVM_INTERRUPT_SET_LEVEL queues the level vector, anything else the edge vector.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_core_queue_external (v2.6.38).
    Simplification: ``level_support=False`` on the VM is the Book3S before the
    level commit, where every KVM_INTERRUPT was an edge.
    """
    vec = BOOK3S_INTERRUPT_EXTERNAL
    if irq == KVM_INTERRUPT_SET_LEVEL and vcpu.kvm.level_support:
        vec = BOOK3S_INTERRUPT_EXTERNAL_LEVEL
    kvmppc_book3s_queue_irqprio(vcpu, vec)


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_core_dequeue_external", generations="legacy")
def kvmppc_core_dequeue_external(vcpu: KvmVcpu, irq: int) -> None:
    """The line is down: clear both the edge and the level vector.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_core_dequeue_external (v2.6.38).
    Simplification: the irq argument is not read (the kernel does not read it either); no stat.
    """
    kvmppc_book3s_dequeue_irqprio(vcpu, BOOK3S_INTERRUPT_EXTERNAL)
    kvmppc_book3s_dequeue_irqprio(vcpu, BOOK3S_INTERRUPT_EXTERNAL_LEVEL)


@mirrors("arch/powerpc/kvm/powerpc.c", "kvm_vcpu_ioctl_interrupt", generations="legacy")
def kvm_vcpu_ioctl_interrupt(vcpu: KvmVcpu, irq: int) -> int:
    """KVM_INTERRUPT: unset dequeues, anything else queues; then wake the vcpu if it waits.

    Mirrors arch/powerpc/kvm/powerpc.c:kvm_vcpu_ioctl_interrupt (v2.6.38):
    queue or dequeue, then if waitqueue_active wake_up_interruptible and
    halt_wakeup++.
    Simplification: without level support (before the commit) UNSET is
    refused with -EINVAL, as an unknown irq number would have been.
    """
    if irq == KVM_INTERRUPT_UNSET:
        if not vcpu.kvm.level_support:
            return -22
        kvmppc_core_dequeue_external(vcpu, irq)
    else:
        kvmppc_core_queue_external(vcpu, irq)
    if vcpu.mode == "blocked":
        vcpu.stat["halt_wakeup"] += 1
        generic.kvm_vcpu_kick(vcpu)
    return 0


def clear_irqprio(priority: int) -> bool:
    """book3s.c clear_irqprio: a delivered DEC (cleared by mtdec) and a delivered level line stay pending."""
    return priority not in (BOOK3S_IRQPRIO_DECREMENTER, BOOK3S_IRQPRIO_EXTERNAL_LEVEL)


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_core_deliver_interrupts", generations="legacy")
def kvmppc_core_deliver_interrupts(vcpu: KvmVcpu, deliver: Callable[[int], None]) -> int | None:
    """Deliver the highest-priority pending interrupt the guest accepts; clear it unless it is DEC or a level.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_core_deliver_interrupts and
    kvmppc_book3s_irqprio_deliver (v2.6.38): scan from the lowest priority
    number; external and DEC need MSR_EE; delivery clears MSR_EE (the
    hardware does, on any interrupt); int_pending tells the guest whether
    anything is left.
    Simplification: no critical-section test; ``deliver(vec)`` is the guest's handler.
    """
    arch = vcpu.arch
    old = arch.pending_exceptions
    taken = None
    for prio in range(BOOK3S_IRQPRIO_MAX):
        if not arch.pending_exceptions & (1 << prio):
            continue
        if prio in (BOOK3S_IRQPRIO_EXTERNAL, BOOK3S_IRQPRIO_EXTERNAL_LEVEL, BOOK3S_IRQPRIO_DECREMENTER) \
                and not arch.msr & MSR_EE:
            continue
        vec = BOOK3S_INTERRUPT_DECREMENTER if prio == BOOK3S_IRQPRIO_DECREMENTER else BOOK3S_INTERRUPT_EXTERNAL
        if clear_irqprio(prio):
            arch.pending_exceptions &= ~(1 << prio)
        taken = vec
        vcpu.stat[f"delivered_{vec:#x}"] += 1
        arch.msr &= ~MSR_EE
        deliver(vec)
        break
    if arch.pending_exceptions:
        arch.int_pending = 1
    elif old:
        arch.int_pending = 0
    return taken


@mirrors("arch/powerpc/kvm/emulate.c", "kvmppc_emulate_dec", generations="legacy")
def kvmppc_emulate_dec(vcpu: KvmVcpu, dec_ns: int) -> None:
    """The guest's mtdec: lower the DEC line, then fire at once (negative DEC) or arm the hrtimer.

    Mirrors arch/powerpc/kvm/emulate.c:kvmppc_emulate_dec (v2.6.38, Book3S):
    dequeue DEC; a DEC with the top bit set queues DEC at once; otherwise
    (re)start the hrtimer for dec ticks converted to ns.
    Simplification: the DEC value is given in ns (tb_ticks_per_usec folded in); a value <= 0 is "negative".
    """
    kvmppc_book3s_dequeue_irqprio(vcpu, BOOK3S_INTERRUPT_DECREMENTER)
    arch = vcpu.arch
    arch.dec_seq += 1
    if dec_ns <= 0:
        arch.dec_deadline = None
        kvmppc_book3s_queue_irqprio(vcpu, BOOK3S_INTERRUPT_DECREMENTER)
        return
    seq = arch.dec_seq
    env = vcpu.kvm.env
    arch.dec_deadline = env.now + dec_ns

    def expire(_arg: Any) -> None:
        if arch.dec_seq == seq:  # hrtimer_try_to_cancel: a re-armed timer's old expiry is gone
            kvmppc_decrementer_func(vcpu)

    env.schedule(dec_ns, expire)


@mirrors("arch/powerpc/kvm/powerpc.c", "kvmppc_decrementer_func", generations="legacy")
def kvmppc_decrementer_func(vcpu: KvmVcpu) -> None:
    """The DEC expired (tasklet after the hrtimer): queue DEC, wake the vcpu if it waits.

    Mirrors arch/powerpc/kvm/powerpc.c:kvmppc_decrementer_func (v2.6.38).
    Simplification: the hrtimer -> tasklet hop takes no time.
    """
    vcpu.arch.dec_deadline = None
    kvmppc_book3s_queue_irqprio(vcpu, BOOK3S_INTERRUPT_DECREMENTER)
    if vcpu.mode == "blocked":
        vcpu.stat["halt_wakeup"] += 1
        generic.kvm_vcpu_kick(vcpu)


@mirrors("arch/powerpc/kvm/book3s.c", "kvmppc_set_msr", generations="legacy")
def kvmppc_set_msr(vcpu: KvmVcpu, msr: int) -> Generator[Any, Any, None]:
    """The guest writes its MSR; MSR_POW with nothing pending waits in the generic kvm_vcpu_block.

    Mirrors arch/powerpc/kvm/book3s.c:kvmppc_set_msr (v2.6.38): store the
    MSR; if MSR_POW is set and nothing is pending, kvm_vcpu_block, then
    halt_wakeup++ and clear MSR_POW.
    Simplification: no msr_mask, shadow MSR or segment flush.
    """
    vcpu.arch.msr = msr
    if msr & MSR_POW and not vcpu.arch.pending_exceptions:
        yield from generic.kvm_vcpu_block(vcpu)
        vcpu.requests = 0  # the UNHALT request generic kvm_vcpu_block made has no Book3S reader
        vcpu.stat["halt_wakeup"] += 1
    vcpu.arch.msr &= ~MSR_POW


# --- a guest and a device, to drive the arch -------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    ns: int          # guest code with whatever MSR it has


@dataclass(frozen=True)
class Wait:
    """Enable interrupts and wait (MSR_EE | MSR_POW): the Book3S idle loop."""


@dataclass(frozen=True)
class Mtdec:
    ns: int


@dataclass(frozen=True)
class SetEE:
    on: bool


@dataclass
class PpcGuest:
    """A script of operations and a handler per vector; the handler returns with rfi (MSR_EE back on)."""

    script: list
    handlers: dict[int, Callable[[KvmVcpu], None]] = field(default_factory=dict)
    log: list = field(default_factory=list)


def run_vcpu(vcpu: KvmVcpu, guest: PpcGuest, *, step_ns: int = 10_000) -> Generator[Any, Any, None]:
    """The vcpu thread: deliver what is pending before each piece of guest code, as kvmppc's entry path does.

    Simulation glue: each ``Run`` is cut into ``step_ns`` pieces so a pending
    interrupt is taken at the next entry (an exit happens on every host interrupt).
    """
    env = vcpu.kvm.env
    vcpu.mode = "outside"

    def deliver(vec: int) -> None:
        guest.log.append((env.now, vec))
        handler = guest.handlers.get(vec)
        if handler is not None:
            handler(vcpu)
        vcpu.arch.msr |= MSR_EE  # rfi

    for op in guest.script:
        kvmppc_core_deliver_interrupts(vcpu, deliver)
        if isinstance(op, Run):
            left = op.ns
            while left > 0:
                chunk = min(step_ns, left)
                vcpu.mode = "guest"
                yield chunk
                vcpu.mode = "outside"
                left -= chunk
                kvmppc_core_deliver_interrupts(vcpu, deliver)
        elif isinstance(op, Wait):
            yield from kvmppc_set_msr(vcpu, vcpu.arch.msr | MSR_EE | MSR_POW)
            kvmppc_core_deliver_interrupts(vcpu, deliver)
        elif isinstance(op, Mtdec):
            kvmppc_emulate_dec(vcpu, op.ns)
        elif isinstance(op, SetEE):
            vcpu.arch.msr = vcpu.arch.msr | MSR_EE if op.on else vcpu.arch.msr & ~MSR_EE
            kvmppc_core_deliver_interrupts(vcpu, deliver)
    vcpu.mode = "exited"


class LevelDevice:
    """A level-triggered device: its line is up while it has events; the VMM mirrors the line into KVM_INTERRUPT.

    With level support the VMM sends SET_LEVEL on the rising edge and UNSET
    on the falling edge; without (before the commit) it can only send SET
    on each rising edge and nothing when the line falls.
    """

    def __init__(self, vcpu: KvmVcpu):
        self.vcpu = vcpu
        self.events = 0
        self.serviced = 0
        self.spurious = 0

    @property
    def line(self) -> bool:
        return self.events > 0

    def raise_event(self, n: int = 1) -> None:
        was = self.line
        self.events += n
        if not was:
            level = self.vcpu.kvm.level_support
            kvm_vcpu_ioctl_interrupt(self.vcpu, KVM_INTERRUPT_SET_LEVEL if level else KVM_INTERRUPT_SET)

    def service_one(self) -> bool:
        """The guest's handler (or a poll with interrupts off): take one event; the line falls at zero."""
        if not self.events:
            self.spurious += 1
            return False
        self.events -= 1
        self.serviced += 1
        if not self.line and self.vcpu.kvm.level_support:
            kvm_vcpu_ioctl_interrupt(self.vcpu, KVM_INTERRUPT_UNSET)
        return True
