"""The MSR table: every class of async PF MSR write, accepted or refused, and what reads back.

Each row is a short guest program (guest.S in MSR-table mode: WRMSR at CPL0,
a refused write is a #GP its handler logs and skips) in a fresh VM: the
row's set-up writes, then the write under test; afterwards the VMM reads
MSR_KVM_ASYNC_PF_EN, _INT and _ACK back with ``KVM_GET_MSRS``.  Every row
runs in each :data:`CONFIGS` VM: with and without an in-kernel irqchip, with
KVM_CAP_ENFORCE_PV_FEATURE_CPUID on and off, and with CPUID 0x40000001
showing ASYNC_PF and ASYNC_PF_INT or not.  Sources for what the kernel does:
Documentation/virt/kvm/x86/msr.rst@v6.18 and arch/x86/kvm/x86.c@v6.18
(kvm_set_msr_common, kvm_pv_enable_async_pf, kvm_pv_enable_async_pf_int).

The same writes made by the VMM (``KVM_SET_MSRS``, host-initiated) into a
vcpu that never ran form a second table (:func:`run_real_vmm`).  v6.18 gives
the VMM the guest's verdicts; since 5bb9ac186512 (after v6.18, for stable) a
VMM write of 0 to an MSR the vcpu's PV CPUID does not offer is accepted and
ignored, and a VMM read of one returns 0 (kvm_do_msr_access).  A kernel with
the fix (the 6.18.44 measured here) differs from the model's v6.18 in exactly
those cells: :func:`judge` names them.

The model side runs the same guest program on a model vcpu of the interrupt
generation (:mod:`asyncpf.live.modelrun`), and the VMM's writes through
``kvm_set_msr_common(..., host_initiated=True)`` (:func:`run_model_vmm`).
"""

from __future__ import annotations

import mmap
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

from .. import abi
from ..check import msr_abi
from . import backing, layout, realrun
from .layout import GuestParams, LogRecord
from .realrun import VmConfig, make_vcpu

EN, INT, ACK = abi.INTERRUPT.msr_async_pf_en, abi.INTERRUPT.msr_async_pf_int, abi.INTERRUPT.msr_async_pf_ack
A = layout.AREA
ON, SA, VMX, INTD = (abi.KVM_ASYNC_PF_ENABLED, abi.KVM_ASYNC_PF_SEND_ALWAYS, abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
                     abi.KVM_ASYNC_PF_DELIVERY_AS_INT)
OUTSIDE = 0x8000_0000          # no memslot there (the low slot is 2 MiB, the data slot from 1 GiB is at most 256 MiB)


@dataclass(frozen=True)
class Row:
    name: str
    klass: str
    write: tuple[int, int]
    setup: tuple[tuple[int, int], ...] = ()


ROWS = (
    Row("en-zero", "EN disable", (EN, 0)),
    Row("en-legacy-enable", "EN enable without DELIVERY_AS_INT", (EN, A | ON)),
    Row("en-int", "EN enable with DELIVERY_AS_INT", (EN, A | ON | INTD), ((INT, 0xF3),)),
    Row("en-int-before-vector", "EN enable with DELIVERY_AS_INT", (EN, A | ON | INTD)),
    Row("en-send-always", "EN enable with DELIVERY_AS_INT", (EN, A | ON | SA | INTD), ((INT, 0xF3),)),
    Row("en-pf-vmexit", "EN DELIVERY_AS_PF_VMEXIT (CPUID bit 10 clear)", (EN, A | ON | VMX | INTD), ((INT, 0xF3),)),
    Row("en-reserved-bit4", "EN reserved bits", (EN, A | ON | INTD | 0x10), ((INT, 0xF3),)),
    Row("en-reserved-bit5", "EN reserved bits", (EN, A | ON | INTD | 0x20), ((INT, 0xF3),)),
    Row("en-gpa-offset-0x20", "EN alignment (a gpa 32 bytes into a 64-byte block sets bit 5)",
        (EN, (A + 0x20) | ON | INTD), ((INT, 0xF3),)),
    Row("en-gpa-offset-0x40", "EN alignment (64-byte aligned, not page aligned)", (EN, (A + 0x40) | ON | INTD),
        ((INT, 0xF3),)),
    Row("en-gpa-last-64", "EN gpa: the last 64 bytes of guest memory", (EN, (layout.LOW_SIZE - 64) | ON | INTD),
        ((INT, 0xF3),)),
    Row("en-gpa-outside", "EN gpa outside guest memory", (EN, OUTSIDE | ON | INTD), ((INT, 0xF3),)),
    Row("en-gpa-outside-disabled", "EN gpa outside guest memory, ENABLED clear", (EN, OUTSIDE | INTD)),
    Row("en-disable-after-enable", "EN disable", (EN, 0), ((INT, 0xF3), (EN, A | ON | INTD))),
    Row("en-bad-gpa-after-enable", "EN gpa outside guest memory", (EN, OUTSIDE | ON | INTD),
        ((INT, 0xF3), (EN, A | ON | INTD))),
    Row("int-0xf3", "INT vector", (INT, 0xF3)),
    Row("int-0", "INT vector", (INT, 0)),
    Row("int-0x0f", "INT vector (an exception vector)", (INT, 0x0F)),
    Row("int-0xff", "INT vector", (INT, 0xFF)),
    Row("int-bit8", "INT reserved bits 63:8", (INT, 0x1F3)),
    Row("int-bit63", "INT reserved bits 63:8", (INT, (1 << 63) | 0xF3)),
    Row("ack-1", "ACK value", (ACK, 1)),
    Row("ack-0", "ACK value", (ACK, 0)),
    Row("ack-2", "ACK value", (ACK, 2)),
    Row("ack-bit63", "ACK value", (ACK, 1 << 63)),
)

