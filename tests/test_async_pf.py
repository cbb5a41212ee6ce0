"""async_pf: setup limits and references, completion order, completion check, queue clearing, wake-all."""

import pytest
from conftest import enable_apf, machine, run

from asyncpf.abi import BROADCAST_TOKEN, KVM_PV_REASON_PAGE_READY
from asyncpf.build import make_swapped
from asyncpf.host import async_pf, mmu, x86
from asyncpf.host.kvm_main import BAD_PFN, SPTE_NONE, gfn_to_hva
from asyncpf.standin import read_reason

PAGE_READY = KVM_PV_REASON_PAGE_READY


def setup(m, *gfns, vcpu=None):
    vcpu = vcpu or m.vcpus[0]
    return [mmu.kvm_arch_setup_async_pf(vcpu, g << 12, g) for g in gfns]


def assert_clean(m):
    k = m.kvm
    assert k.stat.async_pf_allocated == k.stat.async_pf_freed
    assert k.users_count == 1 and k.stat.mm_count == 0 and m.mm.total_page_refs == 0


# --- kvm_setup_async_pf ----------------------------------------------------------------------

def test_legacy_limit_64_then_sync():
    m = machine("legacy")
    assert setup(m, *range(100, 164)) == [True] * 64
    assert setup(m, 200) == [False]
    assert m.vcpus[0].stat["async_pf_limit_hits"] == 1 and m.kvm.stat.async_pf_allocated == 64
    m.shutdown()
    assert m.leaks() == []


def test_legacy_65th_fault_falls_back_to_sync():
    m = machine("legacy")
    setup(m, *range(100, 164))
    make_swapped(m, 300)  # workers ran: their pages are now the resident ones, but G=300 got evicted
    vcpu = m.vcpus[0]
    t0 = m.env.now
    assert run(m, mmu.kvm_mmu_page_fault(vcpu, 300 << 12, 2)) == mmu.RET_MAPPED
    assert m.env.now - t0 >= 39_000 and vcpu.stat["async_pf_limit_hits"] == 1
    assert vcpu.acct["stalled"] > 0


def test_seed_has_no_limit():
    m = machine("seed")
    assert all(setup(m, *range(100, 200)))
    assert m.kvm.stat.async_pf_allocated == 100 and m.vcpus[0].stat["async_pf_limit_hits"] == 0
    m.shutdown()
    assert m.leaks() == []


def test_alloc_failure_falls_back_to_sync(gen):
    m = machine(gen)
    if gen == "seed":
        m.vcpus[0].arch.cpl = 3
        enable_apf(m)
    make_swapped(m, 40)
    m.kvm.alloc_fail = lambda: True
    t0 = m.env.now
    assert run(m, mmu.kvm_mmu_page_fault(m.vcpus[0], 40 << 12, 2)) == mmu.RET_MAPPED
    assert m.kvm.stat.async_pf_alloc_failures == 1 and m.kvm.stat.async_pf_allocated == 0
    assert m.env.now - t0 >= 39_000 and int(m.kvm.spte_pfn[40]) != SPTE_NONE
    assert_clean(m)


def test_work_holds_kvm_and_mm_refs_until_worker_finishes(gen):
    m = machine(gen)
    make_swapped(m, 40, 41)
    setup(m, 40, 41)
    assert m.kvm.users_count == 3 and m.kvm.stat.mm_count == 2
    m.env.run(until=m.env.now + 10_000)  # workers are in the swap read
    assert m.kvm.users_count == 3 and m.kvm.stat.mm_count == 2
    m.env.run()
    assert m.kvm.users_count == 1 and m.kvm.stat.mm_count == 0
    assert len(m.vcpus[0].async_pf.done) == 2 and m.mm.total_page_refs == 2  # pages held until consumed
    m.shutdown()
    assert m.leaks() == []


# --- completion order ---------------------------------------------------------------------------

def test_completion_order_is_not_setup_order(gen):
    m = machine(gen, seed=3)  # nvme_gen4: queue depth 32, independent service times
    gfns = list(range(40, 48))
    make_swapped(m, *gfns)
    setup(m, *gfns)
    m.env.run()
    completed = [ev.args[2] >> 12 for ev in m.tracer.of("kvm_async_pf_completed")]
    assert sorted(completed) == gfns and completed != gfns
    assert [w.arch.gfn for w in m.vcpus[0].async_pf.done] == completed  # done is FIFO in completion order


