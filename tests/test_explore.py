"""The explorer on the fast configurations: counts, determinism, a clean correct model, replayable counterexamples.

Both modelled generations are explored (legacy = 2.6.38, seed = the 2009 v2 series), and a vcpu reset by the
VMM; a configuration breaks no invariant except the generation behaviour documented in ``known.KNOWN``.
"""

import pytest

from asyncpf.check.mutants import MUTANTS

from asyncpf.check.explore import execute, explore, fast_configs, replay
from asyncpf.check.known import KNOWN, KNOWN_BY_CONFIG
from asyncpf.check.models import CONFIGS, ModelConfig
from asyncpf.host.kvm_main import read_guest_bytes

CLEAN_FAST = [c.name for c in fast_configs() if c.name not in KNOWN_BY_CONFIG]
KNOWN_FAST = [c.name for c in fast_configs() if c.name in KNOWN_BY_CONFIG]


@pytest.mark.parametrize("name", CLEAN_FAST)
def test_correct_model_is_clean(name):
    rep = explore(name, stop_at_first=False, max_seconds=120)
    capped = CONFIGS[name].max_schedules is not None and rep.schedules >= CONFIGS[name].max_schedules
    assert (rep.complete or capped) and rep.violations == [] and rep.violated == {}, rep.summary()
    assert rep.schedules >= 2 and rep.states >= 2 and (rep.pruned >= 1 or capped)


@pytest.mark.parametrize("name", KNOWN_FAST)
def test_known_configs_break_only_the_documented_invariants(name):
    rep = explore(name, stop_at_first=False, max_seconds=120)
    assert rep.complete and set(rep.violated) == KNOWN_BY_CONFIG[name], rep.summary()
    assert not any(v.detail.startswith("predicate raised") for v in rep.violated.values())  # the behaviour, not a typo
    gen = CONFIGS[name].generation
    assert all(any(k.invariant == broken and k.generation == gen and name in k.configs and k.source and k.why
                   for k in KNOWN) for broken in rep.violated)


def test_every_generation_and_a_reset_are_in_the_ci_set():
    fast = {c.name: c for c in fast_configs()}
    assert {c.generation for c in fast.values()} == {"legacy", "seed", "interrupt"}
    assert {"seed_one_task", "seed_two_tasks", "seed_msr_disable", "vcpu_reset", "seed_vcpu_reset"} <= set(fast)
    assert not CONFIGS["seed_two_vcpus"].fast and CONFIGS["seed_two_vcpus"].vcpus == 2   # under --full
    assert all(fast[n].reset_at is not None for n in ("vcpu_reset", "seed_vcpu_reset"))
    assert all(KNOWN_BY_CONFIG.get(c) is not None for k in KNOWN for c in k.configs) and KNOWN_FAST


def test_a_model_config_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="nonesuch"):
        ModelConfig("x", generation="nonesuch")
    with pytest.raises(ValueError, match="reset_at"):
        ModelConfig("x", reset_at=-1)


def test_a_seed_config_runs_the_seed_abi():
    # the seed cannot silently fall back to legacy: MSR number, area layout, tracepoints and workers differ
    seed, legacy = replay("seed_one_task", []), replay("one_task", [])
    s, t = seed.trace_text(), legacy.trace_text()
    assert "# asyncpf generation: seed" in s and "# asyncpf generation: legacy" in t
    assert "msr_write 13 = 0x10001" in s and "4b564d02" not in s       # MSR_KVM_ASYNC_PF_EN 0x13, no SEND_ALWAYS
    assert "msr_write 4b564d02 = 0x10003" in t
    assert "kvm_send_async_pf: token 0x0 gva 0x44c000 not present" in s and "kvm_async_pf_not_present" not in s
    assert "kvm_send_async_pf: token 0x0 gva 0x44c000 ready" in s and "kvm_async_pf_ready" not in s
    assert "kslowd000-200" in s and "kworker" not in s
    m, cpu = seed.built.machine, seed.built.kernel.cpus[0]
    assert m.gen.name == "seed" and m.gen.msr_async_pf_en == 0x13
    # struct kvm_vcpu_pv_apf_data { u32 reason; u32 enabled; }: 'enabled' at offset 4, not 64
    assert read_guest_bytes(m.kvm, cpu.apf_gpa + 4, 4) == (1).to_bytes(4, "little")
    assert read_guest_bytes(legacy.built.machine.kvm, cpu.apf_gpa + 64, 4) == (1).to_bytes(4, "little")
    assert m.vcpus[0].stat["apf_not_present_injected"] == 1 and m.kvm.stat.async_pf_allocated == 1  # no broadcast


