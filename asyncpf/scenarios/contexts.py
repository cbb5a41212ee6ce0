"""Scenarios on the guest context of the fault: kernel mode without SEND_ALWAYS, a preempt-disabled section."""

from __future__ import annotations

from .. import abi
from ..guest.ops import PreemptDisable, PreemptEnable, Work
from .stage import Stage, _prog, _touch, scenario


@scenario("kernel_mode_fault_without_send_always",
          "a non-preemptible guest (no SEND_ALWAYS) touches swapped memory from kernel mode (Touch(kernel=True), "
          "a copy_to_user): KVM sets up the APF but halts the vcpu instead of injecting #PF at CPL0; the later "
          "page-ready is still sent and leaves a stale dummy (expected leak, fixed in 2020)")
def _kernel_mode_no_send_always(s: Stage) -> None:
    m = s.build(preemptible=False)
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    s.check("guest registered without SEND_ALWAYS", v.arch.apf.send_user_only and
            v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED, f"msr_val={v.arch.apf.msr_val:#x}")
    token: list[int] = []
    s.on("kvm_async_pf_not_present", lambda t_ns, f: token.append(f["token"]))
    t = s.spawn("syscall", _prog(_touch(s.gva(gfn), kernel=True)))
    s.finish([t], expect=lambda: [(
        f"guest: dummy node for token {token[0] if token else -1:#x} on cpu 0",
        "2.6.38 sends page-ready even for a not-present it never injected (halted instead): the guest "
        "finds no waiter and keeps a dummy for ever -- the 2020 notpresent_injected fix")])
    s.check("an APF was set up (not-present traced)", s.since_boot("kvm_async_pf_not_present") == 1,
            f"{s.since_boot('kvm_async_pf_not_present')} not-present events")
    s.check("no #PF injected at CPL0", v.stat["apf_not_present_injected"] == 0,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("vcpu APF-halted instead", v.stat["apf_halts"] >= 1 and v.acct["halted"] > 0,
            f"apf_halts={v.stat['apf_halts']} halted={v.acct['halted']} ns")
    s.check("the guest never waited", s.kernel.stats["sleeps"] == 0 and s.kernel.stats["halted_waits"] == 0,
            f"stats={dict(s.kernel.stats)}")


@scenario("non_preemptible_context_halts",
          "a preemptible guest (SEND_ALWAYS) takes not-present inside a preempt-disabled kernel section: "
          "it cannot schedule, so kvm_async_pf_task_wait halts the cpu (STI;HLT) and page-ready wakes it "
          "with a reschedule IPI")
def _non_preemptible(s: Stage) -> None:
    m = s.build()
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    ipis = s.kernel.stats["resched_ipis"]
    s.check("guest registered with SEND_ALWAYS", not v.arch.apf.send_user_only, f"msr_val={v.arch.apf.msr_val:#x}")
    spawn_ipis = 1
    t = s.spawn("spinlocked", _prog(PreemptDisable(), _touch(s.gva(gfn), kernel=True), PreemptEnable()))
    other = s.spawn("other", _prog(Work(200_000)))
    s.finish([t, other])
    st = s.kernel.stats
    s.check("not-present injected at CPL0", v.stat["apf_not_present_injected"] == 1,
            f"apf_not_present_injected={v.stat['apf_not_present_injected']}")
    s.check("the wait halted instead of sleeping", st["halted_waits"] == 1 and st["sleeps"] == 0,
            f"halted_waits={st['halted_waits']} sleeps={st['sleeps']}")
    s.check("page-ready woke it with a reschedule IPI", st["resched_ipis"] - ipis > 2 * spawn_ipis,
            f"resched_ipis since spawn={st['resched_ipis'] - ipis} (2 of them are the spawns)")
    s.check("no APF halt on the host", v.stat["apf_halts"] == 0, f"apf_halts={v.stat['apf_halts']}")
