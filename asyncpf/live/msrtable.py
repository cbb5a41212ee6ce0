"""The MSR table: every class of async PF MSR write, accepted or refused, and what reads back.

Each row is written by the VMM (``KVM_SET_MSRS``, a host-initiated write:
the same ``kvm_set_msr_common`` cases as a guest WRMSR, which would get #GP
where the VMM's write is refused) into a fresh vcpu, after the row's set-up
writes; then MSR_KVM_ASYNC_PF_EN, _INT and _ACK are read back with
``KVM_GET_MSRS`` (``None``: the read is refused).  Every row runs in each
:data:`CONFIGS` VM: with and without an in-kernel irqchip, with
KVM_CAP_ENFORCE_PV_FEATURE_CPUID on and off, and with CPUID 0x40000001
showing ASYNC_PF and ASYNC_PF_INT or not.  Sources for what the kernel does:
Documentation/virt/kvm/x86/msr.rst@v6.18 and arch/x86/kvm/x86.c@v6.18
(kvm_set_msr_common, kvm_pv_enable_async_pf, kvm_pv_enable_async_pf_int).

The model side runs the same writes through the generation's MSR switch
(``kvm_set_msr_common``) on a model vcpu; configurations the model cannot
express (it always has an in-kernel LAPIC and never enforces PV CPUID) are
reported as such, not compared.
"""

from __future__ import annotations

import mmap
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from .. import abi
from . import backing, layout
from .realrun import VmConfig, make_vcpu

EN, INT, ACK = abi.INTERRUPT.msr_async_pf_en, abi.INTERRUPT.msr_async_pf_int, abi.INTERRUPT.msr_async_pf_ack
MSR_NAME = {EN: "EN", INT: "INT", ACK: "ACK"}
A = layout.AREA
ON, SA, VMX, INTD = (abi.KVM_ASYNC_PF_ENABLED, abi.KVM_ASYNC_PF_SEND_ALWAYS, abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
                     abi.KVM_ASYNC_PF_DELIVERY_AS_INT)
OUTSIDE = 0x8000_0000          # no memslot there (the table's VMs have only the 2 MiB low slot)


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


def _result(setup_ok: list[bool], ok: bool, back: dict[str, int | None]) -> dict[str, Any]:
    return {"setup": setup_ok, "accepted": ok, "read": {k: None if v is None else hex(v) for k, v in back.items()}}


def run_real() -> dict[str, dict[str, dict]]:
    """config -> row -> {setup, accepted, read}: every row in a fresh VM of every configuration."""
    out: dict[str, dict[str, dict]] = {}
    low = mmap.mmap(-1, layout.LOW_SIZE, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        for cname, cfg in CONFIGS.items():
            out[cname] = {}
            for row in ROWS:
                with ExitStack() as stack:
                    vm, vcpu = make_vcpu(stack, cfg)
                    vm.set_memory(0, 0, layout.LOW_SIZE, backing.address_of(low))
                    setup_ok = [vcpu.set_msr(m, v) for m, v in row.setup]
                    ok = vcpu.set_msr(*row.write)
                    back = {MSR_NAME[m]: vcpu.get_msr(m) for m in (EN, INT, ACK)}
                out[cname][row.name] = _result(setup_ok, ok, back)
    finally:
        low.close()
    return out


# --- the model --------------------------------------------------------------------------------------

def model_can(cfg: VmConfig) -> str | None:
    """None if the model can express ``cfg``; else what it lacks."""
    if not cfg.irqchip:
        return "the model always has an in-kernel LAPIC"
    if cfg.enforce_pv_cpuid:
        from ..host.x86 import KvmVcpuArch
        if not hasattr(KvmVcpuArch(), "pv_cpuid_enforce"):
            return "the model has no KVM_CAP_ENFORCE_PV_FEATURE_CPUID (vcpu.arch.pv_cpuid_enforce)"
    return None


def _model_read(vcpu: Any) -> dict[str, int | None]:
    """MSR reads on the model: the generation's ``kvm_get_msr_common`` if it has one, else the stored values."""
    from ..host import x86
    get = getattr(x86, "kvm_get_msr_common", None)
    if get is not None:
        return {MSR_NAME[m]: get(vcpu, m) for m in (EN, INT, ACK)}
    apf = vcpu.arch.apf
    return {"EN": getattr(apf, "msr_en_val", apf.msr_val), "INT": getattr(apf, "msr_int_val", None), "ACK": 0}


def run_model(generation: str) -> dict[str, dict[str, dict]]:
    """The same table on the model (configurations it cannot express: a one-entry dict saying why)."""
    from ..build import SMALL_HOST
    from ..host import x86
    from ..machine import Machine
    from .modelguest import IdleGuest

    out: dict[str, dict[str, dict]] = {}
    for cname, cfg in CONFIGS.items():
        why = model_can(cfg)
        if why:
            out[cname] = {"not modelled": {"reason": why}}
            continue
        out[cname] = {}
        for row in ROWS:
            m = Machine(SMALL_HOST.replace(generation=generation, guest_mem=layout.LOW_SIZE), lambda i: IdleGuest())
            vcpu = m.vcpus[0]
            vcpu.arch.cpuid_features = ((int(cfg.cpuid_async_pf) << 4)
                                        | (int(cfg.cpuid_async_pf_int) << abi.CPUID_FEATURE_BITS[
                                            "KVM_FEATURE_ASYNC_PF_INT"]))
            if cfg.enforce_pv_cpuid:
                vcpu.arch.pv_cpuid_enforce = True

            def writes(row=row, vcpu=vcpu):
                results = []
                for msr, value in (*row.setup, row.write):
                    results.append(not (yield from x86.kvm_set_msr_common(vcpu, msr, value)))
                return results

            proc = m.env.process(writes(), "kvm_set_msrs")
            m.env.run()
            results = proc.value
            out[cname][row.name] = _result(results[:-1], results[-1], _model_read(vcpu))
    return out


def compare_tables(real: dict, model: dict) -> tuple[list[str], list[str], int]:
    """(mismatching rows, configurations not compared and why, rows that agree)."""
    mismatches, skipped, agree = [], [], 0
    for cname, rows in real.items():
        mrows = model.get(cname, {})
        if "not modelled" in mrows:
            skipped.append(f"{cname}: {mrows['not modelled']['reason']}")
            continue
        for rname, r in rows.items():
            mr = mrows.get(rname)
            if mr == r:
                agree += 1
            else:
                mismatches.append(f"{cname} / {rname}: real {r}, model {mr}")
    return mismatches, skipped, agree


def render(real: dict, model: dict | None = None) -> str:
    """A plain-text table: one line per row, one column per configuration (+ accepted, - refused)."""
    names = list(real)
    lines = ["row".ljust(26) + " ".join(n[:12].rjust(12) for n in names)]
    for row in ROWS:
        cells = []
        for cname in names:
            r = real[cname][row.name]
            mark = "+" if r["accepted"] else "-"
            cell = f"{mark} EN={r['read']['EN'] or '-'}"
            if model is not None and row.name in model.get(cname, {}):
                cell = ("" if model[cname][row.name] == r else "!") + cell
            cells.append(cell[:12].rjust(12))
        lines.append(row.name.ljust(26) + " ".join(cells))
    return "\n".join(lines)
