"""Small helpers the notebooks use: text tables, scenario set-ups, summaries.

Simulation glue, not kernel twins (no ``kvm_``/``apf_`` names).  Every helper
builds its own seeded machine, returns plain values (ints, strings, dicts)
and prints nothing, so a notebook cell shows short stable text and asserts on
the values.  Page-state set-ups follow ``tests/conftest.py``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Iterable, Sequence

from . import abi
from .host import async_pf, mmu, x86
from .host.kvm_main import BAD_PFN, FAULT_PFN, SPTE_NONE, gfn_to_hva, gfn_to_pfn_async, kvm_release_pfn_clean
from .host.mm import PageState
from .host.vcpu import Stop, WrMsr
from .machine import ERROR_GFN, MMIO_BASE_GFN, MMIO_HOST_PFN, HostConfig, Machine
from .mirrors import mirror_table
from .standin import APF_AREA_GPA, Script, ScriptedGuest

MiB = 1 << 20
G = 40  # the guest frame most scenarios fault on


# --- text tables --------------------------------------------------------------------------

def text_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A fixed-width table; columns whose index is in ``right`` are right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- 00: the map and the vocabulary ---------------------------------------------------------

NOTEBOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "00_overview": ("what async PF is for, the actors, this map", ()),
    "01_the_problem": ("a synchronous host fault stalls the whole vcpu",
                       ("virt/kvm/kvm_main.c", "arch/x86/kvm/mmu.c", "mm/memory.c")),
    "02_pv_abi": ("CPUID bit, MSR_KVM_ASYNC_PF_EN, the shared area, tokens",
                  ("arch/x86/kvm/x86.c", "arch/x86/include/asm/kvm_para.h")),
    "03_gfn_to_pfn_async": ("which lookups may go async", ("virt/kvm/kvm_main.c", "arch/x86/kvm/mmu.c")),
    "04_host_async_work": ("work items, the worker, done list, limit, gfn hash, clearing",
                           ("virt/kvm/async_pf.c", "arch/x86/kvm/x86.c")),
    "05_guest_side": ("the PV guest: sleepers, dummy nodes, wake-all (coming)", ("arch/x86/kernel/kvm.c",)),
    "06_end_to_end": ("guest and host together (coming)", ("arch/x86/kernel/kvm.c", "virt/kvm/async_pf.c")),
    "07_benchmark": ("the bm benchmark of the 2010 series (coming)", ()),
    "08_mmu_notifiers": ("reclaim invalidates KVM's mapping; the fault path retries",
                         ("virt/kvm/kvm_main.c", "include/linux/kvm_host.h", "mm/rmap.c")),
    "09_invariants": ("what must always hold (coming)", ()),
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
        ("guest kernel", "registers the area, parks/wakes tasks", f"{type(v.guest).__name__} (asyncpf.guest: coming)"),
        ("vcpu thread", "runs the guest; takes the EPT violation", f"KvmVcpu {v.vcpu_id}: {v.comm}-{v.pid}"),
        ("KVM", "decides sync or async, injects events", f"Kvm (generation {m.gen.name})"),
        ("worker", "faults the page in (async_pf_execute)", f"Workqueue {m.workqueue.comm!r}"),
        ("host mm", "VMM memory in a memory cgroup, reclaim", f"HostMemory ({m.mm.limit_pages} pages allowed)"),
        ("swap device", "where evicted pages live", f"SwapDevice {m.config.swap_device}"),
    ]
    return text_table(("actor", "does", "played by"), rows)


def vocabulary() -> str:
    return text_table(("term", "meaning"), VOCABULARY)


# --- 01: touching swapped-out pages -------------------------------------------------------------

MODES = {"unpatched": (False, False), "halt": (True, False), "pv": (True, True)}


def touch_run(mode: str = "unpatched", *, swap_device: str = "hdd_7200_2010", swap_latency_ns: int | None = None,
              scripts: int = 2, steps: int = 10, compute_ns: int = 1_000_000, seed: int = 0) -> dict[str, Any]:
    """One vcpu running ``scripts`` x ``steps`` touches of a 4 MiB buffer in a 1 MiB cgroup.

    Returns the per-vcpu time split in ns, the swap-ins, the device's mean
    4 KiB read and the leak check after shutdown.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
    async_on, pv = MODES[mode]
    cfg = HostConfig(async_pf=async_on, vcpus=1, guest_mem=8 * MiB, host_limit=1 * MiB, swap_device=swap_device,
                     swap_latency_ns=swap_latency_ns, seed=seed)
    first, npages = 256, 1024
    rng = random.Random(seed)
    plans = [Script(f"s{k}", [(first + rng.randrange(npages), compute_ns) for _ in range(steps)])
             for k in range(scripts)]
    m = Machine(cfg, lambda i: ScriptedGuest(plans, pv=pv)).prefault(first, npages)
    swapins_before = m.mm.stats["swapins"]
    m.start().run()
    finish = max(s.finished_at or 0 for s in plans) - m.started_at
    m.shutdown()
    acct = m.account()[0]
    return {"mode": mode, "device": swap_device, "mean_read_ns": int(m.swap.mean_service_ns("read", 1)),
            "swapins": m.mm.stats["swapins"] - swapins_before, "finish_ns": finish, **acct,
            "leaks": m.leaks()}


