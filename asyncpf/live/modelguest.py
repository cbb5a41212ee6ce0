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
emulate); the touches are reads at CPL3 with interrupts enabled.  The EOI
is not an operation of the model (its LAPIC has no in-service register).

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import abi
from ..host import x86
from ..host.kvm_main import read_guest_bytes, write_guest_bytes
from ..host.vcpu import Access, Halt, KvmVcpu, Op, Stop, WrMsr
from .layout import AREA, PF_DISABLE, PF_RETRY, PF_WAIT, GuestParams, LogRecord


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

    def __post_init__(self) -> None:
        if self.params.en_val:
            self.pending = [WrMsr(abi.INTERRUPT.msr_async_pf_int, self.params.int_val),
                            WrMsr(abi.INTERRUPT.msr_async_pf_en, self.params.en_val)]

    # -- the host asks -------------------------------------------------------------
    def next_op(self, vcpu: KvmVcpu) -> Op | None:
        if self.pending:
            return self.pending[0]
        if self.waiting_for is not None:
            if self.ready_token == self.waiting_for:
                self.waiting_for = None  # the handler returns; the touch is retried
            else:
                return Halt()
        if self.touched < self.params.count:
            i = self.touched
            return Access(self.gfns[i] << abi.PAGE_SHIFT, False, gva=self.gvas[i])
        if not self.finished:
            self.finished = True
            self.log.append(LogRecord("done", 0, self.touched))
        return Stop()

    def op_done(self, vcpu: KvmVcpu, op: Op, result: Any) -> None:
        if isinstance(op, WrMsr):
            self.pending.pop(0)
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
        self.pending.insert(0, WrMsr(abi.INTERRUPT.msr_async_pf_ack, 1))

    def delivery_gfn(self, vcpu: KvmVcpu) -> int | None:
        return None


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
