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
        "Seed: execute drops only the mm ref, the slow-work put_ref callback the kvm ref right after -- balanced, "
        "so no leak to account; use_mm and mmap_sem implicit",
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
