"""Helpers for notebook 03: which path gfn_to_pfn_async takes for each state of a gfn."""

from __future__ import annotations

from typing import Any

from .. import abi
from ..host import mmu
from ..host.kvm_main import BAD_PFN, FAULT_PFN, gfn_to_hva, kvm_release_pfn_clean
from ..machine import ERROR_GFN, MMIO_BASE_GFN, MMIO_HOST_PFN, Machine
from .common import G, enable_apf, make_resident, make_swapped, page_state, run_process, small_machine, text_table


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
    pfn, is_async = m.kvm.twins.gfn_to_pfn_async(m.kvm, gfn)
    mm_did = sorted(k for k, v in m.mm.stats.items() if v != stats0.get(k, 0))
    after = page_state(m, gfn) if gfn < m.guest_pages else "-"
    held = m.mm.total_page_refs  # the lookup's reference (the other reader of "swapin" holds none yet)
    kvm_release_pfn_clean(m.kvm, pfn)
    m.env.run()
    if reader is not None:
        m.mm.put_page(reader.value)
    m2, gfn2, _ = _prepare(generation, state)
    fault = run_process(m2, mmu.kvm_mmu_page_fault(m2.vcpus[0], gfn2 << abi.PAGE_SHIFT, 2))
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
