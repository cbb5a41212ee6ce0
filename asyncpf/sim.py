"""Deterministic discrete-event engine.

Time is an integer count of nanoseconds.  The queue holds ``(time, priority,
seq, callback, arg)`` entries; ``seq`` is a global counter, so entries that are
due at the same instant with the same priority run in the order they were
scheduled (FIFO).  Processes are generators; they yield

* an ``int`` -- sleep that many nanoseconds (no object is allocated);
* an :class:`Event` -- wait until it is triggered; the event's value is sent back;
* ``None`` -- an *interleaving point*: step aside and let everything else that
  is due at this instant run first (this is where the kernel drops a lock or
  lets another CPU in, and where the explorer branches).

Where several steps are due at the same instant and priority, a *choice
policy* may pick which runs first (default FIFO).  :class:`ReplayPolicy`
re-runs a whole machine from the start under a list of choices, which is what
the protocol checker enumerates.

All randomness comes from :meth:`Environment.rng`, streams derived from one
seed by name, so runs are reproducible byte for byte.
"""

from __future__ import annotations

import hashlib
import random
from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Callable, Generator, Iterable

URGENT = 0
NORMAL = 1
_AFTER_ALL = 2  # only the sentinel that ends run(until=...) without a policy

_PENDING = object()


class Interrupt(Exception):
    """Thrown into a waiting process by :meth:`Process.interrupt`."""

    @property
    def cause(self) -> Any:
        return self.args[0] if self.args else None


class StopSimulation(Exception):
    """Raised inside :meth:`Environment.run` to stop the loop early."""


class _EndOfRun(Exception):
    """Raised by the sentinel that ends ``run(until=...)``."""


def _end_of_run(_arg: Any) -> None:
    raise _EndOfRun


class Event:
    """Something processes can wait for; triggered once with a value."""

    __slots__ = ("env", "name", "callbacks", "value")

    def __init__(self, env: "Environment", name: str = "event"):
        self.env = env
        self.name = name
        self.callbacks: list[Callable[[Any], None]] | None = []
        self.value: Any = _PENDING

    @property
    def triggered(self) -> bool:
        return self.value is not _PENDING

    @property
    def processed(self) -> bool:
        return self.callbacks is None

    def succeed(self, value: Any = None) -> "Event":
        """Trigger the event; its waiters run at the current instant."""
        if self.value is not _PENDING:
            raise RuntimeError(f"event {self.name!r} was already triggered")
        self.value = value
        self.env.schedule(0, self._fire, None, NORMAL)
        return self

    def _fire(self, _arg: Any) -> None:
        callbacks, self.callbacks = self.callbacks, None
        value = self.value
        for cb in callbacks:
            cb(value)

    def __repr__(self) -> str:
        state = "triggered" if self.triggered else "pending"
        return f"<Event {self.name} {state}>"


