"""Behaviour the modelled generations show by design that breaks an invariant, each with its source.

The model is faithful to 2.6.38 and the seed series, their bugs included,
so where a generation itself broke an invariant the model does too.  Each
such behaviour is recorded here with its source: reports show it and never
count it as a model error.  :data:`KNOWN` is the table;
:data:`KNOWN_BY_CONFIG` indexes it by explorer configuration, and the
``KNOWN_*_BEHAVIOUR`` maps by generation for the runs that have no
configuration (the Hypothesis state machine).

:data:`KNOWN_LEAKS` does the same for the leak check: references a
generation itself never gave back.  ``Machine.leaks`` expects them (the
counts stay exact) and ``Machine.known_leaks`` reports them with their source.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    """A violation the faithful model shows because the generation itself did: reported, not held against it."""

    invariant: str
    generation: str
    configs: tuple[str, ...]   # the explorer configurations that show it (empty: seen by the state machine)
    source: str
    why: str


KNOWN: tuple[Known, ...] = (
    Known("no_ready_after_broadcast", "interrupt", ("irq_lapic_off",),
          "arch/x86/kvm/x86.c@v6.18 kvm_pv_enable_async_pf (wake-all queued at enable) and "
          "kvm_arch_can_dequeue_async_page_present (held while the LAPIC is disabled, the 2021 fix)",
          "the enable's wake-all waits on done while the LAPIC is software-disabled; a not-present injected "
          "meanwhile completes behind it, so when the LAPIC comes on the ~0 wakes that sleeper first and its own "
          "page-ready follows for a waiter that is gone (a stale dummy node) -- 6.18 as 2.6.38 at migration"),
    Known("ready_only_after_not_present", "legacy", ("kernel_touch", "kernel_touch_offline"),
          "bugzilla 208081; fixed in 2020 by notpresent_injected (Msg-Id 873673b8gc.fsf@vitty.brq.redhat.com)",
          "a non-preemptible guest touching memory from kernel mode is halted instead of told (no SEND_ALWAYS), "
          "yet 2.6.38 still sends page-ready for that token, which leaves a stale dummy node"),
    Known("no_ready_after_broadcast", "legacy", (),
          "arch/x86/kvm/x86.c:kvm_pv_enable_async_pf + virt/kvm/async_pf.c:kvm_async_pf_wakeup_all (2.6.38)",
          "2.6.38 queues the wake-all at MSR enable; a not-present injected before it is delivered is woken by "
          "it, and its own page-ready still follows (a stale dummy node)"),
    Known("ready_only_after_not_present", "seed", ("seed_msr_disable", "seed_vcpu_reset"),
          "seed 000: kvm_clear_async_pf_completion_queue frees only the done list and cancels no slow work; "
          "cancelling arrived with v4 ('cancel slow work on reset', the v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com)",
          "the seed never cancels a swap-in in flight (seed 000 even calls its clear only at VM destroy; the model "
          "also calls it on MSR disable and reset, as 2.6.38 does): one still running when APF is switched off "
          "completes afterwards and, once the guest has registered again, is delivered as a page-ready for a "
          "token the guest already gave up on (it woke its sleepers itself), so the guest keeps a stale dummy node"),
)

# config -> the invariants it is known to break (the CLI and notebook 09 report these, never count them)
KNOWN_BY_CONFIG: dict[str, frozenset[str]] = {}
for _k in KNOWN:
    for _c in _k.configs:
        KNOWN_BY_CONFIG[_c] = KNOWN_BY_CONFIG.get(_c, frozenset()) | {_k.invariant}
# invariant -> why, per generation, for the runs that have no configuration (the Hypothesis state machine)
KNOWN_LEGACY_BEHAVIOUR = {k.invariant: k.why for k in KNOWN if k.generation == "legacy" and not k.configs}
KNOWN_SEED_BEHAVIOUR = {k.invariant: k.why for k in KNOWN if k.generation == "seed"}
KNOWN_INTERRUPT_BEHAVIOUR = {k.invariant: k.why for k in KNOWN if k.generation == "interrupt"}


@dataclass(frozen=True)
class KnownLeak:
    """References a generation never gave back by design: expected by the leak check and reported with the fix."""

    name: str
    generation: str
    source: str
    fix: str
    why: str


KNOWN_LEAKS: dict[str, KnownLeak] = {k.name: k for k in (
    KnownLeak("cancel_leaked_refs", "legacy",
              "virt/kvm/async_pf.c@v2.6.38: kvm_clear_async_pf_completion_queue",
              "later kernels drop both references in the cancelled branch ('kvm: free resources after canceling "
              "async_pf', 2013; mmput + kvm_put_kvm there since)",
              "an item cancelled before its worker started is freed, but the mm_count and kvm reference "
              "kvm_setup_async_pf took for it are never dropped (the worker that would drop them never runs): "
              "every MSR disable or vcpu reset that cancels a queued item keeps the VM and its mm alive"),
)}
