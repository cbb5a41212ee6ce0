"""Kernel tracepoints of the generation in use, written and read back as ftrace text.

Mirrors: the async-PF events of ``include/trace/events/kvm.h`` as each era had
them (the seed's ``kvm_send_async_pf`` [V2-08]; 2.6.38's ``not_present`` /
``ready`` / ``doublefault`` as released in include/trace/events/kvm.h@v2.6.38, printed through their event classes) and, for readable traces, the
2.6.3x x86 events ``kvm_entry``, ``kvm_exit``, ``kvm_page_fault``,
``kvm_inj_exception`` and ``kvm_msr``.  Messages use each event's exact
``TP_printk`` format with C printf semantics (``%#llx`` of 0 is ``0``); lines
use the 2.6.3x ``trace_print_context`` layout.

Simplified: text only (no binary ring buffer), no irq-flags column, comm/pid/cpu
are whatever the model says emitted the event, ``kvm_exit`` takes the exit
reason as its symbolic name rather than a u32, and ``kvm_inj_exception`` has no
``has_error`` field.  An event keeps what ``TP_fast_assign`` would keep, so
``kvm_try_async_get_page``'s flag is recovered from ``pfn != (u64)-1``.

Adding a tracepoint is one entry in :data:`_TABLE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, NamedTuple

from .abi import (
    KVM_PV_REASON_PAGE_NOT_PRESENT,
    KVM_PV_REASON_PAGE_READY,
    U64,
    Generation,
    generation as _generation,
)

Value = int | str | bool

HEADER = (
    "# tracer: nop\n"
    "#\n"
    "#           TASK-PID    CPU#    TIMESTAMP  FUNCTION\n"
    "#              | |       |          |         |\n"
)
GENERATION_LINE = "# asyncpf generation: "
IDLE_CTX = ("<idle>", 0, 0)
TASK_COMM_LEN = 16  # comm holds at most 15 characters


class TraceParseError(ValueError):
    """A line of ftrace text that is not an event of the generation in use."""


class TraceEvent(NamedTuple):
    """One recorded event; ``args`` in the tracepoint's argument order."""

    t_ns: int
    comm: str
    pid: int
    cpu: int
    name: str
    args: tuple[Value, ...]


# --- C printf, for the conversions TP_printk uses here ------------------------

_SPEC = re.compile(r"(%%|%[-+ #0-9.]*(?:ll|l|hh|h|z)?[A-Za-z])")
_CONVERSIONS = ("%#llx", "%#lx", "%llx", "%lx", "%#x", "%x", "%u", "%s")
_RAW_STRING = re.compile(r"\S+")


def _bits(conv: str) -> int:
    return 64 if "l" in conv else 32  # x86_64: long and long long are 64 bits


def _c_value(conv: str, value: Value, where: str) -> Value:
    """``value`` as the C conversion sees it: ints masked to the C width."""
    if conv == "%s":
        if not isinstance(value, str):
            raise ValueError(f"{where}: %s needs a str, got {value!r}")
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: {conv} needs an int, got {value!r}")
    return value & ((1 << _bits(conv)) - 1)


def c_format(conv: str, value: Value) -> str:
    """One printf conversion: ``c_format("%#llx", 0) == "0"``, ``("%#llx", -1)`` is 0xffffffffffffffff."""
    value = _c_value(conv, value, conv)
    if conv == "%s":
        return value
    if conv == "%u":
        return str(value)
    digits = format(value, "x")
    return "0x" + digits if conv.startswith("%#") and value else digits


def _c_regex(conv: str, choices: Iterable[str] | None) -> str:
    """The text ``c_format(conv, ...)`` can produce, and nothing else."""
    if conv == "%s":
        if choices is None:
            return r"\S+"
        return "|".join(re.escape(c) for c in sorted(choices, key=lambda c: (-len(c), c)))
    if conv == "%u":
        return r"0|[1-9][0-9]{0,9}"
    hex_body = rf"[1-9a-f][0-9a-f]{{0,{_bits(conv) // 4 - 1}}}"
    return rf"0|0x{hex_body}" if conv.startswith("%#") else rf"0|{hex_body}"


