"""The named scenarios (asyncpf.scenarios): each one's own checks, determinism, and the command line."""

from __future__ import annotations

import json

import pytest

from asyncpf import abi, scenarios
from asyncpf.__main__ import main as cli_main
from asyncpf.trace import parse

NAMES = list(scenarios.SCENARIOS)
REQUIRED = [
    "wake_before_wait", "repeated_fault_halts", "queue_full_falls_back_to_sync",
    "kernel_mode_fault_without_send_always", "non_preemptible_context_halts", "msr_disable_with_outstanding",
    "vcpu_reset_with_outstanding", "migration_wakes_all", "cpu_offline_wakes_all", "mmio_gfn", "error_gfn",
    "reclaim_races_fault", "allocation_failure_falls_back",
]
REQUIRED_WAKING = [
    "page_ready_exception_does_not_wake_halted_vcpu", "page_ready_interrupt_wakes_halted_vcpu",
    "ppc_woken_by_level_interrupt", "ppc_level_redelivered_until_unset", "ppc_edge_only_lost_and_spurious",
    "ppc_decrementer_wakes",
]
REQUIRED_INTERRUPT = [
    "ack_handshake", "page_ready_waits_for_free_slot", "wake_all_at_enable", "interrupt_msr_disable_with_outstanding",
    "interrupt_vcpu_reset_with_outstanding", "kernel_mode_fault_halts_without_page_ready",
    "legacy_guest_on_interrupt_host", "lapic_disabled_holds_page_ready",
]
# Scenarios that show a bug in the model (not in the kernel it mirrors): they must fail until it is fixed.
MODEL_BUGS: dict[str, str] = {}


def _param(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=MODEL_BUGS[name])] if name in MODEL_BUGS else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module")
def results():
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = scenarios.get(name).run()
        return cache[name]

    return get


def test_registry_has_the_named_scenarios():
    assert set(REQUIRED) <= set(NAMES) and set(REQUIRED_INTERRUPT) <= set(NAMES) and set(REQUIRED_WAKING) <= set(NAMES)
    assert {n for n in NAMES if scenarios.get(n).arch != "x86"} == {n for n in REQUIRED_WAKING if n.startswith("ppc_")}
    for sc in scenarios.SCENARIOS.values():
        assert sc.summary and "\n" not in sc.summary
        assert sc.generation in abi.MODELLED
    assert all(scenarios.get(n).generation == "legacy" for n in REQUIRED)
    assert all(scenarios.get(n).generation == "interrupt" for n in REQUIRED_INTERRUPT)


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_scenario_ok(results, name):
    r = results(name)
    failed = [f"{c.name}: {c.detail}" for c in r.checks if not c.passed]
    assert not failed, failed
    assert r.unexpected_leaks == []
    assert all(line in r.leaks for line in r.expected_leaks)
    assert r.ok
    if scenarios.get(name).arch != "x86":  # a Book3S vcpu without a Machine: its own quiescence check
        assert r.machine is None and r.tracer is None
        assert any(c.name.startswith("quiescent at the end") for c in r.checks)
        return
    assert any(c.name == "quiescent after shutdown (leaks)" for c in r.checks)
    assert any(c.name in ("every task exited", "the test program ran to its end") for c in r.checks)
    assert r.machine.shut_down


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_deterministic(results, name):
    again = scenarios.get(name).run(seed=0)
    if again.tracer is not None:
        assert again.tracer.text() == results(name).tracer.text()
    assert [(c.name, c.passed, c.detail) for c in again.checks] == [
        (c.name, c.passed, c.detail) for c in results(name).checks]
    assert again.ok  # (xfail for the model bugs)


def test_expected_leaks_are_only_stale_dummies(results):
    for name in NAMES:
        if name in MODEL_BUGS:
            continue
        for line in results(name).expected_leaks:
            assert line.startswith("guest: dummy node for token "), (name, line)


def _cli(argv):
    scenarios  # registers the command
    return cli_main(["scenario", *argv])


