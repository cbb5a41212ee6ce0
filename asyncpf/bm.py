"""The seed's headline benchmark, ``bm``, on three hosts side by side.

Set-up of the v4 and v7 cover letters (v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com; v7 cover letter as quoted in Msg-Id 20101018153402.GA2067@amt.cnet): a guest with 4
vcpus and 2 GiB inside a 512 MiB host memory cgroup runs ``bm -f 4 -w 4 -t 60``
with its default 1 GiB array; a 2010 disk is the swap device.  Three hosts:

* ``unpatched`` -- no async PF: the vcpu thread sleeps in ``gfn_to_pfn``;
* ``halt`` -- async PF host, non-PV guest: the vcpu is halted during swap-in
  (interrupts still wake it);
* ``pv`` -- PV guest: the faulting task sleeps, another runs.

The result is the work threads' progress -- CPU seconds they obtained -- and
its ratio to the unpatched host, beside the published figures.
"""

from __future__ import annotations

import gc
import signal
from dataclasses import dataclass
from typing import Any, Callable

from . import abi, perfetto, speed
from .build import Booted, boot_guest
from .guest.kernel import GuestConfig, GuestKernel, load_guest_params
from .machine import PAGE_MULTIPLE, HostConfig, Machine, ram_layout
from .timeline import Recorder
from .validated import NONE_OR_POSITIVE, POSITIVE, ZERO_OR_POSITIVE, Validated, looked_up, setting
from .workloads import BM_INCREMENTS_PER_S, StopFlag, spawn_bm

GiB, MiB = 1 << 30, 1 << 20
MODES = {
    "unpatched": {"async_pf": False, "pv": False},
    "halt": {"async_pf": True, "pv": False},
    "pv": {"async_pf": True, "pv": True},
}
# Work relative to the unpatched host, as published (v4 cover letter, Msg-Id 1278433500-29884-1-git-send-email-gleb@redhat.com; v7 cover letter as quoted in Msg-Id 20101018153402.GA2067@amt.cnet).
PUBLISHED = {
    "v7 (10 runs)": {"unpatched": 1.0, "halt": 1.128, "pv": 1.909},
    "v4 (1 run)": {"unpatched": 1.0, "halt": None, "pv": 1.995},
}
TARGET_RANGES = {"halt": (1.03, 1.3), "pv": (1.7, 2.1)}
GUEST_RESERVED = 1024 << abi.PAGE_SHIFT  # guest memory the guest kernel keeps for itself; bm's array goes above


