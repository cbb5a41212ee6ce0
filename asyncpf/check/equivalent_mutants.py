"""Mechanical mutants judged equivalent: no difference any run can observe, each with the reason.

Keyed by the stable mutant id of :mod:`asyncpf.check.mutation`
(``module:function:operator:n``); the value is ``(before, reason)`` where
``before`` is the mutated node's source as the id was judged -- if the twin
changes under it the entry no longer matches and the mutant is run again.
"""

from __future__ import annotations

EQUIVALENT: dict[str, tuple[str, str]] = {
}