def test_in_flight_page_completes_before_earlier_setup():
    m = machine("legacy", swap_device="hdd_7200_2010", seed=5)
    make_swapped(m, 40, 41)
    m.env.process(m.mm.get_user_pages(m.kvm.memslots[0].userspace_addr + 41 * 4096, True), "other")
    m.env.run(until=m.env.now + 1)  # page 41 is SWAPIN, the disk is busy with it
    setup(m, 40, 41)
    m.env.run()
    assert [w.arch.gfn for w in m.vcpus[0].async_pf.done] == [41, 40]


# --- kvm_check_async_pf_completion -------------------------------------------------------------

def _complete(m, *gfns):
    make_swapped(m, *gfns)
    setup(m, *gfns)
    m.env.run()


def test_legacy_disabled_drains_done_silently_in_one_call():
    """virt/kvm/async_pf.c@v2.6.38 loops while the gate is open; with APF off the gate never closes."""
    m = machine("legacy")
    _complete(m, 40, 41, 42)
    vcpu = m.vcpus[0]
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert len(vcpu.async_pf.done) == 0 and vcpu.async_pf.queued == 0
    assert m.tracer.count("kvm_async_pf_ready") == 3
    assert not vcpu.arch.exception.pending and vcpu.stat["apf_injected"] == 0
    assert_clean(m)


@pytest.mark.parametrize("block", ["if0", "shadow", "exception"])
def test_gate_blocks_when_enabled(block):
    m = machine("legacy")
    vcpu = m.vcpus[0]
    enable_apf(m)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))  # the wake-all
    vcpu.arch.exception.pending = False
    _complete(m, 40)
    if block == "if0":
        vcpu.arch.rflags_if = False
    elif block == "shadow":
        vcpu.arch.interrupt_shadow = True
    else:
        x86.kvm_queue_exception(vcpu, x86.GP_VECTOR)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert len(vcpu.async_pf.done) == 1 and m.tracer.count("kvm_async_pf_ready") == 1


def test_enabled_injects_page_ready_and_prefaults():
    m = machine("legacy")
    vcpu = m.vcpus[0]
    enable_apf(m)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))  # the wake-all
    vcpu.arch.exception.pending = False
    make_swapped(m, 40, 41)
    setup(m, 40, 41)
    vcpu.arch.exception.pending = False  # the guest took the not-presents
    m.env.run()
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert len(vcpu.async_pf.done) == 1  # one per call
    exc = vcpu.arch.exception
    assert exc.pending and exc.nr == x86.PF_VECTOR and exc.error_code == 0
    assert vcpu.arch.cr2 == m.tracer.of("kvm_async_pf_ready")[-1].args[0]
    assert read_reason(vcpu) == PAGE_READY
    first = m.tracer.of("kvm_async_pf_ready")[-1]
    assert first.args[1] >> 12 in (40, 41) and first.args[0] & 0xFFF == 0
    gfn = first.args[1] >> 12
    assert mmu.spte_mapped(vcpu, gfn) and not x86.kvm_find_async_pf_gfn(vcpu, gfn)
    m.shutdown()
    assert m.leaks() == []


def test_seed_one_completion_per_call():
    m = machine("seed")
    vcpu = m.vcpus[0]
    enable_apf(m)
    make_swapped(m, 40, 41)
    for g in (40, 41):  # one fault per entry: each not-present is injected before the next fault
        setup(m, g)
        run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
        vcpu.arch.exception.pending = False
    m.env.run()
    for left in (1, 0):
        run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
        assert len(vcpu.async_pf.done) == left
        vcpu.arch.exception.pending = False
    sends = [ev.args[2] for ev in m.tracer.of("kvm_send_async_pf")]
    assert sends == [1, 1, 2, 2]
    assert_clean(m)


def test_seed_skips_both_events_when_page_beat_injection():
    m = machine("seed")
    vcpu = m.vcpus[0]
    enable_apf(m)
    make_swapped(m, 40)
    setup(m, 40)
    m.env.run()  # the worker finishes before the next entry
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert m.tracer.count("kvm_send_async_pf") == 0 and not vcpu.arch.exception.pending
    assert not vcpu.async_pf.done and vcpu.async_pf.queued == 0 and vcpu.async_pf.slot is None
    assert_clean(m)


