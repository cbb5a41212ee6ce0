"""Scenarios on the async-PF fault path: page-ready before not-present, a fault on an outstanding gfn, a full queue."""

from __future__ import annotations

from ..guest import kvm as pv
from ..guest.ops import Work
from .stage import Stage, _prog, _touch, scenario


@scenario("wake_before_wait",
          "page-ready for T reaches the guest before its not-present for T (forced: at the instant KVM queues "
          "not-present T, the guest twin kvm_async_pf_task_wake(T) runs on the cpu -- a page-ready routed "
          "there, as msr.txt allows -- since on one vcpu the pending #PF gates page-ready): a dummy is left, "
          "the wait consumes it without sleeping; KVM's own later page-ready T then finds no waiter and "
          "leaves a second dummy (expected leak)")
def _wake_before_wait(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    cpu0 = s.kernel.cpus[0]
    seen: dict[str, int] = {}

    def early_wake(t_ns: int, fields: dict) -> None:
        token = fields["token"]
        seen["token"] = token
        seen["dummies_before"] = s.kernel.stats["dummies_created"]

        def wake() -> None:
            pv.kvm_async_pf_task_wake(cpu0, token)
            seen["dummy_at_wake"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers)
                                        if n.task is None and n.token == token)
        s.at(0, wake)

    s.on("kvm_async_pf_not_present", early_wake)
    task = s.spawn("A", _prog(_touch(s.gva(gfn))))
    s.finish([task], expect=lambda: [(
        f"guest: dummy node for token {seen.get('token', -1):#x} on cpu 0",
        "KVM's own page-ready for T arrives after the early wake and finds no waiter: a duplicated "
        "page-ready is never consumed (why the host must send exactly one page-ready per delivered "
        "not-present)")])
    token = seen.get("token")
    st = s.kernel.stats
    s.check("not-present injected for T", token is not None and m.vcpus[0].stat["apf_not_present_injected"] >= 1,
            f"token {token!r}")
    s.check("the early wake left a dummy node for T", seen.get("dummy_at_wake") == 1,
            f"dummies for T right after the wake: {seen.get('dummy_at_wake')}")
    s.check("the wait consumed the dummy", st["dummies_consumed"] == 1, f"dummies_consumed={st['dummies_consumed']}")
    s.check("the waiter never slept", st["sleeps"] == 0 and st["halted_waits"] == 0,
            f"sleeps={st['sleeps']} halted_waits={st['halted_waits']}")
    s.check("the retry met the outstanding gfn (doublefault -> APF halt) and then succeeded",
            s.since_boot("kvm_async_pf_doublefault") >= 1 and m.vcpus[0].stat["apf_halts"] >= 1,
            f"doublefaults={s.since_boot('kvm_async_pf_doublefault')} apf_halts={m.vcpus[0].stat['apf_halts']}")
    s.check("KVM's own page-ready for T created a second dummy", st["dummies_created"] == 2,
            f"dummies_created={st['dummies_created']}")


@scenario("repeated_fault_halts",
          "two tasks on one vcpu touch the same swapped page (2010 HDD): the first gets not-present and sleeps, "
          "the second faults on the outstanding gfn -> kvm_async_pf_doublefault, the vcpu is APF-halted until "
          "the page arrives, then both finish")
def _repeated_fault_halts(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    a = s.spawn("first", _prog(_touch(s.gva(gfn))))
    b = s.spawn("second", _prog(Work(50_000), _touch(s.gva(gfn))))
    s.finish([a, b])
    v = m.vcpus[0]
    s.check("one not-present injected (the first task)", v.stat["apf_not_present_injected"] == 1,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("first task slept", s.kernel.stats["sleeps"] >= 1, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("kvm_async_pf_doublefault traced", s.since_boot("kvm_async_pf_doublefault") >= 1,
            f"{s.since_boot('kvm_async_pf_doublefault')} doublefault events")
    s.check("vcpu APF-halted", v.stat["apf_halts"] >= 1, f"apf_halts={v.stat['apf_halts']}")
    s.check("halted time > 0", v.acct["halted"] > 0, f"halted={v.acct['halted']} ns")
    s.check("only one swap-in for the page", m.mm.stats["swapins"] >= 1 and m.kvm.stat.async_pf_allocated - 0 >= 1,
            f"swapins={m.mm.stats['swapins']}")


@scenario("queue_full_falls_back_to_sync",
          "66 tasks on one vcpu each touch a distinct swapped page of a 2010 HDD: 64 APFs are outstanding, the "
          "65th fault finds the queue full (ASYNC_PF_PER_VCPU) and runs gfn_to_pfn synchronously in the vcpu "
          "thread (stalled time, async_pf_limit_hits)")
def _queue_full(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    gfns = s.swapped(66)
    peak = {"queued": 0}

    def watch(t_ns: int, fields: dict) -> None:
        peak["queued"] = max(peak["queued"], m.vcpus[0].async_pf.queued)

    s.on("kvm_async_pf_not_present", watch, once=False)
    tasks = [s.spawn(f"t{i}", _prog(_touch(s.gva(g)))) for i, g in enumerate(gfns)]
    s.finish(tasks)
    v = m.vcpus[0]
    limit = m.gen.async_pf_per_vcpu
    s.check(f"{limit} APFs outstanding at the peak", peak["queued"] == limit, f"peak queued={peak['queued']}")
    s.check("the queue limit was hit", v.stat["async_pf_limit_hits"] >= 1,
            f"async_pf_limit_hits={v.stat['async_pf_limit_hits']}")
    s.check("synchronous fallback: stalled time > 0", v.acct["stalled"] > 0, f"stalled={v.acct['stalled']} ns")
    s.check("never more than 64 not-present in flight", m.kvm.stat.async_pf_allocated <= len(gfns) + 1,
            f"allocated={m.kvm.stat.async_pf_allocated}")
