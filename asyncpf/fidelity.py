"""The fidelity table: every kernel twin, the tree it was compared with, and the verdict.

A twin is registered with ``@mirrors`` (file, function, generation); this
module adds what a statement-by-statement comparison with that generation's
released tree found (:data:`VERDICTS`), and the test that pins each
difference that was fixed.  A twin without an entry is listed as *not yet
compared*: the table says what has been checked, never more.
``python -m asyncpf.tools.fidelity_table`` writes ``docs/fidelity.md``;
``tests/test_fidelity.py`` keeps that file, the registry and the named tests in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from .mirrors import TAGS, Mirror, mirror_table

IDENTICAL = "identical"
SIMPLIFIED = "simplified"
DEFECT = "kernel defect reproduced"
FIXED = "difference fixed"
NOT_YET = "not yet compared"


@dataclass(frozen=True)
class Verdict:
    kind: str
    note: str = ""
    test: str = ""       # tests/<file>.py::<test> that fails on the old (or a better-than-the-kernel) behaviour


# hash.h's multiplier per generation: the tests that fail if a generation hashed with the other's
_PIN_GFN_HASH = "tests/test_x86.py::test_each_generation_hashes_gfns_with_its_kernels_hash_32"
_PIN_SLEEPER_HASH = "tests/test_guest_kvm.py::test_each_generation_hashes_sleepers_with_its_kernels_hash_32"

_L = "asyncpf.host.legacy."
_S = "asyncpf.host.seed."
_H = "asyncpf.host."
_G = "asyncpf.guest."

VERDICTS: dict[str, Verdict] = {
    # --- virt/kvm/async_pf.c @ v2.6.38 ---------------------------------------------------------------
    _L + "async_pf.kvm_setup_async_pf": Verdict(
        SIMPLIFIED, "limit, GFP_NOWAIT, mm + kvm refs, error-hva refusal, queue then not_present in the kernel's "
        "order; schedule_work cannot fail here"),
    _L + "async_pf.kvm_check_async_pf_completion": Verdict(
        FIXED, "was one item per call; v2.6.38 loops while done is non-empty and the gate is open (APF off: drains); "
        "page_ready only for a non-NULL page",
        "tests/test_async_pf.py::test_legacy_disabled_drains_done_silently_in_one_call"),
    _L + "async_pf.kvm_clear_async_pf_completion_queue": Verdict(
        DEFECT, "dropped a cancelled item's mm and kvm references; v2.6.38 only frees it, so both leak (counted as "
        "kvm.stat.cancel_leaked_refs, KNOWN_LEAKS; later kernels drop them in the cancelled branch). "
        "cancel_work_sync is a wait on the item's finish",
        "tests/test_async_pf.py::test_legacy_cancelled_item_keeps_its_kvm_and_mm_references"),
    _L + "async_pf.kvm_async_pf_wakeup_all": Verdict(
        IDENTICAL, "bad_page item on done only, queued++, -ENOMEM on allocation failure"),
    _H + "async_pf.async_pf_execute": Verdict(
        FIXED, "stored GUP's -EFAULT as the page (and put it later); v2.6.38 leaves page NULL and traces pfn 0. "
        "Seed: execute (kvm_main.c in seed 000) drops only the mm ref, the slow-work put_ref callback the kvm ref "
        "right after -- balanced, so no leak to account; its failed GUP leaves page None as 2.6.38, where v2 left "
        "it uninitialised; use_mm and mmap_sem implicit",
        "tests/test_async_pf.py::test_seed_failed_gup_leaves_page_null"),
    # --- arch/x86/kvm/x86.c @ v2.6.38 ----------------------------------------------------------------
    _L + "x86.kvm_arch_async_page_not_present": Verdict(
        IDENTICAL, "trace, hash add, APF_HALT when disabled or CPL0 without SEND_ALWAYS, else reason write + #PF"),
    _L + "x86.kvm_arch_async_page_present": Verdict(
        FIXED, "never cleared apf.halted; v2.6.38 ends with apf.halted = false",
        "tests/test_fidelity.py::test_page_present_unhalts"),
    _L + "x86.kvm_arch_async_page_ready": Verdict(
        SIMPLIFIED, "always direct-map, so the direct_map/cr3 checks pass; error page skipped"),
    _L + "x86.kvm_arch_can_inject_async_page_present": Verdict(IDENTICAL),
    _L + "x86.kvm_pv_enable_async_pf": Verdict(
        DEFECT, "was validate-then-store (the 2025-26 fix); v2.6.38 stores msr_val before resolving the area, so a "
        "refused bad-GPA write leaves APF half-enabled with an unwritable area -- fixed upstream by 923ca078f08c",
        "tests/test_x86.py::test_legacy_bad_gpa_leaves_apf_half_enabled"),
    _L + "x86.kvm_arch_vcpu_reset": Verdict(SIMPLIFIED, "only the APF state is reset; the pending exception and "
                                            "RUNNABLE are the VMM's part (KVM_SET_VCPU_EVENTS, SIPI), done here too"),
    _L + "x86.kvm_arch_vcpu_runnable": Verdict(SIMPLIFIED, "no NMI or SIPI terms"),
    _L + "x86.__vcpu_run": Verdict(
        FIXED, "checked completions after a triple fault; v2.6.38 breaks out first (r <= 0)",
        "tests/test_fidelity.py::test_triple_fault_ends_the_loop_before_completions"),
    _L + "x86.vcpu_enter_guest": Verdict(SIMPLIFIED, "only the APF_HALT request and the entry/exit are modelled"),
    _H + "x86.hash_32": Verdict(IDENTICAL, "top bits of val * GOLDEN_RATIO_PRIME_32 (0x9e370001)", _PIN_SLEEPER_HASH),
    _H + "x86.kvm_async_pf_hash_fn": Verdict(IDENTICAL, "hash_32(gfn & 0xffffffff, 6)", _PIN_GFN_HASH),
    _H + "x86.kvm_add_async_pf_gfn": Verdict(IDENTICAL),
    _H + "x86.kvm_async_pf_gfn_slot": Verdict(IDENTICAL, "stops at gfn or ~0 (&&, as released)"),
    _H + "x86.kvm_find_async_pf_gfn": Verdict(IDENTICAL),
    _H + "x86.kvm_del_async_pf_gfn": Verdict(IDENTICAL, "backward-shift deletion"),
    _H + "x86.kvm_async_pf_hash_reset": Verdict(IDENTICAL),
    _H + "x86.apf_put_user": Verdict(IDENTICAL, "kvm_write_guest_cached of a u32"),
    _H + "x86.kvm_set_msr_common": Verdict(
        FIXED, "traced kvm_msr itself; v2.6.38 traces in the WRMSR exit handler (vmx.c handle_wrmsr) only. The "
        "VMM's writes get the guest's verdicts, in v6.18 too (its async PF cases refuse a hidden MSR even the VMM's 0, "
        "until 5bb9ac186512)",
        "tests/test_fidelity.py::test_vmm_msr_write_is_not_traced"),
    _H + "vcpu.handle_wrmsr": Verdict(SIMPLIFIED, "traces kvm_msr (with ' (#GP)' when refused) and queues #GP"),
    # --- virt/kvm/kvm_main.c, arch/x86/kvm/x86.h @ v2.6.38 -----------------------------------------
    _H + "kvm_main.kvm_gfn_to_hva_cache_init": Verdict(
        FIXED, "returned early on a bad gpa, keeping the old area; v2.6.38 overwrites gpa, generation, memslot and "
        "hva (the error hva) before it checks", "tests/test_x86.py::test_legacy_bad_gpa_leaves_apf_half_enabled"),
    _H + "kvm_main.kvm_write_guest_cached": Verdict(
        SIMPLIFIED, "re-init on a stale generation, -EFAULT on an error hva, copy and mark dirty; the copy never "
        "faults"),
    _H + "kvm_main.gfn_to_pfn": Verdict(
        SIMPLIFIED, "hva_to_pfn(atomic=false): get_user_pages_fast (lockless, then sleeping), else VM_PFNMAP -> "
        "MMIO pfn, else fault_pfn; no hwpoison, writes only"),
    _H + "kvm_main.gfn_to_memslot": Verdict(IDENTICAL, "the slot whose range holds gfn"),
    _H + "kvm_main.gfn_to_hva": Verdict(SIMPLIFIED, "no KVM_MEMSLOT_INVALID slots"),
    _H + "x86.kvm_event_needs_reinjection": Verdict(
        IDENTICAL, "exception pending, interrupt pending or NMI injected"),
    _H + "x86.kvm_multiple_exception": Verdict(
        SIMPLIFIED, "the SDM table as released (#DF pending -> triple fault; PF/contributory -> #DF; else replace); "
        "no KVM_REQ_EVENT"),
    _H + "vcpu.kvm_vcpu_block": Verdict(
        SIMPLIFIED, "runnable -> UNHALT and leave; no signals; the pending-timer test is folded into runnable"),
    _H + "vcpu.kvm_vcpu_kick": Verdict(
        SIMPLIFIED, "wake the wait queue; IPI only a vcpu in guest mode (the kernel's guest_mode xchg); in 2.6.38 "
        "this lives in arch/x86/kvm/x86.c"),
    _H + "kvm_main.KvmMmuNotifier.invalidate_page": Verdict(
        SIMPLIFIED, "seq++ then unmap under mmu_lock; the remote TLB flush is implicit"),
    _H + "kvm_main.KvmMmuNotifier.invalidate_range_start": Verdict(
        SIMPLIFIED, "count++ then unmap each page under mmu_lock; the remote TLB flush is implicit"),
    _H + "kvm_main.KvmMmuNotifier.invalidate_range_end": Verdict(IDENTICAL, "seq++ then count--, BUG below 0"),
    _H + "kvm_main.mmu_notifier_retry": Verdict(IDENTICAL, "count non-zero, or seq moved"),
    # --- arch/x86/kvm/mmu.c @ v2.6.38 ----------------------------------------------------------------
    _L + "mmu.can_do_async_pf": Verdict(SIMPLIFIED, "the irqchip is always in-kernel"),
    _L + "mmu.try_async_pf": Verdict(
        FIXED, "traced kvm_try_async_get_page with the pfn; v2.6.38 traces (gva, gfn) through the event class",
        "tests/test_kvm_main.py::test_legacy_traces_only_the_async_path"),
    _L + "mmu.tdp_page_fault": Verdict(SIMPLIFIED, "4 KiB direct map; no huge pages or dirty logging"),
    _H + "mmu.kvm_arch_setup_async_pf": Verdict(
        SIMPLIFIED, "token (id++ << 12) | vcpu_id as released; direct_map and cr3 not kept (always EPT)"),
    _L + "mmu.gfn_to_pfn_async": Verdict(
        SIMPLIFIED, "2.6.39's FOLL_NOWAIT lookup (0857b9e95c1a), not v2.6.38's, which still slept in "
        "get_user_pages_fast before it could answer async"),
    # --- arch/x86/kernel/kvm.c @ v2.6.38 (the guest) -----------------------------------------------
    _G + "kvm._find_apf_task": Verdict(IDENTICAL),
    _G + "kvm.kvm_async_pf_task_wait": Verdict(
        SIMPLIFIED, "dummy consumed first; halted = idle or preemption disabled (preempt_count() > 1 under the "
        "bucket lock); sleep-and-schedule or STI;HLT loop until unhashed; no mm reference"),
    _G + "kvm.apf_task_wake_one": Verdict(
        DEFECT, "a dummy node is unlinked and returned from without kfree: wake-all leaks this cpu's dummies",
        "tests/test_guest_kvm.py::test_broadcast_wakes_every_node_of_this_cpu_only_and_drops_its_dummies"),
    _G + "kvm.apf_task_wake_all": Verdict(IDENTICAL, "every bucket, only nodes of this cpu"),
    _G + "kvm.kvm_async_pf_task_wake": Verdict(
        SIMPLIFIED, "~0 wakes all (2.6.38; the seed's host never sends it); else wake the node or add a dummy at the "
        "bucket head; the GFP_ATOMIC allocation never fails (the kernel busy-waits and retries)"),
    _G + "kvm.kvm_read_and_reset_pf_reason": Verdict(
        IDENTICAL, "tests apf_reason.enabled in the area (guest memory), then reads and zeroes the reason",
        "tests/test_guest_kvm.py::test_read_and_reset_pf_reason"),
    _G + "kvm.do_async_page_fault": Verdict(SIMPLIFIED, "dispatch on the reason as released; the entry costs time"),
    _G + "kvm.kvm_pv_disable_apf": Verdict(
        IDENTICAL, "returns unless apf_reason.enabled (in the area) is set; EN = 0, then enabled = 0",
        "tests/test_guest_kvm.py::test_disable_tests_the_areas_enabled_word_not_the_models_mirror"),
    _G + "kvm.kvm_guest_cpu_offline": Verdict(IDENTICAL, "disable, then wake all of this cpu"),
    "asyncpf.guest.legacy.kvm_guest_cpu_init": Verdict(
        SIMPLIFIED, "ENABLED | SEND_ALWAYS on CONFIG_PREEMPT; the area is a fixed per-cpu gpa; a refused write "
        "oopses (no wrmsrl fixup), as released", "tests/test_guest_kvm.py::test_a_refused_registration_oopses_the_pf_era_guest"),
    # --- the seed (v2 patch 08/12) -------------------------------------------------------------------
    _S + "mmu.tdp_page_fault": Verdict(IDENTICAL, "can_do_async_pf -> gfn_to_pfn_async traced (r, pfn) -> setup, "
                                       "else gfn_to_pfn; any error pfn released and emulated ('/* mmio */', "
                                       "the helper kvm_handle_bad_page of this package)"),
    _S + "mmu.gfn_to_pfn_async": Verdict(
        SIMPLIFIED, "error hva -> bad_pfn, sync; fast GUP, get_user_pages_noio, VM_PFNMAP -> MMIO pfn, anything else "
        "async, as posted; mmap_sem implicit"),
    _S + "async_pf.kvm_setup_async_pf": Verdict(
        SIMPLIFIED, "GFP_ATOMIC item with mm and kvm refs parked in async_pf_work, as posted; the model also keeps "
        "the later queue/queued bookkeeping (the seed had only async_pf_done), and slow_work_enqueue cannot fail"),
    _S + "mmu.can_do_async_pf": Verdict(IDENTICAL, "area registered, no reinjection, CPL != 0"),
    _S + "async_pf.kvm_check_async_pf_completion": Verdict(
        IDENTICAL, "parked not-present first (skipped if its page arrived), then one page-ready"),
    _S + "async_pf.kvm_clear_async_pf_completion_queue": Verdict(
        SIMPLIFIED, "frees done only (no cancelling, as in the seed); called where v2.6.38 calls it"),
    _S + "x86.kvm_arch_inject_async_page_not_present": Verdict(
        SIMPLIFIED, "not injected if APF was disabled meanwhile (v2 would inject with a stale reason)"),
    _S + "x86.kvm_arch_inject_async_page_present": Verdict(SIMPLIFIED, "as for not-present"),
    _S + "x86.kvm_arch_can_inject_async_page_present": Verdict(IDENTICAL),
    _S + "x86.kvm_arch_vcpu_runnable": Verdict(
        SIMPLIFIED, "RUNNABLE, async_pf_done non-empty, or an allowed interrupt; no NMI or SIPI",
        "tests/test_fidelity.py::test_seed_done_makes_runnable"),
    _S + "x86.vcpu_enter_guest": Verdict(SIMPLIFIED, "kvm_check_async_pf_completion before entry, as in the seed"),
    # --- the rest of the host path, compared with v2.6.38 (seed: v2.6.32 for the base tree) ------------
    _H + "vcpu.kvm_apic_set_irq": Verdict(
        SIMPLIFIED, "fixed delivery: set the IRR bit, then KVM_REQ_EVENT and kvm_vcpu_kick (lapic.c "
        "__apic_accept_irq); dropped while the LAPIC is software-disabled; the highest ISR vector stands for "
        "the PPR, no TPR, level or trigger mode; a coalesced vector still kicks"),
    _H + "mmu.__direct_map": Verdict(
        SIMPLIFIED, "one 4 KiB leaf spte; no shadow-page allocation (-ENOMEM), no prefetch of neighbours, no "
        "pf_fixed; the pfn reference is dropped by the caller as mmu_set_spte does"),
    _H + "mmu.kvm_mmu_page_fault": Verdict(
        SIMPLIFIED, "page_fault(prefault=false), then emulation when it returns 1; an error pfn goes to the "
        "generation's kvm_handle_bad_page (emulate, or -EFAULT out of KVM_RUN)"),
    _L + "mmu.kvm_handle_bad_page": Verdict(
        FIXED, "emulated every error pfn; v2.6.38 releases it, returns -EFAULT (KVM_RUN fails) for fault_pfn and "
        "emulates only bad_pfn (no memslot); no hwpoison branch",
        "tests/test_kvm_main.py::test_a_fault_left_unhandled_fails_kvm_run_instead_of_emulating_ram"),
    _H + "kvm_main.kvm_unmap_hva": Verdict(
        SIMPLIFIED, "kvm_handle_hva(kvm_unmap_rmapp) over every slot mapping hva; one spte per gfn, no rmap "
        "chains or large pages"),
    "asyncpf.host.unpatched.tdp_page_fault": Verdict(
        SIMPLIFIED, "v2.6.38 without async PF: seq snapshot, gfn_to_pfn (sleeps), error pfn -> kvm_handle_bad_page "
        "(bad_pfn emulated, fault_pfn -EFAULT), "
        "mmu_notifier_retry under mmu_lock, map; no mapping levels, no topup"),
    _H + "vcpu.handle_ept_violation": Verdict(
        SIMPLIFIED, "trace kvm_page_fault then kvm_mmu_page_fault; the traced value is the write bit only, where "
        "v2.6.38 traces the whole exit qualification (read/write/fetch, gla bits); no GAW or gla checks"),
    _S + "x86.__vcpu_run": Verdict(
        SIMPLIFIED, "v2.6.32's loop (the seed patch does not touch it): enter while RUNNABLE, else block and "
        "UNHALT -> RUNNABLE; the seed's completion check is in vcpu_enter_guest; no SIPI, signals, timers"),
    "asyncpf.host.unpatched.__vcpu_run": Verdict(
        SIMPLIFIED, "v2.6.38's loop with no APF halt and no completion check; no SIPI, signals, timer injection"),
    _H + "vcpu.inject_pending_event": Verdict(
        SIMPLIFIED, "pending exception first (traced kvm_inj_exception), else the highest allowed vector; no NMI, "
        "no interrupt reinjection, called at every entry (KVM_REQ_EVENT is not modelled)"),
    _H + "x86.kvm_arch_destroy_vm": Verdict(
        SIMPLIFIED, "kvm_free_vcpus: clear each vcpu's completion queue (the seed added that call) before the "
        "MMU goes; iommu, PIC and IOAPIC not modelled; the vcpu threads are stopped first"),
    _H + "x86.kvm_arch_interrupt_allowed": Verdict(
        SIMPLIFIED, "vmx_interrupt_allowed: RFLAGS.IF and no STI/MOV-SS shadow; no nested run pending"),
    _S + "x86.kvm_arch_vcpu_reset": Verdict(
        SIMPLIFIED, "not in seed patch 08/12; APF off as in v2.6.38's reset, and the VMM's part (no pending "
        "exception, RUNNABLE) done here too; the seed cleared its queue only at VM destroy, the model also clears "
        "here (documented in KNOWN)"),
    "asyncpf.host.unpatched.kvm_arch_vcpu_reset": Verdict(
        SIMPLIFIED, "only the VMM's part: no pending exception (v2.6.38's function keeps one; KVM_SET_VCPU_EVENTS "
        "drops it) and RUNNABLE; NMI, debug registers, vendor reset not modelled"),
    "asyncpf.host.unpatched.kvm_arch_vcpu_runnable": Verdict(
        SIMPLIFIED, "RUNNABLE or an allowed interrupt; no NMI or SIPI"),
    _H + "x86.kvm_inject_page_fault": Verdict(
        SIMPLIFIED, "v2.6.38: cr2 = address, then kvm_queue_exception_e(PF); no pf_guest statistic. The seed's "
        "base (v2.6.32) kept CR2 when a #PF was already pending (it became #DF before the write); both end in #DF, "
        "only CR2 at the #DF differs"),
    _S + "x86.kvm_pv_enable_async_pf": Verdict(
        SIMPLIFIED, "v2 patch 02/12 (not the seed document): MSR 0x13, gpa = data & ~0x3f, bit 0 enables; the "
        "model resolves the area through the 2.6.38 hva cache and checks before storing (v2 kept a user pointer "
        "probed with get_user); a disable clears the queue as 2.6.38's does (v2 cleared it at VM destroy only); "
        "no wake-all yet"),
    "asyncpf.guest.seed.kvm_guest_cpu_init": Verdict(
        SIMPLIFIED, "v2 patch 03/12 (Message-Id 1258985167-29178-4-git-send-email-gleb@redhat.com): pa | 1 to MSR "
        "0x13 with wrmsr_safe, enabled = 1 unless refused, no SEND_ALWAYS; the area is a fixed per-cpu gpa"),
    # --- the guest kernel around the PV code (arch/x86, kernel/sched*.c @ v2.6.38) -------------------
    _G + "kernel.cpu_idle": Verdict(
        SIMPLIFIED, "while !need_resched: safe_halt (STI;HLT), then schedule(); boot-time cpu init and the tick "
        "are folded in here; no nohz, no idle notifiers, no mwait/poll idle"),
    _G + "kernel.smp_apic_timer_interrupt": Verdict(
        SIMPLIFIED, "the tick reduced to scheduler_tick plus the preemption check on interrupt exit; no "
        "timekeeping, timer wheel, irq_enter/exit accounting"),
    _G + "kernel.smp_reschedule_interrupt": Verdict(
        IDENTICAL, "ack and return: the interrupt exit path does the rescheduling"),
    _G + "kernel.do_page_fault": Verdict(
        SIMPLIFIED, "anonymous first touch only: a zeroed guest frame is mapped; no vma checks, SIGSEGV, "
        "COW, swap in the guest, or mmap_sem"),
    _G + "sched.resched_task": Verdict(
        SIMPLIFIED, "set need_resched, IPI a remote cpu; no polling-idle shortcut (tsk_is_polling)"),
    _G + "sched.schedule": Verdict(
        FIXED, "restored the caller's IF when prev resumed; a plain schedule() returns with interrupts on "
        "(finish_task_switch's spin_unlock_irq), only the interrupt-exit preemption with them off.  Otherwise "
        "simplified: deactivate a sleeping prev unless preempted, put_prev, pick the least vruntime, switch; no load "
        "balancing (idle_balance), no other classes; the switch cost is charged by the caller",
        "tests/test_guest_sched.py::test_schedule_returns_with_interrupts_on_unless_preempted_from_an_interrupt"),
    _G + "sched.scheduler_tick": Verdict(
        SIMPLIFIED, "update_curr then check_preempt_tick when more than one task is runnable (entity_tick); "
        "no cpu load, trigger_load_balance"),
    _G + "sched.try_to_wake_up": Verdict(
        SIMPLIFIED, "TASK_RUNNING, enqueue with sleeper placement, check_preempt on the task's cpu; no "
        "select_task_rq (a task stays on its cpu), no wake-affine"),
    _G + "sched.check_preempt_tick": Verdict(
        SIMPLIFIED, "resched once the slice is used up; v2.6.38's second test (after min_granularity, resched if "
        "curr is more than a slice of vruntime ahead of the leftmost) is left out, as are buddies"),
    _G + "sched.check_preempt_wakeup": Verdict(
        SIMPLIFIED, "idle curr -> resched; else update_curr and preempt if curr's vruntime exceeds the woken "
        "task's by more than wakeup_granularity; unscaled granularity (nice 0), no buddies, no SCHED_IDLE/BATCH"),
    _G + "sched.enqueue_task_fair": Verdict(
        SIMPLIFIED, "update_curr, place a waking task, queue; a list instead of the rbtree, no group scheduling"),
    _G + "sched.pick_next_task_fair": Verdict(
        SIMPLIFIED, "leftmost = least vruntime (ties: queued first); no next/last buddies"),
    _G + "sched.place_entity": Verdict(
        SIMPLIFIED, "min_vruntime, minus latency/2 for a waking sleeper (GENTLE_FAIR_SLEEPERS), never backwards; "
        "no START_DEBIT for new tasks"),
    _G + "sched.sched_slice": Verdict(
        SIMPLIFIED, "__sched_period (latency, stretched by min_granularity per task) divided equally: nice 0 only"),
    _G + "sched.update_curr": Verdict(
        SIMPLIFIED, "delta of the task clock added to sum_exec_runtime and vruntime (weight 1024), "
        "min_vruntime updated; the idle task is not charged; no statistics or cpuacct"),
    # --- the host mm (mm/*.c, arch/x86/mm/gup.c @ v2.6.38): a mechanism abstracted -------------------
    _H + "mm.HostMemory.get_user_pages_fast": Verdict(
        SIMPLIFIED, "lockless walk reduced to 'resident and writable'; never faults; a pte is writable iff its "
        "vma is (no COW, no zero page, no huge pages)"),
    _H + "mm.HostMemory.page_count": Verdict(
        SIMPLIFIED, "counts GUP references only (no mapping, LRU or swap-cache references)"),
    _H + "mm.HostMemory.zap_range": Verdict(
        SIMPLIFIED, "invalidate_range_start, zap, invalidate_range_end; one anon vma; a pinned frame stays "
        "charged until its last put_page; swap slots freed at once"),
    _H + "mm.HostMemory._charge": Verdict(
        SIMPLIFIED, "at the limit reclaim SWAP_CLUSTER_MAX synchronously in zero time; no retries, no "
        "hierarchy, OOM is an exception"),
    _H + "mm.HostMemory.get_user_pages": Verdict(
        SIMPLIFIED, "handle_mm_fault per page with FOLL_GET|FOLL_TOUCH; a major fault submits one read "
        "(no readahead) and retries after it, as lock_page + retry does; no VM_FAULT_RETRY, no mmap_sem"),
    _H + "mm.HostMemory.get_user_pages_nowait": Verdict(
        SIMPLIFIED, "the seed's get_user_pages_noio and 2.6.39's FOLL_NOWAIT: minor faults served, no IO "
        "started (FOLL_NOWAIT would start the read and return, the noio variant does not)"),
    _H + "mm.HostMemory._fault_nowait": Verdict(
        SIMPLIFIED, "do_anonymous_page (zero fill) and do_swap_page's swap-cache hit; a swap-cache hit charges a "
        "fresh frame; no page locks, no COW"),
    _H + "mm.HostMemory.make_pages_present": Verdict(
        SIMPLIFIED, "get_user_pages over the range without a pages array, stopping at the first page that needs "
        "IO (the caller reads it); vectorised but page-by-page equivalent"),
    _H + "mm.HostMemory.mmap_pfnmap": Verdict(
        SIMPLIFIED, "a VM_PFNMAP vma with vm_pgoff = first pfn; no page tables"),
    _H + "mm.HostMemory.mmap_anon": Verdict(
        SIMPLIFIED, "MAP_PRIVATE|MAP_ANONYMOUS, nothing populated; addresses grow upward with a guard page; no "
        "merging, munmap or THP"),
    _H + "mm.HostMemory.find_vma": Verdict(
        SIMPLIFIED, "the vma containing addr (the kernel returns the first vma ending above it and callers check "
        "vm_start); mmap_cache kept"),
    _H + "mm.HostMemory.mmu_notifier_register": Verdict(
        SIMPLIFIED, "invalidate_page / range_start / range_end only, called in registration order; no SRCU, "
        "release, clear_flush_young or change_pte"),
    _H + "mm.HostMemory._end_swap_bio_read": Verdict(
        SIMPLIFIED, "page up to date, RESIDENT, clean with a valid swap copy; waiters wake and retry; a page zapped "
        "meanwhile drops the data"),
    _H + "reclaim.Reclaimer._end_swap_bio_write": Verdict(
        SIMPLIFIED, "end of write-back: the swap copy becomes valid, a SWAPCACHE page SWAPPED; no error path"),
    _H + "mm.HostMemory._swap_readpage": Verdict(
        SIMPLIFIED, "a charged frame in SWAPIN and one read IO; no readahead (swapin_readahead reads one page)"),
    _H + "reclaim.Reclaimer._evict": Verdict(
        SIMPLIFIED, "pte cleared then invalidate_page per page (ptep_clear_flush_notify), for a whole chunk at "
        "once; the frame is released at once, not at the end of write-back"),
    _H + "mm.HostMemory.mark_accessed": Verdict(
        SIMPLIFIED, "the EPT A/D bits harvested at once (set referenced, dirty on write) instead of through "
        "page_referenced / kvm_age_hva; no active/inactive promotion"),
    _H + "mm.HostMemory.put_page": Verdict(
        SIMPLIFIED, "drops a GUP reference; the last put of a zapped page frees and uncharges its frame"),
    _H + "reclaim.Reclaimer._lru_victims": Verdict(
        SIMPLIFIED, "exact LRU by access tick over one list (no active/inactive split, no anon/file balance); "
        "pinned pages skipped"),
    _H + "reclaim.Reclaimer._clock_victims": Verdict(
        SIMPLIFIED, "a clock hand over the anon pages: a referenced page loses its bit and is passed over once"),
    _H + "reclaim.Reclaimer._shrink": Verdict(
        SIMPLIFIED, "unmap, add_to_swap and pageout of the chosen victims, dirty ones in one write IO; pages with "
        "GUP references are skipped (the kernel would unmap them and free later); no writeback throttling"),
    _H + "reclaim.Reclaimer.reclaim": Verdict(
        SIMPLIFIED, "one shrink of up to nr pages over the whole cgroup, in zero time; no priorities or retries"),
    _H + "kvm_main.kvm_set_memory_region": Verdict(
        FIXED, "dropped only the deleted slot's sptes and bumped the generation once; v2.6.38 zaps every spte "
        "(kvm_arch_flush_shadow) and bumps twice on a deletion. No dirty logging, moves or resizes",
        "tests/test_kvm_main.py::test_deleting_a_memslot_zaps_every_spte"),
}

# --- the interrupt era, compared with the v6.18-era tree as each twin was written ------------------------------
_I = "asyncpf.host.interrupt."
_GI = "asyncpf.guest.interrupt."
VERDICTS.update({
    _I + "async_pf.kvm_setup_async_pf": Verdict(
        SIMPLIFIED, "limit, error hva, GFP_NOWAIT, queue, queued++, not_present decides notpresent_injected, then "
        "schedule_work; no kvm/mm refs (2024); allocation failure injected"),
    _I + "async_pf.async_pf_execute": Verdict(
        SIMPLIFIED, "GUP for write without a page reference (a failed one is published too), publish on done, "
        "present_queued if done was empty, trace, wake; mmget_not_zero always succeeds"),
    _I + "async_pf.kvm_flush_and_free_async_pf_work": Verdict(
        SIMPLIFIED, "flush_work is a wait on the item's finish; a wake-all item has no work to flush"),
    _I + "async_pf.kvm_check_async_pf_completion": Verdict(
        IDENTICAL, "loop while done non-empty and can_dequeue: ready, present, unlink, queued--, flush and free"),
    _I + "async_pf.kvm_clear_async_pf_completion_queue": Verdict(
        SIMPLIFIED, "cancel_work_sync frees an unstarted item and waits for a running one; done flushed and freed"),
    _I + "async_pf.kvm_async_pf_wakeup_all": Verdict(
        SIMPLIFIED, "no-op when done is non-empty; item on done only, present_queued, queued++; the wake-all mark "
        "is the model's bad-page marker"),
    _I + "x86.hash_32": Verdict(IDENTICAL, "top bits of val * GOLDEN_RATIO_32 (0x61C88647, since v4.7)",
                               _PIN_SLEEPER_HASH),
    _I + "x86.kvm_async_pf_hash_fn": Verdict(IDENTICAL, "hash_32(gfn & 0xffffffff, 6) with v6.18's hash_32",
                                             _PIN_GFN_HASH),
    _I + "x86.apf_put_user_notpresent": Verdict(IDENTICAL, "flags = PAGE_NOT_PRESENT through the cache"),
    _I + "x86.apf_put_user_ready": Verdict(IDENTICAL, "token word at offset 4 through the cache"),
    _I + "x86.apf_pageready_slot_free": Verdict(IDENTICAL, "token word reads 0; a failed read is not free"),
    _I + "x86.kvm_pv_async_pf_enabled": Verdict(IDENTICAL, "ENABLED and DELIVERY_AS_INT both set"),
    _I + "x86.kvm_can_deliver_async_pf": Verdict(
        SIMPLIFIED, "enabled, CPL>0 unless send_always; no L2, no protected state, paging always on"),
    _I + "x86.kvm_can_do_async_pf": Verdict(
        SIMPLIFIED, "in-kernel LAPIC, no reinjection, no pending exception, IF; HLT always exits"),
    _I + "x86.kvm_arch_async_page_not_present": Verdict(
        IDENTICAL, "trace, hash add, flags + #PF(CR2 = token) when deliverable, else APF_HALT; returns injected"),
    _I + "x86.kvm_arch_async_page_present": Verdict(
        IDENTICAL, "~0 or hash delete, trace, token + pageready_pending + fixed IRQ only for wake-all or injected "
        "items while enabled, then unhalt and RUNNABLE"),
    _I + "x86.kvm_arch_async_page_present_queued": Verdict(
        SIMPLIFIED, "APF_READY request, kick unless pageready_pending; sequential, so the 2025 barriers are moot"),
    _I + "x86.kvm_arch_can_dequeue_async_page_present": Verdict(
        IDENTICAL, "true when disabled, else LAPIC enabled and slot free"),
    _I + "x86.kvm_pv_enable_async_pf": Verdict(
        DEFECT, "reserved bits, CPUID gates, LAPIC rule, msr_en_val stored before the GPA is resolved: a bad GPA "
        "leaves APF half-enabled as 6.18 does (fixed later by 923ca078f08c)",
        "tests/test_interrupt.py::test_msr_table"),
    _I + "x86.kvm_pv_enable_async_pf_int": Verdict(IDENTICAL, "bits 63:8 reserved, in-kernel LAPIC, vector = bits 7:0"),
    _I + "x86.kvm_vcpu_reset": Verdict(
        DEFECT, "both MSRs zeroed, queue cleared, hash reset, unhalted; send_always, vec and pageready_pending "
        "survive as in 6.18 (the send_always cache was dropped in 2026, 7e985021ef2f); only protocol state reset",
        "tests/test_interrupt.py::test_vcpu_reset_zeroes_both_msrs_and_clears_the_queue_but_keeps_pageready_pending"),
    _I + "x86.kvm_vcpu_running": Verdict(IDENTICAL, "RUNNABLE and not APF-halted"),
    _I + "x86.kvm_arch_vcpu_runnable": Verdict(
        SIMPLIFIED, "running, done non-empty, pending exception, or a deliverable interrupt; no NMI/SMI/SIPI"),
    _I + "x86.vcpu_run": Verdict(SIMPLIFIED, "enter while running else vcpu_block; no completion polling; no signals"),
    _I + "x86.vcpu_block": Verdict(
        SIMPLIFIED, "block unless runnable, return unchanged if still not runnable, then RUNNABLE and unhalted; "
        "no halt polling"),
    _I + "x86.vcpu_enter_guest": Verdict(
        SIMPLIFIED, "APF_HALT makes the synthetic halt, APF_READY consumes completions, in the kernel's order; "
        "other requests not modelled"),
    _I + "x86.kvm_arch_async_page_ready": Verdict(SIMPLIFIED, "always TDP; wake-all skipped; prefetch fault"),
    _I + "mmu.gfn_to_pfn_async": Verdict(SIMPLIFIED, "FOLL_NOWAIT lookup: resident/minor/PFNMAP at once, needs-IO "
                                         "under a vma; no hwpoison or guest_memfd"),
    _I + "mmu.kvm_handle_error_pfn": Verdict(
        FIXED, "emulated every error pfn; in v6.18 a gfn without memslot is emulated (kvm_handle_noslot_fault, "
        "folded in here) and kvm_handle_error_pfn returns -EFAULT for any other error pfn, releasing nothing; no "
        "pending-signal, read-only or hwpoison pfns",
        "tests/test_kvm_main.py::test_bad_page_is_emulated_and_fault_page_fails_kvm_run_from_2_6_38"),
    _I + "mmu.alloc_apf_token": Verdict(IDENTICAL, "counter bumped to 1 when id << 12 is 0, then (id++ << 12) | vcpu_id"),
    _I + "mmu.kvm_arch_setup_async_pf": Verdict(SIMPLIFIED, "token and gfn; direct_map, cr3, error_code not kept"),
    _I + "mmu.kvm_mmu_faultin_pfn": Verdict(
        IDENTICAL, "needs IO + can_do: trace try, repeated fault -> APF_HALT, else setup; otherwise synchronous"),
    _I + "mmu.kvm_tdp_page_fault": Verdict(SIMPLIFIED, "seq snapshot, faultin, map under mmu_lock; 4 KiB only"),
    _I + "lapic.kvm_apic_set_irq": Verdict(
        SIMPLIFIED, "trace accept, drop when software-disabled, IRR and kick; fixed mode, no TPR"),
    _I + "lapic.kvm_lapic_enabled": Verdict(SIMPLIFIED, "in-kernel and software-enabled; always hardware-enabled"),
    _I + "lapic.apic_set_spiv": Verdict(SIMPLIFIED, "bit 8 only; an enabling write requests APF_READY"),
    _H + "kvm_main.kvm_write_guest_offset_cached": Verdict(SIMPLIFIED, "re-init on a new generation, -EFAULT "
                                                          "on an error hva, copy; the page is not marked dirty "
                                                          "(the not-present's kvm_write_guest_cached marked it)"),
    _H + "kvm_main.kvm_read_guest_offset_cached": Verdict(SIMPLIFIED, "as the write"),
    _H + "x86.kvm_get_msr_common": Verdict(
        SIMPLIFIED, "the async PF cases of the generation (EN reads msr_val / msr_en_val, INT msr_int_val, ACK 0); "
        "v6.18 refuses the VMM's read of one the PV CPUID hides, as the guest's (0 only since 5bb9ac186512); other "
        "MSRs unknown", "tests/test_interrupt.py::test_unsupported_msrs_for_guest_and_vmm"),
    _GI + "kvm_guest_cpu_init": Verdict(
        IDENTICAL, "INT before EN = pa | ENABLED | DELIVERY_AS_INT (| PF_VMEXIT) under ASYNC_PF_INT; results not "
        "checked (a refused WRMSR is a fixed-up #GP), the cpu counts as enabled"),
    _GI + "kvm_pv_disable_apf": Verdict(SIMPLIFIED, "EN = 0 and async_pf_enabled cleared; steal time, PV EOI, "
                                                   "kvmclock not modelled"),
    _GI + "kvm_guest_cpu_offline": Verdict(SIMPLIFIED, "disable, then wake this cpu's waiters unless shutting down "
                                                      "(reboot/kexec); the other PV features not modelled"),
    _GI + "kvm_read_and_reset_apf_flags": Verdict(IDENTICAL, "flags read and cleared when enabled"),
    _GI + "exc_page_fault": Verdict(SIMPLIFIED, "kvm_handle_async_pf first, else the ordinary fault"),
    _GI + "__kvm_handle_async_pf": Verdict(
        SIMPLIFIED, "flags 0 -> not ours; IF=0 or kernel mode panic; user mode waits; other flags warn; entry cost"),
    _GI + "kvm_async_pf_task_wait_schedule": Verdict(
        IDENTICAL, "dummy consumed and freed, else node queued and schedule() until unhashed"),
    _GI + "sysvec_kvm_asyncpf_interrupt": Verdict(
        IDENTICAL, "EOI, read token, wake, clear token, ACK (only when enabled on this cpu)"),
})


def verdict(m: Mirror) -> Verdict:
    return VERDICTS.get(m.python, Verdict(NOT_YET))


def table() -> str:
    """``docs/fidelity.md``: one row per twin, grouped by kernel file."""
    out = ["# Fidelity table", "",
           "Every kernel twin of `asyncpf`, the tree it follows, and what a statement-by-statement comparison with",
           "that released tree found. Generated by `python -m asyncpf.tools.fidelity_table` from",
           "`asyncpf/mirrors.py` (the registry) and `asyncpf/fidelity.py` (the verdicts); `tests/test_fidelity.py`",
           "keeps it in step.", "", "Trees:", ""]
    out += [f"* `{gen}`: {tag}" for gen, tag in TAGS.items()]
    rows = mirror_table()
    counts: dict[str, int] = {}
    for m in rows:
        counts[verdict(m).kind] = counts.get(verdict(m).kind, 0) + 1
    out += ["", "Verdicts: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) + ".", ""]
    current = None
    for m in rows:
        if m.file != current:
            current = m.file
            out += ["", f"## `{m.file}`", "", "| function | generations | twin | verdict | note | pinned by |",
                    "|---|---|---|---|---|---|"]
        v = verdict(m)
        note = v.note.replace("|", "\\|")
        out.append(f"| `{m.function}` | {m.generations} | `{m.python.removeprefix('asyncpf.')}` | {v.kind} | "
                   f"{note} | {'`' + v.test + '`' if v.test else ''} |")
    return "\n".join(out) + "\n"

# --- hostsched (issue 13): preempt notifiers @ v2.6.38, Book3S @ v2.6.38 --------------------------------------
# The preempt-notifier twins were compared with 2.6.38 only; with host CPUs modelled they also serve the seed and
# 6.18 machines (the load/put path of 2.6.38's VMX, vmm_exclusive, stands in for those kernels').
_P = "asyncpf.host.preempt."
_PPC = "asyncpf.host.ppc.book3s."
VERDICTS.update({
    _P + "vcpu_load": Verdict(SIMPLIFIED, "register, then kvm_arch_vcpu_load on this CPU; once per thread (one "
                                          "KVM_RUN), no vcpu mutex"),
    _P + "vcpu_put": Verdict(SIMPLIFIED, "kvm_arch_vcpu_put then unregister; once, when the thread ends"),
    _P + "fire_sched_out_preempt_notifiers": Verdict(IDENTICAL, "every registered sched_out, only when prev != next"),
    _P + "fire_sched_in_preempt_notifiers": Verdict(IDENTICAL, "every registered sched_in with the new CPU"),
    _P + "kvm_sched_out": Verdict(IDENTICAL, "kvm_arch_vcpu_put"),
    _P + "kvm_sched_in": Verdict(IDENTICAL, "kvm_arch_vcpu_load(vcpu, cpu)"),
    _P + "kvm_arch_vcpu_load": Verdict(SIMPLIFIED, "vmx load, TSC delta since the put subtracted from the offset "
                                                   "when unstable, timers migrate on a new CPU; no WBINVD, "
                                                   "no KVM_REQ_CLOCK_UPDATE or TSC catch-up"),
    _P + "kvm_arch_vcpu_put": Verdict(SIMPLIFIED, "vmx put, last_host_tsc; the FPU put is inside the cost"),
    _P + "vmx_vcpu_load": Verdict(SIMPLIFIED, "vcpu_clear on a CPU change, VMPTRLD when current_vmcs differs, "
                                              "vcpus_on_cpu; host TR/GDT/SYSENTER and the TLB flush are the cost"),
    _P + "vmx_vcpu_put": Verdict(SIMPLIFIED, "host state back (a cost); no VMCLEAR with vmm_exclusive"),
    _PPC + "kvm_arch_vcpu_runnable": Verdict(IDENTICAL, "!(msr & MSR_WE) || pending_exceptions"),
    _PPC + "kvmppc_book3s_queue_irqprio": Verdict(SIMPLIFIED, "stat + set_bit; three vectors only"),
    _PPC + "kvmppc_book3s_dequeue_irqprio": Verdict(SIMPLIFIED, "clear_bit, int_pending = 0 when empty; three "
                                                                "vectors only"),
    _PPC + "kvmppc_core_queue_external": Verdict(IDENTICAL, "SET_LEVEL -> level vector, else edge vector"),
    _PPC + "kvmppc_core_dequeue_external": Verdict(IDENTICAL, "both external vectors cleared"),
    _PPC + "kvm_vcpu_ioctl_interrupt": Verdict(SIMPLIFIED, "unset dequeues, else queue, then wake a waiter; "
                                                           "level_support=False refuses UNSET (pre-commit)"),
    _PPC + "kvmppc_core_deliver_interrupts": Verdict(SIMPLIFIED, "lowest priority number first, EE gate, "
                                                                 "clear_irqprio keeps DEC and level; no crit test"),
    _PPC + "kvmppc_emulate_dec": Verdict(SIMPLIFIED, "mtdec lowers DEC, negative fires at once, else re-arms; "
                                                     "DEC in ns"),
    _PPC + "kvmppc_decrementer_func": Verdict(IDENTICAL, "queue DEC, wake a waiter (halt_wakeup++)"),
    _PPC + "kvmppc_set_msr": Verdict(SIMPLIFIED, "MSR_POW with nothing pending blocks, then POW cleared; no "
                                                 "msr_mask/shadow MSR/segments"),
})

# --- the guest's filtered sched_clock (issue 13) @ v2.6.36 -----------------------------------------------------
VERDICTS.update({
    _G + "sched_clock.sched_clock_init": Verdict(
        SIMPLIFIED, "clock and tick GTOD at boot time; tick_raw too (raw and GTOD are one kvm-clock here)"),
    _G + "sched_clock.sched_clock_local": Verdict(
        SIMPLIFIED, "tick GTOD plus raw delta, clamped to [max(tick, old clock), max(old clock, tick + TICK_NSEC)]; "
        "no cmpxchg retry, no wrap arithmetic; TICK_NSEC taken as 1e9 / HZ (2.6.x derives it from LATCH)"),
    _G + "sched_clock.sched_clock_tick": Verdict(
        IDENTICAL, "raw and GTOD taken afresh, then sched_clock_local; skipped when the clock is stable"),
})
