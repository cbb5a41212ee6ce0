"""Mechanical mutants judged equivalent: no difference any run can observe, each with the reason.

Keyed by the stable mutant id of :mod:`asyncpf.check.mutation`
(``module:function:operator:n``); the value is ``(before, reason)`` where
``before`` is the mutated node's source as the id was judged -- if the twin
changes under it the entry no longer matches and the mutant is run again.

Each reason is the argument that no run can tell the mutant from the twin: what reads the
changed value, or why the situation it changes cannot arise.  Sources are the kernel files
named in the reasons, at the tags the twins mirror.
"""

from __future__ import annotations

_RETURN_DROPPED = ('return value dropped: kvm_pv_enable_async_pf, its only caller, ignores what kvm_async_pf_wakeup_all '
    'returns (x86.c@v2.6.38 and @v6.18)')

_ENABLE_WITH_DONE = ('differs only when MSR_KVM_ASYNC_PF_EN is written with ENABLED while done is non-empty: no guest path '
    "does (cpu online and resume re-register after kvm_guest_cpu_offline's disable drained done) and the "
    'VMM restores the MSR on a fresh or reset vcpu (done empty)')

_ITEM_FIELDS = ("work.done / work.state of an item are read only by the seed generation and by free_work's 'freed' "
    'test: no reader in this generation between here and the free')

_ONE_STEP = ('reordered within one engine step, nothing in between reads what moved; a kick or a request takes '
    'effect only when the vcpu thread runs again')

_STAT = ('statistics counter: kvm.stat.async_pf_completed is read by reports and scenarios, by no invariant or '
    'twin')

_TRACE = ('output only: a tracepoint deleted or moved within its engine step changes no protocol state; the ftrace '
    'line differs, and a checker sample taken at that line (published-before-wake, the page-ready IRQ) is lost, not a '
    'fact changed -- like the statistics counters of the bookkeeping rule')

_SCHED = ('removes a scheduling point only: every run of the mutant is the run of the twin in which the worker goes '
    'on at that point, an ordering the explorer takes too')

_HVA = ('differs only for an error hva, which never reaches kvm_setup_async_pf: only a page that needs IO under '
    'a valid vma goes async (a gfn without memslot is answered at once by the lookup), and no run deletes a memslot '
    'under a fault')

_HVA_LOOKUP = ('reached by noslot_touch: without the check (or with the lookup first) the error hva goes to '
    'hva_to_pfn_nowait, which finds no vma and answers fault_pfn, not async; the fault then takes the synchronous '
    'gfn_to_pfn, whose own error-hva check gives bad_pfn -- emulated exactly as before')

_LIMIT = ('statistics counter: async_pf_limit_hits is read only by limit_refuses_only_at_limit, to notice that a '
    'refusal happened; the refusal itself (return False) is unchanged and the queued count it checks is the same')

_CLEAR = ("queued = 0 moved before the drain of done: queued is read by this vcpu's own thread only "
    '(kvm_setup_async_pf, kvm_check_async_pf_completion), which is inside this function across both places, and '
    "the checker's queued_counts_outstanding excuses a vcpu waiting in the clear")

_IF0 = ("the guest's check against a host bug: the twin host injects a not-present only with IF=1 "
    '(can_do_async_pf / kvm_can_do_async_pf; async_pf_only_with_interrupts_on holds on every configuration), so '
    'the branch is never taken')


_KERNEL_MODE = ("the guest's check against a host bug: the 6.18 host sends a not-present to kernel mode only to a "
    'guest registered with SEND_ALWAYS (kvm_can_deliver_async_pf), which an interrupt-era guest never sets '
    '(kvm_guest_cpu_init); irq_kernel_touch takes the halt path instead, so the branch is never taken')

_ENTRY_COST = ('the entry cost moved before the flags read: nothing can write the word in between (the #PF gate '
    'runs with IF=0, so no page-ready interrupt, and the handler touches no page that could fault again)')

_LOCAL = ('a local binding without side effects (attribute reads, a hash-bucket lookup, a fresh node object, an '
    'import of a loaded module) moved across its neighbour, which neither reads nor writes what it binds; an early '
    'return leaves it unused')

_FLAGS_WORD = ('the host writes only 0 or KVM_PV_REASON_PAGE_NOT_PRESENT into flags in this generation (page-ready '
    'goes through the token slot), so the top byte of the word is always 0: reading or clearing 3 of its bytes '
    'is the same')

_PAD = ('the fifth byte is pad[0] of struct kvm_vcpu_pv_apf_data (flags, token, pad[56]: '
    'arch/x86/include/uapi/asm/kvm_para.h@v6.18), which neither side writes: it reads 0 and clearing it changes '
    'nothing')

_VMEXIT = ('DELIVERY_AS_PF_VMEXIT serves nested guests (an L2 fault as an L1 exit), which are not modelled: the '
    'host stores the bit (kvm_pv_enable_async_pf) and reads it nowhere')

_NO_EARLY_WAKE = ('differs only when a dummy node waits for this token (its wake came before the wait), which '
    'cannot happen in the interrupt era: page-ready is an interrupt on the faulting vcpu, and the #PF path hashes '
    'the sleeper with IF=0 (interrupt gate) before it first enables interrupts')

_WRMSR_ATOMIC = ("the guest's registration flag and its MSR write trade places around one WRMSR: no guest code runs "
    "on this cpu during the exit, and only this cpu's #PF and page-ready handlers read the flag")

_FLUSH_WAIT = ("queued-- moved after the flush: the flush only waits for the item's worker, with this vcpu's "
    'thread -- the only reader of queued -- blocked in it; the checker excuses a vcpu waiting for a worker')

_ERROR_PFN_REF = ("kvm_release_pfn_clean of an error pfn: the model keeps no reference on bad_page/fault_page "
    '(kvm_release_pfn_clean drops a reference only for a RAM pfn), so releasing it, late or never, changes nothing')

_FAULT_PFN_HERE = ('differs only for fault_pfn reaching kvm_handle_bad_page, which no run of the twins does: the async '
    'marker never reaches the map (tdp_page_fault retries instead) and every memslot is backed by its vma to the '
    'end (no hole); bad_pfn, the no-slot case noslot_touch reaches, goes the same way')

_BUCKET_ORDER = ('where the new sleeper goes in its hash bucket (hlist_add_head puts it first): the bucket is only '
    'searched by token, and no two nodes in it share a token -- a sleeper and a dummy for one token never coexist '
    '(the wake consumes the sleeper, the wait consumes the dummy) and tokens of outstanding faults are distinct -- so '
    'no lookup finds another node')

_OFFLINE_ORDER = ("kvm_guest_cpu_offline runs with interrupts off (CPU_DOWN_PREPARE, syscore suspend; the model's "
    'caller does cli first), and waking this cpu\'s sleepers is guest-internal and takes no time: no exit, interrupt '
    'or other task can come between it and the disabling WRMSR, in either order, and the woken tasks run only after '
    'both')

_UNREGISTERED_AREA = ('the area of a cpu that is not registered reads 0 in every reachable state: the host writes flags '
    'only into a registered area, each write is followed by the #PF whose handler reads and resets the word before '
    'any guest code can unregister, and a vcpu reset that drops such a #PF leaves the guest counting itself '
    'registered until it registers again -- so reading the word anyway gives the same 0')

_PF_WAIT_EXIT_IRQS_ON = ("the #PF-era wait ends with interrupts on instead of off, and nothing can tell: after its last "
    "test nothing yields until the #PF's IRET restores the saved flags. A sleeping waiter resumes inside the schedule() "
    "that picked it, which cleared need_resched, and runs the test, the state write and the exit path in that same "
    "call (_preempt_on_return yields only with need_resched set); a halted waiter is in kernel mode with preemption "
    "off, so the exit path never preempts it (instrumented over every configuration: every halted wait has saved CPL 0 "
    "and preempt_count > 0, and every wait that ends finds need_resched clear). What differs is the model's record of "
    "a handler returning with IF=1 (irqs_on_at_exit), judged in the interrupt era only: 2.6.38's error_exit disables "
    "interrupts itself (arch/x86/kernel/entry_64.S@v2.6.38)")

_PF_WAIT_ORDER = ("the wait loop's state write, its unhashed test and its sleep trade places: nothing can unhash the "
    "node between them -- the wait hashes it with interrupts off and keeps them off until its first Sti or SafeHalt, "
    "and only a page-ready #PF on this cpu (injected only when interrupts are allowed: "
    "kvm_arch_can_inject_async_page_present, seed and 2.6.38) or a wake-all of this cpu unhashes it. So the first test "
    "always finds the node hashed, every test after the wait's own schedule() finds it unhashed (schedule() comes back "
    "only to a woken task), and after a halt both orders halt again or leave alike; the state the loop writes last "
    "before leaving is TASK_RUNNING in both")

_PF_ENTRY_COST = ("the entry cost moved before the reason read: nothing writes the word in between -- the #PF gate "
    "runs with IF=0, the seed and 2.6.38 hosts write a page-ready reason only when interrupts are allowed "
    "(kvm_arch_can_inject_async_page_present) and a not-present one only for a fault, and the entry touches no memory "
    "(instrumented over every configuration: the word the twin reset before the cost is still 0 after it)")

_IDLE_NEVER_WAITS = ("only the idle task's wait would differ (it would sleep instead of halting), and no run makes the "
    "idle task wait: the idle loop touches no memory, nor do the handlers that run on it (tick, reschedule IPI, "
    "page-ready), so no not-present #PF is ever delivered to it (instrumented over every configuration: every wait is "
    "a non-idle task's)")

_NOT_A_REASON = ("the value an unregistered cpu's read returns: do_async_page_fault, its only caller, compares it with "
    "KVM_PV_REASON_PAGE_NOT_PRESENT (1) and _PAGE_READY (2) and hands anything else to do_page_fault, so -1 and 0 "
    "take the same branch")

_PF_ERA_OOPS = ("the code after a refused registration WRMSR never runs in the #PF era: the refusal's #GP is queued by "
    "the exit and delivered at the very next entry, before the guest is asked for its next operation, and the seed "
    "and 2.6.38 kernels have no fixup for wrmsrl (PF_ERA_WRMSR_FIXUP): the guest panics and register_apf_area is never "
    "resumed with the refusal; accepted, the mutant does what the twin does (instrumented over every configuration: "
    "no registration write of the guest is refused)")

