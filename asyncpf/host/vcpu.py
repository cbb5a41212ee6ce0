"""The vcpu thread: enter the guest, take exits, inject events, block and wake.

The parts of the vcpu thread every generation shares: entering guest mode,
``inject_pending_event``, the EPT violation exit, ``kvm_vcpu_block`` and
``kvm_vcpu_kick`` (``arch/x86/kvm/x86.c``, ``virt/kvm/kvm_main.c``).  Each
generation's ``__vcpu_run`` and ``vcpu_enter_guest`` (``kvm.twins``) decide
when async PF completions are looked at and what halts the vcpu.

The guest is anything that implements :class:`GuestCpu`: it is asked for its
next operation (a memory access, some computation, HLT, WRMSR) and is handed
the events KVM delivers.  Time is charged per vcpu to one of ``guest``
(running guest code), ``host`` (exit handling), ``stalled`` (the vcpu thread
sleeping inside a host fault), ``halted`` (the async-PF halt) and ``idle``
(the guest executed HLT).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generator, Protocol

from .. import abi
from ..abi import PAGE_SHIFT
from ..hotpath import fast_frozen_init
from ..mirrors import mirrors
from ..sim import Event, Interrupt, Process
from . import mmu, x86
from .async_pf import KvmVcpuAsyncPf, Workqueue
from .x86 import KvmVcpuArch

if TYPE_CHECKING:
    from .kvm_main import Kvm

LOCAL_TIMER_VECTOR = 0xEF
RESCHEDULE_VECTOR = 0xFD
VCPU_PID_BASE = 1000
ACCOUNT_STATES = ("guest", "host", "stalled", "halted", "idle")


# --- what a guest does -----------------------------------------------------------------

@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Access:
    """One load/store at guest-physical ``gpa`` (the guest resolved its own page tables)."""

    gpa: int
    write: bool = True
    gva: int = 0
    cost_ns: int = 0


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Compute:
    """``ns`` of CPU work; an interrupt may cut it short."""

    ns: int


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Halt:
    """The HLT instruction (the guest has nothing to run)."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class WrMsr:
    msr: int
    data: int
    safe: bool = False   # the guest's wrmsr_safe (an exception-table fixup): its #GP is absorbed in every generation


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Stop:
    """The guest is finished: the vcpu thread leaves its run loop."""


Op = Access | Compute | Halt | WrMsr | Stop


class GuestCpu(Protocol):
    """What the host needs from a guest model on one vcpu.

    ``next_op`` may return None for a step with no effect on KVM (the host
    then checks for events to inject -- an instruction boundary -- and asks
    again).  An op that exits without ``op_done`` (an EPT violation) is
    retried: the guest returns it again after the exit is handled.
    """

    def next_op(self, vcpu: "KvmVcpu") -> Op | None: ...
    def op_done(self, vcpu: "KvmVcpu", op: Op, result: Any) -> None: ...
    def op_progress(self, vcpu: "KvmVcpu", op: Compute, ran_ns: int) -> None: ...
    def deliver_exception(self, vcpu: "KvmVcpu", nr: int, error_code: int) -> None: ...
    def deliver_interrupt(self, vcpu: "KvmVcpu", vector: int) -> None: ...
    def delivery_gfn(self, vcpu: "KvmVcpu") -> int | None: ...


# --- the vcpu ---------------------------------------------------------------------------

