"""``python -m asyncpf bm``: the seed's benchmark on the unpatched, halt and PV hosts.

``bm-sweep`` repeats it over swap latencies or fault/work thread mixes.
Every option is checked, alone and against the others, before anything runs;
files are written only once the run is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from . import __version__, abi, budget, perfetto, plots, speed
from . import sweep as sweep_mod
from .abi import PAGE_SIZE
from .argtypes import duration, fmt_size, fmt_time, integer, output_file, scheduler_address, size
from .bm import (GUEST_RESERVED, MODES, PUBLISHED, TARGET_RANGES, BmParams, largest_array, max_fault_threads,
                 ratios, run_three)
from .cli import UsageError, command
from .host.swap import device_names
from .machine import MAX_GUEST_MEM
from .outputs import distinct, replacing, write_text
from .progress import bar

SPLIT = ("guest", "stalled", "halted", "idle", "host")
MAX_GUEST = MAX_GUEST_MEM                  # RAM past the PCI hole goes above 4 GiB (machine.ram_layout)
MAX_THREADS = 1024
OPTION = {"vcpus": "--vcpus", "guest_mem": "--guest-mem", "host_limit": "--host-limit",
          "fault_threads": "-f/--fault-threads", "work_threads": "-w/--work-threads", "duration_ns": "-t/--duration",
          "array": "-m/--array", "swap_device": "--swap-device", "swap_latency_ns": "--swap-latency",
          "generation": "--generation", "seed": "--seed", "host_cpus": "--host-cpus"}
ARGS = {"duration_ns": "duration", "swap_latency_ns": "swap_latency"}  # BmParams field -> argparse dest
README_HALT = "see the README, 'Open question: the published +12.8% for halt'"

swap_latency = duration(1_000, 10_000_000_000, "ms")
mix_threads = integer(0, MAX_THREADS)


def add_params(p: argparse.ArgumentParser, *, duration_default: int = 60, sweep: bool = False) -> None:
    """bm's options.  Defaults are None, filled in by :func:`params_from`, so a relation check knows what was given."""
    d = BmParams()
    p.add_argument("--vcpus", type=integer(1, 64), metavar="N", help=f"guest vcpus, 1..64 (default {d.vcpus})")
    p.add_argument("--guest-mem", type=size(8 << 20, MAX_GUEST, PAGE_SIZE), metavar="SIZE",
                   help=f"guest RAM, 8M..{fmt_size(MAX_GUEST)} (default {fmt_size(d.guest_mem)})")
    p.add_argument("--host-limit", type=size(1 << 20, MAX_GUEST, PAGE_SIZE), metavar="SIZE",
                   help=f"memory cgroup limit of the VMM, 1M..--guest-mem (default {fmt_size(d.host_limit)})")
    p.add_argument("-f", "--fault-threads", type=integer(0, MAX_THREADS), metavar="N",
                   help=f"threads writing random pages of the array, 0..{MAX_THREADS} (default {d.fault_threads})")
    p.add_argument("-w", "--work-threads", type=integer(1, MAX_THREADS), metavar="N",
                   help=f"threads that only count (bm's score), 1..{MAX_THREADS} (default {d.work_threads})")
    p.add_argument("-t", "--duration", type=duration(10_000_000, 86_400 * 10**9), metavar="TIME",
                   default=duration_default * 10**9,
                   help=f"simulated run time, 10ms..1 day, e.g. 60 or 10s (default {duration_default} s); "
                        "runs estimated to need more than an hour of wall time are refused")
    p.add_argument("-m", "--array", type=size(PAGE_SIZE, MAX_GUEST, PAGE_SIZE), metavar="SIZE",
                   help=f"bm's array, up to --guest-mem less {GUEST_RESERVED >> 20}M (default {fmt_size(d.array)})")
    p.add_argument("--swap-device", choices=device_names(), metavar="DEVICE",
                   help=f"swap device model (data/swap_devices.json): {', '.join(device_names())} "
                        f"(default {d.swap_device})")
    p.add_argument("--swap-latency", type=swap_latency, metavar="TIME",
                   help="mean 4 KiB swap read, 1us..10s, e.g. 8ms or 50us (a bare number is in ms; "
                        "default: the device's own, ~8.2 ms for the 2010 disk)")
    p.add_argument("--generation", choices=list(abi.MODELLED),
                   help="protocol generation: legacy (2.6.38, the default), seed (the 2009 v2 series, no halt mode) "
                        "or interrupt (page-ready by interrupt, as Linux 6.18)")
    p.add_argument("--seed", type=integer(0, 2**63 - 1), metavar="N", help=f"random seed (default {d.seed})")
    p.add_argument("--host-cpus", type=integer(1, 256), metavar="N",  # hostsched
                   help="model the host's CPUs and scheduler with N CPUs, 1..256 (default: not modelled, a CPU "
                        "for every host thread); the time split then shows the wait for a host CPU")
    if sweep:
        p.add_argument("--jobs", type=integer(1, 256), default=os.cpu_count() or 1, metavar="N",
                       help="worker processes of the local Dask cluster, 1..256 (default: this machine's "
                            f"{os.cpu_count()} CPUs; 1 runs in this process); results do not depend on it")
        return
    p.add_argument("--jobs", type=integer(1, 3), default=3, metavar="N",
                   help="processes to run the three hosts in, 1..3 (default 3); results do not depend on it")


