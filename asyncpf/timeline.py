"""Who did what, when: a machine run recorded as per-vcpu and per-worker spans.

:class:`Recorder` advances a machine's engine one event at a time instead of
``Machine.run`` and looks after each event (it changes nothing, so the run is
the same as without it): which of the accounting states each vcpu is in
(``guest``, ``host``, ``stalled``, ``halted``, ``idle``), which task the
guest runs on that vcpu, and which work item each async-PF worker executes.
:mod:`asyncpf.perfetto` turns the spans and the run's trace into a timeline.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Span(NamedTuple):
    start_ns: int
    end_ns: int
    label: str    # the guest task's comm while the vcpu runs guest code, else the state (host: "in KVM")
    state: str    # guest | host | stalled | halted | idle


STATE_LABELS = {"host": "in KVM", "stalled": "stalled", "halted": "halted", "idle": "idle"}


class WorkSpan(NamedTuple):
    start_ns: int
    end_ns: int
    comm: str
    pid: int
    work_id: int
    vcpu: int
    gva: int


class Recorder:
    """Steps ``machine`` event by event; records vcpu and worker spans between :meth:`run` calls."""

    def __init__(self, machine: Any, kernel: Any = None):
        self.machine = machine
        self.kernel = kernel                  # the guest kernel (task names); None for a stand-in guest
        self.start_ns = self.end_ns = machine.env.now
        self.vcpu_spans: dict[int, list[Span]] = {v.vcpu_id: [] for v in machine.vcpus}
        self.work_spans: list[WorkSpan] = []
        self._acct = {v.vcpu_id: dict(v.acct) for v in machine.vcpus}
        self._label = {v.vcpu_id: self._task(v.vcpu_id) for v in machine.vcpus}
        self._running: dict[int, tuple[int, Any, int]] = {}   # work id -> (start, work, worker slot)

    def run(self, until_ns: int) -> None:
        """``Machine.run(until_ns)``, recording as it goes."""
        env = self.machine.env
        while (due := env.peek()) is not None and due <= until_ns:
            env.step()
            self._sample(env.now)
        env.run(until_ns)  # nothing is due any more before until_ns: this only sets the clock
        self._sample(env.now)  # the stretch from the last event to until_ns
        self.end_ns = env.now

    def workers(self) -> list[WorkSpan]:
        """Every worker span; those still running are cut at the end of the recording."""
        ctx = self.machine.workqueue.ctx
        return self.work_spans + [WorkSpan(start, self.end_ns, *ctx(slot)[:2], wid, work.vcpu.vcpu_id, work.gva)
                                  for wid, (start, work, slot) in sorted(self._running.items())]

    def _task(self, vcpu_id: int) -> str:
        if self.kernel is None:
            return "guest"
        curr = self.kernel.cpus[vcpu_id].rq.curr
        return "guest" if curr is None else curr.comm

    def _sample(self, now: int) -> None:
        for vcpu in self.machine.vcpus:
            vid = vcpu.vcpu_id
            vcpu.flush_account()  # brings acct to now; the state that grew is the one of the last interval
            before, after = self._acct[vid], vcpu.acct
            grown = [k for k, ns in after.items() if ns > before.get(k, 0)]
            if len(grown) == 1 and all(ns >= before.get(k, 0) for k, ns in after.items()):
                state = grown[0]
                self._extend(vid, now - (after[state] - before[state]), now,
                             self._label[vid] if state == "guest" else STATE_LABELS[state], state)
            self._acct[vid] = dict(after)  # an account restart (all zero again) leaves a gap
            self._label[vid] = self._task(vid)
        self._sample_workers(now)

    def _extend(self, vid: int, start: int, end: int, label: str, state: str) -> None:
        spans = self.vcpu_spans[vid]
        if spans and spans[-1].end_ns == start and spans[-1].label == label:
            spans[-1] = spans[-1]._replace(end_ns=end)
        else:
            spans.append(Span(start, end, label, state))

    def _sample_workers(self, now: int) -> None:
        wq = self.machine.workqueue
        running = wq.running
        if running.keys() == self._running.keys():
            return
        for wid in sorted(self._running.keys() - running.keys()):
            start, work, slot = self._running.pop(wid)
            comm, pid, _cpu = wq.ctx(slot)
            self.work_spans.append(WorkSpan(start, now, comm, pid, wid, work.vcpu.vcpu_id, work.gva))
        for wid in sorted(running.keys() - self._running.keys()):
            work, slot = running[wid]
            self._running[wid] = (now, work, slot)