# --- kvm_clear_async_pf_completion_queue --------------------------------------------------------

def _msr_disable(m):
    run(m, x86.kvm_set_msr_common(m.vcpus[0], m.gen.msr_async_pf_en, 0))


def _reset(m):
    run(m, m.vcpus[0].kvm.twins.kvm_arch_vcpu_reset(m.vcpus[0]))


@pytest.mark.parametrize("how", [_msr_disable, _reset], ids=["msr_disable", "reset"])
def test_clear_cancels_pending_waits_running_delivers_nothing(how):
    # one worker shared by two vcpus: vcpu0's 40 runs, vcpu1's 42 and vcpu0's 41 wait in that order
    m = machine("legacy", workers=1, vcpus=2)
    v0, v1 = m.vcpus
    enable_apf(m, v0)
    enable_apf(m, v1)
    make_swapped(m, 40, 41, 42)
    setup(m, 40, vcpu=v0)
    setup(m, 42, vcpu=v1)
    setup(m, 41, vcpu=v0)
    m.env.run(until=m.env.now + 1000)
    running, pending = v0.async_pf.queue
    assert (running.state, pending.state) == ("running", "queued")
    v0.arch.exception.pending = False
    how(m)
    assert running.state == "freed" and running.finished.triggered  # waited for, then freed
    assert pending.state == "freed" and not pending.finished.triggered  # cancelled, never ran
    done_gfns = [ev.args[2] >> 12 for ev in m.tracer.of("kvm_async_pf_completed")]
    assert 41 not in done_gfns and 40 in done_gfns
    assert not v0.async_pf.queue and not v0.async_pf.done and v0.async_pf.queued == 0
    # 2.6.38 frees the cancelled item without dropping its mm and kvm references (KNOWN_LEAKS)
    assert m.kvm.stat.mm_count == 1 and m.kvm.users_count == 2 and m.kvm.stat.cancel_leaked_refs == 1
    assert [w.arch.gfn for w in v1.async_pf.done][-1] == 42  # vcpu1's work is untouched
    for _ in range(3):
        run(m, v0.kvm.twins.kvm_check_async_pf_completion(v0))
    assert not [ev for ev in m.tracer.of("kvm_async_pf_ready") if ev.pid == v0.pid]
    assert not v0.arch.exception.pending
    assert (v0.arch.apf.gfns == x86.GFN_SLOT_EMPTY).all()
    m.shutdown()
    assert m.leaks() == [] and len(m.known_leaks()) == 1 and "cancel_leaked_refs" in m.known_leaks()[0]


def test_legacy_cancelled_item_keeps_its_kvm_and_mm_references():
    """virt/kvm/async_pf.c@v2.6.38: the cancelled branch of kvm_clear_async_pf_completion_queue only frees the item."""
    m = machine("legacy", workers=1, vcpus=2)
    v0, v1 = m.vcpus
    make_swapped(m, 40, 41)
    setup(m, 40, vcpu=v1)  # takes the only worker
    setup(m, 41, vcpu=v0)  # waits for it
    m.env.run(until=m.env.now + 1000)
    assert [w.state for w in v0.async_pf.queue] == ["queued"]
    run(m, v0.kvm.twins.kvm_arch_vcpu_reset(v0))
    assert m.kvm.stat.async_pf_freed == 1 and m.kvm.stat.cancel_leaked_refs == 1
    m.env.run()
    assert (m.kvm.users_count, m.kvm.stat.mm_count) == (2, 1)  # v1's worker dropped its own; the cancelled kept
    m.shutdown()
    assert m.leaks() == [] and m.known_leak_names() == ["cancel_leaked_refs"]
    assert m.known_leaks()[0].startswith("1 x cancel_leaked_refs: ")
    m.kvm.stat.cancel_leaked_refs = 0  # without the documented leak the same counts are a leak of the model
    assert "kvm users_count is 2, expected 1" in m.leaks()


