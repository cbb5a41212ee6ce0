"""Every hot-path specialisation of the model, in one place, each with what it saves.

The twins say what the kernel does; a few places the engine passes through
hundreds of thousands of times a simulated minute are written for speed
here or marked ``hot path (asyncpf/hotpath.py)`` where they stand.  Each
one has exactly the effect of the plain code (same events, same order, same
trace): ``python -m asyncpf bm -t 10s --json`` (all generations), the PV
trace and every scenario's trace are byte-identical with and without them.

Gains, measured on the project's shared 2-core machine (load average ~5
from other jobs) as the ratio of the model's events per CPU second to the
bare heapq loop of ``bench-engine`` timed in the same process (``bm --json``'s
``"speed"``): five default ``bm`` runs (60 s, three hosts, ``--jobs 2``)
alternated with the code before all of them (commit f9a0074), medians --
ratio 0.104 -> 0.132 (82,000 -> 102,000 events per CPU second), wall time of
the command 35.2 s -> 28.3 s; the ten JSON reports identical but for
``"speed"``.  Items 1-4 are the run path's share; item 5 alone takes a
default host's set-up from 0.87 s to 0.08 s of CPU (same process, plain
loop and fast path built one after the other).

1. :func:`fast_frozen_init` -- the guest and host ops (``Touch``, ``Work``,
   ``Access``, ``Compute``...) are frozen slotted dataclasses, created once
   or twice per engine event.  Their generated ``__init__`` sets every field
   through ``object.__setattr__``, which checks it is not misapplied (about
   0.8 us for ``Access``); setting the slots through their descriptors does
   the same in about 0.45 us.  Still frozen: assignment raises
   ``FrozenInstanceError``.
2. Ops that never change are made once: the work thread's ``Work`` chunk
   (``asyncpf.workloads.work_thread``), the ``Compute`` a ``Work`` is
   lowered to and the tick's and the interrupt return path's ``Compute``
   (:func:`compute`, a dictionary whose hits are no Python call), the idle
   loop's ``SafeHalt`` and the ``Halt`` it is lowered to
   (``asyncpf.guest.kernel``).  Op allocations of a 10 s ``bm`` host, set-up
   included: PV 52,897 -> 35,628, halt 47,590 -> 26,560, unpatched
   37,465 -> 21,449 (what is left: ``Access`` per touch, the remainders of
   cut-short work).
3. No tracer, no trace call: ``enter_guest_mode`` and ``handle_ept_violation``
   (``asyncpf.host.vcpu``) test ``env.tracer`` before building the
   ``kvm_entry``/``kvm_exit``/``kvm_page_fault`` fields (0.4 us a call
   otherwise, three calls per entry).
4. Reclaim's MMU-notifier calls for a chunk of victims are one call over
   the array when KVM is the only notifier
   (``KvmMmuNotifier.invalidate_pages``): 131,072 Python calls of a default
   ``bm`` host's set-up become 4,096.
5. Prefault filling a cgroup at its limit does many reclaim-then-fill rounds
   at once with numpy (``Reclaimer.fill_rounds``, called from
   ``HostMemory.make_pages_present``): exactly the state, write IOs and
   statistics of the plain loop (``tests/test_mm.py::test_fill_rounds_*``
   compares every array); it is what lets a 64 GiB guest with a 32 GiB
   array set up in seconds.
6. The work thread's step without a Python call of its own: ``GuestCpu.next_op``
   lowers a ``Work`` itself (the other ops go through ``_lower``) and
   ``GuestCpu.op_done`` charges its CPU time inline.  With item 2's additions:
   Python calls of a 10 s host run (cProfile's count, set-up included) PV
   2,844,198 -> 2,723,797 (24.1 -> 23.0 per event), halt 2,724,183 ->
   2,672,434, unpatched 1,710,884 -> 1,655,091.  In time this is below what
   the shared machine (load average 7-9) can resolve: ten alternated 2 s PV
   runs, main and this code (min CPU of three each), could not tell the two
   apart (this/main 1.10 by the minimum, 0.91 by the median).

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def fast_frozen_init(cls: type) -> type:
    """Give a frozen, slotted dataclass an ``__init__`` that sets its slots through their descriptors.

    Same signature and defaults as the generated one (no ``default_factory``,
    no ``__post_init__``: refused), same resulting object.
    """
    fields = dataclasses.fields(cls)
    if not cls.__dataclass_params__.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: expected a frozen dataclass with slots")
    if hasattr(cls, "__post_init__") or any(f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: __post_init__ or default_factory is not supported")
    env: dict[str, Any] = {}
    params, body = [], []
    for k, f in enumerate(fields):
        env[f"_set{k}"] = getattr(cls, f.name).__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            env[f"_default{k}"] = f.default
            params.append(f"{f.name}=_default{k}")
        body.append(f"    _set{k}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) if body else "    pass") + "\n"
    exec(src, env)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


class _Computes(dict):
    """``Compute(ns)`` by ``ns``: a hit is one dictionary look-up, with no Python call."""

    def __missing__(self, ns: int) -> Any:
        from .host.vcpu import Compute

        op = Compute(ns)
        if len(self) < 64:  # remainders of cut-short work are many and used once
            self[ns] = op
        return op


compute = _Computes().__getitem__  # compute(ns): Compute(ns), made once per distinct ns (ops are frozen: shared)