def params_from(args: argparse.Namespace, **overrides: Any) -> BmParams:
    """The run's parameters, refusing (UsageError naming the options) combinations that cannot run."""
    given = {f: getattr(args, ARGS.get(f, f)) for f in OPTION}
    params = BmParams().replace(**{k: v for k, v in given.items() if v is not None}, **overrides)
    if params.host_limit > params.guest_mem:
        raise UsageError(f"--host-limit {fmt_size(params.host_limit)}: expected at most --guest-mem "
                         f"({fmt_size(params.guest_mem)}): the VMM's cgroup holds the guest's memory")
    if params.array + GUEST_RESERVED > params.guest_mem:
        raise UsageError(f"-m/--array {fmt_size(params.array)}: expected at most "
                         f"{fmt_size(params.guest_mem - GUEST_RESERVED)}, --guest-mem "
                         f"({fmt_size(params.guest_mem)}) less the {GUEST_RESERVED >> 20}M the guest kernel keeps")
    if params.array > largest_array(params.guest_mem):
        raise UsageError(f"-m/--array {fmt_size(params.array)}: expected at most "
                         f"{fmt_size(largest_array(params.guest_mem))}, the largest stretch of guest RAM: "
                         f"--guest-mem {fmt_size(params.guest_mem)} is 3G below the PCI hole and "
                         f"{fmt_size(params.guest_mem - (3 << 30))} from 4G, and the array is one piece")
    if params.fault_threads > max_fault_threads(params.host_limit):
        raise UsageError(f"-f/--fault-threads {params.fault_threads}: expected at most "
                         f"{max_fault_threads(params.host_limit)} with --host-limit {fmt_size(params.host_limit)}: "
                         "each may have a swap-in in flight, whose frame the cgroup cannot reclaim (half its pages)")
    if params.swap_latency_ns is not None:
        transfer = budget.transfer_ns(params.swap_device)
        if params.swap_latency_ns <= transfer:
            raise UsageError(f"--swap-latency {fmt_time(params.swap_latency_ns)}: expected more than the 4 KiB "
                             f"transfer time of {params.swap_device} ({fmt_time(int(transfer))})")
    try:
        params.validate()
    except ValueError as exc:  # a check of the model's own that the options above do not cover
        raise UsageError(_name_options(str(exc))) from None
    return params


