"""Read the kvm events of a live capture: tracefs ``trace`` text of a current kernel (6.18 layout).

Narrow on purpose: it reads the lines the live runs capture (the modern
layout with the irq-flags/preempt column, the header block) for the events
of :data:`asyncpf.live.tracefs.EVENTS`, and refuses anything else it claims
to understand.  The async PF messages are parsed with the interrupt-era
tracepoint table of :mod:`asyncpf.trace` (the formats of
include/trace/events/kvm.h@v6.18 and arch/x86/kvm/trace.h@v6.18), read
with the kernel's own printf: lib/vsprintf.c prints ``%#llx`` of 0 as
``0x0`` (C's printf prints ``0``, as :mod:`asyncpf.trace` does), so the
patterns here accept both.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r" *(?P<comm>\S(?:.*\S)?)-(?P<pid>\d+) +\[(?P<cpu>\d{3,})\] +(?:[.a-zA-Z0-9]{4,5} +)?"
                   r"(?P<sec>\d+)\.(?P<usec>\d{6}): (?P<name>\w+): (?P<msg>.*)")
_INJ = re.compile(r"(?P<exc>#[A-Z]{2})(?: \((?P<code>0x[0-9a-f]+)\))?(?P<re> \[reinjected\])?")
_EOI = re.compile(r"apicid (?P<apicid>[0-9a-f]+) vector (?P<vector>-?\d+)")
_EXC_NR = {"#DE": 0, "#DB": 1, "#BP": 3, "#OF": 4, "#BR": 5, "#UD": 6, "#NM": 7, "#DF": 8, "#TS": 10, "#NP": 11,
           "#SS": 12, "#GP": 13, "#PF": 14, "#MF": 16, "#AC": 17, "#MC": 18}
_HEX = r"(0x[0-9a-f]+|0)"
_PATTERNS = {
    "kvm_try_async_get_page": re.compile(rf"gva = {_HEX}, gfn = {_HEX}"),
    "kvm_async_pf_repeated_fault": re.compile(rf"gva = {_HEX}, gfn = {_HEX}"),
    "kvm_async_pf_not_present": re.compile(rf"token {_HEX} gva {_HEX}"),
    "kvm_async_pf_ready": re.compile(rf"token {_HEX} gva {_HEX}"),
    "kvm_async_pf_completed": re.compile(rf"gva {_HEX} address {_HEX}"),
    "kvm_apic_accept_irq": re.compile(r"apicid ([0-9a-f]+) vec (\d+) \((Fixed|LowPrio|SMI|Res3|NMI|INIT|SIPI|ExtINT)\|"
                                      r"(edge|level)\)"),
    "kvm_msr": re.compile(r"msr_(read|write) ([0-9a-f]+) = 0x([0-9a-f]+)( \(#GP\))?"),
}
_NAMES = {"kvm_try_async_get_page": ("gva", "gfn"), "kvm_async_pf_repeated_fault": ("gva", "gfn"),
          "kvm_async_pf_not_present": ("token", "gva"), "kvm_async_pf_ready": ("token", "gva"),
          "kvm_async_pf_completed": ("gva", "address")}


class CaptureParseError(ValueError):
    """A line of a live capture that is not what it claims to be."""


@dataclass(frozen=True)
class Event:
    """One traced event: who emitted it (comm, pid) and its fields by name."""

    line: int
    comm: str
    pid: int
    t_us: int
    name: str
    fields: dict

    @property
    def on_worker(self) -> bool:
        return self.comm.startswith("kworker")


def parse(text: str) -> list[Event]:
    """The events of a tracefs ``trace`` text, in buffer order; header lines skipped."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise CaptureParseError(f"line {n}: {line!r}: expected '<comm>-<pid> [<cpu>] <flags> <sec>.<usec>: "
                                    "<event>: <message>'")
        name, msg = m["name"], m["msg"]
        try:
            fields = _fields(name, msg)
        except ValueError as exc:
            raise CaptureParseError(f"line {n}: {line!r}: {exc}") from None
        out.append(Event(n, m["comm"], int(m["pid"]), int(m["sec"]) * 1_000_000 + int(m["usec"]), name, fields))
    return out


def _fields(name: str, msg: str) -> dict:
    pattern = _PATTERNS.get(name)
    if pattern is not None:
        m = pattern.fullmatch(msg)
        if m is None:
            raise ValueError(f"{name} message {msg!r} does not match {pattern.pattern!r}")
        g = m.groups()
        if name == "kvm_apic_accept_irq":
            return {"apicid": int(g[0], 16), "vec": int(g[1]), "dm": g[2], "tm": g[3]}
        if name == "kvm_msr":
            return {"write": g[0] == "write", "ecx": int(g[1], 16), "data": int(g[2], 16), "exception": bool(g[3])}
        return dict(zip(_NAMES[name], (int(v, 16) for v in g)))
    if name == "kvm_inj_exception":
        m = _INJ.fullmatch(msg)
        if m is None or m["exc"] not in _EXC_NR:
            raise ValueError(f"kvm_inj_exception message {msg!r}: expected '#XX', '#XX (0xN)' or with ' [reinjected]'")
        return {"exception": _EXC_NR[m["exc"]], "error_code": None if m["code"] is None else int(m["code"], 16),
                "reinjected": bool(m["re"])}
    if name == "kvm_eoi":
        m = _EOI.fullmatch(msg)
        if m is None:
            raise ValueError(f"kvm_eoi message {msg!r}: expected 'apicid N vector V'")
        return {"apicid": int(m["apicid"], 16), "vector": int(m["vector"])}
    return {"message": msg}  # another event: kept opaque
