"""Host CPUs, the host scheduler and preempt notifiers (asyncpf.host.hostsched, asyncpf.host.preempt)."""

import pytest

from asyncpf import scenarios
from asyncpf.bm import BmParams, run_bm
from asyncpf.check import explore
from asyncpf.check.invariants import REGISTRY, idle_cpus_with_queue
from asyncpf.host import hostsched, preempt
from asyncpf.sim import Environment

SHORT = BmParams(duration_ns=300_000_000)


def _run(mode, **kw):
    r = run_bm(mode, SHORT.replace(**kw))
    r.pop("machine")
    return r


def test_sysctl_factor_is_the_2638_log_scaling():
    assert [hostsched.sysctl_factor(n) for n in (1, 2, 4, 8, 64)] == [1, 2, 3, 4, 4]


def test_ample_unbound_cpus_without_costs_change_nothing():
    """The scheduler only adds what contention and costs add: with a CPU for everyone and free switches, bm is as before."""
    for mode in ("unpatched", "pv"):
        before = _run(mode)
        after = _run(mode, host_cpus=64, host_sched_costs=False, bound_workers=False)
        assert after["work"] == before["work"]
        assert after["host_sched"]["runq_s"] == 0
        assert 0 <= after["host_sched"]["vcpu_load"] - after["host_sched"]["vcpu_put"] <= 4  # a load per running vcpu


def test_overcommit_makes_vcpus_wait_and_counts_load_put():
    r = _run("unpatched", host_cpus=2)
    h = r["host_sched"]
    assert h["runq_s"] > 0.05                       # 4 vcpus on 2 CPUs: real waiting for a CPU
    assert h["vcpu_load"] > 50 and h["vcpu_put"] > 50
    assert h["load_put_s"] > 0
    assert not r["leaks"]
    assert all("runq" in split for split in r["vcpu_time_s"].values())


def test_default_keeps_the_json_split_unchanged():
    r = _run("halt")
    assert "host_sched" not in r
    assert all(set(split) == {"guest", "host", "stalled", "halted", "idle"} for split in r["vcpu_time_s"].values())


def test_a_woken_thread_on_a_busy_cpu_preempts_guest_code_only_at_an_exit():
    env = Environment(0)
    sched = hostsched.HostScheduler(env, 1, costs=False)
    order = []

    def long():
        yield 50_000_000
        order.append(("long", env.now))

    def short():
        yield 1_000_000
        order.append(("short", env.now))

    sched.spawn(long(), "long")
    sched.spawn(short(), "short")
    env.run()
    # neither is a vcpu, so host work is not cut: they run one after the other on the only CPU
    assert order == [("long", 50_000_000), ("short", 51_000_000)]
    st = sched.stats()
    assert st["short"]["runq_ns"] == 50_000_000


@pytest.mark.parametrize("name", ["vcpu_migrated_with_apf_outstanding", "worker_shares_vcpu_cpu"])
def test_host_cpu_scenarios_pass(name):
    res = scenarios.get(name).run()
    assert res.ok, [c for c in res.checks if not c.passed]


@pytest.mark.parametrize("config", ["host_cpus_one", "host_cpus_halt", "host_cpus_disable", "irq_host_cpus_disable"])
def test_explorer_config_with_fewer_cpus_than_threads_is_clean(config):
    report = explore.explore(config)
    assert report.complete and not report.violations


def test_invariant_catches_a_put_that_leaves_the_state_loaded(monkeypatch):
    def bad_put(vcpu):
        yield preempt._sched(vcpu).costs["vcpu_put_ns"]
    monkeypatch.setattr(preempt, "vmx_vcpu_put", bad_put)
    report = explore.explore("host_cpus_one")
    assert [v.name for v in report.violations] == ["guest_state_loaded_once"]
    assert "guest_state_loaded_once" in REGISTRY


@pytest.mark.parametrize("host_cpus", [1, 2])
def test_a_worker_woken_while_the_vcpu_thread_switches_out_still_runs(host_cpus):
    """The halt path's worker is queued on the vcpu's CPU while kvm_sched_out runs; the CPU must not go idle
    with it queued (it did: the live pv-disable program never finished on the model with host CPUs)."""
    from asyncpf import datafiles
    from asyncpf.live.layout import GuestParams
    from asyncpf.live.modelrun import run_model
    from asyncpf.live.realrun import VmConfig
    cap = datafiles.load_json("live/pv-disable.json")
    run = run_model("interrupt", VmConfig(**cap["vm"]), GuestParams(**cap["params"]), host_cpus=host_cpus)
    assert run.leaks == []
    assert [r.kind for r in run.log][-1] == "done"


def test_an_idle_cpu_with_a_queued_thread_is_a_violation():
    env = Environment(0)
    sched = hostsched.HostScheduler(env, 2, costs=False)
    assert idle_cpus_with_queue(sched) == []
    hostsched.busy_thread(sched, "a", [1000])
    env.run(1)
    assert idle_cpus_with_queue(sched) == []            # woken onto an idle CPU: it runs at once
    t = sched.threads[0]
    sched.cpus[1].rq.queue.append(t.task)           # what the lost wake-up left: queued behind nobody
    assert idle_cpus_with_queue(sched) == ["host cpu1 is idle with a queued"]
    assert "no_idle_cpu_with_queued_thread" in REGISTRY
