"""The guest/host ABI per protocol generation (asyncpf/abi.py)."""

from __future__ import annotations

import struct

import pytest

from asyncpf import abi
from asyncpf.abi import (
    GENERATIONS,
    INTERRUPT,
    LEGACY,
    SEED,
    diff_table,
    generation,
    make_token,
    pack_area,
    token_vcpu,
    unpack_area,
)


# --- tokens ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "apf_id, vcpu, token",
    [
        (0, 0, 0),
        (1, 0, 0x1000),
        (1, 5, 0x1005),
        (0x123, 0xABC, 0x123ABC),
        ((1 << 20) - 1, 0, 0xFFFFF000),
        ((1 << 20) - 1, 4095, 0xFFFFFFFF),
        (1 << 20, 3, 3),            # u32 wrap after 2^20 ids per vcpu
        ((1 << 20) + 7, 3, 0x7003),
    ],
)
def test_make_token(apf_id, vcpu, token):
    assert make_token(apf_id, vcpu) == token
    assert 0 <= make_token(apf_id, vcpu) <= 0xFFFFFFFF


def test_token_vcpu_round_trip():
    for apf_id in (0, 1, 99, (1 << 20) - 1, 1 << 20, 12345678):
        for vcpu in (0, 1, 63, 4095):
            assert token_vcpu(make_token(apf_id, vcpu)) == vcpu
    assert token_vcpu(0x7003) == 3


@pytest.mark.parametrize("vcpu", [4096, 5000, -1])
def test_token_refuses_vcpu_outside_12_bits(vcpu):
    with pytest.raises(ValueError, match=str(vcpu)):
        make_token(1, vcpu)


# --- each modelled generation, as its host behaves -------------------------------------

@pytest.mark.parametrize("gen, msr, cpuid_bit, wake_all, limit", [
    ("seed", 0x13, 3, None, None),
    ("legacy", 0x4B564D02, 4, 0xFFFFFFFF, 64),
])
def test_host_speaks_the_published_abi_of_its_generation(gen, msr, cpuid_bit, wake_all, limit):
    """CPUID bit, MSR number, the wake-all token and the per-vcpu limit, seen through what the host does."""
    from conftest import machine, run

    from asyncpf.host import mmu, x86
    from asyncpf.standin import APF_AREA_GPA

    m = machine(gen)
    v = m.vcpus[0]
    assert v.arch.cpuid_features == 1 << cpuid_bit
    assert run(m, x86.kvm_set_msr_common(v, msr, APF_AREA_GPA | abi.KVM_ASYNC_PF_ENABLED)) == 0
    run(m, v.kvm.twins.kvm_check_async_pf_completion(v))
    assert (v.arch.cr2 if v.arch.exception.pending else None) == wake_all   # registering wakes all (2.6.38)
    v.arch.exception.pending = False
    started = []
    for gfn in range(100, 165):                                             # 65 faults outstanding at once
        started.append(mmu.kvm_arch_setup_async_pf(v, gfn << 12, gfn))
        v.arch.exception.pending = False
    assert sum(started) == (limit or 65) and v.stat["async_pf_limit_hits"] == (0 if limit is None else 1)


def test_area_layouts():
    assert len(pack_area(SEED)) == SEED.area_size == 8
    # legacy: `enabled` sits at offset 64 of a 68-byte area
    raw = pack_area(LEGACY, enabled=0xA1B2C3D4)
    assert len(raw) == 68 and raw[64:68] == struct.pack("<I", 0xA1B2C3D4) and raw[:64] == bytes(64)


def test_every_generation_is_modelled_with_its_own_cpuid():
    assert all(g.modelled for g in GENERATIONS.values())
    assert INTERRUPT.cpuid_features == (1 << 4) | (1 << 14)   # ASYNC_PF and ASYNC_PF_INT
    assert LEGACY.cpuid_features == 1 << 4 and SEED.cpuid_features == 1 << 3
    assert INTERRUPT.msr_async_pf_int == 0x4B564D06
    assert INTERRUPT.msr_async_pf_ack == 0x4B564D07
    assert INTERRUPT.area_size == 64 and INTERRUPT.area_fields == ("flags", "token")   # no 'enabled' in 6.18


def test_reserved_mask_excludes_the_generation_flag_bits():
    for gen in GENERATIONS.values():
        flags = 0
        for name in gen.msr_flag_bits:
            flags |= gen.msr_flag(name)
        assert flags & gen.msr_reserved_mask == 0, gen


def test_msr_flag():
    assert LEGACY.msr_flag("KVM_ASYNC_PF_ENABLED") == 1
    assert LEGACY.msr_flag("KVM_ASYNC_PF_SEND_ALWAYS") == 2
    with pytest.raises(ValueError, match="KVM_ASYNC_PF_SEND_ALWAYS"):
        SEED.msr_flag("KVM_ASYNC_PF_SEND_ALWAYS")
    with pytest.raises(ValueError, match="KVM_ASYNC_PF_DELIVERY_AS_INT"):
        LEGACY.msr_flag("KVM_ASYNC_PF_DELIVERY_AS_INT")
    assert INTERRUPT.msr_flag("KVM_ASYNC_PF_DELIVERY_AS_INT") == 8