_SPIV_TAIL = ("the SPIV write's effects (enable bit, KVM_REQ_APF_READY) are done when the mutant reaches the generator's "
    'bare yield: it adds a scheduling point at the same instant before the exit handler traces kvm_msr, and the '
    'actors that run there run in the twin at that instant too, once the vcpu thread yields its next cost (it is '
    'outside guest mode until then and looks at its requests only on entry); a None result is success like 0 '
    '(handle_wrmsr tests its truth)')

# --- the MSR handlers of the x86 twins (issue 15): what no write a run makes can tell apart ---

_U64 = ('data is a u64 in every write a run makes (a WRMSR carries EDX:EAX, the VMM a __u64; the guest kernels, the '
    "probe threads and the VMM glue write only such values): the range test is the model's guard against a caller's "
    'out-of-range Python int (tests/test_x86.py), which needs no kernel statement; dropping one of its halves or '
    'moving its bound below 0 changes nothing for a u64')

_REFUSED_AS_2 = ('a refusal returned as 2 instead of 1: kvm_set_msr_common passes the status on, and every reader '
    "tests it for truth (handle_wrmsr's #GP and traced exception flag, the guest's op_done, the VMM glue), so 2 refuses "
    'as 1 does')

_RETURN_NONE = ("the final 'return 0' deleted: the handler returns None, which every caller takes as 0 "
    '(kvm_set_msr_common passes it on, handle_wrmsr queues the #GP and '
    'traces an exception only when it is true, the VMM glue and the MSR table test its truth)')

_REFUSAL_ORDER = ('two refusals swapped: each returns 1 and changes nothing, and each refuses only a non-zero value '
    '(the in-kernel irqchip test accepts 0 early, a value the others accept too), so every write gets the same answer')

_FLAGS_ASSIGN = ('two stores of independent fields swapped, or a store moved past the wake-all, which queues a '
    'broadcast item on done and reads neither field: nothing between them reads what moved')

_CLEAR_HASH = ("the completion queue's clear and the gfn hash reset swapped: while the clear waits for a running "
    "worker (cancel_work_sync) only this vcpu's own thread reads or writes apf.gfns (the fault path, page-present), "
    'and it is inside this handler')

_GATED_NAME = ("the gated case's __name__: read by no twin and no invariant (the coverage profile and tracebacks name "
    'the code object, not this attribute)')

_GATE_AS_2 = ("the PV-feature gate's refusal as 2: the model's kvm_set_msr_common and kvm_get_msr_common pass any "
    'status on and every reader tests it for truth.  In the kernel 2 is KVM_MSR_RET_UNSUPPORTED, which '
    "kvm_do_msr_access turns into success for the VMM's 0 or read -- what 5bb9ac186512 did after v6.18; the model "
    'follows v6.18, whose gates return 1, and has no unsupported status')


_MSR_STATUS = ('a refusal as 2 instead of 1: every reader of the status tests it for truth -- handle_wrmsr (the traced '
    "exception flag, the #GP), the guest's op_done and kvm_guest_cpu_init's 'if refused', the VMM glue "
    '(vmm_msr_accesses, vmm_migrate_vcpu); 2 is KVM_MSR_RET_UNSUPPORTED, what x86.c@v6.18 itself returns for an MSR '
    'without a case, and its callers (the WRMSR/RDMSR exits, msr_io for KVM_SET_MSRS/KVM_GET_MSRS) fail on any '
    'non-zero')

_INT_TAIL = ("the INT write's effects (msr_int_val, the vector) are done when the mutant reaches the generator's bare "
    'yield: as for the SPIV handler, it adds a scheduling point at the same instant before handle_wrmsr traces kvm_msr, '
    'the actors that run there run in the twin at that instant too once the vcpu thread yields its next cost (it is '
    'outside guest mode and reads its requests only on entry), and a None result is success like 0')
_TRACE_THEN_HASH = ('the not-present tracepoint and the gfn-hash insert trade places within one engine step: the insert '
    'emits nothing and changes nothing the trace line prints (token, gva), so the trace and every later state are '
    'the same')
_LEGACY_INJECTED_FLAG = ('work.notpresent_injected is read only by the interrupt era (kvm_arch_async_page_present@v6.18, '
    'the 2020 fix); no legacy twin or invariant reads it -- 2.6.38 has no such field')
_FALSY_RETURN = ('the caller stores the result in work.notpresent_injected, which kvm_arch_async_page_present reads only '
    'as a truth value: None and False decide alike')
_NOT_HALTED_AT_PRESENT = ("6.18's kvm_arch_async_page_present runs only inside kvm_check_async_pf_completion, called from "
    'vcpu_enter_guest after the APF_HALT request was looked at (the vcpu is running: RUNNABLE, not halted) and from the '
    "ACK MSR write (the guest itself is running): apf.halted is already False and mp_state already RUNNABLE there")
_PREFAULT_ERROR_CODE = ("the prefault's error code: the TDP page fault twin reads no error code (no write-protect or "
    'private-memory handling is modelled; the prefault maps the page as any EPT violation would)')
_PRESENT_OFF = ('async PF is on whenever a wake-all or an injected item reaches kvm_arch_async_page_present: both are put '
    'on the queue only while it is on, and every way of turning it off (kvm_pv_enable_async_pf without ENABLED and '
    'DELIVERY_AS_INT, kvm_vcpu_reset) sets msr_en_val and clears queue and done on the vcpu thread -- the only thread '
    'that runs the completion -- before it can run again')
_TRY_TRACE_6_18 = _TRACE + ' (as for 2.6.38\'s try_async_pf)'
_FLAGS_FIFTH_BYTE = ('the fifth byte written is the token word\'s low byte, and it is written 0 over 0: a not-present is '
    'written only when kvm_can_do_async_pf held at the fault (interrupts allowed, nothing to reinject), so any '
    "page-ready interrupt was already taken, and the guest's handler clears the token word before it enables "
    'interrupts again (sysvec_kvm_asyncpf_interrupt@v6.18) -- the slot is free, and on vcpu 0 its low byte is 0 anyway')


_LOOKUP_DISCARDED = ('the FOLL_NOWAIT lookup moved before the error-hva test, which still follows and returns bad_pfn: '
    'for the error hva the lookup finds no page and no vma (no reference taken, nothing changed) and its answer is '
    'dropped; for any other hva the two orders are the same code')
_FAULT_PFN_HERE_6_18 = ("differs only for fault_pfn reaching kvm_handle_error_pfn, which no run of the 6.18 twins does: "
    'the FOLL_NOWAIT lookup answers fault_pfn without "needs IO" only for an hva no vma covers, and every memslot is '
    'backed by its vma to the end (no hole); with "needs IO" the fault goes async or to the synchronous gfn_to_pfn, '
    'which returns a RAM pfn there; bad_pfn, the no-slot case irq_noslot_touch reaches, goes the same way')
_REINJECTION_IS_PENDING = ("the model's only event awaiting (re)injection is a pending exception: "
    'kvm_event_needs_reinjection (asyncpf.host.x86, "any pending exception counts") tests exception.pending first and '
    'no code sets interrupt_injected or nmi_injected, so either test alone decides as both do')


_SEED_CLEAR = ("the seed's clear never suspends (its generator is 'yield from ()'): nothing runs between the two "
    'statements, and the clear reads no msr_val')

_MODEL_CHECKS = ("the model's own instruments in kmem_cache_free -- the double-free assertion, the 'freed' mark only "
    "it reads, KASAN's poison: the twins free each item once and read none after (no_use_after_free holds on every "
    'configuration), so removing one changes no run')

_GLUE_READ = ("peek is the checker's and the timeline's field read, past the poison; no twin calls it, so the "
    'runs are the same')

_FALL_OFF = ("the final 'return None' deleted: a Python function that falls off its end returns None")

_EXIT_MODE = ("vcpu_exit_thread only sets mode 'exited' and charges the time from then to 'host'. Every reader of "
    "vcpu.mode (kvm_vcpu_kick, KvmVcpu.wake_up, hostsched's guest-slice test, the checker's predicates) acts only on "
    "'blocked', 'compute', 'guest' or 'entering': the loop leaves the thread 'outside' (set as _run_guest returns or "
    "kvm_vcpu_block wakes) and already charging 'host', and made before the loop the call is undone in the same "
    "engine step (the first round sets 'entering' or 'blocked' before it first yields) -- nothing can tell")

_ARCH_ALIAS = ("arch = vcpu.arch names the vcpu's KvmVcpuArch, bound once when the vcpu is built and never rebound "
    '(a reset changes its fields, reset_events included): taken before or after serve_reset it is the same object')

_TRIPLE_FAULT = ('differs only once KVM_REQ_TRIPLE_FAULT is set, which no run of the model does: kvm_multiple_exception '
    'raises it only for an exception queued while a #DF is pending, and makes a #DF only for a #PF or contributory '
    "exception queued while another is pending. Exceptions are queued only by the vcpu's own thread handling an exit: "
    'the not-present #PF only with nothing pending or awaiting reinjection (can_do_async_pf@v2.6.38, '
    "kvm_can_do_async_pf@v6.18), 2.6.38's page-ready #PF only through kvm_arch_can_inject_async_page_present (no "
    'event awaiting reinjection, a pending exception included), a refused WRMSR\'s #GP only after the entry delivered '
    'whatever was pending (inject_pending_event runs before any guest operation). So no exception ever meets a pending '
    'one; no_two_apf_pf_in_one_entry, which counts double and triple faults, holds on every configuration')

_ACROSS_CLEAR = ('a write moved across kvm_clear_async_pf_completion_queue, which may wait (cancel_work_sync) for a '
    'running worker: meanwhile the vcpu thread is inside the reset, so this vcpu runs no guest code and handles no '
    'exit; the workers that run, and the clear itself, read neither the async PF MSRs nor the gfn hash '
    '(async_pf_execute touches the page, done, the wake-up or 6.18\'s KVM_REQ_APF_READY), and the checker excuses '
    'the hash while the clear waits (hash_iff_outstanding): the reset ends in the same state, unread in between')

_RUNNABLE_RUNNING_TERM = ("kvm_arch_vcpu_runnable is called only on the way into and out of the block, which the run "
    'loop enters only when the vcpu is not running (mp_state HALTED or apf.halted, the very test of the dropped term); '
    "mp_state and apf.halted are written only by the vcpu's own thread (HLT exit, UNHALT, page-ready, reset, "
    'vcpu_enter_guest), which is asleep in the block meanwhile -- so the dropped term is false at every call')

