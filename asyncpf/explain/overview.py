"""Helpers for notebook 00: the notebook map, the mirror map, the actors and the vocabulary."""

from __future__ import annotations

from collections import defaultdict

from ..machine import Machine
from ..mirrors import mirror_table
from .common import small_machine, text_table


# --- 00: the map and the vocabulary ---------------------------------------------------------

# The ideas are the README's reading-order table, word for word (tests/test_docs.py keeps them in step).
NOTEBOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "00_overview": ("what async PF is for, the actors, the map from notebooks to kernel files, vocabulary, "
                    "generations", ()),
    "01_the_problem": ("synchronous gfn_to_pfn: the whole vcpu stalls; the lost time against swap latency",
                       ("virt/kvm/kvm_main.c", "arch/x86/kvm/mmu.c", "mm/memory.c")),
    "02_pv_abi": ("CPUID bit, MSR_KVM_ASYNC_PF_EN, the shared area as bytes, reasons, tokens, refused MSR writes",
                  ("arch/x86/kvm/x86.c", "arch/x86/include/asm/kvm_para.h")),
    "03_gfn_to_pfn_async": ("fast path, slow path, minor vs major fault, MMIO and error gfns",
                            ("virt/kvm/kvm_main.c", "arch/x86/kvm/mmu.c")),
    "04_host_async_work": ("setup, worker, done list, completion before entry, the 64 limit, gfn hash and APF halt, "
                           "clearing", ("virt/kvm/async_pf.c", "arch/x86/kvm/x86.c")),
    "05_guest_side": ("#PF entry, sleep and schedule, halt when it cannot, wake, the dummy node, wake-all",
                      ("arch/x86/kernel/kvm.c",)),
    "06_end_to_end": ("one PV run as a trace table and a per-vcpu timeline",
                      ("arch/x86/kernel/kvm.c", "virt/kvm/async_pf.c", "arch/x86/kvm/x86.c", "arch/x86/kvm/mmu.c")),
    "07_benchmark": ("bm: unpatched vs halt vs PV beside the published figures; how the gain moves", ()),
    "08_mmu_notifiers": ("reclaim invalidates KVM's mapping; the fault path's sequence check racing it",
                         ("virt/kvm/kvm_main.c", "include/linux/kvm_host.h", "mm/rmap.c")),
    "09_invariants_and_exploration": ("the invariant registry, an exhaustive exploration, a mutant caught and "
                                      "replayed", ()),
    "10_interrupt_era": ("why page-ready moved off #PF, the ACK handshake as a trace, a legacy guest on a new host, "
                         "bm across the three generations",
                         ("arch/x86/kvm/x86.c", "virt/kvm/async_pf.c", "arch/x86/kvm/lapic.c",
                          "arch/x86/kernel/kvm.c")),
    "11_real_kernel": ("the specification held against the real KVM: a capture read and conformed, the same program "
                       "on the model, what cannot be compared, the MSR table real vs model",
                       ("arch/x86/kvm/x86.c", "virt/kvm/async_pf.c")),
    "12_host_cpus_and_preempt_notifiers": ("vcpus and workers compete for host CPUs; preempt notifiers put and load "
                                           "the vcpu around every switch", ("virt/kvm/kvm_main.c", "kernel/sched.c")),
    "13_waking_a_vcpu": ("the generic block/kick contract on a second arch: Book3S edge vs level interrupts",
                         ("arch/powerpc/kvm/powerpc.c", "arch/powerpc/kvm/book3s.c")),
}


def notebook_map() -> str:
    """Each notebook, its one idea and the kernel files it mirrors."""
    return text_table(("notebook", "idea", "kernel files"),
                      [(nb, idea, ", ".join(files) or "-") for nb, (idea, files) in NOTEBOOKS.items()])


def mirrors_by_file() -> dict[str, list[str]]:
    """Kernel file -> the kernel functions twinned in ``asyncpf`` (sorted)."""
    out: dict[str, list[str]] = defaultdict(list)
    for m in mirror_table():
        if m.function not in out[m.file]:
            out[m.file].append(m.function)
    return dict(sorted(out.items()))


def mirror_map(width: int = 100) -> str:
    """``mirror_table()`` grouped by kernel file, function names wrapped to ``width``."""
    lines = []
    for file, funcs in mirrors_by_file().items():
        lines.append(f"{file} ({len(funcs)})")
        line = "   "
        for f in funcs:
            if len(line) + len(f) + 1 > width:
                lines.append(line.rstrip())
                line = "   "
            line += " " + f
        lines.append(line.rstrip())
    return "\n".join(lines)


VOCABULARY: tuple[tuple[str, str], ...] = (
    ("gva", "guest virtual address: what the guest task touched (CR2 of an ordinary #PF)"),
    ("gpa / gfn", "guest physical address / its frame number (gpa >> 12); KVM's EPT maps gfn -> pfn"),
    ("hva", "host virtual address in the VMM (qemu) process backing a gfn: memslot base + offset"),
    ("pfn", "host physical frame; gfn_to_pfn finds it by faulting the hva in, like any user page"),
    ("memslot", "a range of gfns backed by a range of hvas (struct kvm_memory_slot)"),
    ("spte", "KVM's EPT entry gfn -> pfn; the MMU notifier clears it when the host unmaps the page"),
    ("token", "(id << 12) | vcpu_id, in CR2 with both events: it pairs page-ready with not-present"),
    ("reason", "the u32 KVM writes into the shared area: 1 = page not present, 2 = page ready"),
    ("broadcast token", "0xffffffff in a page-ready: wake every task waiting for an APF (legacy)"),
    ("sleeper", "a guest task parked on a token (kvm_task_sleep_node in the guest's hash)"),
    ("dummy node", "a sleeper entry made when page-ready beats not-present, so the wait returns at once"),
    ("APF halt", "KVM_REQ_APF_HALT: a non-PV guest (or a repeated fault) halts the vcpu until the page is in"),
    ("work item", "struct kvm_async_pf: one outstanding fault handed to a worker thread"),
)


def actors_table(m: Machine | None = None) -> str:
    """The actors of an async PF and the object that plays each in a host-only machine."""
    m = m or small_machine("legacy")
    v = m.vcpus[0]
    rows = [
        ("guest task", "touches the page; parked or not", "a stand-in Script (asyncpf.standin)"),
        ("guest kernel", "registers the area, parks/wakes tasks",
         f"{type(v.guest).__name__}, a stand-in (the guest kernel model: asyncpf.guest, notebook 05)"),
        ("vcpu thread", "runs the guest; takes the EPT violation", f"KvmVcpu {v.vcpu_id}: {v.comm}-{v.pid}"),
        ("KVM", "decides sync or async, injects events", f"Kvm (generation {m.gen.name})"),
        ("worker", "faults the page in (async_pf_execute)", f"Workqueue {m.workqueue.comm!r}"),
        ("host mm", "VMM memory in a memory cgroup, reclaim", f"HostMemory ({m.mm.limit_pages} pages allowed)"),
        ("swap device", "where evicted pages live", f"SwapDevice {m.config.swap_device}"),
    ]
    return text_table(("actor", "does", "played by"), rows)


def vocabulary() -> str:
    return text_table(("term", "meaning"), VOCABULARY)
