"""Small configurations for the explorer: the ``MC*.tla`` of this model.

A :class:`ModelConfig` says which protocol generation runs (``legacy``, the
merged 2.6.38 ABI, or ``seed``, the 2009 v2 series of seed 000), how many
vcpus, workers and tasks, which pages each task touches (all swapped out on
the host when the tasks start), and what else happens (an MSR disable by a
guest kernel thread, a vcpu reset by the VMM).

The seed configurations are the legacy ones the seed can express: it has no
APF halt and no gfn hash (no ``hash_chain``; a kernel-mode touch is simply
synchronous), no per-vcpu limit, no SEND_ALWAYS bit and no ~0 broadcast (a
guest that re-registers wakes its own sleepers).  ``seed_same_page`` shows
what the missing hash means: two APFs for one gfn.

Simplifications that exist only for model checking, each sound for the
orderings it is meant to explore:

* **Quantised time.**  Every host cost (entry, EPT fault, worker wake-up) and
  the guest's kernel-path costs are set to ``quantum`` ns, and the swap device
  is deterministic (``swap_ns`` per read, any number in service).  Steps of
  different actors then fall due at the *same* instants, which is where the
  engine asks the choice policy -- so every ordering of worker completion vs
  vcpu entry, page-ready vs going to sleep, tick vs injection is enumerated
  instead of being fixed by a random latency.  Ordering, not duration, is
  what the protocol's safety depends on.
* **A fast tick** (``hz``) so ticks fall inside the short runs.
* The guest boots for ``boot_ns`` (registers async PF, takes the wake-all)
  before the tasks are spawned; the pages are made swapped through the host
  memory directly (no guest activity), with :func:`asyncpf.build.make_swapped`.
* **A vcpu reset** (``reset_at``, ns after the tasks are spawned) is what the
  VMM does with KVM's reset path: ``kvm_arch_vcpu_reset`` runs on the vcpu
  thread at its next loop (APF off, queue cleared, pending events dropped)
  while the guest's memory and tasks carry on.  A guest kernel thread on
  cpu 0 then re-registers as a cpu coming online does, with interrupts off,
  and wakes every sleeper of cpu 0 (the seed has no broadcast to do it; in
  2.6.38 the ~0 the MSR write queues finds them already woken).  See
  :func:`vmm_reset_vcpu`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .. import abi
from ..guest import kvm as pv
from ..build import boot_guest, make_swapped
from ..guest.kernel import AddressSpace, GuestConfig, GuestKernel
from ..guest.ops import Cli, PreemptDisable, PreemptEnable, Sti, Touch, Work
from ..host import x86
from ..host.interrupt import x86 as irq_x86
from ..host.mmu import spte_mapped
from ..host.vcpu import Halt, WrMsr
from ..machine import HostConfig, Machine
from ..workloads import steps
from . import msr_abi

MiB = 1 << 20
DATA_GFN = 1100                 # above the guest kernel's reserved frames
NOSLOT_GFN = 0xFE000            # in the PCI hole, no memslot (mmio_pages=0): the VMM emulates it, no pfn
TASK_GVA = 0x400000


def _deterministic_swap(read_ns: int) -> dict:
    part = {"positioning_ns": [{"what": "fixed (model checking)", "uniform_ns": [read_ns, read_ns]}],
            "transfer_ns_per_page": 0}
    return {"name": f"fixed_{read_ns}ns", "queue_depth": 64, "read": part, "write": part}


@dataclass(frozen=True)
class TaskSpec:
    """One guest task: the data pages (indices into the config's pages) it touches, in order."""

    pages: tuple[int, ...]
    cpu: int = 0
    kernel: bool = False          # touch from kernel mode (a syscall's copy_to_user)
    atomic: bool = False          # inside preempt_disable()
    work_ns: int = 0              # user work before the first touch
    irqs_off: bool = False        # the touches run with interrupts disabled (local_irq_save around a copy)
    fresh: bool = False           # first touch a page the guest has not mapped yet: an ordinary guest #PF


@dataclass(frozen=True)
class ModelConfig:
    """A small configuration to explore exhaustively."""

    name: str
    generation: str = "legacy"     # the protocol generation (asyncpf.abi): "legacy" (2.6.38), "seed" (2009 v2)
                                   # or "interrupt" (6.18)
    vcpus: int = 1
    workers: int | None = 1
    tasks: tuple[TaskSpec, ...] = (TaskSpec((0,)),)
    pages: tuple[int, ...] = (DATA_GFN, DATA_GFN + 1)   # gfns; every one but NOSLOT_GFN is swapped out at start
    preemptible: bool = True       # False: the guest registers without SEND_ALWAYS
    quantum: int = 1000
    swap_ns: int = 4000
    hz: int = 2000
    boot_ns: int = 200_000
    limit_ns: int = 3_000_000      # the tasks must be done by then
    disable_at: int | None = None  # a guest kernel thread on cpu 0 writes 0 to the MSR, then wakes all
    reenable: bool = True          # ... and registers again (a cpu coming back online); False: it stays off
    reset_at: int | None = None    # the VMM resets vcpu 0 (the guest re-registers)
    lapic_on_at: int | None = None  # vcpu 0's LAPIC is software-disabled from boot until a guest thread enables it
    cpuid: int | None = None       # CPUID 0x40000001 EAX offered to the guest (None: the generation's default)
    enforce_pv_cpuid: bool = False  # KVM_CAP_ENFORCE_PV_FEATURE_CPUID on every vcpu
    pv: bool = True                # False: the guest booted with no-kvmapf (GuestConfig.pv)
    probe_msrs: tuple[tuple[int, int], ...] = ()  # a guest thread writes these MSRs with wrmsr_safe, under cli
    vmm_msrs: tuple[tuple[int, int | None], ...] = ()  # the VMM's KVM_SET_MSRS (msr, value) / KVM_GET_MSRS (msr,
                                                       # None) on vcpu 0 before it first runs
    fast: bool = True              # part of the CI set
    note: str = ""
    extra: dict = field(default_factory=dict)
    max_schedules: int | None = None   # an exploration of this configuration stops after so many schedules
    step_budget: int = 400_000     # engine steps one schedule may take (more is a livelock, reported)
    instant_budget: int = 20_000   # engine steps at one simulated instant (more is a livelock, reported)

    @property
    def memory_pages(self) -> tuple[int, ...]:
        """The pages backed by guest memory (swapped out at start, part of the state key); not NOSLOT_GFN."""
        return tuple(g for g in self.pages if g != NOSLOT_GFN)

    @property
    def answer_bound_ns(self) -> int:
        """How long a delivered not-present may wait for its answer: what the configuration implies.

        One swap-in, then per task in line a slice of quanta for the entries, faults, context switches and
        the prefault; two ticks for a vcpu that only notices a completion at its next exit; the delays the
        configuration itself puts in (a LAPIC switched on late, computing tasks, a disable or reset).
        """
        tick = 1_000_000_000 // self.hz
        lines = len(self.tasks) + 3
        extra = (self.lapic_on_at or 0) + max((t.work_ns for t in self.tasks), default=0) \
            + (self.disable_at or 0) + (self.reset_at or 0)
        return self.swap_ns + lines * 40 * self.quantum + 2 * tick + extra

    @property
    def grace_ns(self) -> int:
        """How long a blocked vcpu may sit with a completion on ``done`` (the worker's wake is one step later)."""
        return 10 * self.quantum

    def __post_init__(self) -> None:
        abi.generation(self.generation)  # unknown or unmodelled generations are refused here, by name
        if self.reset_at is not None and self.reset_at < 0:
            raise ValueError(f"reset_at={self.reset_at!r}: expected None or a delay >= 0 ns after the tasks start")


def colliding_gfns(n: int, start: int = DATA_GFN, hash_fn: Callable[[int], int] = x86.kvm_async_pf_hash_fn,
                   ) -> tuple[int, ...]:
    """``n`` gfns with the same home slot in the 64-slot APF hash (a probe chain)."""
    return gfns_with_homes((hash_fn(start),) * n, start, hash_fn)


def gfns_with_homes(homes: tuple[int, ...], start: int = DATA_GFN,
                    hash_fn: Callable[[int], int] = x86.kvm_async_pf_hash_fn) -> tuple[int, ...]:
    """Distinct gfns from ``start`` on, the i-th with home slot ``homes[i]`` under ``hash_fn`` (a generation's)."""
    out: list[int] = []
    for home in homes:
        g = start
        while hash_fn(g) != home or g in out:
            g += 1
        out.append(g)
    return tuple(out)


CONFIGS: dict[str, ModelConfig] = {}


def _add(cfg: ModelConfig) -> None:
    CONFIGS[cfg.name] = cfg


def _in_interrupt_era(base: str, note: str = "", **changes: Any) -> None:
    """Add ``irq_<base>``: the configuration ``base`` run by the interrupt era's host and guest."""
    _add(replace(CONFIGS[base], name=f"irq_{base}", generation="interrupt",
                 note=note or f"{base} in the interrupt era", **changes))


_add(ModelConfig("one_task", note="1 vcpu, 1 worker, 1 task touching 1 swapped-out page"))
_add(ModelConfig("two_tasks", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 note="1 vcpu, 2 workers, 2 tasks each touching its own page: completion vs entry vs sleep"))
_add(ModelConfig("hash_chain", tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((1,), work_ns=20_000)),
                 pages=colliding_gfns(2), workers=2,
                 note="2 gfns with the same hash home: delete the first while the second is outstanding, "
                      "then touch the second again"))
