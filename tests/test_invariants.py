"""Every invariant of the registry holds on a clean state and fails on a state built to violate it."""

import pytest
from conftest import assert_rule_kills

from asyncpf.abi import KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from asyncpf.check.checker import Checker, check
from asyncpf.check.invariants import REGISTRY, Ledger, Obs, View
from asyncpf.check.models import CONFIGS, build
from asyncpf.host import async_pf, mmu, x86
from asyncpf.host.legacy import x86 as legacy_x86
from asyncpf.host.seed import x86 as seed_x86
from asyncpf.sim import ChoicePolicy
from asyncpf.standin import read_reason


@pytest.fixture
def built():
    return build(CONFIGS["one_task"], policy=ChoicePolicy())


def view(b, obs=(), shut_down=False):
    ledger = Ledger(awaiting={v.vcpu_id: {} for v in b.machine.vcpus})
    return View(b.machine, b.kernel, ledger, list(obs), shut_down=shut_down)


def test_registry_shape():
    assert len(REGISTRY) >= 14
    for inv in REGISTRY.values():
        assert inv.kind in ("safety", "event", "end") and inv.doc and inv.source, inv.name


def test_all_hold_on_a_booted_machine(built):
    v = view(built)
    assert {name: inv.fn(v) for name, inv in REGISTRY.items() if inv.kind != "end" and inv.fn(v)} == {}


def _setup(b, gfn):
    vcpu = b.machine.vcpus[0]
    assert mmu.kvm_arch_setup_async_pf(vcpu, gfn << 12, gfn)
    vcpu.arch.exception.pending = False
    return vcpu, vcpu.async_pf.queue[-1]


def test_queued_counts_outstanding(built):
    vcpu, _ = _setup(built, built.gfns[0])
    assert REGISTRY["queued_counts_outstanding"].fn(view(built)) == []
    vcpu.async_pf.queued += 1
    assert REGISTRY["queued_counts_outstanding"].fn(view(built))


def test_queue_within_limit(built):
    vcpu, work = _setup(built, built.gfns[0])
    vcpu.async_pf.queue.extend([work] * 64)
    assert REGISTRY["queue_within_limit"].fn(view(built))


def test_hash_iff_outstanding_both_ways(built):
    vcpu, work = _setup(built, built.gfns[0])
    assert REGISTRY["hash_iff_outstanding"].fn(view(built)) == []
    x86.kvm_async_pf_hash_reset(vcpu)
    assert "misses" in REGISTRY["hash_iff_outstanding"].fn(view(built))[0]
    x86.kvm_add_async_pf_gfn(vcpu, 77)
    assert any("no outstanding work" in d for d in REGISTRY["hash_iff_outstanding"].fn(view(built)))


def test_hash_iff_outstanding_judges_the_kernels_layout(built):
    """A gfn stored off the probe path from its home (as hash.h computes it at the generation's tag) is lost."""
    vcpu, work = _setup(built, built.gfns[0])
    slots = vcpu.arch.apf.gfns
    home = x86.kvm_async_pf_hash_fn(work.arch.gfn)
    slots[home], slots[(home + 2) & 63] = x86.GFN_SLOT_EMPTY, work.arch.gfn
    assert "misses" in REGISTRY["hash_iff_outstanding"].fn(view(built))[0]
    slots[home] = work.arch.gfn
    assert "2 times" in REGISTRY["hash_iff_outstanding"].fn(view(built))[0]


def test_gfn_outstanding_once_and_tokens_unique(built):
    vcpu, work = _setup(built, built.gfns[0])
    vcpu.async_pf.queue.append(work)
    assert REGISTRY["gfn_outstanding_once"].fn(view(built))
    assert REGISTRY["tokens_unique"].fn(view(built))


def test_tokens_unique_on_delivery(built):
    obs = Obs(0, "deliver", 0, {"reason": KVM_PV_REASON_PAGE_NOT_PRESENT, "token": 0x1000, "cpl": 3,
                                "send_always": True, "duplicate": True})
    assert REGISTRY["tokens_unique"].fn(view(built, [obs]))