CONFIGS = {
    "irqchip": VmConfig(),
    "irqchip+enforce": VmConfig(enforce_pv_cpuid=True),
    "irqchip+enforce, no ASYNC_PF_INT": VmConfig(enforce_pv_cpuid=True, cpuid_async_pf_int=False),
    "irqchip+enforce, no ASYNC_PF": VmConfig(enforce_pv_cpuid=True, cpuid_async_pf=False, cpuid_async_pf_int=False),
    "no irqchip": VmConfig(irqchip=False),
    "no irqchip+enforce": VmConfig(irqchip=False, enforce_pv_cpuid=True),
}


def _hex(values: dict[str, int | None]) -> dict[str, str | None]:
    return {k: None if v is None else hex(v) for k, v in values.items()}


def _params(row: Row) -> GuestParams:
    return GuestParams(count=0, msrs=(*row.setup, row.write))


def outcomes_from_log(log: list[LogRecord]) -> list[bool]:
    """Accepted, per write: a write's record right after a #GP record was refused."""
    out, gp = [], False
    for r in log:
        if r.kind == "exception" and r.a == 13:
            gp = True
        elif r.kind == "wrmsr":
            out.append(not gp)
            gp = False
    return out


def _row_result(outcomes: list[bool], msrs: dict[str, int | None]) -> dict[str, Any]:
    return {"setup": outcomes[:-1], "accepted": outcomes[-1] if outcomes else None, "read": _hex(msrs)}


def run_real() -> dict[str, dict[str, dict]]:
    """config -> row -> {setup, accepted, read}: every row as guest writes, in a fresh VM of every configuration."""
    out: dict[str, dict[str, dict]] = {}
    for cname, cfg in CONFIGS.items():
        out[cname] = {}
        for row in ROWS:
            run = realrun.run_vm(cfg, _params(row), trace=False)
            if run.exit_code != 0:
                raise realrun.LiveError(f"MSR table {cname} / {row.name}: the guest stopped with {run.exit_code:#x}")
            out[cname][row.name] = _row_result(outcomes_from_log(run.log), run.msrs)
    return out


