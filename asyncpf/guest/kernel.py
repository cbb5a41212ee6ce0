"""The guest kernel: tasks and their contexts, page tables, exception and interrupt entry, idle.

One :class:`GuestKernel` per VM, one :class:`GuestCpu` per vcpu.  A
``GuestCpu`` is what the host's run loop talks to (``asyncpf.host.vcpu.GuestCpu``):
it asks for the next operation and hands over the events KVM injects.

Each task owns a stack of *contexts*: its user program at the bottom and,
above it, the handlers it is inside of (a #PF handler waiting for a page, an
interrupt handler that decided to reschedule).  A context is a generator; it
yields host operations and CPU steps (``asyncpf.guest.ops``).  ``schedule()``
switches which task's stack runs; a task switched out in the middle of a
handler continues there when it is picked again -- as on a real kernel stack.

Simplifications: one address space per task, linear regions of guest page
tables; no load balancing; kernel text, stacks and per-cpu data are assumed
resident on the host unless a scenario says otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

from .. import abi
from ..datafiles import load_json
from ..host import x86
from ..host.vcpu import (
    LOCAL_TIMER_VECTOR,
    RESCHEDULE_VECTOR,
    Access,
    Compute,
    Halt,
    KvmVcpu,
    Stop,
    WrMsr,
    apic_eoi,
    lapic_timer_start,
)
from ..hotpath import compute
from ..mirrors import mirrors
from . import kvm as pv
from . import sched
from .sched_clock import SchedClockData, sched_clock_init
from .ops import Cli, Exit, PreemptDisable, PreemptEnable, SafeHalt, Schedule, Sti, Touch, Work

if TYPE_CHECKING:
    from ..sim import Environment

KERNEL_RESERVED_GFNS = 1024          # kernel image, per-cpu data, page tables: below this
PERCPU_APF_GPA = 0x10000             # per-cpu kvm_vcpu_pv_apf_data, 64-byte aligned, stride 128
WORK_CHUNK_NS = 50_000_000           # Work(None) runs in chunks so a cut-short one leaves no far-future entry


def load_guest_params(era: str = "2010") -> dict[str, int]:
    table = load_json("guest_kernel.json")
    if era not in table:
        raise ValueError(f"unknown guest parameter era {era!r}; expected one of {sorted(k for k in table if k[0] != '_')}")
    return {name: int(entry["value"]) for name, entry in table[era].items()}


@dataclass(frozen=True)
class GuestConfig:
    """How the guest kernel was built and booted."""

    pv: bool = True                  # CONFIG_KVM_GUEST with async PF, and no "no-kvmapf"
    preemptible: bool = True         # CONFIG_PREEMPT (then it also asks for SEND_ALWAYS)
    hz: int | None = None            # None: the era's CONFIG_HZ
    era: str = "2010"
    generation: str | None = None    # the async PF code this kernel carries; None: the host's generation
    # False: the runqueue clock is kvm-clock itself; True: filtered by kernel/sched_clock.c (guest/sched_clock.py)
    unstable_sched_clock: bool = False

    def validate(self) -> None:
        if self.generation is not None:
            abi.generation(self.generation)
        if self.hz is not None and (not isinstance(self.hz, int) or not 10 <= self.hz <= 10000):
            raise ValueError(f"hz={self.hz!r}: expected an integer tick rate between 10 and 10000")
        load_guest_params(self.era)


@dataclass
class Region:
    """A linear stretch of a task's page table: ``npages`` pages from ``gva`` map to ``gfn`` on."""

    gva: int
    npages: int
    gfn: int | None                  # None: reserved, filled page by page on first touch
    lazy: dict[int, int] = field(default_factory=dict)

    def translate(self, gva: int) -> int | None:
        i = (gva - self.gva) >> abi.PAGE_SHIFT
        if self.gfn is not None:
            return self.gfn + i
        return self.lazy.get(i)


