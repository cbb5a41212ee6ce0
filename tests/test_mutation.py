"""The mutation tool (issue 15): enumeration, applying from outside, judging, the CLI door; and the new
invariants, each broken by a small targeted mutant and kept by the correct model."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest

from asyncpf.check import mutation as M
from asyncpf.check.explore import execute
from asyncpf.check.models import CONFIGS
from asyncpf.check.mutants import _replaced
from asyncpf.host import legacy
from asyncpf.host.legacy import async_pf as legacy_apf


def test_enumeration_is_deterministic_and_ids_are_stable():
    a = M.enumerate_mutants(["asyncpf.host.legacy.async_pf"])
    b = M.enumerate_mutants(["asyncpf.host.legacy.async_pf"])
    assert [m.id for m in a] == [m.id for m in b]
    assert len({m.id for m in a}) == len(a)
    assert {m.op for m in a} == set(M.OPERATORS)
    m = M.mutant_by_id("asyncpf.host.legacy.async_pf:kvm_setup_async_pf:cmp_flip:0")
    assert m.before == "vcpu.async_pf.queued >= ASYNC_PF_PER_VCPU" and m.after == "vcpu.async_pf.queued < ASYNC_PF_PER_VCPU"


def test_applied_patches_every_alias_and_puts_them_back():
    spec = M.mutant_by_id("asyncpf.host.legacy.async_pf:kvm_setup_async_pf:cmp_flip:0")
    original = legacy_apf.kvm_setup_async_pf
    assert legacy.kvm_setup_async_pf is original          # the package re-export twins.select reads
    with M.applied(spec):
        assert legacy_apf.kvm_setup_async_pf is not original
        assert legacy.kvm_setup_async_pf is legacy_apf.kvm_setup_async_pf
        assert legacy_apf.kvm_setup_async_pf.__globals__ is legacy_apf.__dict__
    assert legacy_apf.kvm_setup_async_pf is original and legacy.kvm_setup_async_pf is original


def test_rules_mark_bookkeeping_and_commuting_swaps_equivalent():
    ms = {m.id: m for m in M.enumerate_mutants(["asyncpf.host.legacy.async_pf"])}
    stat = [m for m in ms.values() if m.op == "stmt_del" and "async_pf_limit_hits" in m.before]
    assert stat and not any(m.rule for m in stat)     # read by limit_refuses_only_at_limit: not bookkeeping
    swaps = [m for m in ms.values() if m.op == "stmt_swap" and m.before == "work.page = BAD_PFN"]
    assert swaps and swaps[0].rule.startswith("commuting")


def test_run_one_kills_a_mutant_and_reports_the_config():
    spec = M.mutant_by_id("asyncpf.host.legacy.async_pf:kvm_setup_async_pf:cmp_flip:0")
    r = M.run_one(spec, configs=["one_task"], max_seconds=30, max_schedules=50)
    assert r.status == "killed" and r.config == "one_task"


def test_campaign_on_one_small_module_is_bounded():
    c = M.campaign(["asyncpf.guest.legacy"], configs=["one_task"], max_seconds=5, max_schedules=40)
    d = c.as_dict()
    assert d["score"]["mutants"] == len(M.enumerate_mutants(["asyncpf.guest.legacy"]))
    assert d["score"]["killed"] >= 1
    assert "asyncpf.guest.legacy" in d["by_module"]
    assert "mutation score" in M.render(c)


@pytest.mark.parametrize("argv", [
    ["check", "--mutation", "--module", "nope"],
    ["check", "--module", "guest.legacy"],
    ["check", "--mutation", "--module", "guest.seed", "--function", "nope"],
    ["check", "--mutation", "--operators", "flip"],
    ["check", "--mutation", "--full"],
])
def test_cli_door_refuses_with_exit_2_and_one_line(argv, tmp_path):
    p = subprocess.run([sys.executable, "-m", "asyncpf", *argv], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


# --- the new invariants: a targeted mutant breaks each, the correct model does not -------------------------

def _violated(cfg: str, patch=None, setup=None) -> set[str]:
    r = execute(CONFIGS[cfg], [], patch=patch, setup=setup, stop_on_violation=False)
    return {v.name for v in r.violations}


def _mutant(mid: str):
    return lambda: M.applied(M.mutant_by_id(mid))


@pytest.mark.parametrize("invariant,cfg,patch", [
    # can_do_async_pf without kvm_arch_interrupt_allowed: async PF taken with IF=0
    ("async_pf_only_with_interrupts_on", "irqoff_touch",
     lambda: _replaced(__import__("asyncpf.host.legacy.mmu", fromlist=["x"]), "can_do_async_pf",
                       lambda _o: (lambda vcpu: not __import__("asyncpf.host.x86", fromlist=["x"])
                                   .kvm_event_needs_reinjection(vcpu)))),
    # the limit lowered by one: refused at 63
    ("limit_refuses_only_at_limit", "limit64", lambda: _replaced(legacy_apf, "ASYNC_PF_PER_VCPU", lambda n: n - 1)),
    # runnable without the done test: a blocked vcpu sleeps on a completion
    ("done_work_wakes_vcpu", "one_task", _mutant("asyncpf.host.legacy.x86:kvm_arch_vcpu_runnable:bool_drop:1")),
    # page-ready never injected: the sleeper is left while the host holds nothing
    ("no_sleeper_without_pending_work", "one_task",
     _mutant("asyncpf.host.legacy.x86:kvm_arch_async_page_present:stmt_del:6")),
])
def test_new_invariant_caught_by_targeted_mutant(invariant, cfg, patch):
    assert invariant not in _violated(cfg)
    assert invariant in _violated(cfg, patch)


def test_wake_all_filter_dropped_wakes_the_other_cpu():
    spec = M.mutant_by_id("asyncpf.guest.kvm:apf_task_wake_all:cmp_flip:1")
    assert spec.before == "n.cpu == cpu.id"
    with M.applied(spec):
        got = _violated("two_vcpus_disable")
    assert "wake_only_own" in got
    assert "wake_only_own" not in _violated("two_vcpus_disable")


def test_zero_time_loop_is_a_violation_not_a_hang():
    """vcpu_enter_guest that never enters the guest and never lets time pass: the vcpu loop spins at one instant."""
    from asyncpf.host.legacy import x86 as lx86

    def spin(vcpu):
        yield 0

    with _replaced(lx86, "vcpu_enter_guest", lambda _o: spin):
        got = _violated("one_task")
    assert "schedule_makes_progress" in got


def test_completion_reported_before_publication():
    """The worker traces its completion (and wakes the vcpu) before the item is on done."""
    from asyncpf.host import async_pf as hapf

    def execute_(work, ctx):
        vcpu, kvm = work.vcpu, work.vcpu.kvm
        addr, gva = work.addr, work.gva
        work.state = "running"
        yield kvm.cost("worker_wakeup_ns")
        pfn = yield from kvm.mm.get_user_pages(addr, True)
        work.page, work.done, work.state = pfn, True, "done"
        kvm.env.trace("kvm_async_pf_completed", ctx=ctx, address=addr, pfn=pfn, gva=gva)
        vcpu.async_pf.done.append(work)
        yield None
        vcpu.wake_up()
        kvm.stat.mm_count -= 1
        kvm.users_count -= 1
        vcpu.workqueue.finished(work)
        work.finished.succeed(work.id)

    @contextlib.contextmanager
    def patch():
        with M.patched_everywhere(hapf.async_pf_execute, execute_):
            yield
    assert "completion_published_before_wake" in _violated("one_task", patch)


def test_answer_bound():
    """A worker that takes far longer than the configuration implies breaks the answer bound."""
    from asyncpf.host import async_pf as hapf
    original = hapf.async_pf_execute

    def slow(work, ctx):
        yield CONFIGS["one_task"].answer_bound_ns * 2
        yield from original(work, ctx)

    @contextlib.contextmanager
    def patch():
        with M.patched_everywhere(original, slow):
            yield
    assert "not_present_answered_in_bound" in _violated("one_task", patch)
    assert "not_present_answered_in_bound" not in _violated("one_task")


# --- the campaign's reach: the wake-all item, the other methods, the stored outcome ---------------------------

@pytest.mark.parametrize("cfg", ["migrate", "irq_migrate", "alloc_fail", "irq_alloc_fail", "irq_guest_fault",
                                 "irq_limit64", "cpuid_no_async_pf", "migrate_while_halted",
                                 "irq_migrate_while_halted", "halt_irqs_off", "irq_halt_irqs_off"])
def test_new_configurations_are_clean(cfg):
    assert _violated(cfg) == set()


@pytest.mark.parametrize("mid,cfg", [
    ("asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:7", "migrate"),        # no ~0 queued
    ("asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:7", "irq_migrate"),
])
def test_migration_needs_the_wake_all(mid, cfg):
    assert M.mutant_by_id(mid).before == "apf.done.append(work)"
    assert _violated(cfg, _mutant(mid)) - _violated(cfg)


def test_failed_wake_all_allocation_is_reached():
    spec = M.mutant_by_id("asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:11")
    assert spec.before == "return -12"
    r = M.run_one(spec, configs=["alloc_fail"], max_seconds=60, max_schedules=20)
    assert r.status == "killed" and r.how.startswith("crash")


def test_other_methods_are_scored_apart_from_the_checker():
    kw = dict(configs=["one_task"], max_seconds=60, max_schedules=40)
    alone = M.campaign(["asyncpf.guest.legacy"], **kw).as_dict()
    both = M.campaign(["asyncpf.guest.legacy"], methods=["scenario"], **kw).as_dict()
    assert both["score"] == alone["score"] and alone["methods"] == {}
    judged = alone["score"]["mutants"] - alone["score"]["equivalent"]
    row = both["methods"]["scenario"]["all"]
    assert row["judged"] == judged and 0 <= row["killed_not_by_checker"] <= row["killed"] <= judged
    assert both["methods"]["scenario"]["asyncpf.guest.legacy"] == row


def test_stored_campaign_is_current():
    """data/mutation_campaign.json judged the twins as they are: same mutants, same source, same equivalences."""
    from asyncpf.check.equivalent_mutants import EQUIVALENT
    from asyncpf.datafiles import load_json
    stored = load_json("mutation_campaign.json")
    assert {"asyncpf.host.legacy.async_pf", "asyncpf.guest.interrupt"} <= set(stored["modules"])
    for module in stored["modules"]:
        specs = M.enumerate_mutants([module])
        got = {mid: v for mid, v in stored["mutants"].items() if mid.startswith(module + ":")}
        assert sorted(got) == sorted(s.id for s in specs), module
        for s in specs:
            eq = bool(s.rule) or (s.id in EQUIVALENT and EQUIVALENT[s.id][0] == s.before)
            assert got[s.id]["before"] == s.before and (got[s.id]["status"] == "equivalent") == eq, s.id


@pytest.mark.parametrize("mid,cfg", [
    ("asyncpf.guest.interrupt:kvm_guest_cpu_init:bool_drop:1", "irq_msr_probe"),   # ASYNC_PF_INT not offered
    ("asyncpf.guest.legacy:kvm_guest_cpu_init:stmt_del:0", "cpuid_no_async_pf"),    # ASYNC_PF not offered
])
def test_guest_registers_only_when_offered(mid, cfg):
    """Without kvm_guest_cpu_init's feature test the guest registers on a VMM that does not offer async PF."""
    assert "_has_feature" in M.mutant_by_id(mid).before or "apf_feature" in M.mutant_by_id(mid).before
    assert "registers_only_when_offered" in _violated(cfg, _mutant(mid))
    assert "registers_only_when_offered" not in _violated(cfg)