def test_no_two_apf_pf_in_one_entry(built):
    vcpu = built.machine.vcpus[0]
    vcpu.arch.exception.pending = False
    x86.kvm_inject_page_fault(vcpu, 0x1000, 0)
    x86.kvm_inject_page_fault(vcpu, 0x2000, 0)
    assert REGISTRY["no_two_apf_pf_in_one_entry"].fn(view(built))


def test_guest_alive(built):
    built.kernel.panicked = "oops"
    assert REGISTRY["guest_alive"].fn(view(built)) == ["oops"]


def test_no_use_after_free(built):
    work = async_pf.alloc_work(built.machine.vcpus[0])
    async_pf.free_work(work)
    assert REGISTRY["no_use_after_free"].fn(view(built)) == []
    assert work.page is None                                    # a kernel read of the freed item: the poison reports it
    assert "page of <KvmAsyncPf" in REGISTRY["no_use_after_free"].fn(view(built))[0]


@pytest.mark.parametrize("name,obs", [
    ("cpl0_only_with_send_always", Obs(0, "deliver", 0, {"reason": KVM_PV_REASON_PAGE_NOT_PRESENT, "token": 1,
                                                          "cpl": 0, "send_always": False, "duplicate": False})),
    ("ready_only_after_not_present", Obs(0, "deliver", 0, {"reason": KVM_PV_REASON_PAGE_READY, "token": 1,
                                                            "cpl": 3, "send_always": True, "matched": False})),
    ("reason_read_before_reenable", Obs(0, "boundary", 0, {"word": 1, "ctx": "do_async_page_fault"})),
    ("reason_not_clobbered", Obs(0, "host_write", 0, {"word": 1, "event": "ready"})),
    ("apf_events_traced", Obs(0, "deliver", 0, {"reason": KVM_PV_REASON_PAGE_NOT_PRESENT, "token": 0x1000,
                                                 "cpl": 3, "send_always": False, "traced": False})),
    ("completion_taken_when_possible", Obs(0, "entry_with_completions", 0, {"left": 1})),
])
def test_event_invariants_fail_on_their_observation(built, name, obs):
    assert REGISTRY[name].fn(view(built)) == []
    assert REGISTRY[name].fn(view(built, [obs]))


def test_end_invariants(built):
    v = view(built)
    v.ledger.awaiting[0][0x1000] = 7
    assert REGISTRY["every_not_present_answered"].fn(v)
    assert REGISTRY["no_task_sleeps_forever"].fn(v)          # the task was spawned and never ran
    built.machine.kvm.users_count += 1
    assert REGISTRY["nothing_leaks"].fn(view(built, shut_down=True))


def test_check_returns_data_and_never_raises(built):
    vcpu, _ = _setup(built, built.gfns[0])
    vcpu.async_pf.queued = 5
    out = check(built.machine)
    assert out and all(hasattr(v, "name") and hasattr(v, "t") for v in out)
    assert any(v.name == "queued_counts_outstanding" for v in out)
    [v] = check(object())                                    # not a machine: one violation saying so
    assert v.name == "check" and v.t == 0 and v.detail.startswith("could not check <object object")


def test_checker_runs_on_every_step_and_is_clean_on_a_correct_run():
    from asyncpf.check.explore import execute
    r = execute(CONFIGS["two_tasks"])
    assert r.steps > 20 and r.violations == [] and not r.pruned
    b = build(CONFIGS["two_tasks"], policy=ChoicePolicy())
    c = Checker(b.machine, b.kernel).attach()
    env = b.machine.env
    before = env.events_processed
    env.run(env.now + 3_000_000)
    assert c.steps == env.events_processed - before > 20
    assert c.violations == [] and all(t.state == "X" for t in b.tasks)


