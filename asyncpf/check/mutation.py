"""Mutation testing of the twins: bugs nobody planted, and whether the checker finds them.

The historical mutants (:mod:`asyncpf.check.mutants`) are the bugs the
checker was built around.  This module makes new ones mechanically, from the
twins' own source, with five operators -- the one-line slips kernel patches
really introduce:

* ``cmp_flip``  -- a comparison negated (``<`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in`` ...);
* ``bool_drop`` -- one operand of an ``and``/``or`` dropped (a condition ignored, a filter lost);
* ``stmt_swap`` -- two adjacent statements of one block swapped;
* ``stmt_del``  -- one statement deleted (``pass`` where the block would be empty);
* ``const_off`` -- an integer constant off by one (``n+1`` and ``n-1``).

Each mutant is applied **from outside**, as the historical ones are: the
function's AST is mutated and recompiled in its module's globals, and every
module attribute of ``asyncpf.*`` that *is* the original function (a package
re-export used by :func:`asyncpf.host.twins.select`, a ``from .x import f``)
is replaced for the length of the run, before the machine is built.

Only the checker judges: the explorer over the fast configurations of the
generations that reach the function (a function no configuration executes is
reported *not reached*), each configuration with a schedule budget, the
mutant killed when some invariant breaks that the correct model does not
break on that configuration (differential, as :mod:`asyncpf.check.mutants`),
or when the run raises (``crash``) or never returns (``hang``, a livelock
inside one engine step caught by a watchdog).  The scenarios and the
Hypothesis state machine can be asked separately (``methods``).

Mutant ids are stable: ``module:function:operator:n`` with ``n`` the site's
rank in a fixed walk of the function.  Mutants judged equivalent (no
observable difference) are kept, with the reason, in
:mod:`asyncpf.check.equivalent_mutants`.
"""

from __future__ import annotations

import __future__
import ast
import contextlib
import copy
import importlib
import inspect
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from types import FunctionType, ModuleType
from typing import Any, Callable, Iterator, Sequence

OPERATORS = ("cmp_flip", "bool_drop", "stmt_swap", "stmt_del", "const_off")

# The protocol twins: the generation packages, the shared host async PF pieces and the guest's PV code.
PROTOCOL_MODULES: dict[str, tuple[str, ...]] = {
    "asyncpf.host.async_pf": ("seed", "legacy", "interrupt"),
    "asyncpf.host.x86": ("seed", "legacy", "interrupt"),
    "asyncpf.host.seed.async_pf": ("seed",),
    "asyncpf.host.seed.mmu": ("seed",),
    "asyncpf.host.seed.x86": ("seed",),
    "asyncpf.host.legacy.async_pf": ("legacy",),
    "asyncpf.host.legacy.mmu": ("legacy",),
    "asyncpf.host.legacy.x86": ("legacy",),
    "asyncpf.host.interrupt.async_pf": ("interrupt",),
    "asyncpf.host.interrupt.mmu": ("interrupt",),
    "asyncpf.host.interrupt.x86": ("interrupt",),
    "asyncpf.host.interrupt.lapic": ("interrupt",),
    "asyncpf.guest.kvm": ("seed", "legacy", "interrupt"),
    "asyncpf.guest.seed": ("seed",),
    "asyncpf.guest.legacy": ("legacy",),
    "asyncpf.guest.interrupt": ("interrupt",),
}

_NEGATE = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
           ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_STMT_LISTS = ("body", "orelse", "finalbody")


# --- enumeration --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MutantSpec:
    """One mechanical mutant: where it is, what it changes, and the generations whose runs can reach it."""

    id: str
    module: str
    function: str
    op: str
    lineno: int
    before: str
    after: str
    generations: tuple[str, ...]
    rule: str = ""          # why it is equivalent by a syntactic rule (then it is not run)

    def as_dict(self) -> dict:
        d = {"id": self.id, "module": self.module, "function": self.function, "op": self.op,
             "line": self.lineno, "before": self.before, "after": self.after}
        if self.rule:
            d["rule"] = self.rule
        return d


# Counters a predicate or a leak report reads: mutating them is observable.
_OBSERVED_COUNTERS = {"double_faults", "triple_faults", "dummies_dropped", "async_pf_limit_hits"}