@dataclass(eq=False)
class KvmVcpu:
    """``struct kvm_vcpu`` with its thread, its LAPIC's pending vectors and its accounts."""

    kvm: "Kvm"
    vcpu_id: int
    guest: GuestCpu
    workqueue: Workqueue
    arch: KvmVcpuArch = field(default_factory=KvmVcpuArch)
    async_pf: KvmVcpuAsyncPf = field(default_factory=KvmVcpuAsyncPf)
    requests: int = 0
    comm: str = "qemu-kvm"
    irr: set[int] = field(default_factory=set)        # LAPIC requested vectors (IRR)
    isr: set[int] = field(default_factory=set)        # LAPIC vectors in service (ISR), until the guest's EOI
    apic_sw_enabled: bool = True                       # SPIV bit 8: a software-disabled LAPIC drops fixed IRQs
    stat: Counter = field(default_factory=Counter)
    acct: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACCOUNT_STATES, 0))
    mode: str = "outside"                              # outside | guest | compute | blocked | exited
    stopped: bool = False
    kicked: bool = False                               # a kick IPI reached the vcpu in guest mode: exit at once
    reset_pending: bool = False
    proc: Process | None = None
    wq: Event | None = None
    _acct_state: str = "host"
    _acct_since: int = 0

    @property
    def pid(self) -> int:
        return VCPU_PID_BASE + self.vcpu_id

    def account(self, state: str) -> None:
        """From now on, charge this vcpu's time to ``state`` (one of ACCOUNT_STATES)."""
        now = self.kvm.env.now
        self.acct[self._acct_state] += now - self._acct_since
        self._acct_state, self._acct_since = state, now

    def flush_account(self) -> None:
        """Bring ``acct`` up to the present without changing the state being charged."""
        self.account(self._acct_state)

    def restart_account(self) -> None:
        """Forget the time so far: accounting starts at the present instant."""
        self._acct_since = self.kvm.env.now
        self.acct = dict.fromkeys(self.acct, 0)  # hostsched: the states plus "runq" when host CPUs are modelled

    def wake_up(self) -> None:
        """``wake_up_interruptible(&vcpu->wq)`` if the vcpu thread sleeps there (2.6.38)."""
        if self.mode == "blocked" and self.wq is not None and not self.wq.triggered:
            self.wq.succeed()

    def kick(self) -> None:
        kvm_vcpu_kick(self)

    def start(self) -> Process:
        # getattr: written in this class body, .__vcpu_run would be name-mangled
        run = getattr(self.kvm.twins, "__vcpu_run")
        hostsched = getattr(self.kvm, "hostsched", None)  # hostsched: the thread competes for a host CPU
        if hostsched is not None:
            self.proc = hostsched.spawn(run(self), f"vcpu{self.vcpu_id}", pid=self.pid, vcpu=self)
            return self.proc
        self.proc = self.kvm.env.process(run(self), f"vcpu{self.vcpu_id}")
        return self.proc

    def __repr__(self) -> str:
        return f"<KvmVcpu {self.vcpu_id} {self.mode}>"


@mirrors("arch/x86/kvm/x86.c", "kvm_vcpu_kick")
def kvm_vcpu_kick(vcpu: KvmVcpu) -> None:
    """Make the vcpu look at new work: wake it if blocked, force an exit if in the guest.

    A vcpu in guest mode (or entering it) exits at its next instruction boundary.
    Simplification: a vcpu busy in the host is not disturbed; it sees the
    pending event at its next entry.
    """
    if vcpu.mode == "blocked":
        vcpu.wake_up()
    elif vcpu.mode == "compute" and vcpu.proc is not None:
        vcpu.mode = "guest"
        vcpu.proc.interrupt("kick")
    elif vcpu.mode in ("guest", "entering"):
        vcpu.kicked = True


@mirrors("arch/x86/kvm/lapic.c", "kvm_apic_set_irq")
def kvm_apic_set_irq(vcpu: KvmVcpu, vector: int) -> bool:
    """Make ``vector`` pending in the LAPIC and kick the vcpu (a pending vector coalesces); False if dropped.

    A fixed interrupt to a software-disabled LAPIC is dropped (__apic_accept_irq).
    Simplification: fixed delivery mode only; priority is the vector's class (no TPR).
    """
    if not vcpu.apic_sw_enabled:
        vcpu.stat["irq_dropped_apic_disabled"] += 1
        return False
    if vector in vcpu.irr:
        vcpu.stat["irq_coalesced"] += 1
    vcpu.irr.add(vector)
    kvm_vcpu_kick(vcpu)
    return True


