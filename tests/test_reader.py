"""The tolerant trace reader (asyncpf.trace.read) and the modern-layout writer."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncpf.datafiles import data_path
from asyncpf.trace import (
    Capture,
    TraceParseError,
    Tracer,
    is_apf_event,
    parse,
    read,
    render,
    tracepoints,
)

SAMPLES = ("traces/pv-int-6.18.txt", "traces/halt-vcpu3-6.18.txt")
LIVE_LINE = "         python3-19722   [000] .N...  1566.719752: kvm_try_async_get_page: gva = 0x1400000, gfn = 0x1400"


def sample(name: str) -> str:
    return data_path(name).read_text()


@pytest.mark.parametrize("name", SAMPLES)
def test_stored_captures_read_and_write_back_byte_for_byte(name):
    text = sample(name)
    cap = read(text)
    assert (cap.generation, cap.inferred, cap.layout) == ("interrupt", True, "modern")
    assert cap.write().replace("# asyncpf generation: interrupt\n", "") == text
    again = read(cap.write())  # one line longer: the generation line
    assert [e._replace(line=e.line - 1) for e in again.entries] == cap.entries and not again.inferred


def test_the_line_measured_on_this_machine_kind():
    cap = read(LIVE_LINE + "\n", "interrupt")
    (e,) = cap.entries
    assert e.flags == ".N..." and e.known and e.line == 1
    assert e.event == cap.events[0]
    assert (e.event.comm, e.event.pid, e.event.cpu, e.event.t_ns) == ("python3", 19722, 0, 1566_719_752_000)
    assert e.event.args == (0x1400000, 0x1400)
    assert cap.write().splitlines()[-1] == LIVE_LINE


def test_other_events_are_kept_opaque_or_skipped():
    text = sample("traces/pv-int-6.18.txt")
    cap = read(text)
    opaque = [e for e in cap.entries if not e.known]
    assert {e.event.name for e in opaque} == {"kvm_vcpu_wakeup", "kvm_userspace_exit"}
    assert opaque[0].event.args == ("wait time 3581214 ns, polling valid",)
    skipped = read(text, other="skip")
    assert skipped.events == cap.events and all(e.known for e in skipped.entries)
    with pytest.raises(TraceParseError, match=r"^line \d+: .*unknown event 'kvm_vcpu_wakeup'"):
        read(text, other="error")


def _as_trace_cmd(text: str) -> str:
    """The same events as `trace-cmd report` prints them (tracecmd/trace-read.c: no irq flags by default,
    "%16s-%-5d [%03d]", the time, " <name>: " padded to 20)."""
    out = ["version = 7", "cpus=2"]
    for e in read(text).entries:
        ev = e.event
        msg = tracepoints("interrupt")[ev.name].message(ev.args) if e.known else ev.args[0]
        sec, ns = divmod(ev.t_ns, 10**9)
        out.append(f"{ev.comm:>16}-{ev.pid:<5} [{ev.cpu:03d}] {sec:5d}.{ns // 1000:06d}: {ev.name}: "
                   + " " * max(0, 20 - len(ev.name)) + msg)
    return "\n".join(out) + "\n"


def test_trace_cmd_report_text():
    text = sample("traces/pv-int-6.18.txt")
    report = _as_trace_cmd(text)
    cap = read(report)
    assert cap.layout == "trace-cmd" and cap.generation == "interrupt"
    assert cap.events == read(text).events
    assert all(e.flags is None for e in cap.entries)
    assert read(cap.write()).events == cap.events  # written back in the modern layout
    dropped = report.replace("cpus=2\n", "cpus=2\nCPU:1 [12 EVENTS DROPPED]\n")
    assert read(dropped).lost == 12


def test_old_layout_and_the_4_column_flags_of_3x_kernels():
    tracer = Tracer("legacy")
    tracer(2_000_123_000, "kvm_async_pf_doublefault", {"gva": 0x1000, "gfn": 1, "ctx": ("qemu-kvm", 7, 1)})
    text = tracer.text()
    assert read(text).layout == "old"
    flagged = text.replace("[001]", "[001] d..1")
    cap = read(flagged)
    assert cap.entries[0].flags == "d..1" and cap.events == parse(text)
    assert [e[1:] for e in read(cap.write()).entries] == [e[1:] for e in cap.entries]  # a longer header


def test_writer_layouts_and_defaults():
    events = Tracer("legacy")
    events(5_000, "kvm_entry", {"vcpu_id": 0})
    old = render(events.events, "legacy")
    assert old == events.text() and old.startswith("# tracer: nop\n#\n#           TASK-PID    CPU#")
    modern = render(events.events, "legacy", layout="modern")
    assert "# entries-in-buffer/entries-written: 1/1   #P:1" in modern and " [000] .....     0.000005: " in modern
    assert parse(modern) == events.events
    intr = Tracer("interrupt")
    intr(5_000, "kvm_entry", {"vcpu_id": 2})
    assert "          <idle>-0       [000] .....     0.000005: kvm_entry: vcpu 2, rip 0x0 intr_info 0x00000000 " \
           "error_code 0x00000000\n" in intr.text()


def test_the_model_calls_stay_valid_for_the_interrupt_table():
    t = Tracer("interrupt")
    t(1, "kvm_exit", {"exit_reason": "HLT", "guest_rip": 0x10, "info1": 0, "info2": 7})
    t(2, "kvm_page_fault", {"fault_address": 0x400000, "error_code": 6})
    t(3, "kvm_inj_exception", {"exception": 14, "error_code": 0})
    t(4, "kvm_inj_exception", {"exception": 6, "error_code": 0})
    t(5, "kvm_msr", {"write": True, "ecx": 0x4B564D07, "data": 1, "exception": False})
    t(6, "kvm_eoi", {"apicid": 0, "vector": 243})
    t(7, "kvm_apic_accept_irq", {"apicid": 0, "dm": 0, "tm": False, "vec": 243})
    msgs = [tracepoints("interrupt")[e.name].message(e.args) for e in t.events]
    assert msgs == [
        "vcpu 0 reason HLT rip 0x10 info1 0x0000000000000000 info2 0x0000000000000007 intr_info 0x00000000 "
        "error_code 0x00000000 requests 0x0000000000000000",
        "vcpu 0 rip 0x0 address 0x0000000000400000 error_code 0x6",
        "#PF (0x0)", "#UD", "msr_write 4b564d07 = 0x1", "apicid 0 vector 243", "apicid 0 vec 243 (Fixed|edge)"]
    assert parse(t.text()) == [e._replace(t_ns=0) for e in t.events]


@pytest.mark.parametrize("events, generation", [
    (["kvm_async_pf_repeated_fault: gva = 0x1000, gfn = 0x1"], "interrupt"),
    (["kvm_async_pf_completed: gva 0x1000 address 0x7f0000001000"], "interrupt"),
    (["kvm_async_pf_doublefault: gva = 0x1000, gfn = 0x1"], "legacy"),
    (["kvm_async_pf_completed: gva 0x1000 address 0x7f0000001000 pfn 0x42"], "legacy"),
    (["kvm_send_async_pf: token 0x1000 gva 0x1000 not present"], "seed"),
    (["kvm_entry: vcpu 0, rip 0x0 intr_info 0x00000000 error_code 0x00000000"], "interrupt"),
])
def test_generation_inferred_from_the_events(events, generation):
    text = "".join(f"        qemu-kvm-1234  [001]     2.000123: {e}\n" for e in events)
    cap = read(text)
    assert (cap.generation, cap.inferred) == (generation, True)
    assert read(cap.write()).events == cap.events


def test_ambiguous_or_foreign_generation():
    line = "        qemu-kvm-1234  [001]     2.000123: kvm_async_pf_ready: token 0x1000 gva 0x1000\n"
    with pytest.raises(TraceParseError, match=r"^line 1: .*fit the generations \['legacy', 'interrupt'\]"):
        read(line)
    assert read(line.replace("[001]", "[001] .....")).generation == "interrupt"  # 5-column flags: 5.13+
    with pytest.raises(TraceParseError, match=r"^line 1: .*unknown event 'kvm_async_pf_ready' for the seed"):
        read(line, "seed")


@pytest.mark.parametrize("bad, expect", [
    ("kvm_async_pf_ready: token 0xzz gva 0x0", "does not match kvm_async_pf_ready"),
    ("kvm_async_pf_not_present: token 0x1000", "does not match kvm_async_pf_not_present"),
    ("kvm_try_async_get_page: gva = 0x01, gfn = 0x1", "does not match"),
    ("kvm_apic_accept_irq: apicid 0 vec 243 (Fixed|pulse)", "does not match"),
    ("kvm_async_pf_ready: token 0x" + "f" * 5000 + " gva 0x0", "does not match"),
    ("kvm_eoi: apicid 0 vector 9999999999", "does not fit the int"),
    ("kvm_inj_exception: 0xe (0x0)", "is not how"),  # #PF is printed by name, never as 0xe
])
def test_malformed_async_pf_line_names_its_line(bad, expect):
    text = sample("traces/halt-vcpu3-6.18.txt").splitlines()
    text.insert(14, f"         python3-20117   [001] .....  1612.400100: {bad}")
    with pytest.raises(TraceParseError, match=rf"^line 15: .*{expect}") as info:
        read("\n".join(text) + "\n")
    assert len(str(info.value)) < 600  # an absurd line is quoted cut short


@pytest.mark.parametrize("bad", [
    "x" * 40 + "-1 [000] ..... 1.000000: kvm_eoi: apicid 0 vector 1",       # comm longer than 15
    "qemu-" + "9" * 5000 + " [000] ..... 1.000000: kvm_eoi: apicid 0 vector 1",
    "qemu-1 [000] ..... " + "9" * 5000 + ".000000: kvm_eoi: apicid 0 vector 1",
    "qemu-1 [" + "0" * 5000 + "] ..... 1.000000: kvm_eoi: apicid 0 vector 1",
    "qemu-1 [000] ..... 1.000000: kvm_eoi: apicid 0 vector 1\nqemu-1 [000] ..... 1.000000001: kvm_eoi: apicid 0 vector 1",
])
def test_absurd_fields_are_clean_errors(bad):
    with pytest.raises(TraceParseError, match=r"^line \d: "):
        read(bad + "\n", "interrupt")


_KNOWN_LINES = sample("traces/pv-int-6.18.txt").splitlines()[12:]
_PIECES = st.sampled_from(_KNOWN_LINES + ["# tracer: nop", "cpus=2", "CPU:0 [LOST 3 EVENTS]", "",
                                          "# asyncpf generation: legacy", "#", "version = 6"])


@st.composite
def mutated(draw):
    lines = draw(st.lists(_PIECES, max_size=8))
    if lines and draw(st.booleans()):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        j = draw(st.integers(0, len(line)))
        k = draw(st.integers(j, len(line)))
        lines[i] = line[:j] + draw(st.text(max_size=6)) + line[k:]
    return "\n".join(lines)


def _check(text: str, generation=None) -> None:
    try:
        cap = read(text, generation)
    except TraceParseError:
        return
    assert isinstance(cap, Capture)
    again = read(cap.write())
    assert [(e.event, e.flags, e.known) for e in again.entries] == [(e.event, e.flags, e.known) for e in cap.entries]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), mutated()), st.sampled_from([None, "seed", "legacy", "interrupt"]))
def test_fuzz_any_text_gives_events_or_a_trace_parse_error(text, generation):
    _check(text, generation)


def test_apf_event_names():
    assert is_apf_event("kvm_async_pf_ready") and is_apf_event("kvm_try_async_get_page")
    assert not is_apf_event("kvm_entry") and not re.match("kvm_async", "kvm_eoi")