def _c_read(conv: str, text: str) -> Value:
    if conv == "%s":
        return text
    if conv == "%u":
        value = int(text)
        if value >> 32:
            raise ValueError(f"{text} does not fit the u32 of %u")
        return value
    return int(text, 16)


# --- tracepoints --------------------------------------------------------------

class Record(NamedTuple):
    """What ``TP_fast_assign`` keeps when it keeps fewer fields than ``TP_PROTO`` has args."""

    assign: Callable[[tuple], tuple]   # args -> one value per conversion
    recover: Callable[[tuple], tuple]  # those values -> args


@dataclass(frozen=True, eq=False)
class Tracepoint:
    """One ``TRACE_EVENT``: its ``TP_PROTO`` args and its ``TP_printk`` format."""

    name: str
    args: tuple[str, ...]
    fmt: str
    symbols: Mapping[str, Mapping[Value, str]] = field(default_factory=dict)  # __print_symbolic, per arg
    printk_args: tuple[str, ...] | None = None  # TP_printk's argument order, when not TP_PROTO's
    record: Record | None = None
    conversions: tuple[str, ...] = field(init=False)
    _order: tuple[int, ...] = field(init=False, repr=False)
    _literals: tuple[str, ...] = field(init=False, repr=False)
    _tables: tuple[Mapping[Value, str] | None, ...] = field(init=False, repr=False)
    _regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = _SPEC.split(self.fmt)
        literals, conversions = [parts[0]], []
        for spec, text in zip(parts[1::2], parts[2::2]):
            if spec == "%%":
                literals[-1] += "%" + text
                continue
            if spec not in _CONVERSIONS:
                raise ValueError(f"{self.name}: conversion {spec} is not supported; use one of {_CONVERSIONS}")
            conversions.append(spec)
            literals.append(text)
        unknown = sorted(set(self.symbols) - set(self.args))
        if unknown:
            raise ValueError(f"{self.name}: symbols for {unknown}, which are not args {self.args}")
        printk_args = self.args if self.printk_args is None else self.printk_args
        if sorted(printk_args) != sorted(self.args):
            raise ValueError(f"{self.name}: printk_args {printk_args} are not a permutation of {self.args}")
        order = tuple(self.args.index(a) for a in printk_args)
        if self.record is None:
            if len(conversions) != len(self.args):
                raise ValueError(f"{self.name}: {self.fmt!r} has {len(conversions)} conversions for args {self.args}")
            tables = tuple(self.symbols.get(a) for a in printk_args)
            for arg, conv, table in zip(printk_args, conversions, tables):
                if table is not None and conv != "%s":
                    raise ValueError(f"{self.name}: symbolic arg {arg} is printed with {conv}, not %s")
        else:
            tables = (None,) * len(conversions)
        regex = re.escape(literals[0]) + "".join(
            f"({_c_regex(c, None if t is None else t.values())})" + re.escape(lit)
            for c, t, lit in zip(conversions, tables, literals[1:])
        )
        object.__setattr__(self, "conversions", tuple(conversions))
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_literals", tuple(literals))
        object.__setattr__(self, "_tables", tables)
        object.__setattr__(self, "_regex", re.compile(regex))

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(self.args)})"

    def printed(self, args: tuple) -> tuple[Value, ...]:
        """The values the format's conversions see, one per conversion."""
        if len(args) != len(self.args):
            raise ValueError(f"{self.signature} takes {len(self.args)} args, got {args!r}")
        if self.record is not None:
            values = self.record.assign(args)
        else:
            values = tuple(
                args[i] if t is None else _symbol(self.signature, self.args[i], t, args[i])
                for i, t in zip(self._order, self._tables)
            )
        out = tuple(_c_value(c, v, self.signature) for c, v in zip(self.conversions, values))
        for conv, table, value in zip(self.conversions, self._tables, out):
            if conv == "%s" and table is None and not _RAW_STRING.fullmatch(value):
                raise ValueError(f"{self.signature}: %s value {value!r} must be non-empty, without whitespace")
        return out

    def _recover(self, values: tuple) -> tuple[Value, ...]:
        if self.record is not None:
            return self.record.recover(values)
        by_arg = dict(zip(self._order, (
            v if t is None else next(k for k, s in t.items() if s == v)
            for t, v in zip(self._tables, values)
        )))
        return tuple(by_arg[i] for i in range(len(self.args)))

    def canonical(self, args: tuple) -> tuple[Value, ...]:
        """``args`` as the ring buffer keeps them (masked, folded): what parsing gives back."""
        return self._recover(self.printed(args))

    def message(self, args: tuple) -> str:
        values = self.printed(args)
        return self._literals[0] + "".join(
            c_format(c, v) + lit for c, v, lit in zip(self.conversions, values, self._literals[1:])
        )

    def read(self, message: str) -> tuple[Value, ...]:
        """The args back from a message; ValueError if it is not this format's."""
        m = self._regex.fullmatch(message)
        if m is None:
            raise ValueError(f"message {message!r} does not match {self.signature}'s format {self.fmt!r}")
        return self._recover(tuple(_c_read(c, s) for c, s in zip(self.conversions, m.groups())))


