"""Helpers for notebook 09 (invariants and exploration): tables and probes over :mod:`asyncpf.check`.

Everything returned here is deterministic: counts of schedules and states,
choice lists, trace excerpts and verdicts -- never wall-clock seconds, which
the explorer reports too but which vary from run to run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from ..check.explore import Report, execute, explore, fast_configs, replay
from ..check.invariants import END, EVENT, REGISTRY, SAFETY
from ..check.known import KNOWN, KNOWN_BY_CONFIG
from ..check.models import CONFIGS
from ..check.mutants import MUTANTS, Verdict, run_mutant

KIND_LABEL = {SAFETY: "per step", EVENT: "per event", END: "at quiescence"}

# The properties the issue asks for, in its words, and the registry invariants that state them.
ISSUE_INVARIANTS: dict[str, tuple[str, ...]] = {
    "queued count": ("queued_counts_outstanding",),
    "limit": ("queue_within_limit",),
    "hash iff outstanding": ("hash_iff_outstanding",),
    "not-present answered by one ready": ("every_not_present_answered",),
    "ready only after not-present": ("ready_only_after_not_present",),
    "reason written before its #PF / read before re-enabling": ("reason_not_clobbered", "reason_read_before_reenable"),
    "no two APF #PFs in one entry": ("no_two_apf_pf_in_one_entry",),
    "nobody sleeps forever": ("no_task_sleeps_forever",),
    "nothing leaks": ("nothing_leaks",),
    "unique tokens": ("tokens_unique",),
}

# What a generation itself does (2.6.38's stray page-ready of bugzilla 208081; the seed's page-ready for a swap-in
# it never cancelled): reported, not held against the model -- the same exception as ``python -m asyncpf check``.
KNOWN_GENERATION_BEHAVIOUR = KNOWN_BY_CONFIG


def short_source(source: str, width: int = 48) -> str:
    """The first clause of an invariant's source (up to ';'), cut to ``width`` characters."""
    first = source.split(";")[0].strip()
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def registry_rows() -> list[tuple[str, str, str]]:
    """(name, kind, one-sentence meaning) for every registered invariant, in registration order."""
    return [(i.name, KIND_LABEL[i.kind], i.doc.replace("``", "")) for i in REGISTRY.values()]


def source_rows() -> list[tuple[str, str]]:
    """(name, first clause of its source) for every registered invariant."""
    return [(i.name, short_source(i.source)) for i in REGISTRY.values()]


def generation_rows() -> list[tuple[str, str, str]]:
    """(name, generations, what the others lack) for every invariant limited to some generations."""
    return [(i.name, ", ".join(i.generations), i.why_not) for i in REGISTRY.values() if i.generations is not None]


def known_rows() -> list[tuple[str, str, str, str]]:
    """(invariant, generation, configurations, source's first clause) of every documented generation behaviour."""
    return [(k.invariant, k.generation, ", ".join(k.configs) or "(state machine)", short_source(k.source, 60))
            for k in KNOWN]


def issue_coverage() -> list[tuple[str, str, bool]]:
    """(issue property, registry names, all registered?) for each property the issue lists."""
    return [(prop, ", ".join(names), all(n in REGISTRY for n in names)) for prop, names in ISSUE_INVARIANTS.items()]


# --- exploration -----------------------------------------------------------------------------

def counts(rep: Report) -> dict[str, Any]:
    """The deterministic part of an exploration report (no seconds); ``violations``: broken on any schedule."""
    return {"config": rep.config, "generation": rep.generation, "schedules": rep.schedules, "pruned": rep.pruned,
            "distinct_states": rep.states,
            "steps": rep.steps, "max_choice_points": rep.max_points, "complete": rep.complete,
            "violations": sorted(rep.violated)}


def counts_text(c: dict[str, Any]) -> str:
    verdict = "clean" if not c["violations"] else "violated: " + ", ".join(c["violations"])
    return (f"{c['config']}: {c['schedules']} schedules ({c['pruned']} pruned), {c['distinct_states']} distinct "
            f"states, {c['steps']} steps, at most {c['max_choice_points']} choice points per run"
            f"{'' if c['complete'] else ' (budget hit)'} -- {verdict}")


def choice_points(config: str, choices: Sequence[int] = (), **kw: Any) -> list[tuple[int, int, str]]:
    """(point, choice taken, steps due together) for one run of ``config`` under ``choices`` (FIFO beyond)."""
    r = execute(CONFIGS[config], list(choices), **kw)
    return [(k, taken, " | ".join(labels)) for k, (labels, taken) in enumerate(r.points)]


def config_rows(fast_only: bool = False) -> list[tuple[str, str, str, str]]:
    """(name, generation, CI set?, note) of every configuration (``fast_only``: the CI set)."""
    return [(c.name, c.generation, "fast" if c.fast else "--full", c.note)
            for c in CONFIGS.values() if c.fast or not fast_only]


APF_EVENTS = ("kvm_msr", "kvm_send_async_pf", "kvm_async_pf_not_present", "kvm_async_pf_ready",
              "kvm_async_pf_completed")