class Process(Event):
    """A generator driven by the engine; as an event it triggers on return.

    Every way a process continues -- its start, the end of a sleep, an event
    it waited for, an interrupt -- goes through :meth:`_resume`, which sends
    the value in (or throws the interrupt) and then waits for what the
    generator yields next (:meth:`_wait_for`).  A sleep is queued as
    ``(t, NORMAL, seq, process, wait_id)``; a sleep whose ``wait_id`` is no
    longer the process's was cut short by an interrupt and is skipped.
    """

    __slots__ = ("gen", "_send", "_throw", "_wait_id", "_waiting_on")

    def __init__(self, env: "Environment", gen: Generator, name: str):
        super().__init__(env, name)
        self.gen = gen
        self._send = gen.send
        self._throw = gen.throw
        self._wait_id = 0
        self._waiting_on: Event | None = None
        env.schedule(0, self._resume, None, URGENT)

    @property
    def is_alive(self) -> bool:
        return self.value is _PENDING

    def interrupt(self, cause: Any = None) -> None:
        """Throw :class:`Interrupt` into the process at the current instant."""
        if self.value is not _PENDING:
            raise RuntimeError(f"process {self.name!r} has terminated; cannot interrupt")
        self._stop_waiting()
        self.env.schedule(0, self._deliver_interrupt, Interrupt(cause), URGENT)

    def _stop_waiting(self) -> None:
        """Whatever the process waits for now must not resume it: a queued sleep goes stale, a callback goes."""
        self._wait_id += 1
        ev = self._waiting_on
        if ev is not None and ev.callbacks is not None:
            ev.callbacks.remove(self._resume)
        self._waiting_on = None

    def _deliver_interrupt(self, exc: Interrupt) -> None:
        if self.value is not _PENDING:
            return
        self._stop_waiting()  # whatever it waits on now must not resume it too
        self._resume(exc, throw=True)

    def _resume(self, value: Any = None, throw: bool = False) -> None:
        """Continue the generator: send ``value`` (throw it, if ``throw``), then wait for what it yields."""
        self._waiting_on = None
        try:
            target = self._throw(value) if throw else self._send(value)
        except StopIteration as stop:
            self._finish(stop.value)
            return
        self._wait_for(target)

    def _resume_unless_stale(self, arg: tuple[int, Any]) -> None:
        wait_id, value = arg
        if wait_id == self._wait_id:
            self._resume(value)

    def _finish(self, value: Any) -> None:
        self.value = value
        self.env.schedule(0, self._fire, None, NORMAL)

    def _wait_for(self, target: Any) -> None:
        """Arrange for the process to continue after what it yielded."""
        env = self.env
        if target is None:
            target = 0  # an interleaving point is a sleep of no time: after everything already due now
        if target.__class__ is int:
            if target < 0:
                raise ValueError(f"process {self.name!r} yielded a negative delay {target}")
            self._wait_id += 1
            heappush(env._queue, (env.now + target, NORMAL, next(env._seq), self, self._wait_id))
        elif isinstance(target, Event):
            if target.callbacks is None:  # already processed: resume at this instant, unless interrupted first
                self._wait_id += 1
                env.schedule(0, self._resume_unless_stale, (self._wait_id, target.value), NORMAL)
            else:
                self._waiting_on = target
                target.callbacks.append(self._resume)
        else:
            raise TypeError(
                f"process {self.name!r} yielded {target!r}; expected an int delay (ns), "
                "an Event, or None"
            )

    def __repr__(self) -> str:
        return f"<Process {self.name} {'alive' if self.is_alive else 'done'}>"


Entry = tuple  # (time, priority, seq, callback, arg)


