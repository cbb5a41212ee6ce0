"""Helpers for notebook 04: host async work -- work items, references, the limit, the gfn hash, clearing."""

from __future__ import annotations

from typing import Any

from .. import abi
from ..build import SMALL_HOST
from ..host import mmu, x86
from ..machine import Machine
from ..standin import Script, ScriptedGuest
from .common import G, apf_machine, make_swapped, run_process, small_machine


# --- 04: host async work -----------------------------------------------------------------------

def start_async(m: Machine, *gfns: int, vcpu: Any = None) -> list[bool]:
    """kvm_arch_setup_async_pf for each gfn (the guest takes each not-present at once)."""
    vcpu = vcpu or m.vcpus[0]
    out = []
    for g in gfns:
        out.append(mmu.kvm_arch_setup_async_pf(vcpu, g << abi.PAGE_SHIFT, g))
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
    m = Machine(SMALL_HOST.replace(seed=seed), lambda i: ScriptedGuest(plans, pv=True))
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
    vcpu.restart_account()
    t0 = m.env.now
    result = run_process(m, mmu.kvm_mmu_page_fault(vcpu, 300 << abi.PAGE_SHIFT, 2))
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
    first = run_process(m, mmu.kvm_mmu_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), until_ns=1)
    req_after_first = bool(vcpu.requests & x86.KVM_REQ_APF_HALT)
    second = run_process(m, mmu.kvm_mmu_page_fault(vcpu, G << abi.PAGE_SHIFT, 2), until_ns=1)
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
        run_process(m, v0.kvm.twins.kvm_arch_vcpu_reset(v0))
    after = snap()
    ready0 = m.tracer.count("kvm_async_pf_ready")
    for _ in range(2):
        run_process(m, v0.kvm.twins.kvm_check_async_pf_completion(v0))
    out = {"how": how, "before": before, "after": after, "running_waited": running.finished.triggered,
           "pending_ran": pending.finished.triggered,
           "completed": [ev.args[2] >> abi.PAGE_SHIFT for ev in m.tracer.of("kvm_async_pf_completed")],
           "ready_after_clear": m.tracer.count("kvm_async_pf_ready") - ready0,
           "vcpu1_done": [w.arch.gfn for w in v1.async_pf.done], "hash_empty": not hash_slots(m, v0),
           "msr_val": v0.arch.apf.msr_val}
    m.shutdown()
    out["leaks"] = m.leaks()
    out["known_leaks"] = m.known_leaks()  # 2.6.38 never gives back the cancelled item's references
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