def one_sync_fault(swap_device: str = "hdd_7200_2010", seed: int = 1) -> dict[str, Any]:
    """The unpatched host: one EPT violation on a swapped-out gfn, handled by tdp_page_fault -> gfn_to_pfn."""
    m = small_machine("legacy", async_pf=False, swap_device=swap_device, seed=seed)
    make_swapped(m, G)
    vcpu, before, t0 = m.vcpus[0], page_state(m, G), m.env.now
    vcpu._acct_since = t0  # account from the fault on, as Machine.start does
    result = run_process(m, mmu.tdp_page_fault(vcpu, G << abi.PAGE_SHIFT, 2))
    vcpu.account("host")
    return {"device": swap_device, "page_before": before, "result": result, "page_after": page_state(m, G),
            "elapsed_ns": m.env.now - t0, "stalled_ns": vcpu.acct["stalled"], "swapins": m.mm.stats["swapins"],
            "mean_read_ns": int(m.swap.mean_service_ns("read", 1)), "async_events": len(m.tracer.events)}


def latency_sweep(latencies_ns: Sequence[int], mode: str = "unpatched", swap_device: str = "nvme_gen4") -> list[dict]:
    """:func:`touch_run` once per mean read latency (the device's timing scaled to each)."""
    return [touch_run(mode, swap_device=swap_device, swap_latency_ns=lat) for lat in latencies_ns]


def account_table(runs: Iterable[dict[str, Any]], key: str = "device") -> str:
    """Rows of :func:`touch_run` results, times in ms."""
    cols = ("guest", "host", "stalled", "halted", "idle")
    rows = [(r[key], f"{r['mean_read_ns'] / 1000:.1f}", r["swapins"], *(f"{r[c] / 1e6:.2f}" for c in cols),
             f"{r['finish_ns'] / 1e6:.2f}") for r in runs]
    return text_table((key, "read_us", "swapins", *(c + "_ms" for c in cols), "finish_ms"), rows,
                      right=range(1, 9))


# --- 02: the PV ABI -----------------------------------------------------------------------------

def area_layout(gen: str | abi.Generation) -> str:
    """Field, byte offset and size of the shared area, found by packing each field on its own."""
    g = abi.generation(gen, modelled=False)
    rows = []
    for f in g.area_fields:
        raw = abi.pack_area(g, **{f: abi.U32})
        at = [i for i, b in enumerate(raw) if b]
        rows.append((f, at[0], len(at), "host" if at[0] < g.host_writes_bytes else "guest"))
    return text_table(("field", "offset", "bytes", "written by"), rows, right=(1, 2)) + f"\n(total {g.area_size} bytes)"


def msr_layout(gen: str | abi.Generation) -> str:
    """The bits of MSR_KVM_ASYNC_PF_EN in ``gen``: flags, reserved, the area gpa."""
    g = abi.generation(gen, modelled=False)
    rows = [(f"{g.msr_flag(n).bit_length() - 1}", n) for n in g.msr_flag_bits]
    rows += [(str(b), "reserved: a write with it set gets #GP") for b in range(6) if g.msr_reserved_mask >> b & 1]
    rows.append(("63:6", "gpa of the 64-byte aligned kvm_vcpu_pv_apf_data"))
    return f"MSR {g.msr_async_pf_en:#x} ({g.name})\n" + text_table(("bit", "meaning"), rows)


