"""Run a live program on the model: the project's machine with :class:`~asyncpf.live.modelguest.LiveGuest`.

The machine is the builder's small stand-in host (:data:`asyncpf.build.SMALL_HOST`,
4 MiB of guest RAM in a 1 MiB cgroup) of the chosen generation, with as many
vcpus as the program's vcpu id needs (the others stop at once); the touched
frames are put on swap first (:func:`asyncpf.build.make_swapped`), as the
real run evicts its file pages.  The run ends when the guest stopped, or
fails after a simulated-time bound.  Then the VM is destroyed and the leak
check must be clean.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import abi
from ..build import SMALL_HOST, make_swapped
from ..machine import Machine
from ..trace import TraceEvent
from .layout import GuestParams, LogRecord
from .modelguest import IdleGuest, LiveGuest
from .realrun import VmConfig

DATA_GFN = 0x100            # model frame of touch 0; touch i is DATA_GFN + i
SIM_LIMIT_NS = 10_000_000_000


@dataclass
class ModelRun:
    generation: str
    gpas: list[int] = field(default_factory=list)
    log: list[LogRecord] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)
    trace: str = ""
    leaks: list[str] = field(default_factory=list)
    sim_ns: int = 0
    outcomes: list[bool] = field(default_factory=list)   # MSR-table mode: accepted, per write
    msrs: dict[str, int | None] = field(default_factory=dict)  # EN, INT, ACK as the VMM reads them after the run


def read_msrs(vcpu) -> dict[str, int | None]:
    """What KVM_GET_MSRS returns for EN, INT, ACK: the model's ``kvm_get_msr_common`` as the VMM (None: refused)."""
    from ..host import x86
    out: dict[str, int | None] = {}
    for name, msr in (("EN", abi.INTERRUPT.msr_async_pf_en), ("INT", abi.INTERRUPT.msr_async_pf_int),
                      ("ACK", abi.INTERRUPT.msr_async_pf_ack)):
        r, value = x86.kvm_get_msr_common(vcpu, msr, host_initiated=True)
        out[name] = None if r else value
    return out


def configure_vcpu(m: Machine, cfg: VmConfig) -> None:
    """The VM options of ``cfg`` on the model: irqchip, CPUID 0x40000001 EAX, PV-CPUID enforcement."""
    m.kvm.irqchip_in_kernel = cfg.irqchip
    vcpu = m.vcpus[cfg.vcpu_id]
    features = (int(cfg.cpuid_async_pf) << m.gen.kvm_feature_async_pf
                | int(cfg.cpuid_async_pf_int and m.gen.name == "interrupt") << abi.KVM_FEATURE_ASYNC_PF_INT)
    vcpu.arch.cpuid_features = features
    vcpu.arch.pv_cpuid_enforce = cfg.enforce_pv_cpuid


def run_model(generation: str, cfg: VmConfig, params: GuestParams, *, host_cpus: int | None = None) -> ModelRun:
    """``params`` on vcpu ``cfg.vcpu_id`` of a ``generation`` host; touch i's gva is the real run's address.

    ``host_cpus``: the host's CPUs for which its vcpu threads and workers compete (None: a CPU each).
    """
    gfns = [DATA_GFN + i for i in range(params.count)]
    gvas = [params.base + i * params.stride for i in range(params.count)]
    guest = LiveGuest(params, gfns, gvas, apic_setup=generation == "interrupt" and params.x2apic)
    host = SMALL_HOST.replace(generation=generation, vcpus=cfg.vcpu_id + 1, host_cpus=host_cpus)
    m = Machine(host, lambda vcpu_id: guest if vcpu_id == cfg.vcpu_id else IdleGuest())
    configure_vcpu(m, cfg)
    if gfns:
        make_swapped(m, *gfns)
    m.start()
    start = m.env.now
    while not guest.finished and m.env.now - start < SIM_LIMIT_NS:
        m.run(m.env.now + 10_000_000)
    out = ModelRun(generation, [g << 12 for g in gfns], list(guest.log), [], "", [], m.env.now - start,
                   list(guest.outcomes), read_msrs(m.vcpus[cfg.vcpu_id]))
    m.shutdown()
    out.leaks = m.leaks()
    if not guest.finished:
        raise RuntimeError(f"the model's guest did not finish within {SIM_LIMIT_NS / 1e9:g} simulated s "
                           f"({guest.touched} of {params.count} touches)")
    out.events = list(m.tracer.events)
    out.trace = m.tracer.text()
    return out
