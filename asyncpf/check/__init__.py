"""The protocol checker: invariants, exhaustive exploration of small configurations, mutants.

``invariants`` holds the registry and :func:`check`; ``models`` the small
configurations (of both modelled generations, legacy and seed, and with a
vcpu reset); ``explore`` the schedule enumerator; ``mutants`` the
historical bugs switched back on; ``stateful`` the Hypothesis state
machine; ``cli`` the ``check`` command.
"""

from .invariants import REGISTRY, Checker, Violation, attach, check

__all__ = ["REGISTRY", "Checker", "Violation", "attach", "check"]
