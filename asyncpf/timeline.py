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

from .host.async_pf import peek


class Span(NamedTuple):
    start_ns: int
    end_ns: int
    label: str    # the guest task's comm while the vcpu runs guest code, else the state (host: "in KVM")
    state: str    # guest | host | stalled | halted | idle


STATE_LABELS = {"host": "in KVM", "stalled": "stalled", "halted": "halted", "idle": "idle",
                "runq": "waiting for a host CPU"}   # runq: only when host CPUs are modelled (--host-cpus)


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
        self.start_ns = self.end_ns = self._last_ns = machine.env.now
        vcpus = machine.vcpus
        self._states = tuple(vcpus[0].acct) if vcpus else ()
        self._spans: dict[int, list[list]] = {v.vcpu_id: [] for v in vcpus}   # [start, end, label, state]
        self._acct = {v.vcpu_id: tuple(v.acct.values()) for v in vcpus}
        self._label = {v.vcpu_id: self._task(v.vcpu_id) for v in vcpus}
        self.work_spans: list[WorkSpan] = []
        # work id -> (start, vcpu id, gva, worker slot), copied at the start: the item may be freed before its worker ends
        self._running: dict[int, tuple[int, int, int, int]] = {}

    def run(self, until_ns: int) -> None:
        """``Machine.run(until_ns)``, recording as it goes."""
        env = self.machine.env
        while (due := env.peek()) is not None and due <= until_ns:
            env.step()
            self._sample(env.now)
        env.run(until_ns)  # nothing is due any more before until_ns: this only sets the clock
        self._sample(env.now)  # the stretch from the last event to until_ns
        self.end_ns = env.now

    @property
    def vcpu_spans(self) -> dict[int, list[Span]]:
        return {vid: [Span(*s) for s in spans] for vid, spans in self._spans.items()}

    def workers(self) -> list[WorkSpan]:
        """Every worker span; those still running are cut at the end of the recording."""
        ctx = self.machine.workqueue.ctx
        return self.work_spans + [WorkSpan(start, self.end_ns, *ctx(slot)[:2], wid, vcpu_id, gva)
                                  for wid, (start, vcpu_id, gva, slot) in sorted(self._running.items())]

    def _task(self, vcpu_id: int) -> str:
        if self.kernel is None:
            return "guest"
        curr = self.kernel.cpus[vcpu_id].rq.curr
        return "guest" if curr is None else curr.comm

    def _sample(self, now: int) -> None:
        if now != self._last_ns:  # time moved: charge the interval since the last sample
            for vcpu in self.machine.vcpus:
                vcpu.flush_account()  # brings acct to now; the state that grew is the one of the interval
                after, before = tuple(vcpu.acct.values()), self._acct[vcpu.vcpu_id]
                if after != before:
                    self._acct[vcpu.vcpu_id] = after
                    self._charge(vcpu.vcpu_id, now, before, after)
            self._last_ns = now
        for vid in self._label:
            self._label[vid] = self._task(vid)
        self._sample_workers(now)

    def _charge(self, vid: int, now: int, before: tuple, after: tuple) -> None:
        grown = [i for i, (b, a) in enumerate(zip(before, after)) if a != b]
        if len(grown) != 1 or after[grown[0]] < before[grown[0]]:
            return  # an account restart (all zero again): a gap in the timeline
        i = grown[0]
        state = self._states[i]
        start = now - (after[i] - before[i])
        label = self._label[vid] if state == "guest" else STATE_LABELS[state]
        spans = self._spans[vid]
        if spans and spans[-1][1] == start and spans[-1][2] == label:
            spans[-1][1] = now
        else:
            spans.append([start, now, label, state])

    def _sample_workers(self, now: int) -> None:
        running = self.machine.workqueue.running
        if running.keys() == self._running.keys():
            return
        for wid in sorted(self._running.keys() - running.keys()):
            start, vcpu_id, gva, slot = self._running.pop(wid)
            comm, pid, _cpu = self.machine.workqueue.ctx(slot)
            self.work_spans.append(WorkSpan(start, now, comm, pid, wid, vcpu_id, gva))
        for wid in sorted(running.keys() - self._running.keys()):
            work, slot = running[wid]
            self._running[wid] = (now, work.vcpu.vcpu_id, peek(work, "gva"), slot)