def kvm_apic_has_interrupt(vcpu: KvmVcpu) -> int | None:
    """The highest requested vector whose priority class is above the highest in service (PPR), or None.

    arch/x86/kvm/lapic.c:kvm_apic_has_interrupt / apic_update_ppr, without TPR.
    """
    if not vcpu.irr:
        return None
    vector = max(vcpu.irr)
    if vcpu.isr and vector >> 4 <= max(vcpu.isr) >> 4:
        return None
    return vector


def apic_eoi(vcpu: KvmVcpu) -> None:
    """The guest's EOI: the highest vector in service is done (lapic.c apic_set_eoi).

    Simplification: no exit (APICv / PV EOI), nothing traced.
    """
    if vcpu.isr:
        vcpu.isr.discard(max(vcpu.isr))


def lapic_timer_start(vcpu: KvmVcpu, period_ns: int) -> None:
    """A periodic LAPIC timer (the guest tick): an hrtimer on the host that raises the timer vector.

    Mirrors arch/x86/kvm/lapic.c:apic_timer_fn in periodic mode.  The timer
    keeps firing while the vcpu thread is stuck in the host; the vector then
    stays pending (coalesced) until the next entry.
    """
    if period_ns <= 0:
        raise ValueError(f"timer period {period_ns} ns must be positive")
    env = vcpu.kvm.env

    def fire(_arg: Any) -> None:
        if vcpu.stopped:
            return
        vcpu.kvm.twins.kvm_apic_set_irq(vcpu, LOCAL_TIMER_VECTOR)
        env.schedule(period_ns, fire)

    env.schedule(period_ns, fire)


@mirrors("virt/kvm/kvm_main.c", "kvm_vcpu_block")
def kvm_vcpu_block(vcpu: KvmVcpu) -> Generator[Any, Any, None]:
    """Sleep on the vcpu's wait queue until it is runnable, then request UNHALT.

    Runnable is the generation's kvm_arch_vcpu_runnable.
    Simplification: no signals; the pending-timer check is the interrupt test
    of kvm_arch_vcpu_runnable.
    """
    env = vcpu.kvm.env
    runnable = vcpu.kvm.twins.kvm_arch_vcpu_runnable
    while not runnable(vcpu) and not vcpu.stopped and not vcpu.reset_pending:
        vcpu.wq = env.event(f"vcpu{vcpu.vcpu_id}.wq")
        vcpu.mode = "blocked"
        vcpu.account("halted" if vcpu.arch.apf.halted else "idle")
        yield vcpu.wq
        vcpu.mode = "outside"
        vcpu.account("host")
    if runnable(vcpu):
        x86.kvm_make_request(vcpu, x86.KVM_REQ_UNHALT)

def serve_reset(vcpu: KvmVcpu) -> Generator[Any, Any, None]:
    """Top of every generation's vcpu loop: a VMM INIT/RESET request runs kvm_arch_vcpu_reset first."""
    if vcpu.reset_pending:
        vcpu.reset_pending = False
        yield from vcpu.kvm.twins.kvm_arch_vcpu_reset(vcpu)


def block_until_unhalt(vcpu: KvmVcpu) -> Generator[Any, Any, bool]:
    """The blocked branch of every generation's vcpu loop: kvm_vcpu_block, then UNHALT makes a HALTED vcpu
    RUNNABLE; True when UNHALT was requested."""
    yield from kvm_vcpu_block(vcpu)
    if not x86.kvm_check_request(vcpu, x86.KVM_REQ_UNHALT):
        return False
    vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE
    return True


