"""A host without async PF (CONFIG_KVM_ASYNC_PF unset; the 2.6.37 shape of the same functions).

Every fault that needs IO is served by ``gfn_to_pfn`` in the vcpu thread,
which sleeps through the swap-in; there is no MSR_KVM_ASYNC_PF_EN (a write
gets #GP), no completion queue and no APF halt.  Selected as a set of twins
like any generation, so the shared run loop and fault path need no
"is async PF built in?" test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator

from .. import abi
from ..mirrors import mirrors
from . import mmu as mmu_common
from . import vcpu as vcpu_mod
from . import x86
from .kvm_main import gfn_to_pfn
from .legacy.mmu import kvm_handle_bad_page  # noqa: F401  (the same v2.6.38 function with or without async PF)
from .vcpu import kvm_apic_set_irq  # noqa: F401  (a twin of every generation: the 2.6.3x LAPIC)

if TYPE_CHECKING:
    from .vcpu import KvmVcpu


@mirrors("arch/x86/kvm/mmu.c", "tdp_page_fault", generations="unpatched")
def tdp_page_fault(vcpu: "KvmVcpu", gpa: int, error_code: int) -> Generator[Any, Any, str]:
    """Handle an EPT violation: gfn_to_pfn (sleeping for IO), then map under mmu_lock unless invalidated.

    Simplification: 4 KiB direct map only.
    """
    kvm = vcpu.kvm
    gfn = gpa >> abi.PAGE_SHIFT
    mmu_seq = kvm.mmu_notifier_seq
    vcpu.account("stalled")
    pfn = yield from gfn_to_pfn(kvm, gfn)
    vcpu.account("host")
    return (yield from mmu_common.map_under_mmu_lock(vcpu, gfn, pfn, mmu_seq))


def msr_handlers(spec: abi.Generation) -> dict:
    """No async PF MSR: kvm_set_msr_common refuses it like any unknown MSR."""
    return {}


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_reset", generations="unpatched")
def kvm_arch_vcpu_reset(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """INIT/RESET: no pending events.

    Simplification: only the state the protocol touches is reset: the pending
    exception and RUNNABLE, which are the VMM's part of the reset
    (:func:`asyncpf.host.x86.reset_events`); v2.6.38's function keeps a queued exception.
    """
    x86.reset_events(vcpu)
    yield from ()


def kvm_clear_async_pf_completion_queue(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """Not built: nothing is ever queued, so VM destroy has nothing to clear."""
    yield from ()


@mirrors("arch/x86/kvm/x86.c", "kvm_arch_vcpu_runnable", generations="unpatched")
def kvm_arch_vcpu_runnable(vcpu: "KvmVcpu") -> bool:
    """Whether a blocked vcpu should wake: RUNNABLE, or an interrupt it can take.

    Simplification: no NMI or SIPI; any pending vector counts (kvm_cpu_has_interrupt also weighs it
    against the one in service).
    """
    return vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE or (
        x86.kvm_arch_interrupt_allowed(vcpu) and bool(vcpu.irr))


@mirrors("arch/x86/kvm/x86.c", "__vcpu_run", generations="unpatched")
def __vcpu_run(vcpu: "KvmVcpu") -> Generator[Any, Any, None]:
    """The vcpu thread's loop: enter while RUNNABLE, else block until UNHALT.

    Simplification: no signals, no userspace exits; a reset request is served here.
    """
    vcpu.account("host")
    while not vcpu.stopped:
        yield from vcpu_mod.serve_reset(vcpu)
        if vcpu.arch.mp_state == x86.KVM_MP_STATE_RUNNABLE:
            yield from vcpu_mod.enter_guest_mode(vcpu)
        else:
            yield from vcpu_mod.block_until_unhalt(vcpu)
        if vcpu_mod.triple_fault(vcpu):
            break
    vcpu_mod.vcpu_exit_thread(vcpu)
