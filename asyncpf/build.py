"""One way to build a machine: the guest kernel booted on a host, or a host whose vcpus run the stand-in guest.

:func:`boot_guest` is the set-up bm, the scenarios, the notebooks, the
checker and the tests share: a :class:`~asyncpf.machine.Machine` whose vcpus
run the guest kernel (:class:`~asyncpf.guest.kernel.GuestKernel`, one guest
cpu per vcpu), optionally with a buffer the guest wrote once before (its
pages exist; what does not fit in the memory cgroup is on swap), booted: the
guest registers async PF and takes the boot wake-all, and accounting starts
when the boot ends.  It returns a :class:`Booted` handle -- the machine, the
kernel, the buffer -- with what every caller does next: find swapped-out
pages of the buffer, spawn tasks that map it, run until tasks exited.
:func:`small_guest` is the small set-up of the scenarios and notebook 05.

:func:`standin_machine` is the host-only machine of the host tests and
notebooks 00-04 and 08: vcpus running the scripted stand-in guest
(:mod:`asyncpf.standin`), nothing started.  :func:`make_resident` and
:func:`make_swapped` put host pages in the state a set-up starts from.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from . import abi
from .guest.kernel import AddressSpace, GuestConfig, GuestKernel, Task
from .guest.sched import TASK_DEAD
from .host.kvm_main import gfn_to_hva
from .host.mm import PageState
from .machine import HostConfig, Machine
from .sim import ChoicePolicy
from .standin import Script, ScriptedGuest
from .workloads import Array, Program, shared_array

MiB = 1 << 20
BOOT_NS = 20_000_000   # time to boot: the guest registers async PF and takes the boot wake-all


class Booted(NamedTuple):
    """A machine running the guest kernel, booted; ``array`` is the buffer written before the boot (or None)."""

    machine: Machine
    kernel: GuestKernel
    array: Array | None

    def swapped(self, n: int, start: int = 0) -> list[int]:
        """``n`` buffer gfns that are swapped out on the host now (lowest first, from buffer page ``start``)."""
        m, array = self.machine, self.array
        out = [gfn for gfn in range(array.gfn + start, array.gfn + array.pages)
               if m.mm.page_state(gfn_to_hva(m.kvm, gfn)) == PageState.SWAPPED][:n]
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} swapped pages, wanted {n}")
        return out

    def gva(self, gfn: int) -> int:
        """Where buffer frame ``gfn`` is mapped in a task's address space."""
        return self.array.gva + ((gfn - self.array.gfn) << abi.PAGE_SHIFT)

    def address_space(self) -> AddressSpace:
        """A fresh address space with the buffer mapped (empty if there is no buffer)."""
        mm = AddressSpace()
        if self.array is not None:
            self.array.map_into(mm)
        return mm

    def spawn(self, comm: str, program: Program, cpu: int = 0, mm: AddressSpace | None = None) -> Task:
        """A task running ``program`` on ``cpu``, in ``mm`` (default: its own address space with the buffer)."""
        return self.kernel.spawn(comm, program, cpu, mm if mm is not None else self.address_space())

    def run_until_exited(self, tasks: list[Task], limit_ns: int,
                         run: Callable[[int], Any] | None = None) -> list[Task]:
        """Run (``run(until_ns)``, default ``Machine.run``) in 1 ms steps until every one of ``tasks``
        exited or ``limit_ns`` passed; those still alive."""
        m = self.machine
        run = m.run if run is None else run
        end = m.env.now + limit_ns
        while any(t.state != TASK_DEAD for t in tasks) and m.env.now < end:
            run(min(m.env.now + 1_000_000, end))
        return [t for t in tasks if t.state != TASK_DEAD]


def boot_guest(host: HostConfig, guest: GuestConfig = GuestConfig(), *, array_pages: int = 0,
               boot_ns: int = BOOT_NS, trace: bool = True, policy: ChoicePolicy | None = None,
               before_boot: Callable[[Machine], None] | None = None,
               make_machine: Callable[..., Machine] = Machine) -> Booted:
    """Build ``host`` running a guest kernel of ``guest`` and boot it for ``boot_ns``.

    ``array_pages``: a buffer of that many frames the guest wrote once
    before (``Machine.prefault``).  ``trace`` keeps the ftrace text;
    ``policy`` picks among simultaneous steps (the checker's choice policy).
    ``before_boot(machine)`` runs once the machine exists, before anything
    runs on it (hook the tracer, change costs, attach a checker, set pages).
    ``make_machine`` is called as ``Machine`` is (a caller's own factory).
    """
    kernel = GuestKernel(guest)
    machine = make_machine(host, kernel, trace=trace, policy=policy)
    if before_boot is not None:
        before_boot(machine)
    array = None
    if array_pages:
        array = shared_array(kernel, array_pages)
        machine.prefault(array.gfn, array.pages)
    machine.start()
    machine.run(machine.env.now + boot_ns)
    machine.reset_accounts()
    return Booted(machine, kernel, array)


SMALL_GUEST_HOST = HostConfig(guest_mem=8 * MiB, host_limit=1 * MiB, swap_device="nvme_gen4")
SMALL_GUEST_ARRAY_PAGES = 512   # in a 1 MiB cgroup the first 256 pages end up swapped out


def small_guest(guest: GuestConfig = GuestConfig(), *, trace: bool = True,
                before_boot: Callable[[Machine], None] | None = None,
                make_machine: Callable[..., Machine] = Machine, **host: object) -> Booted:
    """8 MiB of guest RAM in a 1 MiB cgroup, NVMe swap, a 512-page buffer half on swap, booted for 20 ms.

    ``host`` changes :data:`SMALL_GUEST_HOST` (``vcpus=2``, ``swap_device=...``, ``seed=...``).
    """
    return boot_guest(SMALL_GUEST_HOST.replace(**host), guest, array_pages=SMALL_GUEST_ARRAY_PAGES, trace=trace,
                      before_boot=before_boot, make_machine=make_machine)


# --- the host with the stand-in guest --------------------------------------------------------------

SMALL_HOST = HostConfig(guest_mem=4 * MiB, host_limit=1 * MiB, swap_device="nvme_gen4", seed=1)


def standin_machine(host: HostConfig = SMALL_HOST, scripts: dict[str, list[tuple[int, int]]] | None = None, *,
                    pv: bool = False, send_always: bool = False) -> Machine:
    """``host`` whose vcpus each run a stand-in guest with its own copy of ``scripts`` (name -> steps); not started."""
    plans = scripts or {}
    return Machine(host, lambda vcpu_id: ScriptedGuest([Script(name, list(s)) for name, s in plans.items()],
                                                       pv=pv, send_always=send_always))


def make_resident(m: Machine, *gfns: int) -> None:
    """Fault ``gfns`` in from the host side (they are resident, unreferenced, without an spte)."""
    for g in gfns:
        m.mm.put_page(m.mm.get_user_pages_nowait(gfn_to_hva(m.kvm, g), True))


def make_swapped(m: Machine, *gfns: int) -> None:
    """Touch ``gfns``, evict them and let the write-back land (they must be the only resident pages)."""
    make_resident(m, *gfns)
    if m.mm.reclaim(len(gfns)) != len(gfns):
        raise ValueError(f"could not evict {gfns}: other pages are resident")
    m.env.run()
    kept = [g for g in gfns if m.mm.page_state(gfn_to_hva(m.kvm, g)) != PageState.SWAPPED]
    if kept:
        raise ValueError(f"gfns {kept} are not swapped out after reclaim")
