"""Small configurations for the explorer: the ``MC*.tla`` of this model.

A :class:`ModelConfig` says how many vcpus, workers and tasks, which pages
each task touches (all swapped out on the host when the tasks start), and
what else happens (an MSR disable by a guest kernel thread, a vcpu reset).

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
  memory directly (no guest activity), as ``tests/conftest.make_swapped`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .. import abi
from ..guest import kvm as pv
from ..guest.kernel import AddressSpace, GuestConfig, GuestKernel
from ..guest.ops import Cli, PreemptDisable, PreemptEnable, Sti, Touch, Work
from ..host import x86
from ..host.kvm_main import gfn_to_hva
from ..workloads import steps
from ..machine import HostConfig, Machine

MiB = 1 << 20
DATA_GFN = 1100                 # above the guest kernel's reserved frames
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


@dataclass(frozen=True)
class ModelConfig:
    """A small configuration to explore exhaustively."""

    name: str
    vcpus: int = 1
    workers: int | None = 1
    tasks: tuple[TaskSpec, ...] = (TaskSpec((0,)),)
    pages: tuple[int, ...] = (DATA_GFN, DATA_GFN + 1)   # gfns; every one is swapped out at start
    preemptible: bool = True       # False: the guest registers without SEND_ALWAYS
    quantum: int = 1000
    swap_ns: int = 4000
    hz: int = 2000
    boot_ns: int = 200_000
    limit_ns: int = 3_000_000      # the tasks must be done by then
    disable_at: int | None = None  # a guest kernel thread on cpu 0 writes 0 to the MSR, then wakes all
    reset_at: int | None = None    # the VMM resets vcpu 0 (the guest re-registers)
    fast: bool = True              # part of the CI set
    note: str = ""
    extra: dict = field(default_factory=dict)


def colliding_gfns(n: int, start: int = DATA_GFN) -> tuple[int, ...]:
    """``n`` gfns with the same home slot in the 64-slot APF hash (a probe chain)."""
    home = x86.kvm_async_pf_hash_fn(start)
    out = [start]
    g = start + 1
    while len(out) < n:
        if x86.kvm_async_pf_hash_fn(g) == home:
            out.append(g)
        g += 1
    return tuple(out)


CONFIGS: dict[str, ModelConfig] = {}


def _add(cfg: ModelConfig) -> None:
    CONFIGS[cfg.name] = cfg


_add(ModelConfig("one_task", note="1 vcpu, 1 worker, 1 task touching 2 pages in turn"))
_add(ModelConfig("two_tasks", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=2,
                 note="1 vcpu, 2 workers, 2 tasks each touching its own page: completion vs entry vs sleep"))
_add(ModelConfig("hash_chain", tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((1,), work_ns=20_000)),
                 pages=colliding_gfns(2), workers=2,
                 note="2 gfns with the same hash home: delete the first while the second is outstanding, "
                      "then touch the second again"))
_add(ModelConfig("msr_disable", tasks=(TaskSpec((0,)), TaskSpec((1,))), workers=1, disable_at=3_000,
                 note="2 sleepers, an MSR disable + wake-all racing the worker, then re-enable"))
_add(ModelConfig("two_vcpus", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=1)), workers=1,
                 note="2 vcpus sharing 1 worker, a task on each"))
_add(ModelConfig("kernel_touch", tasks=(TaskSpec((0,), kernel=True),), preemptible=False,
                 note="non-preemptible guest (no SEND_ALWAYS) touching a swapped page from kernel mode"))
_add(ModelConfig("tick_completion", hz=10000, swap_ns=97_000,
                 note="1 task; the swap-in completes exactly on a tick: the woken vcpu consumes the item "
                      "while the worker has one step left"))
_add(ModelConfig("three_tasks", tasks=(TaskSpec((0,)), TaskSpec((1,)), TaskSpec((2,))),
                 pages=(DATA_GFN, DATA_GFN + 1, DATA_GFN + 2), workers=2, fast=False,
                 note="1 vcpu, 2 workers, 3 tasks on 3 pages"))
_add(ModelConfig("two_vcpus_three_tasks", vcpus=2, tasks=(TaskSpec((0,), cpu=0), TaskSpec((1,), cpu=0),
                                                          TaskSpec((0,), cpu=1)), workers=2, fast=False,
                 note="2 vcpus, 2 workers, 3 tasks; two vcpus fault the same page"))


@dataclass
class Built:
    """A machine ready to run the tasks (booted), with everything a run needs to find."""

    config: ModelConfig
    machine: Machine
    kernel: GuestKernel
    tasks: list
    gfns: tuple[int, ...]


def build(cfg: ModelConfig, *, policy: Any = None, trace: bool = True,
          bugs: dict[str, bool] | None = None, before_boot: Callable[[Machine], None] | None = None) -> Built:
    """Build the machine of ``cfg`` under ``policy``: swap the pages out, boot, spawn the tasks (not run yet)."""
    kernel = GuestKernel(GuestConfig(pv=True, preemptible=cfg.preemptible, hz=cfg.hz))
    q = cfg.quantum
    for name in ("context_switch_ns", "pf_entry_ns", "tick_ns", "minor_fault_ns"):
        kernel.params[name] = q
    host = HostConfig(generation="legacy", vcpus=cfg.vcpus, guest_mem=8 * MiB, host_limit=1 * MiB,
                      swap_device=_deterministic_swap(cfg.swap_ns), workers=cfg.workers, mmio_pages=0, seed=0)
    m = Machine(host, kernel, trace=trace, policy=policy)
    for name in list(m.kvm.costs):
        m.kvm.costs[name] = q
    m.kvm.bugs.update(bugs or {})
    if before_boot is not None:
        before_boot(m)
    for gfn in cfg.pages:
        pfn = m.mm.get_user_pages_nowait(gfn_to_hva(m.kvm, gfn), True)
        m.mm.put_page(pfn)
    m.mm.reclaim(len(cfg.pages))
    m.env.run()
    m.start()
    m.run(m.env.now + cfg.boot_ns)
    tasks = []
    for i, spec in enumerate(cfg.tasks):
        mm = AddressSpace()
        items: list = []
        if spec.work_ns:
            items.append(Work(spec.work_ns))
        if spec.atomic:
            items.append(PreemptDisable())
        for k, page in enumerate(spec.pages):
            gva = TASK_GVA + ((k + 1) << abi.PAGE_SHIFT)
            mm.map(gva, 1, cfg.pages[page])
            items.append(Touch(gva, True, 0, kernel=spec.kernel))
        if spec.atomic:
            items.append(PreemptEnable())
        tasks.append(kernel.spawn(f"t{i}", _program(items), spec.cpu, mm))
    if cfg.disable_at is not None:
        cpu0 = kernel.cpus[0]

        def disable_then_reenable():  # as on CPU_DOWN_PREPARE / CPU_ONLINE: interrupts off
            yield Cli()
            yield from pv.kvm_pv_disable_apf(cpu0)
            pv.apf_task_wake_all(cpu0)
            yield from pv.kvm_guest_cpu_init(cpu0)
            yield Sti()

        tasks.append(kernel.spawn("apfoff", _program([Work(cfg.disable_at), disable_then_reenable]), 0, AddressSpace()))
    if cfg.reset_at is not None:
        vcpu0, cpu0 = m.vcpus[0], kernel.cpus[0]

        def reset(_arg: Any) -> None:
            vcpu0.reset_pending = True
            vcpu0.kick()

            def reregister():  # the guest's CPU_ONLINE path, interrupts off
                yield Cli()
                yield from pv.kvm_guest_cpu_init(cpu0)
                pv.apf_task_wake_all(cpu0)
                yield Sti()
            tasks.append(kernel.spawn("reinit", _program([reregister]), 0, AddressSpace()))

        m.env.schedule(cfg.reset_at, reset)
    return Built(cfg, m, kernel, tasks, tuple(cfg.pages))


def _program(items: list) -> Callable:
    """A fixed list of guest steps; callables among them run as kernel code (see workloads.steps)."""
    return steps(*items)
