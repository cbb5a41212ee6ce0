"""Helpers for notebook 07: shortened ``bm`` runs, sweeps, and the ratios beside the published ones."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .. import bm
from .common import MiB, text_table


# --- 07: the benchmark ---------------------------------------------------------------------------

def short_params(seconds: float = 3, **changes: Any) -> bm.BmParams:
    """The published bm set-up (4 vcpus, 2 GiB, 512 MiB cgroup, -f 4 -w 4, 2010 disk), shortened."""
    return bm.BmParams(duration_ns=int(seconds * 1e9)).replace(**changes)


def ratio_table(runs: dict[str, dict]) -> str:
    """Work per host and its ratio to unpatched, beside the published v7 and v4 figures."""
    ours = bm.ratios(runs)
    rows = []
    for host in bm.MODES:
        pub = [bm.PUBLISHED[k][host] for k in bm.PUBLISHED]
        rows.append((host, f"{runs[host]['work']:.3f}", f"{ours[host]:.3f}",
                     *("-" if p is None else f"{p:.3f}" for p in pub),
                     "-" if host not in bm.TARGET_RANGES else "%.2f-%.2f" % bm.TARGET_RANGES[host]))
    return text_table(("host", "work_cpu_s", "ratio", *(f"published {k}" for k in bm.PUBLISHED), "expected"),
                      rows, right=(1, 2, 3, 4))


SPLIT = ("guest", "stalled", "halted", "idle", "host")


def split_table(runs: dict[str, dict], vcpu: str = "0") -> str:
    """The time split of one vcpu (seconds) per host, and the work/fault threads' CPU."""
    rows = []
    for host, r in runs.items():
        t = r["vcpu_time_s"][vcpu]
        rows.append((host, *(f"{t[k]:.3f}" for k in SPLIT), f"{r['work']:.3f}", f"{r['fault_thread_cpu']:.4f}",
                     r["async_pf_sent"], r["swapins"]))
    return text_table(("host", *(f"{k}_s" for k in SPLIT), "work_s", "fault_cpu_s", "apf_sent", "swapins"), rows,
                      right=range(1, 10))


def sweep(values: Sequence[Any], make: Callable[[Any], bm.BmParams], jobs: int = 2) -> list[dict[str, Any]]:
    """run_three for each value; rows of the value and the halt and PV ratios."""
    out = []
    for v in values:
        runs = bm.run_three(make(v), jobs=jobs)
        r = bm.ratios(runs)
        out.append({"value": v, "halt": r["halt"], "pv": r["pv"], "apf_sent": runs["pv"]["async_pf_sent"],
                    "swapins": runs["pv"]["swapins"]})
    return out


TINY = bm.BmParams(vcpus=1, guest_mem=64 * MiB, host_limit=16 * MiB, array=32 * MiB, fault_threads=1,
                   work_threads=1, duration_ns=100_000_000)


def tiny_bm(fault_threads: int = 1, work_threads: int = 1, swap_latency_us: int | None = None) -> dict[str, Any]:
    """A tiny bm (1 vcpu, 32 MiB array, 0.1 s) on the three hosts, in this process: the ratios."""
    p = TINY.replace(fault_threads=fault_threads, work_threads=work_threads,
                     swap_latency_ns=None if swap_latency_us is None else swap_latency_us * 1000)
    runs = bm.run_three(p, jobs=1)
    r = bm.ratios(runs)
    return {"fault_threads": fault_threads, "work_threads": work_threads, "swap_latency_us": swap_latency_us,
            "work": {h: runs[h]["work"] for h in runs}, "halt": r["halt"], "pv": r["pv"]}


def tiny_text(r: dict[str, Any]) -> str:
    lat = "device default" if r["swap_latency_us"] is None else f"{r['swap_latency_us']} us"
    return (f"-f {r['fault_threads']} -w {r['work_threads']}, swap read {lat}: "
            f"halt/unpatched {r['halt']:.2f}, PV/unpatched {r['pv']:.2f}")


# The published set-up run for the full 60 s on the three hosts (``run_three(BmParams(), jobs=2)``, seed 0;
# ``python -m asyncpf bm --json`` prints the same).  It takes about 14 s on a 2-core machine, too long for a
# notebook that must run in seconds, so 07 compares its short run against these stored ratios.
FULL_RUN_60S = {"unpatched": 1.0, "halt": 1.0003, "pv": 2.0006}  # checked by tests/test_bm.py

SWEEP_BASE = bm.BmParams(guest_mem=128 * MiB, host_limit=32 * MiB, array=64 * MiB, duration_ns=1_000_000_000)
"""bm scaled down for sweeps: 4 vcpus, -f 4 -w 4, half of a 64 MiB array on swap, 1 s (the build is the cost)."""
