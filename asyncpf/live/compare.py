"""Hold a real observation against the model's: field by field, with the generation's known differences named.

A difference is either *expected* -- the model runs an older generation than
the running kernel and the two are documented to differ there (each with its
source) -- or a *mismatch*, which makes the verdict ``disagree``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .observe import Observation

COMPARED = ("guest", "chains", "pages", "completed", "token_vcpu_bits", "token_steps", "first_counter",
            "counts", "irq_vectors")

# (generation the model ran, field) -> (real value, model value, why they differ)
EXPECTED = {
    ("legacy", "first_counter"): (1, 0, "the token counter starts at 1 since 'KVM: x86/mmu: make apf token non-zero "
                                        "to fix bug' (2022, alloc_apf_token in arch/x86/kvm/mmu/mmu.c@v6.18); "
                                        "2.6.38 started at 0"),
}


@dataclass
class Verdict:
    verdict: str                                    # agree | disagree | pending | failed
    mismatches: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    reason: str = ""
    relaxed: list[str] = field(default_factory=list)   # facts of this run left out because of its timing

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "mismatches": self.mismatches, "expected_differences": self.expected,
                "reason": self.reason, "relaxed": self.relaxed}


def _without_late_retries(obs: Observation, late: set[str]) -> Observation:
    """``obs`` with the try/repeated_fault pairs of ``late`` tokens taken out (chains and counts)."""
    obs = copy.deepcopy(obs)
    for lab in late:
        chain = obs.chains.get(lab, [])
        kept: list[str] = []
        for step in chain:
            if step == "repeated_fault" and kept and kept[-1] == "try":
                kept.pop()
                obs.counts["try"] -= 1
                obs.counts["repeated_fault"] -= 1
            else:
                kept.append(step)
        obs.chains[lab] = kept
    return obs


def _without_ready_after_disable(obs: Observation, late: set[str]) -> tuple[Observation, list[str]]:
    """``obs`` without the page-ready of ``late`` tokens that reached the guest after it wrote EN = 0.

    Such a token's ready was traced, and its vector accepted into the LAPIC, before the #PF was even
    injected; the #PF handler runs with interrupts off, so the pending vector is delivered after the
    handler's disable.  The model never delivers late: it flushes the item in the disable instead.
    """
    obs = copy.deepcopy(obs)
    dropped: list[str] = []
    disabled = False
    kept: list[list] = []
    log = iter(obs.guest)
    for rec in log:
        if rec[:3] == ["wrmsr", "EN", "0x0"]:
            disabled = True
        token = rec[2][len("token="):] if rec[0] == "irq" and len(rec) > 2 else None
        if disabled and token in late:
            dropped.append(token)
            ack = next(log, None)
            if ack is not None and ack[0] == "ack":
                obs.counts["ack_writes"] -= 1
            elif ack is not None:
                kept.append(ack)
            obs.counts["irq_accepted"] -= 1
            obs.counts["ready"] -= 1
            chain = obs.chains[token]
            del chain[len(chain) - 1 - chain[::-1].index("ready")]
            continue
        kept.append(rec)
    obs.guest = kept
    return obs, dropped


def compare(real: Observation, model: Observation, generation: str) -> Verdict:
    """Field by field; tokens the real host delivered late (ready before #PF) are compared without their retry."""
    out = Verdict("agree")
    late = set(real.late_pf) | set(model.late_pf)
    if late:
        real, model = _without_late_retries(real, late), _without_late_retries(model, late)
        out.relaxed.append(f"tokens {sorted(late)}: ready traced before the #PF injection on the real host; "
                            "compared without a repeated fault")
        (real, dropped), (model, dropped_model) = (_without_ready_after_disable(real, late),
                                                   _without_ready_after_disable(model, late))
        for token in sorted(set(dropped + dropped_model)):
            out.relaxed.append(f"token {token}: its page-ready was already pending in the LAPIC when the guest "
                               "disabled async PF, and reached the guest after the disable; compared without it")
    for name in COMPARED:
        r, m = getattr(real, name), getattr(model, name)
        if r == m:
            continue
        exp = EXPECTED.get((generation, name))
        if exp is not None and (r, m) == exp[:2]:
            out.expected.append(f"{name}: real {r!r}, model {m!r} -- {exp[2]}")
        else:
            out.mismatches.append(f"{name}: real {_show(r)}, model {_show(m)}")
    if out.mismatches:
        out.verdict = "disagree"
    return out


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 400 else text[:400] + "..."
