"""The host twins that differ between generations, selected once when the VM is built.

Generic code reaches them as ``kvm.twins.NAME`` -- the way generic KVM calls
the ``kvm_arch_*`` hooks and the MMU's ``page_fault`` pointer -- and never
asks which generation it runs.  A generation is a package (or module) that
defines every name of :data:`HOOKS`; adding one means writing its differing
twins and its ABI object (``asyncpf.abi``), and naming it in :data:`SOURCES`.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from ..abi import Generation

HOOKS = (
    "__vcpu_run",                          # arch/x86/kvm/x86.c: the vcpu thread's loop
    "kvm_arch_vcpu_runnable",              # what wakes a blocked vcpu
    "kvm_arch_vcpu_reset",                 # INIT/RESET
    "tdp_page_fault",                      # arch/x86/kvm/mmu.c: the EPT violation handler
    "kvm_handle_bad_page",                 # arch/x86/kvm/mmu.c: an error pfn is emulated or fails KVM_RUN
    "kvm_clear_async_pf_completion_queue",  # MSR disable, reset, VM destroy
    "kvm_apic_set_irq",                    # arch/x86/kvm/lapic.c: every interrupt a vcpu is sent
)
ASYNC_PF_HOOKS = (
    "gfn_to_pfn_async", "can_do_async_pf", "kvm_setup_async_pf", "kvm_check_async_pf_completion",
    "async_pf_execute",                    # the worker the workqueue runs
)
SOURCES = {"seed": "asyncpf.host.seed", "legacy": "asyncpf.host.legacy", "interrupt": "asyncpf.host.interrupt",
           "unpatched": "asyncpf.host.unpatched"}


def select(spec: Generation, async_pf: bool = True) -> SimpleNamespace:
    """The twins of ``spec`` (or of a host built without async PF), with its MSR switch built once."""
    name = spec.name if async_pf else "unpatched"
    if name not in SOURCES:
        raise ValueError(f"generation {spec.name!r} has no host twins; modelled: {sorted(SOURCES)}")
    module = importlib.import_module(SOURCES[name])
    wanted = HOOKS + (ASYNC_PF_HOOKS if async_pf else ())
    missing = [h for h in wanted + ("msr_handlers",) if not hasattr(module, h)]
    if missing:
        raise TypeError(f"{module.__name__} lacks the twins {missing}")
    twins = SimpleNamespace(name=name, **{h: getattr(module, h) for h in wanted})
    twins.msrs = module.msr_handlers(spec)
    reads = getattr(module, "msr_read_handlers", None)
    twins.msr_reads = reads(spec) if reads is not None else {}
    twins.kvm_async_pf_hash_fn = getattr(module, "kvm_async_pf_hash_fn", None)   # the gfn table: 2.6.38 on
    return twins