@dataclass(frozen=True)
class BmParams(Validated):
    """The benchmark's knobs; defaults are the published set-up."""

    vcpus: int = setting(4, POSITIVE)
    guest_mem: int = setting(2 * GiB, POSITIVE)
    host_limit: int = setting(512 * MiB, POSITIVE)
    fault_threads: int = setting(4, ZERO_OR_POSITIVE)
    work_threads: int = setting(4, ZERO_OR_POSITIVE)
    duration_ns: int = setting(60_000_000_000, POSITIVE)
    array: int = setting(1 * GiB, POSITIVE, PAGE_MULTIPLE)
    swap_device: str = "hdd_7200_2010"
    swap_latency_ns: int | None = None
    generation: str = setting("legacy", looked_up(abi.generation))
    seed: int = 0
    # hostsched: the host's CPUs (None = a CPU per host thread, free switches: the results before issue 13)
    host_cpus: int | None = setting(None, NONE_OR_POSITIVE)
    host_sched_costs: bool = True      # switch and load/put costs (data/host_sched.json) when host_cpus is set
    bound_workers: bool = True         # async PF work on the queuing CPU's kworker (2.6.38, 6.18)
    unstable_sched_clock: bool = False  # the guest's runqueue clock filtered by the tick window (guest/sched_clock.py)

    def check_together(self) -> None:
        if self.fault_threads + self.work_threads == 0:
            raise ValueError("fault_threads + work_threads is 0: bm needs at least one thread")
        if self.array + GUEST_RESERVED > self.guest_mem:
            raise ValueError(f"array={self.array} does not fit in guest_mem={self.guest_mem} "
                             f"(the guest kernel keeps the first {GUEST_RESERVED >> 20} MiB)")
        if self.array > largest_array(self.guest_mem):
            raise ValueError(f"array={self.array} does not fit in one stretch of guest RAM: guest_mem="
                             f"{self.guest_mem} is laid out around the PCI hole, the largest stretch holds "
                             f"{largest_array(self.guest_mem)} bytes")
        most = max_fault_threads(self.host_limit)
        if self.fault_threads > most:
            raise ValueError(f"fault_threads={self.fault_threads} with host_limit={self.host_limit}: each fault "
                             "thread may have a swap-in in flight, whose frame the cgroup cannot reclaim, and so many "
                             f"end in an OOM; expected at most {most} (half the limit's pages)")
        self.host_config("unpatched").validate()  # vcpus, sizes, swap device and latency, seed

    def host_config(self, mode: str) -> HostConfig:
        return HostConfig(generation=self.generation, async_pf=MODES[mode]["async_pf"], vcpus=self.vcpus,
                          guest_mem=self.guest_mem, host_limit=self.host_limit, swap_device=self.swap_device,
                          swap_latency_ns=self.swap_latency_ns, mmio_pages=0, seed=self.seed,
                          host_cpus=self.host_cpus, host_sched_costs=self.host_sched_costs,
                          bound_workers=self.bound_workers)


def max_fault_threads(host_limit: int) -> int:
    """The most fault threads a cgroup of ``host_limit`` bytes is sure to hold: half its pages.

    A swap-in's frame is charged before its read and cannot be reclaimed until the read is done, so with a
    swap-in in flight per fault thread the cgroup needs room for them all besides what reclaim is writing back;
    measured with 64 vcpus under a 1M (256-page) limit: 300 fault threads finished, 512 ended in an OOM.
    """
    return (host_limit >> abi.PAGE_SHIFT) // 2


def largest_array(guest_mem: int) -> int:
    """The largest array the guest can allocate in one piece: its largest stretch of RAM (less the kernel's)."""
    return max(n - (GUEST_RESERVED >> abi.PAGE_SHIFT if base == 0 else 0)
               for base, n in ram_layout(guest_mem)) << abi.PAGE_SHIFT


DRAIN_NS = 2_000_000_000     # after `stop`, one round of the drain: the time a thread normally needs to leave
DRAIN_ROUNDS = 1_000         # a drain still moving after this many rounds is reported, not run for ever


def swap_completed(stats: dict) -> int:
    return stats["reads"] + stats["writes"] - stats["in_flight"]


def drain_after_stop(machine: Machine, threads: list) -> list[str]:
    """Run after ``stop`` until every bm thread has left its loop; what could not leave, as leak lines.

    A thread leaves after its current touch, which on a slow swap device may
    still wait for a swap-in: the drain goes on, round after round, while a
    thread left or a swap request completed in the last round or requests are
    in flight.  A round with none of these means a thread is stuck (a leak);
    still moving after DRAIN_ROUNDS rounds is reported as in flight, not as a leak.
    """
    swap = machine.swap.stats
    left = [t.comm for t in threads if t.state != "X"]
    for _ in range(DRAIN_ROUNDS):
        running, completed = len(left), swap_completed(swap)
        machine.run(machine.env.now + DRAIN_NS)
        left = [t.comm for t in threads if t.state != "X"]
        if not left:
            return []
        moved = len(left) < running or swap_completed(swap) > completed
        if not moved and not swap["in_flight"]:
            return [f"{comm} did not leave its loop after stop" for comm in left]
    return [f"{comm} still in flight {DRAIN_ROUNDS * DRAIN_NS // 10**9} s after stop "
            f"({swap['in_flight']} swap requests outstanding)" for comm in left]


