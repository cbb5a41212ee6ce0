"""A scripted stand-in guest, for host-only runs before the real guest model exists.

Each vcpu runs a few *scripts*: lists of steps, each step "touch this gfn,
then compute for so long".  With ``pv=True`` the stand-in registers the APF
area (MSR_KVM_ASYNC_PF_EN) and reacts to async PF the way a PV guest must:
read and reset the reason, park the current script on a not-present token,
run another script, wake the parked one on page-ready (keeping a note when
the wake comes first), and HLT when nothing can run.  With ``pv=False`` it
never writes the MSR, so the host must stall or halt the vcpu itself.

Like any Linux guest it has a periodic tick (``tick_hz``): in 2.6.38 a
page-ready consumed just after the guest's HLT exit is queued as a #PF while
the vcpu is HALTED, and ``kvm_arch_vcpu_runnable`` does not count a pending
exception -- so the vcpu sleeps until the next interrupt.  (Later kernels set
the vcpu RUNNABLE in ``kvm_arch_async_page_present``.)  Without a tick the
stand-in would sleep forever, which the leak check reports.

This is simulation glue, not a kernel twin: the real guest (tasks,
scheduler, ``arch/x86/kernel/kvm.c``) lives in ``asyncpf/guest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .abi import (
    KVM_ASYNC_PF_ENABLED,
    KVM_ASYNC_PF_SEND_ALWAYS,
    KVM_PV_REASON_PAGE_NOT_PRESENT,
    KVM_PV_REASON_PAGE_READY,
    PAGE_SHIFT,
)
from .host import x86
from .host.kvm_main import read_guest_bytes, write_guest_bytes
from .host.vcpu import Access, Compute, Halt, KvmVcpu, Op, Stop, WrMsr, apic_eoi, lapic_timer_start

APF_AREA_GPA = 0x2000  # where each vcpu's area lives: APF_AREA_GPA + 64 * vcpu_id


@dataclass
class Script:
    """One guest activity: ``steps`` of (gfn, compute_ns after the touch)."""

    name: str
    steps: list[tuple[int, int]]
    pos: int = 0
    touched: bool = False          # the current step's access has completed
    left_ns: int = 0               # compute still owed by the current step
    finished_at: int | None = None

    @property
    def finished(self) -> bool:
        return self.pos >= len(self.steps)


@dataclass
class ScriptedGuest:
    """The stand-in guest on one vcpu (implements ``asyncpf.host.vcpu.GuestCpu``)."""

    scripts: list[Script]
    pv: bool = False
    send_always: bool = False
    tick_hz: int = 250
    booted: bool = False
    registered: bool = False
    current: int | None = 0
    parked: dict[int, Script] = field(default_factory=dict)   # token -> script
    early_wakes: set[int] = field(default_factory=set)        # page-ready before not-present
    log: list[tuple[int, str]] = field(default_factory=list)

    # -- the host asks -------------------------------------------------------
    def next_op(self, vcpu: KvmVcpu) -> Op:
        if not self.booted:
            self.booted = True
            if self.tick_hz:
                lapic_timer_start(vcpu, 1_000_000_000 // self.tick_hz)
        if self.pv and not self.registered:
            flags = KVM_ASYNC_PF_ENABLED | (KVM_ASYNC_PF_SEND_ALWAYS if self.send_always else 0)
            return WrMsr(vcpu.kvm.abi.msr_async_pf_en, self._area(vcpu) | flags)
        script = self._pick(vcpu)
        if script is None:
            return Halt() if self.parked else Stop()
        gfn, _ = script.steps[script.pos]
        if not script.touched:
            return Access(gfn << PAGE_SHIFT, True, gva=gfn << PAGE_SHIFT)
        return Compute(script.left_ns)

    def op_done(self, vcpu: KvmVcpu, op: Op, result: Any) -> None:
        if isinstance(op, WrMsr):
            self.registered = not result
            return
        if isinstance(op, (Halt, Stop)):
            return
        script = self.scripts[self.current]
        if isinstance(op, Access):
            script.touched, script.left_ns = True, script.steps[script.pos][1]
            if script.left_ns == 0:
                self._advance(vcpu, script)
        elif isinstance(op, Compute):
            self._advance(vcpu, script)

    def op_progress(self, vcpu: KvmVcpu, op: Compute, ran_ns: int) -> None:
        self.scripts[self.current].left_ns -= ran_ns

    def deliver_exception(self, vcpu: KvmVcpu, nr: int, error_code: int) -> None:
        if nr != x86.PF_VECTOR:
            raise AssertionError(f"stand-in guest got exception {nr} at t={vcpu.kvm.env.now}")
        reason = read_reason(vcpu)
        write_reason(vcpu, 0)
        token = vcpu.arch.cr2
        if reason == KVM_PV_REASON_PAGE_NOT_PRESENT:
            if token in self.early_wakes:
                self.early_wakes.discard(token)
                return
            self.parked[token] = self.scripts[self.current]
            self.log.append((vcpu.kvm.env.now, f"park {self.scripts[self.current].name} on {token:#x}"))
            self.current = None
        elif reason == KVM_PV_REASON_PAGE_READY:
            self._wake(vcpu, token)
        else:
            raise AssertionError(f"stand-in guest got an ordinary #PF at {token:#x}: it maps no memory itself")

    def deliver_interrupt(self, vcpu: KvmVcpu, vector: int) -> None:
        apic_eoi(vcpu)

    def delivery_gfn(self, vcpu: KvmVcpu) -> int | None:
        return None

    # -- bookkeeping ------------------------------------------------------------
    def _area(self, vcpu: KvmVcpu) -> int:
        return APF_AREA_GPA + 64 * vcpu.vcpu_id

    def _runnable(self) -> list[int]:
        parked = list(self.parked.values())
        return [i for i, s in enumerate(self.scripts) if not s.finished and not any(s is p for p in parked)]

    def _pick(self, vcpu: KvmVcpu) -> Script | None:
        if self.current is not None and self.current in self._runnable():
            return self.scripts[self.current]
        runnable = self._runnable()
        self.current = runnable[0] if runnable else None
        if self.current is not None and vcpu.arch.mp_state == x86.KVM_MP_STATE_HALTED:
            vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE
        return None if self.current is None else self.scripts[self.current]

    def _advance(self, vcpu: KvmVcpu, script: Script) -> None:
        script.pos += 1
        script.touched = False
        if script.finished:
            script.finished_at = vcpu.kvm.env.now

    def _wake(self, vcpu: KvmVcpu, token: int) -> None:
        if token == vcpu.kvm.abi.broadcast_token:
            woken, self.parked = self.parked, {}
        elif token in self.parked:
            woken = {token: self.parked.pop(token)}
        else:
            self.early_wakes.add(token)
            woken = {}
        for tok, script in sorted(woken.items()):
            self.log.append((vcpu.kvm.env.now, f"wake {script.name} ({tok:#x})"))

    def leaks(self) -> list[str]:
        out = [f"script {s.name} still parked on {t:#x}" for t, s in sorted(self.parked.items())]
        out += [f"early wake {t:#x} never consumed" for t in sorted(self.early_wakes)]
        return out


def read_reason(vcpu: KvmVcpu) -> int:
    """The #PF-era reason word as a guest reads it from the area its vcpu registered."""
    return int.from_bytes(read_guest_bytes(vcpu.kvm, vcpu.arch.apf.data.gpa, 4), "little")


def write_reason(vcpu: KvmVcpu, value: int) -> None:
    """The guest's own write of the reason word (kvm_read_and_reset_pf_reason resets it to 0)."""
    write_guest_bytes(vcpu.kvm, vcpu.arch.apf.data.gpa, value.to_bytes(4, "little"))
