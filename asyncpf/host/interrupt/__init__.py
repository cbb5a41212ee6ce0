"""Linux 6.18 as the interrupt era: page-ready by APIC interrupt and ACK MSR (5.8 host, 5.9 guest onwards)."""

from .async_pf import async_pf_execute, kvm_check_async_pf_completion, kvm_clear_async_pf_completion_queue, kvm_setup_async_pf
from .lapic import kvm_apic_set_irq
from .mmu import gfn_to_pfn_async, kvm_handle_error_pfn as kvm_handle_bad_page, kvm_tdp_page_fault as tdp_page_fault
from .x86 import kvm_arch_vcpu_runnable, kvm_async_pf_hash_fn, kvm_can_do_async_pf as can_do_async_pf
from .x86 import msr_handlers, msr_read_handlers
from .x86 import kvm_vcpu_reset as kvm_arch_vcpu_reset, vcpu_run as __vcpu_run

__all__ = ["__vcpu_run", "async_pf_execute", "can_do_async_pf", "gfn_to_pfn_async", "kvm_apic_set_irq",
           "kvm_arch_vcpu_reset", "kvm_arch_vcpu_runnable", "kvm_async_pf_hash_fn", "kvm_check_async_pf_completion",
           "kvm_clear_async_pf_completion_queue", "kvm_handle_bad_page", "kvm_setup_async_pf", "msr_handlers",
           "msr_read_handlers", "tdp_page_fault"]
