"""Scenarios on APF lifecycle events with APFs outstanding: MSR disable, vcpu reset, migration, cpu offline."""

from __future__ import annotations

from typing import Any

from .. import abi
from ..guest import kvm as pv
from ..guest.ops import Work
from ..host import x86
from ..standin import read_reason
from .stage import Stage, _prog, _touch, scenario


@scenario("msr_disable_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when a guest kernel thread writes 0 to MSR_KVM_ASYNC_PF_EN and "
          "then wakes its waiters (apf_task_wake_all): the host clears the queue (waiting for running workers), "
          "no page-ready follows, references balance, the woken tasks retry and finish")
def _msr_disable(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def disable():
        snap["queued_before"] = v.async_pf.queued
        yield from pv.kvm_pv_disable_apf(cpu0)              # raw WRMSR 0
        snap["queue_after"] = (len(v.async_pf.queue), len(v.async_pf.done), v.async_pf.queued)
        snap["injected"] = v.stat["apf_injected"]
        snap["guest_ready"] = cpu0.stats["apf_ready"]
        snap["hash_empty"] = bool((v.arch.apf.gfns == x86.GFN_SLOT_EMPTY).all())
        pv.apf_task_wake_all(cpu0)

    a, b = s.touchers(2)
    k = s.spawn("disabler", _prog(Work(100_000), disable))
    s.finish([a, b, k])
    s.check("two APFs were outstanding at the disable", snap.get("queued_before") == 2, f"{snap}")
    s.check("the MSR write cleared queue, done and queued", snap.get("queue_after") == (0, 0, 0), f"{snap}")
    s.check("the gfn hash was reset", snap.get("hash_empty") is True, f"{snap}")
    s.check("no event injected after the disable", v.stat["apf_injected"] == snap.get("injected") and
            cpu0.stats["apf_ready"] == snap.get("guest_ready"),
            f"apf_injected {snap.get('injected')} -> {v.stat['apf_injected']}")
    s.check("both sleepers had slept", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("APF is off on the host", not v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED,
            f"msr_val={v.arch.apf.msr_val:#x}")


@scenario("vcpu_reset_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when the VMM resets the vcpu (reset_pending): queue cleared and "
          "nothing delivered; the guest re-registers (kvm_guest_cpu_init) and the host's wake-all makes the "
          "sleepers retry")
def _vcpu_reset(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def reregister():
        snap["after_reset"] = (v.arch.apf.msr_val, len(v.async_pf.queue), len(v.async_pf.done), v.async_pf.queued)
        snap["ready_before"] = cpu0.stats["apf_ready"]
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None)
        yield from cpu0.kernel.twins.kvm_guest_cpu_init(cpu0)

    def reset() -> None:
        snap["queued_at_reset"] = v.async_pf.queued
        snap["events_at_reset"] = s.events["kvm_async_pf_ready"]
        v.reset_pending = True
        v.kick()
        s.spawn("reregister", _prog(reregister))

    a, b = s.touchers(2)
    s.at(300_000, reset)
    s.finish([a, b])
    s.check("two APFs outstanding at the reset", snap.get("queued_at_reset") == 2, f"{snap}")
    s.check("reset: APF off, queue and done empty", snap.get("after_reset") == (0, 0, 0, 0), f"{snap}")
    s.check("both tasks were still asleep before re-registration", snap.get("sleepers") == 2, f"{snap}")
    s.check("nothing delivered between reset and re-registration", snap.get("ready_before") == 1, f"{snap} (1 = boot wake-all)")
    s.check("exactly one page-ready after the reset: the wake-all",
            s.events["kvm_async_pf_ready"] - snap.get("events_at_reset", 0) == 1 and cpu0.stats["apf_ready"] == 2,
            f"ready events since reset={s.events['kvm_async_pf_ready'] - snap.get('events_at_reset', 0)}")
    s.check("APF enabled again", bool(v.arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED) or m.shut_down,
            f"msr_val={v.arch.apf.msr_val:#x}")


@scenario("migration_wakes_all",
          "two tasks sleep on APFs (2010 HDD) when the VM migrates: the VMM saves MSR_KVM_ASYNC_PF_EN, the "
          "destination vcpu starts from reset state (no queue: reset_pending on the vcpu thread), and after the "
          "downtime the VMM restores the MSR (kvm_pv_enable_async_pf) -> one wake-all (token 0xffffffff) wakes "
          "both sleepers, which retry on the destination")
def _migration(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}
    tokens: list[int] = []
    orig = cpu0.deliver_exception

    def spy(vcpu, nr, error_code):  # what the guest is told: page-ready tokens, as CR2 carries them
        if nr == x86.PF_VECTOR and read_reason(vcpu) == abi.KVM_PV_REASON_PAGE_READY:
            tokens.append(vcpu.arch.cr2 & abi.U32)
        orig(vcpu, nr, error_code)

    def stop_source() -> None:
        snap["saved"] = v.arch.apf.msr_val
        snap["queued"] = v.async_pf.queued
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None)
        snap["tokens_before"] = len(tokens)
        v.reset_pending = True          # the destination vcpu: fresh state, empty queue
        v.kick()

    def restore() -> None:              # KVM_SET_MSRS from the VMM on the destination
        snap["before_restore"] = (v.arch.apf.msr_val, v.async_pf.queued, len(tokens) - snap["tokens_before"],
                                  sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None))
        gen = x86.kvm_set_msr_common(v, v.kvm.abi.msr_async_pf_en, snap["saved"])
        try:
            while True:
                next(gen)               # the enable path never waits
        except StopIteration as stop:
            snap["restore"] = stop.value
        snap["done"] = [w.wakeup_all for w in v.async_pf.done]
        v.kick()

    cpu0.deliver_exception = spy
    a, b = s.touchers(2)
    s.at(300_000, stop_source)
    s.at(100_000_000, restore)
    s.finish([a, b])
    s.check("two sleepers and two APFs when the source stopped",
            snap.get("queued") == 2 and snap.get("sleepers") == 2, f"{snap}")
    s.check("destination before the restore: APF off, no queue, nothing delivered, both still asleep",
            snap.get("before_restore") == (0, 0, 0, 2), f"{snap}")
    s.check("MSR restore accepted and queued one wake-all", snap.get("restore") == 0 and snap.get("done") == [True],
            f"{snap}")
    after = tokens[snap.get("tokens_before", 0):]
    s.check("page-ready after migration: only token 0xffffffff", after == [abi.BROADCAST_TOKEN],
            f"page-ready tokens after migration: {[hex(t) for t in after]}")
    s.check("both sleepers had slept", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")


@scenario("cpu_offline_wakes_all",
          "two vcpus; two tasks on cpu1 sleep on APFs (2010 HDD) when kvm_guest_cpu_offline runs on cpu1: APF "
          "off there (the MSR write waits for the running workers), every local sleeper woken; their next "
          "faults on swapped pages are APF-halted on the host (no #PF); cpu0 keeps APF on")
def _cpu_offline(s: Stage) -> None:
    m = s.build(vcpus=2, swap="hdd_7200_2010")
    g1, g2, g3, g4 = s.swapped(4)
    v1 = m.vcpus[1]
    cpu1 = s.kernel.cpus[1]
    snap: dict[str, Any] = {}

    def offline():
        snap["sleepers"] = sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None and n.cpu == 1)
        snap["queued"] = v1.async_pf.queued
        yield from pv.kvm_guest_cpu_offline(cpu1)
        snap["after"] = (cpu1.apf_enabled, v1.arch.apf.msr_val, v1.async_pf.queued,
                         sum(1 for _ in pv.all_nodes(s.kernel.sleepers)))
        snap["halts"] = v1.stat["apf_halts"]

    a = s.spawn("a", _prog(_touch(s.gva(g1)), _touch(s.gva(g3))), cpu=1)
    b = s.spawn("b", _prog(_touch(s.gva(g2)), _touch(s.gva(g4))), cpu=1)
    k = s.spawn("cpuhp/1", _prog(Work(100_000), offline), cpu=1)
    s.finish([a, b, k])
    s.check("two sleepers on cpu1 when it went down", snap.get("sleepers") == 2 and snap.get("queued") == 2, f"{snap}")
    s.check("APF off on cpu1, queue empty, no node left", snap.get("after") == (False, 0, 0, 0), f"{snap}")
    s.check("later faults on cpu1 were APF-halted, not injected",
            v1.stat["apf_halts"] >= 2 + snap.get("halts", 0) and v1.acct["halted"] > 0
            and v1.stat["apf_not_present_injected"] == 2,
            f"apf_halts={v1.stat['apf_halts']} halted={v1.acct['halted']} ns "
            f"not_present_injected={v1.stat['apf_not_present_injected']}")
    s.check("no sleep after the offline", s.kernel.stats["sleeps"] == 2, f"sleeps={s.kernel.stats['sleeps']}")
    s.check("cpu0 still has APF on", s.kernel.cpus[0].apf_enabled and
            bool(m.vcpus[0].arch.apf.msr_val & abi.KVM_ASYNC_PF_ENABLED), "")