# --- generations ---------------------------------------------------------------------------------

LEGACY_ONLY = {"queued_counts_outstanding", "queue_within_limit", "hash_iff_outstanding", "gfn_outstanding_once",
               "no_ready_after_broadcast", "limit_refuses_only_at_limit",  # the merged ABI's state: 2.6.38 and 6.18
               "no_registration_with_no_kvmapf"}  # its CPUID bits, no-kvmapf
LEGACY_ONLY |= {"no_sync_stall_on_outstanding_gfn", "repeated_fault_halts_before_entry"}  # the gfn hash's fault path
LEGACY_ONLY |= {"apf_events_traced", "not_present_told_or_halted",     # their tracepoints, the APF halt
                "completion_taken_when_possible"}                       # the run loop's completion check
LEGACY_ONLY |= {"page_ready_after_prefault"}                      # prefault came with v7, after the seed
LEGACY_ONLY |= {"tokens_follow_the_counter"}                      # the not-present tracepoint, after the seed
INTERRUPT_ONLY = {"page_ready_slot_free", "page_ready_lapic_enabled", "ack_between_page_readys", "tokens_non_zero",
                  "pv_msrs_gated_by_cpuid", "completion_kicks_vcpu", "handlers_return_irqs_off",
                  "pageready_pending_until_ack", "ready_request_served_before_entry"}


ONLY_2638 = {"kernel_fault_halts_only_unpreemptible_guest"}   # SEND_ALWAYS as 2.6.38 guests use it
SEED_ONLY = {"seed_faults_go_async"}                             # no per-vcpu limit, no APF halt: every fault goes async
NOT_INTERRUPT = {"completion_traced_with_its_page"}              # the completion's pfn: gone from the tracepoint in 2020
NOT_2638 = {"no_block_with_exception_queued"}                    # 2.6.38 may queue page-ready #PF after a HLT exit


def test_invariants_say_which_generations_they_speak_of():
    from asyncpf.check.invariants import applicable, invariant
    limited = {i.name for i in REGISTRY.values() if i.generations is not None}
    assert limited == LEGACY_ONLY | INTERRUPT_ONLY | ONLY_2638 | SEED_ONLY | NOT_INTERRUPT | NOT_2638
    assert all(REGISTRY[n].generations == ("seed", "legacy") and REGISTRY[n].why_not for n in NOT_INTERRUPT)
    assert all(REGISTRY[n].generations == ("seed", "interrupt") and REGISTRY[n].why_not for n in NOT_2638)
    assert all(REGISTRY[n].generations == ("seed",) and REGISTRY[n].why_not for n in SEED_ONLY)
    assert all(REGISTRY[n].generations == ("legacy",) and "seed" in REGISTRY[n].why_not for n in ONLY_2638)
    assert all(REGISTRY[n].generations == ("legacy", "interrupt") and "seed" in REGISTRY[n].why_not
               for n in LEGACY_ONLY)
    assert all(REGISTRY[n].generations == ("interrupt",) and REGISTRY[n].why_not for n in INTERRUPT_ONLY)
    assert {i.name for i in applicable("legacy")} == set(REGISTRY) - INTERRUPT_ONLY - SEED_ONLY - NOT_2638
    assert [i.name for i in applicable("interrupt")] == [n for n in REGISTRY
                                                         if n not in ONLY_2638 | SEED_ONLY | NOT_INTERRUPT]
    assert {i.name for i in applicable("seed")} == set(REGISTRY) - LEGACY_ONLY - INTERRUPT_ONLY - ONLY_2638
    with pytest.raises(ValueError, match="why"):
        invariant("safety", "src", generations=("legacy",))


def _seed_checker():
    box = {}
    b = build(CONFIGS["seed_one_task"], policy=ChoicePolicy(),
              before_boot=lambda m: box.setdefault("c", Checker(m, m.guest).attach()))
    return b, box["c"]


