"""The guest's async PF in the interrupt era: ``arch/x86/kernel/kvm.c@v6.18``.

Registration writes the page-ready vector to MSR_KVM_ASYNC_PF_INT before it
enables MSR_KVM_ASYNC_PF_EN with DELIVERY_AS_INT (never SEND_ALWAYS: since 5.8
a not-present may only hit user mode).  The #PF entry asks
``kvm_handle_async_pf`` first; a task waits by sleeping only (the halting
variant is gone).  Page-ready arrives as ``sysvec_kvm_asyncpf_interrupt``:
EOI, wake, clear the token word, write the ACK MSR.  The sleeper hash, wake and
wake-all are the 2.6.38 ones (``asyncpf.guest.kvm``) with the same results.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Generator

from .. import abi
from ..abi import (HYPERVISOR_CALLBACK_VECTOR, KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_ENABLED,
                   KVM_FEATURE_ASYNC_PF_INT, KVM_FEATURE_ASYNC_PF_VMEXIT, KVM_PV_REASON_PAGE_NOT_PRESENT)
from ..host.interrupt import x86 as host_x86
from ..host.kvm_main import read_guest_bytes, write_guest_bytes
from ..host.vcpu import Compute, WrMsr
from ..mirrors import mirrors
from . import kvm, sched
from .kvm import KvmTaskSleepNode
from .ops import Cli, Schedule, Sti

if TYPE_CHECKING:
    from .kernel import GuestCpu

TOKEN_OFFSET = 4


def _has_feature(cpu: "GuestCpu", bit: int) -> bool:
    return bool(cpu.vcpu.arch.cpuid_features & (1 << bit))


@mirrors("arch/x86/kernel/kvm.c", "kvm_guest_cpu_init", generations="interrupt")
def kvm_guest_cpu_init(cpu: "GuestCpu") -> Generator:
    """Register this cpu: MSR_KVM_ASYNC_PF_INT = the callback vector, then EN = pa | ENABLED | DELIVERY_AS_INT.

    Only with KVM_FEATURE_ASYNC_PF_INT (and no "no-kvmapf"); PF_VMEXIT is
    added when the host offers it.  wrmsrq's result is not looked at: a
    refused write is a #GP the exception table fixes up (WRMSR_FIXUP), and
    the cpu counts as enabled all the same.
    """
    if not cpu.kernel.config.pv or not _has_feature(cpu, KVM_FEATURE_ASYNC_PF_INT):
        return
    data = cpu.apf_gpa | KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT
    if _has_feature(cpu, KVM_FEATURE_ASYNC_PF_VMEXIT):
        data |= abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT
    spec = cpu.kernel.abi
    yield WrMsr(spec.msr_async_pf_int, HYPERVISOR_CALLBACK_VECTOR)
    yield WrMsr(spec.msr_async_pf_en, data)
    cpu.apf_enabled = True


@mirrors("arch/x86/kernel/kvm.c", "kvm_read_and_reset_apf_flags", generations="interrupt")
def kvm_read_and_reset_apf_flags(cpu: "GuestCpu") -> int:
    """Read this cpu's ``flags`` word and reset it to 0 (0 when async PF is off here)."""
    if not cpu.apf_enabled:
        return 0
    machine_kvm = cpu.vcpu.kvm
    flags = int.from_bytes(read_guest_bytes(machine_kvm, cpu.apf_gpa, 4), "little")
    write_guest_bytes(machine_kvm, cpu.apf_gpa, bytes(4))
    return flags


@mirrors("arch/x86/mm/fault.c", "exc_page_fault", generations="interrupt")
def exc_page_fault(cpu: "GuestCpu", saved: tuple[int, bool], cr2: int, error_code: int) -> Generator:
    """The #PF vector: an async PF (kvm_handle_async_pf) or an ordinary fault.

    Simplification: the entry costs ``pf_entry_ns``.
    """
    from .kernel import do_page_fault
    handled = yield from __kvm_handle_async_pf(cpu, saved, cr2 & abi.U32)
    if not handled:
        yield from do_page_fault(cpu, saved, cr2, error_code)


@mirrors("arch/x86/kernel/kvm.c", "__kvm_handle_async_pf", generations="interrupt")
def __kvm_handle_async_pf(cpu: "GuestCpu", saved: tuple[int, bool], token: int) -> Generator:
    """Flags 0: not ours (False).  Else it is fatal with IF=0 or in kernel mode; user mode waits for the page.

    Unknown flags only warn.
    """
    flags = kvm_read_and_reset_apf_flags(cpu)
    yield Compute(cpu.params["pf_entry_ns"])
    if not flags:
        return False
    saved_cpl, saved_if = saved
    if not saved_if:
        cpu.panic("Host injected async #PF in interrupt disabled region")
        return True
    if flags & KVM_PV_REASON_PAGE_NOT_PRESENT:
        if saved_cpl != 3:
            cpu.panic("Host injected async #PF in kernel mode")
            return True
        cpu.stats["apf_not_present"] += 1
        yield from kvm_async_pf_task_wait_schedule(cpu, token)
    else:
        cpu.stats[f"apf_unexpected_flags_{flags:#x}"] += 1
    return True


