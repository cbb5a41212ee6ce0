"""Kernel tracepoints of the generation in use, written and read back as ftrace text.

Mirrors: the async-PF events of ``include/trace/events/kvm.h`` as each era had
them (the seed's ``kvm_send_async_pf``, v2 patch 08/12, Msg-Id 1258985167-29178-9-git-send-email-gleb@redhat.com; 2.6.38's ``not_present`` /
``ready`` / ``doublefault`` as released in include/trace/events/kvm.h@v2.6.38, printed through their event classes) and, for readable traces, the
2.6.3x x86 events ``kvm_entry``, ``kvm_exit``, ``kvm_page_fault``,
``kvm_inj_exception`` and ``kvm_msr``.  Messages use each event's exact
``TP_printk`` format as the kernel's vsnprintf prints it (``%#llx`` of 0 is ``0x0``, unlike C); lines
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
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, NamedTuple

from .abi import (
    KVM_PV_REASON_PAGE_NOT_PRESENT,
    KVM_PV_REASON_PAGE_READY,
    U32,
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


def _q(line: str, limit: int = 160) -> str:
    """A line as an error quotes it: repr, cut to ``limit`` characters (an absurd line stays one short line)."""
    return repr(line) if len(line) <= limit else repr(line[:limit]) + f"... ({len(line)} characters)"


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
_CONVERSIONS = ("%#llx", "%#lx", "%llx", "%lx", "%#x", "%x", "%u", "%d", "%08x", "%016llx", "%s")
_FIXED_WIDTH = {"%08x": 8, "%016llx": 16}  # zero-padded: exactly this many digits
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
    value &= (1 << _bits(conv)) - 1
    if conv == "%d" and value >> 31:
        value -= 1 << 32  # int is signed
    return value


def c_format(conv: str, value: Value, kernel: bool = False) -> str:
    """One printf conversion: ``c_format("%#llx", 0) == "0"``, ``("%#llx", -1)`` is 0xffffffffffffffff.

    ``kernel``: the kernel's own vsnprintf (lib/vsprintf.c number()), which puts "0x" before a zero too,
    so ``c_format("%#llx", 0, kernel=True) == "0x0"`` as tracefs prints it.
    """
    value = _c_value(conv, value, conv)
    if conv == "%s":
        return value
    if conv in ("%u", "%d"):
        return str(value)
    if conv in _FIXED_WIDTH:
        return format(value, f"0{_FIXED_WIDTH[conv]}x")
    digits = format(value, "x")
    return "0x" + digits if conv.startswith("%#") and (value or kernel) else digits


def _c_regex(conv: str, choices: Iterable[str] | None, pattern: str | None = None) -> str:
    """The text ``c_format(conv, ...)`` can produce, and nothing else."""
    if conv == "%s":
        if pattern is not None:
            return pattern
        if choices is None:
            return r"\S+"
        return "|".join(re.escape(c) for c in sorted(choices, key=lambda c: (-len(c), c)))
    if conv == "%u":
        return r"0|[1-9][0-9]{0,9}"
    if conv == "%d":
        return r"0|-?[1-9][0-9]{0,9}"
    if conv in _FIXED_WIDTH:
        return rf"[0-9a-f]{{{_FIXED_WIDTH[conv]}}}"
    hex_body = rf"[1-9a-f][0-9a-f]{{0,{_bits(conv) // 4 - 1}}}"
    return rf"0|0x0|0x{hex_body}" if conv.startswith("%#") else rf"0|{hex_body}"


def _c_read(conv: str, text: str) -> Value:
    if conv == "%s":
        return text
    if conv == "%u":
        value = int(text)
        if value >> 32:
            raise ValueError(f"{text} does not fit the u32 of %u")
        return value
    if conv == "%d":
        value = int(text)
        if not -(1 << 31) <= value < 1 << 31:
            raise ValueError(f"{text} does not fit the int of %d")
        return value
    return int(text, 16)


# --- tracepoints --------------------------------------------------------------

class Record(NamedTuple):
    """What ``TP_fast_assign`` keeps when it keeps fewer fields than ``TP_PROTO`` has args."""

    assign: Callable[[tuple], tuple]   # args -> one value per conversion
    recover: Callable[[tuple], tuple]  # those values -> args
    patterns: tuple[str | None, ...] | None = None  # per conversion: the regex a %s value matches (None: no blanks)


@dataclass(frozen=True, eq=False)
class Tracepoint:
    """One ``TRACE_EVENT``: its ``TP_PROTO`` args and its ``TP_printk`` format."""

    name: str
    args: tuple[str, ...]
    fmt: str
    symbols: Mapping[str, Mapping[Value, str]] = field(default_factory=dict)  # __print_symbolic, per arg
    printk_args: tuple[str, ...] | None = None  # TP_printk's argument order, when not TP_PROTO's
    record: Record | None = None
    # args the model need not pass (fields a newer kernel records that the model does not know):
    # a value, or a function of the args given (by name)
    defaults: Mapping[str, Value | Callable[[Mapping[str, Value]], Value]] = field(default_factory=dict)
    patterns: Mapping[str, str] = field(default_factory=dict)  # regex of a plain %s arg that may hold blanks
    # print as the kernel's vsnprintf does ("%#llx" of 0 is "0x0": lib/vsprintf.c number() puts the prefix
    # before a zero too, in 2.6.3x as in 6.18); False gives the C library's "0"; reading accepts either
    kernel_printf: bool = True
    conversions: tuple[str, ...] = field(init=False)
    _order: tuple[int, ...] = field(init=False, repr=False)
    _literals: tuple[str, ...] = field(init=False, repr=False)
    _tables: tuple[Mapping[Value, str] | None, ...] = field(init=False, repr=False)
    _patterns: tuple[str | None, ...] = field(init=False, repr=False)
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
        unknown = sorted((set(self.symbols) | set(self.defaults) | set(self.patterns)) - set(self.args))
        if unknown:
            raise ValueError(f"{self.name}: symbols, defaults or patterns for {unknown}, which are not args {self.args}")
        printk_args = self.args if self.printk_args is None else self.printk_args
        if sorted(printk_args) != sorted(self.args):
            raise ValueError(f"{self.name}: printk_args {printk_args} are not a permutation of {self.args}")
        order = tuple(self.args.index(a) for a in printk_args)
        if self.record is None:
            if len(conversions) != len(self.args):
                raise ValueError(f"{self.name}: {self.fmt!r} has {len(conversions)} conversions for args {self.args}")
            tables = tuple(self.symbols.get(a) for a in printk_args)
            patterns = tuple(self.patterns.get(a) for a in printk_args)
            for arg, conv, table, pattern in zip(printk_args, conversions, tables, patterns):
                if (table is not None or pattern is not None) and conv != "%s":
                    raise ValueError(f"{self.name}: symbolic or patterned arg {arg} is printed with {conv}, not %s")
        else:
            tables = (None,) * len(conversions)
            patterns = self.record.patterns or (None,) * len(conversions)
            if len(patterns) != len(conversions):
                raise ValueError(f"{self.name}: {len(patterns)} record patterns for {len(conversions)} conversions")
        regex = re.escape(literals[0]) + "".join(
            f"({_c_regex(c, None if t is None else t.values(), p)})" + re.escape(lit)
            for c, t, p, lit in zip(conversions, tables, patterns, literals[1:])
        )
        object.__setattr__(self, "conversions", tuple(conversions))
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_literals", tuple(literals))
        object.__setattr__(self, "_tables", tables)
        object.__setattr__(self, "_patterns", patterns)
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
        for conv, table, pattern, value in zip(self.conversions, self._tables, self._patterns, out):
            if conv != "%s" or table is not None:
                continue
            if pattern is None and not _RAW_STRING.fullmatch(value):
                raise ValueError(f"{self.signature}: %s value {value!r} must be non-empty, without whitespace")
            if pattern is not None and not re.fullmatch(pattern, value):
                raise ValueError(f"{self.signature}: %s value {value!r} does not match {pattern!r}")
        return out

    def complete(self, fields: Mapping[str, Value]) -> tuple[Value, ...]:
        """The args from ``fields`` by name, with :attr:`defaults` for those left out."""
        missing = [a for a in self.args if a not in fields and a not in self.defaults]
        extra = sorted(set(fields) - set(self.args))
        if missing or extra:
            raise ValueError(f"{self.signature}: missing {missing}, unexpected {extra}")
        return tuple(fields[a] if a in fields else
                     self.defaults[a](fields) if callable(self.defaults[a]) else self.defaults[a]
                     for a in self.args)

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

    def message(self, args: tuple, kernel: bool | None = None) -> str:
        values = self.printed(args)
        kernel = self.kernel_printf if kernel is None else kernel
        return self._literals[0] + "".join(
            c_format(c, v, kernel) + lit for c, v, lit in zip(self.conversions, values, self._literals[1:])
        )

    def read(self, message: str) -> tuple[Value, ...]:
        """The args back from a message; ValueError if it is not this format's."""
        m = self._regex.fullmatch(message)
        if m is None:
            raise ValueError(f"message {_q(message)} does not match {self.signature}'s format {self.fmt!r}")
        args = self._recover(tuple(_c_read(c, s) for c, s in zip(self.conversions, m.groups())))
        if message not in (self.message(args), self.message(args, kernel=not self.kernel_printf)):
            # the writer must give this text back (e.g. "0x0" of an unknown vector)
            raise ValueError(f"message {_q(message)} is not how {self.signature}'s format {self.fmt!r} prints "
                             f"these values ({self.message(args)!r})")
        return args


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