def _bookkeeping(stmt: ast.AST) -> bool:
    """A statistics counter (``x.stat[k] += n`` / ``x.stats[k] += n``) or time accounting (``x.account(..)``)."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Subscript) \
            and isinstance(stmt.target.value, ast.Attribute) and stmt.target.value.attr in ("stat", "stats"):
        key = stmt.target.slice
        return not (isinstance(key, ast.Constant) and key.value in _OBSERVED_COUNTERS)
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "account")


def _path(node: ast.AST) -> str:
    """An access path with every subscript index blurred (``gfns[i]`` and ``gfns[j]`` may be one slot)."""
    if isinstance(node, ast.Subscript):
        return _path(node.value) + "[]"
    if isinstance(node, ast.Attribute):
        return _path(node.value) + "." + node.attr
    return ast.unparse(node)


def _reads(node: ast.AST | None, *, target: bool = False) -> set[str]:
    """The maximal access paths an expression reads (for a target: only its subscript indices)."""
    out: set[str] = set()
    if node is None:
        return out

    def visit(n: ast.AST, as_value: bool) -> None:
        if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript)):
            if as_value:
                out.add(_path(n))
            base = n
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                if isinstance(base, ast.Subscript):
                    visit(base.slice, True)
                base = base.value
            return
        for child in ast.iter_child_nodes(n):
            visit(child, True)
    visit(node, not target)
    return out


def _footprint(stmt: ast.AST) -> tuple[set[str], set[str]] | None:
    """(read, written) access paths of a plain assignment; None if it calls, yields, or is not an assignment."""
    if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        return None
    if any(isinstance(n, (ast.Call, ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr)) for n in ast.walk(stmt)):
        return None
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    flat = [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
    if any(not isinstance(e, (ast.Name, ast.Attribute, ast.Subscript)) for e in flat):
        return None
    written = {_path(e) for e in flat}
    read = _reads(stmt.value) | {r for e in flat for r in _reads(e, target=True)}
    if isinstance(stmt, ast.AugAssign):
        read |= written
    return read, written


def _commute(a: ast.AST, b: ast.AST) -> bool:
    """Two call-free, yield-free assignments whose writes touch nothing the other reads or writes."""
    fa, fb = _footprint(a), _footprint(b)
    if fa is None or fb is None:
        return False

    def last(p: str) -> str:      # an alias (apf = vcpu.arch.apf) reaches the same field by another path
        return p.rsplit(".", 1)[-1].removesuffix("[]")

    def clash(xs: set[str], ys: set[str]) -> bool:
        return any(x == y or y.startswith(x + ".") or y.startswith(x + "[") or x.startswith(y + ".")
                   or x.startswith(y + "[") or ("." in x and "." in y and last(x) == last(y)) for x in xs for y in ys)
    (ra, wa), (rb, wb) = fa, fb
    return not (clash(wa, rb | wb) or clash(wb, ra))


def _rule(fn: ast.FunctionDef, op: str, site: tuple) -> str:
    """Why this mutant is equivalent by a syntactic rule, or ''."""
    if op in ("stmt_swap", "stmt_del"):
        owner, name = list(_blocks(fn))[site[0]]
        stmts = getattr(owner, name)
        a = stmts[site[1]]
        if op == "stmt_del" and _bookkeeping(a):
            return "bookkeeping: a statistics counter or time accounting that no invariant, leak check or twin reads"
        if op == "stmt_swap":
            b = stmts[site[1] + 1]
            if _bookkeeping(a) or _bookkeeping(b):
                return "bookkeeping moved past its neighbour: statistics/accounting only, no protocol state"
            if _commute(a, b):
                return "commuting statements: two call-free assignments with disjoint footprints, in one engine step"
    if op == "const_off":
        node = list(_walk(fn))[site[0]]
        for stmt in _walk(fn):
            if isinstance(stmt, (ast.AugAssign, ast.Expr)) and _bookkeeping(stmt) \
                    and any(n is node for n in ast.walk(stmt)):
                return "bookkeeping: a statistics counter's increment"
    return ""


def _short(node: ast.AST) -> str:
    text = ast.unparse(node).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 100 and len(text) == 1 else line[:97] + "..."


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _walk(fn: ast.FunctionDef) -> Iterator[ast.AST]:
    """Every node of the function's body (not its decorators, signature or docstring), in a fixed order."""
    for stmt in fn.body:
        if not _is_docstring(stmt):
            yield from ast.walk(stmt)