class MsrGuest:
    """A guest that executes a list of WRMSRs, recording results, exceptions and the APF state."""

    def __init__(self, writes: Sequence[tuple[int, int]]):
        self.ops = [WrMsr(msr, data) for msr, data in writes]
        self.results: list[int] = []
        self.exceptions: list[tuple[int, int, int]] = []  # (after write #, vector, cr2)
        self.states: list[tuple] = []                     # APF state before each write, and at the end

    def next_op(self, vcpu):
        self.states.append(apf_state(vcpu))
        return self.ops.pop(0) if self.ops else Stop()

    def op_done(self, vcpu, op, result):
        self.results.append(result)

    def op_progress(self, vcpu, op, ran_ns):
        pass

    def deliver_exception(self, vcpu, nr, error_code):
        self.exceptions.append((len(self.results), nr, vcpu.arch.cr2))

    def deliver_interrupt(self, vcpu, vector):
        pass

    def delivery_gfn(self, vcpu):
        return None


def apf_state(vcpu) -> tuple[int, int, bool]:
    """What an MSR write may change: (msr_val, area gpa, send_user_only)."""
    apf = vcpu.arch.apf
    return apf.msr_val, apf.data.gpa, apf.send_user_only


def enable_value(gen: str, vcpu_id: int = 0) -> int:
    """The MSR value a guest writes to register its area (SEND_ALWAYS where it exists)."""
    g = abi.generation(gen)
    flags = abi.KVM_ASYNC_PF_ENABLED
    if "KVM_ASYNC_PF_SEND_ALWAYS" in g.msr_flag_bits:
        flags |= abi.KVM_ASYNC_PF_SEND_ALWAYS
    return (APF_AREA_GPA + 64 * vcpu_id) | flags


def msr_write(gen: str, data: int, msr: int | None = None) -> dict[str, Any]:
    """Register the area properly, then write ``data`` to ``msr`` (default: the generation's MSR).

    Returns the second write's result, the exceptions it caused and the APF
    state just before and after it.
    """
    g = abi.generation(gen)
    msr = g.msr_async_pf_en if msr is None else msr
    guest = MsrGuest([(g.msr_async_pf_en, enable_value(gen)), (msr, data)])
    m = Machine(HostConfig(generation=gen, guest_mem=4 * MiB, host_limit=1 * MiB, seed=0), lambda i: guest)
    m.start().run()
    m.shutdown()
    exc = [EXC_NAMES.get(nr, str(nr)) for after, nr, _ in guest.exceptions if after == 2]
    return {"result": guest.results[1], "exceptions": exc, "before": guest.states[1], "after": guest.states[-1],
            "trace": [ln.split(": ", 1)[1] for ln in m.tracer.text().splitlines() if "kvm_msr" in ln][-1],
            "leaks": m.leaks()}


EXC_NAMES = x86.EXCEPTION_NAMES


def msr_refusals(gen: str) -> list[tuple[str, int, int]]:
    """(why, msr, data) of writes the ``gen`` host must refuse."""
    g = abi.generation(gen)
    other = abi.LEGACY if g.name == "seed" else abi.SEED
    good = enable_value(gen)
    cases = [(f"reserved bit {b}", g.msr_async_pf_en, good | 1 << b) for b in range(6) if g.msr_reserved_mask >> b & 1]
    cases += [("area gpa beyond guest RAM", g.msr_async_pf_en, (4 * MiB) | abi.KVM_ASYNC_PF_ENABLED),
              ("area gpa in no memslot", g.msr_async_pf_en, (ERROR_GFN << abi.PAGE_SHIFT) | abi.KVM_ASYNC_PF_ENABLED),
              (f"the {other.name} generation's MSR number", other.msr_async_pf_en, good)]
    return cases


def refusal_table(gen: str) -> tuple[str, list[dict[str, Any]]]:
    """Every refusal of :func:`msr_refusals` run through :func:`msr_write`: a table and the raw results."""
    results, rows = [], []
    for why, msr, data in msr_refusals(gen):
        r = msr_write(gen, data, msr)
        results.append(r)
        rows.append((why, f"{msr:#x}", f"{data:#x}", "#GP" if r["result"] else "ok", ", ".join(r["exceptions"]),
                     "yes" if r["before"] == r["after"] else "NO"))
    return text_table(("write", "msr", "value", "host", "guest got", "state unchanged"), rows), results


# --- small machines and page states (as tests/conftest.py) ----------------------------------

