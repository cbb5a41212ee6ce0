"""Helpers for notebook 02: the PV ABI -- the MSR's bits, the shared area, MSR writes and their refusals."""

from __future__ import annotations

from typing import Any, Sequence

from .. import abi
from ..host import x86
from ..host.vcpu import Stop, WrMsr, apic_eoi
from ..machine import ERROR_GFN, HostConfig, Machine
from .common import MiB, enable_value, text_table


# --- 02: the PV ABI -----------------------------------------------------------------------------

def area_layout(gen: str | abi.Generation) -> str:
    """Field, byte offset and size of the shared area, found by packing each field on its own."""
    g = abi.generation(gen, modelled=False)
    rows = []
    for f in g.area_fields:
        raw = abi.pack_area(g, **{f: abi.U32})
        at = [i for i, b in enumerate(raw) if b]
        rows.append((f, at[0], len(at), "host" if at[0] < g.host_writes_bytes else "guest"))
    return text_table(("field", "offset", "bytes", "written by"), rows, right=(1, 2)) + f"\n(total {g.area_size} bytes)"


def msr_layout(gen: str | abi.Generation) -> str:
    """The bits of MSR_KVM_ASYNC_PF_EN in ``gen``: flags, reserved, the area gpa."""
    g = abi.generation(gen, modelled=False)
    rows = [(f"{g.msr_flag(n).bit_length() - 1}", n) for n in g.msr_flag_bits]
    rows += [(str(b), "reserved: a write with it set gets #GP") for b in range(6) if g.msr_reserved_mask >> b & 1]
    rows.append(("63:6", "gpa of the 64-byte aligned kvm_vcpu_pv_apf_data"))
    return f"MSR {g.msr_async_pf_en:#x} ({g.name})\n" + text_table(("bit", "meaning"), rows)


class MsrGuest:
    """A guest that executes a list of WRMSRs, recording results, exceptions and the APF state."""

    def __init__(self, writes: Sequence[tuple[int, int]]):
        self.ops = [WrMsr(msr, data) for msr, data in writes]
        self.results: list[int] = []
        self.exceptions: list[tuple[int, int, int]] = []  # (after write #, vector, cr2)
        self.states: list[tuple] = []                     # APF state before each write, and at the end

    def next_op(self, vcpu):
        self.states.append(apf_state(vcpu))
        return self.ops.pop(0) if self.ops else Stop()

    def op_done(self, vcpu, op, result):
        self.results.append(result)

    def op_progress(self, vcpu, op, ran_ns):
        pass

    def deliver_exception(self, vcpu, nr, error_code):
        self.exceptions.append((len(self.results), nr, vcpu.arch.cr2))

    def deliver_interrupt(self, vcpu, vector):
        apic_eoi(vcpu)

    def delivery_gfn(self, vcpu):
        return None


def apf_state(vcpu) -> tuple[int, int, bool]:
    """What an MSR write may change: (msr_val, area gpa, send_user_only)."""
    apf = vcpu.arch.apf
    return apf.msr_val, apf.data.gpa, apf.send_user_only


def msr_write(gen: str, data: int, msr: int | None = None) -> dict[str, Any]:
    """Register the area properly, then write ``data`` to ``msr`` (default: the generation's MSR).

    Returns the second write's result, the exceptions it caused and the APF
    state just before and after it.
    """
    g = abi.generation(gen)
    msr = g.msr_async_pf_en if msr is None else msr
    guest = MsrGuest([(g.msr_async_pf_en, enable_value(gen)), (msr, data)])
    m = Machine(HostConfig(generation=gen, guest_mem=4 * MiB, host_limit=1 * MiB, seed=0), lambda i: guest)
    m.start().run()
    m.shutdown()
    exc = [EXC_NAMES.get(nr, str(nr)) for after, nr, _ in guest.exceptions if after == 2]
    return {"result": guest.results[1], "exceptions": exc, "before": guest.states[1], "after": guest.states[-1],
            "trace": [ln.split(": ", 1)[1] for ln in m.tracer.text().splitlines() if "kvm_msr" in ln][-1],
            "leaks": m.leaks()}


EXC_NAMES = x86.EXCEPTION_NAMES


def msr_refusals(gen: str) -> list[tuple[str, int, int]]:
    """(why, msr, data) of writes the ``gen`` host must refuse."""
    g = abi.generation(gen)
    other = abi.LEGACY if g.name == "seed" else abi.SEED
    good = enable_value(gen)
    cases = [(f"reserved bit {b}", g.msr_async_pf_en, good | 1 << b) for b in range(6) if g.msr_reserved_mask >> b & 1]
    cases += [("area gpa beyond guest RAM", g.msr_async_pf_en, (4 * MiB) | abi.KVM_ASYNC_PF_ENABLED),
              ("area gpa in no memslot", g.msr_async_pf_en, (ERROR_GFN << abi.PAGE_SHIFT) | abi.KVM_ASYNC_PF_ENABLED),
              (f"the {other.name} generation's MSR number", other.msr_async_pf_en, good)]
    return cases


def refusal_table(gen: str) -> tuple[str, list[dict[str, Any]]]:
    """Every refusal of :func:`msr_refusals` run through :func:`msr_write`: a table and the raw results."""
    results, rows = [], []
    for why, msr, data in msr_refusals(gen):
        r = msr_write(gen, data, msr)
        results.append(r)
        rows.append((why, f"{msr:#x}", f"{data:#x}", "#GP" if r["result"] else "ok", ", ".join(r["exceptions"]),
                     "yes" if r["before"] == r["after"] else "NO"))
    return text_table(("write", "msr", "value", "host", "guest got", "state unchanged"), rows), results