class AddressSpace:
    """A task's ``mm_struct`` as far as translation goes: gva -> gfn."""

    def __init__(self) -> None:
        self.regions: list[Region] = []

    def map(self, gva: int, npages: int, gfn: int | None) -> Region:
        if gva % abi.PAGE_SIZE or npages <= 0:
            raise ValueError(f"cannot map gva {gva:#x} x {npages} pages: need page alignment and npages > 0")
        for r in self.regions:
            if gva < r.gva + (r.npages << abi.PAGE_SHIFT) and r.gva < gva + (npages << abi.PAGE_SHIFT):
                raise ValueError(f"gva {gva:#x} x {npages} overlaps a mapping at {r.gva:#x}")
        region = Region(gva, npages, gfn)
        self.regions.append(region)
        return region

    def region(self, gva: int) -> Region | None:
        for r in self.regions:
            if r.gva <= gva < r.gva + (r.npages << abi.PAGE_SHIFT):
                return r
        return None

    def translate(self, gva: int) -> int | None:
        r = self.region(gva)
        return None if r is None else r.translate(gva)


class Ctx:
    """One execution context on a task's stack: a generator, its outstanding operation, saved CPU state."""

    __slots__ = ("coro", "op", "result", "saved", "name")

    def __init__(self, coro: Iterator[Any], name: str, saved: tuple[int, bool] | None):
        self.coro = coro
        self.name = name
        self.op: Any = None          # outstanding op (user op or host op), re-issued until done
        self.result: Any = None      # what the next send() delivers
        self.saved = saved           # (cpl, IF) restored at IRET; None for a user program

    def __repr__(self) -> str:
        return f"<Ctx {self.name}>"


class GuestKernel:
    """The whole guest: its cpus, tasks, the APF sleeper hash, the page allocator.

    Pass it to ``Machine`` as the guest; the machine calls :meth:`attach`
    before it builds the vcpus, then asks :meth:`cpu` for each one.
    """

    def __init__(self, config: GuestConfig = GuestConfig()):
        config.validate()
        self.config = config
        self.params = load_guest_params(config.era)
        self.hz = config.hz or self.params["hz"]
        self.env: "Environment | None" = None
        self.abi: abi.Generation | None = None
        self.twins: Any = None
        self.cpus: list[GuestCpu] = []
        self.tasks: list[Task] = []
        self.sleepers = pv.new_sleeper_table()
        self.stats: Counter = Counter()
        self.next_free_gfn = KERNEL_RESERVED_GFNS
        self.ram_ranges: list[tuple[int, int]] = []   # the e820 map: (first gfn, pages), from the machine
        self.panicked: str | None = None
        # (t, cpu, handler) of every kernel exit taken with interrupts enabled: what lockdep's
        # lockdep_assert_irqs_disabled() in irqentry_exit (5.9+ generic entry) reports
        self.irqs_on_at_exit: list[tuple[int, int, str]] = []
        self._next_pid = 100

    def attach(self, machine: Any) -> None:
        """Boot on ``machine``: one GuestCpu per vcpu, the machine's clock and protocol generation."""
        if self.env is not None:
            raise RuntimeError("this guest kernel is already attached to a machine")
        self.env = machine.env
        self.ram_ranges = list(getattr(machine, "ram_ranges", []))
        self.abi = abi.generation(self.config.generation or machine.gen.name)
        self.twins = import_module(f"asyncpf.guest.{self.abi.name}")
        ncpus = machine.config.vcpus
        # sched_init_granularity (2.6.32): the three granularities grow with 1 + ilog2(min(ncpus, 8))
        factor = 1 + (min(ncpus, 8).bit_length() - 1)
        for name in ("sched_latency_ns", "sched_min_granularity_ns", "sched_wakeup_granularity_ns"):
            self.params[name] *= factor
        self.cpus = [GuestCpu(self, i) for i in range(ncpus)]

    # -- set-up ---------------------------------------------------------------
    def cpu(self, vcpu_id: int) -> "GuestCpu":
        """The guest side of vcpu ``vcpu_id``; pass ``kernel.cpu`` to ``Machine`` as the guest factory."""
        return self.cpus[vcpu_id]

    def alloc_gfns(self, npages: int) -> int:
        """Contiguous guest frames from the page allocator (deterministic: lowest free first).

        They come from one range of guest RAM (the e820 map): a request that
        does not fit in what is left below the PCI hole is served from 4 GiB
        up.  Where no range holds it, from the next free gfn (the caller finds out).
        """
        gfn = self.next_free_gfn
        for base, n in self.ram_ranges:
            start = max(gfn, base)
            if start + npages <= base + n:
                gfn = start
                break
        self.next_free_gfn = gfn + npages
        return gfn

    def spawn(self, comm: str, program: Callable[["Task"], Generator], cpu: int, mm: AddressSpace | None = None) -> "Task":
        """Create a task running ``program(task)`` on ``cpu`` (in user mode, runnable)."""
        if not 0 <= cpu < len(self.cpus):
            raise ValueError(f"cpu {cpu} does not exist; the guest has cpus 0..{len(self.cpus) - 1}")
        task = Task(pid=self._next_pid, comm=comm, cpu=cpu, mm=mm or AddressSpace())
        self._next_pid += 1
        task.stack.append(Ctx(program(task), f"{comm}:user", None))
        target = self.cpus[cpu]
        sched.place_entity(target, task, initial=True)
        sched.enqueue_task_fair(target, task, wakeup=False)
        if target.vcpu is not None:  # booted: wake_up_new_task -> resched_task, an IPI to that cpu
            target.need_resched = True
            target.smp_send_reschedule()
        self.tasks.append(task)
        return task

    def leaks(self) -> list[str]:
        """Sleepers still waiting and dummy nodes never consumed (quiescence check)."""
        out = []
        for node in pv.all_nodes(self.sleepers):
            kind = "dummy node" if node.task is None else f"task {node.task.pid} sleeping"
            out.append(f"{kind} for token {node.token:#x} on cpu {node.cpu}")
        if self.stats["dummies_dropped"]:
            out.append(f"{self.stats['dummies_dropped']} dummy nodes unlinked by wake-all and never freed")
        return out