_add(ModelConfig("hash_chain_retouch", tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((1,), work_ns=2_000)),
                 pages=colliding_gfns(2), workers=1, swap_ns=40_000,
                 note="2 gfns with the same hash home, both outstanding when a third task touches the second again: "
                      "the lookup must walk past the first to find it (a repeated fault, the vcpu halts), not start "
                      "a second async PF for it"))
_add(ModelConfig("hash_wrap", tasks=tuple(TaskSpec((i,)) for i in range(4)), workers=1, swap_ns=40_000,
                 pages=gfns_with_homes((62, 63, 63, 0)), max_schedules=400,
                 note="4 gfns whose probe chain wraps past slot 63 (homes 62, 63, 63, 0: slots 62, 63, 0, 1); the "
                      "first deleted while the others are outstanding, so the backward shift must keep the wrapped "
                      "entries where their homes still reach them"))
_in_interrupt_era("hash_chain", pages=colliding_gfns(2, hash_fn=irq_x86.kvm_async_pf_hash_fn),
                  note="hash_chain in the interrupt era (its gfns collide under 6.18's hash_32)")
_in_interrupt_era("hash_chain_retouch", pages=colliding_gfns(2, hash_fn=irq_x86.kvm_async_pf_hash_fn),
                  note="hash_chain_retouch in the interrupt era (its gfns collide under 6.18's hash_32)")
_in_interrupt_era("hash_wrap", pages=gfns_with_homes((62, 63, 63, 0), hash_fn=irq_x86.kvm_async_pf_hash_fn),
                  note="hash_wrap in the interrupt era (its gfns chosen under 6.18's hash_32)")
_add(ModelConfig("msr_disable", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=1, disable_at=3_000,
                 note="2 sleepers, an MSR disable + wake-all racing the worker, then re-enable"))
_add(ModelConfig("two_vcpus", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=1)), workers=1,
                 note="2 vcpus sharing 1 worker, a task on each"))
_add(ModelConfig("kernel_touch", tasks=(TaskSpec((0,), kernel=True),), preemptible=False,
                 note="non-preemptible guest (no SEND_ALWAYS) touching a swapped page from kernel mode"))
_add(ModelConfig("user_touch_unpreemptible", preemptible=False,
                 note="non-preemptible guest (no SEND_ALWAYS) touching a swapped page from user mode: it is told "
                      "(only a CPL0 fault needs SEND_ALWAYS), never halted"))
_add(ModelConfig("kernel_touch_offline", tasks=(TaskSpec((0,), kernel=True),), preemptible=False, disable_at=10_000,
                 reenable=False,
                 note="kernel_touch, then cpu 0 goes offline: the stray page-ready's dummy node is unlinked by "
                      "apf_task_wake_all, which in 2.6.38 never frees it (kept as dropped, a leak)"))
_add(ModelConfig("tick_completion", hz=10000, swap_ns=97_000,
                 note="1 task; the swap-in completes exactly on a tick: the woken vcpu consumes the item "
                      "while the worker has one step left"))
_add(ModelConfig("three_tasks", tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((2,))),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=2, fast=False,
                 note="1 vcpu, 2 workers, 3 tasks on 3 pages"))
_add(ModelConfig("two_vcpus_three_tasks", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=0),
                                                          TaskSpec((0,), cpu=1)), workers=2, fast=False,
                 note="2 vcpus, 2 workers, 3 tasks; two vcpus fault the same page"))
_add(ModelConfig("irqoff_touch", tasks=(TaskSpec((0,), kernel=True, irqs_off=True), TaskSpec((1,))), workers=2,
                 note="a kernel-mode touch with interrupts off (a copy under local_irq_save) beside a user one: "
                      "the first must be handled synchronously even though the guest asked for SEND_ALWAYS"))
_add(ModelConfig("irqoff_touch_unregistered", tasks=(TaskSpec((0,)), TaskSpec((1, 2), kernel=True, irqs_off=True)),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=2, pv=False, hz=1000, swap_ns=5_797_000,
                 limit_ns=60_000_000,
                 note="a guest that never registers (no-kvmapf): the user touch goes async all the same and halts; a "
                      "tick and the end of its timeslice let a kernel task run with interrupts off through two "
                      "synchronous faults, during which the first page arrives (on a tick): with async PF off the "
                      "completion is consumed at once, interrupts off or not"))
_add(ModelConfig("two_vcpus_disable", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=1)), workers=1,
                 disable_at=3_000, note="2 vcpus with a sleeper each; cpu 0 disables async PF and wakes its own "
                                        "sleepers only (apf_task_wake_all filters by cpu)"))
