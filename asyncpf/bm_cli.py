"""``python -m asyncpf bm``: the seed's benchmark on the unpatched, halt and PV hosts.

``bm-sweep`` repeats it over swap latencies or fault/work thread mixes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .bm import MODES, PUBLISHED, TARGET_RANGES, BmParams, ratios, run_three
from .cli import UsageError, command, duration_ns, nonnegative_int, positive_int, size_bytes
from .host.swap import device_names

SPLIT = ("guest", "stalled", "halted", "idle", "host")


def add_params(p: argparse.ArgumentParser, *, duration_default: str = "60") -> None:
    d = BmParams()
    p.add_argument("--vcpus", type=positive_int, default=d.vcpus, help="guest vcpus (default %(default)s)")
    p.add_argument("--guest-mem", type=size_bytes, default=d.guest_mem, metavar="SIZE", help="guest RAM (default 2G)")
    p.add_argument("--host-limit", type=size_bytes, default=d.host_limit, metavar="SIZE",
                   help="memory cgroup limit of the VMM (default 512M)")
    p.add_argument("-f", "--fault-threads", type=nonnegative_int, default=d.fault_threads, metavar="N")
    p.add_argument("-w", "--work-threads", type=nonnegative_int, default=d.work_threads, metavar="N")
    p.add_argument("-t", "--duration", type=duration_ns, default=duration_ns(duration_default), metavar="TIME",
                   help=f"simulated run time, e.g. 60 or 10s (default {duration_default} s)")
    p.add_argument("-m", "--array", type=size_bytes, default=d.array, metavar="SIZE", help="bm's array (default 1G)")
    p.add_argument("--swap-device", choices=device_names(), default=d.swap_device)
    p.add_argument("--swap-latency", type=lambda t: duration_ns(t, "ms"), default=None, metavar="TIME",
                   help="mean 4 KiB swap read, e.g. 8ms or 50us (default: the device's own, ~8.2 ms)")
    p.add_argument("--generation", choices=["seed", "legacy"], default=d.generation,
                   help="protocol generation (default legacy: 2.6.38; seed: the 2009 v2 series, no halt mode)")
    p.add_argument("--seed", type=nonnegative_int, default=d.seed)
    p.add_argument("--jobs", type=positive_int, default=2, help="processes to run the hosts in (default 2)")


def params_from(args: argparse.Namespace, **overrides: Any) -> BmParams:
    values = dict(vcpus=args.vcpus, guest_mem=args.guest_mem, host_limit=args.host_limit,
                  fault_threads=args.fault_threads, work_threads=args.work_threads, duration_ns=args.duration,
                  array=args.array, swap_device=args.swap_device, swap_latency_ns=args.swap_latency, seed=args.seed,
                  generation=args.generation)
    values.update(overrides)
    params = BmParams(**values)
    try:
        params.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return params


class Progress:
    """One status line on a terminal (stderr), nothing otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.state: dict[str, str] = {}

    def __call__(self, mode: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        self.state[mode] = f"{mode} {done / 1e9:.0f}/{total / 1e9:.0f}s"
        print("\r  simulating: " + "  ".join(self.state[m] for m in MODES if m in self.state), end="",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.state:
            print(file=sys.stderr)


def configure(p: argparse.ArgumentParser) -> None:
    add_params(p)
    p.add_argument("--json", action="store_true", help="print one stable JSON object (documented in the README)")
    p.add_argument("--trace", metavar="FILE", help="write the PV host's run as ftrace text to FILE")


@command("bm", "the seed's benchmark (bm -f 4 -w 4 -t 60) on unpatched, halt and PV hosts", configure)
def main(args: argparse.Namespace) -> int:
    params = params_from(args)
    progress = Progress(sys.stderr.isatty() and not args.json)
    wall = time.perf_counter()
    runs = run_three(params, jobs=args.jobs, trace_pv=bool(args.trace), progress=progress)
    wall = time.perf_counter() - wall
    progress.close()
    if args.trace:
        with open(args.trace, "w") as fh:
            fh.write(runs["pv"].pop("trace_text"))
    events = sum(r["events"] for r in runs.values())
    report = {"params": _params_json(params), "runs": runs, "ratios": ratios(runs), "published": PUBLISHED,
              "target_ranges": TARGET_RANGES}
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render(report))
        print(f"\nwall time {wall:.2f} s, {events:,} simulated events ({events / wall:,.0f} events/s)")
    leaky = [m for m, r in runs.items() if r["leaks"]]
    return 1 if leaky else 0


def _params_json(params: BmParams) -> dict:
    return {k: getattr(params, k) for k in params.__dataclass_fields__}


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
        lines.append(f"{mode:<10} {r['work']:>9.2f} {rat[mode]:>6.3f}x {_fmt(v7):>6} {_fmt(v4):>6} "
                     f"{r['async_pf_sent']:>9} {r['async_pf_completed']:>9} {r['swapins']:>9} {r['apf_halts']:>7}")
    lines += ["", "mean per-vcpu time split (% of the run):",
              f"{'host':<10} " + " ".join(f"{k:>8}" for k in SPLIT)]
    for mode, r in runs.items():
        splits = r["vcpu_time_s"].values()
        total = sum(sum(s.values()) for s in splits) or 1
        lines.append(f"{mode:<10} " + " ".join(f"{100 * sum(s[k] for s in splits) / total:>7.1f}%" for k in SPLIT))
    lines.append("")
    if p["generation"] == "seed":
        lines.append("(the seed series had no halt mode: its non-PV host handles the fault synchronously)")
    for mode, (lo, hi) in report["target_ranges"].items():
        verdict = "within" if lo <= rat[mode] <= hi else "OUTSIDE"
        lines.append(f"{mode}/unpatched = {rat[mode]:.3f} ({verdict} the expected {lo}..{hi})")
    leaks = {m: r["leaks"] for m, r in runs.items() if r["leaks"]}
    lines.append("leak check after each run: " + ("clean" if not leaks else json.dumps(leaks)))
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _mix(text: str) -> tuple[int, int]:
    try:
        f, w = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread mix; expected F:W such as 4:4") from None
    if f < 0 or w < 0 or f + w == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: thread counts must be >= 0 and not both 0")
    return f, w


def configure_sweep(p: argparse.ArgumentParser) -> None:
    add_params(p, duration_default="10")
    p.add_argument("--over", choices=["swap-latency", "mix"], required=True,
                   help="what to vary: the mean swap read latency, or the fault:work thread mix")
    p.add_argument("--values", required=True,
                   help="comma-separated: latencies such as 20us,200us,2ms,8ms or mixes such as 1:7,4:4,7:1")
    p.add_argument("--json", action="store_true")


@command("bm-sweep", "bm's ratios as the swap latency or the fault/work thread mix varies", configure_sweep)
def sweep(args: argparse.Namespace) -> int:
    raw = [v for v in args.values.split(",") if v.strip()]
    parse = (lambda t: duration_ns(t, "ms")) if args.over == "swap-latency" else _mix
    try:
        values = [parse(v) for v in raw]
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--values: {exc}") from None
    rows = []
    for value in values:
        if args.over == "swap-latency":
            params, label = params_from(args, swap_latency_ns=value), f"{value / 1e6:g} ms"
        else:
            params, label = params_from(args, fault_threads=value[0], work_threads=value[1]), f"{value[0]}:{value[1]}"
        runs = run_three(params, jobs=args.jobs)
        rows.append({"value": label, "ratios": ratios(runs), "work": {m: r["work"] for m, r in runs.items()},
                     "leaks": sum(len(r["leaks"]) for r in runs.values())})
    if args.json:
        print(json.dumps({"over": args.over, "rows": rows}, indent=2, sort_keys=True))
        return 0
    head = "swap read" if args.over == "swap-latency" else "F:W"
    print(f"{head:>10} {'halt/unpatched':>15} {'pv/unpatched':>13} {'unpatched work s':>17}")
    for row in rows:
        r = row["ratios"]
        print(f"{row['value']:>10} {r['halt']:>15.3f} {r['pv']:>13.3f} {row['work']['unpatched']:>17.2f}")
    return 1 if any(row["leaks"] for row in rows) else 0