def test_a_seed_checker_runs_only_the_seed_invariants():
    b, c = _seed_checker()
    names = {i.name for i in c.safety + c.events + c.end}
    assert c.generation == "seed" and names == set(REGISTRY) - LEGACY_ONLY - INTERRUPT_ONLY - ONLY_2638
    assert b.machine.gen.name == "seed"


def test_seed_host_write_over_an_unread_reason_is_seen():
    # the seed traces kvm_send_async_pf after its put_user; the checker compares with the word at the last exit
    b, c = _seed_checker()
    vcpu = b.machine.vcpus[0]
    first = async_pf.KvmAsyncPf(id=900, vcpu=vcpu, gva=0x1000, arch=async_pf.KvmArchAsyncPf(token=0x1000, gfn=1))
    second = async_pf.KvmAsyncPf(id=901, vcpu=vcpu, gva=0x2000, arch=async_pf.KvmArchAsyncPf(token=0x2000, gfn=2))
    seed_x86.kvm_arch_inject_async_page_present(vcpu, first)      # reason 2 written, #PF queued, not delivered
    assert [v.name for v in c.violations] == []
    seed_x86.kvm_arch_inject_async_page_present(vcpu, second)     # written again before the guest read the first
    assert "reason_not_clobbered" in [v.name for v in c.violations]


def test_a_reason_word_whose_pf_a_reset_dropped_is_no_event():
    # legacy: page-ready written and queued, then kvm_arch_vcpu_reset drops the #PF but not the word
    from conftest import enable_apf, machine, run
    m = machine("legacy")
    c = Checker(m).attach()
    vcpu = m.vcpus[0]
    enable_apf(m)                                             # queues the ~0 wake-all
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))      # reason 2 written, #PF queued
    assert read_reason(vcpu) == KVM_PV_REASON_PAGE_READY and vcpu.arch.exception.pending
    run(m, vcpu.kvm.twins.kvm_arch_vcpu_reset(vcpu))
    assert not vcpu.arch.exception.pending and read_reason(vcpu) == KVM_PV_REASON_PAGE_READY
    # registered again: the new wake-all is written over the stale word -- it clobbers nothing
    enable_apf(m)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert vcpu.arch.exception.pending and c.violations == []
    # ... while writing over that queued, live word is a clobber (the 2.6.38 gate never does it; forced here)
    legacy_x86.kvm_arch_async_page_present(vcpu, async_pf.KvmAsyncPf(id=902, vcpu=vcpu, page=0))
    assert "reason_not_clobbered" in [v.name for v in c.violations]


def test_guest_side_invariants_on_hand_made_states(built):
    """Issue 15's guest-side invariants: clean on the booted machine, each broken by the state it forbids."""
    k, vcpu = built.kernel, built.machine.vcpus[0]
    names = ("handlers_return_irqs_off", "user_code_runs_task_running", "guest_registration_matches_host")
    assert {n: REGISTRY[n].fn(view(built)) for n in names} == dict.fromkeys(names, [])
    k.irqs_on_at_exit.append((5, 0, "exc_page_fault"))
    assert "exc_page_fault" in REGISTRY["handlers_return_irqs_off"].fn(view(built))[0]
    cpu, task = k.cpus[0], built.tasks[0]
    cpu.rq.curr, vcpu.arch.cpl, task.state = task, 3, "D"
    assert "state D" in REGISTRY["user_code_runs_task_running"].fn(view(built))[0]
    cpu.apf_enabled = False
    assert "counts async PF as off" in REGISTRY["guest_registration_matches_host"].fn(view(built))[0]


@pytest.mark.parametrize("name,obs", [
    ("guest_msr_writes_accepted", Obs(0, "msr_refused", 0, {"msr": 0x4B564D02, "data": 0})),
    ("no_registration_with_no_kvmapf", Obs(0, "registration", 0, {"feature": 4, "offered": True, "asked": False,
                                                                       "enabling": True})),
    ("registers_only_when_offered", Obs(0, "registration", 0, {"feature": 4, "offered": False, "asked": True,
                                                                    "enabling": False})),
])
def test_guest_side_event_invariants(built, name, obs):
    assert REGISTRY[name].fn(view(built)) == []
    assert REGISTRY[name].fn(view(built, [obs]))


