"""The contract of the discrete-event engine (asyncpf/sim.py).

Every test observes behaviour through logs the model writes (time, label) so
that it fails if the engine orders, times or resumes things differently.  No
wall clock anywhere.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpf.sim import (
    NORMAL,
    URGENT,
    ChoicePolicy,
    Environment,
    Event,
    Interrupt,
    Process,
    ReplayPolicy,
    StopSimulation,
    describe,
)


def recorder(env: Environment, log: list, label: str):
    """A callback that appends (now, label, arg) to ``log``."""
    return lambda arg: log.append((env.now, label, arg))


# --- clock and queue order ------------------------------------------------------

def test_clock_is_integer_nanoseconds():
    env = Environment()
    assert env.now == 0 and type(env.now) is int
    seen = []

    def p():
        yield 7
        seen.append(env.now)
        yield 1_000_000_000  # one second, exactly
        seen.append(env.now)

    env.process(p(), "p")
    env.run()
    assert seen == [7, 1_000_000_007]
    assert all(type(t) is int for t in seen) and type(env.now) is int


def test_float_delay_is_refused():
    env = Environment()

    def p():
        yield 1.5

    env.process(p(), "floaty")
    with pytest.raises(TypeError, match="floaty"):
        env.run()


def test_seed_must_be_int():
    with pytest.raises(TypeError):
        Environment(seed=1.5)
    with pytest.raises(TypeError):
        Environment(seed=True)


def test_simultaneous_entries_run_fifo():
    env = Environment()
    log: list = []
    for label in "edcba":  # insertion order, not label order
        env.schedule(5, recorder(env, log, label))
    env.run()
    assert [entry[1] for entry in log] == list("edcba")
    assert {entry[0] for entry in log} == {5}


def test_urgent_runs_before_normal_at_same_instant():
    env = Environment()
    log: list = []
    env.schedule(3, recorder(env, log, "n1"), priority=NORMAL)
    env.schedule(3, recorder(env, log, "u1"), priority=URGENT)
    env.schedule(3, recorder(env, log, "n2"), priority=NORMAL)
    env.schedule(3, recorder(env, log, "u2"), priority=URGENT)
    env.schedule(2, recorder(env, log, "early"), priority=NORMAL)
    env.run()
    assert [entry[1] for entry in log] == ["early", "u1", "u2", "n1", "n2"]


def test_time_order_beats_priority_and_insertion():
    env = Environment()
    log: list = []
    env.schedule(10, recorder(env, log, "late-urgent"), priority=URGENT)
    env.schedule(1, recorder(env, log, "soon-normal"), priority=NORMAL)
    env.run()
    assert log == [(1, "soon-normal", None), (10, "late-urgent", None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.sampled_from([URGENT, NORMAL])), max_size=40))
def test_property_order_is_time_priority_insertion(entries):
    env = Environment()
    order: list[int] = []
    for idx, (delay, prio) in enumerate(entries):
        env.schedule(delay, order.append, idx, prio)
    env.run()
    expected = sorted(range(len(entries)), key=lambda i: (entries[i][0], entries[i][1], i))
    assert order == expected
    assert env.events_processed == len(entries)


# --- processes ----------------------------------------------------------------------

def test_yield_int_sleeps():
    env = Environment()
    log: list = []

    def p(name, delays):
        for d in delays:
            yield d
            log.append((env.now, name))

    env.process(p("a", [5, 5, 5]), "a")
    env.process(p("b", [7, 0, 1]), "b")
    env.run()
    assert log == [(5, "a"), (7, "b"), (7, "b"), (8, "b"), (10, "a"), (15, "a")]


def test_yield_event_waits_and_receives_value():
    env = Environment()
    ev = env.event("go")
    got = []

    def waiter(name):
        value = yield ev
        got.append((env.now, name, value))

    def trigger():
        yield 42
        ev.succeed("payload")

    env.process(waiter("w1"), "w1")
    env.process(waiter("w2"), "w2")
    env.process(trigger(), "t")
    env.run()
    assert got == [(42, "w1", "payload"), (42, "w2", "payload")]
    assert ev.triggered and ev.processed and ev.value == "payload"


def test_event_triggers_only_once():
    env = Environment()
    ev = env.event("once")
    ev.succeed(1)
    with pytest.raises(RuntimeError, match="once"):
        ev.succeed(2)


def test_yield_processed_event_resumes_immediately():
    env = Environment()
    ev = env.event("done")
    ev.succeed("early")
    got = []

    def late():
        yield 10
        value = yield ev  # already processed by now
        got.append((env.now, value))

    env.process(late(), "late")
    env.run()
    assert got == [(10, "early")]


def test_yield_none_lets_everything_already_due_run_first():
    env = Environment()
    log: list = []
    # a NORMAL callback due now, queued *before* the process reaches its yield None
    env.schedule(0, lambda _a: log.append("cb"))

    def a():
        log.append("a1")
        yield None
        log.append("a2")

    def b():
        log.append("b1")
        yield None
        log.append("b2")

    env.process(a(), "a")
    env.process(b(), "b")
    env.run()
    # starts are URGENT: a1 and b1 first; then the earlier NORMAL callback; then
    # the interleaving points, FIFO; the clock never moves
    assert log == ["a1", "b1", "cb", "a2", "b2"]
    assert env.now == 0


def test_process_is_an_event_with_its_return_value():
    env = Environment()
    got = []

    def child():
        yield 25
        return "result"

    def parent():
        c = env.process(child(), "child")
        assert isinstance(c, Event) and isinstance(c, Process)
        value = yield c
        got.append((env.now, value, c.is_alive))

    env.process(parent(), "parent")
    env.run()
    assert got == [(25, "result", False)]


def test_timeout_event():
    env = Environment()
    got = []

    def p():
        value = yield env.timeout(5, "v")
        got.append((env.now, value))
        value = yield env.timeout(0)
        got.append((env.now, value))

    env.process(p(), "p")
    env.run()
    assert got == [(5, "v"), (5, None)]


def test_call_at():
    env = Environment()
    log: list = []
    env.call_at(7, recorder(env, log, "x"), "arg")
    env.call_at(3, recorder(env, log, "y"))
    env.run()
    assert log == [(3, "y", None), (7, "x", "arg")]
    with pytest.raises(ValueError, match="past"):
        env.call_at(6, recorder(env, log, "z"))
    env.call_at(7, recorder(env, log, "now"))  # == now is allowed
    env.run()
    assert log[-1] == (7, "now", None)


# --- interrupts ---------------------------------------------------------------------

def test_interrupt_during_sleep():
    env = Environment()
    log: list = []

    def sleeper():
        try:
            yield 100
            log.append((env.now, "overslept"))
        except Interrupt as exc:
            log.append((env.now, "interrupted", exc.cause))
        yield 200
        log.append((env.now, "woke"))

    def interrupter(target):
        yield 30
        target.interrupt("swap-in done")

    s = env.process(sleeper(), "sleeper")
    env.process(interrupter(s), "int")
    env.run()
    # the stale wake-up at t=100 must not resume the sleeper
    assert log == [(30, "interrupted", "swap-in done"), (230, "woke")]
    assert env.now == 230


def test_interrupt_cause_defaults_to_none():
    assert Interrupt().cause is None
    assert Interrupt("c").cause == "c"


def test_interrupt_during_event_wait():
    env = Environment()
    ev = env.event("page")
    log: list = []

    def waiter():
        try:
            value = yield ev
            log.append((env.now, "got", value))
        except Interrupt as exc:
            log.append((env.now, "interrupted", exc.cause))
        yield 50
        log.append((env.now, "woke"))

    def driver(target):
        yield 10
        target.interrupt("broadcast")
        yield 10
        ev.succeed("late value")  # must not resume the waiter any more

    w = env.process(waiter(), "waiter")
    env.process(driver(w), "driver")
    env.run()
    assert log == [(10, "interrupted", "broadcast"), (60, "woke")]


def test_interrupt_is_delivered_at_the_current_instant_before_normal_work():
    env = Environment()
    log: list = []

    def victim():
        try:
            yield 1000
        except Interrupt:
            log.append((env.now, "victim"))

    v = env.process(victim(), "victim")

    def attacker():
        yield 5
        env.schedule(0, lambda _a: log.append((env.now, "normal")))
        v.interrupt()

    env.process(attacker(), "attacker")
    env.run()
    assert log == [(5, "victim"), (5, "normal")]


def test_interrupting_a_finished_process_raises():
    env = Environment()

    def quick():
        yield 1
        return 3

    p = env.process(quick(), "quick")
    env.run()
    assert p.value == 3 and not p.is_alive
    with pytest.raises(RuntimeError, match="quick"):
        p.interrupt("too late")


def test_interrupt_at_interleaving_point():
    env = Environment()
    log: list = []

    def p():
        try:
            yield None
            log.append((env.now, "resumed normally"))
        except Interrupt as exc:
            log.append((env.now, "interrupted", exc.cause))
        yield 100
        log.append((env.now, "woke"))

    def q(target):
        target.interrupt("c")
        yield 0

    target = env.process(p(), "p")
    env.process(q(target), "q")
    env.run()
    assert log == [(0, "interrupted", "c"), (100, "woke")]


def test_interrupt_before_first_step():
    env = Environment()

    def p():
        try:
            yield 10
        except Interrupt as exc:
            return ("interrupted", env.now, exc.cause)
        return ("slept", env.now)

    proc = env.process(p(), "fresh")
    proc.interrupt("early")
    env.run()
    assert proc.value == ("interrupted", 0, "early")


def test_bad_yields_name_the_process():
    env = Environment()

    def negative_first():
        yield -1

    env.process(negative_first(), "neg-first")
    with pytest.raises(ValueError, match="neg-first"):
        env.run()

    env = Environment()

    def negative_later():
        yield 3
        yield -5  # taken by the inlined hot path

    env.process(negative_later(), "neg-later")
    with pytest.raises(ValueError, match="neg-later"):
        env.run()

    env = Environment()

    def stringy():
        yield 1
        yield "soon"

    env.process(stringy(), "stringy")
    with pytest.raises(TypeError, match="stringy"):
        env.run()


def test_bad_yield_under_a_policy_names_the_process():
    env = Environment(policy=ReplayPolicy())

    def stringy():
        yield 1
        yield "soon"

    env.process(stringy(), "stringy-policy")
    with pytest.raises(TypeError, match="stringy-policy"):
        env.run()


# --- run(until=...) and stopping ----------------------------------------------------

def _ticker(env: Environment, log: list, period: int, count: int):
    for _ in range(count):
        yield period
        log.append(env.now)


@pytest.mark.parametrize("policy", [None, "replay"])
def test_run_until_stops_at_until_and_can_resume(policy):
    env = Environment(policy=ReplayPolicy() if policy else None)
    log: list = []
    env.process(_ticker(env, log, 10, 5), "ticker")
    env.run(until=25)
    assert env.now == 25
    assert log == [10, 20]
    assert env.peek() == 30  # later entries stay queued
    env.run(until=30)  # an entry exactly at `until` runs
    assert env.now == 30 and log == [10, 20, 30]
    env.run(until=30)  # until == now is allowed and does nothing new
    assert log == [10, 20, 30]
    env.run()
    assert log == [10, 20, 30, 40, 50]
    assert env.peek() is None


@pytest.mark.parametrize("policy", [None, "replay"])
def test_run_until_on_empty_queue_advances_clock(policy):
    env = Environment(policy=ReplayPolicy() if policy else None)
    env.run(until=1234)
    assert env.now == 1234
    assert env.events_processed == 0


@pytest.mark.parametrize("policy", [None, "replay"])
def test_run_until_in_the_past_raises(policy):
    env = Environment(policy=ReplayPolicy() if policy else None)
    env.run(until=100)
    with pytest.raises(ValueError, match="99"):
        env.run(until=99)
    assert env.now == 100


@pytest.mark.parametrize("until", [None, 1000])
@pytest.mark.parametrize("policy", [None, "replay"])
def test_stop_simulation_from_callback(until, policy):
    env = Environment(policy=ReplayPolicy() if policy else None)
    log: list = []

    def stopper(_arg):
        log.append((env.now, "stop"))
        raise StopSimulation

    env.schedule(5, recorder(env, log, "a"))
    env.schedule(10, stopper)
    env.schedule(10, recorder(env, log, "b"))
    env.schedule(20, recorder(env, log, "c"))
    env.run(until=until)
    assert env.now == 10
    assert log == [(5, "a", None), (10, "stop")]
    assert env.events_processed == 2
    # the queue is consistent: the rest runs, and no stale `until` stops it early
    env.run()
    assert log[2:] == [(10, "b", None), (20, "c", None)]
    assert env.now == 20 and env.peek() is None
    assert env.events_processed == 4
    env.schedule(5, recorder(env, log, "d"))
    env.run(until=2000)
    assert log[-1] == (25, "d", None) and env.now == 2000


def test_queue_consistent_after_error_in_run_until():
    env = Environment()
    log: list = []

    def bad():
        yield 5
        yield "x"

    env.process(bad(), "bad")
    env.process(_ticker(env, log, 10, 10), "good")
    with pytest.raises(TypeError):
        env.run(until=50)
    env.run()
    assert log == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


# --- counting -----------------------------------------------------------------------

def test_events_processed_counts_executed_entries():
    env = Environment()
    for d in (1, 2, 3, 4, 5):
        env.schedule(d, lambda _a: None)
    env.run(until=3)  # the until-sentinel is not an event
    assert env.events_processed == 3
    env.run()
    assert env.events_processed == 5
    env.schedule(0, lambda _a: None)
    env.step()
    assert env.events_processed == 6


# --- randomness ---------------------------------------------------------------------

def _draws(env: Environment, name: str, n: int = 8) -> list[int]:
    r = env.rng(name)
    return [r.randrange(1 << 30) for _ in range(n)]


def test_rng_same_seed_and_name_same_sequence():
    assert _draws(Environment(seed=7), "disk") == _draws(Environment(seed=7), "disk")
    env = Environment(seed=7)
    assert env.rng("disk") is env.rng("disk")


def test_rng_names_and_seeds_differ():
    assert _draws(Environment(seed=7), "disk") != _draws(Environment(seed=7), "net")
    assert _draws(Environment(seed=7), "disk") != _draws(Environment(seed=8), "disk")


def test_rng_independent_of_creation_order():
    e1 = Environment(seed=3)
    a1 = _draws(e1, "a")
    b1 = _draws(e1, "b")
    e2 = Environment(seed=3)
    b2 = _draws(e2, "b")
    _draws(e2, "c")  # an unrelated stream in between
    a2 = _draws(e2, "a")
    assert (a1, b1) == (a2, b2)


def _small_model(seed: int) -> list:
    env = Environment(seed=seed)
    log: list = []
    done = env.event("all-done")

    def worker(name):
        r = env.rng(name)
        for i in range(20):
            yield r.randint(1, 100)
            log.append((env.now, name, i))
        return name

    def boss():
        workers = [env.process(worker(f"w{k}"), f"w{k}") for k in range(4)]
        for w in workers:
            name = yield w
            log.append((env.now, "joined", name))
        done.succeed(env.now)

    env.process(boss(), "boss")
    env.run()
    log.append(("end", env.now, done.value, env.events_processed))
    return log


def test_determinism_same_seed_same_log():
    assert _small_model(1) == _small_model(1)


def test_determinism_other_seed_other_log():
    assert _small_model(1) != _small_model(2)


# --- choice policies ----------------------------------------------------------------

def _three_wakers(env: Environment, log: list, names=("a", "b", "c")):
    """Processes that all wake at t=10, log, then park forever (no exit entries)."""
    def p(name):
        yield 10
        log.append(name)
        yield env.event(f"never-{name}")

    for n in names:
        env.process(p(n), n)


def test_default_policy_is_fifo():
    for policy in (None, ChoicePolicy(), ReplayPolicy()):
        env = Environment(policy=policy)
        log: list = []
        _three_wakers(env, log, ("c", "a", "b"))
        env.run()
        assert log == ["c", "a", "b"], policy


def test_policy_sees_labels_and_its_choice_runs_first():
    seen: list[tuple[str, ...]] = []

    class Last(ChoicePolicy):
        """FIFO for the two start choices at t=0, then the last due entry."""

        def choose(self, env, labels):
            seen.append(tuple(labels))
            return len(labels) - 1 if len(seen) > 2 else 0

    env = Environment(policy=Last())
    log: list = []
    _three_wakers(env, log)
    env.run()
    # the starts at t=0 are choice points too (labels are the process names)
    # then at t=10, always taking the last due entry reverses the FIFO order
    assert seen == [("a", "b", "c"), ("b", "c"), ("a", "b", "c"), ("a", "b")]
    assert log == ["c", "b", "a"]


def test_policy_sees_the_current_instant():
    seen: list[int] = []

    class Spy(ChoicePolicy):
        def choose(self, env, labels):
            seen.append(env.now)
            return 0

    env = Environment(policy=Spy())
    _three_wakers(env, [])
    env.run()
    assert seen == [0, 0, 10, 10]


def test_policy_sees_the_due_entries_in_the_order_its_indices_refer_to():
    seen = []

    class Spy(ChoicePolicy):
        def choose(self, env, labels):
            seen.append((labels, [describe(e) for e in env.due]))
            return len(labels) - 1

    env = Environment(policy=Spy())
    _three_wakers(env, [])
    assert env.due is None
    env.run()
    assert seen and all(labels == due for labels, due in seen)
    assert env.due is None     # only during a choice


def test_policy_labels_name_events():
    seen = []

    class Spy(ChoicePolicy):
        def choose(self, env, labels):
            seen.append(tuple(labels))
            return 0

    env = Environment(policy=Spy())
    e1, e2 = env.event("ev-one"), env.event("ev-two")
    e1.succeed()
    e2.succeed()
    env.run()
    assert ("ev-one", "ev-two") in seen


def test_replay_records_points():
    pol = ReplayPolicy([1])
    env = Environment(policy=pol)
    log: list = []
    _three_wakers(env, log)
    env.run()
    labels0, taken0 = pol.points[0]
    assert taken0 == 1 and len(labels0) == 3
    # every later point beyond the given choices is FIFO
    assert all(taken == 0 for _, taken in pol.points[1:])


def test_replay_reproduces_observable_order():
    class Random_(ChoicePolicy):
        def __init__(self, seed):
            self.r = random.Random(seed)
            self.taken = []

        def choose(self, env, labels):
            i = self.r.randrange(len(labels))
            self.taken.append(i)
            return i

    def model(policy):
        env = Environment(seed=5, policy=policy)
        log: list = []

        def p(name):
            for _ in range(4):
                yield env.rng(name).choice([10, 20])
                log.append((env.now, name))
                yield None
                log.append((env.now, name, "after-yield"))

        for n in "abcd":
            env.process(p(n), n)
        env.run()
        return log

    for seed in range(5):
        rnd = Random_(seed)
        original = model(rnd)
        replay = ReplayPolicy(rnd.taken)
        assert model(replay) == original
        assert [t for _, t in replay.points] == rnd.taken
    # and the choices matter: some seeds give different orders
    assert len({tuple(model(Random_(s))) for s in range(5)}) > 1


def test_replay_out_of_range_choice_raises():
    env = Environment(policy=ReplayPolicy([5]))
    _three_wakers(env, [])
    with pytest.raises(ValueError, match="5"):
        env.run()


def test_bad_policy_choice_raises():
    class Bad(ChoicePolicy):
        def choose(self, env, labels):
            return -1

    env = Environment(policy=Bad())
    _three_wakers(env, [])
    with pytest.raises(ValueError, match="-1"):
        env.run()


def explore(build):
    """Depth-first enumeration of every choice sequence, as the checker will do."""
    results = []
    stack: list[list[int]] = [[]]
    while stack:
        prefix = stack.pop()
        policy = ReplayPolicy(prefix)
        results.append(build(policy))
        taken = [t for _, t in policy.points]
        assert taken[: len(prefix)] == prefix
        for i in range(len(prefix), len(policy.points)):
            labels, _ = policy.points[i]
            for alt in range(1, len(labels)):
                stack.append(taken[:i] + [alt])
    return results


def test_enumerate_all_orders_of_three_simultaneous_wakers():
    def build(policy):
        env = Environment(policy=policy)
        log: list = []
        _three_wakers(env, log)
        env.run()
        return tuple(log)

    runs = explore(build)
    # 3! start orders at t=0 times 3! wake orders at t=10
    assert len(runs) == 36
    assert set(runs) == set(itertools.permutations("abc"))
    assert len(set(runs)) == 6


# --- the inlined loop of run() against the plain loop of step() ------------------------------

def _busy_model(env: Environment, log: list) -> None:
    """Processes that sleep, wait on events (pending and already processed), yield None, interrupt each
    other and finish; plain callbacks and timeouts beside them.  Everything observable goes to ``log``."""
    rng = env.rng("busy")
    gates = [env.event(f"gate{i}") for i in range(3)]

    def sleeper(name: str):
        r = env.rng(name)
        for i in range(30):
            try:
                kind = r.randrange(6)
                if kind < 3:
                    yield r.randrange(0, 50)
                elif kind == 3:
                    yield None
                elif kind == 4:
                    value = yield gates[r.randrange(3)]
                    log.append((env.now, name, "gate", value))
                else:
                    value = yield env.timeout(r.randrange(1, 20), value=i)
                    log.append((env.now, name, "timeout", value))
            except Interrupt as exc:
                log.append((env.now, name, "interrupted", exc.cause))
            log.append((env.now, name, i))
        return name

    procs = [env.process(sleeper(f"p{k}"), f"p{k}") for k in range(6)]

    def meddler():
        for i in range(40):
            yield rng.randrange(1, 30)
            alive = [p for p in procs if p.is_alive]
            if alive:
                rng.choice(alive).interrupt(i)
            if i % 7 == 0:
                gate = gates[i % 3]
                if not gate.triggered:
                    gate.succeed(i)
                else:
                    gates[i % 3] = env.event(f"gate{i}")
            env.schedule(rng.randrange(0, 10), lambda arg: log.append((env.now, "callback", arg)), i)
        for gate in gates:
            if not gate.triggered:
                gate.succeed("last")

    env.process(meddler(), "meddler")

    def joiner():
        for p in procs:
            log.append((env.now, "joined", (yield p)))

    env.process(joiner(), "joiner")


def _run_chunks(env: Environment, chunks: list[int], loop) -> list:
    log: list = []
    _busy_model(env, log)
    for until in chunks:
        loop(env, env.now + until)
        log.append(("chunk", env.now, env.events_processed, env.peek()))
    loop(env, None)
    log.append(("end", env.now, env.events_processed, env.peek()))
    return log


def _step_loop(env: Environment, until: int | None) -> None:
    """The plain loop of step() that run() stands for."""
    while env.peek() is not None and (until is None or env.peek() <= until):
        env.step()
    if until is not None:
        env.now = until


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.integers(0, 120), max_size=8))
def test_inlined_loop_matches_step_loop(seed, chunks):
    inlined = _run_chunks(Environment(seed), chunks, Environment.run)
    assert inlined == _run_chunks(Environment(seed), chunks, _step_loop)
    assert inlined == _run_chunks(Environment(seed, ChoicePolicy()), chunks, Environment.run)
    assert any(entry[2] == "interrupted" for entry in inlined if len(entry) == 4)


def test_inlined_loop_keeps_fifo_ties_and_the_end_of_run():
    """Sleeps and a callback due at one instant run in the order they were queued; one due exactly at ``until``
    still runs; counts and seq as in the step loop (the inlined loop's only extra seq is its end-of-run sentinel)."""
    def run(loop, sentinels: int) -> list:
        env = Environment(0)
        log: list = []

        def sleeper(name: str, delays: list[int]):
            for d in delays:
                yield d
                log.append((env.now, name))

        env.process(sleeper("a", [5, 5, 0, 3, 1, 1]), "a")
        env.process(sleeper("b", [10, 0, 3, 7]), "b")
        env.schedule(10, lambda _arg: log.append((env.now, "callback")))
        loop(env, 13)
        log.append(("chunk", env.now, env.events_processed, env.peek()))
        loop(env, None)
        log.append(("end", env.now, env.events_processed, env.peek(), next(env._seq) - sentinels))
        return log

    inlined = run(Environment.run, 1)
    assert inlined == run(_step_loop, 0)
    assert inlined[:4] == [(5, "a"), (10, "callback"), (10, "b"), (10, "a")] and (13, "a") in inlined