_add(ModelConfig("limit64", tasks=tuple(TaskSpec((i,)) for i in range(66)),
                 pages=tuple(DATA_GFN + i for i in range(66)), workers=None, swap_ns=2_000_000,
                 limit_ns=20_000_000, max_schedules=3,
                 note="66 tasks on 66 swapped pages, a worker each and a slow disk: 64 async PFs outstanding on "
                      "one vcpu, the 65th and 66th fault refused at the limit (handled synchronously); FIFO and "
                      "two more schedules only"))
_in_interrupt_era("limit64", note="limit64 in the interrupt era: the only runs that reach kvm_setup_async_pf's "
                                  "per-vcpu limit there (ASYNC_PF_PER_VCPU is still 64 in v6.18)")
_add(ModelConfig("cpuid_no_async_pf", tasks=(TaskSpec((0,)),), cpuid=0,
                 note="the VMM offers no KVM_FEATURE_ASYNC_PF: the guest does not register, the touch is a "
                      "synchronous fault"))
_add(ModelConfig("vcpu_reset", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2, reset_at=12_000,
                 note="the VMM resets vcpu 0 while 2 tasks sleep, a page-ready is queued and a swap-in runs; "
                      "the guest re-registers"))

# --- the seed generation (v2, 2009): MSR 0x13, the reason word of an 8-byte area, kvm_send_async_pf;
#     not-present injected at the next entry from one slot, page-ready one per entry
_add(ModelConfig("seed_one_task", generation="seed", note="one_task on the seed generation"))
_add(ModelConfig("seed_two_tasks", generation="seed", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 note="two_tasks on the seed: the slot's injection vs completion vs sleep"))
_add(ModelConfig("seed_same_page", generation="seed", tasks=(TaskSpec((0,)), TaskSpec((0,))), workers=2,
                 note="2 tasks touch the same page: without a gfn hash the seed starts a second APF for it"))
_add(ModelConfig("seed_msr_disable", generation="seed", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=1,
                 disable_at=3_000, note="msr_disable on the seed: MSR 0x13 off while the worker runs, then on"))
_add(ModelConfig("seed_kernel_touch", generation="seed", tasks=(TaskSpec((0,), kernel=True), TaskSpec((1,))),
                 preemptible=False, note="a kernel-mode touch beside a user-mode one: the seed never goes async at "
                                         "CPL0 (the vcpu waits for that swap-in), the user touch does"))
_add(ModelConfig("seed_vcpu_reset", generation="seed", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 reset_at=12_000, note="vcpu_reset on the seed (no broadcast: the guest wakes its sleepers)"))
_add(ModelConfig("seed_cpuid_no_async_pf", generation="seed", vcpus=2, tasks=(TaskSpec((0,)), TaskSpec((1,), cpu=1)),
                 cpuid=0, note="the seed with CPUID not offering KVM_FEATURE_ASYNC_PF (bit 3 then): the guest must not "
                               "register; the touches are synchronous faults, the two vcpus what interleaves"))
_add(ModelConfig("seed_two_vcpus", generation="seed", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=1)),
                 workers=1, fast=False, note="two_vcpus on the seed"))

# --- the interrupt era (Linux 6.18): page-ready by interrupt into the token slot, ACKed by MSR; a 5.9+ guest
#     (INT before EN, user-mode not-present only, sleep-only waits)
_in_interrupt_era("one_task")
_in_interrupt_era("two_tasks", note="two page-readys racing for the one token slot: completion vs ACK vs kick vs sleep")
_add(ModelConfig("irq_same_page", generation="interrupt", tasks=(TaskSpec((0,)), TaskSpec((0,))), workers=2,
                 note="2 tasks touch the same swapped page: the second fault finds the gfn outstanding (a repeated "
                      "fault: trace, APF halt until the page is back), never a second async PF for it"))
_add(ModelConfig("irq_token_wrap", generation="interrupt", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 extra={"apf_id": 0xFFFFF},
                 note="two_tasks on a vcpu whose token counter is at its last value (1 << 20 - 1 faults taken): the "
                      "second token wraps, and 6.18 skips counter 0 so that no token is 0 (the 2022 fix)"))
_add(ModelConfig("irq_ack_race", generation="interrupt", tasks=(TaskSpec((0,)), TaskSpec((1,)),
                                                                TaskSpec((), work_ns=400_000)), workers=2,
                 swap_ns=2000, note="two sleepers and a computing task: a completion landing while a page-ready "
                                    "is still unacknowledged must still reach the running vcpu"))
_in_interrupt_era("msr_disable", note="msr_disable in the interrupt era: EN=0 while the worker runs, then INT + EN")
_add(ModelConfig("irq_kernel_touch", generation="interrupt", tasks=(TaskSpec((0,), kernel=True), TaskSpec((1,))),
                 workers=2, note="a kernel-mode touch (never async since 5.8: APF halt) beside a user-mode one"))
_in_interrupt_era("vcpu_reset")
_add(replace(CONFIGS["irq_vcpu_reset"], name="irq_vcpu_reset_token_top_byte", extra={"apf_id": 0xFFF},
             note="irq_vcpu_reset on a vcpu whose token counter is at 0xfff: the second token, 0x1000000, has only "
                  "its top byte set, and it is the one left unconsumed in the slot across the reset, so the slot "
                  "test must read the whole token word to see the slot busy"))
_add(ModelConfig("halt_irqs_off", hz=10_000, reset_at=250_000, extra={"park_at": 120_000},
                 note="once the task's async PF is answered, a kernel thread parks cpu 0 with cli; hlt (as a cpu "
                      "stopped or played dead) while ticks come: only the VMM's INIT/RESET may resume it, not the "
                      "masked timer interrupt"))
_in_interrupt_era("halt_irqs_off")
_add(ModelConfig("seed_halt_irqs_off", generation="seed", hz=10_000, reset_at=250_000, extra={"park_at": 120_000},
                 note="halt_irqs_off on the seed: cpu 0 parked with cli; hlt while ticks come, resumed by the VMM's "
                      "INIT/RESET, not by the masked timer interrupt"))
_add(ModelConfig("irq_lapic_off", generation="interrupt", tasks=(TaskSpec((0,)),), lapic_on_at=20_000,
                 note="the LAPIC is software-disabled when the guest enables async PF (a direct-booted kernel); "
                      "a guest thread enables it later"))
_add(ModelConfig("irq_guest_fault", generation="interrupt", tasks=(TaskSpec((0,), fresh=True),),
                 note="the task first touches a page of its own the guest has not mapped yet (an ordinary #PF, "
                      "flags 0: exc_page_fault must hand it to the guest's fault handler), then a swapped-out one"))
_in_interrupt_era("two_vcpus", fast=False)


# --- the MSR write rules (issue 15): each class of write a probe thread makes under cli, judged by
# msr_writes_follow_the_abi (the classes of asyncpf.live.msrtable, measured on the real KVM for 6.18) ---