def test_ordinary_guest_fault_reaches_the_guest_handler():
    """irq_guest_fault: an ordinary #PF (flags 0) that exc_page_fault does not hand on leaves its task stuck."""
    mid = "asyncpf.guest.interrupt:exc_page_fault:stmt_del:3"
    assert M.mutant_by_id(mid).before == "yield from do_page_fault(cpu, saved, cr2, error_code)"
    assert "no_task_sleeps_forever" in _violated("irq_guest_fault", _mutant(mid))
    assert "no_task_sleeps_forever" not in _violated("irq_guest_fault")


@pytest.mark.parametrize("mid,before,cfg,invariant", [
    # kvm_guest_cpu_init without the no-kvmapf test: a guest booted with no-kvmapf registers
    ("asyncpf.guest.interrupt:kvm_guest_cpu_init:bool_drop:0",
     "not cpu.kernel.config.pv or not _has_feature(cpu, KVM_FEATURE_ASYNC_PF_INT)",
     "irq_no_kvmapf", "no_registration_with_no_kvmapf"),
    # kvm_pv_disable_apf without its 'enabled' test: an unregistered cpu writes an MSR the host refuses
    ("asyncpf.guest.interrupt:kvm_pv_disable_apf:stmt_del:0", "if not cpu.apf_enabled:...",
     "irq_unregistered_offline", "guest_msr_writes_accepted"),
    # a SPIV write that returns non-zero: the guest's LAPIC enable takes a #GP
    ("asyncpf.host.interrupt.lapic:apic_set_spiv:const_off:0", "0", "irq_lapic_off", "guest_msr_writes_accepted"),
    # the disable that forgets to clear apf_reason.enabled
    ("asyncpf.guest.interrupt:kvm_pv_disable_apf:stmt_del:2", "cpu.apf_enabled = False",
     "irq_offline_for_good", "guest_registration_matches_host"),
    # a cpu going down without waking its own sleepers: nobody else will
    ("asyncpf.guest.interrupt:kvm_guest_cpu_offline:stmt_del:2", "kvm.apf_task_wake_all(cpu)",
     "irq_offline_for_good", "no_task_sleeps_forever"),
    # an unregistered cpu's flags read as 1: its ordinary #PF becomes a wait for a page-ready that never comes
    ("asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:const_off:0", "0",
     "irq_unregistered_offline", "no_task_sleeps_forever"),
    # a 2.6.38 preemptible guest registering without SEND_ALWAYS: its kernel-mode fault halts the whole vcpu
    ("asyncpf.guest.legacy:kvm_guest_cpu_init:stmt_del:5", "data |= KVM_ASYNC_PF_SEND_ALWAYS",
     "kernel_touch_preemptible", "kernel_fault_halts_only_unpreemptible_guest"),
    # the flags reset widened to five bytes: it clears the low byte of a waiting token (vcpu 1's tokens have one)
    ("asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:const_off:4", "4",
     "irq_cpu1_two_tasks", "no_sleeper_without_pending_work"),
    # page-ready without the prefault: the woken task's retry exits again (the 6.18 completion loop)
    ("asyncpf.host.interrupt.async_pf:kvm_check_async_pf_completion:stmt_del:3",
     "yield from x86.kvm_arch_async_page_ready(vcpu, work)", "irq_one_task", "page_ready_after_prefault"),
    # 2.6.38 forgetting SEND_ALWAYS: the checker reads the guest's MSR value, not the flag the host derived from it
    ("asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_del:5",
     "apf.send_user_only = not data & KVM_ASYNC_PF_SEND_ALWAYS", "kernel_touch", "cpl0_only_with_send_always"),
    # the wait loop without its final local_irq_disable: the #PF handler returns with interrupts on
    ("asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_del:18", "yield Cli()",
     "irq_two_tasks", "handlers_return_irqs_off"),
    # the wait loop without finish_swait's TASK_RUNNING: the task goes back to user code asleep
    ("asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_del:9", "task.state = sched.TASK_RUNNING",
     "irq_migrate", "user_code_runs_task_running"),
    # the APF halt's return dropped: the vcpu enters the guest in the same call that halted it
    ("asyncpf.host.legacy.x86:vcpu_enter_guest:stmt_del:4", "return", "kernel_touch", "enters_only_when_running"),
    # the halt request consumed without halting: the vcpu re-enters at once, nothing having woken it
    ("asyncpf.host.legacy.x86:vcpu_enter_guest:stmt_del:2", "vcpu.arch.apf.halted = True", "kernel_touch",
     "halted_vcpu_waits_for_wake"),
    # kvm_vcpu_has_events without kvm_arch_interrupt_allowed: a masked tick resumes a cpu parked with cli; hlt
    ("asyncpf.host.interrupt.x86:kvm_arch_vcpu_runnable:bool_drop:3",
     "x86.kvm_arch_interrupt_allowed(vcpu) and vcpu_mod.kvm_apic_has_interrupt(vcpu) is not None",
     "irq_halt_irqs_off", "halted_vcpu_waits_for_wake"),
    # a reset that leaves the APF halt: met only by a reset with no guest IPI to end the halt first (a migration)
    ("asyncpf.host.legacy.x86:kvm_arch_vcpu_reset:stmt_del:4", "apf.halted = False", "migrate_while_halted",
     "reset_leaves_no_async_pf_state"),
    # a reset that keeps the page-ready vector MSR
    ("asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_del:5", "apf.msr_int_val = 0", "irq_vcpu_reset",
     "reset_leaves_no_async_pf_state"),
])
def test_invariants_catch_their_mechanical_mutant(mid, before, cfg, invariant):
    """Each invariant or judgement added for a survivor is broken by its mechanical mutant on its configuration's
    FIFO run, and holds there on the correct model."""
    assert M.mutant_by_id(mid).before == before
    assert invariant in _violated(cfg, _mutant(mid))
    assert invariant not in _violated(cfg)