_NO_EXCEPTION_BLOCKED = ('6.18 blocks a vcpu only when it is not running (a HLT exit, or the APF halt), and then no '
    "exception is ever pending: exceptions are queued by the vcpu's own thread while it handles an exit (the not-"
    "present #PF, a refused WRMSR's #GP, a #PF whose delivery faulted), and such an exit neither halts (HLT is a "
    'guest operation, run after inject_pending_event delivered what was pending) nor requests the APF halt (the '
    "halt and the #PF are exclusive branches of kvm_arch_async_page_not_present; a repeated fault halts only when "
    'kvm_can_do_async_pf, i.e. nothing pending); page-ready is an interrupt, and a reset drops what is queued')

_UNHALT_618 = ("KVM_REQ_UNHALT has no reader in the interrupt era (6.18 has no such request; the shared "
    "kvm_vcpu_block still raises it and vcpu_block only drops it): whether it is dropped before or after the block or "
    "not at all, nothing tests it -- block_until_unhalt, its only other reader, is the 2.6.38 and seed loop, the "
    "kvm_exit tracepoint prints requests as 0, and kvm_check_request touches its own bit only")

_NOT_RUNNABLE_TAIL = ("kvm_vcpu_block returns still not runnable only for a stopped vcpu or a pending reset. A stopped "
    "vcpu's loop ends at once and nothing reads mp_state, apf.halted or the UNHALT bit afterwards; a pending reset "
    "is served at the top of the loop in the same engine step, and kvm_vcpu_reset writes the very values the tail "
    "would (RUNNABLE through reset_events, apf.halted = false)")

_RESET_AFTER_ROUND = ("serve_reset moved from the top of the loop to the end of the round: either way it runs between "
    "any two rounds at the same instant (nothing yields between a round's end and the next one's start), so every "
    "reset is served before the same entry; the orders differ only before the first round (no reset is pending when "
    "the vcpu thread starts: the VMM requests one while the VM runs) and after the last (none is pending then: the "
    "vcpu serves a reset before it can run the re-registering task the same request spawns, which the run waits for)")

_SEED_QUEUED = ("the seed keeps no count of its own (v2 patch 08/12 has no queued field): the model's count for the "
    "seed is read by no seed invariant, and its one reader, the leak check at teardown, comes after the destroy's "
    'clear has recomputed it from the queue')

_SEED_CLEAR_NOOP = ("moved across 'yield from ()', which runs nothing and never suspends (the seed's hooks are "
    'generators only for their callers)')

_PARKED_DONE = ('the branch for a parked item whose page already arrived is never taken: the vcpu looks at the parked '
    'item on its next entry, which follows the exit that parked it at once, while the worker first pays its wake-up '
    'cost (instrumented over every seed configuration: 0 hits)')

_ITEM_ID = ("the item's id is the model's handle (its event's name, the workqueue's key): numbered from 0 instead of "
    '1 the ids stay distinct, and no kernel field or invariant reads them')

_GUP_OK = ("the pfn traced for a failed GUP: the worker's get_user_pages fails only for an address no vma covers, and "
    'every memslot is backed by its vma to the end and no run unmaps it, so the branch is never taken')

_ENABLED_BYTES = ("the byte count of the guest's write of apf_reason.enabled (1 to register, 0 to unregister): "
    'three bytes set or clear the word as four do (its top bytes are always 0), and a fifth lands past the end of '
    "the struct, in the per-cpu area's padding (areas are 128 bytes apart), which nobody reads")

_REASON_BYTES = ('the host writes only 0, KVM_PV_REASON_PAGE_NOT_PRESENT (1) or _PAGE_READY (2) into the #PF-era '
    'reason word, so its top byte is always 0: reading it, or clearing it, as three bytes is the same')

_NO_MERGE = ("kvm_multiple_exception's merging branch (an exception queued while another is pending: the #DF, the "
    'triple fault, or the newer replacing the older) and exception_class, called only from it, run in no run of the '
    "model, for _TRIPLE_FAULT's reason: every queuing site is gated on nothing pending or awaiting reinjection, and "
    "a refused WRMSR's #GP follows an entry that delivered whatever was pending. Instrumented over every "
    'configuration (80, fast and full, every schedule explored): no call found an exception pending. The test for a '
    'pending #DF swapped before the not-pending return reads exc.nr of a delivered exception, which is never #DF')

_GFN_TABLE_ALIAS = ('gfns = vcpu.arch.apf.gfns binds the vcpu\'s table array, which nothing rebinds (add, delete and '
    'the hash reset write its slots in place); what it trades places with is the hash (pure arithmetic on the gfn) '
    'or the slot probe (which only reads the array): the same array, the same slots, either way')

_AND_IMPLIED = ("'i <= j and' dropped from 'i <= j and i < k <= j': i < k <= j already implies i <= j, so the test "
    'is the same for every i, j and k')

_PROBE_PAST_FREE = ('the probe no longer stops at a free slot: every stored gfn has no free slot between its home and '
    'itself (add takes the first free slot from the home and the backward-shift delete keeps it so; '
    'hash_iff_outstanding checks exactly that layout in every state), so within its 64 probes the mutant stops on '
    'a stored gfn where the twin does; for a gfn not stored both end on a slot holding something else -- find '
    'answers the same and delete returns early the same')

_65_PROBES = ('65 probes instead of 64: a stored gfn is at most 63 slots past its home, so it is found as before; for '
    'a gfn not stored the extra probe ends on a slot that does not hold it either -- find answers the same, delete '
    'returns early the same')

_DEL_ABSENT = ("differs only when kvm_del_async_pf_gfn is asked for a gfn the table does not hold, which no run does: "
    "its callers (kvm_arch_async_page_present@v2.6.38 and @v6.18) delete the gfn of an item still on the queue, "
    'which kvm_arch_async_page_not_present added when the item was set up and which nothing else removes; the hash '
    'reset runs only with the clear, which empties the queue. Instrumented over every 2.6.38 and 6.18 configuration '
    '(66, fast and full, every schedule): every call found its gfn stored')

_FREE_SLOT_HOME = ("the home of the next slot's content is computed before the test that returns when that slot is "
    'free: the hash is pure arithmetic on ~0, its result unused on that path')

_CR2_FIRST = ('CR2 set after the #PF is queued instead of before: both happen in one engine step, and '
    'kvm_multiple_exception reads no CR2 -- the entry that delivers the #PF sees the same CR2')

_RESET_STORES = ('two stores of independent vcpu fields (the queued exception, mp_state) swapped in one engine step '
    'that reads neither')

_NO_SHADOW = ("the interrupt-shadow term dropped: no code sets interrupt_shadow -- the model has no STI or MOV-SS "
    "shadow at an exit (the guest's sti;hlt is one SafeHalt operation) -- so RFLAGS.IF alone decides as both do")

_FALSE_TO_NONE = ("'return False' deleted: the function falls off its end and returns None, which every caller "
    "tests only for truth ('if kvm_check_request(...)') or ignores")

_KICK_FIRST = ("the kick moved before 'stopped = True' in the same loop body: the kick only makes the vcpu's thread "
    'runnable, and it runs after this engine step, when stopped is set either way')

_REASON_3_BYTES = ('the host writes only KVM_PV_REASON_PAGE_NOT_PRESENT (1) or _PAGE_READY (2) into the #PF-era '
    "reason word, over a word that is 0 or one of those: its top byte is 0 before and after, so writing three bytes "
    'leaves the same word as four')

_63_PROBES = ('63 probes instead of 64: the loop returns the key it would test next without testing it, and every '
    'caller tests that slot itself (find compares its content with the gfn, delete returns unless it holds the gfn): '
    'with 63 the untested key is the 64th slot from the home, which the caller tests, so a gfn stored there (a full '
    'table, 63 past its home) is found as before; with 64 the returned key is the home again, already tested')

_INJECTED_RESULT = ("'return True' deleted: inject_apf_event returns None after queuing the #PF, so its callers (the "
    "seed's and 2.6.38's not-present) skip only work.notpresent_injected, which no seed or 2.6.38 twin or invariant "
    'reads, and the apf_not_present_injected statistic, read by scenarios and reports, by no invariant')

_HAS_ERROR_UNREAD = ("whether the queued #GP carries an error code: exception.has_error_code is stored and read by "
    "nothing -- the model's delivery hands the guest the error code alone, and kvm_inj_exception's trace derives "
    "has_error from the vector (2.6.38's format prints the code always); the code itself (0) is judged by "
    'refused_wrmsr_gets_gp')
# --- the shared worker and the seed's injection and clear (issue 15, the host survivors) ---

_WORK_STATE = ("work.state is read by free_work's 'freed' test and by Workqueue.cancel_work's 'queued' test, which only "
    'guards hostsched.cancel_unstarted -- and that refuses by itself any worker thread that has been switched in (a '
    "worker past its first statement has): leaving the item 'queued' or 'running' longer changes no answer")

_WORK_DONE = ("work.done is read only by the seed's parked-item test in kvm_check_async_pf_completion, whose 'already "
    "done' branch no run takes (see _PARKED_DONE, instrumented): with the flag never set the test answers 'not done' "
    'exactly as it does in every run of the twin')

_NO_PAGE_AT_PUT = ('put_work_page meets a page of None only for an item whose get_user_pages failed, which no run does '
    '(every memslot is backed by its vma to the end and none is unmapped; instrumented over every seed and legacy '
    'configuration, fast and full: 0 calls with no page), and a wake-all item carries bad_page, which the other '
    'operand still filters')

_SEED_INJECT_OFF = ("the seed's injection guard never holds: the parked not-present is injected at the entry right "
    'after the fault that set it up, which found the area registered (can_do_async_pf), and every way of turning async '
    'PF off (the MSR write, a reset) clears the parked slot first -- instrumented over every seed configuration, fast '
    'and full: 0 calls with ENABLED clear -- so deleting, emptying or moving the guard changes no run')

_SEED_INJECTED_FLAG = ("work.notpresent_injected is read only by 6.18's kvm_arch_async_page_present (the 2020 fix); no "
    'seed twin or invariant reads it (the v2 series has no such field)')

_SEED_RESET_ORDER = ("reset_events and the seed's clear trade places: the clear never suspends ('yield from ()') and "
    'reads only the parked slot, done and queue, while reset_events writes only the pending exception and mp_state')