def test_a_disabling_write_is_no_registration_with_no_kvmapf(built):
    """no-kvmapf forbids enabling; writing 0 is judged by registers_only_when_offered alone."""
    obs = Obs(0, "registration", 0, {"feature": 4, "offered": True, "asked": False, "enabling": False})
    assert REGISTRY["no_registration_with_no_kvmapf"].fn(view(built, [obs])) == []
    assert REGISTRY["registers_only_when_offered"].fn(view(built, [obs])) == []


def test_no_sleep_while_atomic_on_hand_made_states(built):
    """A task off its runqueue in a sleep state with preemption disabled is the kernel's 'scheduling while atomic'."""
    inv, task = REGISTRY["no_sleep_while_atomic"], built.tasks[0]
    task.on_rq, task.state = False, "D"
    assert inv.fn(view(built)) == []                  # asleep, preemptible: a plain sleep
    task.preempt_count = 1
    assert "preempt_count 1" in inv.fn(view(built))[0]
    task.state = "X"
    assert inv.fn(view(built)) == []                  # an exited task is not judged (schedule_debug's exit_state)


def test_dummy_nodes_accounted_on_hand_made_states(built):
    """A dummy made must be hashed, consumed or counted as dropped: one that vanishes unaccounted is reported."""
    from asyncpf.guest import kvm as pv
    inv, k = REGISTRY["dummy_nodes_accounted"], built.kernel
    k.stats["dummies_created"] += 1
    assert "1 dummy nodes made" in inv.fn(view(built))[0]
    node = pv.KvmTaskSleepNode(0x1000, 0)
    k.sleepers[0].append(node)
    assert inv.fn(view(built)) == []
    k.sleepers[0].remove(node)
    k.stats["dummies_dropped"] += 1
    assert inv.fn(view(built)) == []
    k.stats["dummies_consumed"] += 1
    assert inv.fn(view(built))


def test_a_view_outside_the_checkers_batches_walks_the_sleepers_afresh(built):
    """View.sleeper_nodes is kept only within one batch of predicates; a predicate called on its own sees the hash now."""
    from asyncpf.guest import kvm as pv
    inv, k = REGISTRY["dummy_nodes_accounted"], built.kernel
    v = view(built)
    assert inv.fn(v) == []
    k.sleepers[3].append(pv.KvmTaskSleepNode(0x3000, 0))
    assert "0 consumed + 0 dropped" in inv.fn(v)[0]


def test_predicates_that_keep_state_say_so():
    """An invariant that keeps state in View.memory carries remembers=True (the explorer then shows it every step)."""
    import inspect
    keeping = {n for n, i in REGISTRY.items() if "v.memory" in inspect.getsource(i.fn)}
    assert keeping and keeping == {n for n, i in REGISTRY.items() if i.remembers}


# --- issue 15's host fault-path invariants ----------------------------------------------------------------------

def test_sync_stall_on_outstanding_gfn_judged_from_the_fault(built):
    """Flagged only with every part of the rule: asleep on that page's swap-in, its item unfinished, async possible."""
    from asyncpf.host.kvm_main import gfn_to_hva
    m, vcpu = built.machine, built.machine.vcpus[0]
    gfn = built.gfns[0]
    hva = gfn_to_hva(m.kvm, gfn)
    v = view(built)
    judge = REGISTRY["no_sync_stall_on_outstanding_gfn"].fn
    work = async_pf.alloc_work(vcpu)
    work.addr = hva
    vcpu.async_pf.queue.append(work)
    vcpu.proc._waiting_on = m.env.event(f"swapin {hva:#x}")
    assert judge(v) == []                                              # no fault recorded: nothing to judge
    v.ledger.fault_at = {0: {"gfn": gfn, "async_possible": True}}
    assert f"gfn {gfn:#x}" in judge(v)[0]
    v.ledger.fault_at = {0: {"gfn": gfn, "async_possible": False}}  # IF=0 or an event to reinject: allowed
    assert judge(v) == []
    v.ledger.fault_at = {0: {"gfn": gfn, "async_possible": True}}
    work.done = True                                                   # the prefault of a completed item
    assert judge(v) == []
    work.done = False
    vcpu.proc._waiting_on = m.env.event(f"swapin {hva + 4096:#x}")     # another page's swap-in
    assert judge(v) == []


