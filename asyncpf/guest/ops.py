"""What guest code does, one step at a time.

A task's user program (see ``asyncpf.workloads``) is a generator yielding
:class:`Touch`, :class:`Work` and :class:`Exit`.  Kernel code in the model
(exception and interrupt handlers, the idle loop, ``kvm_async_pf_task_wait``)
yields host operations (``asyncpf.host.vcpu.Access/Compute/Halt/WrMsr``) and
the CPU-internal steps below.  Every yield is an instruction boundary where
KVM may inject an event -- that is where races live.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hotpath import fast_frozen_init


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Touch:
    """Load or store one byte at ``gva`` (``kernel=True``: from kernel mode, e.g. copy_to_user)."""

    gva: int
    write: bool = True
    cost_ns: int = 0
    kernel: bool = False


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Work:
    """``ns`` of CPU-bound user work; None = until preempted, forever."""

    ns: int | None


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Exit:
    """The task exits."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class PreemptDisable:
    """``preempt_disable()`` around a kernel section (the task then touches memory with ``kernel=True``)."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class PreemptEnable:
    """``preempt_enable()``."""


# CPU-internal steps used by kernel code --------------------------------------------

@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Sti:
    """``local_irq_enable()``: IF := 1 (an instruction boundary follows)."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Cli:
    """``local_irq_disable()``: IF := 0."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class SafeHalt:
    """``native_safe_halt()``: STI;HLT -- no event can slip in between the two."""


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Schedule:
    """Call ``schedule()``: another task may run before this context continues.

    ``preempt``: an involuntary switch (preempt_schedule_irq, PREEMPT_ACTIVE):
    the task stays on the runqueue whatever its state.
    """

    preempt: bool = False


UserOp = Touch | Work | Exit | PreemptDisable | PreemptEnable