def small_machine(generation: str = "legacy", **kw: Any) -> Machine:
    """A 4 MiB guest in a 1 MiB cgroup on an NVMe swap device; vcpus run an empty stand-in guest."""
    base = dict(generation=generation, guest_mem=4 * MiB, host_limit=1 * MiB, swap_device="nvme_gen4", seed=1)
    base.update(kw)
    return Machine(HostConfig(**base), lambda i: ScriptedGuest([]))


def make_resident(m: Machine, *gfns: int) -> None:
    for g in gfns:
        m.mm.put_page(m.mm.get_user_pages_nowait(gfn_to_hva(m.kvm, g), True))


def make_swapped(m: Machine, *gfns: int) -> None:
    """Touch ``gfns``, evict them, let the write-back land (they must be the only resident pages)."""
    make_resident(m, *gfns)
    if m.mm.reclaim(len(gfns)) != len(gfns):
        raise ValueError(f"could not evict {gfns}: other pages are resident")
    m.env.run()


def page_state(m: Machine, gfn: int) -> str:
    return PageState(m.mm.page_state(gfn_to_hva(m.kvm, gfn))).name


def run_process(m: Machine, gen: Any, until_ns: int | None = None) -> Any:
    """Run generator ``gen`` as an engine process (to quiescence, or ``until_ns`` later); its value."""
    p = m.env.process(gen, "notebook")
    m.env.run(None if until_ns is None else m.env.now + until_ns)
    return p.value if not p.is_alive else None


def enable_apf(m: Machine, vcpu: Any = None) -> None:
    """Register the area with SEND_ALWAYS and let the guest take the wake-all page-ready."""
    vcpu = vcpu or m.vcpus[0]
    if run_process(m, x86.kvm_pv_enable_async_pf(vcpu, enable_value(m.gen.name, vcpu.vcpu_id))):
        raise ValueError("the MSR write was refused")
    run_process(m, async_pf.kvm_check_async_pf_completion(vcpu))
    vcpu.arch.exception.pending = False


# --- 03: gfn_to_pfn_async paths ----------------------------------------------------------------

GFN_STATES = ("resident", "first_touch", "swapcache", "swapped", "swapin", "mmio", "error")


def _prepare(generation: str, state: str) -> tuple[Machine, int, Any]:
    m = small_machine(generation)
    if generation == "seed":
        enable_apf(m)
    gfn, reader = G, None
    if state == "resident":
        make_resident(m, gfn)
    elif state == "swapcache":
        make_resident(m, gfn)
        m.mm.reclaim(1)  # dirty: the write-back is still in flight, the page sits in the swap cache
    elif state in ("swapped", "swapin"):
        make_swapped(m, gfn)
        if state == "swapin":  # another thread is already reading it back
            reader = m.env.process(m.mm.get_user_pages(gfn_to_hva(m.kvm, gfn), True), "other")
            m.env.run(m.env.now + 1)
    elif state == "mmio":
        gfn = MMIO_BASE_GFN + 5
    elif state == "error":
        gfn = ERROR_GFN
    elif state != "first_touch":
        raise ValueError(f"unknown gfn state {state!r}; expected one of {GFN_STATES}")
    return m, gfn, reader


def pfn_name(pfn: int) -> str:
    if pfn == BAD_PFN:
        return "bad_pfn"
    if pfn == FAULT_PFN:
        return "fault_pfn"
    if MMIO_HOST_PFN <= pfn < MMIO_HOST_PFN + 0x1000:
        return f"mmio {pfn:#x}"
    return "ram page"


def gfn_path(state: str, generation: str = "legacy") -> dict[str, Any]:
    """Put a gfn in ``state``; what gfn_to_pfn_async answers, what the mm did, and the fault's trace."""
    m, gfn, reader = _prepare(generation, state)
    stats0 = dict(m.mm.stats)
    before = page_state(m, gfn) if gfn < m.guest_pages else "-"
    pfn, is_async = gfn_to_pfn_async(m.kvm, gfn)
    mm_did = sorted(k for k, v in m.mm.stats.items() if v != stats0.get(k, 0))
    after = page_state(m, gfn) if gfn < m.guest_pages else "-"
    held = m.mm.total_page_refs  # the lookup's reference (the other reader of "swapin" holds none yet)
    kvm_release_pfn_clean(m.kvm, pfn)
    m.env.run()
    if reader is not None:
        m.mm.put_page(reader.value)
    m2, gfn2, _ = _prepare(generation, state)
    fault = run_process(m2, mmu.tdp_page_fault(m2.vcpus[0], gfn2 << abi.PAGE_SHIFT, 2))
    lines = [ln.split(": ", 1)[1] for ln in m2.tracer.text().splitlines() if "kvm_try_async_get_page" in ln]
    return {"state": state, "generation": generation, "gfn": gfn, "page_before": before, "page_after": after,
            "pfn": pfn_name(pfn), "async": is_async, "mm": mm_did, "refs_held": held,
            "refs_left": m.mm.total_page_refs, "fault": fault, "trace": lines}