Task = sched.Task


class GuestCpu:
    """One guest cpu: its runqueue and the glue the host's run loop calls."""

    def __init__(self, kernel: GuestKernel, cpu_id: int):
        self.kernel = kernel
        self.id = cpu_id
        self.params = kernel.params
        self.rq = sched.CfsRq()
        self.scd: SchedClockData | None = None   # the filtered runqueue clock, from this cpu's boot (if configured)
        self.need_resched = False
        self.vcpu: KvmVcpu | None = None
        self.stats: Counter = Counter()
        self.apf_enabled = False                  # apf_reason.enabled of this cpu
        self.apf_gpa = PERCPU_APF_GPA + 128 * cpu_id
        # a cpu comes up in the kernel with interrupts off; cpu_idle enables them after init
        self.idle = sched.Task(pid=0, comm=f"swapper/{cpu_id}", cpu=cpu_id, is_idle=True, regs=(0, False))
        self.idle.stack.append(Ctx(cpu_idle(self), "cpu_idle", None))
        self._issued: Ctx | None = None
        self._refused_msr: int | None = None      # the WRMSR KVM just refused (its #GP comes at the next entry)
        self._refused_safe = False                 # ... and it was a wrmsr_safe

    # -- the host protocol ---------------------------------------------------------
    def next_op(self, vcpu: KvmVcpu) -> Any:
        if self.vcpu is None:
            self.vcpu = vcpu
            self.rq.curr = self.idle
            vcpu.arch.cpl, vcpu.arch.rflags_if = self.idle.regs
            if self.kernel.config.unstable_sched_clock:
                self.scd = sched_clock_init(self.kernel.env.now)
        while True:
            if self.kernel.panicked:
                return Stop()
            task = self.rq.curr
            ctx = task.stack[-1]
            op = ctx.op
            if op is None:
                try:
                    op = ctx.coro.send(ctx.result)
                except StopIteration:
                    self._return_from(task, ctx)
                    continue
                ctx.result = None
                ctx.op = op
            if op.__class__ is Work:  # the commonest op, lowered without a call (asyncpf/hotpath.py)
                host_op = compute(WORK_CHUNK_NS if op.ns is None else op.ns)
            else:
                host_op = self._lower(task, ctx, op)
                if host_op is _AGAIN:
                    continue
            self._issued = ctx
            return host_op

    def op_done(self, vcpu: KvmVcpu, op: Any, result: Any) -> None:
        refused = op.__class__ is WrMsr and result
        self._refused_msr = op.msr if refused else None
        self._refused_safe = refused and op.safe
        ctx = self._issued
        if ctx is None:
            return
        task_op = ctx.op
        cls = task_op.__class__
        if ctx.saved is None and (cls is Work or cls is Touch):  # _charge_work inline (asyncpf/hotpath.py)
            ns = op.ns if cls is Work else task_op.cost_ns
            if ns > 0:
                self.rq.curr.cpu_ns += ns
        ctx.op = None
        ctx.result = result

    def op_progress(self, vcpu: KvmVcpu, op: Compute, ran_ns: int) -> None:
        ctx = self._issued
        task_op = ctx.op
        if task_op.__class__ is Work:
            self._charge_work(ctx, ran_ns)
            if task_op.ns is not None:
                ctx.op = Work(task_op.ns - ran_ns)
        elif task_op.__class__ is Compute:
            ctx.op = Compute(task_op.ns - ran_ns)

    def deliver_exception(self, vcpu: KvmVcpu, nr: int, error_code: int) -> None:
        if nr == x86.PF_VECTOR:
            cr2 = vcpu.arch.cr2
            entry = self._pf_entry()
            self._enter(entry.__name__, lambda saved: entry(self, saved, cr2, error_code))
        elif nr == x86.GP_VECTOR and self._refused_msr is not None and (self.kernel.twins.WRMSR_FIXUP
                                                                        or self._refused_safe):
            self.stats[f"wrmsr_gp_fixups_{self._refused_msr:#x}"] += 1  # ex_handler_msr: warn, skip the WRMSR
            self._refused_msr = None
        else:
            self.panic(f"unexpected exception {x86.EXCEPTION_NAMES.get(nr, nr)} on cpu {self.id}")

    def deliver_interrupt(self, vcpu: KvmVcpu, vector: int) -> None:
        apic_eoi(vcpu)  # every handler of the model acks the APIC first (ack_APIC_irq / apic_eoi)
        where = self.kernel.twins.INTERRUPT_HANDLERS.get(vector) if self.kernel.config.pv else None
        handler = None if where is None else getattr(*where)
        if vector == LOCAL_TIMER_VECTOR:
            self._enter("smp_apic_timer_interrupt", lambda saved: smp_apic_timer_interrupt(self, saved))
        elif vector == RESCHEDULE_VECTOR:
            self._enter("smp_reschedule_interrupt", lambda saved: smp_reschedule_interrupt(self, saved))
        elif handler is not None:
            self._enter(handler.__name__, lambda saved: handler(self, saved))
        else:
            self.stats[f"spurious_vector_{vector:#x}"] += 1

    def delivery_gfn(self, vcpu: KvmVcpu) -> int | None:
        return None

    def _pf_entry(self) -> Callable:
        """The #PF vector's handler: the generation's async PF entry on a PV kernel, else do_page_fault."""
        return getattr(*self.kernel.twins.PF_ENTRY) if self.kernel.config.pv else do_page_fault

    # -- helpers the kernel code uses ---------------------------------------------
    @property
    def curr(self) -> "Task":
        return self.rq.curr

    def smp_send_reschedule(self) -> None:
        """Mirrors arch/x86/kernel/smp.c:native_smp_send_reschedule: the RESCHEDULE_VECTOR IPI to this cpu."""
        if self.vcpu is not None:
            self.kernel.stats["resched_ipis"] += 1
            self.vcpu.kvm.twins.kvm_apic_set_irq(self.vcpu, RESCHEDULE_VECTOR)

    def panic(self, reason: str) -> None:
        if self.kernel.panicked is None:
            self.kernel.panicked = f"{reason} (t={self.kernel.env.now})"

    def _enter(self, name: str, make: Callable[[tuple[int, bool]], Generator], irqs_on: bool = False) -> None:
        """Kernel entry: save CPL/IF, go to CPL0 (interrupt gates also clear IF), push the handler."""
        arch = self.vcpu.arch
        saved = (arch.cpl, arch.rflags_if)
        arch.cpl, arch.rflags_if = 0, irqs_on and arch.rflags_if
        exception = None if irqs_on else name     # a syscall returns through its own exit path, interrupts on
        self.rq.curr.stack.append(Ctx(_with_return_path(self, make(saved), saved, exception), name, saved))

    def _return_from(self, task: "Task", ctx: Ctx) -> None:
        """A context finished: IRET restores CPL/IF; a finished user program is do_exit."""
        task.stack.pop()
        if ctx.saved is not None:
            self.vcpu.arch.cpl, self.vcpu.arch.rflags_if = ctx.saved
            return
        task.stack.append(Ctx(_exit_task(self, task), f"{task.comm}:exit", None))

    def _charge_work(self, ctx: Ctx, ns: int) -> None:
        task = self.rq.curr
        if ctx.saved is None and ns > 0:
            task.cpu_ns += ns

    def _lower(self, task: "Task", ctx: Ctx, op: Any) -> Any:
        """Turn a user op or CPU step (other than Work, lowered in next_op) into a host op (or act on it here and
        return _AGAIN / None)."""
        cls = op.__class__
        if cls is Touch:
            return self._touch(task, ctx, op)
        if cls in (Access, Compute, Halt, WrMsr):
            return op
        ctx.op = None
        arch = self.vcpu.arch
        if cls is Sti:
            arch.rflags_if = True
            return None
        if cls is Cli:
            arch.rflags_if = False
            return _AGAIN
        if cls is SafeHalt:
            arch.rflags_if = True
            ctx.op = _HALT
            return _HALT
        if cls is Schedule:
            sched.schedule(self, preempt=op.preempt)
            return _AGAIN
        if cls is PreemptDisable:
            task.preempt_count += 1
            return _AGAIN
        if cls is PreemptEnable:
            task.preempt_count -= 1
            if task.preempt_count == 0 and self.need_resched and self.kernel.config.preemptible:
                ctx.op = Schedule()  # preempt_enable() is a preemption point
            return _AGAIN
        if cls is Exit:
            ctx.coro.close()
            return _AGAIN
        raise TypeError(f"task {task.pid} yielded {op!r}; expected a guest op")

    def _touch(self, task: "Task", ctx: Ctx, op: Touch) -> Any:
        gfn = task.mm.translate(op.gva)
        if gfn is None:  # not in the guest page table: the CPU raises #PF to the guest itself (no exit)
            self.vcpu.arch.cr2 = op.gva
            entry = self._pf_entry()
            self._enter(entry.__name__, lambda saved: entry(self, saved, op.gva, 2 if op.write else 0))
            return _AGAIN
        gpa = (gfn << abi.PAGE_SHIFT) | (op.gva & (abi.PAGE_SIZE - 1))
        if op.kernel and self.vcpu.arch.cpl != 0:
            return Access(gpa, op.write, op.gva, op.cost_ns) if self._syscall(ctx) else _AGAIN
        return Access(gpa, op.write, op.gva, op.cost_ns)

    def _syscall(self, ctx: Ctx) -> bool:
        """A user task doing a kernel-mode access: enter the kernel for it (CPL0) and come back after."""
        op = ctx.op
        ctx.op = None
        self._enter("syscall", lambda saved: _kernel_access(op), irqs_on=True)
        return False