# The x86 events as 6.18 prints them.  The model passes the fields 2.6.3x had; the others (rip, intr_info,
# the exit's vcpu_id and requests, ...) are printed as 0 / false unless given.
_EXCEPTIONS_618 = {**_EXCEPTIONS, 19: "#XM", 20: "#VE", 21: "#CP", 28: "#HV", 29: "#VC", 30: "#SX"}
EXCEPTION_NAMES = _EXCEPTIONS_618   # every vector either format names, for readers that only want a name
_HAS_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})  # x86_exception_has_error_code
_INJ_NAMES = {v: k for k, v in _EXCEPTIONS_618.items()}


def _inj_exception_618() -> Record:
    """``"%s%s%s%s%s"``: __print_symbolic(exception) (``0x..`` when not in the table), `` (0x<error>)`` when
    has_error (the error code through an empty __print_symbolic, so always ``0x%lx``), `` [reinjected]``."""

    def assign(args: tuple) -> tuple:
        exception, error_code, has_error, reinjected = args
        if not isinstance(exception, int) or isinstance(exception, bool) or not 0 <= exception <= 0xFF:
            raise ValueError(f"kvm_inj_exception: exception must be a u8 vector, got {exception!r}")
        if not isinstance(error_code, int) or isinstance(error_code, bool):
            raise ValueError(f"kvm_inj_exception: error_code needs an int, got {error_code!r}")
        for name, flag in (("has_error", has_error), ("reinjected", reinjected)):
            if not isinstance(flag, bool):
                raise ValueError(f"kvm_inj_exception: {name} must be a bool, got {flag!r}")
        return (_EXCEPTIONS_618.get(exception, f"0x{exception:x}"),
                f" (0x{error_code & U32:x})" if has_error else "", " [reinjected]" if reinjected else "")

    def recover(values: tuple) -> tuple:
        name, error, reinjected = values
        exception = _INJ_NAMES[name] if name in _INJ_NAMES else int(name, 16)
        return (exception, int(error[4:-1], 16) if error else 0, bool(error), bool(reinjected))

    names = "|".join(re.escape(n) for n in sorted(_INJ_NAMES, key=lambda n: (-len(n), n)))
    return Record(assign, recover, (rf"{names}|0x[1-9a-f][0-9a-f]?", r"(?: \(0x(?:0|[1-9a-f][0-9a-f]{0,7})\))?",
                                    r"(?: \[reinjected\])?"))


