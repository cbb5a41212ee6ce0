"""Guest page faults, the idle loop and guest panics (asyncpf.guest.kernel)."""

from __future__ import annotations

import pytest

from asyncpf import abi
from asyncpf.guest.kernel import KERNEL_RESERVED_GFNS, AddressSpace, GuestCpu
from asyncpf.guest.ops import Touch, Work
from asyncpf.host.kvm_main import gfn_to_hva, read_guest_bytes
from asyncpf.host.mm import PageState
from asyncpf.host.vcpu import RESCHEDULE_VECTOR
from asyncpf.workloads import steps

from conftest import boot_guest

GVA = 0x40000000


def boot(vcpus=1, pv=True, async_pf=True, **host):
    m, kernel, _ = boot_guest(vcpus, guest=dict(pv=pv), async_pf=async_pf, **host)
    return m, kernel


def test_touch_of_lazy_region_allocates_zeroes_and_maps_a_fresh_gfn():
    m, k = boot()
    mm = AddressSpace()
    region = mm.map(GVA, 4, None)
    first_free = k.next_free_gfn
    assert first_free >= KERNEL_RESERVED_GFNS
    t = k.spawn("lazy", steps(Touch(GVA + abi.PAGE_SIZE + 5), Touch(GVA + abi.PAGE_SIZE + 9)), 0, mm)
    m.run(m.env.now + 10_000_000)
    assert t.state == "X"
    assert region.lazy == {1: first_free}                  # one fault for two touches of the same page
    assert mm.translate(GVA + abi.PAGE_SIZE) == first_free
    assert mm.translate(GVA) is None                       # untouched pages stay unmapped
    assert k.cpus[0].stats["guest_page_faults"] == 1
    assert k.next_free_gfn == first_free + 1
    # the clearing store reached the host: the frame is now resident in the VMM and reads as zeros
    assert m.mm.page_state(gfn_to_hva(m.kvm, first_free)) == PageState.RESIDENT
    assert read_guest_bytes(m.kvm, first_free << abi.PAGE_SHIFT, 16) == bytes(16)
    assert not k.panicked


@pytest.fixture
def livelock_guard(monkeypatch):
    """Turn an endless kernel-entry loop inside one next_op call into an error instead of a hang."""
    real = GuestCpu._enter
    count = {"n": 0}

    def guarded(self, name, make, irqs_on=False):
        count["n"] += 1
        if count["n"] > 10_000:
            raise RuntimeError(f"livelock: {name} entered 10,000 times")
        return real(self, name, make, irqs_on)

    monkeypatch.setattr(GuestCpu, "_enter", guarded)


def test_touch_outside_every_region_panics_and_stops_the_vcpus(livelock_guard):
    m, k = boot(vcpus=2)
    other = k.spawn("worker", steps(Work(500_000_000)), 1)
    k.spawn("wild", steps(Touch(0xDEAD000)), 0)
    m.run(m.env.now + 50_000_000)
    assert k.panicked and "0xdead000" in k.panicked
    assert all(v.proc is not None and not v.proc.is_alive for v in m.vcpus)
    assert other.cpu_ns < 500_000_000                       # the other cpu stopped too


def test_panic_sets_kernel_panicked_once(livelock_guard):
    """The part of the panic path that works today: the first reason sticks and vcpus stop at their next op."""
    m, k = boot(vcpus=2)
    k.cpus[0].panic("first")
    k.cpus[1].panic("second")
    assert k.panicked.startswith("first")
    m.run(m.env.now + 20_000_000)
    assert all(not v.proc.is_alive for v in m.vcpus)


def test_mapped_region_translates_linearly_and_refuses_overlap():
    mm = AddressSpace()
    mm.map(GVA, 8, 5000)
    assert mm.translate(GVA + 3 * abi.PAGE_SIZE + 7) == 5003
    assert mm.translate(GVA + 8 * abi.PAGE_SIZE) is None
    with pytest.raises(ValueError, match="overlaps"):
        mm.map(GVA + 7 * abi.PAGE_SIZE, 2, None)
    with pytest.raises(ValueError, match="alignment"):
        mm.map(GVA + 1, 1, None)


def test_idle_cpu_halts_when_there_is_nothing_to_run():
    m, k = boot()
    m.reset_accounts()
    m.run(m.env.now + 100_000_000)
    m.flush_accounts()
    acct = m.vcpus[0].acct
    assert acct["idle"] > 0.95 * 100_000_000                # HLT between ticks
    assert k.cpus[0].stats["ticks"] >= 24                   # HZ=250 keeps ticking
    assert k.cpus[0].rq.curr is k.cpus[0].idle


def test_spawn_on_a_booted_cpu_sends_a_reschedule_ipi_and_runs_at_once():
    m, k = boot(vcpus=2)
    before = k.stats["resched_ipis"]
    seen = []

    def prog(task):
        seen.append(m.env.now)
        yield Work(1000)

    t = k.spawn("new", prog, 1)
    assert k.stats["resched_ipis"] == before + 1
    assert m.vcpus[1].irr == {RESCHEDULE_VECTOR}           # pending until cpu 1 next enters the guest
    start = m.env.now
    m.run(start + 1_000_000)
    assert t.state == "X"
    assert seen and seen[0] - start < 100_000               # not at the next tick (4 ms)


def test_spawn_refuses_a_missing_cpu():
    m, k = boot()
    with pytest.raises(ValueError, match="cpu 3 does not exist"):
        k.spawn("x", steps(), 3)
