"""Assemble a host: engine, swap device, VMM memory in a cgroup, the VM, its vcpus.

Simulation glue, not a kernel twin.  The guest-physical layout is fixed so
scenarios and notebooks can name addresses; guest RAM is one anonymous
mapping of the VMM (QEMU's RAM block), entered as one or two memslots the
way a VMM lays RAM around the PCI hole below 4 GiB (:func:`ram_layout`):

* slot 0: guest RAM from gfn 0 -- all of it when it fits below the MMIO hole
  (``guest_mem`` up to ``MMIO_BASE_GFN`` pages: every guest before 2026 here),
  otherwise the first 3 GiB (QEMU's ``pc`` machine: ``below_4g_mem_size``);
* slot 2: the rest of a bigger guest's RAM from 4 GiB (gfn ``HIGH_RAM_GFN``,
  ``above_4g_mem_size``), backed by the same mapping past slot 0's part;
* slot 1: a VM_PFNMAP region (an assigned device BAR) at ``MMIO_BASE_GFN``,
  backed by host MMIO pfns from ``MMIO_HOST_PFN``;
* everything else (e.g. ``ERROR_GFN``, the LAPIC page, the hole from 3 GiB
  of a big guest) is outside every slot: an error hva, emulated.

:meth:`Machine.shutdown` destroys the VM the way KVM does and
:meth:`Machine.leaks` then lists anything not given back: work items, kvm and
mm references, page references, sleepers parked in the guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import abi
from .datafiles import load_json
from .host import x86
from .host.async_pf import Workqueue
from .host.kvm_main import Kvm, gfn_to_hva, kvm_set_memory_region
from .host.mm import HostMemory
from .host.swap import SwapDevice
from .host.vcpu import GuestCpu, KvmVcpu
from .sim import ChoicePolicy, Environment
from .trace import Tracer
from .validated import (INTEGER, NONE_OR_POSITIVE, POSITIVE, ZERO_OR_POSITIVE, Validated, at_most, looked_up,
                        multiple_of, one_of, setting)

MMIO_BASE_GFN = 0xFE000
MMIO_HOST_PFN = 0xD0000
ERROR_GFN = 0xFEE00
BIG_GUEST_LOW_GFN = 0xC0000      # a guest too big for the space below the hole keeps 3 GiB there (QEMU pc)
HIGH_RAM_GFN = 0x100000          # and the rest from 4 GiB
MiB, GiB = 1 << 20, 1 << 30
MAX_GUEST_MEM = 128 * GiB        # per-page state is ~36 bytes of numpy arrays: ~1.2 GB at this size
RAM_SLOTS = (0, 2)               # memslot ids of the RAM below the hole and above 4 GiB


def ram_layout(guest_mem: int) -> list[tuple[int, int]]:
    """Guest RAM as (first gfn, pages) ranges, lowest first: the e820 map the firmware gives the guest.

    Mirrors what QEMU's pc machine does (hw/i386/pc_piix.c: ``below_4g_mem_size``
    and ``above_4g_mem_size``), with the threshold where this model's layout
    always was: RAM that fits below the MMIO hole is one range from gfn 0.
    """
    pages = guest_mem >> abi.PAGE_SHIFT
    if pages <= MMIO_BASE_GFN:
        return [(0, pages)]
    return [(0, BIG_GUEST_LOW_GFN), (HIGH_RAM_GFN, pages - BIG_GUEST_LOW_GFN)]


def load_costs(era: str) -> dict[str, int]:
    table = load_json("kvm_costs.json")
    eras = sorted(k for k in table if not k.startswith("_"))
    if era not in eras:
        raise ValueError(f"unknown cost era {era!r}; expected one of {eras}")
    return {name: int(entry["value"]) for name, entry in table[era].items()}


PAGE_MULTIPLE = multiple_of(abi.PAGE_SIZE, f"the {abi.PAGE_SIZE}-byte page size")


@dataclass(frozen=True)
class HostConfig(Validated):
    """Everything that shapes a host run; :meth:`validate` refuses bad values by name."""

    generation: str = setting("legacy", looked_up(abi.generation))
    async_pf: bool = True              # False: the unpatched host (no CONFIG_KVM_ASYNC_PF)
    vcpus: int = setting(1, POSITIVE, at_most(64))
    guest_mem: int = setting(64 * MiB, POSITIVE, PAGE_MULTIPLE,
                             at_most(MAX_GUEST_MEM, " bytes (128 GiB)"))
    host_limit: int = setting(16 * MiB, POSITIVE, PAGE_MULTIPLE)   # memory cgroup limit of the VMM
    swap_device: str | dict = "hdd_7200_2010"                      # a name in data/, or a device description
    swap_latency_ns: int | None = setting(None, NONE_OR_POSITIVE)  # mean 4 KiB read (ns); None = the device's own
    reclaim: str = setting("clock", one_of("clock", "lru"))
    workers: int | None = setting(None, NONE_OR_POSITIVE)          # None: a worker per queued item (cmwq)
    mmio_pages: int = setting(16, ZERO_OR_POSITIVE)
    costs: str = setting("2010", looked_up(load_costs))
    seed: int = setting(0, INTEGER)
    # hostsched: host CPUs and their scheduler (asyncpf.host.hostsched); None = a CPU per host thread, free switches
    host_cpus: int | None = setting(None, NONE_OR_POSITIVE)
    host_sched_costs: bool = True      # context switch and preempt-notifier load/put costs (data/host_sched.json)
    bound_workers: bool = True         # 2.6.38/6.18 async PF work runs on the queuing CPU's kworker (seed: never)

    def check_together(self) -> None:
        SwapDevice(Environment(0), self.swap_device, mean_read_ns=self.swap_latency_ns)  # refuses bad pairs


class Machine:
    """One host running one VM.

    ``guest`` is either a factory ``guest(vcpu_id) -> GuestCpu`` or an object
    with ``attach(machine)`` and ``cpu(vcpu_id)`` (the guest kernel), which is
    attached once the engine exists and before the vcpus are built.
    """

    def __init__(self, config: HostConfig, guest: Any, *,
                 trace: bool = True, policy: ChoicePolicy | None = None):
        config.validate()
        self.config = config
        self.gen = abi.generation(config.generation)
        self.env = env = Environment(config.seed, policy)
        self.tracer = Tracer(self.gen) if trace else None
        env.tracer = self.tracer
        self.swap = SwapDevice(env, config.swap_device, mean_read_ns=config.swap_latency_ns)
        self.mm = HostMemory(env, limit_pages=config.host_limit >> abi.PAGE_SHIFT, swap=self.swap,
                             reclaim=config.reclaim)
        self.guest_pages = config.guest_mem >> abi.PAGE_SHIFT
        self.kvm = kvm = Kvm(env, self.gen, self.mm, async_pf=config.async_pf, costs=load_costs(config.costs))
        ram = self.mm.mmap_anon(self.guest_pages, "guest-ram")
        self.ram_ranges = ram_layout(config.guest_mem)
        offset = 0
        for slot_id, (base_gfn, npages) in zip(RAM_SLOTS, self.ram_ranges):
            kvm_set_memory_region(kvm, slot_id, base_gfn, npages, ram.start + (offset << abi.PAGE_SHIFT))
            offset += npages
        if config.mmio_pages:
            bar = self.mm.mmap_pfnmap(config.mmio_pages, MMIO_HOST_PFN, "bar0")
            kvm_set_memory_region(kvm, 1, MMIO_BASE_GFN, config.mmio_pages, bar.start)
        self.workqueue = Workqueue(env, self.gen.worker_comm, config.workers)
        kvm.hostsched = None  # hostsched: modelled only when host_cpus is given (attached once the vcpus exist)
        self.guest = guest
        if hasattr(guest, "attach"):
            guest.attach(self)
        guest_factory: Callable[[int], GuestCpu] = guest.cpu if hasattr(guest, "cpu") else guest
        for i in range(config.vcpus):
            vcpu = KvmVcpu(kvm, i, guest_factory(i), self.workqueue)
            vcpu.arch.cpuid_features = self.gen.cpuid_features if config.async_pf else 0
            kvm.vcpus.append(vcpu)
        if config.host_cpus is not None:  # hostsched
            from .host.hostsched import attach
            attach(self, config.host_cpus, costs=config.host_sched_costs,
                   bound_workers=config.bound_workers and self.gen.name != "seed")
        self.shut_down = False
        self.started_at = 0

    @property
    def vcpus(self) -> list[KvmVcpu]:
        return self.kvm.vcpus

    def prefault(self, first_gfn: int, npages: int) -> "Machine":
        """Touch guest pages once from the host side and let write-back finish.

        Stands in for a guest that wrote every page of a buffer before the
        measured phase (bm's memset): the pages exist, and what does not fit
        in the cgroup has been written to swap.  Time moves on; accounting
        starts at :meth:`start`.
        """
        if npages <= 0 or not any(base <= first_gfn and first_gfn + npages <= base + n
                                  for base, n in self.ram_ranges):
            ranges = ", ".join(f"{base}..{base + n}" for base, n in self.ram_ranges)
            raise ValueError(f"gfns {first_gfn}+{npages} are not inside guest RAM ({ranges})")
        base = gfn_to_hva(self.kvm, first_gfn)
        mm = self.mm
        done = 0
        while done < npages:  # minor faults in bulk; one blocking GUP per page that needs a read
            done += mm.make_pages_present(base + (done << abi.PAGE_SHIFT), npages - done, True)
            if done < npages:  # swapped out earlier: bring it back to dirty it
                proc = self.env.process(mm.get_user_pages(base + (done << abi.PAGE_SHIFT), True), "prefault")
                self.env.run()
                mm.put_page(proc.value)
                done += 1
        self.env.run()
        return self

    def start(self) -> "Machine":
        for vcpu in self.vcpus:
            vcpu.restart_account()
            vcpu.start()
        self.started_at = self.env.now
        return self

    def reset_accounts(self) -> None:
        """Start the per-vcpu time split afresh (e.g. when a measured phase begins)."""
        for vcpu in self.vcpus:
            vcpu.flush_account()
            vcpu.restart_account()

    def flush_accounts(self) -> None:
        for vcpu in self.vcpus:
            vcpu.flush_account()

    def run(self, until_ns: int | None = None) -> "Machine":
        self.env.run(until_ns)
        return self

    def shutdown(self) -> None:
        """kvm_destroy_vm: stop the vcpus, clear every queue, let workers drain; then run dry."""
        def destroy():
            yield from x86.kvm_arch_destroy_vm(self.kvm)
            wq = self.workqueue
            while wq.pending or wq.running:  # slow_work_unregister_user / flush: drain the pool
                work = wq.pending[0] if not wq.running else next(iter(wq.running.values()))[0]
                yield work.finished
            for vcpu in self.vcpus:  # the seed's clear only frees what is on done
                yield from vcpu.kvm.twins.kvm_clear_async_pf_completion_queue(vcpu)

        self.flush_accounts()
        self.env.process(destroy(), "kvm_destroy_vm")
        self.env.run()
        self.shut_down = True

    def leaks(self) -> list[str]:
        """Everything not given back after :meth:`shutdown` (empty when the run is clean)."""
        kvm, stat = self.kvm, self.kvm.stat
        out = []
        if stat.async_pf_allocated != stat.async_pf_freed:
            out.append(f"work items: {stat.async_pf_allocated} allocated, {stat.async_pf_freed} freed")
        kept = stat.cancel_leaked_refs  # the generation's own leak (KNOWN_LEAKS): expected, reported by known_leaks
        if kvm.users_count != 1 + kept:
            out.append(f"kvm users_count is {kvm.users_count}, expected {1 + kept}")
        if stat.mm_count != kept:
            out.append(f"{stat.mm_count - kept} mm references still held by work items")
        if self.mm.total_page_refs:
            out.append(f"{self.mm.total_page_refs} page references still held")
        for vcpu in self.vcpus:
            if vcpu.proc is not None and vcpu.proc.is_alive:
                out.append(f"vcpu{vcpu.vcpu_id}: its thread is still in KVM_RUN after kvm_destroy_vm")
            apf = vcpu.async_pf
            if apf.queue or apf.done or apf.queued:
                out.append(f"vcpu{vcpu.vcpu_id}: queue={len(apf.queue)} done={len(apf.done)} queued={apf.queued}")
            guest_leaks = getattr(vcpu.guest, "leaks", None)
            if guest_leaks is not None:
                out += [f"vcpu{vcpu.vcpu_id} guest: {text}" for text in guest_leaks()]
        kernel_leaks = getattr(self.guest, "leaks", None)
        if kernel_leaks is not None:
            out += [f"guest: {text}" for text in kernel_leaks()]
        if self.workqueue.pending or self.workqueue.running:
            out.append("workqueue not idle")
        out += [f"mm: {text}" for text in self.mm.check()]
        return out

    def known_leak_names(self) -> list[str]:
        """The generation's own leaks (``asyncpf.check.known.KNOWN_LEAKS``) this run reproduced, by name."""
        from .check.known import KNOWN_LEAKS
        return [name for name in KNOWN_LEAKS if getattr(self.kvm.stat, name)]

    def known_leaks(self) -> list[str]:
        """References the generation itself never gave back (``asyncpf.check.known.KNOWN_LEAKS``), with the fix."""
        from .check.known import KNOWN_LEAKS
        return [f"{getattr(self.kvm.stat, name)} x {name}: {KNOWN_LEAKS[name].why} "
                f"[{KNOWN_LEAKS[name].source}; {KNOWN_LEAKS[name].fix}]" for name in self.known_leak_names()]

    def account(self) -> dict[int, dict[str, int]]:
        """Per-vcpu time split (ns): guest, host, stalled, halted, idle."""
        return {v.vcpu_id: dict(v.acct) for v in self.vcpus}
