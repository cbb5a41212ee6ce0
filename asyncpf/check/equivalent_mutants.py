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
        ('kvm.mm.put_page(pfn)', _ITEM_FIELDS),
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
}
