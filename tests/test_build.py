"""The one builder (asyncpf/build.py): what a booted guest, the small guest and the stand-in machine are."""

from __future__ import annotations

import pytest

from asyncpf import abi, build
from asyncpf.guest.kernel import GuestConfig
from asyncpf.guest.ops import Touch
from asyncpf.host.kvm_main import gfn_to_hva
from asyncpf.host.mm import PageState
from asyncpf.sim import ChoicePolicy
from asyncpf.workloads import steps


def test_small_guest_is_booted_with_its_buffer_half_on_swap():
    b = build.small_guest()
    m, k, array = b
    assert m.guest is k and len(k.cpus) == 1 and m.env.now >= build.BOOT_NS
    assert k.cpus[0].apf_enabled and m.vcpus[0].arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED
    assert k.cpus[0].stats["apf_ready"] == 1                        # the boot wake-all was taken
    assert array.pages == build.SMALL_GUEST_ARRAY_PAGES
    states = [m.mm.page_state(gfn_to_hva(m.kvm, array.gfn + i)) for i in range(array.pages)]
    assert states[:256] == [PageState.SWAPPED] * 256 and PageState.SWAPPED not in states[256:]
    assert b.swapped(3) == [array.gfn, array.gfn + 1, array.gfn + 2] and b.swapped(1, start=5) == [array.gfn + 5]
    with pytest.raises(RuntimeError, match="only 256 swapped pages, wanted 257"):
        b.swapped(257)
    assert all(sum(acct.values()) == 0 for acct in m.account().values())   # accounts start once booted


def test_spawned_tasks_map_the_buffer_and_run_until_exited():
    b = build.small_guest()
    gfn = b.swapped(1)[0]
    t = b.spawn("t", steps(Touch(b.gva(gfn))))
    assert t.mm.translate(b.gva(gfn)) == gfn
    start = b.machine.env.now
    assert b.run_until_exited([t], 1_000_000_000) == [] and t.state == "X"
    assert b.machine.env.now - start < 10_000_000 and b.kernel.stats["sleeps"] == 1
    slow = b.spawn("slow", steps(Touch(b.gva(b.swapped(1)[0]))), mm=b.address_space())
    assert b.run_until_exited([slow], 1) == [slow]               # the limit ends the run


def test_boot_guest_takes_hooks_policy_and_the_host_config():
    seen = []
    b = build.boot_guest(build.SMALL_GUEST_HOST.replace(vcpus=2), GuestConfig(pv=False), boot_ns=1_000_000,
                         trace=False, policy=ChoicePolicy(), before_boot=lambda m: seen.append(m.env.now))
    assert seen == [0] and b.array is None and b.machine.tracer is None and b.machine.env.now == 1_000_000
    assert isinstance(b.machine.env.policy, ChoicePolicy) and len(b.kernel.cpus) == 2
    assert not b.kernel.cpus[0].apf_enabled                        # a non-PV guest never registers


def test_same_seed_same_trace():
    def trace(seed):
        b = build.small_guest(seed=seed)
        b.spawn("t", steps(*(Touch(b.gva(g)) for g in b.swapped(3))))
        b.run_until_exited(b.kernel.tasks, 1_000_000_000)
        return b.machine.tracer.text()

    assert trace(3) == trace(3) and trace(3) != trace(4)


def test_standin_machine_gives_each_vcpu_its_own_scripts():
    m = build.standin_machine(build.SMALL_HOST.replace(vcpus=2), {"s": [(40, 1000)]}, pv=True)
    a, b = (v.guest for v in m.vcpus)
    assert a.scripts[0] is not b.scripts[0] and a.scripts[0].steps == b.scripts[0].steps == [(40, 1000)]
    assert a.pv and not a.send_always and m.env.now == 0 and not m.started_at


def test_make_swapped_needs_the_pages_to_be_the_only_resident_ones():
    m = build.standin_machine()
    build.make_swapped(m, 40, 41)
    assert [m.mm.page_state(gfn_to_hva(m.kvm, g)) for g in (40, 41)] == [PageState.SWAPPED] * 2
    build.make_resident(m, *range(100, 356))                       # the 1 MiB cgroup is full
    with pytest.raises(ValueError, match=r"gfns \[42\] are not swapped out"):
        build.make_swapped(m, 42)
