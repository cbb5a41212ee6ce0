"""Issue 15, the host survivors: each new invariant or configuration is clean on the correct model and kills a planted bug."""

import pytest
from conftest import assert_rule_kills

from asyncpf.check.explore import explore
from asyncpf.check.models import CONFIGS


@pytest.mark.parametrize("mid,config,invariant", [
    ("asyncpf.host.interrupt.mmu:alloc_apf_token:const_off:4", "irq_two_tasks", "tokens_follow_the_counter"),
    ("asyncpf.host.interrupt.mmu:alloc_apf_token:const_off:2", "irq_token_wrap", "tokens_follow_the_counter"),
    ("asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_del:8", "irq_one_task",
     "pageready_pending_until_ack"),
    ("asyncpf.host.interrupt.x86:msr_async_pf_ack:stmt_swap:1", "irq_ack_race", "pageready_pending_until_ack"),
    ("asyncpf.host.async_pf:async_pf_execute:cmp_flip:1", "one_task", "completion_traced_with_its_page"),
    ("asyncpf.host.interrupt.x86:vcpu_enter_guest:stmt_swap:1", "irq_one_task", "ready_request_served_before_entry"),
    ("asyncpf.host.seed.mmu:gfn_to_pfn_async:stmt_del:1", "seed_noslot_touch", "async_pf_only_for_io"),
    ("asyncpf.host.seed.x86:vcpu_enter_guest:stmt_swap:0", "seed_one_task", "no_block_with_exception_queued"),
    ("asyncpf.host.interrupt.x86:apf_pageready_slot_free:const_off:1", "irq_vcpu_reset_token_top_byte",
     "page_ready_slot_free"),
    ("asyncpf.host.legacy.x86:kvm_arch_can_inject_async_page_present:stmt_del:0", "irqoff_touch_unregistered",
     "completion_taken_when_possible"),
    ("asyncpf.host.interrupt.x86:kvm_arch_can_dequeue_async_page_present:stmt_del:0", "irq_msr_table_late_touch",
     "completion_taken_when_possible"),
])
def test_host_survivors_are_killed_by_their_rule(mid, config, invariant):
    assert_rule_kills(mid, config, invariant)


@pytest.mark.parametrize("name", ["irq_vcpu_reset_token_top_byte", "seed_noslot_touch", "irqoff_touch_unregistered",
                                  "irq_msr_table_late_touch"])
def test_new_configurations_are_fast_and_clean(name):
    cfg = CONFIGS[name]
    assert cfg.fast and cfg.note
    rep = explore(cfg, stop_at_first=False, trace_counterexample=False)
    assert rep.complete and not rep.violated


def test_token_counter_counts_refused_set_ups():
    """A set-up the limit refuses still takes a counter value: limit64's later tokens skip those values."""
    rep = explore(CONFIGS["limit64"], stop_at_first=False, trace_counterexample=False)
    assert "tokens_follow_the_counter" not in rep.violated


@pytest.mark.parametrize("mid,invariant", [
    ("asyncpf.host.async_pf:alloc_work:bool_drop:1", "seed_faults_go_async"),       # every allocation fails
    ("asyncpf.host.async_pf:alloc_work:stmt_del:7", "refused_set_up_tells_nothing"),  # a refused item set up anyway
])
def test_refused_allocations_are_judged_fault_by_fault(mid, invariant):
    assert_rule_kills(mid, "seed_alloc_fail", invariant)


def test_failing_allocations_counts_its_own_calls():
    from asyncpf.check.models import failing_allocations
    fail = failing_allocations((1, 3))
    assert [fail() for _ in range(4)] == [True, False, True, False]