PROBE_TASK = "msrprobe"       # the kernel thread that makes a configuration's probe_msrs writes
PROBE_AREA = 0x7F000           # a 64-byte area in the guest's low memory the unregistered guest does not use
PROBE_OUTSIDE = 0x8000_0000    # no memslot there (guest memory is 8 MiB from 0)
_EN, _SA = abi.KVM_ASYNC_PF_ENABLED, abi.KVM_ASYNC_PF_SEND_ALWAYS
_VMX, _INTD = abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT, abi.KVM_ASYNC_PF_DELIVERY_AS_INT
_INT_618 = abi.INTERRUPT.msr_async_pf_int    # unknown to the seed and 2.6.38


def _msr_battery(gen: abi.Generation, *writes: tuple[str | int, int | None]) -> tuple[tuple[int, int | None], ...]:
    """(MSR, value) pairs; an MSR is named EN, INT or ACK of ``gen``, or given by number (one ``gen`` lacks)."""
    msr = {"EN": gen.msr_async_pf_en, "INT": gen.msr_async_pf_int, "ACK": gen.msr_async_pf_ack}
    return tuple((msr.get(name, name), data) for name, data in writes)


def vmm_msr_accesses(m: Machine, accesses: tuple[tuple[int, int | None], ...],
                     observe: Callable[..., None] | None) -> None:
    """The VMM's KVM_SET_MSRS (msr, value) and KVM_GET_MSRS (msr, None) on vcpu 0, each told to ``observe``.

    Made at once, before the vcpu first runs (as the VMM sets a vcpu up, or restores it after a
    migration): host-initiated accesses through kvm_set_msr_common / kvm_get_msr_common.  ``observe``
    gets (vcpu, msr, value or None, refused, the value read or None, msr_abi.held before).  A write
    that would wait (a worker to cancel) cannot happen on a vcpu that never ran: it is an error here.
    Simulation glue, not a kernel twin.
    """
    vcpu, gen = m.vcpus[0], m.gen.name
    for msr, data in accesses:
        before = msr_abi.held(gen, vcpu)
        if data is None:
            refused, value = x86.kvm_get_msr_common(vcpu, msr, host_initiated=True)
        else:
            value, write = None, x86.kvm_set_msr_common(vcpu, msr, data, host_initiated=True)
            try:
                next(write)
                raise RuntimeError(f"KVM_SET_MSRS {msr:#x} = {data:#x} waited on a vcpu that never ran")
            except StopIteration as done:
                refused = done.value
        if observe is not None:
            observe(vcpu, msr, data, bool(refused), value, before)


_add(ModelConfig("msr_table", tasks=(TaskSpec((0,)),), pv=False,
                 probe_msrs=_msr_battery(abi.LEGACY, ("EN", PROBE_AREA | _EN | 0x4), ("EN", PROBE_AREA | _EN | 0x20),
                                         ("EN", PROBE_OUTSIDE | _EN), ("EN", PROBE_OUTSIDE), ("EN", PROBE_AREA | _EN),
                                         ("EN", 0), ("EN", PROBE_AREA | _EN | _SA), ("EN", 0), (_INT_618, 0),
                                         (msr_abi.NO_SUCH_MSR, 1)),
                 note="2.6.38, the guest booted with no-kvmapf: a kernel thread writes each class of EN value "
                      "under cli (reserved bits 2 and 5, an area outside guest memory enabled and not, enables "
                      "with and without SEND_ALWAYS, disables) and MSRs 2.6.38 does not know; the touch is a "
                      "halt-path fault"))
_add(ModelConfig("bad_area_touch", pv=False,
                 probe_msrs=_msr_battery(abi.LEGACY, ("EN", PROBE_OUTSIDE | _EN)),
                 extra={"probe_first": True, "probe_later": (400_000, _msr_battery(abi.LEGACY, ("EN", 0)))},
                 note="2.6.38, no-kvmapf: a kernel thread enables async PF on an area outside guest memory (refused, "
                      "yet left enabled: the kernel's defect, fixed by 923ca078f08c), then a task touches a swapped "
                      "page: the reason word cannot be written, so the not-present is not injected and the "
                      "repeated fault halts the vcpu until the page is back; later the probe disables again"))
_in_interrupt_era("bad_area_touch", probe_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0xF3), ("EN", PROBE_OUTSIDE | _EN | _INTD)),
                  extra={"probe_first": True, "probe_later": (400_000, _msr_battery(abi.INTERRUPT, ("EN", 0)))},
                  note="bad_area_touch in the interrupt era: 6.18 keeps the same half-enabled defect")
_add(ModelConfig("seed_msr_table", generation="seed", vcpus=2, tasks=(TaskSpec((0,)), TaskSpec((1,), cpu=1)), pv=False,
                 probe_msrs=_msr_battery(abi.SEED, ("EN", PROBE_AREA | _EN | 0x2), ("EN", PROBE_AREA | _EN | 0x20),
                                         ("EN", PROBE_OUTSIDE | _EN), ("EN", PROBE_OUTSIDE), ("EN", PROBE_AREA | _EN),
                                         ("EN", 0), (abi.LEGACY.msr_async_pf_en, 0)),
                 note="the seed, its guest not registering: a kernel thread writes each class of value to MSR 0x13 "
                      "under cli (reserved bits 1 and 5, an area outside guest memory enabled and not, an enable, "
                      "a disable) and 2.6.38's MSR 0x4b564d02, which the seed does not know; no async PF without "
                      "registration, so the two vcpus (a task each) are what interleaves"))
_add(ModelConfig("irq_msr_table", generation="interrupt", tasks=(TaskSpec((0,)),), pv=False,
                 probe_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0x1F3), ("INT", 0), ("INT", 0xF3),
                                         ("EN", PROBE_AREA | _EN | _INTD | 0x10), ("EN", PROBE_AREA | _EN | _INTD | 0x20),
                                         ("EN", PROBE_OUTSIDE | _INTD), ("EN", PROBE_AREA | _EN),
                                         ("EN", PROBE_AREA | _EN | _INTD | _VMX), ("EN", 0),
                                         ("EN", PROBE_AREA | _EN | _SA | _INTD), ("ACK", 0), ("ACK", 2), ("EN", 0),
                                         ("EN", PROBE_OUTSIDE | _EN | _INTD), ("EN", 0)),
                 note="6.18, no-kvmapf, no PV-CPUID enforcement: a kernel "
                      "thread writes each class of INT, EN and ACK value under cli (reserved bits, vector 0, an "
                      "area outside guest memory -- the last enable is refused yet left half-enabled until the "
                      "disable after it -- every delivery mode, SEND_ALWAYS, disables)"))
_add(replace(CONFIGS["irq_msr_table"], name="irq_msr_table_late_touch", tasks=(TaskSpec((0,), work_ns=10_000_000),),
             swap_ns=40_000, limit_ns=30_000_000,
             note="irq_msr_table with the touch after the probe's writes: the guest, never registered, consumes "
                  "nothing, so the token slot of the probed area still reads busy when the halt-path fault "
                  "completes with async PF off -- the completion must be consumed anyway"))