def test_reset_pending_flag_is_served_by_the_run_loop():
    m = machine("legacy", workers=1, scripts={"a": [(5, 1000)]})
    vcpu = m.vcpus[0]
    enable_apf(m)
    make_swapped(m, 40, 41)
    setup(m, 40)
    vcpu.arch.exception.pending = False
    setup(m, 41)
    vcpu.arch.exception.pending = False
    m.env.run(until=m.env.now + 1000)
    vcpu.reset_pending = True
    m.start().run()
    assert vcpu.arch.apf.msr_val == 0 and m.tracer.count("kvm_async_pf_ready") == 0
    assert m.tracer.count("kvm_inj_exception") == 0
    m.shutdown()
    assert m.leaks() == []


@pytest.mark.parametrize("gen,workers", [
    ("legacy", 1), ("legacy", None), ("seed", None),
    ("seed", 1),
])
def test_destroy_with_outstanding_work_leaks_nothing(gen, workers):
    m = machine(gen, workers=workers)
    if gen == "legacy":
        enable_apf(m)
    make_swapped(m, 40, 41)
    setup(m, 40, 41)
    m.env.run(until=m.env.now + 1000)
    m.shutdown()
    assert m.leaks() == []
    assert m.tracer.count("kvm_async_pf_ready") == 0 and m.vcpus[0].stat["apf_injected"] <= 2


# --- kvm_async_pf_wakeup_all --------------------------------------------------------------------

def test_legacy_enable_queues_one_broadcast():
    m = machine("legacy")
    vcpu = m.vcpus[0]
    enable_apf(m)
    apf = vcpu.async_pf
    assert len(apf.done) == 1 and apf.queued == 1 and apf.queue == []
    assert apf.done[0].page == BAD_PFN and apf.done[0].wakeup_all
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert vcpu.arch.cr2 == BROADCAST_TOKEN == 0xFFFFFFFF
    assert read_reason(vcpu) == PAGE_READY and vcpu.arch.exception.nr == x86.PF_VECTOR
    assert apf.queued == 0 and not apf.done
    assert_clean(m)


def test_legacy_reenable_with_done_nonempty_is_noop():
    m = machine("legacy")
    _complete(m, 40)
    enable_apf(m)
    assert m.kvm.stat.async_pf_allocated == 1 and len(m.vcpus[0].async_pf.done) == 1
    m.shutdown()
    assert m.leaks() == []


def test_seed_enable_has_no_broadcast():
    m = machine("seed")
    enable_apf(m)
    assert not m.vcpus[0].async_pf.done and m.kvm.stat.async_pf_allocated == 0


def test_seed_disable_then_late_completion_delivers_nothing():
    m = machine("seed")
    vcpu = m.vcpus[0]
    enable_apf(m)
    make_swapped(m, 40)
    setup(m, 40)
    m.env.run(until=m.env.now + 1000)  # the worker is in the swap read
    run(m, x86.kvm_set_msr_common(vcpu, m.gen.msr_async_pf_en, 0))
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert m.tracer.count("kvm_send_async_pf") == 0 and not vcpu.arch.exception.pending


def _one_outstanding_after_enable():
    """A legacy machine with APF enabled (its broadcast consumed) and one APF outstanding on vcpu 0."""
    m = machine("legacy", workers=1)
    vcpu = m.vcpus[0]
    enable_apf(m)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))  # consume the enable's broadcast
    vcpu.arch.exception.pending = False
    make_swapped(m, 40)
    setup(m, 40)
    vcpu.arch.exception.pending = False
    return m, vcpu, vcpu.async_pf.queue[0]


def _reset_after_worker(m, vcpu, work):
    """Reset the vcpu; its clear must first wait for ``work``'s worker, then finish."""
    reset = vcpu.kvm.twins.kvm_arch_vcpu_reset(vcpu)
    assert next(reset) is work.finished  # the clear waits for the worker (before the fixes: no wait)

    def rest():
        yield work.finished
        yield from reset

    run(m, rest())
    assert work.state == "freed" and not vcpu.async_pf.queue and not vcpu.async_pf.done
    assert vcpu.async_pf.queued == 0