def path_text(r: dict[str, Any]) -> str:
    """One :func:`gfn_path` result in two lines."""
    return (f"{r['generation']}: gfn {r['gfn']:#x} ({r['page_before']}) -> {r['pfn']}, "
            f"{'async' if r['async'] else 'answered now'}; mm: {', '.join(r['mm']) or 'nothing'}; "
            f"tdp fault: {r['fault']}\ntraced: {'; '.join(r['trace']) or 'nothing'}")


def gfn_paths_table(generation: str = "legacy") -> str:
    rows = []
    for s in GFN_STATES:
        r = gfn_path(s, generation)
        rows.append((s, r["page_before"], r["pfn"], "async" if r["async"] else "now", ",".join(r["mm"]) or "-",
                     r["fault"], "; ".join(r["trace"]) or "-"))
    return text_table(("gfn state", "page", "pfn", "answer", "mm counters moved", "tdp fault", "traced"), rows)


# --- 04: host async work -----------------------------------------------------------------------

def apf_machine(generation: str = "legacy", **kw: Any) -> Machine:
    """A small machine whose vcpu 0 (every vcpu) registered its area and took the wake-all."""
    m = small_machine(generation, **kw)
    for v in m.vcpus:
        enable_apf(m, v)
    return m


def start_async(m: Machine, *gfns: int, vcpu: Any = None) -> list[bool]:
    """kvm_arch_setup_async_pf for each gfn (the guest takes each not-present at once)."""
    vcpu = vcpu or m.vcpus[0]
    out = []
    for g in gfns:
        out.append(x86.kvm_arch_setup_async_pf(vcpu, g << abi.PAGE_SHIFT, g))
        vcpu.arch.exception.pending = False
    return out


def refs(m: Machine) -> dict[str, int]:
    """The references an outstanding work item holds, and the item counts."""
    k = m.kvm
    v = m.vcpus[0].async_pf
    return {"allocated": k.stat.async_pf_allocated, "freed": k.stat.async_pf_freed, "kvm_users": k.users_count,
            "mm_refs": k.stat.mm_count, "page_refs": m.mm.total_page_refs, "queue": len(v.queue),
            "done": len(v.done), "queued": v.queued}


def work_timeline(m: Machine) -> list[dict[str, int]]:
    """Per work item of a legacy trace: token, gfn, and the times of not-present, completed and page-ready."""
    out = []
    for np_ev in m.tracer.of("kvm_async_pf_not_present"):
        token, gva = np_ev.args[0], np_ev.args[1]
        done = next(ev.t_ns for ev in m.tracer.of("kvm_async_pf_completed") if ev.args[2] == gva and ev.t_ns >= np_ev.t_ns)
        ready = next(ev.t_ns for ev in m.tracer.of("kvm_async_pf_ready")
                     if ev.args[0] == token and ev.args[1] == gva and ev.t_ns >= done)
        out.append({"token": token, "gfn": gva >> abi.PAGE_SHIFT, "not_present": np_ev.t_ns, "completed": done,
                    "ready": ready})
    return out


def pv_run(scripts: int = 3, steps: int = 2, compute_ns: int = 1_000_000, seed: int = 2) -> Machine:
    """A legacy host, one PV stand-in vcpu, NVMe swap, every touch a swapped-out page; run to the end."""
    first = 256
    plans = [Script(f"s{k}", [(first + 16 * (steps * k + i), compute_ns) for i in range(steps)]) for k in range(scripts)]
    cfg = HostConfig(guest_mem=4 * MiB, host_limit=1 * MiB, swap_device="nvme_gen4", seed=seed)
    m = Machine(cfg, lambda i: ScriptedGuest(plans, pv=True))
    m.prefault(first, 512)  # the first 256 pages are written out to swap
    m.start().run()
    m.shutdown()
    return m


