"""asyncpf conform: the model's traces conform, planted violations are caught with their rule and line."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import pytest

from asyncpf.conform import NOT_JUDGED, RULES, check
from asyncpf.datafiles import data_path
from asyncpf.scenarios import SCENARIOS
from asyncpf.trace import read

PV = "traces/pv-int-6.18.txt"
HALT = "traces/halt-vcpu3-6.18.txt"


def text_of(name: str) -> str:
    return data_path(name).read_text()


def line_no(text: str, needle: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth]


def replace_line(text: str, n: int, new: str) -> str:
    lines = text.splitlines()
    lines[n - 1] = new
    return "\n".join(lines) + "\n"


def test_every_rule_has_a_source_and_generations():
    for r in RULES.values():
        assert r.source and r.generations and set(r.generations) <= {"seed", "legacy", "interrupt"}
    assert all(why for _what, why in NOT_JUDGED)


@pytest.mark.parametrize("name", [n for n, sc in SCENARIOS.items() if sc.arch == "x86"])
def test_the_models_trace_of_every_scenario_conforms(name):
    result = SCENARIOS[name].run(seed=0, trace=True)
    verdict = check(read(result.tracer.text()))
    assert verdict.ok, verdict.violations
    assert verdict.generation == SCENARIOS[name].generation and not verdict.inferred


@pytest.mark.parametrize("name", [PV, HALT])
def test_the_stored_captures_conform(name):
    verdict = check(read(text_of(name)))
    assert verdict.ok and verdict.generation == "interrupt"


LIVE = sorted(p.name.removesuffix(".json") for p in files("asyncpf.data").joinpath("live").iterdir()
              if p.name.endswith(".json"))


@pytest.mark.parametrize("name", [n for n in LIVE if n != "msr-table"])
def test_the_real_captures_of_this_machine_kind_conform(name):
    """The traces asyncpf.live recorded on a real 6.18 host (PVM backend, data/live/) obey every judged rule."""
    capture = json.loads(data_path(f"live/{name}.json").read_text())
    verdict = check(read(capture["trace"]))
    assert verdict.ok, verdict.violations
    assert verdict.generation == "interrupt" and verdict.inferred


def _pv_plants():
    t = text_of(PV)
    ready = line_no(t, "kvm_async_pf_ready: token 0x2000")
    irq = ready + 1
    np3 = line_no(t, "kvm_async_pf_not_present: token 0x3000")
    try4 = line_no(t, "kvm_try_async_get_page: gva = 0x2000000")
    completed1 = line_no(t, "kvm_async_pf_completed: gva 0x1400000")
    rep = line_no(t, "kvm_async_pf_repeated_fault")
    ack = line_no(t, "msr_write 4b564d07", 1)
    lines = t.splitlines()
    return [
        ("ready token", replace_line(t, ready, lines[ready - 1].replace("0x2000", "0x5000")), ready,
         "ready-answers-not-present"),
        ("ready gva", replace_line(t, ready, lines[ready - 1].replace("gva 0x1800000", "gva 0x1801000")), ready,
         "ready-answers-not-present"),
        ("irq vector", replace_line(t, irq, lines[irq - 1].replace("vec 243", "vec 242")), irq, "page-ready-irq"),
        ("irq level", replace_line(t, irq, lines[irq - 1].replace("edge", "level")), irq, "page-ready-irq"),
        ("np vcpu bits", replace_line(t, np3, lines[np3 - 1].replace("0x3000", "0x3001")), np3, "token-vcpu-bits"),
        ("np counter", replace_line(t, np3, lines[np3 - 1].replace("0x3000", "0x1000")), np3,
         "token-counter-increases"),
        ("np token 0", replace_line(t, np3, lines[np3 - 1].replace("token 0x3000", "token 0x0")), np3,
         "token-nonzero"),
        ("try gva", replace_line(t, try4, lines[try4 - 1].replace("gva = 0x2000000", "gva = 0x2001000")), try4 + 1,
         "try-before-not-present"),
        ("lost completion", replace_line(t, completed1, lines[completed1 - 1].replace("kvm_async_pf_completed: gva 0x1400000", "kvm_async_pf_completed: gva 0x1500000")),
         line_no(t, "kvm_async_pf_ready: token 0x1000"), "completed-for-ready"),
        ("repeated gfn", replace_line(t, rep, lines[rep - 1].replace("gfn = 0x1800", "gfn = 0x1801")), rep,
         "try-before-repeated-fault"),
        ("extra ack", "\n".join(lines[:ack] + [lines[ack - 1]] + lines[ack:]) + "\n", ack + 1,
         "ack-answers-page-ready"),
        ("second ready", "\n".join(lines[:ready] + [lines[ready - 1]] + lines[ready:]) + "\n", ready + 1,
         "one-ready-per-token"),
        ("wake-all gva", t.replace("token 0xffffffff gva 0x0", "token 0xffffffff gva 0x1000"),
         line_no(t, "token 0xffffffff"), "wake-all-shape"),
    ]


@pytest.mark.parametrize("what, text, line, rule", _pv_plants(), ids=[p[0] for p in _pv_plants()])
def test_a_planted_violation_is_caught_with_its_rule_and_line(what, text, line, rule):
    verdict = check(read(text))
    assert (line, rule) in [(v.line, v.rule) for v in verdict.violations], verdict.violations


def test_repeated_fault_on_a_gfn_not_in_flight():
    t = text_of(PV)
    try_line = line_no(t, "kvm_try_async_get_page: gva = 0x1800000", 1)
    rep = try_line + 1
    lines = t.splitlines()
    lines[try_line - 1] = lines[try_line - 1].replace("gfn = 0x1800", "gfn = 0x9000")
    lines[rep - 1] = lines[rep - 1].replace("gfn = 0x1800", "gfn = 0x9000")
    verdict = check(read("\n".join(lines) + "\n"))
    assert [(v.line, v.rule) for v in verdict.violations] == [(rep, "repeated-fault-gfn-outstanding")]


def test_a_planted_violation_in_a_model_trace():
    t = SCENARIOS["wake_before_wait"].run(seed=0, trace=True).tracer.text()
    n = line_no(t, "kvm_async_pf_ready: token 0x0 gva 0x400000")
    verdict = check(read(t.replace("kvm_async_pf_ready: token 0x0 gva 0x400000", "kvm_async_pf_ready: token 0x7000 gva 0x400000")))
    assert [(v.line, v.rule) for v in verdict.violations] == [(n, "ready-answers-not-present")]


def test_a_capture_that_starts_late_is_not_held_against_the_host():
    t = text_of(HALT)
    lines = t.splitlines()
    first_np = line_no(t, "kvm_async_pf_not_present")
    late = "\n".join(lines[:12] + lines[first_np + 1:]) + "\n"  # the first page's try/not-present cut off
    verdict = check(read(late))
    assert verdict.ok and any("starts after its first async PF" in n for n in verdict.notes)


def asyncpf(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "asyncpf", "conform", *args], capture_output=True, text=True,
                          input=stdin)


def test_cli_exit_codes_and_outputs(tmp_path):
    good = str(data_path(PV))
    r = asyncpf(good, str(data_path(HALT)))
    assert r.returncode == 0 and r.stdout.count(": conforms (interrupt generation") == 2 and not r.stderr
    bad = tmp_path / "bad.txt"
    t = text_of(PV)
    n = line_no(t, "vec 243", 1)
    bad.write_text(replace_line(t, n, t.splitlines()[n - 1].replace("vec 243", "vec 7")))
    r = asyncpf(good, str(bad))
    assert r.returncode == 1 and f"{bad}: VIOLATES page-ready-irq" in r.stdout
    assert f"  line {n}: page-ready-irq: " in r.stdout
    r = asyncpf(str(bad), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1 and not report["ok"]
    (v,) = report["files"][0]["violations"]
    assert (v["line"], v["rule"]) == (n, "page-ready-irq") and "x86.c@v6.18" in v["source"]
    r = asyncpf("-", stdin=t)
    assert r.returncode == 0 and r.stdout.startswith("-: conforms")


@pytest.mark.parametrize("content, expect", [
    ("garbage\n", r"line 1: 'garbage': expected '<comm>-<pid>"),
    ("         python3-1       [000] .....     1.000000: kvm_async_pf_ready: token 0x1 gva\n",
     r"line 1: .*does not match kvm_async_pf_ready"),
])
def test_cli_unreadable_input_is_one_line_and_exit_2(tmp_path, content, expect):
    good, bad = str(data_path(PV)), tmp_path / "bad.txt"
    bad.write_text(content)
    r = asyncpf(good, str(bad))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"asyncpf conform: error: {bad}: ")
    import re
    assert re.search(expect, r.stderr)


def test_cli_refusals(tmp_path):
    r = asyncpf(str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "expected an existing file" in r.stderr and r.stdout == ""
    r = asyncpf()
    assert r.returncode == 2 and "expected at least one trace file" in r.stderr
    r = asyncpf(str(data_path(PV)), "--generation", "modern")
    assert r.returncode == 2 and "expected one of seed, legacy, interrupt" in r.stderr
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe")
    r = asyncpf(str(tmp_path / "bin.txt"))
    assert r.returncode == 2 and "not UTF-8" in r.stderr
    r = asyncpf(str(data_path(PV)), "--generation", "legacy")
    assert r.returncode == 2 and "line 13: " in r.stderr and "kvm_entry" in r.stderr
    sched_only = "# tracer: nop\n  bash-1  [000] d..1  10.000001: sched_switch: prev_comm=bash next_comm=a\n"
    for name, text in (("empty.txt", ""), ("header.txt", "# tracer: nop\n#\n"), ("sched.txt", sched_only)):
        (tmp_path / name).write_text(text)
        r = asyncpf(str(tmp_path / name), "--generation", "legacy")
        assert r.returncode == 2 and "no KVM trace events in it" in r.stderr and r.stdout == ""
    r = asyncpf("/dev/zero")                                                          # would never end
    assert r.returncode == 2 and "not a regular file" in r.stderr
    r = asyncpf("--rules")
    assert r.returncode == 0 and all(name in r.stdout for name in RULES) and "not judged" in r.stdout
