"""Preempt notifiers: the scheduler tells KVM when a vcpu thread leaves or gets a CPU.

What merged (Linux 2.6.23, ``kernel/sched.c`` + ``virt/kvm/kvm_main.c``, as in
v2.6.38): ``vcpu_load`` -- at the start of every vcpu ioctl, KVM_RUN among
them -- registers a ``preempt_notifier`` on the current task and loads the
vcpu (``kvm_arch_vcpu_load``); ``vcpu_put`` puts it and unregisters.  In
between, ``context_switch`` fires the task's notifiers: switching away calls
``kvm_sched_out`` -> ``kvm_arch_vcpu_put`` (VMX: reload the host's lazily
switched state, put the guest FPU, remember the TSC), switching back calls
``kvm_sched_in`` -> ``kvm_arch_vcpu_load`` on whatever CPU the task landed on
(VMX: VMPTRLD if this CPU's current VMCS is another; when the CPU changed,
VMCLEAR on the old CPU by IPI first, new host TR/GDT/SYSENTER values, a TLB
flush, and the TSC check: if the TSC is unstable the guest's offset is moved
back by the time the vcpu was away, so guest time does not jump).  So KVM
code may sleep -- the synchronous ``gfn_to_pfn`` stall, ``kvm_vcpu_block``
for HLT and the APF halt -- and being preempted is harmless: each costs a
put and a load.

History: the RFC (Avi Kivity, "[PATCH][RFC] kvm-scheduler integration", July
2007, on LKML) put the design in the scheduler itself: a ``kvm_vcpu``
pointer in ``task_struct`` and a global pair of hooks
(``sched_set_kvm_hooks``) that ``schedule()`` called for any task whose
pointer was set -- one client, KVM, wired into the core scheduler, and (the
letter says) it crashed soon.  What merged generalized it into a per-task
list of notifiers with ``sched_in``/``sched_out`` ops that any subsystem may
register (``preempt_notifier_register``), KVM being the first user.  The
model follows the merged form; the RFC's single field would behave the same
for one vcpu per thread.

The costs (``vcpu_put_ns``, ``vcpu_load_ns``, ``vcpu_migrate_ns``) are data
in ``data/host_sched.json``, each with its source; every twin here is a
generator that yields the costs it charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from ..mirrors import mirrors

if TYPE_CHECKING:
    from .hostsched import HostThread
    from .vcpu import KvmVcpu


@dataclass(eq=False)
class PreemptNotifier:
    """``struct preempt_notifier``: the ops are KVM's (``kvm_preempt_ops``); ``vcpu`` is container_of."""

    vcpu: "KvmVcpu"


def _sched(vcpu: "KvmVcpu"):
    return vcpu.kvm.hostsched


@mirrors("virt/kvm/kvm_main.c", "vcpu_load", generations="legacy")
def vcpu_load(vcpu: "KvmVcpu", thread: "HostThread") -> Generator[int, None, None]:
    """Take the vcpu into this thread: register its preempt notifier, then load it on this CPU.

    Mirrors virt/kvm/kvm_main.c:vcpu_load (v2.6.38): mutex_lock(&vcpu->mutex),
    get_cpu(), preempt_notifier_register, kvm_arch_vcpu_load, put_cpu().
    Simplification: the model's vcpu thread runs one KVM_RUN for its whole
    life, so this runs once when the thread first gets a CPU; no mutex.
    """
    thread.notifiers.append(PreemptNotifier(vcpu))
    yield from kvm_arch_vcpu_load(vcpu, thread.cpu.id)


@mirrors("virt/kvm/kvm_main.c", "vcpu_put", generations="legacy")
def vcpu_put(vcpu: "KvmVcpu", thread: "HostThread") -> Generator[int, None, None]:
    """Release the vcpu: put it, then unregister the notifier.

    Mirrors virt/kvm/kvm_main.c:vcpu_put (v2.6.38): preempt_disable,
    kvm_arch_vcpu_put, preempt_notifier_unregister, preempt_enable,
    mutex_unlock.
    Simplification: called once, when the vcpu thread leaves its loop; no mutex.
    """
    yield from kvm_arch_vcpu_put(vcpu)
    thread.notifiers = [n for n in thread.notifiers if n.vcpu is not vcpu]


@mirrors("kernel/sched.c", "fire_sched_out_preempt_notifiers", generations="legacy")
def fire_sched_out_preempt_notifiers(thread: "HostThread", nxt: "HostThread | None") -> Generator[int, None, None]:
    """context_switch is switching ``thread`` out for ``nxt``: call every registered sched_out.

    Mirrors kernel/sched.c:fire_sched_out_preempt_notifiers (v2.6.38), called
    from prepare_task_switch only when prev != next.
    Simplification: the only ops are KVM's.
    """
    for notifier in list(thread.notifiers):
        yield from kvm_sched_out(notifier, nxt)


@mirrors("kernel/sched.c", "fire_sched_in_preempt_notifiers", generations="legacy")
def fire_sched_in_preempt_notifiers(thread: "HostThread", cpu: int) -> Generator[int, None, None]:
    """``thread`` is current again on ``cpu``: call every registered sched_in.

    Mirrors kernel/sched.c:fire_sched_in_preempt_notifiers (v2.6.38), called
    from finish_task_switch.
    Simplification: the only ops are KVM's.
    """
    for notifier in list(thread.notifiers):
        yield from kvm_sched_in(notifier, cpu)


@mirrors("virt/kvm/kvm_main.c", "kvm_sched_out", generations="legacy")
def kvm_sched_out(notifier: PreemptNotifier, nxt: Any) -> Generator[int, None, None]:
    """The vcpu's thread is switched out: put the vcpu.

    Mirrors virt/kvm/kvm_main.c:kvm_sched_out (v2.6.38): kvm_arch_vcpu_put.
    Simplification: no preempted-flag bookkeeping (later kernels add vcpu->preempted for directed yield).
    """
    yield from kvm_arch_vcpu_put(notifier.vcpu)


