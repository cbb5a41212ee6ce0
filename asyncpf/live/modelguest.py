"""guest.S as a scripted guest of the model: the same program, speaking the host's ``GuestCpu`` protocol.

:class:`LiveGuest` does on the model what ``guest.S`` does on real KVM
(:mod:`asyncpf.live.layout`'s ``GuestParams``): optionally write
MSR_KVM_ASYNC_PF_INT then MSR_KVM_ASYNC_PF_EN, touch ``count`` pages, and
on a #PF whose flags word says "not present" clear it and either wait for
that token's page-ready (HLT with interrupts on), retry at once, or disable
async PF first; on the page-ready vector read the token from the area,
clear it, EOI and write 1 to MSR_KVM_ASYNC_PF_ACK.  It appends the same log
records as the real guest (``pf``, ``irq``, ``ack``, ``wrmsr``, ``done``),
so the two logs can be compared line by line.

The handlers run in no time (the model has no CPL0 instructions to
emulate); the touches are reads at CPL3 with interrupts enabled, the MSR
writes of kernel_entry and of the handlers are at CPL0 with interrupts off,
and the #PF handler's wait is a HLT at CPL0 with interrupts on -- as in guest.S.  The EOI
is the model's ``apic_eoi`` (no exit, as with the x2APIC EOI MSR on this backend).
In MSR-table mode (``params.msrs``) the guest only writes the MSRs; a
refused write is a #GP, logged before the write's own record as guest.S does.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import abi
from ..host import x86
from ..host.kvm_main import read_guest_bytes, write_guest_bytes
from ..host import vcpu as vcpu_mod
from ..host.vcpu import Access, Halt, KvmVcpu, Op, Stop, WrMsr
from .layout import AREA, PF_DISABLE, PF_RETRY, PF_WAIT, GuestParams, LogRecord


X2APIC_SVR = 0x80F


@dataclass
class LiveGuest:
    """guest.S on one vcpu of the model; ``gfns[i]`` backs touch ``i``, ``gvas[i]`` is its address."""

    params: GuestParams
    gfns: list[int]
    gvas: list[int]
    log: list[LogRecord] = field(default_factory=list)
    pending: list[WrMsr] = field(default_factory=list)   # MSR writes a handler still has to make
    touched: int = 0
    waiting_for: int | None = None                        # the token a #PF handler waits for (PF_WAIT)
    ready_token: int = 0
    finished: bool = False
    apic_setup: bool = False                              # write the x2APIC SVR first, as guest.S does (the
                                                          # xAPIC's MMIO SVR write is not modelled: the model's
                                                          # LAPIC starts software-enabled)
    gp_expected: int = 0                                  # #GPs owed for refused writes in MSR-table mode
    outcomes: list[bool] = field(default_factory=list)    # MSR-table mode: accepted, per write

    def __post_init__(self) -> None:
        p = self.params
        if p.msrs:
            self.pending = [WrMsr(m, v) for m, v in p.msrs]
            return
        if self.apic_setup:
            self.pending.append(WrMsr(X2APIC_SVR, 0x1FF))
        if p.en_val:
            self.pending += [WrMsr(abi.INTERRUPT.msr_async_pf_int, p.int_val),
                             WrMsr(abi.INTERRUPT.msr_async_pf_en, p.en_val)]

    # -- the host asks -------------------------------------------------------------
    def next_op(self, vcpu: KvmVcpu) -> Op | None:
        if self.pending:  # kernel_entry's or a handler's WRMSR: CPL0, interrupts off
            _mode(vcpu, 0, False)
            return self.pending[0]
        if self.waiting_for is not None:
            if self.ready_token == self.waiting_for:
                self.waiting_for = None  # the handler returns; the touch is retried
            else:
                _mode(vcpu, 0, True)  # STI; HLT in the #PF handler: the STI shadow lasts until the HLT
                return Halt()
        if self.params.msrs:  # MSR-table mode: kernel_entry stops at CPL0, interrupts still off
            return self._finish()
        if _mode(vcpu, 3, True):
            return None  # IRETQ to the user loop turned interrupts on: an instruction boundary
        if self.touched < self.params.count:
            i = self.touched
            return Access(self.gfns[i] << abi.PAGE_SHIFT, False, gva=self.gvas[i])
        if not self.finished:
            self.log.append(LogRecord("done", 0, self.touched))
        return self._finish()

    def _finish(self) -> Stop:
        self.finished = True
        return Stop()

    def op_done(self, vcpu: KvmVcpu, op: Op, result: Any) -> None:
        if isinstance(op, WrMsr):
            self.pending.pop(0)
            if self.params.msrs:  # MSR-table mode: a refusal is a #GP the handler logs before the write's record
                self.outcomes.append(not result)
                if result:
                    self.gp_expected += 1
                    self.log.append(LogRecord("exception", x86.GP_VECTOR, 0))
                self.log.append(LogRecord("wrmsr", op.msr, op.data))
                return
            if op.msr == X2APIC_SVR:
                if result:
                    raise AssertionError("the model refused the x2APIC SVR write")
                return
            if result:
                raise AssertionError(f"the model refused WRMSR {op.msr:#x} = {op.data:#x} (#GP): guest.S would "
                                     "stop with code 0xe0")
            self.log.append(LogRecord("ack" if op.msr == abi.INTERRUPT.msr_async_pf_ack else "wrmsr",
                                      0 if op.msr == abi.INTERRUPT.msr_async_pf_ack else op.msr, op.data))
        elif isinstance(op, Access):
            self.touched += 1

    def op_progress(self, vcpu: KvmVcpu, op: Any, ran_ns: int) -> None:
        pass

    def deliver_exception(self, vcpu: KvmVcpu, nr: int, error_code: int) -> None:
        if nr == x86.GP_VECTOR and self.gp_expected:
            self.gp_expected -= 1
            return
        if nr != x86.PF_VECTOR:
            raise AssertionError(f"live guest got exception {nr}: guest.S would stop with code 0xe0")
        flags = int.from_bytes(read_guest_bytes(vcpu.kvm, AREA, 4), "little")
        token = vcpu.arch.cr2
        self.log.append(LogRecord("pf", flags, token))
        if not flags & abi.KVM_PV_REASON_PAGE_NOT_PRESENT:
            raise AssertionError(f"live guest got an ordinary #PF at {token:#x}: guest.S would stop with code 0xe1")
        write_guest_bytes(vcpu.kvm, AREA, bytes(4))
        mode = self.params.pf_mode
        if mode == PF_WAIT:
            if self.ready_token != token:
                self.waiting_for = token
        elif mode == PF_DISABLE:
            self.pending.append(WrMsr(abi.INTERRUPT.msr_async_pf_en, 0))
        elif mode != PF_RETRY:
            raise ValueError(f"pf_mode {mode}: expected {PF_WAIT}, {PF_RETRY} or {PF_DISABLE}")

    def deliver_interrupt(self, vcpu: KvmVcpu, vector: int) -> None:
        if vector != self.params.int_val & 0xFF:
            raise AssertionError(f"live guest got interrupt {vector:#x}: guest.S would stop with code 0xe0")
        token = int.from_bytes(read_guest_bytes(vcpu.kvm, AREA + 4, 4), "little")
        self.ready_token = token
        self.log.append(LogRecord("irq", vector, token))
        write_guest_bytes(vcpu.kvm, AREA + 4, bytes(4))
        vcpu_mod.apic_eoi(vcpu)
        self.pending.insert(0, WrMsr(abi.INTERRUPT.msr_async_pf_ack, 1))

    def delivery_gfn(self, vcpu: KvmVcpu) -> int | None:
        return None


def _mode(vcpu: KvmVcpu, cpl: int, interrupts: bool) -> bool:
    """Where guest.S is when it executes the next instruction: privilege level and RFLAGS.IF.

    True if this turned interrupts on: the caller then ends the step (a pending interrupt is taken
    at that instruction boundary, before the next instruction).
    """
    turned_on = interrupts and not vcpu.arch.rflags_if
    vcpu.arch.cpl = cpl
    vcpu.arch.rflags_if = interrupts
    return turned_on


@dataclass
class IdleGuest:
    """A vcpu that stops at once (the model numbers vcpus from 0; the real VM has only the program's vcpu)."""

    def next_op(self, vcpu: KvmVcpu) -> Op:
        return Stop()

    def op_done(self, vcpu: KvmVcpu, op: Op, result: Any) -> None:
        pass

    def op_progress(self, vcpu: KvmVcpu, op: Any, ran_ns: int) -> None:
        pass

    def deliver_exception(self, vcpu: KvmVcpu, nr: int, error_code: int) -> None:
        raise AssertionError(f"idle vcpu {vcpu.vcpu_id} got exception {nr}")

    def deliver_interrupt(self, vcpu: KvmVcpu, vector: int) -> None:
        raise AssertionError(f"idle vcpu {vcpu.vcpu_id} got interrupt {vector}")

    def delivery_gfn(self, vcpu: KvmVcpu) -> int | None:
        return None