def triple_fault(vcpu: KvmVcpu) -> bool:
    """vcpu_enter_guest's KVM_REQ_TRIPLE_FAULT: the VM shuts down (the vcpu loop ends)."""
    if not vcpu.requests & x86.KVM_REQ_TRIPLE_FAULT:
        return False
    vcpu.stat["shutdown"] += 1
    vcpu.stopped = True
    return True


def kvm_run_failed(vcpu: KvmVcpu) -> None:
    """KVM_RUN returned -EFAULT (a fault the MMU neither maps nor emulates): the VMM stops running this vcpu.

    Simulation glue: QEMU reports "kvm run failed" and stops the VM; here the vcpu's loop ends (others run on).
    """
    vcpu.stat["kvm_run_efault"] += 1
    vcpu.stopped = True


def vcpu_exit_thread(vcpu: KvmVcpu) -> None:
    """The vcpu thread leaves KVM_RUN for good."""
    vcpu.mode = "exited"
    vcpu.account("host")


def enter_guest_mode(vcpu: KvmVcpu) -> Generator[Any, Any, None]:
    """The part of vcpu_enter_guest every generation shares: enter, run guest code until an exit, trace it.

    Entry and exit cost ``vmexit_entry_ns`` together.
    """
    kvm = vcpu.kvm
    env = kvm.env
    tracing = env.tracer is not None  # hot path (asyncpf/hotpath.py): no tracer, no trace fields built
    vcpu.mode, vcpu.kicked = "entering", False  # IN_GUEST_MODE before the entry: a kick from now on forces an exit
    if tracing:
        env.trace("kvm_entry", ctx=x86.trace_ctx(vcpu), vcpu_id=vcpu.vcpu_id)
    vcpu.stat["entries"] += 1
    yield kvm.cost("vmexit_entry_ns")
    vcpu.account("guest")
    exit_reason = yield from _run_guest(vcpu)
    vcpu.account("host")
    if tracing:
        env.trace("kvm_exit", ctx=x86.trace_ctx(vcpu), exit_reason=exit_reason, guest_rip=0, info1=0, info2=0)


@mirrors("arch/x86/kvm/x86.c", "inject_pending_event")
def inject_pending_event(vcpu: KvmVcpu) -> Generator[Any, Any, str | None]:
    """Deliver the queued exception, else the highest pending interrupt the guest allows.

    Simplification: the guest takes the event at once (its IDT entry runs);
    an EPT violation on the delivery path (the guest's stack) exits with the
    event marked for reinjection.  No NMI.
    """
    arch = vcpu.arch
    guest = vcpu.guest
    exc = arch.exception
    wants_irq = kvm_apic_has_interrupt(vcpu) is not None and x86.kvm_arch_interrupt_allowed(vcpu)
    if not exc.pending and not wants_irq:
        return None
    gfn = guest.delivery_gfn(vcpu)
    if gfn is not None and not mmu.guest_access(vcpu, gfn, True):
        if exc.pending:
            exc.reinject = True
        yield from handle_ept_violation(vcpu, gfn << PAGE_SHIFT, 0)
        return "EPT_VIOLATION"
    if exc.pending:
        exc.pending = False
        vcpu.kvm.env.trace("kvm_inj_exception", ctx=x86.trace_ctx(vcpu), exception=exc.nr, error_code=exc.error_code)
        guest.deliver_exception(vcpu, exc.nr, exc.error_code)
    else:
        vector = kvm_apic_has_interrupt(vcpu)
        vcpu.irr.discard(vector)
        vcpu.isr.add(vector)
        guest.deliver_interrupt(vcpu, vector)
    return None


@mirrors("arch/x86/kvm/vmx.c", "handle_ept_violation")
def handle_ept_violation(vcpu: KvmVcpu, gpa: int, error_code: int) -> Generator[Any, Any, str]:
    """An EPT violation exit: trace kvm_page_fault and call kvm_mmu_page_fault.

    Simplification: the exit qualification is reduced to the write bit of ``error_code``.
    """
    env = vcpu.kvm.env
    if env.tracer is not None:  # hot path (asyncpf/hotpath.py)
        env.trace("kvm_page_fault", ctx=x86.trace_ctx(vcpu), fault_address=gpa, error_code=error_code)
    vcpu.stat["ept_violations"] += 1
    yield vcpu.kvm.cost("ept_fault_ns")
    return (yield from mmu.kvm_mmu_page_fault(vcpu, gpa, error_code))


