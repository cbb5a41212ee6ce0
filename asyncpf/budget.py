"""How much simulation a run asks for, estimated before it starts, so no command starts a run that cannot finish.

The estimate counts engine events, the unit of the simulator's cost (30,000
to 80,000 per second of wall time for a bm host on the project's machines).
It is an upper bound built from what drives events in ``bm``: guest ticks,
the work threads' 1 ms chunks, the fault threads' touches (at most one per
``touch_ns`` of the CPU share they get) and their faults (at most one per
swap read, and for the PV guest one per tick), each fault costing a few tens
of events; the set-up (touching the array under the cgroup limit) counts as
the events its time would hold.
A run estimated above :data:`MAX_EVENTS` per host is refused with the longest
duration that fits.
"""

from __future__ import annotations

from .bm import BmParams
from .guest.kernel import load_guest_params
from .host.swap import SwapDevice
from .sim import Environment

MAX_EVENTS = 100_000_000    # per host run: under an hour of wall time even where the estimate is exact
MAX_TRACED_EVENTS = 20_000_000  # a run that keeps its whole trace (~300 bytes an event): a few GB at most
EVENTS_PER_S = 30_000       # the slowest rate measured: set-up seconds count as this many events each
TICK_EVENTS = 7             # timer, interrupt delivery, the sleep it cuts short, entry, the tick, a wake or switch,
#                             the rest of a work chunk it cut
BOOT_EVENTS = 2_000         # building and booting the guest, and draining it after stop ...
BOOT_EVENTS_PER_VCPU = 100  # ... measured 4,300 events with 4 vcpus, 6,200 with 64
SETUP_NS_PER_PAGE_ROUND = 10  # prefault: ~5.5 ns per guest page per limit's worth of array (measured), with margin
WORK_CHUNK_NS = 1_000_000   # a work thread's step (asyncpf.workloads.work_thread)
FAULT_EVENTS = 15           # exit, host fault, swap read, reclaim, wake-up, entry
PV_FAULT_EVENTS = 45        # in addition for the PV guest: not-present, sleep, switch, page-ready, wake-up


def mean_read_ns(device: str, latency_ns: int | None) -> float:
    return SwapDevice(Environment(0), device, mean_read_ns=latency_ns).mean_service_ns("read")


def transfer_ns(device: str) -> float:
    """The 4 KiB transfer time of ``device``: a mean read cannot be scaled below it."""
    return SwapDevice(Environment(0), device).models["read"].transfer_ns_per_page


def bm_events_per_s(p: BmParams) -> float:
    """Upper estimate of the engine events one bm host needs per simulated second."""
    g = load_guest_params()
    hz, touch = g["hz"], g["touch_ns"]
    read = mean_read_ns(p.swap_device, p.swap_latency_ns)
    swapped = max(0.0, 1 - p.host_limit / p.array)  # share of the array outside the cgroup after prefault
    rate = p.vcpus * hz * TICK_EVENTS + p.work_threads * 1e9 / WORK_CHUNK_NS
    for cpu in range(p.vcpus):  # bm spreads its threads round-robin, fault threads first
        f = len(range(cpu, p.fault_threads, p.vcpus))
        w = len(range((cpu - p.fault_threads) % p.vcpus, p.work_threads, p.vcpus))
        if not f:
            continue
        touches = min(f / (f + w) * 1e9 / touch, f * 1e9 / (touch + swapped * read))
        faults = swapped * touches
        rate += touches + faults * FAULT_EVENTS + min(faults, f * hz) * PV_FAULT_EVENTS
    return rate


def bm_setup_s(p: BmParams) -> float:
    """Upper estimate of the CPU seconds to build one bm host: touching the array once under the cgroup limit.

    Each time a limit's worth of the array is filled, reclaim scans arrays over the whole guest
    (``Reclaimer.fill_rounds``): measured 0.01 to 35 s, about 5.5 ns per guest page and round.
    """
    rounds = max(1.0, p.array / p.host_limit)
    return SETUP_NS_PER_PAGE_ROUND * (p.guest_mem >> 12) * rounds / 1e9


def bm_events(p: BmParams) -> float:
    """The run's events, and its set-up counted as the events the same time would hold."""
    return (bm_events_per_s(p) * p.duration_ns / 1e9 + BOOT_EVENTS + BOOT_EVENTS_PER_VCPU * p.vcpus
            + bm_setup_s(p) * EVENTS_PER_S)


def demo_events(vcpus: int, scripts: int, steps: int, compute_ns: int) -> float:
    """Upper estimate for one host of ``asyncpf demo``: every touch a swap-in, a vcpu's scripts one after another."""
    hz = load_guest_params()["hz"]
    read = mean_read_ns("hdd_7200_2010", None)
    # a vcpu's scripts one after another, or every vcpu's reads queued on the one disk, whichever is longer
    simulated_s = scripts * steps * max(compute_ns + read, vcpus * read) / 1e9
    return vcpus * (scripts * steps * (FAULT_EVENTS + PV_FAULT_EVENTS) + simulated_s * hz * TICK_EVENTS)