_X86_618 = (
    Tracepoint("kvm_entry", ("vcpu_id", "rip", "intr_info", "error_code", "immediate_exit"),
               "vcpu %u, rip 0x%lx intr_info 0x%08x error_code 0x%08x%s",
               {"immediate_exit": {False: "", True: "[immediate exit]"}},
               defaults={"rip": 0, "intr_info": 0, "error_code": 0, "immediate_exit": False}),
    Tracepoint("kvm_exit", ("exit_reason", "guest_rip", "info1", "info2", "vcpu_id", "intr_info", "error_code",
                            "requests"),
               "vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x error_code 0x%08x "
               "requests 0x%016llx",
               printk_args=("vcpu_id", "exit_reason", "guest_rip", "info1", "info2", "intr_info", "error_code",
                            "requests"),
               # the reason is a name, "0x.." when unnamed, and " FAILED_VMENTRY" may follow (VMX)
               patterns={"exit_reason": r"\S(?:.*?\S)?"},
               defaults={"vcpu_id": 0, "intr_info": 0, "error_code": 0, "requests": 0}),
    Tracepoint("kvm_page_fault", ("fault_address", "error_code", "vcpu_id", "guest_rip"),
               "vcpu %u rip 0x%lx address 0x%016llx error_code 0x%llx",
               printk_args=("vcpu_id", "guest_rip", "fault_address", "error_code"),
               defaults={"vcpu_id": 0, "guest_rip": 0}),
    Tracepoint("kvm_inj_exception", ("exception", "error_code", "has_error", "reinjected"), "%s%s%s",
               record=_inj_exception_618(),
               defaults={"has_error": lambda f: f.get("exception") in _HAS_ERROR_CODE, "reinjected": False}),
    _X86[-1],  # kvm_msr: unchanged since 2.6.3x
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
    # Linux 6.18: the async PF events of include/trace/events/kvm.h@v6.18 and the x86 events of
    # arch/x86/kvm/trace.h@v6.18, each format as events/kvm/<name>/format prints it.
    # tracefs prints through the kernel's vsnprintf: "%#llx" of 0 is "0x0" (kernel_printf)
    "interrupt": tuple(replace(tp, kernel_printf=True) for tp in (
        Tracepoint("kvm_try_async_get_page", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_async_pf_repeated_fault", ("gva", "gfn"), "gva = %#llx, gfn = %#llx"),
        Tracepoint("kvm_async_pf_not_present", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_ready", ("token", "gva"), "token %#llx gva %#llx"),
        Tracepoint("kvm_async_pf_completed", ("address", "gva"), "gva %#llx address %#lx",
                   printk_args=("gva", "address")),
        Tracepoint("kvm_apic_accept_irq", ("apicid", "dm", "tm", "vec"), "apicid %x vec %u (%s|%s)",
                   {"dm": _DELIVERY_MODES, "tm": {False: "edge", True: "level"}},
                   printk_args=("apicid", "vec", "dm", "tm")),
        Tracepoint("kvm_eoi", ("apicid", "vector"), "apicid %x vector %d"),
        *_X86_618,
    )),
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

# Layouts the writer produces and the reader accepts:
#   "old"     2.6.3x trace_print_context: "%16s-%-5d [%03d] %5lu.%06lu: " (no irq-flags column)
#   "modern"  kernel/trace/trace_output.c@v6.18: "%16s-%-7d [%03d] <flags> %5lu.%06lu: ", the irq-flags/preempt
#             column (irqs-off, need-resched, hard/softirq, preempt-depth, migrate-disable) on by default
# and the reader also takes "trace-cmd" (`trace-cmd report`, tracecmd/trace-read.c: "%16s-%-5d [%03d]", the
# time, then " <name>: " padded to 20 characters).
LAYOUTS = ("old", "modern")
MODERN_HEADER = (
    "# tracer: nop\n"
    "#\n"
    "# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}\n"
    "#\n"
    "#                                _-----=> irqs-off/BH-disabled\n"
    "#                               / _----=> need-resched\n"
    "#                              | / _---=> hardirq/softirq\n"
    "#                              || / _--=> preempt-depth\n"
    "#                              ||| / _-=> migrate-disable\n"
    "#                              |||| /     delay\n"
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
    "#              | |         |   |||||     |         |\n"
)
NO_FLAGS = "....."  # what the modern layout prints for an event the model emitted (it keeps no irq state)
APF_EVENT_PREFIXES = ("kvm_async_pf_", "kvm_try_async_get_page", "kvm_send_async_pf")
_FLAGS = r"[.A-Za-z0-9]{4,5}"


def is_apf_event(name: str) -> bool:
    """An async-PF tracepoint of some generation (the lines the reader is strict about)."""
    return name.startswith(APF_EVENT_PREFIXES)


def default_layout(generation: str | Generation) -> str:
    """The interrupt generation is a current kernel: the modern layout; the older ones keep 2.6.3x's."""
    return "modern" if _generation(generation, modelled=False).name == "interrupt" else "old"


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


def _context(ev: TraceEvent, layout: str, flags: str | None, ts_digits: int = 6) -> str:
    comm, pid, cpu = _check_ctx((ev.comm, ev.pid, ev.cpu))
    if not isinstance(ev.t_ns, int) or ev.t_ns < 0:
        raise ValueError(f"{ev.name}: t_ns must be a non-negative int, got {ev.t_ns!r}")
    sec, ns = divmod(ev.t_ns, 1_000_000_000)
    frac = f"{ns:09d}" if ts_digits == 9 else f"{ns // 1000:06d}"
    if layout == "old":
        return f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec:5d}.{frac}: {ev.name}: "
    if layout == "modern":
        flags = NO_FLAGS if flags is None else flags
        if not re.fullmatch(_FLAGS, flags):
            raise ValueError(f"{ev.name}: irq flags {flags!r} must be 4-5 characters of [.A-Za-z0-9]")
        return f"{comm:>16}-{pid:<7} [{cpu:03d}] {flags} {sec:5d}.{frac}: {ev.name}: "
    raise ValueError(f"layout {layout!r}: expected one of {LAYOUTS}")


def _line(tps: Mapping[str, Tracepoint], ev: TraceEvent, layout: str = "old", flags: str | None = None,
          ts_digits: int = 6) -> str:
    tp = tps.get(ev.name)
    if tp is None:
        raise ValueError(f"event {ev.name!r} is not a tracepoint here; known: {sorted(tps)}")
    return _context(ev, layout, flags, ts_digits) + tp.message(ev.args)


def _header(layout: str, n: int, cpus: int) -> str:
    return HEADER if layout == "old" else MODERN_HEADER.format(n=n, cpus=max(cpus, 1))


def render(events: Iterable[TraceEvent], generation: str | Generation, layout: str | None = None,
           flags: Iterable[str | None] | None = None) -> str:
    """ftrace text for ``events``: the header, the generation line, one line per event.

    ``layout`` is "old" (2.6.3x, the default for seed and legacy) or "modern" (the irq-flags column and
    6.18's header, the default for the interrupt generation); ``flags`` gives each event's irq-flags
    column (modern only; ``.....`` when None).
    """
    tps = tracepoints(generation)
    name = _generation(generation, modelled=False).name
    layout = default_layout(name) if layout is None else layout
    events = list(events)
    flags = [None] * len(events) if flags is None else list(flags)
    lines = [f"{GENERATION_LINE}{name}", *(_line(tps, ev, layout, f) for ev, f in zip(events, flags, strict=True))]
    return _header(layout, len(events), 1 + max((ev.cpu for ev in events), default=0)) + "\n".join(lines) + "\n"


def event_lines(events: Iterable[TraceEvent], generation: str | Generation, layout: str | None = None) -> list[str]:
    """The ftrace lines of ``events`` without the header."""
    tps = tracepoints(generation)
    layout = default_layout(generation) if layout is None else layout
    return [_line(tps, ev, layout) for ev in events]


# --- the reader -------------------------------------------------------------------

class Entry(NamedTuple):
    """One event line of a capture: its line number, the event, its irq-flags column, whether it is a known event.

    An event of no table of the generation (another subsystem, or a kvm event the spec does not model) is
    kept opaque: ``known`` is False and ``event.args`` is ``(message,)``.
    """

    line: int
    event: TraceEvent
    flags: str | None
    known: bool


@dataclass
class Capture:
    """A trace as read: the generation, the layout it was written in, its event lines."""

    generation: str
    layout: str                   # "old", "modern" or "trace-cmd"
    entries: list[Entry]
    inferred: bool = False        # the generation was inferred from the events, not given or named in the text
    ts_digits: int = 6            # 9 when the text had nanosecond timestamps
    lost: int = 0                 # events the text says were overwritten or dropped
    lost_lines: list[int] = field(default_factory=list)

    @property
    def events(self) -> list[TraceEvent]:
        return [e.event for e in self.entries if e.known]

    def write(self, layout: str | None = None) -> str:
        """The capture as ftrace text again (known and opaque lines; the "modern" layout for trace-cmd input)."""
        layout = layout or ("modern" if self.layout == "trace-cmd" else self.layout)
        tps = tracepoints(self.generation)
        lines = [f"{GENERATION_LINE}{self.generation}"]
        for e in self.entries:
            if e.known:
                lines.append(_line(tps, e.event, layout, e.flags, self.ts_digits))
            else:
                lines.append(_context(e.event, layout, e.flags, self.ts_digits) + e.event.args[0])
        cpus = 1 + max((e.event.cpu for e in self.entries), default=0)
        return _header(layout, len(self.entries), cpus) + "\n".join(lines) + "\n"


_EVENT_LINE = re.compile(
    r" *(?P<comm>\S(?:.*\S)?)-(?P<pid>[0-9]{1,10}) +\[(?P<cpu>[0-9]{3,5})\](?: (?P<flags>" + _FLAGS + r"))?"
    r" +(?P<sec>[0-9]{1,12})\.(?P<frac>[0-9]{6}|[0-9]{9}): (?P<name>\w{1,64}):(?: (?P<msg>.*))?"
)
_ENTRIES = re.compile(r"# entries-in-buffer/entries-written: (\d{1,20})/(\d{1,20}) .*")
_TRACE_CMD_HEADER = re.compile(r"version = \d{1,6}|cpus=\d{1,6}|CPU \d{1,6} is empty|CPU:\d{1,6} \[SUBBUFFER START\].*")
_DROPPED = re.compile(r"CPU:\d{1,6} \[(?:(?P<n>\d{1,20}) EVENTS DROPPED|EVENTS DROPPED|LOST (?P<lost>\d{1,20}) EVENTS)\]")
_EXPECTED = "expected '<comm>-<pid> [<cpu>] [<irq flags>] <sec>.<usec>: <event>: <message>'"


class _Raw(NamedTuple):
    line: int
    text: str
    comm: str
    pid: int
    cpu: int
    flags: str | None
    t_ns: int
    name: str
    msg: str


def _scan(text: str, named: str | None):
    """The event lines (as _Raw), the generation named in the text, the layout facts; errors name the line."""
    raws, lost, lost_lines = [], 0, []
    trace_cmd = False
    ts_digits = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(GENERATION_LINE):
            name = line[len(GENERATION_LINE):].strip()
            if named is not None and name != named:
                raise TraceParseError(f"line {n}: {_q(line)}: generation {name!r} conflicts with {named!r}")
            try:
                _generation(name, modelled=False)
            except ValueError as exc:
                raise TraceParseError(f"line {n}: {_q(line)}: {exc}") from None
            named = name
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if line.startswith("#"):
            m = _ENTRIES.fullmatch(line)
            if m and int(m[2]) > int(m[1]):
                lost += int(m[2]) - int(m[1])
                lost_lines.append(n)
            continue
        if _TRACE_CMD_HEADER.fullmatch(stripped):
            trace_cmd = trace_cmd or not raws
            continue
        m = _DROPPED.fullmatch(stripped)
        if m:
            lost += int(m["n"] or m["lost"] or 0)
            lost_lines.append(n)
            continue
        m = _EVENT_LINE.fullmatch(line)
        if m is None:
            raise TraceParseError(f"line {n}: {_q(line)}: {_EXPECTED}")
        comm = m["comm"]
        if len(comm) >= TASK_COMM_LEN or not comm.isprintable():
            raise TraceParseError(f"line {n}: {_q(line)}: task name {_q(comm, 40)}: expected at most "
                                  f"{TASK_COMM_LEN - 1} printable characters")
        digits = len(m["frac"])
        if ts_digits is None:
            ts_digits = digits
        elif digits != ts_digits:
            raise TraceParseError(f"line {n}: {_q(line)}: a {digits}-digit fraction of a second; "
                                  f"expected {ts_digits} digits like the lines before")
        frac = int(m["frac"]) * (1000 if digits == 6 else 1)
        msg = m["msg"] or ""
        if trace_cmd:  # trace-cmd pads the name to 20 characters
            pad = max(0, 20 - len(m["name"]))
            msg = msg[pad:] if msg[:pad] == " " * pad else msg.lstrip(" ")
        raws.append(_Raw(n, line, comm, int(m["pid"]), int(m["cpu"]), m["flags"],
                         int(m["sec"]) * 1_000_000_000 + frac, m["name"], msg))
    return raws, named, trace_cmd, ts_digits or 6, lost, lost_lines


def _first_misfit(raws: list[_Raw], gen: str) -> int | None:
    """The index of the first line that does not read under ``gen`` (its table's events must match their
    formats; an async-PF event must be in the table); None when every line fits."""
    tps = tracepoints(gen)
    for i, r in enumerate(raws):
        tp = tps.get(r.name)
        if tp is None:
            if is_apf_event(r.name):
                return i
            continue
        try:
            tp.read(r.msg)
        except ValueError:
            return i
    return None


def _infer(raws: list[_Raw]) -> str:
    misfit = {g: _first_misfit(raws, g) for g in _TABLE}
    fits = [g for g, i in misfit.items() if i is None]
    if len(fits) > 1 and "interrupt" in fits and any(r.flags and len(r.flags) == 5 for r in raws):
        fits = ["interrupt"]  # the 5-column irq flags (migrate-disable) are 5.13+: the interrupt era
    if len(fits) == 1:
        return fits[0]
    if not fits:  # the generation that reads furthest; reading under it names the first line that does not fit
        return max(misfit, key=lambda g: (misfit[g], g == "interrupt"))
    seen = sorted({r.name for r in raws if r.name.startswith("kvm_")})
    raise TraceParseError(f"line {raws[0].line}: the kvm events {seen} fit the generations {fits} alike; "
                          "expected --generation (or a '# asyncpf generation:' line)")


def read(text: str, generation: str | Generation | None = None, *, other: str = "keep",
         infer: bool = True) -> Capture:
    """Read ftrace text: tracefs ``trace``/``trace_pipe`` (with or without the irq-flags column) or
    ``trace-cmd report``.

    The generation is ``generation``, else the text's ``# asyncpf generation:`` line, else (``infer``)
    the one whose formats every kvm event fits.  Every line of an event in that generation's table must
    match its format; an async-PF event of another generation is an error; any other event is kept as an
    opaque :class:`Entry` (``other="keep"``), dropped (``"skip"``) or refused (``"error"``).  Every error
    is a :class:`TraceParseError` naming the line and what was expected.
    """
    if other not in ("keep", "skip", "error"):
        raise ValueError(f"other={other!r}: expected 'keep', 'skip' or 'error'")
    named = None
    if generation is not None:
        named = _generation(generation, modelled=False).name
        tracepoints(named)
    raws, named, trace_cmd, ts_digits, lost, lost_lines = _scan(text, named)
    inferred = False
    if named is None:
        if not infer:
            line = raws[0] if raws else None
            raise TraceParseError(
                f"line {line.line if line else 1}: {_q(line.text) if line else repr('')}: generation unknown; "
                f"pass generation= or put '{GENERATION_LINE}<name>' in the header")
        named, inferred = _infer(raws) if raws else "interrupt", True
    tps = tracepoints(named)
    entries = []
    for r in raws:
        tp = tps.get(r.name)
        if tp is None and (other == "error" or is_apf_event(r.name)):
            raise TraceParseError(f"line {r.line}: {_q(r.text)}: unknown event {r.name!r} for the {named} "
                                  f"generation; expected one of {sorted(tps)}")
        if tp is None:
            if other == "keep":
                entries.append(Entry(r.line, TraceEvent(r.t_ns, r.comm, r.pid, r.cpu, r.name, (r.msg,)),
                                     r.flags, False))
            continue
        try:
            args = tp.read(r.msg)
        except ValueError as exc:
            raise TraceParseError(f"line {r.line}: {_q(r.text)}: {exc}") from None
        entries.append(Entry(r.line, TraceEvent(r.t_ns, r.comm, r.pid, r.cpu, tp.name, args), r.flags, True))
    layout = "trace-cmd" if trace_cmd else "modern" if any(r.flags for r in raws) else "old"
    return Capture(named, layout, entries, inferred, ts_digits, lost, lost_lines)


def parse(text: str, generation: str | Generation | None = None) -> list[TraceEvent]:
    """Events back from ftrace text; the generation comes from the argument or the header; every event must
    be a tracepoint of that generation (:func:`read` is the tolerant reader for captured traces)."""
    return read(text, generation, other="error", infer=False).events


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
        args = tp.complete(fields)
        if not isinstance(t_ns, int) or t_ns < 0:
            raise ValueError(f"{tp.signature}: t_ns must be a non-negative int, got {t_ns!r}")
        args = tp.canonical(args)
        self.events.append(TraceEvent(t_ns, *ctx, name, args))

    def text(self) -> str:
        return render(self.events, self.generation)

    def count(self, name: str) -> int:
        return sum(ev.name == name for ev in self.events)

    def names(self) -> list[str]:
        return sorted({ev.name for ev in self.events})

    def of(self, name: str) -> list[TraceEvent]:
        return [ev for ev in self.events if ev.name == name]