@mirrors("arch/x86/kvm/vmx.c", "handle_wrmsr")
def handle_wrmsr(vcpu: KvmVcpu, msr: int, data: int) -> Generator[Any, Any, int]:
    """A guest WRMSR exit: set the MSR; trace kvm_msr (" (#GP)" when refused) and queue #GP if refused."""
    r = yield from x86.kvm_set_msr_common(vcpu, msr, data)
    vcpu.kvm.env.trace("kvm_msr", ctx=x86.trace_ctx(vcpu), write=True, ecx=msr, data=data & abi.U64, exception=bool(r))
    if r:
        x86.kvm_queue_exception(vcpu, x86.GP_VECTOR)
    return r


def _run_guest(vcpu: KvmVcpu) -> Generator[Any, Any, str]:
    """Guest mode: deliver the injected event, then run guest operations until one exits."""
    kvm = vcpu.kvm
    guest = vcpu.guest
    vcpu.mode = "guest"
    try:
        reason = yield from inject_pending_event(vcpu)
        if reason is not None:
            return reason
        while True:
            # stopped: the VMM took the vcpu out of KVM_RUN; kicked: requests are looked at on entry only, so one
            # made in guest mode needs its kick
            if vcpu.stopped or vcpu.kicked:
                return "EXTERNAL_INTERRUPT"
            if vcpu.requests & x86.KVM_REQ_TRIPLE_FAULT or vcpu.arch.exception.pending or (
                    vcpu.irr and x86.kvm_arch_interrupt_allowed(vcpu) and kvm_apic_has_interrupt(vcpu) is not None):
                return "PENDING_INTERRUPT"
            op = guest.next_op(vcpu)
            if op is None:  # a guest-internal step (e.g. STI): an instruction boundary, nothing for KVM
                continue
            cls = op.__class__
            if cls is Access:
                gfn = op.gpa >> PAGE_SHIFT
                if mmu.guest_access(vcpu, gfn, op.write):
                    if op.cost_ns:
                        yield op.cost_ns
                    guest.op_done(vcpu, op, None)
                    continue
                vcpu.account("host")
                r = yield from handle_ept_violation(vcpu, op.gpa, 2 if op.write else 0)
                if r == mmu.RET_EMULATE:
                    yield kvm.cost("mmio_emulate_ns")
                    guest.op_done(vcpu, op, "emulated")
                elif r == mmu.RET_EFAULT:
                    kvm_run_failed(vcpu)
                return "EPT_VIOLATION"
            if cls is Compute:
                start = kvm.env.now
                vcpu.mode = "compute"
                try:
                    yield op.ns
                except Interrupt:
                    guest.op_progress(vcpu, op, kvm.env.now - start)
                    return "EXTERNAL_INTERRUPT"
                vcpu.mode = "guest"
                guest.op_done(vcpu, op, None)
                continue
            if cls is Halt:
                vcpu.arch.mp_state = x86.KVM_MP_STATE_HALTED
                guest.op_done(vcpu, op, None)
                return "HLT"
            if cls is WrMsr:
                vcpu.account("host")
                r = yield from handle_wrmsr(vcpu, op.msr, op.data)
                guest.op_done(vcpu, op, r)
                return "MSR_WRITE"
            if cls is Stop:
                vcpu.stopped = True
                return "HLT"
            raise TypeError(f"guest on vcpu {vcpu.vcpu_id} returned {op!r}; expected an Op")
    finally:
        vcpu.mode = "outside"
