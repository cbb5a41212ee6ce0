"""The protocol checker: invariants, exhaustive exploration of small configurations, mutants.

``invariants`` holds the registry; ``known`` the behaviour a generation
shows by design; ``checker`` runs the registry on a machine, and
:func:`check`; ``models`` the small configurations (of both modelled
generations, legacy and seed, and with a vcpu reset); ``explore`` the
schedule enumerator; ``mutants`` the historical bugs switched back on;
``stateful`` the Hypothesis state machine; ``cli`` the ``check`` command.
"""

from .checker import Checker, attach, check
from .invariants import REGISTRY, Violation

__all__ = ["REGISTRY", "Checker", "Violation", "attach", "check"]
