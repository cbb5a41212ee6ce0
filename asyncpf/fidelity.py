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
        FIXED, "was one item per call; v2.6.38 loops while done is non-empty and the gate is open (APF off: drains)",
        "tests/test_async_pf.py::test_legacy_disabled_drains_done_silently_in_one_call"),
    _L + "async_pf.kvm_clear_async_pf_completion_queue": Verdict(
        SIMPLIFIED, "cancel_work_sync is a wait on the item's finish; a cancelled item is freed, a finished one lands "
        "on done and is freed there"),
    _L + "async_pf.kvm_async_pf_wakeup_all": Verdict(
        IDENTICAL, "bad_page item on done only, queued++, -ENOMEM on allocation failure"),
    _H + "async_pf.async_pf_execute": Verdict(
        SIMPLIFIED, "GUP, publish on done under the lock, trace completed, wake a waiting vcpu, drop mm and kvm refs; "
        "use_mm and mmap_sem implicit"),
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
    _L + "x86.kvm_arch_vcpu_reset": Verdict(SIMPLIFIED, "only the APF state and the event queue are reset"),
    _L + "x86.kvm_arch_vcpu_runnable": Verdict(SIMPLIFIED, "no NMI or SIPI terms"),
    _L + "x86.__vcpu_run": Verdict(
        FIXED, "checked completions after a triple fault; v2.6.38 breaks out first (r <= 0)",
        "tests/test_fidelity.py::test_triple_fault_ends_the_loop_before_completions"),
    _L + "x86.vcpu_enter_guest": Verdict(SIMPLIFIED, "only the APF_HALT request and the entry/exit are modelled"),
    _H + "x86.kvm_async_pf_hash_fn": Verdict(IDENTICAL, "hash_32(gfn & 0xffffffff, 6)"),
    _H + "x86.kvm_add_async_pf_gfn": Verdict(IDENTICAL),
    _H + "x86.kvm_async_pf_gfn_slot": Verdict(IDENTICAL, "stops at gfn or ~0 (&&, as released)"),
    _H + "x86.kvm_find_async_pf_gfn": Verdict(IDENTICAL),
    _H + "x86.kvm_del_async_pf_gfn": Verdict(IDENTICAL, "backward-shift deletion"),
    _H + "x86.kvm_async_pf_hash_reset": Verdict(IDENTICAL),
    _H + "x86.apf_put_user": Verdict(IDENTICAL, "kvm_write_guest_cached of a u32"),
    _H + "x86.kvm_set_msr_common": Verdict(
        FIXED, "traced kvm_msr itself; v2.6.38 traces in the WRMSR exit handler (vmx.c handle_wrmsr) only",
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
        SIMPLIFIED, "~0 wakes all; else wake the node or add a dummy at the bucket head; the GFP_ATOMIC allocation "
        "never fails (the kernel busy-waits and retries)"),
    _G + "kvm.kvm_read_and_reset_pf_reason": Verdict(IDENTICAL),
    _G + "kvm.do_async_page_fault": Verdict(SIMPLIFIED, "dispatch on the reason as released; the entry costs time"),
    _G + "kvm.kvm_pv_disable_apf": Verdict(IDENTICAL),
    _G + "kvm.kvm_guest_cpu_offline": Verdict(IDENTICAL, "disable, then wake all of this cpu"),
    "asyncpf.guest.legacy.kvm_guest_cpu_init": Verdict(
        SIMPLIFIED, "ENABLED | SEND_ALWAYS on CONFIG_PREEMPT; a refused write leaves APF off instead of oopsing"),
    # --- the seed (v2 patch 08/12) -------------------------------------------------------------------
    _S + "mmu.tdp_page_fault": Verdict(IDENTICAL, "can_do_async_pf -> gfn_to_pfn_async traced (r, pfn) -> setup, "
                                       "else gfn_to_pfn"),
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
}

# --- the interrupt era, compared with the v6.18-era tree as each twin was written ------------------------------
_I = "asyncpf.host.interrupt."
_GI = "asyncpf.guest.interrupt."
VERDICTS.update({
    _I + "async_pf.kvm_setup_async_pf": Verdict(
        SIMPLIFIED, "limit, error hva, GFP_NOWAIT, queue, queued++, not_present decides notpresent_injected, then "
        "schedule_work; no kvm/mm refs (2024); allocation failure injected"),
    _I + "async_pf.async_pf_execute": Verdict(
        SIMPLIFIED, "GUP without a page reference, publish on done, present_queued if done was empty, trace, wake; "
        "mmget_not_zero always succeeds"),
    _I + "async_pf.kvm_flush_and_free_async_pf_work": Verdict(
        SIMPLIFIED, "flush_work is a wait on the item's finish; a wake-all item has no work to flush"),
    _I + "async_pf.kvm_check_async_pf_completion": Verdict(
        IDENTICAL, "loop while done non-empty and can_dequeue: ready, present, unlink, queued--, flush and free"),
    _I + "async_pf.kvm_clear_async_pf_completion_queue": Verdict(
        SIMPLIFIED, "cancel_work_sync frees an unstarted item and waits for a running one; done flushed and freed"),
    _I + "async_pf.kvm_async_pf_wakeup_all": Verdict(
        SIMPLIFIED, "no-op when done is non-empty; item on done only, present_queued, queued++; the wake-all mark "
        "is the model's bad-page marker"),
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
                                                          "on an error hva, copy"),
    _H + "kvm_main.kvm_read_guest_offset_cached": Verdict(SIMPLIFIED, "as the write"),
    _H + "x86.kvm_get_msr_common": Verdict(
        SIMPLIFIED, "the async PF cases of the generation (EN reads msr_val / msr_en_val, INT msr_int_val, ACK 0); "
        "6.x kvm_do_msr_access lets the VMM read 0 from an unsupported advertised MSR; other MSRs unknown"),
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
                                                   "when unstable, timers migrate on a new CPU; no WBINVD"),
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