def _blocks(fn: ast.FunctionDef) -> Iterator[tuple[ast.AST, str]]:
    """Every statement list of the function (the body itself first), in a fixed order."""
    yield fn, "body"
    for node in _walk(fn):
        for name in _STMT_LISTS:
            if isinstance(getattr(node, name, None), list) and getattr(node, name) \
                    and isinstance(getattr(node, name)[0], ast.stmt):
                yield node, name


def _sites(fn: ast.FunctionDef, op: str) -> list[tuple]:
    """The mutation sites of ``op`` in ``fn``: each a tuple that :func:`_apply` understands (by position)."""
    out: list[tuple] = []
    if op == "cmp_flip":
        for i, node in enumerate(_walk(fn)):
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _NEGATE:
                out.append((i,))
    elif op == "bool_drop":
        for i, node in enumerate(_walk(fn)):
            if isinstance(node, ast.BoolOp):
                out += [(i, k) for k in range(len(node.values))]
    elif op == "const_off":
        for i, node in enumerate(_walk(fn)):
            if isinstance(node, ast.Constant) and type(node.value) is int:
                out += [(i, +1), (i, -1)]
    elif op in ("stmt_swap", "stmt_del"):
        for b, (owner, name) in enumerate(_blocks(fn)):
            stmts = getattr(owner, name)
            for k, stmt in enumerate(stmts):
                if _is_docstring(stmt) or isinstance(stmt, ast.Pass):
                    continue
                if op == "stmt_del":
                    out.append((b, k))
                elif k + 1 < len(stmts) and ast.dump(stmt) != ast.dump(stmts[k + 1]):
                    out.append((b, k))
    else:
        raise ValueError(f"unknown operator {op!r}; known: {', '.join(OPERATORS)}")
    return out


def _apply(fn: ast.FunctionDef, op: str, site: tuple) -> tuple[ast.FunctionDef, ast.AST, ast.AST, int]:
    """A mutated copy of ``fn``: (the copy, the original node, the mutated node, its line)."""
    fn = copy.deepcopy(fn)
    if op in ("cmp_flip", "bool_drop", "const_off"):
        nodes = list(_walk(fn))
        node = nodes[site[0]]
        before = copy.deepcopy(node)
        if op == "cmp_flip":
            node.ops = [_NEGATE[type(node.ops[0])]()]
            after: ast.AST = node
        elif op == "bool_drop":
            rest = [v for k, v in enumerate(node.values) if k != site[1]]
            after = rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest)
            _replace_node(fn, node, after)
        else:
            node.value = node.value + site[1]
            after = node
        return fn, before, after, getattr(before, "lineno", fn.lineno)
    blocks = list(_blocks(fn))
    owner, name = blocks[site[0]]
    stmts = getattr(owner, name)
    k = site[1]
    before = stmts[k]
    if op == "stmt_del":
        del stmts[k]
        if not stmts:
            stmts.append(ast.Pass())
        after = ast.Pass()
    else:
        stmts[k], stmts[k + 1] = stmts[k + 1], stmts[k]
        after = stmts[k]
    return fn, before, after, before.lineno


