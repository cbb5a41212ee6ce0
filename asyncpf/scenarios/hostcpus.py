"""Scenarios on host CPUs and preempt notifiers: a vcpu migrated with an APF outstanding; a worker sharing the vcpu's CPU.

The machine gets host CPUs (:func:`asyncpf.host.hostsched.attach`) before it
boots; everything else is the ordinary small guest.
"""

from __future__ import annotations

from typing import Any

from ..host import hostsched
from .stage import Stage, scenario


@scenario("vcpu_migrated_with_apf_outstanding",
          "one vcpu on two host CPUs (TSC unstable); a task sleeps on an APF (2010 HDD) and the vcpu halts; a VMM "
          "I/O thread then takes host CPU 0, so the vcpu's next wake-up lands on CPU 1: kvm_sched_in loads it "
          "there (VMCLEAR on CPU 0 by IPI, VMPTRLD, TSC offset moved back), the page-ready still arrives, and "
          "the guest state is never loaded on both CPUs")
def _migrated(s: Stage) -> None:
    box: dict[str, Any] = {}
    m = s.build(vcpus=1, swap="hdd_7200_2010",
                before_boot=lambda mach: box.setdefault("sched", hostsched.attach(mach, 2, tsc_unstable=True)))
    sched = box["sched"]
    v = m.vcpus[0]
    snap: dict[str, Any] = {}

    def on_not_present(_t: int, _f: dict) -> None:
        snap["cpu_at_fault"] = v.host_cpu
        snap["migrations_before"] = v.stat["vcpu_migrations"]
        snap["tsc_before"] = getattr(v, "tsc_offset", 0)
        s.at(200_000, lambda: hostsched.busy_thread(sched, "qemu-io", [3_000_000] * 4, pinned=v.host_cpu))

    def on_ready(_t: int, _f: dict) -> None:
        snap["cpu_at_ready"] = v.host_cpu
        snap["migrations_at_ready"] = v.stat["vcpu_migrations"]

    s.on("kvm_async_pf_not_present", on_not_present)
    s.on("kvm_async_pf_ready", on_ready)
    both: list[int] = []

    def watch(_t: int, _n: str, _f: dict) -> None:
        both.append(sum(1 for c in sched.cpus if c.loaded is v))

    s.hooks.append(watch)
    tasks = s.touchers(1)
    s.finish(tasks)
    s.check("an APF was outstanding when the vcpu moved",
            snap.get("migrations_at_ready", 0) > snap.get("migrations_before", snap.get("migrations_at_ready", 0)),
            f"{snap}")
    s.check("the vcpu moved to the other host CPU while the APF was outstanding",
            snap.get("cpu_at_ready") is not None and snap.get("cpu_at_ready") != snap.get("cpu_at_fault")
            and v.stat["vcpu_migrations"] > snap.get("migrations_before", 0), f"{snap}, migrations "
            f"{v.stat['vcpu_migrations']}")
    s.check("the old CPU's VMCS was cleared (vcpu_clear) on the move", v.stat["vcpu_clear"] >= 1,
            f"vcpu_clear={v.stat['vcpu_clear']}")
    s.check("unstable TSC: the guest's TSC offset moved back by the time away", getattr(v, "tsc_offset", 0)
            < snap.get("tsc_before", 0) and v.stat["tsc_adjust"] > 0,
            f"tsc_offset {snap.get('tsc_before')} -> {getattr(v, 'tsc_offset', 0)}")
    s.check("the guest state was never loaded on two CPUs at once", max(both, default=0) <= 1,
            f"max loaded={max(both, default=0)}")
    s.check("every load was matched by a put (the thread ended with vcpu_put)",
            v.stat["vcpu_load"] == v.stat["vcpu_put"], f"load={v.stat['vcpu_load']} put={v.stat['vcpu_put']}")


@scenario("worker_shares_vcpu_cpu",
          "one vcpu on one host CPU: a task's APF (2010 HDD) queues work on the bound kworker of the vcpu's own "
          "CPU, so worker and vcpu thread take turns; the worker waits for the CPU, the vcpu is put and loaded "
          "around every switch, and the APF completes")
def _shared(s: Stage) -> None:
    box: dict[str, Any] = {}
    m = s.build(vcpus=1, swap="hdd_7200_2010",
                before_boot=lambda mach: box.setdefault("sched", hostsched.attach(mach, 1)))
    sched = box["sched"]
    v = m.vcpus[0]
    loads0 = v.stat["vcpu_load"]
    tasks = s.touchers(2)
    s.finish(tasks)
    workers = [t for t in sched.threads if t.vcpu is None]
    s.check("two async PF workers ran, both on CPU 0 (bound kworkers)",
            len(workers) >= 2 and all(t.pinned == 0 for t in workers), f"{[(t.name, t.pinned) for t in workers]}")
    s.check("a worker waited for the CPU the vcpu held", sum(t.runq_ns for t in workers) > 0,
            f"worker runq ns={sum(t.runq_ns for t in workers)}")
    s.check("the vcpu was put and loaded around the switches", v.stat["vcpu_load"] - loads0 >= 2,
            f"loads after boot={v.stat['vcpu_load'] - loads0}")
    s.check("both APFs completed", m.kvm.stat.async_pf_completed >= 2, f"{m.kvm.stat.async_pf_completed}")