_SEED_CLEAR_ORDER = ("two statements of the seed's clear trade places: it never suspends, and neither reads what the "
    'other writes (the parked slot; done and queue; an item\'s page)')

_SEED_SLOT_KEPT = ("the parked slot survives the clear: it is only ever non-empty between a fault's exit and the next "
    'entry, so a clear meets it only in a reset served at the top of the loop; the next entry then takes the item with '
    'async PF still off (msr_val 0 until the guest runs again) and, not done (_PARKED_DONE), it goes to the '
    'injection guard, which drops it -- as the twin\'s clear did')

_SEED_QUEUED_AT_CLEAR = ("queued = len(queue) moved before the drain of done: the seed's count is read by no seed twin "
    'or invariant mid-run (_SEED_QUEUED), and the clear at VM destroy -- the one before the leak check reads it -- '
    'always finds done empty (instrumented over every seed configuration, fast and full: done is non-empty only at '
    'the mid-run clears of a disable or reset), where both orders count the same queue')


_ISR_EMPTY_AT_RESET = ("the in-service register is empty whenever the vcpu thread runs a reset: the model's guest "
    'acknowledges the LAPIC first in every handler (apic_eoi at delivery, asyncpf/guest/kernel.py), so a vector is in '
    'service only inside the delivering step -- instrumented over every interrupt-era configuration, fast and full: '
    '0 resets with a vector in service -- and clearing an empty set changes nothing')

_PREFAULT_PINNED = ("2.6.38's prefault never needs IO: kvm_check_async_pf_completion prefaults an item before it retires "
    "it, so the worker's get_user_pages reference still pins the page (put_work_page comes after "
    'kvm_arch_async_page_present): reclaim skips a pinned page, and a zapped one is zero-filled inline -- '
    'gfn_to_pfn_async answers at once and try_async_pf returns before the test whose prefault operand is dropped')

_ALLOC_FAIL_STAT = ('statistics counter: kvm.stat.async_pf_alloc_failures is read by reports and scenarios, by no twin '
    "or invariant, and not by the configurations' fault injection, which counts the allocations it is asked about "
    'itself (models.failing_allocations); the refusal itself (return None) is unchanged')

_PUBLISH_AFTER_POINT = ("the shared worker's scheduling point moved before its publication on done: every run of the "
    'mutant is a run of the twin in which the actors that run at that point run just before the worker resumes from '
    'get_user_pages at the same instant (the explorer orders them either way there). What they could see differently '
    "-- the item's page, done and state already set -- none of them reads: the seed's parked test meets an item whose "
    'swap-in has not ended (_PARKED_DONE), put_work_page and free_work come after consumption, cancel_work only for '
    "an unstarted item. (Not so for 6.18's worker, whose 'first' is computed before the point.)")

