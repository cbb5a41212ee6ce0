"""Helpers for notebook 01: a synchronous host fault stalls the whole vcpu (touch runs, one fault, sweeps)."""

from __future__ import annotations

import random
from typing import Any, Iterable, Sequence

from .. import abi
from ..host import mmu
from ..machine import HostConfig, Machine
from ..standin import Script, ScriptedGuest
from .common import G, MiB, make_swapped, page_state, run_process, small_machine, text_table


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
    vcpu.restart_account()  # account from the fault on, as Machine.start does
    result = run_process(m, mmu.kvm_mmu_page_fault(vcpu, G << abi.PAGE_SHIFT, 2))
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