def test_seed_same_page_starts_two_apfs_for_one_gfn():
    # no gfn hash, no APF halt: the second fault on a page in flight is a second APF (gfn_outstanding_once is
    # a legacy invariant and is not run on the seed)
    s = replay("seed_same_page", []).trace_text()
    assert s.count("gva 0x44c000 not present") == 2 and s.count("kvm_async_pf_completed: gva 0x44c000") == 2


def test_seed_kernel_touch_is_synchronous():
    r = replay("seed_kernel_touch", [])
    s = r.trace_text()
    assert "gva 0x44c000" not in s.split("kvm_send_async_pf")[-1] and "token 0x0 gva 0x44d000 not present" in s
    assert r.built.machine.vcpus[0].acct["stalled"] > 0 and r.violations == []


def test_vcpu_reset_is_served_and_the_guest_registers_again():
    for name, msr in (("vcpu_reset", "4b564d02"), ("seed_vcpu_reset", "13")):
        r = replay(name, [])
        b = r.built
        assert b.config.reset_at is not None and [t.comm for t in b.tasks][-1] == "reinit0"
        assert all(t.state == "X" for t in b.tasks)
        assert r.trace_text().count(f"msr_write {msr} = ") == 2           # boot, then after the reset
        assert not b.machine.vcpus[0].reset_pending


def test_counts_are_deterministic():
    for name in ("two_tasks", "seed_two_tasks"):
        a = explore(name, stop_at_first=False)
        b = explore(name, stop_at_first=False)
        assert (a.schedules, a.states, a.steps, a.pruned) == (b.schedules, b.states, b.steps, b.pruned)


def test_same_choices_same_trace():
    assert replay("two_tasks", [0, 1]).trace_text() == replay("two_tasks", [0, 1]).trace_text()
    assert replay("seed_vcpu_reset", [1, 1]).trace_text() == replay("seed_vcpu_reset", [1, 1]).trace_text()


def test_kernel_touch_shows_the_2010_stray_page_ready():
    # 2.6.38 halts instead of injecting at CPL0 without SEND_ALWAYS, then still sends page-ready (bugzilla 208081)
    rep = explore("kernel_touch")
    assert [v.name for v in rep.violations] == ["ready_only_after_not_present"]
    assert rep.as_dict()["violated"] == ["ready_only_after_not_present"] and rep.as_dict()["generation"] == "legacy"


def test_seed_msr_disable_shows_the_uncancelled_swap_in():
    # the seed frees only the done list: a swap-in in flight at the disable is answered after re-registration
    rep = explore("seed_msr_disable")
    assert [v.name for v in rep.violations] == ["ready_only_after_not_present"] and rep.counterexample == []
    after_disable = rep.counterexample_trace.split("msr_write 13 = 0x0")[1]
    assert "kvm_send_async_pf: token 0x1000 gva 0x44d000 ready" in after_disable
    full = execute(CONFIGS["seed_msr_disable"], [], stop_on_violation=False)
    assert [v.name for v in full.violations] == ["ready_only_after_not_present", "nothing_leaks"]
    assert "dummy node for token 0x1000" in full.violations[1].detail


def test_counterexample_replays():
    bug = MUTANTS["worker_uses_freed_work"].bug
    rep = explore("tick_completion", patch=bug)
    assert rep.counterexample and "kvm_async_pf_completed" in rep.counterexample_trace
    again = replay("tick_completion", rep.counterexample, patch=bug)
    assert [v.name for v in again.violations] == [v.name for v in rep.violations]
    assert again.trace_text() == rep.counterexample_trace
    assert execute(CONFIGS["tick_completion"], [], patch=bug).violations == []  # FIFO alone misses it


def test_a_search_names_the_generations_own_leak_where_a_teardown_reproduces_it():
    """host_cpus_disable cancels an item its worker never started: 2.6.38 keeps its references (KNOWN_LEAKS). Not a
    violation, but the report says so; a configuration that never cancels names nothing."""
    leaky, clean = explore("host_cpus_disable", stop_at_first=False), explore("two_tasks", stop_at_first=False)
    assert not leaky.violated and leaky.known_leaks == {"cancel_leaked_refs"}
    assert "reproduces the generation's own leak: cancel_leaked_refs" in leaky.summary()
    assert leaky.as_dict()["known_leaks_reproduced"] == ["cancel_leaked_refs"]
    assert not clean.known_leaks and "own leak" not in clean.summary()