_AGAIN = object()
_HALT = Halt()  # ops are frozen: one for every idle round (asyncpf/hotpath.py)
_SAFE_HALT = SafeHalt()


def _with_return_path(cpu: "GuestCpu", handler: Generator, saved: tuple[int, bool],
                      exception: str | None) -> Generator:
    """Every kernel entry leaves through retint/error_exit: a preemption point (see _preempt_on_return).

    An exception or interrupt handler (``exception`` names it) that comes back with interrupts enabled is
    recorded (``kernel.irqs_on_at_exit``); the checker judges it for the generations whose entry code
    asserts the opposite.
    """
    yield from handler
    if exception is not None and cpu.vcpu.arch.rflags_if:
        cpu.kernel.irqs_on_at_exit.append((cpu.kernel.env.now, cpu.id, exception))
    yield from _preempt_on_return(cpu, saved)


def _kernel_access(op: Touch) -> Generator:
    yield Touch(op.gva, op.write, op.cost_ns, kernel=True)


def _exit_task(cpu: GuestCpu, task: "Task") -> Generator:
    task.state = sched.TASK_DEAD
    cpu.kernel.stats["exits"] += 1
    yield Schedule()


@mirrors("arch/x86/kernel/process_64.c", "cpu_idle", generations="guest 2.6.32-38")
def cpu_idle(cpu: GuestCpu) -> Generator:
    """The idle task: boot the cpu (async PF registration, tick), then halt until there is work.

    Simplification: the tick is a periodic LAPIC timer programmed here.
    """
    yield from cpu.kernel.twins.kvm_guest_cpu_init(cpu)
    lapic_timer_start(cpu.vcpu, 1_000_000_000 // cpu.kernel.hz)
    yield Sti()
    yield Schedule()
    while True:
        while not cpu.need_resched:
            yield _SAFE_HALT  # SafeHalt(), made once (asyncpf/hotpath.py)
        yield Schedule()


def _preempt_on_return(cpu: GuestCpu, saved: tuple[int, bool]) -> Generator:
    """The exit path of an interrupt: reschedule if needed and the interrupted context allows it."""
    if not cpu.need_resched:
        return
    task = cpu.curr
    to_user = saved[0] == 3
    kernel_ok = cpu.kernel.config.preemptible and task.preempt_count == 0 and saved[1]
    if to_user or kernel_ok:
        yield compute(cpu.params["context_switch_ns"])  # Compute(...), made once (asyncpf/hotpath.py)
        yield Schedule(preempt=True)


@mirrors("arch/x86/kernel/apic/apic.c", "smp_apic_timer_interrupt", generations="guest 2.6.32-38")
def smp_apic_timer_interrupt(cpu: GuestCpu, saved: tuple[int, bool]) -> Generator:
    """The tick: scheduler_tick; the interrupt exit path (every entry's) may then preempt.

    Simplification: timekeeping and timer wheels are not modelled; the tick costs ``tick_ns``.
    """
    yield compute(cpu.params["tick_ns"])  # Compute(...), made once (asyncpf/hotpath.py)
    cpu.stats["ticks"] += 1
    sched.scheduler_tick(cpu)


@mirrors("arch/x86/kernel/smp.c", "smp_reschedule_interrupt", generations="guest 2.6.32-38")
def smp_reschedule_interrupt(cpu: GuestCpu, saved: tuple[int, bool]) -> Generator:
    """The reschedule IPI: nothing to do here; the interrupt exit path does the rescheduling."""
    cpu.stats["resched_irqs"] += 1
    return
    yield


@mirrors("arch/x86/mm/fault.c", "do_page_fault", generations="guest 2.6.32-38")
def do_page_fault(cpu: GuestCpu, saved: tuple[int, bool], address: int, error_code: int) -> Generator:
    """An ordinary guest page fault at ``address``: map a fresh guest page (or the fault was spurious).

    Simplification: no VMA checks or SIGSEGV; a fault on a mapped page returns at once.
    """
    yield from guest_page_fault(cpu, saved, address)


def guest_page_fault(cpu: GuestCpu, saved: tuple[int, bool], address: int) -> Generator:
    """handle_mm_fault for an anonymous page: allocate a guest frame, zero it (a store), map it."""
    task = cpu.curr
    region = None if task.mm is None else task.mm.region(address)
    if region is None:
        cpu.panic(f"task {task.pid} touched unmapped gva {address:#x}")
        return
    index = (address - region.gva) >> abi.PAGE_SHIFT
    if region.translate(address) is not None:
        return
    gfn = cpu.kernel.alloc_gfns(1)
    cpu.stats["guest_page_faults"] += 1
    yield Compute(cpu.params["minor_fault_ns"])
    yield Access(gfn << abi.PAGE_SHIFT, True, address)   # clear_page: the first store to the new frame
    region.lazy[index] = gfn
