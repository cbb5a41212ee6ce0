"""What the notebook helpers share: text tables, small seeded machines and page-state set-ups (from asyncpf.build)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .. import abi
from ..build import SMALL_HOST, standin_machine
from ..build import make_resident as make_resident, make_swapped as make_swapped  # re-exported for the helpers
from ..host import x86
from ..host.kvm_main import gfn_to_hva
from ..host.mm import PageState
from ..machine import Machine
from ..standin import APF_AREA_GPA

MiB = 1 << 20
G = 40  # the guest frame most scenarios fault on
APF_EVENTS = ("kvm_try_async_get_page", "kvm_async_pf_not_present", "kvm_async_pf_doublefault",
              "kvm_async_pf_completed", "kvm_async_pf_ready", "kvm_inj_exception")


# --- text tables --------------------------------------------------------------------------

def text_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A fixed-width table; columns whose index is in ``right`` are right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- small machines and page states (asyncpf.build) ------------------------------------------

def small_machine(generation: str = "legacy", **kw: Any) -> Machine:
    """A 4 MiB guest in a 1 MiB cgroup on an NVMe swap device (build.SMALL_HOST); vcpus run an empty stand-in guest."""
    return standin_machine(SMALL_HOST.replace(generation=generation, **kw))


def page_state(m: Machine, gfn: int) -> str:
    return PageState(m.mm.page_state(gfn_to_hva(m.kvm, gfn))).name


def run_process(m: Machine, gen: Any, until_ns: int | None = None) -> Any:
    """Run generator ``gen`` as an engine process (to quiescence, or ``until_ns`` later); its value."""
    p = m.env.process(gen, "notebook")
    m.env.run(None if until_ns is None else m.env.now + until_ns)
    return p.value if not p.is_alive else None


def enable_value(gen: str, vcpu_id: int = 0) -> int:
    """The MSR value a guest writes to register its area (SEND_ALWAYS where it exists)."""
    g = abi.generation(gen)
    flags = abi.KVM_ASYNC_PF_ENABLED
    if "KVM_ASYNC_PF_SEND_ALWAYS" in g.msr_flag_bits:
        flags |= abi.KVM_ASYNC_PF_SEND_ALWAYS
    return (APF_AREA_GPA + 64 * vcpu_id) | flags


def enable_apf(m: Machine, vcpu: Any = None) -> None:
    """Register the area with SEND_ALWAYS and let the guest take the wake-all page-ready."""
    vcpu = vcpu or m.vcpus[0]
    if run_process(m, x86.kvm_set_msr_common(vcpu, vcpu.kvm.abi.msr_async_pf_en, enable_value(m.gen.name, vcpu.vcpu_id))):
        raise ValueError("the MSR write was refused")
    run_process(m, vcpu.kvm.twins.kvm_check_async_pf_completion(vcpu))
    vcpu.arch.exception.pending = False


def apf_machine(generation: str = "legacy", **kw: Any) -> Machine:
    """A small machine whose vcpu 0 (every vcpu) registered its area and took the wake-all."""
    m = small_machine(generation, **kw)
    for v in m.vcpus:
        enable_apf(m, v)
    return m
