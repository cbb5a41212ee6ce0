"""Named scenarios: small deterministic machines that each show one async-PF behaviour.

Each scenario builds a tiny host (1-2 vcpus, 8 MiB of guest RAM in a 1 MiB
memory cgroup, an nvme or 2010-HDD swap device), boots the real guest kernel
(:class:`~asyncpf.guest.kernel.GuestKernel`) for 20 ms as ``bm`` does, spawns
a few tasks, forces its situation, and records *checks* -- what it expects
to happen -- instead of stopping at the first failed assert.  Every scenario
ends the same way: run until its tasks have exited, destroy the VM
(:meth:`Machine.shutdown`) and demand :meth:`Machine.leaks` be empty, except
for leak lines a scenario names in advance as the expected consequence.

``python -m asyncpf scenario --list`` lists them; ``python -m asyncpf scenario
NAME [--trace FILE] [--json] [--seed N]`` runs one.

Situations the host cannot produce on its own are forced at exact instants
through a trace hook (a callback when a tracepoint fires; the hook sees every
event whether or not the ftrace text is kept) or by calling the guest/host
twins directly, and each scenario's summary says which.
"""

# Importing the submodules registers the scenarios, in this order (the order of --list), and the command.
from . import faults, contexts, lifecycle, synchronous, quirks, interrupt_era, kvm_unit_tests, cli  # noqa: F401, I001
from .stage import SCENARIOS, Scenario, get

__all__ = ["SCENARIOS", "Scenario", "get"]
# hostsched and the waking contract: after the others, so --list keeps its order
from . import hostcpus, waking, book3s  # noqa: E402,F401