def check_budget(runs: list[BmParams], what: str, traced: bool = False) -> None:
    """Refuse when the runs together are estimated beyond :data:`budget.MAX_EVENTS` per host
    (:data:`budget.MAX_TRACED_EVENTS` when ``traced``: the run keeps its whole trace in memory)."""
    most, why = ((budget.MAX_TRACED_EVENTS, "a kept trace holds in memory") if traced
                 else (budget.MAX_EVENTS, "finish in under an hour"))
    need = sum(budget.bm_events(p) for p in runs)
    if need <= most:
        return
    fixed = sum(budget.bm_events(p.replace(duration_ns=0)) for p in runs)   # set-up and boot: any duration pays them
    fits = runs[0].duration_ns * (most - fixed) / (need - fixed)
    fits -= fits % (10**9 if fits >= 10**10 else 10**6)  # a round figure, rounded down
    if fits <= 0:
        raise UsageError(f"-m/--array {fmt_size(runs[0].array)}: touching it once under --host-limit "
                         f"{fmt_size(runs[0].host_limit)} ({what}) is estimated at {fixed:,.0f} engine events' time "
                         f"per host, which leaves no run within the {most:,} that {why}; expected a smaller array "
                         "or guest, or a larger --host-limit")
    raise UsageError(f"-t/--duration {fmt_time(runs[0].duration_ns)}: {what} is estimated at {need:,.0f} "
                     f"engine events per host, more than the {most:,} that {why}; expected at most "
                     f"{fmt_time(int(fits))} with these options")


def _name_options(message: str) -> str:
    for field, option in OPTION.items():
        message = message.replace(f"{field}=", f"{option} ")
    return message


class Progress:
    """A progress bar over simulated seconds of every host run."""

    def __init__(self, total_ns: int, desc: str, quiet: bool):
        self.bar = bar(total_ns / 1e9, desc, "sim s", quiet=quiet)
        self.seen: dict[str, int] = {}

    def __call__(self, mode: str, done: int, total: int) -> None:
        self.bar.update((done - self.seen.get(mode, 0)) / 1e9)
        self.seen[mode] = done

    def next_run(self) -> None:
        self.seen.clear()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()  # also on Ctrl-C: the terminal line is cleared before the message


def configure(p: argparse.ArgumentParser) -> None:
    add_params(p)
    p.add_argument("--json", action="store_true", help="print one stable JSON object (documented in the README)")
    p.add_argument("--trace", metavar="FILE", type=output_file(),
                   help="write the PV host's run as ftrace text to FILE")
    p.add_argument("--perfetto", metavar="FILE", type=output_file((".json",)),
                   help="write the measured window of all three hosts as a Chrome trace-event JSON timeline "
                        "(open it in ui.perfetto.dev or chrome://tracing)")
    p.add_argument("--plot", metavar="FILE", type=output_file(plots.SUFFIXES),
                   help="draw the per-vcpu time split and the ratios beside the published ones to FILE (.png or .svg)")


@command("bm", "the seed's benchmark (bm -f 4 -w 4 -t 60) on unpatched, halt and PV hosts", configure)
def main(args: argparse.Namespace) -> int:
    params = params_from(args)
    check_budget([params], "this run", traced=bool(args.trace or args.perfetto))
    distinct(trace=args.trace, perfetto=args.perfetto, plot=args.plot)
    per_host: dict = {}
    wall0 = time.perf_counter()
    with Progress(len(MODES) * params.duration_ns, "bm", args.json) as progress:
        runs = run_three(params, jobs=args.jobs, trace_pv=bool(args.trace), record=bool(args.perfetto),
                         progress=progress, speed_out=per_host)
    report = {"params": _params_json(params), "runs": runs, "ratios": ratios(runs), "published": PUBLISHED,
              "target_ranges": TARGET_RANGES, "speed": speed.summary(per_host, time.perf_counter() - wall0)}
    trace_text = runs["pv"].pop("trace_text", None)
    timeline = [e for r in runs.values() for e in r.pop("perfetto", [])]
    if args.trace:
        write_text(args.trace, trace_text)
    if args.perfetto:
        write_text(args.perfetto, perfetto.document(timeline, {"asyncpf": __version__, "command": "bm",
                                                               "params": report["params"]}))
    if args.plot:
        with replacing(args.plot, "wb") as fh:
            fh.write(plots.render(plots.bm_figure(report), args.plot.suffix))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render(report))
        for option, path in (("trace", args.trace), ("perfetto", args.perfetto), ("plot", args.plot)):
            if path:
                print(f"{option} written to {path}")
    leaky = [m for m, r in runs.items() if r["leaks"]]
    return 1 if leaky else 0