# --- the shared area ---------------------------------------------------------------

@pytest.mark.parametrize("gen", [SEED, LEGACY, INTERRUPT], ids=lambda g: g.name)
def test_pack_unpack_round_trip(gen):
    values = {f: 0x01020304 + i for i, f in enumerate(gen.area_fields)}
    raw = pack_area(gen, **values)
    assert len(raw) == gen.area_size
    assert unpack_area(gen, raw) == values
    # unnamed fields are zero
    assert unpack_area(gen, pack_area(gen)) == {f: 0 for f in gen.area_fields}


@pytest.mark.parametrize("gen", [SEED, LEGACY], ids=lambda g: g.name)
def test_reason_is_little_endian_at_offset_0(gen):
    raw = pack_area(gen, reason=abi.KVM_PV_REASON_PAGE_READY)
    assert raw[:4] == b"\x02\x00\x00\x00"
    raw = pack_area(gen, reason=0x11223344)
    assert raw[:4] == b"\x44\x33\x22\x11"
    assert set(raw[4:]) == {0}


def test_seed_layout():
    assert pack_area(SEED, reason=1, enabled=1) == b"\x01\x00\x00\x00\x01\x00\x00\x00"


def test_interrupt_layout():
    raw = pack_area(INTERRUPT, flags=1, token=0x1005)
    assert raw[0:4] == b"\x01\x00\x00\x00"
    assert raw[4:8] == b"\x05\x10\x00\x00"
    assert raw[8:] == bytes(56)
    with pytest.raises(ValueError, match="enabled"):   # v6.18 dropped the field the guest used to write
        pack_area(INTERRUPT, enabled=1)


def test_pack_values_are_u32():
    raw = pack_area(LEGACY, reason=-1)
    assert raw[:4] == b"\xff\xff\xff\xff"


@pytest.mark.parametrize("gen, bad", [(SEED, "token"), (LEGACY, "flags"), (INTERRUPT, "reason")],
                         ids=["seed", "legacy", "interrupt"])
def test_pack_refuses_unknown_fields(gen, bad):
    with pytest.raises(ValueError, match=bad):
        pack_area(gen, **{bad: 1})


@pytest.mark.parametrize("gen", [SEED, LEGACY, INTERRUPT], ids=lambda g: g.name)
def test_unpack_refuses_wrong_length(gen):
    good = bytes(gen.area_size)
    for bad in (good[:-1], good + b"\x00", b""):
        with pytest.raises(ValueError, match=str(len(bad))):
            unpack_area(gen, bad)


# --- looking generations up --------------------------------------------------------

def test_generation_lookup():
    assert generation("seed") is SEED
    assert generation("legacy") is LEGACY
    assert generation(LEGACY) is LEGACY


def test_unknown_generation():
    with pytest.raises(ValueError, match="unknown protocol generation 'nope'") as info:
        generation("nope")
    for name in ("seed", "legacy", "interrupt"):
        assert name in str(info.value)


def test_every_generation_can_be_asked_for_by_name_or_object():
    for name, gen in GENERATIONS.items():
        assert generation(name) is gen and generation(gen) is gen


# --- the diff table ----------------------------------------------------------------

def _rows(table: str) -> dict[str, str]:
    lines = table.splitlines()
    return {line.split()[0]: line for line in lines[1:]}


def test_diff_table_has_differing_rows_only():
    table = diff_table()
    header = table.splitlines()[0].split()
    assert header == ["seed", "legacy", "interrupt"]
    rows = _rows(table)
    for name in ("msr_async_pf_en", "kvm_feature_async_pf", "broadcast_token",
                 "async_pf_per_vcpu", "area_format", "page_ready_delivery"):
        assert name in rows
    # fields that are equal for all three are left out
    assert "name" not in rows


def test_diff_table_of_two_generations():
    rows = _rows(diff_table((LEGACY, INTERRUPT)))
    assert "msr_async_pf_int" in rows and "msr_async_pf_ack" in rows
    for equal in ("msr_async_pf_en", "kvm_feature_async_pf", "broadcast_token",
                  "async_pf_per_vcpu", "apf_halt", "not_present_at", "gup_nowait"):
        assert equal not in rows, equal
    assert "0x4b564d06" in rows["msr_async_pf_int"]


def test_diff_table_all_rows():
    rows = _rows(diff_table((LEGACY, INTERRUPT), all_rows=True))
    assert "msr_async_pf_en" in rows and "apf_halt" in rows
    assert rows["msr_async_pf_en"].split()[1:] == ["0x4b564d02", "0x4b564d02"]


def test_diff_table_shows_msrs_and_masks_in_hex():
    rows = _rows(diff_table())
    assert rows["msr_async_pf_en"].split()[1:] == ["0x13", "0x4b564d02", "0x4b564d02"]
    assert rows["msr_reserved_mask"].split()[1:] == ["0x3e", "0x3c", "0x30"]