_add(ModelConfig("irq_msr_probe", generation="interrupt", tasks=(TaskSpec((0,)),),
                 cpuid=1 << abi.KVM_FEATURE_ASYNC_PF, enforce_pv_cpuid=True,
                 probe_msrs=_msr_battery(abi.INTERRUPT, ("ACK", 1), ("INT", 0xF3), ("EN", PROBE_AREA | _EN | _INTD),
                                         ("EN", PROBE_AREA | _EN), ("EN", 0), ("INT", 0), ("ACK", 0),
                                         (msr_abi.NO_SUCH_MSR, 0)),
                 note="PV-CPUID enforced, ASYNC_PF_INT not offered: the guest does not register, a thread probes the "
                      "ACK and INT MSRs (must #GP, 0 included), EN (DELIVERY_AS_INT must #GP, the rest is accepted) "
                      "and an MSR no generation defines; the touch is a halt-path fault"))
_add(ModelConfig("irq_msr_enforced", generation="interrupt", tasks=(TaskSpec((0,)),), pv=False,
                 cpuid=(1 << abi.KVM_FEATURE_ASYNC_PF) | (1 << abi.KVM_FEATURE_ASYNC_PF_INT), enforce_pv_cpuid=True,
                 probe_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0xF3), ("EN", PROBE_AREA | _EN | _INTD | _VMX),
                                         ("EN", PROBE_AREA | _EN | _INTD), ("ACK", 1), ("EN", 0)),
                 note="6.18 with PV-CPUID enforced, ASYNC_PF and ASYNC_PF_INT offered but not ASYNC_PF_VMEXIT: "
                      "DELIVERY_AS_PF_VMEXIT is refused, the rest accepted"))
_add(ModelConfig("irq_msr_no_irqchip", generation="interrupt", vcpus=2, tasks=(TaskSpec((0,)), TaskSpec((1,), cpu=1)),
                 pv=False,
                 extra={"irqchip": False},
                 probe_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0xF3), ("EN", PROBE_AREA | _EN | _INTD), ("EN", 0),
                                         ("ACK", 1)),
                 note="6.18 without an in-kernel irqchip (no KVM_CREATE_IRQCHIP): INT and any non-zero EN are "
                      "refused, EN=0 and ACK accepted; no async PF, so the two vcpus (a task each) are what "
                      "interleaves"))


# --- the VMM's side (issue 15): KVM_SET_MSRS / KVM_GET_MSRS of each class, made before vcpu 0 first runs (as a VMM
# sets a vcpu up or restores it), judged by vmm_msr_accesses_follow_the_abi; kept apart from the guest's probes so
# that a bug both would show is still judged on the guest's side there.  The guest does not register. ---

_add(ModelConfig("vmm_msr_table", tasks=(TaskSpec((0,)),), pv=False,
                 vmm_msrs=_msr_battery(abi.LEGACY, ("EN", PROBE_AREA | _EN), ("EN", None),
                                       ("EN", PROBE_AREA | _EN | 0x4), ("EN", 0), ("EN", None), (_INT_618, 0),
                                       (_INT_618, None), (msr_abi.NO_SUCH_MSR, None)),
                 note="2.6.38 (no host_initiated: the guest's rules): the VMM enables EN, reads it, writes a reserved "
                      "bit, disables, reads, then writes and reads 6.18's INT and an MSR no generation defines (both "
                      "refused); the touch is a halt-path fault"))
_add(ModelConfig("irq_vmm_msr_table", generation="interrupt", tasks=(TaskSpec((0,)),), pv=False,
                 vmm_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0xF3), ("EN", PROBE_AREA | _EN | _INTD), ("EN", None),
                                       ("INT", None), ("ACK", None), ("ACK", 1), ("EN", 0), ("INT", 0x1F3),
                                       ("INT", 0), ("EN", None), (msr_abi.NO_SUCH_MSR, 0),
                                       (msr_abi.NO_SUCH_MSR, None)),
                 note="6.18, every PV feature offered: the VMM sets INT and enables EN, reads EN, INT and ACK (0), "
                      "ACKs, disables, writes a reserved INT bit (refused) and INT=0, and an MSR no generation "
                      "defines (refused, its read zeroed)"))
_add(ModelConfig("irq_vmm_msr_hidden", generation="interrupt", tasks=(TaskSpec((0,)),), pv=False,
                 cpuid=1 << abi.KVM_FEATURE_ASYNC_PF, enforce_pv_cpuid=True,
                 vmm_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0), ("INT", 0xF3), ("ACK", 0), ("ACK", 1), ("INT", None),
                                       ("ACK", None), ("EN", None)),
                 note="6.18, PV-CPUID enforced, ASYNC_PF_INT not offered: the VMM's writes to INT and ACK are "
                      "refused, even 0 (accepted only since 5bb9ac186512), and so are its reads; EN reads back"))
_add(ModelConfig("irq_vmm_msr_no_irqchip", generation="interrupt", vcpus=2, tasks=(TaskSpec((0,)), TaskSpec((1,), cpu=1)),
                 pv=False, extra={"irqchip": False},
                 vmm_msrs=_msr_battery(abi.INTERRUPT, ("INT", 0), ("EN", 0), ("EN", PROBE_AREA | _EN | _INTD),
                                       ("ACK", 1), ("INT", None), ("EN", None)),
                 note="6.18 without an in-kernel irqchip: the VMM's INT (even 0) and non-zero EN are refused, EN=0 "
                      "and ACK accepted; no async PF, so the two vcpus (a task each) are what interleaves"))


# --- the guest's own switches (issue 15): no-kvmapf, a cpu that stays unregistered, CPUID as -cpu host offers it ---

_add(ModelConfig("atomic_touch_preemptible", tasks=(TaskSpec((0,), kernel=True, atomic=True), TaskSpec((1,))),
                 workers=2,
                 note="a preemptible guest (SEND_ALWAYS) touching a swapped page from kernel mode inside "
                      "preempt_disable(): the not-present is sent, and the task cannot sleep, so its wait halts the "
                      "cpu until the page-ready (kvm_async_pf_task_wait's halted node)"))
_add(ModelConfig("guest_fault", tasks=(TaskSpec((0,), fresh=True),),
                 note="2.6.38: the task first touches a page of its own the guest has not mapped yet (an ordinary #PF "
                      "with reason 0: do_async_page_fault hands it to do_page_fault), then a swapped-out one"))
_add(ModelConfig("guest_fault_unregistered", tasks=(TaskSpec((0,), fresh=True),), cpuid=0,
                 note="guest_fault with CPUID not offering async PF: the guest never registers, so an ordinary #PF "
                      "must read as reason 0 whatever its area holds"))
_add(ModelConfig("kernel_touch_preemptible", tasks=(TaskSpec((0,), kernel=True), TaskSpec((1,))), workers=2,
                 note="a preemptible guest (SEND_ALWAYS) touching a swapped page from kernel mode beside a user "
                      "task: the kernel-mode fault goes async too and the task sleeps in kernel mode"))
_add(ModelConfig("irq_cpu1_two_tasks", generation="interrupt", vcpus=2,
                 tasks=(TaskSpec((0,), cpu=1), TaskSpec((1,), cpu=1)), workers=2, swap_ns=3000,
                 note="two tasks on vcpu 1, whose tokens have a non-zero low byte (the vcpu id): a page-ready "
                      "token is written at the entry that also delivers the next not-present, so the #PF handler "
                      "resets the flags word while the token beside it waits for its interrupt"))