HOSTSCHED_FIELDS = ("host_cpus", "host_sched_costs", "bound_workers")


def _params_json(params: BmParams) -> dict:
    out = {k: getattr(params, k) for k in params.__dataclass_fields__}
    if params.host_cpus is None:  # hostsched: not modelled, so the JSON stays as it was
        for k in HOSTSCHED_FIELDS:
            out.pop(k)
    if not params.unstable_sched_clock:  # a variant of the halt-variant table, not a bm option
        out.pop("unstable_sched_clock")
    return out


def render(report: dict) -> str:
    p, runs, rat = report["params"], report["runs"], report["ratios"]
    lines = [
        f"bm -f {p['fault_threads']} -w {p['work_threads']} -t {p['duration_ns'] / 1e9:g}, array "
        f"{p['array'] >> 20} MiB; guest {p['vcpus']} vcpus / {p['guest_mem'] >> 20} MiB in a "
        f"{p['host_limit'] >> 20} MiB cgroup; swap {p['swap_device']}"
        + (f" at {p['swap_latency_ns'] / 1e6:g} ms" if p["swap_latency_ns"] else "")
        + f"; {p['generation']} generation",
        "work = CPU seconds the work threads obtained (x 1.08e9 increments/s for bm's counters)",
        "",
        f"{'host':<10} {'work s':>9} {'ratio':>7} {'v7':>6} {'v4':>6} {'APF sent':>9} {'completed':>9} "
        f"{'swap-ins':>9} {'halts':>7}",
    ]
    for mode, r in runs.items():
        v7 = PUBLISHED["v7 (10 runs)"][mode]
        v4 = PUBLISHED["v4 (1 run)"][mode]
        lines.append(f"{mode:<10} {r['work']:>9.2f} {'-' if rat[mode] is None else f'{rat[mode]:.3f}x':>7} {_fmt(v7):>6} {_fmt(v4):>6} "
                     f"{r['async_pf_sent']:>9} {r['async_pf_completed']:>9} {r['swapins']:>9} {r['apf_halts']:>7}")
    cols = SPLIT + (("runq",) if p.get("host_cpus") else ())  # hostsched: waiting for a host CPU
    lines += ["", "mean per-vcpu time split (% of the run; in KVM = the vcpu thread handling exits"
              + ("; runq = runnable, waiting for a host CPU" if p.get("host_cpus") else "") + "):",
              f"{'host':<10} " + " ".join(f"{'in KVM' if k == 'host' else k:>8}" for k in cols)]
    for mode, r in runs.items():
        split = plots.time_split(r, cols)
        lines.append(f"{mode:<10} " + " ".join(f"{split[k]:>7.1f}%" for k in cols))
    lines.append("")
    if p.get("host_cpus"):
        lines += [f"{p['host_cpus']} host CPUs: preempt-notifier load/put and migrations (all vcpus):",
                  f"{'host':<10} {'loads':>8} {'puts':>8} {'VMPTRLD':>8} {'migrate':>8} {'cost ms':>8} "
                  f"{'runq s':>8} {'kworker runq s':>14}"]
        for mode, r in runs.items():
            h = r["host_sched"]
            lines.append(f"{mode:<10} {h['vcpu_load']:>8} {h['vcpu_put']:>8} {h['vmptrld']:>8} "
                         f"{h['vcpu_migrations']:>8} {h['load_put_s'] * 1e3:>8.1f} {h['runq_s']:>8.2f} "
                         f"{h['worker_runq_s']:>14.3f}")
        lines.append("")
    if p["generation"] == "seed":
        lines.append("(the seed series had no halt mode: its non-PV host handles the fault synchronously)")
    if rat["unpatched"] is None:
        lines.append("no ratios: the unpatched host's work threads got no CPU time in this run (try a longer -t)")
    for mode, (lo, hi) in report["target_ranges"].items() if rat["unpatched"] is not None else ():
        inside = lo <= rat[mode] <= hi
        lines.append(f"{mode}/unpatched = {rat[mode]:.3f} ({'within' if inside else 'OUTSIDE'} the expected "
                     f"{lo}..{hi})" + ("" if inside else f": {_why_outside(mode, p)}"))
    events = sum(r["events"] for r in runs.values())
    leaks = {m: r["leaks"] for m, r in runs.items() if r["leaks"]}
    known = {m: r["known_leaks"] for m, r in runs.items() if r["known_leaks"]}
    lines.append(f"{events:,} simulated events; leak check after each run: "
                 + ("clean" if not leaks else json.dumps(leaks))
                 + (f"; the generation's own leak reproduced: {json.dumps(known)}" if known else ""))
    if "speed" in report:
        lines.append(speed.line(report["speed"]))
    return "\n".join(lines)


