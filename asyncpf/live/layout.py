"""The live guest's memory: page tables, GDT, TSS, IDT, parameters and log in one low slot.

Guest-physical = guest-virtual.  The low slot (``LOW_SIZE`` bytes of
anonymous memory at gpa 0) holds everything the guest needs; the touched
data is in file-backed slots from ``DATA_GPA`` (:mod:`asyncpf.live.backing`).
Four 2 MiB-page page directories identity-map the first 4 GiB, user-accessible
(the loop runs at CPL3; the handlers at CPL0 do not rely on U=0).

Addresses and parameter offsets come from ``guest.S`` through its symbol table
(:data:`asyncpf.live.guestcode.SYMBOLS`), so the two cannot disagree.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .backing import LEAD
from .guestcode import CODE, LOAD_ADDRESS, SYMBOLS
from .kvmapi import Regs, Segment, Sregs

LOW_SIZE = 2 << 20
PML4, PDPT, PD0 = 0x1000, 0x2000, 0x3000          # PD0..PD0+0x3000: four page directories
GDT, TSS = 0x7000, 0x7800
IDT = 0x8000
PARAMS, AREA, LOG = SYMBOLS["PARAMS"], SYMBOLS["AREA"], SYMBOLS["LOG"]
LOG_MAX = SYMBOLS["LOG_MAX"]
MSR_LIST, MSR_LIST_MAX = SYMBOLS["MSR_LIST"], 128
KERNEL_STACK_TOP = 0x30000
USER_STACK_TOP = 0x40000
DATA_GPA = 1 << 30                                  # the first file-backed slot

SEL_KCODE, SEL_KDATA, SEL_UDATA, SEL_UCODE, SEL_TSS = 0x08, 0x10, 0x1B, 0x23, 0x28

# log record kinds, as guest.S writes them
K_PF, K_IRQ, K_ACK, K_EXC, K_DONE, K_WRMSR = (SYMBOLS[k] for k in ("K_PF", "K_IRQ", "K_ACK", "K_EXC", "K_DONE",
                                                                    "K_WRMSR"))
KIND_NAMES = {K_PF: "pf", K_IRQ: "irq", K_ACK: "ack", K_EXC: "exception", K_DONE: "done", K_WRMSR: "wrmsr"}
EXIT_CODES = {0: "done", 0xE0: "unexpected exception or interrupt", 0xE1: "an ordinary #PF (flags word 0)",
              0xE2: "#PF loop (log limit reached)"}

PF_WAIT, PF_RETRY, PF_DISABLE = 0, 1, 2


@dataclass(frozen=True)
class GuestParams:
    """What one run of guest.S does (the PARAMS block)."""

    base: int = DATA_GPA + LEAD  # the first touched address: LEAD bytes into the data slot
    stride: int = 4 << 20
    count: int = 0
    pf_mode: int = PF_WAIT
    x2apic: bool = True
    int_val: int = 0
    en_val: int = 0              # 0: the guest never writes MSR_KVM_ASYNC_PF_EN
    log_limit: int = 400
    msrs: tuple[tuple[int, int], ...] = ()   # MSR-table mode: the guest only writes these, in order

    def __post_init__(self) -> None:
        if len(self.msrs) > MSR_LIST_MAX:
            raise ValueError(f"{len(self.msrs)} MSR writes: guest.S takes at most {MSR_LIST_MAX}")

    def pack(self) -> bytes:
        values = {"P_BASE": self.base, "P_STRIDE": self.stride, "P_COUNT": self.count, "P_PF_MODE": self.pf_mode,
                  "P_X2APIC": int(self.x2apic), "P_INT_VAL": self.int_val, "P_EN_VAL": self.en_val,
                  "P_USER_STACK": USER_STACK_TOP, "P_LOG_COUNT": 0, "P_READY_TOKEN": 0,
                  "P_LOG_LIMIT": self.log_limit, "P_MSR_COUNT": len(self.msrs)}
        size = max(SYMBOLS[k] for k in values) - PARAMS + 8
        buf = bytearray(size)
        for name, value in values.items():
            struct.pack_into("<Q", buf, SYMBOLS[name] - PARAMS, value)
        return bytes(buf)


def _gdt_entry(access: int, flags: int) -> bytes:
    """A flat code/data descriptor: base 0, limit 0xfffff."""
    return struct.pack("<HHBBBB", 0xFFFF, 0, 0, access, (flags << 4) | 0xF, 0)


def _tss_descriptor(base: int, limit: int) -> bytes:
    low = struct.pack("<HHBBBB", limit & 0xFFFF, base & 0xFFFF, (base >> 16) & 0xFF, 0x89,
                      (limit >> 16) & 0xF, (base >> 24) & 0xFF)
    return low + struct.pack("<II", base >> 32, 0)


def _idt_entry(offset: int, dpl: int) -> bytes:
    """A 64-bit interrupt gate (IF cleared on entry)."""
    attr = 0x80 | (dpl << 5) | 0xE
    return struct.pack("<HHBBHII", offset & 0xFFFF, SEL_KCODE, 0, attr, (offset >> 16) & 0xFFFF, offset >> 32, 0)


def low_memory(params: GuestParams) -> bytes:
    """The initial contents of the low slot."""
    mem = bytearray(LOW_SIZE)
    struct.pack_into("<Q", mem, PML4, PDPT | 0x7)
    for i in range(4):
        struct.pack_into("<Q", mem, PDPT + 8 * i, (PD0 + 0x1000 * i) | 0x7)
        for j in range(512):
            struct.pack_into("<Q", mem, PD0 + 0x1000 * i + 8 * j, (((i << 30) | (j << 21))) | 0x87)  # P RW U PS
    gdt = (b"\0" * 8 + _gdt_entry(0x9A, 0xA) + _gdt_entry(0x92, 0xC) + _gdt_entry(0xF2, 0xC)
           + _gdt_entry(0xFA, 0xA) + _tss_descriptor(TSS, 0x67))
    mem[GDT:GDT + len(gdt)] = gdt
    struct.pack_into("<IQ", mem, TSS, 0, KERNEL_STACK_TOP)        # reserved, RSP0
    struct.pack_into("<H", mem, TSS + 0x66, 0x68)                  # no I/O bitmap
    code = LOAD_ADDRESS
    for vec in range(256):
        if vec < 32:
            handler = SYMBOLS["exc_stubs"] + 16 * vec
        else:
            handler = SYMBOLS["irq_stub"]
        mem[IDT + 16 * vec:IDT + 16 * vec + 16] = _idt_entry(code + handler, 0)
    mem[IDT + 16 * 14:IDT + 16 * 15] = _idt_entry(code + SYMBOLS["pf_handler"], 0)
    mem[IDT + 16 * 6:IDT + 16 * 7] = _idt_entry(code + SYMBOLS["exit_handler"], 0)
    mem[IDT + 16 * 13:IDT + 16 * 14] = _idt_entry(code + SYMBOLS["gp_handler"], 0)
    vector = params.int_val & 0xFF
    if vector >= 32:
        mem[IDT + 16 * vector:IDT + 16 * vector + 16] = _idt_entry(code + SYMBOLS["apf_irq_handler"], 0)
    packed = params.pack()
    mem[PARAMS:PARAMS + len(packed)] = packed
    for i, (msr, value) in enumerate(params.msrs):
        struct.pack_into("<IIQ", mem, MSR_LIST + 16 * i, msr, 0, value)
    mem[code:code + len(CODE)] = CODE
    return bytes(mem)


def _segment(selector: int, code: bool, dpl: int = 0) -> Segment:
    return Segment(base=0, limit=0xFFFFFFFF, selector=selector, type=0xB if code else 0x3, present=1, dpl=dpl,
                   db=0 if code else 1, s=1, l=1 if code else 0, g=1)


def initial_sregs(sregs: Sregs) -> Sregs:
    """64-bit long mode, paging on, CPL0, the GDT/IDT/TSS of :func:`low_memory`."""
    sregs.cs = _segment(SEL_KCODE, True)
    for name in ("ds", "es", "fs", "gs", "ss"):
        setattr(sregs, name, _segment(SEL_KDATA, False))
    sregs.tr = Segment(base=TSS, limit=0x67, selector=SEL_TSS, type=0xB, present=1, s=0)
    sregs.gdt.base, sregs.gdt.limit = GDT, 6 * 8 - 1
    sregs.idt.base, sregs.idt.limit = IDT, 256 * 16 - 1
    sregs.cr0 = 0x80050033     # PG WP NE ET MP PE
    sregs.cr3 = PML4
    sregs.cr4 = 0x620          # PAE OSFXSR OSXMMEXCPT
    sregs.efer = 0x500         # LME LMA
    return sregs


def initial_regs() -> Regs:
    regs = Regs()
    regs.rip = LOAD_ADDRESS + SYMBOLS["kernel_entry"]
    regs.rsp = KERNEL_STACK_TOP
    regs.rflags = 0x2
    return regs


@dataclass(frozen=True)
class LogRecord:
    kind: str
    a: int
    b: int

    def to_json(self) -> list:
        return [self.kind, self.a, self.b]


def read_log(mem: bytes | memoryview) -> list[LogRecord]:
    """The records the guest appended, in order."""
    count = struct.unpack_from("<Q", mem, SYMBOLS["P_LOG_COUNT"])[0]
    out = []
    for i in range(min(count, LOG_MAX)):
        kind, a, b = struct.unpack_from("<IIQ", mem, LOG + 16 * i)
        out.append(LogRecord(KIND_NAMES.get(kind, f"kind{kind}"), a, b))
    return out