def run_real_vmm() -> dict[str, dict[str, dict]]:
    """The same writes made by the VMM (KVM_SET_MSRS) into a fresh vcpu that never ran; recorded, not compared."""
    out: dict[str, dict[str, dict]] = {}
    low = mmap.mmap(-1, layout.LOW_SIZE, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        for cname, cfg in CONFIGS.items():
            out[cname] = {}
            for row in ROWS:
                with ExitStack() as stack:
                    vm, vcpu = make_vcpu(stack, cfg)
                    vm.set_memory(0, 0, layout.LOW_SIZE, backing.address_of(low))
                    done = [vcpu.set_msr(m, v) for m, v in (*row.setup, row.write)]
                    back = {name: vcpu.get_msr(index) for name, index in realrun.APF_MSRS.items()}
                out[cname][row.name] = _row_result(done, back)
    finally:
        low.close()
    return out


def run_model(generation: str) -> dict[str, dict[str, dict]]:
    """The same guest programs on the model."""
    from .modelrun import run_model as run_program
    out: dict[str, dict[str, dict]] = {}
    for cname, cfg in CONFIGS.items():
        out[cname] = {}
        for row in ROWS:
            run = run_program(generation, cfg, _params(row))
            out[cname][row.name] = _row_result(run.outcomes, run.msrs)
    return out


def run_model_vmm(generation: str) -> dict[str, dict[str, dict]]:
    """The VMM's writes on the model: kvm_set_msr_common as the VMM, then kvm_get_msr_common as the VMM."""
    from ..build import SMALL_HOST
    from ..host import x86
    from ..machine import Machine
    from .modelguest import IdleGuest
    from .modelrun import configure_vcpu, read_msrs

    out: dict[str, dict[str, dict]] = {}
    for cname, cfg in CONFIGS.items():
        out[cname] = {}
        for row in ROWS:
            m = Machine(SMALL_HOST.replace(generation=generation, vcpus=cfg.vcpu_id + 1), lambda i: IdleGuest())
            configure_vcpu(m, cfg)
            vcpu = m.vcpus[cfg.vcpu_id]

            def writes(row=row, vcpu=vcpu):
                done = []
                for msr, value in (*row.setup, row.write):
                    done.append(not (yield from x86.kvm_set_msr_common(vcpu, msr, value, host_initiated=True)))
                return done

            proc = m.env.process(writes(), "KVM_SET_MSRS")
            m.env.run()
            out[cname][row.name] = _row_result(proc.value, read_msrs(vcpu))
    return out


def _rules_view(cfg: VmConfig) -> Any:
    """What ``asyncpf.check.msr_abi`` reads of a vcpu to tell whether its PV CPUID hides an MSR, for this VM."""
    features = (int(cfg.cpuid_async_pf) << abi.KVM_FEATURE_ASYNC_PF) | \
        (int(cfg.cpuid_async_pf_int) << abi.KVM_FEATURE_ASYNC_PF_INT)
    return SimpleNamespace(arch=SimpleNamespace(pv_cpuid_enforce=cfg.enforce_pv_cpuid, cpuid_features=features))


def with_5bb9ac186512(cname: str, row: Row, cell: dict, vmm_writes: bool) -> dict:
    """A v6.18 cell as a kernel with 5bb9ac186512 would give it (``msr_abi.lenient_since_5bb9ac186512``): the VMM's
    refused reads of an MSR the PV CPUID hides succeed with 0 (every table reads back through KVM_GET_MSRS), and
    with ``vmm_writes`` (the VMM table) so do its refused writes of 0.  Nothing else changes: a refused write
    changed no state either."""
    vcpu = _rules_view(CONFIGS[cname])
    lenient = partial(msr_abi.lenient_since_5bb9ac186512, "interrupt", vcpu)
    done = [*cell["setup"], cell["accepted"]]
    if vmm_writes:
        done = [ok or lenient(msr, value) for ok, (msr, value) in zip(done, (*row.setup, row.write))]
    read = {name: "0x0" if value is None and lenient(realrun.APF_MSRS[name], None) else value
            for name, value in cell["read"].items()}
    return {"setup": done[:-1], "accepted": done[-1], "read": read}


@dataclass(frozen=True)
class TableVerdict:
    """A measured table against the model's: rows that agree, rows that differ only as 5bb9ac186512 makes them
    ((configuration, row), sorted), and the other differences, one line each."""

    rows: int
    agree: int
    fixed: list[tuple[str, str]]
    mismatches: list[str]


def judge(real: dict, model: dict, vmm_writes: bool) -> TableVerdict:
    """Compare a measured table (guest writes, or with ``vmm_writes`` the VMM's) with the model's (v6.18)."""
    rows = {row.name: row for row in ROWS}
    fixed, mismatches = [], []
    for cname, cells in real.items():
        for rname, r in cells.items():
            mr = model.get(cname, {}).get(rname)
            if mr == r:
                continue
            if (mr is not None and rname in rows and cname in CONFIGS
                    and with_5bb9ac186512(cname, rows[rname], mr, vmm_writes) == r):
                fixed.append((cname, rname))
            else:
                mismatches.append(f"{cname} / {rname}: real {r}, model {mr}")
    total = sum(map(len, real.values()))
    return TableVerdict(total, total - len(fixed) - len(mismatches), sorted(fixed), mismatches)


SHORT = {"irqchip": "irqchip", "irqchip+enforce": "+enforce", "irqchip+enforce, no ASYNC_PF_INT": "+enf -INT",
         "irqchip+enforce, no ASYNC_PF": "+enf -APF", "no irqchip": "no irqchip", "no irqchip+enforce": "noirq +enf"}


def render(real: dict, model: dict | None = None, fixed: set[tuple[str, str]] = frozenset()) -> str:
    """One line per row, one column per configuration: + accepted / - refused, then EN/INT as read back
    (hex, ? refused); a leading ! marks a cell where the model differs, ~ one of ``fixed`` (it differs only
    as 5bb9ac186512 makes it)."""
    names = list(real)
    width = 15
    lines = ["cells: +/- the write accepted/refused, then MSR_KVM_ASYNC_PF_EN/_INT read back (hex); ! = model differs, "
             "~ = only as 5bb9ac186512 makes it",
             "columns: " + "; ".join(f"{SHORT.get(n, n)} = {n}" for n in names),
             "row".ljust(24) + "".join(SHORT.get(n, n)[:width - 1].rjust(width) for n in names)]
    for row in ROWS:
        cells = []
        for cname in names:
            r = real[cname][row.name]
            read = r["read"]
            cell = ("+" if r["accepted"] else "-") + " " + "/".join(
                "?" if read[k] is None else read[k][2:] for k in ("EN", "INT"))
            if model is not None and model.get(cname, {}).get(row.name) not in (None, r):
                cell = ("~" if (cname, row.name) in fixed else "!") + cell
            cells.append(cell.rjust(width))
        lines.append(row.name.ljust(24) + "".join(cells))
    return "\n".join(lines)