class Environment:
    """The clock, the queue, the seeded RNG streams and the trace hook."""

    def __init__(self, seed: int = 0, policy: "ChoicePolicy | None" = None):
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.now = 0
        self.seed = seed
        self.policy = policy
        self.tracer: Callable[[int, str, dict], None] | None = None
        self.events_processed = 0
        self.due: list[Entry] | None = None  # during a choice: the entries due together, in the order offered
        self._queue: list[Entry] = []
        self._seq = count()
        self._rngs: dict[str, random.Random] = {}

    # -- scheduling -----------------------------------------------------
    def schedule(self, delay: int, callback: Callable[[Any], None], arg: Any = None,
                 priority: int = NORMAL) -> None:
        heappush(self._queue, (self.now + delay, priority, next(self._seq), callback, arg))

    def process(self, gen: Generator, name: str = "process") -> Process:
        return Process(self, gen, name)

    def event(self, name: str = "event") -> Event:
        return Event(self, name)

    def timeout(self, delay: int, value: Any = None, name: str = "timeout") -> Event:
        """An event that triggers ``delay`` ns from now."""
        ev = Event(self, name)
        self.schedule(delay, lambda _a: ev.succeed(value), None, NORMAL)
        return ev

    def call_at(self, when: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        if when < self.now:
            raise ValueError(f"call_at({when}) is in the past (now={self.now})")
        self.schedule(when - self.now, callback, arg)

    # -- randomness and tracing -----------------------------------------
    def rng(self, stream: str) -> random.Random:
        """The named random stream, derived from the seed (stable across runs)."""
        r = self._rngs.get(stream)
        if r is None:
            digest = hashlib.sha256(f"{self.seed}:{stream}".encode()).digest()
            r = self._rngs[stream] = random.Random(int.from_bytes(digest[:8], "little"))
        return r

    def trace(self, name: str, **fields: Any) -> None:
        tracer = self.tracer
        if tracer is not None:
            tracer(self.now, name, fields)

    # -- running --------------------------------------------------------
    def peek(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def step(self) -> None:
        """Run the next entry (asking the policy when several are due)."""
        queue = self._queue
        entry = heappop(queue) if self.policy is None else self._choose(queue)
        self.now = entry[0]
        self.events_processed += 1
        target, arg = entry[3], entry[4]
        if target.__class__ is Process:
            if arg == target._wait_id:  # else a sleep cut short by an interrupt
                target._resume()
        else:
            target(arg)

    def run(self, until: int | None = None) -> None:
        """Step until the queue is empty or the next entry is due after ``until`` (the clock then reads ``until``).

        An entry due exactly at ``until`` runs.  A callback may raise
        :class:`StopSimulation` to return at once, the clock where it stood.
        """
        if until is not None and until < self.now:
            raise ValueError(f"run(until={until}) is before now={self.now}")
        try:
            if self.policy is None:
                self._run_inlined(until)
            else:
                queue = self._queue
                while queue and (until is None or queue[0][0] <= until):
                    self.step()
        except StopSimulation:
            return
        if until is not None:
            self.now = until

    def _run_inlined(self, until: int | None) -> None:
        """The loop of :meth:`run` without a policy: ``step`` written out inline, and so is a process's resume
        after a sleep that is followed by another sleep (the commonest entry); anything else goes through
        ``Process._resume``/``_wait_for`` as in ``step``.  ``until`` is a sentinel entry due after everything
        else at that instant, so no entry pays for a clock comparison.

        Same entries, order, clock and count as the plain loop of ``step``
        (``tests/test_sim.py::test_inlined_loop_matches_step_loop``).  Why it
        exists, measured with ``python -m asyncpf bench-engine`` (10^6 events,
        best of 3, CPython 3.11.7 on a shared 2-core machine, the two loops
        run alternately): this loop 1.92x and 1.94x SimPy, the plain loop
        1.22x and 1.45x -- below the 1.5x target; in CPU time the plain loop
        does about 0.75x of this loop's events/s.
        """
        queue = self._queue
        seq = self._seq
        if until is not None:
            heappush(queue, (until, _AFTER_ALL, next(seq), _end_of_run, None))
        n = 0
        ended = until is None
        try:
            while queue:
                t, _p, _s, target, arg = heappop(queue)
                self.now = t
                n += 1
                if target.__class__ is not Process:
                    target(arg)
                    continue
                if arg != target._wait_id:
                    continue  # a sleep cut short by an interrupt
                try:
                    nxt = target._send(None)
                except StopIteration as stop:
                    target._finish(stop.value)
                    continue
                if nxt.__class__ is int and nxt >= 0:
                    arg += 1
                    target._wait_id = arg
                    heappush(queue, (t + nxt, NORMAL, next(seq), target, arg))
                else:
                    target._wait_for(nxt)
        except _EndOfRun:
            ended = True
            n -= 1  # the sentinel is no event
        finally:
            if not ended:  # left early (StopSimulation, an error): the unused sentinel goes
                queue[:] = [e for e in queue if e[3] is not _end_of_run]
                heapify(queue)
            self.events_processed += n

    def _choose(self, queue: list[Entry]) -> Entry:
        head = heappop(queue)
        if not queue or queue[0][:2] != head[:2]:
            return head
        self.now = head[0]
        due = [head]
        while queue and queue[0][:2] == head[:2]:
            due.append(heappop(queue))
        self.due = due  # what the policy's indices refer to (an explorer keys the state with it)
        try:
            i = self.policy.choose(self, [describe(e) for e in due])
        finally:
            self.due = None
        if not 0 <= i < len(due):
            raise ValueError(f"choice policy returned {i}; expected 0..{len(due) - 1}")
        chosen = due.pop(i)
        for e in due:
            heappush(queue, e)
        return chosen


def describe(entry: Entry) -> str:
    """A stable label for a queue entry: the process or event it belongs to."""
    if isinstance(entry[3], Process):
        return entry[3].name
    owner = getattr(entry[3], "__self__", None)
    if isinstance(owner, Event):
        return owner.name
    return getattr(entry[3], "__qualname__", "callback")


class ChoicePolicy:
    """Picks which of several simultaneously due steps runs first."""

    def choose(self, env: Environment, labels: list[str]) -> int:
        return 0


class ReplayPolicy(ChoicePolicy):
    """Follow a list of choices, then FIFO; record every choice point met.

    ``points`` holds, for each choice point in order, ``(labels, taken)``.  An
    explorer runs the machine once, then re-runs it with extended prefixes.
    """

    def __init__(self, choices: Iterable[int] = ()):
        self.choices = list(choices)
        self.points: list[tuple[tuple[str, ...], int]] = []

    def choose(self, env: Environment, labels: list[str]) -> int:
        k = len(self.points)
        taken = self.choices[k] if k < len(self.choices) else 0
        if not 0 <= taken < len(labels):
            raise ValueError(
                f"replay choice #{k} is {taken} but only {len(labels)} steps were due: {labels}"
            )
        self.points.append((tuple(labels), taken))
        return taken