_add(ModelConfig("irq_no_kvmapf", generation="interrupt", pv=False,
                 note="the guest booted with no-kvmapf: it never registers although CPUID offers async PF; the touch "
                      "is a synchronous fault"))
for _gen, _prefix in (("legacy", ""), ("interrupt", "irq_")):
    _add(ModelConfig(f"{_prefix}offline_for_good", generation=_gen, tasks=(TaskSpec((0,)), TaskSpec((1,))),
                     workers=1, swap_ns=40_000, disable_at=3_000, reenable=False,
                     note=f"{_gen}: cpu 0 unregisters (kvm_guest_cpu_offline) with two sleepers and does not come "
                          "back: only the guest's own wake-all wakes them (no re-enable, so no host ~0); they "
                          "fault again without async PF (the model keeps them on the cpu instead of migrating them)"))
_add(ModelConfig("unregistered_offline", tasks=(TaskSpec((0,)),), cpuid=0, disable_at=3_000,
                 note="2.6.38 on a VMM that offers no KVM_FEATURE_ASYNC_PF: the guest never registers, so taking a "
                      "cpu offline must not write MSR_KVM_ASYNC_PF_EN at all (kvm_pv_disable_apf's guard); the touch "
                      "is a synchronous fault"))
_add(ModelConfig("irq_unregistered_offline", generation="interrupt", tasks=(TaskSpec((0,), fresh=True),), cpuid=0,
                 enforce_pv_cpuid=True, disable_at=3_000,
                 note="no PV feature offered (and enforced): the guest never registers, so its ordinary #PF must not "
                      "be read as an async one, and the offline path must not write the MSR the host refuses"))
_add(ModelConfig("irq_cpu_host", generation="interrupt",
                 cpuid=(1 << abi.KVM_FEATURE_ASYNC_PF) | (1 << abi.KVM_FEATURE_ASYNC_PF_VMEXIT)
                 | (1 << abi.KVM_FEATURE_ASYNC_PF_INT),
                 note="CPUID as QEMU's -cpu host passes KVM's: KVM_FEATURE_ASYNC_PF_VMEXIT too, so the guest adds "
                      "DELIVERY_AS_PF_VMEXIT to its enable"))


@dataclass
class Built:
    """A machine ready to run the tasks (booted), with everything a run needs to find."""

    config: ModelConfig
    machine: Machine
    kernel: GuestKernel
    tasks: list
    gfns: tuple[int, ...]


def build(cfg: ModelConfig, *, policy: Any = None, trace: bool = True,
          before_boot: Callable[[Machine], None] | None = None, on_vmm_msr: Callable[..., None] | None = None) -> Built:
    """Build the machine of ``cfg`` under ``policy``: swap the pages out, boot, spawn the tasks (not run yet).

    ``on_vmm_msr`` is told of each of ``cfg.vmm_msrs`` as it is made (:func:`vmm_msr_accesses`).
    """
    host = HostConfig(generation=cfg.generation, vcpus=cfg.vcpus, guest_mem=8 * MiB, host_limit=1 * MiB,
                      swap_device=_deterministic_swap(cfg.swap_ns), workers=cfg.workers, mmio_pages=0, seed=0)
    if "host_cpus" in cfg.extra:  # hostsched: model the host's CPUs (fewer than its threads, in host_cpus_*)
        host = host.replace(host_cpus=cfg.extra["host_cpus"])

    def quantise_and_swap_out(m: Machine) -> None:
        for name in ("context_switch_ns", "pf_entry_ns", "tick_ns", "minor_fault_ns"):
            m.guest.params[name] = cfg.quantum
        for name in list(m.kvm.costs):
            m.kvm.costs[name] = cfg.quantum
        for vcpu in m.vcpus:
            vcpu.arch.pv_cpuid_enforce = cfg.enforce_pv_cpuid
            if cfg.cpuid is not None:
                vcpu.arch.cpuid_features = cfg.cpuid
        if cfg.lapic_on_at is not None:
            m.vcpus[0].apic_sw_enabled = False
        if not cfg.extra.get("irqchip", True):
            m.kvm.irqchip_in_kernel = False
        if "apf_id" in cfg.extra:  # a long-running vcpu: its token counter has advanced that far
            m.vcpus[0].arch.apf.id = cfg.extra["apf_id"]
        if "alloc_fail" in cfg.extra:
            m.kvm.alloc_fail = failing_allocations(cfg.extra["alloc_fail"])
        if "stack_page" in cfg.extra:
            delivery_faults_on_stack(m, cfg.pages[cfg.extra["stack_page"]])
        if before_boot is not None:
            before_boot(m)
        vmm_msr_accesses(m, cfg.vmm_msrs, on_vmm_msr)
        make_swapped(m, *cfg.memory_pages)

    booted = boot_guest(host, GuestConfig(pv=cfg.pv, preemptible=cfg.preemptible, hz=cfg.hz), boot_ns=cfg.boot_ns,
                        trace=trace, policy=policy, before_boot=quantise_and_swap_out)
    m, kernel = booted.machine, booted.kernel
    tasks = []
    probe = [Cli(), *(_wrmsr(msr, data, safe=True) for msr, data in cfg.probe_msrs), Sti()]
    if cfg.probe_msrs and cfg.extra.get("probe_first"):  # the writes land before any task runs
        tasks.append(kernel.spawn(PROBE_TASK, _program(probe), 0, AddressSpace()))
    for i, spec in enumerate(cfg.tasks):
        mm = AddressSpace()
        items: list = []
        if spec.work_ns:
            items.append(Work(spec.work_ns))
        if spec.atomic:
            items.append(PreemptDisable())
        if spec.irqs_off:
            items.append(Cli())
        if spec.fresh:  # anonymous and not yet faulted in: the #PF carries no async PF flags
            mm.map(TASK_GVA, 1, None)
            items.append(Touch(TASK_GVA, True, 0, kernel=spec.kernel))
        for k, page in enumerate(spec.pages):
            gva = TASK_GVA + ((k + 1) << abi.PAGE_SHIFT)
            mm.map(gva, 1, cfg.pages[page])
            items.append(Touch(gva, True, 0, kernel=spec.kernel))
        if spec.irqs_off:
            items.append(Sti())
        if spec.atomic:
            items.append(PreemptEnable())
        tasks.append(kernel.spawn(f"t{i}", _program(items), spec.cpu, mm))
    if cfg.disable_at is not None:
        cpu0 = kernel.cpus[0]

        # the generation's own CPU_DOWN_PREPARE path where it has one (6.18), else the shared one (disable, wake all)
        offline = getattr(cpu0.kernel.twins, "kvm_guest_cpu_offline", pv.kvm_guest_cpu_offline)

        def disable_then_reenable():  # as on CPU_DOWN_PREPARE / CPU_ONLINE: interrupts off
            yield Cli()
            yield from offline(cpu0)
            if cfg.reenable:
                yield from cpu0.kernel.twins.kvm_guest_cpu_init(cpu0)
            yield Sti()

        tasks.append(kernel.spawn("apfoff", _program([Work(cfg.disable_at), disable_then_reenable]), 0, AddressSpace()))
    if cfg.reset_at is not None:
        m.env.schedule(cfg.reset_at, lambda _arg: tasks.append(vmm_reset_vcpu(m, kernel, 0)))
    if "park_at" in cfg.extra:  # a kernel thread on cpu 0: cli; hlt -- the cpu stays halted until INIT/RESET
        tasks.append(kernel.spawn("park", _program([Work(cfg.extra["park_at"]), _park]), 0, AddressSpace()))
    if "migrate_at" in cfg.extra:
        m.env.schedule(cfg.extra["migrate_at"], lambda _arg: vmm_migrate_vcpu(m, 0))
    if cfg.lapic_on_at is not None:  # the guest's LAPIC setup: SPIV with the software-enable bit (x2APIC MSR 0x80f)
        tasks.append(kernel.spawn("lapicon", _program([Work(cfg.lapic_on_at), _wrmsr(X2APIC_SPIV, 0x1FF)]), 0,
                                  AddressSpace()))
    if cfg.probe_msrs and not cfg.extra.get("probe_first"):
        # under cli: no page-ready an enabling write queues can reach the guest that did not register
        tasks.append(kernel.spawn(PROBE_TASK, _program(probe), 0, AddressSpace()))
    if "probe_later" in cfg.extra:  # (delay, writes): a second probe thread, e.g. undoing the first's enable
        delay, writes = cfg.extra["probe_later"]
        later = [Work(delay), Cli(), *(_wrmsr(msr, data, safe=True) for msr, data in writes), Sti()]
        tasks.append(kernel.spawn(PROBE_TASK, _program(later), 0, AddressSpace()))
    return Built(cfg, m, kernel, tasks, cfg.memory_pages)