def sync_fallback() -> dict[str, Any]:
    """64 async PFs outstanding on vcpu 0, then a fault on another swapped-out gfn."""
    m = apf_machine("legacy")
    start_async(m, *range(100, 164))
    make_swapped(m, 300)  # the workers ran meanwhile; their pages wait on done, unconsumed
    vcpu = m.vcpus[0]
    vcpu._acct_since, t0 = m.env.now, m.env.now
    result = run_process(m, mmu.tdp_page_fault(vcpu, 300 << abi.PAGE_SHIFT, 2))
    vcpu.account("host")
    out = {"queued": vcpu.async_pf.queued, "result": result, "elapsed_ns": m.env.now - t0,
           "stalled_ns": vcpu.acct["stalled"], "limit_hits": vcpu.stat["async_pf_limit_hits"],
           "allocated": m.kvm.stat.async_pf_allocated}
    m.shutdown()
    out["leaks"] = m.leaks()
    return out


def repeated_fault() -> dict[str, Any]:
    """Two EPT violations on the same swapped-out gfn before its page is back (a non-PV guest retrying)."""
    m = small_machine("legacy")
    make_swapped(m, G)
    vcpu = m.vcpus[0]
    first = run_process(m, mmu.tdp_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), until_ns=1)
    req_after_first = bool(vcpu.requests & x86.KVM_REQ_APF_HALT)
    second = run_process(m, mmu.tdp_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), until_ns=1)
    out = {"first": first, "second": second, "halt_requested_after_first": req_after_first,
           "halt_requested": bool(vcpu.requests & x86.KVM_REQ_APF_HALT), "allocated": m.kvm.stat.async_pf_allocated,
           "in_hash": x86.kvm_find_async_pf_gfn(vcpu, G),
           "trace": [ln.split(": ", 1)[1] for ln in m.tracer.text().splitlines() if "kvm_async_pf" in ln
                     or "kvm_try_async" in ln]}
    m.shutdown()
    out["leaks"] = m.leaks()
    return out


def clear_scenario(how: str = "msr_disable") -> dict[str, Any]:
    """One worker shared by two vcpus: vcpu 0's gfn 40 runs, vcpu 1's 42 and vcpu 0's 41 wait, in that order;
    then vcpu 0 disables APF (or is reset).  As ``tests/test_async_pf.py`` sets it up."""
    if how not in ("msr_disable", "reset"):
        raise ValueError(f"unknown clear {how!r}; expected 'msr_disable' or 'reset'")
    m = apf_machine("legacy", workers=1, vcpus=2)
    v0, v1 = m.vcpus
    make_swapped(m, 40, 41, 42)
    start_async(m, 40, vcpu=v0)
    start_async(m, 42, vcpu=v1)
    start_async(m, 41, vcpu=v0)
    m.env.run(m.env.now + 1000)
    running, pending = v0.async_pf.queue

    def snap() -> dict[str, Any]:
        a = v0.async_pf
        return {"items": (running.state, pending.state), "queue": len(a.queue), "done": len(a.done),
                "queued": a.queued, "kvm_users": m.kvm.users_count, "mm_refs": m.kvm.stat.mm_count}

    before = snap()
    if how == "msr_disable":
        run_process(m, x86.kvm_set_msr_common(v0, m.gen.msr_async_pf_en, 0))
    else:
        run_process(m, x86.kvm_arch_vcpu_reset(v0))
    after = snap()
    ready0 = m.tracer.count("kvm_async_pf_ready")
    for _ in range(2):
        run_process(m, async_pf.kvm_check_async_pf_completion(v0))
    out = {"how": how, "before": before, "after": after, "running_waited": running.finished.triggered,
           "pending_ran": pending.finished.triggered,
           "completed": [ev.args[2] >> abi.PAGE_SHIFT for ev in m.tracer.of("kvm_async_pf_completed")],
           "ready_after_clear": m.tracer.count("kvm_async_pf_ready") - ready0,
           "vcpu1_done": [w.arch.gfn for w in v1.async_pf.done], "hash_empty": not hash_slots(m, v0),
           "msr_val": v0.arch.apf.msr_val}
    m.shutdown()
    out["leaks"] = m.leaks()
    return out


