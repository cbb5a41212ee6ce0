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


def compare(real: Observation, model: Observation, generation: str) -> Verdict:
    """Field by field; tokens the real host delivered late (ready before #PF) are compared without their retry."""
    out = Verdict("agree")
    late = set(real.late_pf) | set(model.late_pf)
    if late:
        real, model = _without_late_retries(real, late), _without_late_retries(model, late)
        out.relaxed.append(f"tokens {sorted(late)}: ready traced before the #PF injection on the real host; "
                            "compared without a repeated fault")
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