EQUIVALENT: dict[str, tuple[str, str]] = {
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:0':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:1':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:2':
        ('12', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:3':
        ('12', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:6':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:const_off:7':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:9':
        ('return 0', _RETURN_DROPPED),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:1':
        ('if apf.done:...', _ENABLE_WITH_DONE),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:10':
        ('return 0', _ENABLE_WITH_DONE),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_swap:1':
        ('if apf.done:...', _ENABLE_WITH_DONE),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:5':
        ('work.done = True', _ITEM_FIELDS),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_del:6':
        ("work.state = 'done'", _ITEM_FIELDS),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_swap:6':
        ("work.state = 'done'", _ITEM_FIELDS),
    'asyncpf.host.legacy.async_pf:kvm_async_pf_wakeup_all:stmt_swap:7':
        ('apf.done.append(work)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:0':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:1':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:2':
        ('12', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:3':
        ('12', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:6':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:const_off:7':
        ('0', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:10':
        ('return 0', _RETURN_DROPPED),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:1':
        ('if apf.done:...', _ENABLE_WITH_DONE),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:11':
        ('return 0', _ENABLE_WITH_DONE),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_swap:1':
        ('if apf.done:...', _ENABLE_WITH_DONE),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:5':
        ('work.done = True', _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_del:6':
        ("work.state = 'done'", _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_swap:6':
        ("work.state = 'done'", _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_swap:7':
        ('apf.done.append(work)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_async_pf_wakeup_all:stmt_swap:8':
        ('x86.kvm_arch_async_page_present_queued(vcpu)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:3':
        ("work.state = 'running'", _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:7':
        ('work.done = True', _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:8':
        ("work.state = 'done'", _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:3':
        ("work.state = 'running'", _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:6':
        ('if pfn != GUP_EFAULT:...', _ITEM_FIELDS),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:9':
        ('kvm.stat.async_pf_completed += 1', _STAT),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:const_off:0':
        ('1', _STAT),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:const_off:1':
        ('1', _STAT),
    'asyncpf.host.interrupt.lapic:apic_set_spiv:stmt_swap:1':
        ('vcpu.apic_sw_enabled = enabled', _ONE_STEP),
    'asyncpf.host.interrupt.lapic:kvm_lapic_enabled:bool_drop:0':
        ('vcpu.kvm.irqchip_in_kernel and vcpu.apic_sw_enabled', ('without an in-kernel irqchip kvm_pv_enable_async_pf refuses every enable (x86.c@v6.18), so the '
         'only caller, kvm_arch_can_dequeue_async_page_present, never asks with async PF on')),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:15':
        ('vcpu.wake_up()', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:16':
        ('vcpu.workqueue.finished(work)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_check_async_pf_completion:stmt_swap:4':
        ('if work in apf.queue:...', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:5':
        ('work.gva, work.addr, work.arch = (gva, hva, arch)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:6':
        ('apf.queue.append(work)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:7':
        ('apf.queued += 1', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:8':
        ('work.notpresent_injected = x86.kvm_arch_async_page_not_present(vcpu, work)', _ONE_STEP),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:stmt_swap:3':
        ('vcpu.workqueue.queue_work(work)', _ONE_STEP),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:stmt_swap:4':
        ('vcpu.async_pf.queue.append(work)', _ONE_STEP),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:stmt_swap:5':
        ('vcpu.async_pf.queued += 1', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:14':
        ("kvm.env.trace('kvm_async_pf_completed', ctx=ctx, address=addr, gva=gva)", _TRACE),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:13':
        ('if first:...', _TRACE),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_swap:14':
        ("kvm.env.trace('kvm_async_pf_completed', ctx=ctx, address=addr, gva=gva)", _TRACE),
    'asyncpf.host.interrupt.lapic:kvm_apic_set_irq:stmt_del:0':
        ("vcpu.kvm.env.trace('kvm_apic_accept_irq', ctx=x86.trace_ctx(vcpu), apicid=vcpu.vcpu_id, dm=APIC_D...", _TRACE),
    'asyncpf.host.interrupt.lapic:kvm_apic_set_irq:stmt_swap:0':
        ("vcpu.kvm.env.trace('kvm_apic_accept_irq', ctx=x86.trace_ctx(vcpu), apicid=vcpu.vcpu_id, dm=APIC_D...", _TRACE),
    'asyncpf.host.legacy.mmu:try_async_pf:stmt_del:10':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=ctx, gva=gva, gfn=gfn)", _TRACE),
    'asyncpf.host.legacy.mmu:try_async_pf:stmt_del:13':
        ("kvm.env.trace('kvm_async_pf_doublefault', ctx=ctx, gva=gva, gfn=gfn)", _TRACE),
    'asyncpf.host.legacy.mmu:try_async_pf:stmt_swap:8':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=ctx, gva=gva, gfn=gfn)", _TRACE),
    'asyncpf.host.legacy.mmu:try_async_pf:bool_drop:0':
        ('not prefault and can_do_async_pf(vcpu)', _PREFAULT_PINNED),
    'asyncpf.host.interrupt.async_pf:async_pf_execute:stmt_del:12':
        ('yield None', _SCHED),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:1':
        ('if apf.queued >= ASYNC_PF_PER_VCPU:...', _HVA),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:2':
        ('if kvm_is_error_hva(hva):...', _HVA),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_del:2':
        ('if kvm_is_error_hva(hva):...', _HVA),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_del:13':
        ('return False', _HVA),
    'asyncpf.host.legacy.mmu:gfn_to_pfn_async:stmt_swap:1':
        ('if kvm_is_error_hva(addr):...', _HVA_LOOKUP),
    'asyncpf.host.legacy.mmu:gfn_to_pfn_async:stmt_del:1':
        ('if kvm_is_error_hva(addr):...', _HVA_LOOKUP),
    'asyncpf.host.legacy.mmu:gfn_to_pfn_async:stmt_del:5':
        ('return (BAD_PFN, False)', _HVA_LOOKUP),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_del:11':
        ("vcpu.stat['async_pf_limit_hits'] += 1", _LIMIT),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:const_off:0':
        ('1', _LIMIT),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:const_off:1':
        ('1', _LIMIT),
    'asyncpf.host.interrupt.async_pf:kvm_setup_async_pf:stmt_swap:10':
        ("vcpu.stat['async_pf_limit_hits'] += 1", _LIMIT),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:stmt_del:8':
        ("vcpu.stat['async_pf_limit_hits'] += 1", _LIMIT),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:const_off:0':
        ('1', _LIMIT),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:const_off:1':
        ('1', _LIMIT),
    'asyncpf.host.legacy.async_pf:kvm_setup_async_pf:stmt_swap:7':
        ("vcpu.stat['async_pf_limit_hits'] += 1", _LIMIT),
    'asyncpf.host.interrupt.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:2':
        ('while apf.done:...', _CLEAR),
    'asyncpf.host.legacy.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:3':
        ('while apf.done:...', _CLEAR),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:4':
        ('if not saved_if:...', _IF0),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:8':
        ("cpu.panic('Host injected async #PF in interrupt disabled region')", _IF0),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:9':
        ('return True', _IF0),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_swap:4':
        ('if not saved_if:...', _IF0),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_swap:6':
        ("cpu.panic('Host injected async #PF in interrupt disabled region')", _IF0),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_swap:9':
        ("cpu.panic('Host injected async #PF in kernel mode')", _KERNEL_MODE),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:10':
        ('if saved_cpl != 3:...', _KERNEL_MODE),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:14':
        ("cpu.panic('Host injected async #PF in kernel mode')", _KERNEL_MODE),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_del:15':
        ('return True', _KERNEL_MODE),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_swap:0':
        ('flags = kvm_read_and_reset_apf_flags(cpu)', _ENTRY_COST),
    'asyncpf.guest.interrupt:__kvm_handle_async_pf:stmt_swap:2':
        ('if not flags:...', _LOCAL),
    'asyncpf.guest.interrupt:exc_page_fault:stmt_swap:0':
        ('from .kernel import do_page_fault', _LOCAL),
    'asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:stmt_swap:0':
        ('if not cpu.apf_enabled:...', _LOCAL),
    'asyncpf.guest.interrupt:sysvec_kvm_asyncpf_interrupt:stmt_swap:1':
        ('if not cpu.apf_enabled:...', _LOCAL),
    'asyncpf.guest.interrupt:kvm_guest_cpu_init:stmt_swap:0':
        ('if not cpu.kernel.config.pv or not _has_feature(cpu, KVM_FEATURE_ASYNC_PF_INT):...', _LOCAL),
    'asyncpf.guest.interrupt:kvm_guest_cpu_init:stmt_swap:2':
        ('if _has_feature(cpu, KVM_FEATURE_ASYNC_PF_VMEXIT):...', _LOCAL),
    'asyncpf.guest.interrupt:sysvec_kvm_asyncpf_interrupt:stmt_swap:5':
        ('kvm.kvm_async_pf_task_wake(cpu, token)', _ONE_STEP),
    'asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:const_off:3':
        ('4', _FLAGS_WORD),
    'asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:const_off:5':
        ('4', _FLAGS_WORD),
    'asyncpf.guest.interrupt:sysvec_kvm_asyncpf_interrupt:const_off:2':
        ('4', _PAD),
    'asyncpf.guest.interrupt:sysvec_kvm_asyncpf_interrupt:const_off:6':
        ('4', _PAD),
    'asyncpf.guest.interrupt:kvm_guest_cpu_init:stmt_del:2':
        ('if _has_feature(cpu, KVM_FEATURE_ASYNC_PF_VMEXIT):...', _VMEXIT),
    'asyncpf.guest.interrupt:kvm_guest_cpu_init:stmt_del:8':
        ('data |= abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT', _VMEXIT),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_swap:1':
        ('task = cpu.curr', _LOCAL),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_swap:4':
        ('if dummy is not None:...', _LOCAL),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_del:4':
        ('if dummy is not None:...', _NO_EARLY_WAKE),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_del:10':
        ('bucket.remove(dummy)', _NO_EARLY_WAKE),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_del:12':
        ('return', _NO_EARLY_WAKE),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:stmt_swap:11':
        ('task.state = sched.TASK_UNINTERRUPTIBLE', _ONE_STEP),
    'asyncpf.guest.interrupt:kvm_guest_cpu_init:stmt_swap:5':
        ('yield WrMsr(spec.msr_async_pf_en, data)', _WRMSR_ATOMIC),
    'asyncpf.guest.interrupt:kvm_pv_disable_apf:stmt_swap:1':
        ('yield WrMsr(cpu.kernel.abi.msr_async_pf_en, 0)', _WRMSR_ATOMIC),
    'asyncpf.guest.legacy:kvm_guest_cpu_init:stmt_swap:0':
        ('if not apf_feature(cpu):...', _LOCAL),
    'asyncpf.host.interrupt.async_pf:kvm_check_async_pf_completion:stmt_swap:3':
        ('x86.kvm_arch_async_page_present(vcpu, work)', _ONE_STEP),
    'asyncpf.host.interrupt.async_pf:kvm_check_async_pf_completion:stmt_swap:5':
        ('apf.queued -= 1', _FLUSH_WAIT),
    'asyncpf.host.legacy.mmu:kvm_handle_bad_page:stmt_del:0':
        ('kvm_release_pfn_clean(kvm, pfn)', _ERROR_PFN_REF),
    'asyncpf.host.legacy.mmu:kvm_handle_bad_page:stmt_swap:0':
        ('kvm_release_pfn_clean(kvm, pfn)', _ERROR_PFN_REF),
    'asyncpf.host.legacy.mmu:kvm_handle_bad_page:stmt_del:1':
        ('if pfn == FAULT_PFN:...', _FAULT_PFN_HERE),
    'asyncpf.host.legacy.mmu:kvm_handle_bad_page:stmt_swap:1':
        ('if pfn == FAULT_PFN:...', _FAULT_PFN_HERE),
    'asyncpf.host.legacy.mmu:kvm_handle_bad_page:stmt_del:3':
        ('return mmu_common.RET_EFAULT', _FAULT_PFN_HERE),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:const_off:2':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.interrupt:kvm_async_pf_task_wait_schedule:const_off:3':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.interrupt:kvm_guest_cpu_offline:stmt_swap:0':
        ('yield from kvm_pv_disable_apf(cpu)', _OFFLINE_ORDER),
    'asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:stmt_del:0':
        ('if not cpu.apf_enabled:...', _UNREGISTERED_AREA),
    'asyncpf.guest.interrupt:kvm_read_and_reset_apf_flags:stmt_del:5':
        ('return 0', _UNREGISTERED_AREA),
    'asyncpf.host.legacy.mmu:try_async_pf:stmt_swap:10':
        ("kvm.env.trace('kvm_async_pf_doublefault', ctx=ctx, gva=gva, gfn=gfn)", _TRACE),
    'asyncpf.host.legacy.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:5':
        ('kvm.stat.cancel_leaked_refs += 1', _ONE_STEP),
    'asyncpf.host.interrupt.lapic:apic_set_spiv:stmt_del:3':
        ('return 0', _SPIV_TAIL),
    'asyncpf.host.interrupt.lapic:apic_set_spiv:stmt_swap:3':
        ('return 0', _SPIV_TAIL),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:bool_drop:0':
        ('data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS', _U64),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:bool_drop:1':
        ('data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS', _U64),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:const_off:3':
        ('0', _U64),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:bool_drop:0':
        ('data < 0 or data > abi.U64 or data & EN_RESERVED_BITS', _U64),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:bool_drop:1':
        ('data < 0 or data > abi.U64 or data & EN_RESERVED_BITS', _U64),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:3':
        ('0', _U64),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:bool_drop:0':
        ('data < 0 or data >> 8', _U64),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:3':
        ('0', _U64),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:const_off:0':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:const_off:6':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:0':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:4':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:6':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:8':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:const_off:14':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:0':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_del:7':
        ('return 0', _RETURN_NONE),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_del:11':
        ('return 0', _RETURN_NONE),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:stmt_del:4':
        ('return 0', _RETURN_NONE),
    'asyncpf.host.interrupt.x86:msr_async_pf_ack:stmt_del:1':
        ('return 0', _RETURN_NONE),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:0':
        ('if data < 0 or data > abi.U64 or data & EN_RESERVED_BITS:...', _REFUSAL_ORDER),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:1':
        ('if not guest_pv_has(vcpu, KVM_FEATURE_ASYNC_PF_VMEXIT) and data & KVM_ASYNC_PF_DELIVERY_AS_PF_VME...', _REFUSAL_ORDER),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:2':
        ('if not guest_pv_has(vcpu, KVM_FEATURE_ASYNC_PF_INT) and data & KVM_ASYNC_PF_DELIVERY_AS_INT:...', _REFUSAL_ORDER),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:stmt_swap:0':
        ('if data < 0 or data >> 8:...', _REFUSAL_ORDER),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:0':
        ('if data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS:...', _LOCAL),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:3':
        ('if not vcpu.kvm.irqchip_in_kernel:...', _LOCAL),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:5':
        ('apf.send_user_only = not data & KVM_ASYNC_PF_SEND_ALWAYS', _FLAGS_ASSIGN),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:8':
        ('apf.send_always = bool(data & KVM_ASYNC_PF_SEND_ALWAYS)', _FLAGS_ASSIGN),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:9':
        ('apf.delivery_as_pf_vmexit = bool(data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT)', _FLAGS_ASSIGN),
    'asyncpf.host.legacy.x86:kvm_pv_enable_async_pf:stmt_swap:7':
        ('yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)', _CLEAR_HASH),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf:stmt_swap:11':
        ('yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)', _CLEAR_HASH),
    'asyncpf.host.interrupt.x86:_gated:stmt_swap:1':
        ('case.__name__ = handler.__name__', _GATED_NAME),
    'asyncpf.host.interrupt.x86:_gated:stmt_del:1':
        ('case.__name__ = handler.__name__', _GATED_NAME),
    'asyncpf.host.interrupt.x86:msr_read_handlers:const_off:2':
        ('1', _GATE_AS_2),
    'asyncpf.host.interrupt.x86:_gated:const_off:0':
        ('1', _GATE_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:const_off:6':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.interrupt.x86:kvm_pv_enable_async_pf_int:stmt_swap:4':
        ('return 0', _INT_TAIL),
    'asyncpf.host.x86:kvm_set_msr_common:const_off:0':
        ('1', _MSR_STATUS),
    'asyncpf.host.x86:kvm_get_msr_common:const_off:0':
        ('1', _MSR_STATUS),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:bool_drop:0':
        ('data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS', _U64),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:bool_drop:1':
        ('data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS', _U64),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:const_off:3':
        ('0', _U64),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:0':
        ('if data < 0 or data > abi.U64 or data & MSR_RESERVED_BITS:...', _LOCAL),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:2':
        ('if not data & KVM_ASYNC_PF_ENABLED:...', _LOCAL),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_del:7':
        ('return 0', _RETURN_NONE),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:const_off:0':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:const_off:6':
        ('1', _REFUSED_AS_2),
    'asyncpf.host.seed.x86:kvm_pv_enable_async_pf:stmt_swap:7':
        ('apf.msr_val = data', _SEED_CLEAR),
    'asyncpf.host.async_pf:new_work:stmt_swap:5':
        ('kvm.users_count += 1', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_swap:6':
        ('if kvm_is_error_hva(work.addr):...', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_swap:8':
        ('kvm.users_count -= 1', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_swap:9':
        ('free_work(work)', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_del:6':
        ('if kvm_is_error_hva(work.addr):...', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_del:9':
        ('kvm.stat.mm_count -= 1', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_del:10':
        ('kvm.users_count -= 1', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_del:11':
        ('free_work(work)', _HVA),
    'asyncpf.host.async_pf:new_work:stmt_del:12':
        ('return None', _HVA),
    'asyncpf.host.async_pf:new_work:const_off:4':
        ('1', _HVA),
    'asyncpf.host.async_pf:new_work:const_off:5':
        ('1', _HVA),
    'asyncpf.host.async_pf:new_work:const_off:6':
        ('1', _HVA),
    'asyncpf.host.async_pf:new_work:const_off:7':
        ('1', _HVA),
    'asyncpf.host.async_pf:async_pf_execute:stmt_swap:10':
        ('kvm.stat.async_pf_completed += 1', _STAT),
    'asyncpf.host.async_pf:async_pf_execute:stmt_del:10':
        ('kvm.stat.async_pf_completed += 1', _STAT),
    'asyncpf.host.async_pf:async_pf_execute:const_off:0':
        ('1', _STAT),
    'asyncpf.host.async_pf:async_pf_execute:const_off:1':
        ('1', _STAT),
    'asyncpf.host.async_pf:worker_done:stmt_swap:3':
        ('vcpu.wake_up()', _ONE_STEP),
    'asyncpf.host.async_pf:worker_done:stmt_swap:5':
        ('kvm.users_count -= 1', _ONE_STEP),
    'asyncpf.host.async_pf:worker_done:stmt_swap:6':
        ('vcpu.workqueue.finished(work)', _ONE_STEP),
    'asyncpf.host.async_pf:retire_work:stmt_swap:0':
        ('if work in vcpu.async_pf.queue:...', _ONE_STEP),
    'asyncpf.host.async_pf:retire_work:stmt_swap:1':
        ('vcpu.async_pf.queued -= 1', _ONE_STEP),
    'asyncpf.host.async_pf:new_work:stmt_swap:3':
        ('work.gva, work.addr, work.arch = (gva, gfn_to_hva(kvm, gfn), arch)', _ONE_STEP),
    'asyncpf.host.async_pf:new_work:stmt_swap:1':
        ('if work is None:...', _LOCAL),
    'asyncpf.host.async_pf:free_work:stmt_del:0':
        ("if work.state == 'freed':...", _MODEL_CHECKS),
    'asyncpf.host.async_pf:free_work:stmt_del:4':
        ("raise AssertionError(f'{work!r} freed twice')", _MODEL_CHECKS),
    'asyncpf.host.async_pf:free_work:stmt_del:1':
        ("work.state = 'freed'", _MODEL_CHECKS),
    'asyncpf.host.async_pf:free_work:stmt_del:3':
        ('work.__class__ = FreedKvmAsyncPf', _MODEL_CHECKS),
    'asyncpf.host.async_pf:peek:stmt_del:0':
        ('return object.__getattribute__(work, name)', _GLUE_READ),
    'asyncpf.host.async_pf:async_pf_execute:stmt_del:12':
        ('yield None', _SCHED),
    'asyncpf.host.async_pf:async_pf_execute:stmt_swap:11':
        ('vcpu.async_pf.done.append(work)', _PUBLISH_AFTER_POINT),
    'asyncpf.host.async_pf:async_pf_execute:stmt_del:3':
        ("work.state = 'running'", _WORK_STATE),
    'asyncpf.host.async_pf:async_pf_execute:stmt_swap:3':
        ("work.state = 'running'", _WORK_STATE),
    'asyncpf.host.async_pf:async_pf_execute:stmt_del:9':
        ("work.state = 'done'", _WORK_STATE),
    'asyncpf.host.async_pf:async_pf_execute:stmt_del:8':
        ('work.done = True', _WORK_DONE),
    'asyncpf.host.async_pf:put_work_page:bool_drop:0':
        ('work.page is not None and work.page != BAD_PFN', _NO_PAGE_AT_PUT),
    'asyncpf.guest.kvm:_find_apf_task:stmt_del:1':
        ('return None', _FALL_OFF),
    'asyncpf.guest.kvm:kvm_read_and_reset_pf_reason:stmt_swap:0':
        ('if not _area_enabled(cpu):...', _LOCAL),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:1':
        ('task = cpu.curr', _LOCAL),
    'asyncpf.guest.kvm:kvm_async_pf_task_wake:stmt_swap:0':
        ('if token == abi.BROADCAST_TOKEN:...', _LOCAL),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:4':
        ('if dummy is not None:...', _LOCAL),
    'asyncpf.guest.kvm:do_async_page_fault:stmt_swap:0':
        ('from .kernel import do_page_fault', _LOCAL),
    'asyncpf.guest.kvm:kvm_async_pf_task_wake:const_off:2':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.kvm:kvm_async_pf_task_wake:const_off:3':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:const_off:4':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:const_off:5':
        ('0', _BUCKET_ORDER),
    'asyncpf.guest.kvm:apf_task_wake_all:stmt_swap:0':
        ('if node.task is None:...', _ONE_STEP),
    'asyncpf.guest.kvm:do_async_page_fault:stmt_swap:1':
        ('reason = kvm_read_and_reset_pf_reason(cpu)', _PF_ENTRY_COST),
    'asyncpf.guest.kvm:do_async_page_fault:stmt_swap:2':
        ("yield Compute(cpu.params['pf_entry_ns'])", _LOCAL),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:bool_drop:0':
        ('task.is_idle or task.preempt_count > 0', _IDLE_NEVER_WAITS),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_del:19':
        ('yield Cli()', _PF_WAIT_EXIT_IRQS_ON),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_del:23':
        ('yield Cli()', _PF_WAIT_EXIT_IRQS_ON),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:13':
        ('yield SafeHalt()', _PF_WAIT_EXIT_IRQS_ON),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:16':
        ('yield Schedule()', _PF_WAIT_EXIT_IRQS_ON),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:11':
        ('if not node.halted:...', _PF_WAIT_ORDER),
    'asyncpf.guest.kvm:kvm_async_pf_task_wait:stmt_swap:12':
        ('if node not in bucket:...', _PF_WAIT_ORDER),
    'asyncpf.guest.kvm:kvm_guest_cpu_offline:stmt_swap:0':
        ('yield from kvm_pv_disable_apf(cpu)', _OFFLINE_ORDER),
    'asyncpf.guest.kvm:kvm_pv_disable_apf:stmt_swap:1':
        ('yield WrMsr(cpu.kernel.abi.msr_async_pf_en, 0)', _WRMSR_ATOMIC),
    'asyncpf.guest.kvm:kvm_pv_disable_apf:stmt_swap:2':
        ('cpu.apf_enabled = False', _ONE_STEP),
    'asyncpf.guest.kvm:kvm_read_and_reset_pf_reason:const_off:1':
        ('0', _NOT_A_REASON),
    'asyncpf.guest.kvm:register_apf_area:stmt_del:1':
        ('if refused:...', _PF_ERA_OOPS),
    'asyncpf.guest.kvm:register_apf_area:stmt_del:5':
        ('return', _PF_ERA_OOPS),
    'asyncpf.guest.kvm:register_apf_area:stmt_swap:1':
        ('if refused:...', _PF_ERA_OOPS),
    'asyncpf.guest.kvm:register_apf_area:stmt_swap:2':
        ('cpu.apf_enabled = True', _ONE_STEP),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:stmt_swap:0':
        ("vcpu.kvm.env.trace('kvm_async_pf_not_present', ctx=x86.trace_ctx(vcpu), token=work.arch.token, gv...",
         _TRACE_THEN_HASH),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_not_present:stmt_swap:0':
        ("vcpu.kvm.env.trace('kvm_async_pf_not_present', ctx=x86.trace_ctx(vcpu), token=work.arch.token, gv...",
         _TRACE_THEN_HASH),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:stmt_swap:1':
        ('x86.kvm_add_async_pf_gfn(vcpu, work.arch.gfn)', _LOCAL),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_not_present:stmt_del:6':
        ('work.notpresent_injected = True', _LEGACY_INJECTED_FLAG),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_not_present:stmt_del:4':
        ('return False', _FALSY_RETURN),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_swap:1':
        ("vcpu.kvm.env.trace('kvm_async_pf_ready', ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work...",
         _LOCAL),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_swap:3':
        ('if (work.wakeup_all or work.notpresent_injected) and kvm_pv_async_pf_enabled(vcpu) and (not apf_p...',
         _NOT_HALTED_AT_PRESENT),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_del:4':
        ('apf.halted = False', _NOT_HALTED_AT_PRESENT),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_del:5':
        ('vcpu.arch.mp_state = x86.KVM_MP_STATE_RUNNABLE', _NOT_HALTED_AT_PRESENT),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:stmt_swap:5':
        ('apf.pageready_pending = True', _ONE_STEP),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present:bool_drop:1':
        ('(work.wakeup_all or work.notpresent_injected) and kvm_pv_async_pf_enabled(vcpu) and (not apf_put_...',
         _PRESENT_OFF),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_present:stmt_swap:2':
        ('if vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:...', _ONE_STEP),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_present_queued:stmt_swap:0':
        ('x86.kvm_make_request(vcpu, KVM_REQ_APF_READY)', _ONE_STEP),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_ready:const_off:0':
        ('0', _PREFAULT_ERROR_CODE),
    'asyncpf.host.legacy.x86:kvm_arch_async_page_ready:const_off:1':
        ('0', _PREFAULT_ERROR_CODE),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_ready:const_off:0':
        ('0', _PREFAULT_ERROR_CODE),
    'asyncpf.host.interrupt.x86:kvm_arch_async_page_ready:const_off:1':
        ('0', _PREFAULT_ERROR_CODE),
    'asyncpf.host.interrupt.x86:kvm_can_deliver_async_pf:stmt_swap:0':
        ('if not kvm_pv_async_pf_enabled(vcpu):...', ('two early returns of False trade places: both tests are pure '
         'reads, so the function is False when either holds, in either order')),
    'asyncpf.host.interrupt.x86:apf_pageready_slot_free:const_off:0':
        ('4', _PAD),
    'asyncpf.host.interrupt.x86:apf_put_user_ready:const_off:0':
        ('4', _PAD),
    'asyncpf.host.interrupt.x86:apf_put_user_notpresent:const_off:1':
        ('4', _FLAGS_WORD),
    'asyncpf.host.interrupt.x86:apf_put_user_notpresent:const_off:0':
        ('4', _FLAGS_FIFTH_BYTE),
    'asyncpf.host.interrupt.mmu:kvm_mmu_faultin_pfn:stmt_swap:9':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=ctx, gva=gpa, gfn=gfn)", _TRY_TRACE_6_18),
    'asyncpf.host.interrupt.mmu:kvm_mmu_faultin_pfn:stmt_del:11':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=ctx, gva=gpa, gfn=gfn)", _TRY_TRACE_6_18),
    'asyncpf.host.interrupt.mmu:kvm_mmu_faultin_pfn:stmt_swap:11':
        ("kvm.env.trace('kvm_async_pf_repeated_fault', ctx=ctx, gva=gpa, gfn=gfn)", _TRY_TRACE_6_18),
    'asyncpf.host.interrupt.mmu:kvm_mmu_faultin_pfn:stmt_del:14':
        ("kvm.env.trace('kvm_async_pf_repeated_fault', ctx=ctx, gva=gpa, gfn=gfn)", _TRY_TRACE_6_18),
    'asyncpf.host.interrupt.mmu:gfn_to_pfn_async:stmt_swap:1':
        ('if kvm_is_error_hva(addr):...', _LOOKUP_DISCARDED),
    'asyncpf.host.interrupt.mmu:kvm_handle_error_pfn:stmt_swap:0':
        ('if pfn == FAULT_PFN:...', _FAULT_PFN_HERE_6_18),
    'asyncpf.host.interrupt.mmu:kvm_handle_error_pfn:stmt_del:0':
        ('if pfn == FAULT_PFN:...', _FAULT_PFN_HERE_6_18),
    'asyncpf.host.interrupt.mmu:kvm_handle_error_pfn:stmt_del:2':
        ('return mmu_common.RET_EFAULT', _FAULT_PFN_HERE_6_18),
    'asyncpf.host.interrupt.x86:kvm_can_do_async_pf:bool_drop:1':
        ('not vcpu.kvm.irqchip_in_kernel or x86.kvm_event_needs_reinjection(vcpu) or vcpu.arch.exception.pe...',
         _REINJECTION_IS_PENDING),
    'asyncpf.host.interrupt.x86:kvm_can_do_async_pf:bool_drop:2':
        ('not vcpu.kvm.irqchip_in_kernel or x86.kvm_event_needs_reinjection(vcpu) or vcpu.arch.exception.pe...',
         _REINJECTION_IS_PENDING),

    'asyncpf.host.legacy.x86:__vcpu_run:stmt_swap:1':
        ('while not vcpu.stopped:...', _EXIT_MODE),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_del:2':
        ('vcpu_mod.vcpu_exit_thread(vcpu)', _EXIT_MODE),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_swap:2':
        ('yield from vcpu_mod.serve_reset(vcpu)', _ARCH_ALIAS),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_swap:4':
        ('if arch.mp_state == x86.KVM_MP_STATE_RUNNABLE and (not arch.apf.halted):...', _TRIPLE_FAULT),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_swap:5':
        ('if vcpu_mod.triple_fault(vcpu):...', _TRIPLE_FAULT),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_del:6':
        ('if vcpu_mod.triple_fault(vcpu):...', _TRIPLE_FAULT),
    'asyncpf.host.legacy.x86:__vcpu_run:stmt_del:10':
        ('break', _TRIPLE_FAULT),
    'asyncpf.host.legacy.x86:kvm_arch_vcpu_reset:stmt_swap:1':
        ('apf.msr_val = 0', _ACROSS_CLEAR),
    'asyncpf.host.legacy.x86:kvm_arch_vcpu_reset:stmt_swap:2':
        ('yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)', _ACROSS_CLEAR),
    'asyncpf.host.legacy.x86:kvm_arch_vcpu_reset:stmt_swap:3':
        ('x86.kvm_async_pf_hash_reset(vcpu)', _ONE_STEP),
    'asyncpf.host.legacy.x86:kvm_arch_vcpu_reset:stmt_swap:4':
        ('apf.halted = False', _ONE_STEP),
    'asyncpf.host.legacy.x86:kvm_arch_vcpu_runnable:bool_drop:0':
        ('arch.mp_state == x86.KVM_MP_STATE_RUNNABLE and (not arch.apf.halted) or bool(vcpu.async_pf.done) ...', _RUNNABLE_RUNNING_TERM),
    'asyncpf.host.interrupt.x86:kvm_arch_vcpu_runnable:bool_drop:0':
        ('kvm_vcpu_running(vcpu) or vcpu.async_pf.done or vcpu.arch.exception.pending', _RUNNABLE_RUNNING_TERM),
    'asyncpf.host.interrupt.x86:kvm_arch_vcpu_runnable:bool_drop:2':
        ('kvm_vcpu_running(vcpu) or vcpu.async_pf.done or vcpu.arch.exception.pending', _NO_EXCEPTION_BLOCKED),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:0':
        ('vcpu.irr.clear()', _ONE_STEP),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:1':
        ('vcpu.isr.clear()', _ONE_STEP),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_del:1':
        ('vcpu.isr.clear()', _ISR_EMPTY_AT_RESET),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:2':
        ('x86.reset_events(vcpu)', _ONE_STEP),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:5':
        ('apf.msr_int_val = 0', _ACROSS_CLEAR),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:6':
        ('yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)', _ACROSS_CLEAR),
    'asyncpf.host.interrupt.x86:kvm_vcpu_reset:stmt_swap:7':
        ('x86.kvm_async_pf_hash_reset(vcpu)', _ONE_STEP),
    'asyncpf.host.interrupt.x86:vcpu_block:stmt_swap:0':
        ('if not kvm_arch_vcpu_runnable(vcpu):...', _UNHALT_618),
    'asyncpf.host.interrupt.x86:vcpu_block:stmt_swap:1':
        ('x86.kvm_check_request(vcpu, x86.KVM_REQ_UNHALT)', _UNHALT_618),
    'asyncpf.host.interrupt.x86:vcpu_block:stmt_del:1':
        ('x86.kvm_check_request(vcpu, x86.KVM_REQ_UNHALT)', _UNHALT_618),
    'asyncpf.host.interrupt.x86:vcpu_block:stmt_del:6':
        ('return', _NOT_RUNNABLE_TAIL),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_swap:1':
        ('while not vcpu.stopped:...', _EXIT_MODE),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_del:2':
        ('vcpu_mod.vcpu_exit_thread(vcpu)', _EXIT_MODE),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_swap:3':
        ('if kvm_vcpu_running(vcpu):...', _TRIPLE_FAULT),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_del:5':
        ('if vcpu_mod.triple_fault(vcpu):...', _TRIPLE_FAULT),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_del:8':
        ('break', _TRIPLE_FAULT),
    'asyncpf.host.interrupt.x86:vcpu_block:stmt_del:5':
        ('if not kvm_arch_vcpu_runnable(vcpu):...', _NOT_RUNNABLE_TAIL),
    'asyncpf.host.interrupt.x86:vcpu_run:stmt_swap:2':
        ('yield from vcpu_mod.serve_reset(vcpu)', _RESET_AFTER_ROUND),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:stmt_swap:2':
        ('vcpu.async_pf.queue.append(work)', _SEED_QUEUED),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:stmt_swap:3':
        ('vcpu.async_pf.queued += 1', _SEED_QUEUED),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:stmt_del:3':
        ('vcpu.async_pf.queued += 1', _SEED_QUEUED),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:const_off:0':
        ('1', _SEED_QUEUED),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:const_off:1':
        ('1', _SEED_QUEUED),
    'asyncpf.host.seed.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:3':
        ('apf.queued = len(apf.queue)', _SEED_CLEAR_NOOP),
    'asyncpf.host.seed.async_pf:kvm_check_async_pf_completion:stmt_swap:3':
        ('if apf.done and x86.kvm_arch_can_inject_async_page_present(vcpu):...', _SEED_CLEAR_NOOP),
    'asyncpf.host.seed.async_pf:kvm_check_async_pf_completion:stmt_swap:5':
        ('apf.done.remove(work)', _PARKED_DONE),
    'asyncpf.host.seed.async_pf:kvm_check_async_pf_completion:stmt_del:6':
        ('apf.done.remove(work)', _PARKED_DONE),
    'asyncpf.host.seed.async_pf:kvm_check_async_pf_completion:stmt_del:7':
        ('retire_work(vcpu, work)', _PARKED_DONE),
    'asyncpf.host.seed.mmu:tdp_page_fault:stmt_swap:8':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=x86.trace_ctx(vcpu), r=not is_async, pfn=pfn)", _TRACE),
    'asyncpf.host.seed.mmu:tdp_page_fault:stmt_del:9':
        ("kvm.env.trace('kvm_try_async_get_page', ctx=x86.trace_ctx(vcpu), r=not is_async, pfn=pfn)", _TRACE),
    'asyncpf.host.seed.mmu:gfn_to_pfn_async:stmt_swap:1':
        ('if kvm_is_error_hva(addr):...', _LOOKUP_DISCARDED),
    'asyncpf.host.seed.mmu:kvm_handle_bad_page:stmt_del:0':
        ('kvm_release_pfn_clean(kvm, pfn)', _ERROR_PFN_REF),
    'asyncpf.host.seed.mmu:kvm_handle_bad_page:stmt_swap:0':
        ('kvm_release_pfn_clean(kvm, pfn)', _ERROR_PFN_REF),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_swap:1':
        ('while not vcpu.stopped:...', _EXIT_MODE),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_del:2':
        ('vcpu_mod.vcpu_exit_thread(vcpu)', _EXIT_MODE),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_del:5':
        ('if vcpu_mod.triple_fault(vcpu):...', _TRIPLE_FAULT),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_del:8':
        ('break', _TRIPLE_FAULT),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_swap:3':
        ('if vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE:...', _TRIPLE_FAULT),
    'asyncpf.host.seed.x86:__vcpu_run:stmt_swap:2':
        ('yield from vcpu_mod.serve_reset(vcpu)', _RESET_AFTER_ROUND),
    'asyncpf.host.seed.x86:kvm_arch_vcpu_runnable:bool_drop:0':
        ('vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE or bool(vcpu.async_pf.done) or (x86.kvm_arch_inte...', _RUNNABLE_RUNNING_TERM),
    'asyncpf.host.seed.x86:kvm_arch_vcpu_reset:stmt_swap:0':
        ('vcpu.arch.apf.msr_val = 0', _SEED_CLEAR),
    'asyncpf.host.x86:_exception_class:cmp_flip:0':
        ('nr == PF_VECTOR', _NO_MERGE),
    'asyncpf.host.x86:_exception_class:cmp_flip:1':
        ('nr in _CONTRIBUTORY', _NO_MERGE),
    'asyncpf.host.x86:_exception_class:stmt_del:0':
        ('if nr == PF_VECTOR:...', _NO_MERGE),
    'asyncpf.host.x86:_exception_class:stmt_del:1':
        ("return 'contributory' if nr in _CONTRIBUTORY else 'benign'", _NO_MERGE),
    'asyncpf.host.x86:_exception_class:stmt_del:2':
        ("return 'pf'", _NO_MERGE),
    'asyncpf.host.x86:_exception_class:stmt_swap:0':
        ('if nr == PF_VECTOR:...', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:0':
        ("c1 == 'contributory' and c2 == 'contributory' or (c1 == 'pf' and c2 != 'benign')", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:1':
        ("c1 == 'contributory' and c2 == 'contributory' or (c1 == 'pf' and c2 != 'benign')", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:2':
        ("c1 == 'contributory' and c2 == 'contributory'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:3':
        ("c1 == 'contributory' and c2 == 'contributory'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:4':
        ("c1 == 'pf' and c2 != 'benign'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:bool_drop:5':
        ("c1 == 'pf' and c2 != 'benign'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:cmp_flip:0':
        ('exc.nr == DF_VECTOR', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:cmp_flip:1':
        ("c1 == 'contributory'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:cmp_flip:2':
        ("c2 == 'contributory'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:cmp_flip:3':
        ("c1 == 'pf'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:cmp_flip:4':
        ("c2 != 'benign'", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:0':
        ('1', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:1':
        ('1', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:2':
        ('1', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:3':
        ('1', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:4':
        ('0', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:const_off:5':
        ('0', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:10':
        ('exc.nr, exc.has_error_code, exc.error_code, exc.reinject = (DF_VECTOR, True, 0, False)', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:11':
        ("vcpu.stat['double_faults'] += 1", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:12':
        ('exc.nr, exc.has_error_code, exc.error_code, exc.reinject = (nr, has_error, error_code, reinject)', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:2':
        ('if exc.nr == DF_VECTOR:...', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:3':
        ('c1, c2 = (_exception_class(exc.nr), _exception_class(nr))', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:4':
        ("if c1 == 'contributory' and c2 == 'contributory' or (c1 == 'pf' and c2 != 'benign'):...", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:7':
        ('kvm_make_request(vcpu, KVM_REQ_TRIPLE_FAULT)', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:8':
        ("vcpu.stat['triple_faults'] += 1", _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_del:9':
        ('return', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_swap:1':
        ('if not exc.pending:...', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_swap:2':
        ('if exc.nr == DF_VECTOR:...', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_swap:3':
        ('c1, c2 = (_exception_class(exc.nr), _exception_class(nr))', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_swap:5':
        ('kvm_make_request(vcpu, KVM_REQ_TRIPLE_FAULT)', _NO_MERGE),
    'asyncpf.host.x86:kvm_multiple_exception:stmt_swap:6':
        ("vcpu.stat['triple_faults'] += 1", _NO_MERGE),
    'asyncpf.host.x86:kvm_add_async_pf_gfn:stmt_swap:0':
        ('gfns = vcpu.arch.apf.gfns', _GFN_TABLE_ALIAS),
    'asyncpf.host.x86:kvm_async_pf_gfn_slot:stmt_swap:0':
        ('gfns = vcpu.arch.apf.gfns', _GFN_TABLE_ALIAS),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:stmt_swap:0':
        ('gfns = vcpu.arch.apf.gfns', _GFN_TABLE_ALIAS),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:bool_drop:2':
        ('i <= j and i < k <= j', _AND_IMPLIED),
    'asyncpf.host.x86:kvm_async_pf_gfn_slot:bool_drop:1':
        ('gfns[key] == gfn or gfns[key] == GFN_SLOT_EMPTY', _PROBE_PAST_FREE),
    'asyncpf.host.x86:kvm_async_pf_gfn_slot:const_off:1':
        ('64', _63_PROBES),
    'asyncpf.host.x86:kvm_async_pf_gfn_slot:const_off:0':
        ('64', _65_PROBES),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:stmt_del:2':
        ('if gfns[i] != gfn:...', _DEL_ABSENT),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:stmt_del:4':
        ('return', _DEL_ABSENT),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:stmt_swap:2':
        ('if gfns[i] != gfn:...', _DEL_ABSENT),
    'asyncpf.host.x86:kvm_del_async_pf_gfn:stmt_swap:7':
        ('if gfns[j] == GFN_SLOT_EMPTY:...', _FREE_SLOT_HOME),
    'asyncpf.host.x86:inject_apf_event:stmt_del:3':
        ('return True', _INJECTED_RESULT),
    'asyncpf.host.x86:kvm_queue_exception:cmp_flip:0':
        ('nr in (DF_VECTOR, GP_VECTOR, PF_VECTOR)', _HAS_ERROR_UNREAD),
    'asyncpf.host.x86:kvm_inject_page_fault:stmt_swap:0':
        ('vcpu.arch.cr2 = address & abi.U64', _CR2_FIRST),
    'asyncpf.host.x86:reset_events:stmt_swap:0':
        ('vcpu.arch.exception = KvmQueuedException()', _RESET_STORES),
    'asyncpf.host.x86:kvm_arch_interrupt_allowed:bool_drop:1':
        ('vcpu.arch.rflags_if and (not vcpu.arch.interrupt_shadow)', _NO_SHADOW),
    'asyncpf.host.x86:kvm_check_request:stmt_del:1':
        ('return False', _FALSE_TO_NONE),
    'asyncpf.host.x86:kvm_arch_destroy_vm:stmt_swap:1':
        ('vcpu.stopped = True', _KICK_FIRST),
    'asyncpf.host.x86:apf_put_user:const_off:1':
        ('4', _REASON_3_BYTES),
    'asyncpf.host.x86:kvm_event_needs_reinjection:bool_drop:1':
        ('arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected', _REINJECTION_IS_PENDING),
    'asyncpf.host.x86:kvm_event_needs_reinjection:bool_drop:2':
        ('arch.exception.pending or arch.interrupt_injected is not None or arch.nmi_injected', _REINJECTION_IS_PENDING),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_del:0':
        ('if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:...', _SEED_INJECT_OFF),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_del:3':
        ('return', _SEED_INJECT_OFF),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_swap:0':
        ('if not vcpu.arch.apf.msr_val & KVM_ASYNC_PF_ENABLED:...', _SEED_INJECT_OFF),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_del:4':
        ('work.notpresent_injected = True', _SEED_INJECTED_FLAG),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_del:2':
        ("vcpu.kvm.env.trace('kvm_send_async_pf', ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work....", _TRACE),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_not_present:stmt_swap:1':
        ('if x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_NOT_PRESENT, work.arch.token):...', _TRACE),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_present:stmt_del:2':
        ("vcpu.kvm.env.trace('kvm_send_async_pf', ctx=x86.trace_ctx(vcpu), token=work.arch.token, gva=work....", _TRACE),
    'asyncpf.host.seed.x86:kvm_arch_inject_async_page_present:stmt_swap:1':
        ('x86.inject_apf_event(vcpu, KVM_PV_REASON_PAGE_READY, work.arch.token)', _TRACE),
    'asyncpf.host.seed.x86:kvm_arch_vcpu_reset:stmt_swap:1':
        ('yield from async_pf.kvm_clear_async_pf_completion_queue(vcpu)', _SEED_RESET_ORDER),
    'asyncpf.host.seed.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:1':
        ('apf.slot = None', _SEED_CLEAR_ORDER),
    'asyncpf.host.seed.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:5':
        ('if work in apf.queue:...', _SEED_CLEAR_ORDER),
    'asyncpf.host.seed.async_pf:kvm_clear_async_pf_completion_queue:stmt_del:1':
        ('apf.slot = None', _SEED_SLOT_KEPT),
    'asyncpf.host.seed.async_pf:kvm_clear_async_pf_completion_queue:stmt_swap:2':
        ('while apf.done:...', _SEED_QUEUED_AT_CLEAR),
    'asyncpf.host.seed.async_pf:kvm_setup_async_pf:stmt_swap:4':
        ('vcpu.workqueue.queue_work(work)', _ONE_STEP),
    'asyncpf.host.async_pf:alloc_work:stmt_swap:2':
        ('kvm.stat.async_pf_allocated += 1', _ITEM_ID),
    'asyncpf.host.async_pf:alloc_work:const_off:0':
        ('1', _ALLOC_FAIL_STAT),
    'asyncpf.host.async_pf:alloc_work:const_off:1':
        ('1', _ALLOC_FAIL_STAT),
    'asyncpf.host.async_pf:alloc_work:stmt_del:6':
        ('kvm.stat.async_pf_alloc_failures += 1', _ALLOC_FAIL_STAT),
    'asyncpf.host.async_pf:alloc_work:stmt_swap:5':
        ('kvm.stat.async_pf_alloc_failures += 1', _ALLOC_FAIL_STAT),
    'asyncpf.host.async_pf:worker_done:stmt_swap:2':
        ("kvm.env.trace('kvm_async_pf_completed', ctx=ctx, address=addr, pfn=pfn, gva=gva)", _TRACE),
    'asyncpf.host.async_pf:worker_done:stmt_del:2':
        ("kvm.env.trace('kvm_async_pf_completed', ctx=ctx, address=addr, pfn=pfn, gva=gva)", _TRACE),
    'asyncpf.host.async_pf:async_pf_execute:const_off:2':
        ('0', _GUP_OK),
    'asyncpf.host.async_pf:async_pf_execute:const_off:3':
        ('0', _GUP_OK),
    'asyncpf.guest.kvm:register_apf_area:const_off:2':
        ('4', _ENABLED_BYTES),
    'asyncpf.guest.kvm:register_apf_area:const_off:3':
        ('4', _ENABLED_BYTES),
    'asyncpf.guest.kvm:kvm_pv_disable_apf:const_off:2':
        ('4', _ENABLED_BYTES),
    'asyncpf.guest.kvm:kvm_pv_disable_apf:const_off:3':
        ('4', _ENABLED_BYTES),
    'asyncpf.guest.kvm:kvm_read_and_reset_pf_reason:const_off:3':
        ('4', _REASON_BYTES),
    'asyncpf.guest.kvm:kvm_read_and_reset_pf_reason:const_off:5':
        ('4', _REASON_BYTES),
}
