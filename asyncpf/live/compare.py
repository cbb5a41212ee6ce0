"""Hold a real observation against the model's: field by field, with the generation's known differences named.

A difference is either *expected* -- the model runs an older generation than
the running kernel and the two are documented to differ there (each with its
source) -- or a *mismatch*, which makes the verdict ``disagree``.
"""

from __future__ import annotations

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

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "mismatches": self.mismatches, "expected_differences": self.expected,
                "reason": self.reason}


def compare(real: Observation, model: Observation, generation: str) -> Verdict:
    out = Verdict("agree")
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