def _why_outside(mode: str, p: dict) -> str:
    if mode == "halt":
        return f"the model's fair guest scheduler gives the halt host no gain; {README_HALT}"
    published = _params_json(BmParams())
    if any(p[k] != published[k] for k in ("fault_threads", "work_threads", "swap_device", "swap_latency_ns")):
        return "the expected range is for the published set-up (-f 4 -w 4, 2010 disk); see the README, " \
               "'How the gain moves'"
    return "see the README, 'Who waits for what'"


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"  # None: no published figure, or no unpatched work to divide by


# --- bm-sweep ----------------------------------------------------------------------------------

def _mix(text: str) -> tuple[int, int]:
    f, sep, w = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected F:W such as 4:4")
    try:
        pair = mix_threads(f), mix_threads(w)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected F:W, each 0..{MAX_THREADS}, W at least 1") from None
    if pair[1] == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least one work thread (bm's score is their work)")
    return pair


def _values(text: str) -> list[str]:
    items = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in items):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of values, none empty")
    if len(items) > 32:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at most 32 values")
    return items


def configure_sweep(p: argparse.ArgumentParser) -> None:
    add_params(p, duration_default=10, sweep=True)
    p.add_argument("--over", choices=list(sweep_mod.AXES),
                   help="one axis to vary (with --values): the fault:work thread mix, the mean swap read latency, "
                        "the vcpus, the host CPUs or the generation; --grid gives several")
    p.add_argument("--values", type=_values, metavar="V[,V..]",
                   help="comma-separated, at most 32: latencies such as 20us,200us,2ms,8ms, F:W mixes such as "
                        "1:7,4:4,7:1, vcpu counts such as 1,2,4, host CPU counts such as 1,2,4, generations such as "
                        "legacy,interrupt")
    p.add_argument("--grid", action="append", type=_grid_axis, metavar="AXIS=V[,V..]",
                   help=f"an axis of the grid, repeatable: {', '.join(sweep_mod.AXES)}; the grid is every "
                        "combination, e.g. --grid mix=1:7,4:4 --grid swap-latency=1ms,8ms --grid vcpus=2,4")
    p.add_argument("--seeds", type=integer(1, 64), default=1, metavar="N",
                   help="seeds per point, 1..64, from --seed on (default 1); with more than one the table and "
                        "plot show the mean and the spread (sample standard deviation)")
    p.add_argument("--scheduler", type=scheduler_address, default="local", metavar="ADDRESS",
                   help="where the runs go, each host run of each point and seed one Dask task: local (default: a "
                        "LocalCluster of --jobs worker processes), serial (this process, no Dask) or the address "
                        "of a running Dask scheduler such as tcp://10.0.0.5:8786; results do not depend on it")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--plot", metavar="FILE", type=output_file(plots.SUFFIXES),
                   help="draw the ratios against the swept value to FILE (.png or .svg)")


