"""Linux 2.6.38 (with 2.6.39's FOLL_NOWAIT lookup): the merged #PF-delivery ABI, through 5.7."""

from ..async_pf import async_pf_execute
from ..x86 import kvm_async_pf_hash_fn
from ..vcpu import kvm_apic_set_irq
from .async_pf import kvm_check_async_pf_completion, kvm_clear_async_pf_completion_queue, kvm_setup_async_pf
from .mmu import can_do_async_pf, gfn_to_pfn_async, kvm_handle_bad_page, tdp_page_fault
from .x86 import __vcpu_run, kvm_arch_vcpu_reset, kvm_arch_vcpu_runnable, msr_handlers, msr_read_handlers

__all__ = ["__vcpu_run", "async_pf_execute", "can_do_async_pf", "gfn_to_pfn_async", "kvm_apic_set_irq",
           "kvm_arch_vcpu_reset", "kvm_arch_vcpu_runnable", "kvm_async_pf_hash_fn", "kvm_check_async_pf_completion",
           "kvm_clear_async_pf_completion_queue", "kvm_handle_bad_page", "kvm_setup_async_pf", "msr_handlers",
           "msr_read_handlers", "tdp_page_fault"]