def hash_slots(m: Machine, vcpu: Any = None) -> dict[int, int]:
    """Occupied slots of the vcpu's gfn hash: slot -> gfn."""
    gfns = (vcpu or m.vcpus[0]).arch.apf.gfns
    return {i: int(g) for i, g in enumerate(gfns) if g != x86.GFN_SLOT_EMPTY}


def colliding_gfns(home: int, n: int) -> list[int]:
    """The first ``n`` gfns (from 1) whose hash home is slot ``home``."""
    out, g = [], 1
    while len(out) < n:
        if x86.kvm_async_pf_hash_fn(g) == home:
            out.append(g)
        g += 1
    return out


def limit_probe(n: int, generation: str = "legacy") -> dict[str, int]:
    """Start ``n`` async faults on one vcpu: how many went async, how many must be synchronous."""
    m = apf_machine(generation)
    ok = start_async(m, *range(100, 100 + n))
    return {"faults": n, "async": sum(ok), "sync": n - sum(ok),
            "limit_hits": m.vcpus[0].stat["async_pf_limit_hits"]}


# --- 08: MMU notifiers ------------------------------------------------------------------------

class NotifierSpy:
    """An MMU notifier registered after KVM's: records what KVM's state is at each call."""

    def __init__(self, m: Machine, gfn: int):
        self.m, self.gfn, self.seen = m, gfn, []

    def _kvm(self) -> tuple[int, int, bool]:
        k = self.m.kvm
        return k.mmu_notifier_seq, k.mmu_notifier_count, int(k.spte_pfn[self.gfn]) != SPTE_NONE

    def invalidate_page(self, mm, hva):
        self.seen.append(("invalidate_page", *self._kvm()))

    def invalidate_range_start(self, mm, start, end):
        self.seen.append(("invalidate_range_start", *self._kvm()))

    def invalidate_range_end(self, mm, start, end):
        self.seen.append(("invalidate_range_end", *self._kvm()))


def spy(m: Machine, gfn: int = G) -> NotifierSpy:
    s = NotifierSpy(m, gfn)
    m.mm.mmu_notifier_register(s)
    return s


def kvm_view(m: Machine, gfn: int = G) -> dict[str, Any]:
    """KVM's view of ``gfn``: spte mapped?, the notifier counters, the host page state."""
    k = m.kvm
    return {"spte_mapped": int(k.spte_pfn[gfn]) != SPTE_NONE, "mmu_notifier_seq": k.mmu_notifier_seq,
            "mmu_notifier_count": k.mmu_notifier_count, "page": page_state(m, gfn)}


RACES = ("none", "reclaim_other", "zap_same")


def notifier_race(race: str = "none") -> dict[str, Any]:
    """A tdp_page_fault on a resident gfn; with a race, an invalidation runs at its interleaving point.

    ``reclaim_other`` evicts another page (the faulting one is pinned by its
    GUP reference); ``zap_same`` is MADV_DONTNEED of the faulting page.
    Either bumps ``mmu_notifier_seq`` between the fault's snapshot and its
    ``mmu_notifier_retry`` check.
    """
    if race not in RACES:
        raise ValueError(f"unknown race {race!r}; expected one of {RACES}")
    m = small_machine("legacy")
    make_resident(m, G, G + 1)
    vcpu = m.vcpus[0]
    seq0 = m.kvm.mmu_notifier_seq
    p = m.env.process(mmu.tdp_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), "fault")
    if race == "reclaim_other":
        m.env.schedule(0, lambda _a: m.mm.reclaim(1))
    elif race == "zap_same":
        m.env.schedule(0, lambda _a: m.mm.zap_range(gfn_to_hva(m.kvm, G), 1))
    m.env.run()
    out = {"race": race, "fault": p.value, "seq_moved": m.kvm.mmu_notifier_seq - seq0,
           "retries": vcpu.stat["mmu_notifier_retries"], **kvm_view(m), "page_refs": m.mm.total_page_refs,
           "mm_check": m.mm.check()}
    # the guest retries the access: the second fault maps whatever page the host has now
    out["refault"] = run_process(m, mmu.tdp_page_fault(vcpu, G << abi.PAGE_SHIFT, 2))
    pfn, _ = gfn_to_pfn_async(m.kvm, G)
    out["refault_maps_current_page"] = int(m.kvm.spte_pfn[G]) == pfn
    kvm_release_pfn_clean(m.kvm, pfn)
    out["page_refs_end"] = m.mm.total_page_refs
    return out
