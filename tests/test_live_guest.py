"""The live guest's machine code and memory layout (no /dev/kvm needed).

The bytes stored in asyncpf/live/guestcode.py must be what binutils makes of
asyncpf/live/guest.S (checked where ``as`` exists); the layout built in
Python must point the IDT at the handlers guest.S defines.
"""

from __future__ import annotations

import shutil
import struct

import pytest

from asyncpf.live import guestcode, layout
from asyncpf.live.layout import GuestParams


@pytest.mark.skipif(not all(shutil.which(t) for t in ("as", "objcopy", "objdump", "nm")),
                    reason="binutils (as, objcopy, objdump, nm) not installed: the stored bytes cannot be re-made here")
def test_stored_machine_code_is_what_the_assembler_makes_of_guest_S():
    code, symbols = guestcode.assemble()
    assert code == guestcode.CODE, "guest.S changed: run python -m asyncpf.live.guestcode --write"
    assert symbols == guestcode.SYMBOLS


def _gate(mem: bytes, vector: int) -> tuple[int, int]:
    lo, sel, _ist, attr, mid, hi, _ = struct.unpack_from("<HHBBHII", mem, layout.IDT + 16 * vector)
    return lo | (mid << 16) | (hi << 32), attr


def test_the_idt_points_at_guest_S_handlers():
    mem = layout.low_memory(GuestParams(count=1, int_val=0xF3))
    at = lambda name: guestcode.LOAD_ADDRESS + guestcode.SYMBOLS[name]  # noqa: E731
    assert _gate(mem, 14) == (at("pf_handler"), 0x8E)
    assert _gate(mem, 13) == (at("gp_handler"), 0x8E)
    assert _gate(mem, 6) == (at("exit_handler"), 0x8E)
    assert _gate(mem, 0xF3) == (at("apf_irq_handler"), 0x8E)
    assert _gate(mem, 0x20)[0] == at("irq_stub") and _gate(mem, 3)[0] == at("exc_stubs") + 16 * 3
    assert mem[guestcode.LOAD_ADDRESS:guestcode.LOAD_ADDRESS + len(guestcode.CODE)] == guestcode.CODE


def test_params_land_where_guest_S_reads_them():
    p = GuestParams(count=5, pf_mode=layout.PF_RETRY, int_val=0xF3, en_val=0xA009, msrs=((0x4B564D06, 7),))
    mem = layout.low_memory(p)
    q = lambda name: struct.unpack_from("<Q", mem, guestcode.SYMBOLS[name])[0]  # noqa: E731
    assert (q("P_COUNT"), q("P_PF_MODE"), q("P_INT_VAL"), q("P_EN_VAL"), q("P_MSR_COUNT")) == (5, 1, 0xF3, 0xA009, 1)
    assert q("P_BASE") == layout.DATA_GPA + (16 << 20) and q("P_STRIDE") == 4 << 20
    assert struct.unpack_from("<IIQ", mem, layout.MSR_LIST) == (0x4B564D06, 0, 7)


def test_a_log_reads_back_in_order():
    mem = bytearray(layout.low_memory(GuestParams()))
    struct.pack_into("<Q", mem, guestcode.SYMBOLS["P_LOG_COUNT"], 2)
    struct.pack_into("<IIQ", mem, layout.LOG, layout.K_PF, 1, 0x1000)
    struct.pack_into("<IIQ", mem, layout.LOG + 16, layout.K_IRQ, 0xF3, 0x1000)
    assert [r.to_json() for r in layout.read_log(mem)] == [["pf", 1, 0x1000], ["irq", 0xF3, 0x1000]]


def test_too_many_msr_writes_are_refused():
    with pytest.raises(ValueError, match="at most 128"):
        GuestParams(msrs=((0x4B564D07, 1),) * 129)