def test_rejudge_keeps_a_stored_kill_only_while_nothing_it_rests_on_changed(monkeypatch):
    module = "asyncpf.guest.seed"
    specs = [s for s in M.enumerate_mutants([module]) if not s.rule]
    assert len(specs) >= 3
    judged = []
    monkeypatch.setattr(M, "run_one", lambda spec, max_seconds: judged.append(spec.id) or M.MutantResult(spec, "survived"))

    def kill(spec, before=None):
        return {"id": spec.id, "before": before or spec.before, "status": "killed", "how": "guest_alive",
                "config": "stored", "counterexample": None, "configs_run": [], "complete": True}

    stored = {"killed": [kill(specs[0]), kill(specs[1], before="source since changed")], "survivors": []}
    rows = {r.spec.id: r for r in M.rejudge(module, stored).results}
    assert rows[specs[0].id].status == "killed" and rows[specs[0].id].config == "stored"
    assert judged == [s.id for s in specs[1:]]          # the changed one, and those never killed
    judged.clear()
    M.rejudge(module, stored, rerun_killed_by=["guest_alive"])
    assert judged == [s.id for s in specs]
    judged.clear()
    M.rejudge(module, stored, rerun_functions=[specs[0].function])
    assert specs[0].id in judged


@pytest.mark.parametrize("argv,expected", [
    (["asyncpf.host.nope", "x.json"], "module 'asyncpf.host.nope'"),
    (["asyncpf.guest.seed", "/nonexistent.json"], "/nonexistent.json: expected a check --mutation --json file"),
    (["asyncpf.guest.seed", "x.json", "--rerun-killed-by", "no_such_rule"], "--rerun-killed-by no_such_rule"),
    (["asyncpf.guest.seed", "x.json", "--max-seconds", "0"], "--max-seconds 0.0"),
])
def test_rejudge_door(argv, expected, capsys):
    from asyncpf.tools import mutation_rejudge
    with pytest.raises(SystemExit) as e:
        mutation_rejudge.main(argv)
    assert e.value.code == 2 and expected in capsys.readouterr().err