def test_repeated_fault_owes_a_halt(built):
    judge = REGISTRY["repeated_fault_halts_before_entry"].fn

    def entry(**data):
        return [Obs(0, "entry_after_repeated_fault", 0, {"gfn": 0x44c, "halted": False, "reset": False, **data})]
    assert "without the APF halt" in judge(view(built, entry()))[0]
    assert judge(view(built, entry(halted=True))) == [] and judge(view(built, entry(reset=True))) == []


def test_a_not_present_is_told_or_halts(built):
    judge = REGISTRY["not_present_told_or_halted"].fn

    def entry(**data):
        d = {"token": 0x1000, "can_tell": True, "area_ok": True, "told": True, "halted": False, "reset": False}
        return [Obs(0, "entry_after_not_present", 0, {**d, **data})]
    assert judge(view(built, entry())) == [] and judge(view(built, entry(can_tell=False, told=False, halted=True))) == []
    assert "without its #PF" in judge(view(built, entry(told=False)))[0]
    assert "after an APF halt" in judge(view(built, entry(halted=True)))[0]
    assert "without the APF halt" in judge(view(built, entry(can_tell=False, told=False)))[0]
    assert "with the #PF queued" in judge(view(built, entry(can_tell=False, halted=True)))[0]
    assert judge(view(built, entry(can_tell=False, told=False, reset=True))) == []
    # an area the write cannot reach: 2.6.38 tells nobody and halts nobody (not judged), 6.18 halts
    assert judge(view(built, entry(area_ok=False, told=False))) == []
    irq = build(CONFIGS["irq_one_task"], policy=ChoicePolicy())
    assert judge(view(irq, entry(area_ok=False, told=False)))
    assert judge(view(irq, entry(area_ok=False, told=False, halted=True))) == []
# --- issue 15's run-loop invariants: what an entry needs, a halt's wake, what a reset leaves ---------------------

def _entry(**data):
    facts = {"mp_state": x86.KVM_MP_STATE_RUNNABLE, "halted": False, "halt_requested": False, "after_halt": False,
             "woken": True}
    return [Obs(7, "entry", 0, {**facts, **data})]


def test_enters_only_when_running(built):
    judge = REGISTRY["enters_only_when_running"].fn
    assert judge(view(built, _entry())) == []
    assert "mp_state HALTED" in judge(view(built, _entry(mp_state=x86.KVM_MP_STATE_HALTED)))[0]
    assert "APF-halted" in judge(view(built, _entry(halted=True)))[0]
    assert "KVM_REQ_APF_HALT pending" in judge(view(built, _entry(halt_requested=True)))[0]


def test_halted_vcpu_waits_for_wake(built):
    judge = REGISTRY["halted_vcpu_waits_for_wake"].fn
    assert "nothing to wake it" in judge(view(built, _entry(after_halt=True, woken=False)))[0]
    assert judge(view(built, _entry(after_halt=True))) == [] and judge(view(built, _entry(woken=False))) == []