def _symbol(where: str, arg: str, table: Mapping[Value, str], value: Value) -> str:
    for key, text in table.items():
        if type(key) is type(value) and key == value:
            return text
    raise ValueError(f"{where}: {arg}={value!r} is not one of {list(table)}")


def _pfn_unless_error(flag: str, valid_when: bool) -> Record:
    """``pfn = <flag> == valid_when ? pfn : (u64)-1``; only pfn is recorded."""

    def assign(args: tuple) -> tuple:
        value, pfn = args
        if not isinstance(value, bool):
            raise ValueError(f"kvm_try_async_get_page: {flag} must be a bool, got {value!r}")
        return (pfn if value == valid_when else U64,)

    def recover(values: tuple) -> tuple:
        (pfn,) = values
        return ((pfn != U64) == valid_when, pfn)

    return Record(assign, recover)


_REASONS = {KVM_PV_REASON_PAGE_NOT_PRESENT: "not present", KVM_PV_REASON_PAGE_READY: "ready"}
_EXCEPTIONS = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
               10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC"}

_DELIVERY_MODES = {0: "Fixed", 1: "LowPrio", 2: "SMI", 3: "Res3", 4: "NMI", 5: "INIT", 6: "SIPI", 7: "ExtINT"}


def _without_exit_info() -> Record:
    """kvm_exit before 2.6.36 printed no exit information: ``info1``/``info2`` are not recorded (read back as 0)."""
    return Record(lambda args: args[:2], lambda values: (*values, 0, 0))


_X86 = (
    Tracepoint("kvm_entry", ("vcpu_id",), "vcpu %u"),
    Tracepoint("kvm_page_fault", ("fault_address", "error_code"), "address %lx error_code %x"),
    Tracepoint("kvm_inj_exception", ("exception", "error_code"), "%s (0x%x)", {"exception": _EXCEPTIONS}),
    Tracepoint("kvm_msr", ("write", "ecx", "data", "exception"), "msr_%s %x = 0x%llx%s",
               {"write": {True: "write", False: "read"}, "exception": {True: " (#GP)", False: ""}}),
)