def _replace_node(root: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(root):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        value[i] = new
                        return
    raise AssertionError("node to replace not found")


@lru_cache(maxsize=None)
def _module_ast(module: str) -> tuple[ast.Module, str]:
    mod = importlib.import_module(module)
    path = inspect.getsourcefile(mod)
    with open(path, encoding="utf-8") as f:
        src = f.read()
    return ast.parse(src, filename=path), path


def _functions(module: str) -> list[ast.FunctionDef]:
    """The module's top-level functions, in source order."""
    tree, _ = _module_ast(module)
    return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def enumerate_mutants(modules: Sequence[str] | None = None, *, functions: Sequence[str] | None = None,
                      operators: Sequence[str] = OPERATORS) -> list[MutantSpec]:
    """Every mutant of the given protocol modules (all by default), sorted by module, function, operator, rank."""
    out: list[MutantSpec] = []
    for module in sorted(modules or PROTOCOL_MODULES):
        gens = PROTOCOL_MODULES[module]
        for fn in _functions(module):
            if functions and fn.name not in functions:
                continue
            for op in sorted(operators):
                for n, site in enumerate(_sites(fn, op)):
                    _, before, after, line = _apply(fn, op, site)
                    out.append(MutantSpec(f"{module}:{fn.name}:{op}:{n}", module, fn.name, op, line,
                                          _short(before), _short(after) if op != "stmt_del" else "(deleted)",
                                          gens, _rule(fn, op, site)))
    out.sort(key=lambda m: (m.module, m.function, OPERATORS.index(m.op), int(m.id.rsplit(":", 1)[1])))
    return out


def mutant_by_id(mid: str) -> MutantSpec:
    module, function, op, _n = mid.split(":")
    for m in enumerate_mutants([module], functions=[function], operators=[op]):
        if m.id == mid:
            return m
    raise KeyError(mid)


# --- applying one from outside ----------------------------------------------------------------------

def compile_mutant(spec: MutantSpec) -> FunctionType:
    """The mutated function, compiled in its module's globals (decorators dropped, line numbers kept)."""
    mod = importlib.import_module(spec.module)
    _, path = _module_ast(spec.module)
    fn = next(f for f in _functions(spec.module) if f.name == spec.function)
    op, n = spec.op, int(spec.id.rsplit(":", 1)[1])
    mutated, *_ = _apply(fn, op, _sites(fn, op)[n])
    mutated.decorator_list = []
    tree = ast.Module(body=[mutated], type_ignores=[])
    ast.fix_missing_locations(tree)
    code = compile(tree, path, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    ns: dict[str, Any] = {}
    exec(code, mod.__dict__, ns)
    new = ns[spec.function]
    original = getattr(mod, spec.function)
    new.__doc__ = original.__doc__
    new.__qualname__ = original.__qualname__
    if hasattr(original, "__mirrors__"):
        new.__mirrors__ = original.__mirrors__
    return new


@contextlib.contextmanager
def patched_everywhere(original: Any, new: Any) -> Iterator[int]:
    """Replace every module attribute (and module-level dict value) of ``asyncpf.*`` that *is* ``original``.

    Yields how many places were patched; everything is put back on exit.
    """
    undo: list[Callable[[], None]] = []
    for name, mod in sorted(sys.modules.items()):
        if not (name == "asyncpf" or name.startswith("asyncpf.")) or not isinstance(mod, ModuleType):
            continue
        for attr, value in list(vars(mod).items()):
            if value is original:
                setattr(mod, attr, new)
                undo.append(lambda m=mod, a=attr: setattr(m, a, original))
            elif type(value) is dict and not attr.startswith("__"):
                for key, item in list(value.items()):
                    if item is original:
                        value[key] = new
                        undo.append(lambda d=value, k=key: d.__setitem__(k, original))
    try:
        yield len(undo)
    finally:
        for fn in reversed(undo):
            fn()


@contextlib.contextmanager
def applied(spec: MutantSpec) -> Iterator[None]:
    """The mutant switched on, from outside, for the length of the block."""
    mod = importlib.import_module(spec.module)
    new = compile_mutant(spec)
    with patched_everywhere(getattr(mod, spec.function), new) as n:
        if not n:
            raise AssertionError(f"{spec.id}: nothing to patch")
        yield


# --- which configurations reach which function ------------------------------------------------------

@lru_cache(maxsize=None)
def coverage(config: str, max_schedules: int = 500) -> frozenset[tuple[str, str]]:
    """(module, function) of every protocol twin some explored schedule of ``config`` executes (correct model)."""
    from .explore import explore
    files: dict[str, str] = {}
    for module in PROTOCOL_MODULES:
        files[_module_ast(module)[1]] = module
    names = {(files[p], f.name) for p in files for f in _functions(files[p])}
    seen: set[tuple[str, str]] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            co = frame.f_code
            module = files.get(co.co_filename)
            if module is not None:
                seen.add((module, co.co_name))

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        explore(config, stop_at_first=False, max_schedules=max_schedules, max_seconds=600,
                trace_counterexample=False)
    finally:
        sys.setprofile(old)
    return frozenset(seen & names)


@lru_cache(maxsize=None)
def baseline(config: str, max_schedules: int) -> frozenset[str]:
    """The invariants the correct model breaks on some schedule of ``config`` (documented generation behaviour)."""
    from .explore import explore
    rep = explore(config, stop_at_first=False, max_schedules=max_schedules, max_seconds=600,
                  trace_counterexample=False)
    _COST[config] = rep.steps
    return frozenset(rep.violated)


_COST: dict[str, int] = {}   # engine steps of the correct model's exploration: cheap configurations run first


# --- running one -------------------------------------------------------------------------------------

class _Hang(Exception):
    pass


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Raise :class:`_Hang` in the main thread after ``seconds`` (a loop that never yields to the engine)."""
    if seconds <= 0 or not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise _Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class MutantResult:
    spec: MutantSpec
    status: str                        # killed | survived | not_reached | equivalent
    how: str = ""                      # invariant(s), "crash: ...", "hang"
    config: str | None = None          # the configuration that killed it
    counterexample: list[int] | None = None
    configs_run: list[str] = field(default_factory=list)
    complete: bool = True              # every configuration run explored to the end of its budget-free space
    seconds: float = 0.0
    reason: str = ""                   # for equivalent mutants: why
    methods: dict = field(default_factory=dict)   # scenario/stateful verdicts when asked

    def as_dict(self) -> dict:
        d = self.spec.as_dict()
        d.update(status=self.status, how=self.how, config=self.config, counterexample=self.counterexample,
                 configs_run=self.configs_run, complete=self.complete, seconds=round(self.seconds, 2))
        if self.reason:
            d["reason"] = self.reason
        if self.methods:
            d["methods"] = self.methods
        return d


DEFAULT_SCHEDULES = 3000
FIRST_PASS_SCHEDULES = 1   # the FIFO schedule of every configuration before any is explored in full


def configs_for(spec: MutantSpec, configs: Sequence[str] | None = None) -> list[str]:
    """The fast configurations of the mutant's generations whose correct-model runs execute its function."""
    from .models import CONFIGS
    names = list(configs) if configs else [c.name for c in CONFIGS.values() if c.fast]
    return [c for c in names if CONFIGS[c].generation in spec.generations
            and (spec.module, spec.function) in coverage(c)]


def _at_declared_cap(config: str, schedules: int) -> bool:
    """The exploration stopped at the schedule count its configuration declares (limit64: FIFO and two more).

    That is the configuration's whole space as the checker defines it, for the
    correct model too -- not a budget the mutant ran out of.
    """
    from .models import CONFIGS
    cap = CONFIGS[config].max_schedules
    return cap is not None and schedules >= cap


def run_one(spec: MutantSpec, *, configs: Sequence[str] | None = None, max_seconds: float = 60.0,
            max_schedules: int = DEFAULT_SCHEDULES) -> MutantResult:
    """Judge one mutant by the explorer alone (see the module docstring).

    Two passes over the configurations, cheapest first: the FIFO schedule of
    every one, then the full exploration of those the first did not finish.
    Most mutants break an invariant on some configuration's FIFO schedule, so
    the budget is not spent exploring one configuration while the next would
    have shown the bug at once; the verdict is the same as one pass's when
    the budget suffices (a FIFO violation is one the full pass meets too).
    """
    from .explore import explore
    chosen = configs_for(spec, configs)
    for cfg in chosen:
        baseline(cfg, max_schedules)
    chosen.sort(key=lambda c: (_COST.get(c, 0), c))   # deterministic: by the correct model's size, then name
    t0 = time.perf_counter()
    res = MutantResult(spec, "not_reached" if not chosen else "survived")
    unfinished: list[str] = []
    for budget, pass_configs in ((FIRST_PASS_SCHEDULES, chosen), (max_schedules, unfinished)):
        for cfg in pass_configs:
            left = max_seconds - (time.perf_counter() - t0)
            if left <= 0:
                res.complete = False
                break
            if cfg not in res.configs_run:
                res.configs_run.append(cfg)
            base = baseline(cfg, max_schedules)
            try:
                with _watchdog(left + 5), applied(spec):
                    rep = explore(cfg, stop_at_first=not base, max_schedules=budget, max_seconds=left,
                                  trace_counterexample=False)
            except _Hang:
                res.status, res.how, res.config = "killed", "hang", cfg
                break
            except Exception as exc:  # the mutated model raised: the run fails, which the checker reports
                res.status, res.how, res.config = "killed", f"crash: {type(exc).__name__}", cfg
                break
            new = sorted(set(rep.violated) - base)
            if new:
                res.status, res.how, res.config, res.counterexample = "killed", ",".join(new), cfg, rep.counterexample
                break
            done = rep.complete or _at_declared_cap(cfg, rep.schedules)
            if budget == FIRST_PASS_SCHEDULES and not done:
                unfinished.append(cfg)
            elif budget != FIRST_PASS_SCHEDULES:
                res.complete = res.complete and done
        if res.status == "killed" or not res.complete:
            break
    res.seconds = time.perf_counter() - t0
    return res


def other_methods(spec: MutantSpec, methods: Sequence[str]) -> dict:
    """The scenarios and/or the Hypothesis state machine with the mutant on (separately from the explorer)."""
    from .mutants import STATEFUL_SETTINGS, _scenario_baseline, _stateful_baseline, run_scenarios
    out: dict = {}
    patch = lambda: applied(spec)  # noqa: E731
    if "scenario" in methods:
        base = _scenario_baseline()
        try:
            with _watchdog(120):
                got = run_scenarios(patch)
            noticed = sorted(n for n, r in got.items()
                             if set(r["failed_checks"]) - set(base[n]["failed_checks"])
                             or set(r["invariants"]) - set(base[n]["invariants"]))
            out["scenario"] = {"killed": bool(noticed), "by": noticed}
        except Exception as exc:   # a hang (_Hang) included
            out["scenario"] = {"killed": True, "by": [f"{type(exc).__name__}"]}
    if "stateful" in methods:
        from .stateful import run_stateful
        for gen in spec.generations:
            base = set(_stateful_baseline(STATEFUL_SETTINGS["max_examples"], STATEFUL_SETTINGS["stateful_step_count"],
                                          gen))
            try:
                with _watchdog(120):
                    r = run_stateful(patch, generation=gen, **STATEFUL_SETTINGS)
                killed = r.failed and (not r.invariants or bool(set(r.invariants) - base))
            except Exception:
                killed = True
            if killed:
                out["stateful"] = {"killed": True, "generation": gen}
                break
        else:
            out["stateful"] = {"killed": False}
    return out


# --- the campaign ---------------------------------------------------------------------------------------

@dataclass
class Campaign:
    results: list[MutantResult]
    seconds: float

    def table(self, key: Callable[[MutantResult], str]) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        for r in self.results:
            row = rows.setdefault(key(r), {"mutants": 0, "killed": 0, "survived": 0, "equivalent": 0,
                                           "not_reached": 0})
            row["mutants"] += 1
            row[r.status] += 1
        for row in rows.values():
            judged = row["killed"] + row["survived"] + row["not_reached"]
            row["score"] = round(row["killed"] / judged, 4) if judged else None
        return dict(sorted(rows.items()))

    def method_tables(self) -> dict[str, dict[str, dict]]:
        """Per other method (scenario, stateful): killed / judged per module and overall, apart from the checker."""
        out: dict[str, dict[str, dict]] = {}
        for r in self.results:
            for method, verdict in sorted(r.methods.items()):
                rows = out.setdefault(method, {})
                for key in ("all", r.spec.module):
                    row = rows.setdefault(key, {"judged": 0, "killed": 0, "killed_not_by_checker": 0})
                    row["judged"] += 1
                    row["killed"] += bool(verdict["killed"])
                    row["killed_not_by_checker"] += bool(verdict["killed"]) and r.status != "killed"
        for rows in out.values():
            for row in rows.values():
                row["score"] = round(row["killed"] / row["judged"], 4)
        return {m: dict(sorted(rows.items())) for m, rows in sorted(out.items())}

    def as_dict(self) -> dict:
        total = self.table(lambda r: "all")["all"] if self.results else {}
        return {"score": total, "methods": self.method_tables(), "by_module": self.table(lambda r: r.spec.module),
                "by_function": self.table(lambda r: f"{r.spec.module}.{r.spec.function}"),
                "survivors": [r.as_dict() for r in self.results if r.status in ("survived", "not_reached")],
                "equivalent": [r.as_dict() for r in self.results if r.status == "equivalent"],
                "killed": [r.as_dict() for r in self.results if r.status == "killed"],
                "seconds": round(self.seconds, 1)}


def campaign(modules: Sequence[str] | None = None, *, functions: Sequence[str] | None = None,
             operators: Sequence[str] = OPERATORS, configs: Sequence[str] | None = None,
             max_seconds: float = 60.0, max_schedules: int = DEFAULT_SCHEDULES, methods: Sequence[str] = (),
             use_equivalent: bool = True, progress: Callable[[MutantResult], None] | None = None) -> Campaign:
    """Enumerate the mutants (sorted) and judge each; equivalent ones (with their reason) are not run."""
    from .equivalent_mutants import EQUIVALENT
    t0 = time.perf_counter()
    results = []
    for spec in enumerate_mutants(modules, functions=functions, operators=operators):
        eq = EQUIVALENT.get(spec.id) if use_equivalent else None
        if spec.rule:
            r = MutantResult(spec, "equivalent", reason=spec.rule)
        elif eq is not None and eq[0] == spec.before:
            r = MutantResult(spec, "equivalent", reason=eq[1])
        else:
            r = run_one(spec, configs=configs, max_seconds=max_seconds, max_schedules=max_schedules)
            if methods:  # every judged mutant, whatever the explorer said: each method gets its own score
                r.methods = other_methods(spec, methods)
        results.append(r)
        if progress is not None:
            progress(r)
    return Campaign(results, time.perf_counter() - t0)


def rejudge(module: str, stored: dict, *, max_seconds: float = 8.0, rerun_killed_by: Sequence[str] = (),
            rerun_functions: Sequence[str] = (), progress: Callable[[MutantResult], None] | None = None) -> Campaign:
    """``module``'s campaign again, keeping a stored kill where nothing it rests on has changed.

    ``stored`` is an earlier ``check --mutation --json`` output.  A mutant it
    records as killed keeps that verdict when its source is the same, its
    function is not in ``rerun_functions`` (functions whose code changed) and
    none of its killers is in ``rerun_killed_by`` (rules since weakened);
    every other non-equivalent mutant is judged again.  Adding configurations
    or rules cannot turn a kill into a survivor, so this gives the verdicts a
    full campaign would, in the time its survivors take.
    """
    from .equivalent_mutants import EQUIVALENT
    t0 = time.perf_counter()
    prev = {m["id"]: m for kind in ("killed", "survivors", "equivalent") for m in stored.get(kind, ())}
    results = []
    for spec in enumerate_mutants([module]):
        eq = EQUIVALENT.get(spec.id)
        m = prev.get(spec.id)
        if spec.rule:
            r = MutantResult(spec, "equivalent", reason=spec.rule)
        elif eq is not None and eq[0] == spec.before:
            r = MutantResult(spec, "equivalent", reason=eq[1])
        elif (m is not None and m["status"] == "killed" and m["before"] == spec.before
              and spec.function not in rerun_functions and not set(m["how"].split(",")) & set(rerun_killed_by)):
            r = MutantResult(spec, "killed", how=m["how"], config=m["config"], counterexample=m["counterexample"],
                             configs_run=m["configs_run"], complete=m["complete"])
        else:
            r = run_one(spec, max_seconds=max_seconds)
            if progress is not None:
                progress(r)
        results.append(r)
    return Campaign(results, time.perf_counter() - t0)


def render(c: Campaign) -> str:
    """The text report: score per module and per function, then the survivors."""
    d = c.as_dict()
    lines = []

    def row(name: str, r: dict) -> str:
        score = "-" if r["score"] is None else f"{100 * r['score']:.1f}%"
        return (f"  {name:58} {r['mutants']:5} {r['killed']:6} {r['survived']:8} {r['not_reached']:7} "
                f"{r['equivalent']:5} {score:>7}")

    head = f"  {'':58} {'all':>5} {'killed':>6} {'survived':>8} {'unreach':>7} {'equiv':>5} {'score':>7}"
    lines.append("mutation score (killed / non-equivalent; the checker alone: explorer over the fast configurations)")
    lines.append(head)
    if d["score"]:
        lines.append(row("ALL", d["score"]))
    lines.append("per module:")
    lines += [row(k, v) for k, v in d["by_module"].items()]
    lines.append("per function:")
    lines += [row(k, v) for k, v in d["by_function"].items()]
    for method, rows in d["methods"].items():
        lines.append(f"{method} (apart from the checker's score): killed / judged, and killed that the checker missed")
        lines += [f"  {k:58} {v['killed']:5} / {v['judged']:5} {100 * v['score']:6.1f}%  "
                  f"{v['killed_not_by_checker']:3} missed by the checker" for k, v in rows.items()]
    if d["survivors"]:
        lines.append("surviving mutants:")
        for s in d["survivors"]:
            extra = "" if s["status"] == "survived" else " [not reached by any fast configuration]"
            lines.append(f"  {s['id']} (line {s['line']}): {s['before']} -> {s['after']}{extra}")
    lines.append(f"{len(c.results)} mutants in {c.seconds:.0f} s")
    return "\n".join(lines)