def test_halt_wake_is_judged_from_exit_to_entry(built):
    """The checker owes a wake from a halting exit; a masked interrupt is no wake, an allowed one or done is."""
    c = Checker(built.machine, built.kernel)
    vcpu = built.machine.vcpus[0]
    seen = []
    c._observe = seen.append
    ctx = x86.trace_ctx(vcpu)
    vcpu.arch.exception.pending = False
    vcpu.arch.mp_state, vcpu.arch.rflags_if, vcpu.irr = x86.KVM_MP_STATE_HALTED, False, {0xEF}
    c._on_run_loop(0, "kvm_exit", {"ctx": ctx})
    c.check_state()
    vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE
    c._on_run_loop(1, "kvm_entry", {"ctx": ctx})
    assert seen[-1].data["after_halt"] and not seen[-1].data["woken"]
    vcpu.arch.mp_state = x86.KVM_MP_STATE_HALTED
    c._on_run_loop(2, "kvm_exit", {"ctx": ctx})
    vcpu.arch.rflags_if = True                     # the same timer vector, now allowed: kvm_arch_vcpu_runnable says yes
    c.check_state()
    vcpu.irr = set()
    c._on_run_loop(3, "kvm_entry", {"ctx": ctx})
    assert seen[-1].data["woken"]


def test_reset_leaves_no_async_pf_state(built):
    judge = REGISTRY["reset_leaves_no_async_pf_state"].fn
    clean = {"msr": 0, "msr_int": 0, "halted": False, "exception": False, "queue": 0, "done": 0, "queued": 0,
             "hashed": 0, "in_service": []}
    assert judge(view(built, [Obs(5, "after_reset", 0, clean)])) == []
    for bad in ({"msr": 1}, {"msr_int": 0xF3}, {"halted": True}, {"exception": True}, {"hashed": 1},
                {"in_service": [0xEF]}):
        assert judge(view(built, [Obs(5, "after_reset", 0, {**clean, **bad})])), bad


def test_reset_is_observed_as_the_twin_leaves_it():
    """The checker sees the reset's result: the correct twin leaves nothing; one that keeps the MSR is caught."""
    from asyncpf.check.explore import execute
    clean = execute(CONFIGS["migrate_while_halted"], [], stop_on_violation=False)
    assert "reset_leaves_no_async_pf_state" not in {v.name for v in clean.violations}
    keep_msr = lambda: _replaced_reset(lambda vcpu, inner: _keep_msr(vcpu, inner))  # noqa: E731
    bad = execute(CONFIGS["migrate_while_halted"], [], patch=keep_msr, stop_on_violation=False)
    assert any(v.name == "reset_leaves_no_async_pf_state" and "msr=" in v.detail for v in bad.violations)


def _keep_msr(vcpu, inner):
    msr = vcpu.arch.apf.msr_val
    yield from inner(vcpu)
    vcpu.arch.apf.msr_val = msr


def _replaced_reset(wrapper):
    """A planted bug: the legacy reset that forgets to clear what ``wrapper`` restores (patched from outside)."""
    import contextlib
    from asyncpf.host import legacy
    original = legacy.kvm_arch_vcpu_reset

    @contextlib.contextmanager
    def patched():
        legacy.kvm_arch_vcpu_reset = lambda vcpu: wrapper(vcpu, original)
        try:
            yield
        finally:
            legacy.kvm_arch_vcpu_reset = original
    return patched()