_TABLE: dict[str, tuple[Tracepoint, ...]] = {
    "seed": (
        Tracepoint("kvm_try_async_get_page", ("r", "pfn"), "pfn %#llx", record=_pfn_unless_error("r", True)),
        Tracepoint("kvm_send_async_pf", ("token", "gva", "reason"), "token %#llx gva %#llx %s", {"reason": _REASONS}),
        Tracepoint("kvm_exit", ("exit_reason", "guest_rip", "info1", "info2"), "reason %s rip 0x%lx",
                   record=_without_exit_info()),
        Tracepoint("kvm_async_pf_completed", ("address", "pfn", "gva"), "gva %#llx address %#lx pfn %lx",
                   printk_args=("gva", "address", "pfn")),
        *_X86,
    ),
    "legacy": (
        Tracepoint("kvm_try_async_get_page", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_async_pf_not_present", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_ready", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_completed", ("address", "pfn", "gva"), "gva %#llx address %#lx pfn %#llx",
                   printk_args=("gva", "address", "pfn")),
        Tracepoint("kvm_async_pf_doublefault", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_exit", ("exit_reason", "guest_rip", "info1", "info2"), "reason %s rip 0x%lx info %llx %llx"),
        *_X86,
    ),
    # Linux 6.18 (include/trace/events/kvm.h, arch/x86/kvm/trace.h); the x86
    # exit/entry events keep the 2.6.3x layout until the modern reader lands.
    "interrupt": (
        Tracepoint("kvm_try_async_get_page", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_async_pf_repeated_fault", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_async_pf_not_present", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_ready", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_completed", ("address", "gva"), "gva %#llx address %#lx",
                   printk_args=("gva", "address")),
        Tracepoint("kvm_apic_accept_irq", ("apicid", "dm", "tm", "vec"), "apicid %x vec %u (%s|%s)",
                   {"dm": _DELIVERY_MODES, "tm": {False: "edge", True: "level"}},
                   printk_args=("apicid", "vec", "dm", "tm")),
        Tracepoint("kvm_exit", ("exit_reason", "guest_rip", "info1", "info2"), "reason %s rip 0x%lx info %llx %llx"),
        *_X86,
    ),
}

TRACEPOINTS: dict[tuple[str, str], Tracepoint] = {
    (gen, tp.name): tp for gen, tps in _TABLE.items() for tp in tps
}


def tracepoints(gen: str | Generation) -> dict[str, Tracepoint]:
    """The tracepoints of one generation, by name."""
    g = _generation(gen, modelled=False)
    if g.name not in _TABLE:
        raise ValueError(f"no tracepoint table for the {g.name!r} generation; tables exist for {sorted(_TABLE)}")
    return {tp.name: tp for tp in _TABLE[g.name]}


# --- ftrace lines -------------------------------------------------------------

_LINE = re.compile(
    r" *(?P<comm>\S(?:.*\S)?)-(?P<pid>[0-9]+) +\[(?P<cpu>[0-9]{3,})\] +"
    r"(?P<sec>[0-9]+)\.(?P<usec>[0-9]{6}): (?P<name>\w+): (?P<msg>.*)"
)


def _check_ctx(ctx: object) -> tuple[str, int, int]:
    ok = isinstance(ctx, tuple) and len(ctx) == 3
    if ok:
        comm, pid, cpu = ctx
        ok = (isinstance(comm, str) and 0 < len(comm) < TASK_COMM_LEN and comm.isprintable()
              and comm == comm.strip()
              and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (pid, cpu)))
    if not ok:
        raise ValueError(
            f"ctx {ctx!r} must be (comm, pid, cpu): comm 1-{TASK_COMM_LEN - 1} printable characters "
            "without leading/trailing blanks, pid and cpu non-negative ints"
        )
    return ctx


def _line(tps: Mapping[str, Tracepoint], ev: TraceEvent) -> str:
    tp = tps.get(ev.name)
    if tp is None:
        raise ValueError(f"event {ev.name!r} is not a tracepoint here; known: {sorted(tps)}")
    comm, pid, cpu = _check_ctx((ev.comm, ev.pid, ev.cpu))
    if not isinstance(ev.t_ns, int) or ev.t_ns < 0:
        raise ValueError(f"{ev.name}: t_ns must be a non-negative int, got {ev.t_ns!r}")
    usecs = ev.t_ns // 1000
    sec, usec = divmod(usecs, 1_000_000)
    return f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec:5d}.{usec:06d}: {ev.name}: {tp.message(ev.args)}"


def render(events: Iterable[TraceEvent], generation: str | Generation) -> str:
    """ftrace text for ``events``: the header, the generation line, one line per event."""
    tps = tracepoints(generation)
    name = _generation(generation, modelled=False).name
    lines = [f"{GENERATION_LINE}{name}", *(_line(tps, ev) for ev in events)]
    return HEADER + "\n".join(lines) + "\n"


