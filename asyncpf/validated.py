"""Settings dataclasses that declare what each field accepts: one ``validate`` and one ``replace`` for all.

A field of a :class:`Validated` dataclass lists its rules with :func:`setting`;
:meth:`Validated.validate` runs them field by field, in declaration order,
then :meth:`Validated.check_together` for what spans several fields.  Every
refusal names the field and the value (``vcpus=0: expected a positive
integer``), or is the message of the look-up that refused it (an unknown
generation, swap device or cost era).  :meth:`Validated.replace` refuses
unknown field names the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

Rule = Callable[[str, Any], None]  # rule(field name, value) raises ValueError when the value is refused


def rule(expected: str, accepts: Callable[[Any], bool]) -> Rule:
    """Refuse a value ``accepts`` rejects with ``name=value: expected <expected>``."""

    def check(name: str, value: Any) -> None:
        if not accepts(value):
            raise ValueError(f"{name}={value!r}: expected {expected}")

    return check


def looked_up(lookup: Callable[[Any], Any]) -> Rule:
    """Refuse what ``lookup(value)`` refuses, with its own message (e.g. ``abi.generation``)."""
    return lambda name, value: lookup(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


INTEGER = rule("an integer", _is_int)
POSITIVE = rule("a positive integer", lambda v: _is_int(v) and v > 0)
ZERO_OR_POSITIVE = rule("zero or a positive integer", lambda v: _is_int(v) and v >= 0)
NONE_OR_POSITIVE = rule("None or a positive integer", lambda v: v is None or (_is_int(v) and v > 0))


def at_most(limit: int, unit: str = "") -> Rule:
    return rule(f"at most {limit}{unit}", lambda v: v <= limit)


def multiple_of(n: int, what: str) -> Rule:
    return rule(f"a multiple of {what}", lambda v: v % n == 0)


def one_of(*choices: Any) -> Rule:
    return rule(" or ".join(map(repr, choices)), lambda v: v in choices)


def setting(default: Any, *rules: Rule) -> Any:
    """A dataclass field with a default and the rules its value must pass."""
    return dataclasses.field(default=default, metadata={"rules": rules})


class Validated:
    """Mixin for frozen dataclasses whose fields are declared with :func:`setting`."""

    def validate(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            for check in f.metadata.get("rules", ()):
                check(f.name, getattr(self, f.name))
        self.check_together()

    def check_together(self) -> None:
        """Rules across fields; the field rules have passed."""

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` (not validated); unknown field names are refused."""
        known = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} fields {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
