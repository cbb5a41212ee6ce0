"""The guest side of async PF: registration, the #PF entry, the sleeper hash, wait and wake.

The parts of ``arch/x86/kernel/kvm.c`` (2.6.38) the modelled generations
share; the seed series had the same shape behind a different MSR and area
layout, which the ABI object supplies.  Registration differs per generation
(``asyncpf.guest.seed``, ``asyncpf.guest.legacy``, reached as ``kernel.twins``).

A task that gets "page not present" for token T sleeps on a node in a
256-bucket hash keyed by T -- or, when it cannot schedule (the idle task, or
preemption disabled), halts the cpu with interrupts on.  "Page ready" for T
wakes the node's task; when it comes first, a *dummy* node is left so the
later wait returns at once.  Token ~0 wakes every node of this cpu.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generator

from .. import abi
from ..abi import KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from ..host.kvm_main import read_guest_bytes, write_guest_bytes
from ..host import x86 as host_x86
from ..host.vcpu import Compute, WrMsr
from ..mirrors import mirrors
from . import sched
from .ops import Cli, SafeHalt, Schedule, Sti

if TYPE_CHECKING:
    from .kernel import GuestCpu
    from .sched import Task

KVM_TASK_SLEEP_HASHBITS = 8
KVM_TASK_SLEEP_HASHSIZE = 1 << KVM_TASK_SLEEP_HASHBITS


@dataclass(eq=False)
class KvmTaskSleepNode:
    """``struct kvm_task_sleep_node`` (2.6.38): ``task`` None marks a dummy (the kernel's ``mm == NULL``)."""

    token: int
    cpu: int
    halted: bool = False
    task: "Task | None" = None

    def __repr__(self) -> str:
        who = "dummy" if self.task is None else f"task {self.task.pid}"
        return f"<KvmTaskSleepNode {self.token:#x} cpu{self.cpu} {who}{' halted' if self.halted else ''}>"


def new_sleeper_table() -> list[list[KvmTaskSleepNode]]:
    """``async_pf_sleepers[KVM_TASK_SLEEP_HASHSIZE]``: one hlist per bucket (head insertion)."""
    return [[] for _ in range(KVM_TASK_SLEEP_HASHSIZE)]


def all_nodes(table: list[list[KvmTaskSleepNode]]) -> list[KvmTaskSleepNode]:
    # bucket by bucket; the checker walks the 256 buckets after every explored step, and filter skips the empty
    # ones in C (3.7 us here, against 15 us for itertools.chain over all of them and ~60 us for a Python loop)
    return [node for bucket in filter(None, table) for node in bucket]


def _bucket(cpu: "GuestCpu", token: int) -> list[KvmTaskSleepNode]:
    # the generation's hash_32: hash.h changed its multiplier in v4.7
    return cpu.kernel.sleepers[cpu.kernel.twins.SLEEPER_HASH(token & abi.U32, KVM_TASK_SLEEP_HASHBITS)]


@mirrors("arch/x86/kernel/kvm.c", "_find_apf_task")
def _find_apf_task(bucket: list[KvmTaskSleepNode], token: int) -> KvmTaskSleepNode | None:
    """The node waiting for (or left for) ``token`` in its bucket.

    Simplification: the bucket lock is implicit (no yield while held).
    """
    for node in bucket:
        if node.token == token:
            return node
    return None


def register_apf_area(cpu: "GuestCpu", data: int) -> Generator:
    """The tail of the #PF-era kvm_guest_cpu_init (seed, 2.6.38): WRMSR the area, then mark this cpu enabled.

    A refused write (#GP) oopses there -- 2.6.3x's wrmsrl has no fixup, so the model's guest panics before the
    refused branch runs; the branch serves a guest whose WRMSR is fixed up.  (6.18's guest has its own init.)
    """
    refused = yield WrMsr(cpu.kernel.abi.msr_async_pf_en, data)
    if refused:
        cpu.stats["apf_msr_refused"] += 1
        return
    cpu.apf_enabled = True
    write_guest_bytes(cpu.vcpu.kvm, cpu.apf_gpa + _enabled_offset(cpu.kernel.abi), (1).to_bytes(4, "little"))


def apf_feature(cpu: "GuestCpu") -> bool:
    """``kvm_para_has_feature(KVM_FEATURE_ASYNC_PF)`` on a PV kernel (no "no-kvmapf" on its command line)."""
    return cpu.kernel.config.pv and bool(cpu.vcpu.arch.cpuid_features & (1 << cpu.kernel.abi.kvm_feature_async_pf))


def _enabled_offset(spec: abi.Generation) -> int:
    return spec.area_size - 4


def _area_enabled(cpu: "GuestCpu") -> bool:
    """``apf_reason.enabled`` as the #PF-era guest tests it: the last u32 of its own area, in guest memory."""
    return read_guest_bytes(cpu.vcpu.kvm, cpu.apf_gpa + _enabled_offset(cpu.kernel.abi), 4) != bytes(4)


@mirrors("arch/x86/kernel/kvm.c", "kvm_pv_disable_apf")
def kvm_pv_disable_apf(cpu: "GuestCpu") -> Generator:
    """Unregister: WRMSR 0 and clear ``enabled`` (cpu going offline, reboot)."""
    if not _area_enabled(cpu):
        return
    yield WrMsr(cpu.kernel.abi.msr_async_pf_en, 0)
    cpu.apf_enabled = False
    write_guest_bytes(cpu.vcpu.kvm, cpu.apf_gpa + _enabled_offset(cpu.kernel.abi), bytes(4))


@mirrors("arch/x86/kernel/kvm.c", "kvm_guest_cpu_offline")
def kvm_guest_cpu_offline(cpu: "GuestCpu") -> Generator:
    """CPU_DOWN_PREPARE on this cpu: stop async PF, then wake everything that waits here.

    Simplification: the cpu itself stays in the model; its tasks are not migrated.
    """
    yield from kvm_pv_disable_apf(cpu)
    apf_task_wake_all(cpu)


@mirrors("arch/x86/kernel/kvm.c", "kvm_read_and_reset_pf_reason")
def kvm_read_and_reset_pf_reason(cpu: "GuestCpu") -> int:
    """Read the reason word of this cpu's area and reset it to 0 (0 if the area's ``enabled`` is clear)."""
    if not _area_enabled(cpu):
        return 0
    kvm = cpu.vcpu.kvm
    reason = int.from_bytes(read_guest_bytes(kvm, cpu.apf_gpa, 4), "little")
    write_guest_bytes(kvm, cpu.apf_gpa, bytes(4))
    return reason


@mirrors("arch/x86/kernel/kvm.c", "do_async_page_fault")
def do_async_page_fault(cpu: "GuestCpu", saved: tuple[int, bool], cr2: int, error_code: int) -> Generator:
    """The #PF entry of a PV guest: dispatch on the reason word.

    Simplification: the entry costs ``pf_entry_ns``.
    """
    from .kernel import do_page_fault
    reason = kvm_read_and_reset_pf_reason(cpu)
    yield Compute(cpu.params["pf_entry_ns"])
    token = cr2 & abi.U32
    if reason == KVM_PV_REASON_PAGE_NOT_PRESENT:
        cpu.stats["apf_not_present"] += 1
        yield from kvm_async_pf_task_wait(cpu, token)
    elif reason == KVM_PV_REASON_PAGE_READY:
        cpu.stats["apf_ready"] += 1
        kvm_async_pf_task_wake(cpu, token)
    else:
        yield from do_page_fault(cpu, saved, cr2, error_code)


@mirrors("arch/x86/kernel/kvm.c", "kvm_async_pf_task_wait")
def kvm_async_pf_task_wait(cpu: "GuestCpu", token: int) -> Generator:
    """Wait until the page behind ``token`` is ready: sleep and schedule, or halt if we cannot.

    Simplification: the bucket lock is implicit; the caller's preempt_count
    is the task's own (the lock's +1 is not counted).
    """
    kernel = cpu.kernel
    task = cpu.curr
    bucket = _bucket(cpu, token)
    dummy = _find_apf_task(bucket, token)
    if dummy is not None:
        bucket.remove(dummy)
        kernel.stats["dummies_consumed"] += 1
        return
    node = KvmTaskSleepNode(token, cpu.id, halted=task.is_idle or task.preempt_count > 0, task=task)
    bucket.insert(0, node)
    kernel.stats["sleeps" if not node.halted else "halted_waits"] += 1
    while True:
        if not node.halted:
            task.state = sched.TASK_UNINTERRUPTIBLE
        if node not in bucket:
            break
        if node.halted:
            yield SafeHalt()
            yield Cli()
        else:
            yield Sti()
            yield Compute(cpu.params["context_switch_ns"])
            yield Schedule()
            yield Cli()
    task.state = sched.TASK_RUNNING


@mirrors("arch/x86/kernel/kvm.c", "apf_task_wake_one")
def apf_task_wake_one(cpu: "GuestCpu", node: KvmTaskSleepNode) -> None:
    """Unhash a node and wake whoever waits on it (a dummy has nobody)."""
    bucket = _bucket(cpu, node.token)
    if node in bucket:
        bucket.remove(node)
    if node.task is None:
        return
    if node.halted:
        cpu.kernel.cpus[node.cpu].smp_send_reschedule()
    else:
        sched.try_to_wake_up(cpu, node.task)


@mirrors("arch/x86/kernel/kvm.c", "apf_task_wake_all")
def apf_task_wake_all(cpu: "GuestCpu") -> None:
    """Wake every node registered from this cpu (token ~0, cpu offline).

    Simplification: buckets are walked in index order.
    """
    for bucket in cpu.kernel.sleepers:
        for node in [n for n in bucket if n.cpu == cpu.id]:
            if node.task is None:
                cpu.kernel.stats["dummies_dropped"] += 1
            apf_task_wake_one(cpu, node)


@mirrors("arch/x86/kernel/kvm.c", "kvm_async_pf_task_wake")
def kvm_async_pf_task_wake(cpu: "GuestCpu", token: int) -> None:
    """Page ready for ``token``: wake its waiter, or leave a dummy node if nobody waits yet.

    Simplification: the GFP_ATOMIC allocation never fails (2.6.38 spins and retries).
    """
    if token == abi.BROADCAST_TOKEN:
        apf_task_wake_all(cpu)
        return
    bucket = _bucket(cpu, token)
    node = _find_apf_task(bucket, token)
    if node is None:
        bucket.insert(0, KvmTaskSleepNode(token, cpu.id))
        cpu.kernel.stats["dummies_created"] += 1
    else:
        apf_task_wake_one(cpu, node)


# Where the #PF vector and the PV interrupt vectors lead in the seed and 2.6.38 guests, as (module, name):
# looked up at each event so that a patched twin (a mutant) is the one that runs.
PF_ERA_ENTRY = (sys.modules[__name__], "do_async_page_fault")
PF_ERA_HANDLERS: dict = {}
# 2.6.3x wrmsrl has no exception-table entry: a refused WRMSR oopses (the model panics)
PF_ERA_WRMSR_FIXUP = False
# the sleeper hash's hash_32: include/linux/hash.h of the 2.6.3x kernels
PF_ERA_SLEEPER_HASH = host_x86.hash_32