def parse(text: str, generation: str | Generation | None = None) -> list[TraceEvent]:
    """Events back from ftrace text; the generation comes from the argument or the header."""
    tps = None if generation is None else tracepoints(generation)
    gen_name = None if generation is None else _generation(generation, modelled=False).name
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(GENERATION_LINE):
            named = line[len(GENERATION_LINE):].strip()
            if gen_name is not None and named != gen_name:
                raise TraceParseError(f"line {n}: {line!r}: generation {named!r} conflicts with {gen_name!r}")
            try:
                tps = tracepoints(named)
            except ValueError as exc:
                raise TraceParseError(f"line {n}: {line!r}: {exc}") from None
            gen_name = named
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise TraceParseError(
                f"line {n}: {line!r}: expected '<comm>-<pid> [<cpu>] <sec>.<usec>: <event>: <message>'"
            )
        if tps is None:
            raise TraceParseError(
                f"line {n}: {line!r}: generation unknown; pass generation= or put "
                f"'{GENERATION_LINE}<name>' in the header"
            )
        tp = tps.get(m["name"])
        if tp is None:
            raise TraceParseError(
                f"line {n}: {line!r}: unknown event {m['name']!r} for the {gen_name} generation; "
                f"expected one of {sorted(tps)}"
            )
        try:
            args = tp.read(m["msg"])
        except ValueError as exc:
            raise TraceParseError(f"line {n}: {line!r}: {exc}") from None
        t_ns = (int(m["sec"]) * 1_000_000 + int(m["usec"])) * 1000
        events.append(TraceEvent(t_ns, m["comm"], int(m["pid"]), int(m["cpu"]), tp.name, args))
    return events


def table(events: Iterable[TraceEvent], limit: int | None = None,
          generation: str | Generation | None = None) -> str:
    """A fixed-width table (time in us, cpu, comm, event, message) for notebooks.

    Without ``generation`` the one whose table has every event name is used.
    """
    events = list(events)
    if generation is None:
        names = {ev.name for ev in events}
        fits = [g for g, tps in _TABLE.items() if names <= {tp.name for tp in tps}]
        if len(fits) != 1:
            raise ValueError(f"events {sorted(names)} fit generations {fits}; pass generation=")
        generation = fits[0]
    tps = tracepoints(generation)
    shown = events if limit is None else events[:limit]
    rows = [("time_us", "cpu", "comm", "event", "message")] + [
        (f"{ev.t_ns // 1000}.{ev.t_ns % 1000:03d}", str(ev.cpu), ev.comm, ev.name, tps[ev.name].message(ev.args))
        for ev in shown
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        " ".join([r[0].rjust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]), r[3].ljust(widths[3]), r[4]])
        for r in rows
    ]
    if len(shown) < len(events):
        lines.append(f"... {len(events) - len(shown)} more events")
    return "\n".join(lines)


class Tracer:
    """The engine's trace hook: ``env.tracer = Tracer(LEGACY)``.

    Called as ``tracer(t_ns, name, fields)``; ``fields`` holds the tracepoint's
    args by name and optionally ``ctx=(comm, pid, cpu)`` (default idle task on
    cpu 0).  Unknown names and missing or extra args raise ValueError.
    """

    def __init__(self, generation: str | Generation):
        self.generation = _generation(generation, modelled=False)
        self._tps = tracepoints(self.generation)
        self.events: list[TraceEvent] = []

    def __call__(self, t_ns: int, name: str, fields: Mapping[str, Value]) -> None:
        tp = self._tps.get(name)
        if tp is None:
            raise ValueError(
                f"{name!r} is not a {self.generation.name} tracepoint; expected one of {sorted(self._tps)}"
            )
        fields = dict(fields)
        ctx = _check_ctx(fields.pop("ctx", IDLE_CTX))
        missing = [a for a in tp.args if a not in fields]
        extra = sorted(set(fields) - set(tp.args))
        if missing or extra:
            raise ValueError(f"{tp.signature}: missing {missing}, unexpected {extra}")
        if not isinstance(t_ns, int) or t_ns < 0:
            raise ValueError(f"{tp.signature}: t_ns must be a non-negative int, got {t_ns!r}")
        args = tp.canonical(tuple(fields[a] for a in tp.args))
        self.events.append(TraceEvent(t_ns, *ctx, name, args))

    def text(self) -> str:
        return render(self.events, self.generation)

    def count(self, name: str) -> int:
        return sum(ev.name == name for ev in self.events)

    def names(self) -> list[str]:
        return sorted({ev.name for ev in self.events})

    def of(self, name: str) -> list[TraceEvent]:
        return [ev for ev in self.events if ev.name == name]
