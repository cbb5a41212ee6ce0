"""Run one guest program on the machine's real ``/dev/kvm`` and capture what happened.

The VM: a low anonymous slot (:mod:`asyncpf.live.layout`), one file-backed
data slot evicted from the page cache (:mod:`asyncpf.live.backing`), an
in-kernel irqchip unless told otherwise, one vcpu with the chosen id, CPUID
0x40000001 with or without ASYNC_PF_INT, PV-CPUID enforcement on or off.
The kvm events are captured from a private tracefs instance
(:mod:`asyncpf.live.tracefs`).  Every ``KVM_RUN`` is bounded by an alarm and
the run by a total deadline; the VM, the files and the instance are gone
when :func:`run_vm` returns or raises.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import mmap
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from .. import abi
from . import backing, kvmapi, layout, tracefs
from .kvmapi import KVM_EXIT_IO, KVM_EXIT_NAMES, Kvm, Vm

APF_MSRS = {"EN": abi.INTERRUPT.msr_async_pf_en, "INT": abi.INTERRUPT.msr_async_pf_int,
            "ACK": abi.INTERRUPT.msr_async_pf_ack}
EXIT_PORT = 0xF4
RUN_BOUND_S = 5.0       # one KVM_RUN
TOTAL_BOUND_S = 20.0    # one program


class LiveError(RuntimeError):
    """The live run could not be carried out (not a verdict on KVM)."""


@dataclass(frozen=True)
class VmConfig:
    """The VM a program runs in."""

    vcpu_id: int = 0
    irqchip: bool = True
    cpuid_async_pf: bool = True
    cpuid_async_pf_int: bool = True
    enforce_pv_cpuid: bool = False


@dataclass
class RealRun:
    """What one run on real KVM produced."""

    exit_code: int | None = None
    log: list[layout.LogRecord] = field(default_factory=list)
    trace: str = ""
    formats: dict[str, str] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    resident_before: int = 0          # touched pages still in the page cache before the run (should be 0)
    seconds: float = 0.0
    msrs: dict[str, int | None] = field(default_factory=dict)   # EN, INT, ACK read back (KVM_GET_MSRS) after the run


def cpuid_entries(kvm: Kvm, cfg: VmConfig) -> list[kvmapi.CpuidEntry2]:
    """KVM's supported CPUID with the async PF bits of 0x40000001 EAX set as ``cfg`` says."""
    entries = kvm.supported_cpuid()
    leaf = next((e for e in entries if e.function == abi.KVM_CPUID_FEATURES), None)
    if leaf is None:
        raise LiveError("KVM_GET_SUPPORTED_CPUID has no leaf 0x40000001 (no KVM PV features)")
    eax = leaf.eax & ~((1 << abi.KVM_FEATURE_ASYNC_PF) | (1 << abi.KVM_FEATURE_ASYNC_PF_INT)
                       | (1 << abi.KVM_FEATURE_ASYNC_PF_VMEXIT))
    eax |= (int(cfg.cpuid_async_pf) << abi.KVM_FEATURE_ASYNC_PF) | (int(cfg.cpuid_async_pf_int)
                                                                    << abi.KVM_FEATURE_ASYNC_PF_INT)
    leaf.eax = eax
    return entries


def make_vcpu(stack: ExitStack, cfg: VmConfig) -> tuple[Vm, kvmapi.Vcpu]:
    kvm = Kvm()
    stack.callback(kvm.close)
    vm = Vm(kvm)
    stack.callback(vm.close)
    if cfg.irqchip:
        vm.create_irqchip()
    if cfg.vcpu_id:
        vm.set_boot_cpu_id(cfg.vcpu_id)  # else a vcpu other than 0 is an AP waiting for INIT/SIPI
    vcpu = vm.create_vcpu(cfg.vcpu_id)
    vcpu.set_cpuid(cpuid_entries(kvm, cfg))
    if cfg.enforce_pv_cpuid:
        vcpu.enable_cap(kvmapi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1)
    return vm, vcpu


def run_vm(cfg: VmConfig, params: layout.GuestParams, *, trace: bool = True,
           total_s: float = TOTAL_BOUND_S) -> RealRun:
    """Run guest.S with ``params`` in a VM of ``cfg``; the guest log, exit code and kvm trace."""
    out = RealRun()
    start = time.monotonic()
    with ExitStack() as stack:
        vm, vcpu = make_vcpu(stack, cfg)
        low = mmap.mmap(-1, layout.LOW_SIZE, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
        stack.callback(low.close)
        low[:] = layout.low_memory(params)
        vm.set_memory(0, 0, layout.LOW_SIZE, backing.address_of(low))
        if params.count:  # a data slot only for a program that touches pages
            files = stack.enter_context(backing.Backing())
            size = backing.data_slot_size(params.count, params.stride)
            if params.base != layout.DATA_GPA + backing.LEAD:
                raise ValueError(f"params.base {params.base:#x}: the data starts at {layout.DATA_GPA + backing.LEAD:#x}")
            slot = files.add_slot(layout.DATA_GPA, size)
            vm.set_memory(1, layout.DATA_GPA, size, slot.host_addr)
            offsets = [params.base - layout.DATA_GPA + i * params.stride for i in range(params.count)]
            slot.evict()
            out.resident_before = sum(slot.resident(offsets))
        sregs = layout.initial_sregs(vcpu.get_sregs())
        vcpu.set_sregs(sregs)
        vcpu.set_regs(layout.initial_regs())
        inst = stack.enter_context(tracefs.Instance()) if trace else None
        if inst is not None:
            out.formats = dict(inst.formats)
            inst.start()
        try:
            out.exit_code = _run_until_exit(vcpu, out, start + total_s)
        finally:
            if inst is not None:
                inst.stop()
                out.trace = inst.text()
            out.log = layout.read_log(low)
        out.msrs = {name: vcpu.get_msr(index) for name, index in APF_MSRS.items()}
    out.seconds = time.monotonic() - start
    return out


def _run_until_exit(vcpu: kvmapi.Vcpu, out: RealRun, deadline: float) -> int:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LiveError(f"the guest did not finish within the total bound; exits so far {out.exits}")
        try:
            reason = vcpu.run(min(left, RUN_BOUND_S))
        except kvmapi.RunTimeout:
            raise LiveError(f"KVM_RUN did not return within {min(left, RUN_BOUND_S):.1f} s; exits so far "
                            f"{out.exits}") from None
        name = KVM_EXIT_NAMES.get(reason, str(reason))
        out.exits[name] = out.exits.get(name, 0) + 1
        if reason == KVM_EXIT_IO:
            _direction, _size, port, data = vcpu.io_exit()
            if port == EXIT_PORT:
                return data[0] if data else -1
            raise LiveError(f"unexpected port I/O exit on port {port:#x}")
        if name == "INTR":
            continue
        regs = vcpu.get_regs()
        raise LiveError(f"unexpected exit {name} at rip {regs.rip:#x}")
