"""The guest/host ABI of async PF, one object per protocol generation.

Mirrors: ``arch/x86/include/asm/kvm_para.h`` (later ``uapi/asm/kvm_para.h``),
``Documentation/kvm/msr.txt`` (later ``virt/kvm/x86/msr.rst``) and
``cpuid.txt``, as they stood in each generation.  Each generation's ``sources``
names the public list messages, commits and tagged files it was read from.

A :class:`Generation` also carries the few *behaviours* of the host that
changed between generations (how many not-present events can wait for entry,
whether repeated faults halt the vcpu, ...), so the rest of the model asks the
generation instead of scattering version checks.  ``print(diff_table())``
shows what differs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

KVM_CPUID_FEATURES = 0x40000001
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

KVM_PV_REASON_PAGE_NOT_PRESENT = 1
KVM_PV_REASON_PAGE_READY = 2

KVM_ASYNC_PF_ENABLED = 1 << 0
KVM_ASYNC_PF_SEND_ALWAYS = 1 << 1
KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT = 1 << 2
KVM_ASYNC_PF_DELIVERY_AS_INT = 1 << 3

# CPUID 0x40000001 EAX bits (Documentation/virtual/kvm/cpuid.txt, later virt/kvm/x86/cpuid.rst); the 2009 seed
# series used bit 3 for async PF (its Generation says so), the merged ABI bit 4
KVM_FEATURE_ASYNC_PF = 4
KVM_FEATURE_ASYNC_PF_VMEXIT = 10
KVM_FEATURE_ASYNC_PF_INT = 14

KVM_ASYNC_PF_VEC_MASK = 0xFF              # MSR_KVM_ASYNC_PF_INT bits 7:0 (Documentation/virt/kvm/x86/msr.rst)
HYPERVISOR_CALLBACK_VECTOR = 0xF3         # the vector a Linux 5.9+ guest asks page-ready on

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
BROADCAST_TOKEN = U32  # "~0": wake every task waiting for an APF (Documentation/kvm/msr.txt, 344d9588a9df)
TOKEN_VCPU_BITS = 12   # token = (id++ << 12) | vcpu_id (v2 patch 08/12; 7c90705bf2a3)


@dataclass(frozen=True)
class Generation:
    """One protocol generation: its ABI constants and the host behaviours that differ."""

    name: str
    title: str
    kernels: str
    sources: str
    modelled: bool
    # --- ABI -----------------------------------------------------------
    msr_async_pf_en: int
    msr_async_pf_int: int | None
    msr_async_pf_ack: int | None
    kvm_feature_async_pf: int          # bit in CPUID 0x40000001 EAX
    cpuid_features: int                # CPUID 0x40000001 EAX as a VMM of the era exposes it
    msr_flag_bits: tuple[str, ...]     # meaningful low bits of MSR_KVM_ASYNC_PF_EN
    msr_reserved_mask: int             # writes with any of these bits set are refused (#GP)
    area_c_struct: str
    area_format: str                   # struct module format, little endian
    area_fields: tuple[str, ...]
    host_writes_bytes: int             # how much of the area the host writes
    broadcast_token: int | None
    async_pf_per_vcpu: int | None
    # --- host behaviours -------------------------------------------------
    gup_nowait: str                    # how gfn_to_pfn_async avoids major faults
    worker_comm: str                   # the threads that run async_pf_execute (printf pattern)
    can_do_async_pf: str               # condition for going async at all
    cpl0_needs_send_always: bool       # kernel-mode fault -> halt/sync unless SEND_ALWAYS
    not_present_at: str                # "entry" (one slot, seed) or "setup" (merged)
    apf_halt: bool                     # gfn hash + KVM_REQ_APF_HALT on repeated fault
    completions_per_entry: int | None  # None: drain while the arch gate allows
    page_ready_delivery: str           # "#PF" or "interrupt"
    tracepoints: tuple[str, ...]

    @property
    def area_size(self) -> int:
        return struct.calcsize(self.area_format)

    def msr_flag(self, name: str) -> int:
        if name not in self.msr_flag_bits:
            raise ValueError(f"{name} is not an MSR_KVM_ASYNC_PF_EN bit in the {self.name} generation")
        return globals()[name]

    def __repr__(self) -> str:
        return f"<Generation {self.name}: {self.title}>"


SEED = Generation(
    name="seed",
    title="v2 patch series (2009-11-23)",
    kernels="not merged; the form in seed 000",
    sources="v2 patches 02, 03, 05 and 08/12, Msg-Ids 1258985167-29178-3/-4/-6/-9-git-send-email-gleb@redhat.com",
    modelled=True,
    msr_async_pf_en=0x13,
    msr_async_pf_int=None,
    msr_async_pf_ack=None,
    kvm_feature_async_pf=3,
    cpuid_features=1 << 3,
    msr_flag_bits=("KVM_ASYNC_PF_ENABLED",),
    # v2 documents gpa = data & ~0x3f with bit 0 = enable; refusing bits 5-1 is
    # assumed to match the merged code (UNCONFIRMED for v2 itself).
    msr_reserved_mask=0x3E,
    area_c_struct="struct kvm_vcpu_pv_apf_data { __u32 reason; __u32 enabled; };",
    area_format="<II",
    area_fields=("reason", "enabled"),
    host_writes_bytes=4,
    broadcast_token=None,  # wake-all arrived with v3 (migration support)
    async_pf_per_vcpu=None,  # the per-vcpu limit arrived with v4
    gup_nowait="get_user_pages_noio",
    worker_comm="kslowd%03d",
    can_do_async_pf="apf area registered, no event needing reinjection, CPL != 0",
    cpl0_needs_send_always=False,
    not_present_at="entry",
    apf_halt=False,
    completions_per_entry=1,
    page_ready_delivery="#PF",
    tracepoints=("kvm_try_async_get_page", "kvm_send_async_pf", "kvm_async_pf_completed"),
)

LEGACY = Generation(
    name="legacy",
    title="merged ABI, #PF for both events (2.6.38-5.7)",
    kernels="2.6.38 (enabled by FOLL_NOWAIT in 2.6.39) to 5.7",
    sources="v2.6.38 (af585b921e5d, 344d9588a9df, 7c90705bf2a3, 6adba5274206) and 0857b9e95c1a (2.6.39)",
    modelled=True,
    msr_async_pf_en=0x4B564D02,
    msr_async_pf_int=None,
    msr_async_pf_ack=None,
    kvm_feature_async_pf=KVM_FEATURE_ASYNC_PF,
    cpuid_features=1 << KVM_FEATURE_ASYNC_PF,
    msr_flag_bits=("KVM_ASYNC_PF_ENABLED", "KVM_ASYNC_PF_SEND_ALWAYS"),
    msr_reserved_mask=0x3C,  # 2.6.38 kvm_pv_enable_async_pf; 0x38 after 4.13 added bit 2
    area_c_struct="struct kvm_vcpu_pv_apf_data { __u32 reason; __u8 pad[60]; __u32 enabled; };",
    area_format="<I60xI",
    area_fields=("reason", "enabled"),
    host_writes_bytes=4,
    broadcast_token=BROADCAST_TOKEN,
    async_pf_per_vcpu=64,
    gup_nowait="FOLL_NOWAIT",
    worker_comm="kworker/u:%d",
    can_do_async_pf="in-kernel irqchip, no event needing reinjection, interrupts allowed",
    cpl0_needs_send_always=True,
    not_present_at="setup",
    apf_halt=True,
    completions_per_entry=1,
    page_ready_delivery="#PF",
    tracepoints=(
        "kvm_try_async_get_page",
        "kvm_async_pf_not_present",
        "kvm_async_pf_ready",
        "kvm_async_pf_completed",
        "kvm_async_pf_doublefault",
    ),
)

# Modelled as Linux 6.18 (host arch/x86/kvm/x86.c, virt/kvm/async_pf.c; guest
# arch/x86/kernel/kvm.c): the interrupt ABI of 5.8 (host) / 5.9 (guest) with
# the fixes of 2020-2025 that 6.18 carries.
INTERRUPT = Generation(
    name="interrupt",
    title="page-ready as an interrupt, ACK MSR (5.8+)",
    kernels="5.8 host / 5.9 guest onwards; modelled as 6.18",
    sources="Documentation/virt/kvm/x86/msr.rst@v6.18, commits 2635b5c4a0e4 557a961abbe0 b1d405751cd5",
    modelled=True,
    msr_async_pf_en=0x4B564D02,
    msr_async_pf_int=0x4B564D06,
    msr_async_pf_ack=0x4B564D07,
    kvm_feature_async_pf=KVM_FEATURE_ASYNC_PF,
    cpuid_features=(1 << KVM_FEATURE_ASYNC_PF) | (1 << KVM_FEATURE_ASYNC_PF_INT),  # QEMU's default since 5.2
    msr_flag_bits=(
        "KVM_ASYNC_PF_ENABLED",
        "KVM_ASYNC_PF_SEND_ALWAYS",
        "KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT",
        "KVM_ASYNC_PF_DELIVERY_AS_INT",
    ),
    msr_reserved_mask=0x30,
    # 5.8 to 6.7 still declared a trailing __u32 enabled that no host read; late 2023 dropped it for a per-cpu bool
    # in the guest (proposed in Msg-Id ZS7ERnnRqs8Fl0ZF@google.com): v6.18's kvm_para.h and msr.rst have 64 bytes
    area_c_struct="struct kvm_vcpu_pv_apf_data { __u32 flags; __u32 token; __u8 pad[56]; };",
    area_format="<II56x",
    area_fields=("flags", "token"),
    host_writes_bytes=8,
    broadcast_token=BROADCAST_TOKEN,
    async_pf_per_vcpu=64,
    gup_nowait="FOLL_NOWAIT",
    worker_comm="kworker/0:%d",
    can_do_async_pf="in-kernel LAPIC, no reinjection, no pending exception, interrupts allowed",
    cpl0_needs_send_always=True,
    not_present_at="setup",
    apf_halt=True,
    completions_per_entry=None,
    page_ready_delivery="interrupt",
    tracepoints=(
        "kvm_try_async_get_page",
        "kvm_async_pf_not_present",
        "kvm_async_pf_ready",
        "kvm_async_pf_completed",
        "kvm_async_pf_repeated_fault",
    ),
)

GENERATIONS: dict[str, Generation] = {g.name: g for g in (SEED, LEGACY, INTERRUPT)}
MODELLED = tuple(g.name for g in GENERATIONS.values() if g.modelled)
CPUID_FEATURE_BITS = {"KVM_FEATURE_ASYNC_PF": KVM_FEATURE_ASYNC_PF,
                      "KVM_FEATURE_ASYNC_PF_VMEXIT": KVM_FEATURE_ASYNC_PF_VMEXIT,
                      "KVM_FEATURE_ASYNC_PF_INT": KVM_FEATURE_ASYNC_PF_INT}


def generation(name: str | Generation, *, modelled: bool = True) -> Generation:
    """Look a generation up by name; refuse unknown ones (and unmodelled ones if asked)."""
    if isinstance(name, Generation):
        gen = name
    else:
        gen = GENERATIONS.get(name)
        if gen is None:
            raise ValueError(f"unknown protocol generation {name!r}; expected one of {sorted(GENERATIONS)}")
    if modelled and not gen.modelled:
        modelled_names = sorted(g.name for g in GENERATIONS.values() if g.modelled)
        raise ValueError(
            f"the {gen.name!r} generation ({gen.title}) is described but not modelled yet; "
            f"use one of {modelled_names}"
        )
    return gen


# --- tokens -------------------------------------------------------------------

def make_token(apf_id: int, vcpu_id: int) -> int:
    """``(apf_id << 12) | vcpu_id`` in u32 arithmetic, as ``kvm_arch_setup_async_pf`` builds it."""
    if not 0 <= vcpu_id < (1 << TOKEN_VCPU_BITS):
        raise ValueError(f"vcpu_id {vcpu_id} does not fit the token's low {TOKEN_VCPU_BITS} bits")
    return ((apf_id << TOKEN_VCPU_BITS) | vcpu_id) & U32


def token_vcpu(token: int) -> int:
    """The vcpu a (non-broadcast) token was issued on: its low 12 bits."""
    return token & ((1 << TOKEN_VCPU_BITS) - 1)


# --- the shared area ----------------------------------------------------------

def pack_area(gen: Generation, **values: int) -> bytes:
    """The guest's ``kvm_vcpu_pv_apf_data`` as bytes; unnamed fields are 0."""
    unknown = sorted(set(values) - set(gen.area_fields))
    if unknown:
        raise ValueError(f"{unknown} are not fields of the {gen.name} area; fields are {gen.area_fields}")
    return struct.pack(gen.area_format, *(values.get(f, 0) & U32 for f in gen.area_fields))


def unpack_area(gen: Generation, data: bytes) -> dict[str, int]:
    if len(data) != gen.area_size:
        raise ValueError(f"the {gen.name} area is {gen.area_size} bytes, got {len(data)}")
    return dict(zip(gen.area_fields, struct.unpack(gen.area_format, data)))


# --- a reader's table ------------------------------------------------------------

_HEX_FIELDS = ("msr_async_pf_en", "msr_async_pf_int", "msr_async_pf_ack", "msr_reserved_mask", "broadcast_token")


def _show(name: str, value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return hex(value) if name in _HEX_FIELDS else str(value)
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def diff_table(gens: tuple[Generation, ...] = (SEED, LEGACY, INTERRUPT), *, all_rows: bool = False) -> str:
    """A plain-text table of the fields that differ between ``gens``."""
    names = [f.name for f in fields(Generation) if f.name not in ("name",)]
    rows = []
    for n in names:
        vals = [_show(n, getattr(g, n)) for g in gens]
        if all_rows or len(set(vals)) > 1:
            rows.append([n, *vals])
    header = ["", *(g.name for g in gens)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)
