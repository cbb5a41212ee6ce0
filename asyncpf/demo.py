"""``python -m asyncpf demo``: the host side end to end, with a scripted stand-in guest.

Three hosts run the same guest activity -- a few scripts per vcpu, each
touching random pages of a buffer larger than the VMM's memory cgroup and
computing in between:

* **unpatched**: no async PF; the vcpu thread sleeps in ``gfn_to_pfn`` for
  every swap-in;
* **halt**: async PF on the host, the guest is not PV; the vcpu is halted
  while a worker swaps the page in;
* **pv**: the guest registered ``MSR_KVM_ASYNC_PF_EN``; it parks the faulting
  script and runs another until page-ready.

It prints the finishing time, the per-vcpu time split and the protocol
counts, then a short stretch of the PV trace.
"""

from __future__ import annotations

import argparse
import json
import random

from . import abi, budget
from .argtypes import integer
from .cli import UsageError, command
from .progress import bar
from .machine import HostConfig, Machine
from .standin import Script, ScriptedGuest
from .trace import event_lines

MODES = {
    "unpatched": dict(async_pf=False, pv=False),
    "halt": dict(async_pf=True, pv=False),
    "pv": dict(async_pf=True, pv=True),
}


def run_mode(mode: str, *, generation: str = "legacy", vcpus: int = 2, scripts: int = 3, steps: int = 30,
             compute_ns: int = 10_000_000, seed: int = 0) -> dict:
    """One host-only run; returns a JSON-able summary (and the machine under ``"machine"``)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
    cfg = HostConfig(generation=generation, async_pf=MODES[mode]["async_pf"], vcpus=vcpus,
                     guest_mem=64 << 20, host_limit=16 << 20, seed=seed)
    buffer_first, buffer_pages = 1024, 12 * 1024  # a 48 MiB buffer in a 16 MiB cgroup
    rng = random.Random(seed)

    def guest(vcpu_id: int) -> ScriptedGuest:
        plans = [Script(f"cpu{vcpu_id}/s{k}",
                        [(buffer_first + rng.randrange(buffer_pages), compute_ns) for _ in range(steps)])
                 for k in range(scripts)]
        return ScriptedGuest(plans, pv=MODES[mode]["pv"])

    m = Machine(cfg, guest).prefault(buffer_first, buffer_pages).start().run()
    m.flush_accounts()
    finished = max(s.finished_at or 0 for v in m.vcpus for s in v.guest.scripts) - m.started_at
    tracer = m.tracer
    summary = {
        "mode": mode,
        "finish_ms": round(finished / 1e6, 3),
        "vcpu_ms": {str(v.vcpu_id): {k: round(ns / 1e6, 3) for k, ns in v.acct.items()} for v in m.vcpus},
        "not_present": tracer.count("kvm_async_pf_not_present") + sum(
            1 for e in tracer.of("kvm_send_async_pf") if e.args[2] == 1),
        "page_ready": tracer.count("kvm_async_pf_ready") + sum(
            1 for e in tracer.of("kvm_send_async_pf") if e.args[2] == 2),
        "doublefault": tracer.count("kvm_async_pf_doublefault"),
        "swapins": m.mm.stats["swapins"],
        "apf_halts": sum(v.stat["apf_halts"] for v in m.vcpus),
    }
    m.shutdown()
    summary["leaks"] = m.leaks()
    summary["machine"] = m
    return summary


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generation", choices=list(abi.MODELLED), default="legacy",
                   help="protocol generation: legacy (2.6.38, the default) or seed (no halt mode: its non-PV run "
                        "is synchronous)")
    p.add_argument("--vcpus", type=integer(1, 64), default=2, metavar="N", help="vcpus, 1..64 (default 2)")
    p.add_argument("--scripts", type=integer(1, 1000), default=3, metavar="N",
                   help="scripts per vcpu, 1..1000 (default 3)")
    p.add_argument("--steps", type=integer(1, 100_000), default=30, metavar="N",
                   help="page touches per script, 1..100000 (default 30)")
    p.add_argument("--compute-ms", type=integer(1, 60_000), default=10, metavar="MS",
                   help="guest computation after each touch, 1..60000 ms (default 10)")
    p.add_argument("--seed", type=integer(0, 2**63 - 1), default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--trace-lines", type=integer(0, 100_000), default=24, metavar="N",
                   help="PV trace lines to show, 0..100000 (default 24)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


@command("demo", "host-only end-to-end run: unpatched vs halt vs PV with a scripted stand-in guest", configure)
def main(args: argparse.Namespace) -> int:
    # the three hosts run one after another in this process, and each keeps its whole trace
    need = len(MODES) * budget.demo_events(args.vcpus, args.scripts, args.steps, args.compute_ms * 1_000_000)
    if need > budget.MAX_TRACED_EVENTS:
        raise UsageError(f"--vcpus {args.vcpus} --scripts {args.scripts} --steps {args.steps} --compute-ms "
                         f"{args.compute_ms}: estimated at {need:,.0f} engine events for the {len(MODES)} hosts, "
                         f"more than the {budget.MAX_TRACED_EVENTS:,} whose kept traces hold in memory; expected "
                         "fewer or shorter steps")
    results = {}
    with bar(len(MODES), "demo", "hosts", quiet=args.json) as progress:
        for mode in MODES:
            results[mode] = run_mode(mode, generation=args.generation, vcpus=args.vcpus, scripts=args.scripts,
                                     steps=args.steps, compute_ns=args.compute_ms * 1_000_000, seed=args.seed)
            progress.update()
    machines = {mode: r.pop("machine") for mode, r in results.items()}
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0 if not any(r["leaks"] for r in results.values()) else 1
    base = results["unpatched"]["finish_ms"]
    print(f"host-only demo ({args.generation} generation): {args.vcpus} vcpus x {args.scripts} scripts x "
          f"{args.steps} touches of a 48 MiB buffer in a 16 MiB cgroup, {args.compute_ms} ms of guest work\n"
          "after each touch, a 2010 disk as swap.  The stand-in guest has a tick but no scheduler: a halted\n"
          "vcpu woken by the tick can only retry the same access (doublefault -> halt again); the real\n"
          "guest of `bm` switches tasks there.\n")
    print(f"{'host':<10} {'finish ms':>10} {'speed-up':>9} {'not-present':>12} {'ready':>6} "
          f"{'doublefault':>12} {'swap-ins':>9} {'apf halts':>10}")
    for mode, r in results.items():
        print(f"{mode:<10} {r['finish_ms']:>10.1f} {base / r['finish_ms']:>8.2f}x {r['not_present']:>12} "
              f"{r['page_ready']:>6} {r['doublefault']:>12} {r['swapins']:>9} {r['apf_halts']:>10}")
    print("\nper-vcpu time (ms): guest = running guest code, stalled = vcpu thread asleep in a host fault,")
    print("halted = async-PF halt, idle = guest HLT with nothing to run, in KVM = exit handling")
    print(f"{'host':<10} {'vcpu':>4} " + " ".join(f"{k:>9}" for k in ("guest", "in KVM", "stalled", "halted", "idle")))
    for mode, r in results.items():
        for vid, split in r["vcpu_ms"].items():
            print(f"{mode:<10} {vid:>4} " + " ".join(f"{split[k]:>9.1f}" for k in
                                                    ("guest", "host", "stalled", "halted", "idle")))
    pv = machines["pv"].tracer
    events = [e for e in pv.events if e.name.startswith("kvm_async_pf") or e.name in
              ("kvm_try_async_get_page", "kvm_send_async_pf", "kvm_inj_exception")]
    print(f"\nPV trace, async PF events only (first {args.trace_lines} of {len(events)}):")
    print("\n".join(event_lines(events[: args.trace_lines], pv.generation)))
    leaks = {mode: r["leaks"] for mode, r in results.items() if r["leaks"]}
    print("\nleak check after VM destroy:", "clean" if not leaks else leaks)
    return 1 if leaks else 0
