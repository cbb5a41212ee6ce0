"""A recorded run as a Chrome trace-event JSON file, for the Perfetto UI and chrome://tracing.

The JSON Object Format of the Trace Event Format: ``{"traceEvents": [...],
"displayTimeUnit": "ns", "otherData": {...}}``, ``ts``/``dur`` in microseconds
of simulated time (the ftrace clock of ``--trace``).  Each host is a process;
its threads are

* one track per vcpu: complete events (``ph`` X), named by the guest task
  running, or ``stalled`` / ``halted`` / ``idle`` / ``in KVM`` (handling an
  exit), ``cat`` the accounting state; instant events (``ph`` i, thread
  scope) for each exception KVM injects and each APF halt;
* one track per async-PF worker: a complete event per ``async_pf_execute``;

and async events (``ph`` b/e, ``cat`` apf, an ``id`` unique in the file),
one per async PF from not-present to page-ready, grouped by vcpu.
Metadata events (``ph`` M) name the processes and threads and order them.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from .abi import BROADCAST_TOKEN, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY
from .timeline import Recorder
from .trace import EXCEPTION_NAMES, TraceEvent

VCPU_SORT, WORKER_SORT = 0, 1000


def _us(ns: int) -> float:
    return ns / 1000


def _meta(name: str, pid: int, args: dict, tid: int | None = None) -> dict:
    event = {"name": name, "ph": "M", "pid": pid, "args": args}
    if tid is not None:
        event["tid"] = tid
    return event


def host_events(pid: int, title: str, recorder: Recorder, events: Iterable[TraceEvent],
                generation: str) -> list[dict]:
    """The trace events of one recorded host as process ``pid`` named ``title``."""
    start, end = recorder.start_ns, recorder.end_ns
    vcpu_tid = {v.vcpu_id: v.pid for v in recorder.machine.vcpus}
    out = [_meta("process_name", pid, {"name": title}), _meta("process_sort_index", pid, {"sort_index": pid})]
    for vid, tid in vcpu_tid.items():
        out += [_meta("thread_name", pid, {"name": f"vcpu {vid} (qemu-kvm)"}, tid),
                _meta("thread_sort_index", pid, {"sort_index": VCPU_SORT + vid}, tid)]
    workers = recorder.workers()
    for worker_pid, comm in sorted({(w.pid, w.comm) for w in workers}):
        out += [_meta("thread_name", pid, {"name": comm}, worker_pid),
                _meta("thread_sort_index", pid, {"sort_index": WORKER_SORT + worker_pid}, worker_pid)]
    for vid, spans in recorder.vcpu_spans.items():
        out += [{"name": s.label, "cat": s.state, "ph": "X", "ts": _us(s.start_ns), "dur": _us(s.end_ns - s.start_ns),
                 "pid": pid, "tid": vcpu_tid[vid]} for s in spans]
    out += [{"name": "async_pf_execute", "cat": "worker", "ph": "X", "ts": _us(w.start_ns),
             "dur": _us(w.end_ns - w.start_ns), "pid": pid, "tid": w.pid,
             "args": {"work": w.work_id, "vcpu": w.vcpu, "gva": hex(w.gva)}} for w in workers]
    out += _apf_events(pid, vcpu_tid, [e for e in events if e.t_ns <= end], start, end, generation)
    return out


def _apf_events(pid: int, vcpu_tid: dict[int, int], events: list[TraceEvent], start: int, end: int,
                generation: str) -> list[dict]:
    """Async spans not-present .. page-ready, and instants for injections and APF halts."""
    exceptions = EXCEPTION_NAMES   # by vector: 6.18's kvm_inj_exception names it in its record, not by a symbol table
    out: list[dict] = []
    open_: dict[int, tuple[int, int, int, str]] = {}   # token -> (vcpu, gva, t_ns, id)

    def async_event(ph: str, vid: int, t_ns: int, ident: str, args: dict) -> dict:
        return {"name": f"async PF vcpu {vid}", "cat": "apf", "ph": ph, "id": ident, "ts": _us(t_ns),
                "pid": pid, "tid": vcpu_tid[vid], "args": args}

    def instant(ev: TraceEvent, name: str, args: dict) -> None:
        if ev.t_ns >= start and ev.cpu in vcpu_tid:
            out.append({"name": name, "cat": "kvm", "ph": "i", "s": "t", "ts": _us(ev.t_ns), "pid": pid,
                        "tid": vcpu_tid[ev.cpu], "args": args})

    for n, ev in enumerate(events):
        kind = _apf_kind(ev)
        if kind == "not present" and ev.cpu in vcpu_tid:
            token, gva = ev.args[0], ev.args[1]
            ident = f"{pid}:{token:#x}:{n}"
            open_[token] = (ev.cpu, gva, ev.t_ns, ident)
            out.append(async_event("b", ev.cpu, max(ev.t_ns, start), ident, {"token": hex(token), "gva": hex(gva)}))
        elif kind == "ready":
            token = ev.args[0]
            if token in open_:
                vid, gva, _t, ident = open_.pop(token)
                out.append(async_event("e", vid, max(ev.t_ns, start), ident, {"ready_on_vcpu": ev.cpu}))
            else:
                instant(ev, "page ready (wake all)" if token == BROADCAST_TOKEN else "page ready", {"token": hex(token)})
        elif ev.name == "kvm_inj_exception":
            instant(ev, f"inject {exceptions.get(ev.args[0], ev.args[0])}", {"error_code": hex(ev.args[1])})
        elif ev.name == "kvm_async_pf_doublefault":
            instant(ev, "APF halt (doublefault)", {"gva": hex(ev.args[0])})
    for token, (vid, _gva, _t, ident) in open_.items():  # still in flight when the recording ended
        out.append(async_event("e", vid, end, ident, {"in_flight_at_end": True}))
    return out


def _apf_kind(ev: TraceEvent) -> str | None:
    if ev.name == "kvm_async_pf_not_present":
        return "not present"
    if ev.name == "kvm_async_pf_ready":
        return "ready"
    if ev.name == "kvm_send_async_pf":  # the seed's one event for both, told apart by its reason
        return {KVM_PV_REASON_PAGE_NOT_PRESENT: "not present", KVM_PV_REASON_PAGE_READY: "ready"}.get(ev.args[2])
    return None


def document(events: list[dict], about: dict[str, Any]) -> str:
    """The JSON text: one trace event per line, keys sorted, so equal runs give equal files."""
    lines = ",\n".join(json.dumps(e, sort_keys=True, separators=(",", ":")) for e in events)
    other = json.dumps(about, sort_keys=True)
    return f'{{"displayTimeUnit":"ns","otherData":{other},"traceEvents":[\n{lines}\n]}}\n'