def test_clear_waits_for_a_work_whose_worker_has_not_started_yet():
    # queue_work hands the item to a free worker at once; until that worker's first step the item is
    # neither pending (cancel_work fails) nor running.  cancel_work_sync still waits for it: it must not
    # be dropped from the queue and then land on done after the clear (queued would go negative).
    m, vcpu, work = _one_outstanding_after_enable()
    assert work.state == "queued" and work.id in m.workqueue.running
    _reset_after_worker(m, vcpu, work)
    run(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    assert m.tracer.count("kvm_async_pf_ready") == 1  # only the broadcast, before the reset
    m.shutdown()
    assert m.leaks() == []


def test_clear_waits_for_a_worker_still_finishing_after_done():
    # The worker appends its item to done and only then wakes the vcpu and drops its mm and kvm
    # references.  cancel_work_sync waits for the work function to return, so a clear in that window
    # must wait too before freeing the item, or the worker's last steps would follow the free.
    m, vcpu, work = _one_outstanding_after_enable()
    while work.state != "done":
        m.env.step()
    assert work in vcpu.async_pf.done and not work.finished.triggered
    _reset_after_worker(m, vcpu, work)
    m.shutdown()
    assert m.leaks() == []


def test_seed_failed_gup_leaves_page_null():
    """A memslot with no vma behind it: the seed goes async (no VM_PFNMAP vma), the worker's GUP fails; 2.6.38's
    worker leaves page NULL and traces pfn 0 (the seed's was uninitialised), and nothing puts a page never taken."""
    from asyncpf.host.kvm_main import kvm_set_memory_region
    m = machine("seed")
    v = m.vcpus[0]
    v.arch.cpl = 3
    enable_apf(m)
    gfn = 1 << 20
    kvm_set_memory_region(m.kvm, 7, gfn, 1, 0x10_0000_0000)  # nothing mapped there
    assert run(m, mmu.kvm_mmu_page_fault(v, gfn << 12, 2)) == mmu.RET_RETRY
    m.env.run()
    (work,) = v.async_pf.done
    assert work.done and work.page is None
    (ev,) = m.tracer.of("kvm_async_pf_completed")
    assert ev.args[1] == 0
    run(m, v.kvm.twins.kvm_check_async_pf_completion(v))  # page-ready; no put_page of a page never taken
    run(m, v.kvm.twins.kvm_check_async_pf_completion(v))
    m.shutdown()
    assert m.leaks() == []


# --- KASAN-style poison of freed items -------------------------------------------------------------

@pytest.mark.parametrize("gen", ["legacy", "interrupt"])
def test_freed_item_is_poisoned_live_item_is_not(gen):
    m = machine(gen)
    vcpu = m.vcpus[0]
    live = async_pf.alloc_work(vcpu)
    freed = async_pf.alloc_work(vcpu)
    assert (live.addr, live.page, live.arch.token) == (0, None, 0)   # a live item's fields read freely
    async_pf.free_work(freed)
    assert m.kvm.stat_violations == []
    assert freed.id and freed.vcpu is vcpu and freed.state == "freed"   # glue stays readable
    assert async_pf.peek(freed, "addr") == 0 and m.kvm.stat_violations == []
    assert freed.addr == 0                                               # the value is still returned ...
    assert not freed.wakeup_all
    reports = m.kvm.stat_violations
    assert [r[0] for r in reports] == ["use_after_free"] * 3            # ... and every read reported
    assert [r[2].split(" of ")[0] for r in reports] == ["addr", "wakeup_all", "page"]
    assert type(live) is async_pf.KvmAsyncPf and "__getattribute__" not in vars(async_pf.KvmAsyncPf)
    async_pf.free_work(live)


def test_interrupt_era_worker_whose_gup_fails_still_completes():
    """A read fault on a swapped page of a read-only VMA goes async; 6.18's worker faults it in for write
    (FOLL_WRITE), which fails, and publishes the item anyway (virt/kvm/async_pf.c@v6.18 async_pf_execute:
    the vcpu is told even if faulting the page in failed); no page reference is taken or dropped."""
    m = machine("interrupt")
    v = m.vcpus[0]
    v.arch.cpl = 3
    enable_apf(m)
    make_swapped(m, 5)
    m.mm.find_vma(gfn_to_hva(m.kvm, 5)).writable = False
    assert run(m, mmu.kvm_mmu_page_fault(v, 5 << 12, 0)) == mmu.RET_RETRY
    (work,) = v.async_pf.done
    assert work.done and m.kvm.stat.async_pf_completed == 1 and m.mm.total_page_refs == 0
    m.shutdown()
    assert m.leaks() == []