def apf_rows(config: str, choices: Sequence[int] = (), since_ns: int = 0) -> list[tuple[str, str, str, str]]:
    """trace_rows of one run of ``config`` (FIFO unless ``choices``): MSR writes and APF events from ``since_ns`` on."""
    r = replay(CONFIGS[config], list(choices))
    body = [ln for ln in r.trace_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [row for row in trace_rows([ln for ln in body if any(f" {e}:" in ln for e in APF_EVENTS)])
            if int(row[0]) * 1000 >= since_ns]


# --- one mutant, its counterexample ------------------------------------------------------------

def _mutant_kw(name: str) -> dict[str, Any]:
    m = MUTANTS[name]
    return {"patch": m.patch, "setup": m.setup}


def counterexample(name: str) -> dict[str, Any]:
    """The mutant's shortest counterexample, replayed from its choice list: the same violation must come back."""
    m = MUTANTS[name]
    kw = _mutant_kw(name)
    rep = explore(m.config, **kw)
    again = replay(m.config, rep.counterexample or [], **kw)
    fifo = execute(m.config, [], **kw)
    return {"mutant": name, "config": m.config.name, "invariant": m.invariant, "source": m.source,
            "summary": m.summary, "counts": counts(rep), "choices": rep.counterexample,
            "violations": [(v.name, v.t, v.detail) for v in rep.violations],
            "replayed": [(v.name, v.t, v.detail) for v in again.violations],
            "trace": rep.counterexample_trace, "replayed_trace": again.trace_text(),
            "fifo_violations": sorted({v.name for v in fifo.violations})}


def trace_tail(text: str, since: str = "kvm_async_pf_not_present") -> list[str]:
    """The ftrace lines from the last ``since`` event on (the whole body if there is none), header dropped."""
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    starts = [i for i, ln in enumerate(body) if f" {since}:" in ln]
    return body[starts[-1]:] if starts else body


def trace_rows(lines: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """Split ftrace lines into (time us, task, event, fields)."""
    rows = []
    for ln in lines:
        head, _, rest = ln.partition(": ")
        parts = head.split()
        task, ts = parts[0], parts[-1]
        event, _, fields = rest.partition(": ")
        rows.append((f"{float(ts) * 1e6:.0f}", task, event, fields))
    return rows


# --- the kill table ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def verdict(name: str) -> Verdict:
    """run_mutant, cached (it is deterministic); the widget re-uses it."""
    return run_mutant(name)


def kill_rows(names: Sequence[str] | None = None) -> list[tuple[str, str, str, str, str, str, int]]:
    """(mutant, expected invariant, caught?, violated with the bug, without it, choice list, trace lines)."""
    rows = []
    for name in names or list(MUTANTS):
        v = verdict(name)
        rows.append((v.mutant, v.invariant, "caught" if v.caught else "MISSED", ", ".join(v.found) or "-",
                     ", ".join(v.baseline) or "-", str(v.counterexample), v.length or 0))
    return rows


def mutation_rows() -> list[tuple[str, int, int, int, int, int, str, str]]:
    """Per twin module of the stored campaign (data/mutation_campaign.json): (module, mutants, equivalent, killed,
    survived, not reached, score before, score after); the score is killed / non-equivalent, by the checker alone."""
    from ..datafiles import load_json
    rows = []
    for module, r in load_json("mutation_campaign.json")["modules"].items():
        a, b = r["after"], r.get("before")
        rows.append((module.removeprefix("asyncpf."), a["mutants"], a["equivalent"], a["killed"], a["survived"],
                     a["not_reached"], f"{b['score']:.0%}" if b else "-", f"{a['score']:.0%}"))
    return rows


def mutation_verdicts() -> dict[str, dict[str, int]]:
    """Per module, how many stored mutants have each status (to check the rows against the verdicts)."""
    from ..datafiles import load_json
    out: dict[str, dict[str, int]] = {}
    for mid, v in load_json("mutation_campaign.json")["mutants"].items():
        counts = out.setdefault(mid.split(":")[0].removeprefix("asyncpf."), {})
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    return out


def correct_model() -> list[dict[str, Any]]:
    """Every fast configuration explored exhaustively without bugs, with the known generation behaviour marked."""
    out = []
    for cfg in fast_configs():
        c = counts(explore(cfg, stop_at_first=False, max_seconds=60))
        known = KNOWN_GENERATION_BEHAVIOUR.get(cfg.name, frozenset())
        c["unexpected"] = [n for n in c["violations"] if n not in known]
        c["known"] = [n for n in c["violations"] if n in known]
        out.append(c)
    return out


def correct_rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, str, int, int, int, str]]:
    """(config, generation, schedules, pruned, states, verdict) per explored configuration."""
    return [(c["config"], c["generation"], c["schedules"], c["pruned"], c["distinct_states"],
             "clean" if not c["violations"] else
             ("known: " if not c["unexpected"] else "VIOLATED: ") + ", ".join(c["violations"]))
            for c in results]


# --- the widget's probe -----------------------------------------------------------------------

def mutant_probe(mutant: str) -> dict[str, Any]:
    """Explore one mutant (and its configuration without the bug): caught?, by what, counterexample size."""
    v = verdict(mutant)
    rep = v.report
    return {"mutant": mutant, "config": MUTANTS[mutant].config.name, "invariant": v.invariant, "caught": v.caught,
            "violated": v.found, "baseline": v.baseline, "choices": v.counterexample,
            "choice_count": len(v.counterexample or []), "cex_lines": v.length,
            "schedules": rep.schedules if rep is not None else 0}


def probe_text(r: dict[str, Any]) -> str:
    head = f"{r['mutant']} on {r['config']}: {'caught' if r['caught'] else 'MISSED'} by {r['invariant']}"
    return (f"{head}\nviolated: {', '.join(r['violated']) or '-'}  (without the bug: {', '.join(r['baseline']) or '-'})"
            f"\ncounterexample: choices {r['choices']}, {r['cex_lines']} trace lines, "
            f"found after {r['schedules']} schedule(s)")
