"""Helpers for notebook 11: the specification held against the real KVM of this project's machines.

Everything here reads the captures stored in ``data/live`` (recorded by
``python -m asyncpf.live.record`` on a Linux 6.18 host whose KVM is the PVM
backend): the notebook never touches /dev/kvm, so it runs anywhere and its
outputs do not depend on the host it is executed on.
"""

from __future__ import annotations

from typing import Any

from ..conform import check
from ..live import msrtable, programs, runner
from ..live.observe import NOT_COMPARED
from ..trace import read


def program_names() -> list[str]:
    """The live programs with a stored capture, in the harness's order."""
    return [name for name, p in programs.PROGRAMS.items() if runner.stored(p) is not None]


def provenance(name: str) -> str:
    """Where and how the stored capture of ``name`` was recorded (one line)."""
    prov = runner.stored(programs.get(name))["provenance"]
    return f"{name}: Linux {prov['uname_r']}, {prov['backend']}, {prov['cpu']}, recorded {prov['date']}"


def trace_head(name: str, n: int = 12) -> str:
    """The first ``n`` async-PF lines of the real trace, as tracefs printed them."""
    text = runner.stored(programs.get(name))["trace"]
    keep = ("kvm_try_async_get_page", "kvm_async_pf", "kvm_apic_accept_irq", "kvm_msr")
    return "\n".join([line for line in text.splitlines() if any(k in line for k in keep)][:n])


def conform_verdict(name: str) -> dict[str, Any]:
    """``asyncpf conform`` on the real capture: generation inferred, rules judged, violations, notes."""
    return check(read(runner.stored(programs.get(name))["trace"])).as_dict()


def judged(name: str) -> dict[str, Any]:
    """The harness's comparison of the real capture with the same program on the model (traces left out)."""
    p = programs.get(name)
    result = runner.judge(p, runner.stored(p))
    result.pop("_traces", None)
    return result


def chains(name: str) -> list[tuple[str, str, str]]:
    """(token, real chain, model chain) per token: the causal order the comparison holds the two to."""
    r = judged(name)
    real = r["real"]["observation"]["chains"]
    model = r["model"]["observation"]["chains"]
    return [(t, " > ".join(real.get(t, [])), " > ".join(model.get(t, []))) for t in sorted(set(real) | set(model))]


def guest_view(name: str, side: str = "real", n: int = 10) -> list[str]:
    """The first ``n`` guest-visible records (WRMSR, #PF with its flags and CR2, interrupt, ACK) of one side."""
    obs = judged(name)[side]["observation"]
    return [" ".join(str(x) for x in rec) for rec in obs["guest"][:n]]


def verdict_line(name: str) -> str:
    v = judged(name)["verdict"]
    return f"{name}: {v['verdict']}" + (f" ({v['reason']})" if v["reason"] else "")


def msr_table() -> dict[str, Any]:
    """The MSR table: the real kernel's answers (guest WRMSRs) beside the model's (v6.18); the rows that agree,
    those that differ only as 5bb9ac186512 (in the measured kernel, after v6.18) makes them, and the others."""
    cap = runner.stored(programs.get("msr-table"))
    model = msrtable.run_model("interrupt")
    t = msrtable.judge(cap["table"], model, vmm_writes=False)
    return {"real": cap["table"], "model": model, "agree": t.agree, "fixed": t.fixed, "mismatches": t.mismatches}


def msr_table_text() -> str:
    t = msr_table()
    return msrtable.render(t["real"], t["model"], set(t["fixed"]))


def not_compared() -> list[str]:
    """What the comparison leaves out, and why (timing, eviction, global interleaving, ...)."""
    return list(NOT_COMPARED)
