"""The 2.6.38 wake-all quirk: a wake-all after not-present T leaves a dummy for T's page-ready."""

from __future__ import annotations

from typing import Any

from ..host import x86
from .stage import Stage, _prog, _touch, scenario


@scenario("wakeall_after_not_present_leaks_dummy",
          "2.6.38 quirk: a wake-all (the VMM re-writing MSR_KVM_ASYNC_PF_EN, e.g. after migration, without "
          "clearing the queue) arrives after not-present T: the sleeper wakes early and retries (doublefault "
          "-> APF halt), and the real page-ready T later finds nobody and leaves a dummy that is never freed "
          "(expected leak)")
def _wakeall_dummy(s: Stage) -> None:
    m = s.build(swap="hdd_7200_2010")
    (gfn,) = s.swapped(1)
    v = m.vcpus[0]
    snap: dict[str, Any] = {}

    def rewrite():
        r = yield from x86.kvm_set_msr_common(v, v.kvm.abi.msr_async_pf_en, v.arch.apf.msr_val)
        snap["r"] = r
        v.kick()

    s.on("kvm_async_pf_not_present", lambda t_ns, f: snap.setdefault("token", f["token"]))
    a = s.spawn("a", _prog(_touch(s.gva(gfn))))
    s.at(200_000, lambda: m.env.process(rewrite(), "vmm-set-msr"))
    s.finish([a], expect=lambda: [(
        f"guest: dummy node for token {snap.get('token', -1):#x} on cpu 0",
        "the page-ready for T after the early wake-all finds nobody waiting; 2.6.38 never frees it")])
    s.check("the MSR rewrite queued a wake-all", snap.get("r") == 0, f"{snap}")
    s.check("the sleeper slept, was woken early and halted on its retry",
            s.kernel.stats["sleeps"] == 1 and v.stat["apf_halts"] >= 1,
            f"sleeps={s.kernel.stats['sleeps']} apf_halts={v.stat['apf_halts']}")
    s.check("the late page-ready created a dummy", s.kernel.stats["dummies_created"] == 1,
            f"dummies_created={s.kernel.stats['dummies_created']}")