AXIS_FIXES = {"mix": {"fault_threads": "-f/--fault-threads", "work_threads": "-w/--work-threads"},
              "swap-latency": {"swap_latency": "--swap-latency"}, "vcpus": {"vcpus": "--vcpus"},
              "host-cpus": {"host_cpus": "--host-cpus"}, "generation": {"generation": "--generation"}}


def _grid_axis(text: str) -> tuple[str, list[str]]:
    axis, sep, values = text.partition("=")
    if not sep or axis not in sweep_mod.AXES:
        raise argparse.ArgumentTypeError(f"{text!r}: expected AXIS=V[,V..] with AXIS one of "
                                         f"{', '.join(sweep_mod.AXES)}")
    return axis, _values(values)


def _axis_value(axis: str, text: str) -> tuple[str, dict]:
    """One value of an axis: its label and the BmParams fields it sets (ArgumentTypeError if malformed)."""
    if axis == "swap-latency":
        value = swap_latency(text)
        return f"{value / 1e6:g} ms", {"swap_latency_ns": value}
    if axis == "mix":
        f, w = _mix(text)
        return f"{f}:{w}", {"fault_threads": f, "work_threads": w}
    if axis == "vcpus":
        return text, {"vcpus": integer(1, 64)(text)}
    if axis == "host-cpus":
        return text, {"host_cpus": integer(1, 256)(text)}
    if text not in abi.MODELLED:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a generation: {', '.join(abi.MODELLED)}")
    return text, {"generation": text}


def _sweep_plan(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[dict[str, str]], list[list[BmParams]]]:
    """The axes, each point's labels and its params per seed; every value and combination checked first."""
    if (args.over is None) != (args.values is None):
        raise UsageError("--over and --values: expected both or neither (--grid AXIS=V,.. says both at once)")
    given = ([(args.over, args.values)] if args.over else []) + list(args.grid or [])
    if not given:
        raise UsageError("bm-sweep: expected --over AXIS --values V,.. or at least one --grid AXIS=V,..")
    axes: dict[str, list[tuple[str, dict]]] = {}
    for axis, values in given:
        if axis in axes:
            raise UsageError(f"--grid {axis}: expected each axis once")
        for dest, option in AXIS_FIXES[axis].items():
            if getattr(args, dest) is not None:
                raise UsageError(f"{option}: not with a sweep over {axis} (--over/--grid), which sets it from "
                                 "its values; expected it left out")
        try:
            axes[axis] = [_axis_value(axis, v) for v in values]
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--values: {exc}" if axis == args.over else f"--grid {axis}: {exc}") from None
        settings = [sorted(changes.items()) for _label, changes in axes[axis]]
        if any(settings.count(one) > 1 for one in settings):   # by value: 8ms and 8000us, 1 and 01 are one point
            raise UsageError(f"--values {','.join(values)}: expected each value once")
    combos = sweep_mod.product(axes)
    if len(combos) * args.seeds > 1024:
        raise UsageError(f"--grid: {len(combos)} points x {args.seeds} seeds; expected at most 1024 runs of bm")
    base = args.seed or 0
    points = []
    for _labels, changes in combos:
        first = params_from(args, **changes)
        points.append([first.replace(seed=base + k) for k in range(args.seeds)])
    check_budget([p for per_seed in points for p in per_seed], "this sweep")
    return {a: [label for label, _ in vs] for a, vs in axes.items()}, [lab for lab, _ in combos], points