def vmm_reset_vcpu(m: Machine, kernel: GuestKernel, vcpu_id: int) -> Any:
    """The VMM resets vcpu ``vcpu_id`` now; the guest re-registers on that cpu.  Returns the re-registering task.

    Host: ``reset_pending`` + a kick, so the vcpu thread runs
    kvm_arch_vcpu_reset at the top of its next loop (APF off, queue cleared,
    pending events dropped -- a queued APF #PF too, whose reason word stays
    in guest memory; the checker knows such a word is no event).  Guest: a
    kernel thread on that cpu, interrupts off, does what a cpu coming online
    does -- register the area again (kvm_guest_cpu_init) -- and wakes every
    sleeper of the cpu (apf_task_wake_all; the seed has no ~0 broadcast to
    do it, in 2.6.38 the broadcast the MSR write queues finds them woken).
    Call it from an engine step or between runs, never from inside a guest op.
    Simulation glue for the checker, not a kernel twin.
    """
    vcpu, cpu = m.vcpus[vcpu_id], kernel.cpus[vcpu_id]
    vcpu.reset_pending = True
    vcpu.kick()

    def reregister():
        yield Cli()
        yield from cpu.kernel.twins.kvm_guest_cpu_init(cpu)
        pv.apf_task_wake_all(cpu)
        yield Sti()
    return kernel.spawn(f"reinit{vcpu_id}", _program([reregister]), vcpu_id, AddressSpace())


X2APIC_SPIV = 0x80F


def _park():
    """Kernel code that halts with interrupts off (``cli; hlt``), then turns them on again once resumed."""
    yield Cli()
    yield Halt()
    yield Sti()


def _wrmsr(msr: int, data: int, *, safe: bool = False) -> Callable:
    """Kernel code that writes one MSR: wrmsr, or wrmsr_safe (a refused write's #GP fixed up in any generation)."""
    def write():
        yield WrMsr(msr, data, safe)
    return write


def _program(items: list) -> Callable:
    """A fixed list of guest steps; callables among them run as kernel code (see workloads.steps)."""
    return steps(*items)


# --- hostsched: fewer host CPUs than runnable host threads (issue 13) -------------------------------------------

_add(ModelConfig("host_cpus_one", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=1, extra={"host_cpus": 1},
                 note="one_task's machine with two tasks on ONE host CPU: the vcpu thread and the bound kworker "
                      "take turns; preempt notifiers put and load the vcpu around every switch"))
_add(ModelConfig("host_cpus_halt", generation="interrupt", tasks=(TaskSpec((0,), kernel=True),), preemptible=False, workers=1,
                 extra={"host_cpus": 1},
                 note="irq_kernel_touch's first task on ONE host CPU: the vcpu thread halts for the page (the halt "
                      "path) while the kworker it just queued waits for the same CPU"))
for _gen, _prefix in (("legacy", ""), ("interrupt", "irq_")):
    _add(ModelConfig(f"{_prefix}host_cpus_disable", generation=_gen, tasks=(TaskSpec((0,)), TaskSpec((1,))),
                     workers=1, swap_ns=40_000, disable_at=10_000, extra={"host_cpus": 1},
                     note=f"{_gen}: an MSR disable with two async PFs outstanding on ONE host CPU: the kworker may not "
                          "have run yet (cancel_work_sync cancels it) or may be mid swap-in (the vcpu thread sleeps "
                          "in the clear, then waits for the CPU)"))


# --- bigger configurations, explored exhaustively under --full (issue 14: the explorer that reaches them) ---------

_add(ModelConfig("three_vcpus", vcpus=3, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=1), TaskSpec((2,), cpu=2)),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=1, fast=False,
                 note="3 vcpus sharing 1 worker, a task on each touching its own page"))
_add(ModelConfig("four_tasks_two_vcpus", vcpus=2,
                 tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=0), TaskSpec((2,), cpu=1), TaskSpec((3,), cpu=1)),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2, DATA_GFN + 3), workers=2, fast=False,
                 note="4 tasks on 2 vcpus, each on its own page, 2 workers: sleepers of both cpus in one hash"))
_add(ModelConfig("irq_ack_kick_race", generation="interrupt",
                 tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((2,)), TaskSpec((), work_ns=400_000)),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=3, swap_ns=2000, fast=False,
                 note="the interrupt era's ACK/kick races: three sleepers and a computing task on one vcpu; "
                      "completions land while a page-ready is unacknowledged (the slot is busy) and while the vcpu "
                      "runs guest code (the worker's request + kick must bring it out)"))
for _gen, _prefix in (("legacy", ""), ("interrupt", "irq_")):
    _add(ModelConfig(f"{_prefix}reset_three_outstanding", generation=_gen,
                     tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((2,))),
                     pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=3, swap_ns=40_000, reset_at=45_000,
                     fast=False, note=f"{_gen}: the VMM resets vcpu 0 with three async PFs outstanding, as the first "
                                      "swap-in completes (three sleepers; the guest re-registers)"))
    _add(ModelConfig(f"{_prefix}msr_disable_three_outstanding", generation=_gen,
                     tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((2,))),
                     pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=3, swap_ns=40_000, disable_at=34_000,
                     fast=False, note=f"{_gen}: an MSR disable + wake-all with three async PFs outstanding, as the "
                                      "swap-ins complete; then re-enable"))