def test_cli_list(capsys):
    assert _cli(["--list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == len(NAMES)
    for name in REQUIRED:
        assert any(line.split()[0] == name for line in lines), name


def test_cli_list_by_generation(capsys):
    assert _cli(["--list", "--generation", "interrupt"]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert shown == [n for n in NAMES if scenarios.get(n).generation == "interrupt"]
    assert set(REQUIRED_INTERRUPT) | {"kvm_unit_tests_asyncpf"} <= set(shown)
    assert _cli(["--list", "--generation", "legacy", "--json"]) == 0
    assert {s["generation"] for s in json.loads(capsys.readouterr().out)} == {"legacy"}


def test_cli_refuses_a_scenario_of_another_generation(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli(["ack_handshake", "--generation", "legacy"])
    assert exc.value.code == 2
    assert "ack_handshake" in capsys.readouterr().err
    assert _cli(["ack_handshake", "--generation", "interrupt", "--trace-lines", "0"]) == 0


def test_cli_json(capsys):
    assert _cli(["repeated_fault_halts", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {"name", "ok", "checks", "leaks", "counts"} <= set(obj)
    assert obj["name"] == "repeated_fault_halts" and obj["ok"] is True and obj["leaks"] == []
    assert all(set(c) == {"name", "passed", "detail"} for c in obj["checks"])
    assert obj["counts"]["kvm_async_pf_doublefault"] >= 1


def test_cli_text_and_trace_file(tmp_path, capsys):
    path = tmp_path / "trace.txt"
    assert _cli(["wake_before_wait", "--trace", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" not in out and "kvm_async_pf_not_present" in out
    assert "expected: guest: dummy node" in out
    events = parse(path.read_text())
    assert any(e.name == "kvm_async_pf_not_present" for e in events)
    assert path.read_text() == scenarios.get("wake_before_wait").run().tracer.text()


def test_cli_failing_scenario_exits_1(capsys, monkeypatch):
    def body(stage):
        stage.build()
        stage.check("deliberately false", False, "a test double")
        stage.finish([])

    monkeypatch.setitem(scenarios.SCENARIOS, "always_fails",
                        scenarios.Scenario("always_fails", "fails on purpose", "legacy", body))
    assert _cli(["always_fails"]) == 1
    assert "FAIL  deliberately false" in capsys.readouterr().out


def test_cli_unknown_name_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli(["wake_before_wiat"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "wake_before_wiat" in err and "wake_before_wait" in err


def test_cli_book3s_scenario_prints_checks_and_counts_without_a_trace(capsys):
    assert _cli(["ppc_edge_only_lost_and_spurious"]) == 0
    out = capsys.readouterr().out
    assert "PASS  edge only: one event lost" in out and "FAIL" not in out and "no ftrace events" in out
    assert '"edge_spurious": 1' in out and "leak check" not in out


@pytest.mark.parametrize("option", ["--trace", "--perfetto"])
def test_cli_refuses_a_trace_of_a_book3s_scenario(tmp_path, capsys, option):
    path = tmp_path / "out.json"
    with pytest.raises(SystemExit) as exc:
        _cli(["ppc_decrementer_wakes", option, str(path)])
    assert exc.value.code == 2 and not path.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0] and "ppc_decrementer_wakes" in err[0] and "x86" in err[0]


def test_cli_needs_a_name(capsys):
    with pytest.raises(SystemExit) as exc:
        _cli([])
    assert exc.value.code == 2


# --- kvm-unit-tests x86/asyncpf.c (interrupt version) on the model ---------------------------------------

def test_kvm_unit_tests_asyncpf_passes_as_the_test_itself_reports(results):
    r = results("kvm_unit_tests_asyncpf")
    test = r.machine.vcpus[0].guest
    pages = test.buf_pages                               # every page of the buffer, each faulted once
    assert test.finished and test.asyncpf_num == pages == r.counts["apf_not_present_injected"] > 0
    assert test.reports == [
        ("PASS", "Wakeup all, got token 0xffffffff"),
        ("PASS", f"get {pages} async pf events ('page not present' #PF event with matched 'page ready' interrupt event )"),
    ]
    msrs = [(e.args[1], e.args[2]) for e in r.tracer.events if e.name == "kvm_msr"]
    # INT before EN, EN = &apf_reason | SEND_ALWAYS | ENABLED | DELIVERY_AS_INT, then one ACK per page-ready
    assert msrs[:2] == [(0x4B564D06, 0xF3), (0x4B564D02, 0x3000 | 0b1011)]
    assert msrs[2:] == [(0x4B564D07, 1)] * (pages + 1)                # the wake-all and each page-ready


def test_kvm_unit_tests_asyncpf_skips_without_async_pf_int():
    def no_int_bit(stage):
        stage.m.vcpus[0].arch.cpuid_features = 1 << 4          # a host that offers only KVM_FEATURE_ASYNC_PF

    r = scenarios.get("kvm_unit_tests_asyncpf").run(on_built=no_int_bit)
    test = r.machine.vcpus[0].guest
    assert test.reports == [("SKIP", "KVM_FEATURE_ASYNC_PF_INT is not supported")]
    assert not [e for e in r.tracer.events if e.name == "kvm_msr"]
    assert not r.ok and "the test's own verdict" in [c.name for c in r.checks if not c.passed][0]