def build(mode: str, params: BmParams, *, trace: bool = False) -> Booted:
    """Host ``mode`` with bm's guest booted (build.BOOT_NS) and bm's array touched once; no threads yet."""
    if mode not in MODES:
        raise ValueError(f"unknown host {mode!r}; expected one of {sorted(MODES)}")
    params.validate()
    guest = GuestConfig(pv=MODES[mode]["pv"], unstable_sched_clock=params.unstable_sched_clock)
    return boot_guest(params.host_config(mode), guest, array_pages=params.array >> abi.PAGE_SHIFT, trace=trace)


def run_bm(mode: str, params: BmParams = BmParams(), *, trace: bool = False, record: bool = False,
           progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run ``bm`` on one host for ``params.duration_ns``; a JSON-able summary (and ``"machine"``).

    As the real program: the threads start together, run until ``stop`` is
    set, and leave their loops; the work is what they did before ``stop``.
    Then the VM is destroyed and checked for leaks.  ``record`` keeps the
    measured window as a :class:`~asyncpf.timeline.Recorder` under ``"recorder"``.
    """
    machine, kernel, array = build(mode, params, trace=trace or record)
    stop = StopFlag()
    touch_ns = load_guest_params()["touch_ns"]
    faults, works = spawn_bm(kernel, array, params.fault_threads, params.work_threads, touch_ns, stop)
    recorder = Recorder(machine, kernel) if record else None
    advance = machine.run if recorder is None else recorder.run
    start = machine.env.now
    done = 0
    while done < params.duration_ns:
        done = min(done + 1_000_000_000, params.duration_ns)
        advance(start + done)
        if progress is not None:
            progress(mode, done, params.duration_ns)
    machine.flush_accounts()
    summary = summarize(mode, params, machine, kernel, faults, works)
    if recorder is not None:
        summary["recorder"] = recorder
    stop.set = True
    stuck = drain_after_stop(machine, faults + works)
    machine.shutdown()
    summary["leaks"] = machine.leaks() + stuck
    summary["known_leaks"] = machine.known_leaks()   # the generation's own (check.known.KNOWN_LEAKS), not a failure
    summary["machine"] = machine
    return summary


def summarize(mode: str, params: BmParams, machine: Machine, kernel: GuestKernel, faults: list, works: list) -> dict:
    work_ns = [t.cpu_ns for t in works]
    kvm = machine.kvm
    return {
        "host": mode,
        "work": round(sum(work_ns) / 1e9, 6),
        "work_increments": round(sum(work_ns) / 1e9 * BM_INCREMENTS_PER_S),
        "work_per_thread": [round(ns / 1e9, 6) for ns in work_ns],
        "fault_thread_cpu": round(sum(t.cpu_ns for t in faults) / 1e9, 6),
        "async_pf_sent": sum(v.stat["apf_not_present_injected"] for v in machine.vcpus),
        "async_pf_setup": kvm.stat.async_pf_allocated,
        "async_pf_completed": kvm.stat.async_pf_completed,
        "apf_halts": sum(v.stat["apf_halts"] for v in machine.vcpus),
        "swapins": machine.mm.stats["swapins"],
        "vcpu_time_s": {str(v.vcpu_id): {k: round(ns / 1e9, 6) for k, ns in v.acct.items()} for v in machine.vcpus},
        "events": machine.env.events_processed,
        **({"host_sched": host_sched_summary(machine)} if machine.kvm.hostsched is not None else {}),
    }


LOAD_PUT = ("vcpu_load", "vcpu_put", "vmptrld", "vcpu_clear", "vcpu_migrations", "host_preempt_exits")


def host_sched_summary(machine: Machine) -> dict:
    """hostsched: the count and cost of load/put, migrations and waiting for a host CPU, summed over the vcpus."""
    sched = machine.kvm.hostsched
    vcpus = machine.vcpus
    out = {k: sum(v.stat[k] for v in vcpus) for k in LOAD_PUT}
    out["load_put_s"] = round(sum(v.stat["load_put_ns"] for v in vcpus) / 1e9, 6)
    out["runq_s"] = round(sum(v.acct.get("runq", 0) for v in vcpus) / 1e9, 6)
    out["host_cpus"] = len(sched.cpus)
    workers = [t for t in sched.threads if t.vcpu is None]
    out["worker_runq_s"] = round(sum(t.runq_ns for t in workers) / 1e9, 6)
    return out


# --- running the three hosts ---------------------------------------------------------------

def ratios(runs: dict[str, dict]) -> dict[str, float | None]:
    """Work of each host relative to the unpatched host (None when the unpatched work threads got no CPU)."""
    base = runs["unpatched"]["work"]
    return {mode: round(r["work"] / base, 4) if base else None for mode, r in runs.items()}


def _run_child(args: tuple) -> dict:
    mode, params, trace, record, progress, measure = args
    if measure:  # CPU time and a heapq reference in this process (asyncpf.speed)
        result, result["speed"] = speed.timed(
            lambda: run_bm(mode, params, trace=trace, record=record, progress=progress), lambda r: r["events"])
    else:
        result = run_bm(mode, params, trace=trace, record=record, progress=progress)
    machine = result.pop("machine")
    if trace:
        result["trace_text"] = machine.tracer.text()
    if record:
        recorder = result.pop("recorder")
        result["perfetto"] = perfetto.host_events(list(MODES).index(mode) + 1, f"{mode} host", recorder,
                                                  machine.tracer.events, params.generation)
    del machine
    gc.collect()  # the machine is a web of cycles: free its arrays before this process builds the next host
    return result


def run_three(params: BmParams, *, jobs: int = 3, trace_pv: bool = False, record: bool = False,
              progress: Callable[[str, int, int], None] | None = None,
              speed_out: dict | None = None) -> dict[str, dict]:
    """Run the unpatched, halt and PV hosts (in ``jobs`` processes); results keyed by host.

    Each host is an independent, seeded simulation, so running them in
    parallel changes nothing in the results.  Three processes by default, even
    on two cores: the hosts' costs differ (the PV host's events are about twice
    the unpatched host's), and three processes end when the total CPU time is
    spread over the cores, where two end after the unluckiest pair.  ``record`` adds each host's
    timeline as Chrome trace events under ``"perfetto"`` (:mod:`asyncpf.perfetto`).
    ``speed_out``: a dict that receives each host's speed figures (:func:`asyncpf.speed.timed`, measured
    in the host's own process); the results themselves do not change.
    """
    params.validate()
    measure = speed_out is not None
    work = [(mode, params, trace_pv and mode == "pv", record) for mode in MODES]
    if jobs <= 1:
        results = {mode: _run_child((mode, params, trace, rec, progress, measure))
                   for mode, params, trace, rec in work}
        return _speed_apart(results, speed_out)
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    queue = ctx.SimpleQueue() if progress is not None else None
    # Workers ignore Ctrl-C: the parent gets it, and leaving the with-block terminates them.
    with ctx.Pool(min(jobs, len(work)), initializer=_quiet_worker, initargs=(queue,)) as pool:
        pending = pool.map_async(_run_child, [(*w, _to_queue if queue is not None else None, measure)
                                              for w in work])
        while not pending.ready():
            pending.wait(0.1)
            while queue is not None and not queue.empty():
                progress(*queue.get())
        results = pending.get()
    while queue is not None and not queue.empty():
        progress(*queue.get())
    return _speed_apart({r["host"]: r for r in results}, speed_out)


def _speed_apart(results: dict[str, dict], speed_out: dict | None) -> dict[str, dict]:
    for mode, r in results.items():
        s = r.pop("speed", None)
        if speed_out is not None and s is not None:
            speed_out[mode] = s
    return results


_QUEUE: Any = None


def _quiet_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _to_queue(mode: str, done: int, total: int) -> None:
    _QUEUE.put((mode, done, total))