@mirrors("arch/x86/kernel/kvm.c", "kvm_async_pf_task_wait_schedule", generations="interrupt")
def kvm_async_pf_task_wait_schedule(cpu: "GuestCpu", token: int) -> Generator:
    """Sleep until the page behind ``token`` is ready (kvm_async_pf_queue_task, then schedule until unhashed).

    A dummy node for the token means the wake came first: it is unlinked
    and freed, and the task goes on at once.
    Simplification: the bucket lock is implicit.
    """
    kernel = cpu.kernel
    task = cpu.curr
    bucket = kvm._bucket(cpu, token)
    dummy = kvm._find_apf_task(bucket, token)
    if dummy is not None:
        bucket.remove(dummy)
        kernel.stats["dummies_consumed"] += 1
        return
    node = KvmTaskSleepNode(token, cpu.id, task=task)
    bucket.insert(0, node)
    kernel.stats["sleeps"] += 1
    while True:
        task.state = sched.TASK_UNINTERRUPTIBLE
        if node not in bucket:
            break
        yield Sti()
        yield Compute(cpu.params["context_switch_ns"])
        yield Schedule()
        yield Cli()
    task.state = sched.TASK_RUNNING


@mirrors("arch/x86/kernel/kvm.c", "sysvec_kvm_asyncpf_interrupt", generations="interrupt")
def sysvec_kvm_asyncpf_interrupt(cpu: "GuestCpu", saved: tuple[int, bool]) -> Generator:
    """Page-ready: (EOI done at entry) read the token word, wake its task, clear the word, write 1 to the ACK MSR."""
    cpu.stats["apf_ready_irqs"] += 1
    if not cpu.apf_enabled:
        return
    machine_kvm = cpu.vcpu.kvm
    token = int.from_bytes(read_guest_bytes(machine_kvm, cpu.apf_gpa + TOKEN_OFFSET, 4), "little")
    cpu.stats["apf_ready"] += 1
    kvm.kvm_async_pf_task_wake(cpu, token)
    write_guest_bytes(machine_kvm, cpu.apf_gpa + TOKEN_OFFSET, bytes(4))
    yield WrMsr(cpu.kernel.abi.msr_async_pf_ack, 1)


@mirrors("arch/x86/kernel/kvm.c", "kvm_pv_disable_apf", generations="interrupt")
def kvm_pv_disable_apf(cpu: "GuestCpu") -> Generator:
    """Unregister this cpu: EN = 0 and the cpu no longer counts as enabled (the area's ``enabled`` is not written).

    Simplification: steal time, PV EOI and kvmclock are not modelled.
    """
    if not cpu.apf_enabled:
        return
    yield WrMsr(cpu.kernel.abi.msr_async_pf_en, 0)
    cpu.apf_enabled = False


@mirrors("arch/x86/kernel/kvm.c", "kvm_guest_cpu_offline", generations="interrupt")
def kvm_guest_cpu_offline(cpu: "GuestCpu", shutdown: bool = False) -> Generator:
    """A cpu going down (CPU_DOWN_PREPARE, suspend) or the machine going away (reboot, kexec: ``shutdown``).

    Async PF is switched off; waiters of this cpu are woken unless the
    machine shuts down (a reboot or kexec kernel must not run them).
    """
    yield from kvm_pv_disable_apf(cpu)
    if not shutdown:
        kvm.apf_task_wake_all(cpu)


# A refused WRMSR is a #GP that arch/x86/mm/extable.c's ex_handler_msr fixes up ("unchecked MSR access error").
WRMSR_FIXUP = True

# Where the #PF vector and the PV interrupt vectors lead, as (module, name): looked up at each
# event so that a patched twin (a mutant) is the one that runs.
_THIS = sys.modules[__name__]
PF_ENTRY = (_THIS, "exc_page_fault")
INTERRUPT_HANDLERS = {HYPERVISOR_CALLBACK_VECTOR: (_THIS, "sysvec_kvm_asyncpf_interrupt")}
SLEEPER_HASH = host_x86.hash_32   # include/linux/hash.h@v6.18 (the v4.7 multiplier)