@mirrors("virt/kvm/kvm_main.c", "kvm_sched_in", generations="legacy")
def kvm_sched_in(notifier: PreemptNotifier, cpu: int) -> Generator[int, None, None]:
    """The vcpu's thread runs again on ``cpu``: load the vcpu there.

    Mirrors virt/kvm/kvm_main.c:kvm_sched_in (v2.6.38): kvm_arch_vcpu_load(vcpu, cpu).
    Simplification: nothing left out beyond kvm_arch_vcpu_load's own simplifications.
    """
    yield from kvm_arch_vcpu_load(notifier.vcpu, cpu)


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_load", generations="legacy")
def kvm_arch_vcpu_load(vcpu: "KvmVcpu", cpu: int) -> Generator[int, None, None]:
    """Make the vcpu's guest state current on ``cpu``; on a new CPU, check the TSC and move the timers.

    Mirrors arch/x86/kvm/x86.c:kvm_arch_vcpu_load (v2.6.38): vmx_vcpu_load;
    then if the CPU changed (or the TSC is unstable) compute the host TSC
    delta since the put; with an unstable TSC subtract it from the guest's
    TSC offset and request a clock update; on a new CPU kvm_migrate_timers;
    vcpu->cpu = cpu.
    Simplification: no WBINVD tracking; the TSC is the engine clock, so a
    backwards TSC never happens; migrating the timers is a counter (the
    model's LAPIC timer is not bound to a CPU).
    """
    sched = _sched(vcpu)
    old = getattr(vcpu, "host_cpu", -1)
    yield from vmx_vcpu_load(vcpu, cpu)
    if old != cpu or sched.tsc_unstable:
        last = getattr(vcpu, "last_host_tsc", 0)
        delta = vcpu.kvm.env.now - last if last else 0
        if sched.tsc_unstable:
            vcpu.tsc_offset = getattr(vcpu, "tsc_offset", 0) - delta
            vcpu.stat["tsc_adjust"] += 1
        if old != cpu:
            vcpu.stat["vcpu_migrations"] += old >= 0
            vcpu.stat["migrate_timers"] += old >= 0
        vcpu.host_cpu = cpu
    vcpu.stat["vcpu_load"] += 1


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_put", generations="legacy")
def kvm_arch_vcpu_put(vcpu: "KvmVcpu") -> Generator[int, None, None]:
    """Put the vcpu's guest state away: host state back, guest FPU saved, TSC remembered.

    Mirrors arch/x86/kvm/x86.c:kvm_arch_vcpu_put (v2.6.38): vmx_vcpu_put,
    kvm_put_guest_fpu, last_host_tsc = rdtsc.
    Simplification: the FPU put is part of the put cost.
    """
    yield from vmx_vcpu_put(vcpu)
    vcpu.last_host_tsc = vcpu.kvm.env.now
    vcpu.stat["vcpu_put"] += 1


@mirrors("arch/x86/kvm/vmx.c", "vmx_vcpu_load", generations="legacy")
def vmx_vcpu_load(vcpu: "KvmVcpu", cpu: int) -> Generator[int, None, None]:
    """VMX: clear the VMCS off its old CPU if it moved, VMPTRLD it if this CPU's current VMCS is another.

    Mirrors arch/x86/kvm/vmx.c:vmx_vcpu_load (v2.6.38, vmm_exclusive): if
    vcpu->cpu != cpu, vcpu_clear (an IPI to the old CPU, which VMCLEARs and
    forgets it as its current VMCS); if per_cpu(current_vmcs) differs,
    VMPTRLD; on a new CPU join vcpus_on_cpu, request a TLB flush and rewrite
    the host TR/GDT/SYSENTER fields.
    Simplification: the guest state is "loaded" on the CPU from here until
    vmx_vcpu_put (``HostCpu.loaded``), the model's reading of "this CPU runs
    this vcpu"; costs from data/host_sched.json.
    """
    sched = _sched(vcpu)
    here = sched.cpus[cpu]
    old = getattr(vcpu, "host_cpu", -1)
    if old != cpu and old >= 0:
        prev = sched.cpus[old]
        prev.vcpus_on_cpu.discard(vcpu)
        if prev.current_vmcs is vcpu:
            prev.current_vmcs = None
        vcpu.stat["vcpu_clear"] += 1
        yield sched.costs["vcpu_migrate_ns"]
    if here.current_vmcs is not vcpu:
        here.current_vmcs = vcpu
        vcpu.stat["vmptrld"] += 1
        yield sched.costs["vcpu_load_ns"]
    if old != cpu:
        here.vcpus_on_cpu.add(vcpu)
    for other in sched.cpus:
        if other.loaded is vcpu and other is not here:
            raise AssertionError(f"vcpu{vcpu.vcpu_id} loaded on cpu{other.id} and cpu{cpu}")
    here.loaded = vcpu


@mirrors("arch/x86/kvm/vmx.c", "vmx_vcpu_put", generations="legacy")
def vmx_vcpu_put(vcpu: "KvmVcpu") -> Generator[int, None, None]:
    """VMX: give the CPU its host state back (__vmx_load_host_state); the VMCS stays current there.

    Mirrors arch/x86/kvm/vmx.c:vmx_vcpu_put (v2.6.38, vmm_exclusive): no VMCLEAR.
    Simplification: the lazily switched host MSRs are one cost.
    """
    sched = _sched(vcpu)
    for cpu in sched.cpus:
        if cpu.loaded is vcpu:
            cpu.loaded = None
    yield sched.costs["vcpu_put_ns"]