@pytest.mark.parametrize("mid,config,invariant", [
    ("asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_del:10", "irq_one_task",
     "no_sync_stall_on_outstanding_gfn"),
    ("asyncpf.host.legacy.mmu:try_async_pf:stmt_del:14", "kernel_touch", "repeated_fault_halts_before_entry"),
    ("asyncpf.host.seed.mmu:tdp_page_fault:stmt_del:3", "seed_one_task", "seed_faults_go_async"),
    ("asyncpf.host.seed.mmu:can_do_async_pf:stmt_del:0", "seed_vcpu_reset", "async_pf_tried_only_when_possible"),
    ("asyncpf.host.seed.x86:kvm_arch_inject_async_page_present:stmt_del:0", "seed_vcpu_reset",
     "apf_events_only_while_registered"),
    ("asyncpf.host.interrupt.mmu:kvm_mmu_faultin_pfn:stmt_del:15", "irq_same_page",
     "repeated_fault_halts_before_entry"),
    ("asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:stmt_del:0", "one_task", "apf_events_traced"),
    ("asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_swap:0", "irq_one_task", "apf_events_traced"),
    ("asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:stmt_del:4", "kernel_touch",
     "not_present_told_or_halted"),
    ("asyncpf.host.interrupt.x86:kvm_arch_async_page_not_present:stmt_swap:2", "irq_one_task",
     "not_present_told_or_halted"),
    ("asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:bool_drop:3", "user_touch_unpreemptible",
     "not_present_told_or_halted"),
    ("asyncpf.host.interrupt.x86:kvm_arch_can_dequeue_async_page_present:stmt_del:1", "irq_one_task",
     "completion_taken_when_possible"),
    ("asyncpf.host.interrupt.mmu:alloc_apf_token:stmt_swap:2", "irq_token_wrap", "tokens_non_zero"),
    ("asyncpf.host.x86:inject_apf_event:const_off:0", "one_task", "apf_pf_error_code_zero"),
    ("asyncpf.host.interrupt.x86:kvm_arch_async_page_not_present:const_off:4", "irq_one_task",
     "apf_pf_error_code_zero"),
    ("asyncpf.host.x86:kvm_del_async_pf_gfn:bool_drop:6", "hash_wrap", "hash_iff_outstanding"),
    ("asyncpf.host.x86:kvm_del_async_pf_gfn:bool_drop:6", "irq_hash_wrap", "hash_iff_outstanding"),
    ("asyncpf.host.x86:kvm_async_pf_hash_fn:const_off:1", "hash_chain", "hash_iff_outstanding"),
    ("asyncpf.host.x86:kvm_async_pf_gfn_slot:stmt_del:2", "hash_chain_retouch", "gfn_outstanding_once"),
    ("asyncpf.host.x86:kvm_async_pf_gfn_slot:cmp_flip:1", "irq_hash_chain_retouch", "gfn_outstanding_once"),
    ("asyncpf.host.x86:kvm_arch_destroy_vm:stmt_del:3", "one_task", "nothing_leaks"),
    ("asyncpf.host.x86:inject_apf_event:stmt_del:4", "bad_area_touch", "guest_alive"),
    ("asyncpf.host.x86:kvm_queue_exception:stmt_del:0", "msr_table", "refused_wrmsr_gets_gp"),
    ("asyncpf.host.x86:kvm_queue_exception:const_off:0", "irq_msr_table", "refused_wrmsr_gets_gp"),
])
def test_host_fault_path_invariants_kill_their_mutants(mid, config, invariant):
    assert_rule_kills(mid, config, invariant)


@pytest.mark.parametrize("mid,config,invariant", [
    ("asyncpf.guest.kvm:kvm_async_pf_task_wait:bool_drop:1", "atomic_touch_preemptible", "no_sleep_while_atomic"),
    ("asyncpf.guest.kvm:apf_task_wake_all:stmt_del:4", "kernel_touch_offline", "dummy_nodes_accounted"),
    ("asyncpf.guest.kvm:apf_task_wake_one:stmt_swap:1", "kernel_touch_offline", "dummy_nodes_accounted"),
    ("asyncpf.guest.kvm:kvm_async_pf_task_wake:stmt_del:6", "kernel_touch", "dummy_nodes_accounted"),
    ("asyncpf.guest.kvm:kvm_pv_disable_apf:stmt_del:0", "unregistered_offline", "registers_only_when_offered"),
])
def test_guest_kvm_invariants_kill_their_mutants(mid, config, invariant):
    """The guest kvm.c rules each catch a planted slip of the twin on the configuration that reaches it."""
    assert_rule_kills(mid, config, invariant)