@command("bm-sweep", "bm's ratios over a grid of thread mixes, swap latencies, vcpus, host CPUs and generations, "
                     "on Dask", configure_sweep)
def sweep(args: argparse.Namespace) -> int:
    grid, labels, points = _sweep_plan(args)
    distinct(plot=args.plot)
    tasks = sweep_mod.tasks_of(points)
    scheduler = "serial" if args.scheduler == "local" and args.jobs == 1 else args.scheduler
    with Progress(len(tasks) * points[0][0].duration_ns, "bm-sweep", args.json) as progress:
        def done(task: sweep_mod.Task) -> None:
            progress(f"{task[0]}/{task[1]}/{task[2]}", task[3].duration_ns, task[3].duration_ns)

        try:
            with sweep_mod.Cluster(scheduler, args.jobs) as cluster:
                results = cluster.run(tasks, done)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler {args.scheduler}: no Dask scheduler answered there ({exc}); "
                             "expected the address of a running one, such as tcp://10.0.0.5:8786") from None
    rows = sweep_mod.rows_of(labels, points, results)
    single = args.over is not None and not args.grid and args.seeds == 1
    if single:  # the one-axis form keeps its old output, value for value
        result = {"over": args.over, "rows": [{"value": r["value"], "ratios": r["ratios"], "work": r["work"],
                                               "leaks": r["leaks"]} for r in rows]}
    else:
        result = {"over": next(iter(grid)) if len(grid) == 1 else "grid", "grid": grid,
                  "seeds": [p.seed for p in points[0]], "rows": rows}
    if args.plot:
        with replacing(args.plot, "wb") as fh:
            fh.write(plots.render(plots.sweep_figure(result), args.plot.suffix))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(_sweep_table(result, grid, single, args.seeds))
        leaky = [f"{row['value']} ({row['leaks']})" for row in rows if row["leaks"]]
        if leaky:   # the exit status says it too; the lines are bm's for that point
            print(f"LEAKS after VM destroy (lines per point): {'; '.join(leaky)}; run bm with that point's options "
                  "to see them")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 1 if any(row["leaks"] for row in rows) else 0


def _sweep_table(result: dict, grid: dict, single: bool, seeds: int) -> str:
    if single:
        head = {"swap-latency": "swap read", "mix": "F:W"}.get(result["over"], result["over"])
        lines = [f"{head:>10} {'halt/unpatched':>15} {'pv/unpatched':>13} {'unpatched work s':>17}"]
        for row in result["rows"]:
            r = row["ratios"]
            lines.append(f"{row['value']:>10} {_fmt(r['halt']):>15} {_fmt(r['pv']):>13} "
                         f"{row['work']['unpatched']:>17.2f}")
        return "\n".join(lines)
    axes = list(grid)
    width = {a: max(len(a), *(len(v) for v in grid[a])) for a in axes}

    def cell(row: dict, host: str) -> str:
        mean, sd = row["ratios"][host], row["spread"][host]["sd"]
        return _fmt(mean) + (f" ±{sd:.3f}" if seeds > 1 and mean is not None else "")

    w = 15 if seeds > 1 else 8
    lines = [" ".join(f"{a:>{width[a]}}" for a in axes) + f" {'halt/unpatched':>{w}} {'pv/unpatched':>{w}} "
             f"{'unpatched work s':>17}"]
    for row in result["rows"]:
        lines.append(" ".join(f"{row['point'][a]:>{width[a]}}" for a in axes)
                     + f" {cell(row, 'halt'):>{w}} {cell(row, 'pv'):>{w}} {row['work']['unpatched']:>17.2f}")
    if seeds > 1:
        lines.append(f"mean over {seeds} seeds (seed {result['seeds'][0]}..{result['seeds'][-1]}) "
                     "± sample standard deviation")
    return "\n".join(lines)