# --- allocation failure: the GFP_ATOMIC / GFP_NOWAIT item allocations that may fail (issue 15) ----------------

def failing_allocations(ordinals: tuple[int, ...]) -> Callable[[], bool]:
    """``kvm.alloc_fail`` that fails the work-item allocations of these ordinals (1 = the first of the run).

    Deterministic on every schedule: it counts the allocations it was asked about itself, failed ones included
    (not the host's statistics, which it would then depend on).
    """
    asked = 0

    def fail() -> bool:
        nonlocal asked
        asked += 1
        return asked in ordinals
    return fail


_add(ModelConfig("alloc_fail", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2, extra={"alloc_fail": (1, 2)},
                 note="the boot's wake-all item and the first fault's item cannot be allocated (GFP_ATOMIC / "
                      "GFP_NOWAIT): no ~0 at registration, the first touch is handled synchronously, the second "
                      "goes async"))
_in_interrupt_era("alloc_fail")
_add(ModelConfig("seed_alloc_fail", generation="seed", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 extra={"alloc_fail": (1,)},
                 note="the seed (no wake-all at registration): the first fault's item cannot be allocated, so that "
                      "touch is handled synchronously; the second goes async"))


# --- live migration: the destination's vcpu knows nothing of the source's faults (issue 15) ----------------------

def vmm_migrate_vcpu(m: Machine, vcpu_id: int) -> None:
    """The VM moves to another host now; the guest is not told.  Call it from an engine step.

    What reaches the destination is guest memory and the vcpu's MSRs: its
    async PF state starts empty (the source's queue, done list and gfn hash
    stay behind), and the VMM reads the async PF MSRs (KVM_GET_MSRS) and restores them with KVM_SET_MSRS
    (host-initiated writes, the page-ready vector before the enable).  The
    enable queues the ~0 wake-all, the only thing that wakes the guest tasks
    still asleep on a source fault -- why 2.6.38 has it (kvm_pv_enable_async_pf
    in arch/x86/kvm/x86.c@v2.6.38, "how migration restarts waiters"; the same
    call in x86.c@v6.18).
    Simplification: one machine plays both hosts -- the vcpu thread drops the
    state with kvm_arch_vcpu_reset at its next loop (a running swap-in is
    waited for, a pending one cancelled) and restores the MSRs right after;
    memory keeps the pages as they were; the destination's token counter
    starts at 0 again, as a newly created vcpu's does.  Simulation glue, not a kernel twin.
    """
    vcpu = m.vcpus[vcpu_id]
    spec = m.kvm.abi
    saved = []
    for msr in (spec.msr_async_pf_int, spec.msr_async_pf_en):
        if msr is None or msr not in vcpu.kvm.twins.msr_reads:
            continue
        refused, value = x86.kvm_get_msr_common(vcpu, msr, host_initiated=True)   # KVM_GET_MSRS
        if refused:   # QEMU's kvm_get_msrs asserts that every MSR was read: the migration aborts
            raise RuntimeError(f"KVM_GET_MSRS refused MSR {msr:#x} of vcpu {vcpu_id}")
        saved.append((msr, value))
    reset = vcpu.kvm.twins.kvm_arch_vcpu_reset

    def reset_then_restore(v: Any) -> Any:
        yield from reset(v)
        if v is vcpu:
            vcpu.kvm.twins.kvm_arch_vcpu_reset = reset
            vcpu.arch.apf.id = 0   # a new vcpu: the token counter is in no state KVM_GET_*/KVM_SET_* carries
            for msr, value in saved:
                yield from x86.kvm_set_msr_common(v, msr, value, host_initiated=True)

    vcpu.kvm.twins.kvm_arch_vcpu_reset = reset_then_restore
    vcpu.reset_pending = True
    vcpu.kick()


_add(ModelConfig("migrate", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=1, swap_ns=50_000,
                 extra={"migrate_at": 20_000},
                 note="2 sleepers when the VM is migrated: the destination knows no fault, the restored MSR "
                      "queues the ~0 that wakes them"))
_in_interrupt_era("migrate")
_add(ModelConfig("migrate_while_halted", tasks=(TaskSpec((0,), kernel=True), TaskSpec((1,))), workers=2,
                 preemptible=False, swap_ns=40_000, extra={"migrate_at": 20_000},
                 note="the VM is migrated while vcpu 0 sits in the APF halt (a kernel-mode touch of a guest without "
                      "SEND_ALWAYS, a slow swap-in): no guest IPI comes with it, so the reset itself must end the halt"))
_in_interrupt_era("migrate_while_halted", note="migrate_while_halted in the interrupt era (a kernel-mode fault always "
                                               "halts since 5.8)")


# --- a gfn without memslot: its error pfn is emulated as MMIO (kvm_handle_bad_page; issue 15) -------------------

_add(ModelConfig("noslot_touch", tasks=(TaskSpec((0,)), TaskSpec((1, 0))), pages=(DATA_GFN, NOSLOT_GFN),
                 note="one task faults async on a swapped page while another touches a gfn without memslot (an "
                      "MMIO access the VMM emulates), then the same swapped page"))
_in_interrupt_era("noslot_touch")
_add(replace(CONFIGS["noslot_touch"], name="seed_noslot_touch", generation="seed",
             note="noslot_touch on the seed: the gfn without memslot is answered by gfn_to_pfn_async's error-hva "
                  "test and emulated (the seed's tdp_page_fault hands the error pfn to the MMIO path)"))


# --- an exception delivery that faults: the guest's stack page is swapped out (host-side invariants) -------------

def delivery_faults_on_stack(m: Machine, stack_gfn: int) -> None:
    """Vcpu 0's delivery of a pending #PF touches ``stack_gfn`` (its kernel stack) until that page is mapped.

    The guest model assumes its stacks resident; this makes the delivery exit
    with the #PF marked for reinjection (an EPT violation on the IDT/stack
    path), the only way the model reaches the fault path with an event needing
    reinjection -- what can_do_async_pf's kvm_event_needs_reinjection test is
    for (2a266f23550b, 2017: two APF #PFs in one entry make a #DF).
    Simulation glue, not a kernel twin.
    """
    def delivery_gfn(vcpu: Any) -> int | None:
        exc = vcpu.arch.exception
        if exc.pending and exc.nr == x86.PF_VECTOR and not spte_mapped(vcpu, stack_gfn):
            return stack_gfn
        return None

    m.guest.cpus[0].delivery_gfn = delivery_gfn


_add(ModelConfig("delivery_fault", tasks=(TaskSpec((0,)),), extra={"stack_page": 1},
                 note="1 task touching page 0; page 1 is the guest's (swapped) kernel stack, so delivering the "
                      "not-present #PF faults and the #PF waits for reinjection"))
_in_interrupt_era("delivery_fault")
_add(ModelConfig("seed_delivery_fault", generation="seed", tasks=(TaskSpec((0,)),), extra={"stack_page": 1},
                 note="delivery_fault on the seed: the not-present #PF faults on the swapped kernel stack and waits for "
                      "reinjection, when the seed's can_do_async_pf says no"))
