"""Scenarios of the interrupt era (Linux 6.18 as modelled): page-ready as an APIC interrupt with the ACK MSR.

Not-present is still a #PF with CR2 = token; page-ready is the token in the
area's ``token`` word and a fixed interrupt on the vector the guest wrote to
MSR_KVM_ASYNC_PF_INT (0xf3 = 243 for Linux), acknowledged by the guest with
a write of 1 to MSR_KVM_ASYNC_PF_ACK (0x4b564d07) once it has cleared the word.
Each scenario watches the trace through :class:`Watch`, which also sees the
ACK write as KVM receives it (a logging wrapper around the ACK case of this
VM's kvm_set_msr_common: the ``kvm_msr`` line is traced only after the write
was handled, i.e. after any page-ready the ACK itself sent).

Sources: arch/x86/kvm/x86.c, lapic.c and virt/kvm/async_pf.c @v6.18 (the twins in
``asyncpf/host/interrupt/``); arch/x86/kernel/kvm.c @v6.18 (``asyncpf/guest/interrupt.py``);
Documentation/virt/kvm/x86/msr.rst @v6.18.  The LAPIC case is the 2021 report of a vcpu thread spinning at
100% under Cloud Hypervisor's direct kernel boot (github.com/cloud-hypervisor/cloud-hypervisor issue 2277)
and its fix, Vitaly Kuznetsov's "KVM: x86: Properly handle APF vs disabled LAPIC situation" (2021): page-ready
held while the LAPIC is software-disabled, KVM_REQ_APF_READY when SPIV enables it.  The migration restores
MSR_KVM_ASYNC_PF_INT before MSR_KVM_ASYNC_PF_EN, as QEMU's kvm_put_msrs (target/i386/kvm/kvm.c) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import abi
from ..guest import interrupt as guest_irq
from ..guest import kvm as pv
from ..guest.kernel import AddressSpace
from ..guest.ops import Cli, Sti, Work
from ..host import x86
from ..host.interrupt import lapic
from ..host.interrupt import x86 as ix86
from ..host.kvm_main import read_guest_bytes
from ..host.vcpu import Compute, WrMsr
from .stage import Stage, _prog, _touch, scenario

PV_VECTOR = abi.HYPERVISOR_CALLBACK_VECTOR      # 0xf3 = 243, what a 5.9+ Linux guest asks page-ready on
INTERRUPT = abi.generation("interrupt")
EVENTS = ("kvm_async_pf_not_present", "kvm_inj_exception", "kvm_async_pf_completed", "kvm_async_pf_ready",
          "kvm_apic_accept_irq", "kvm_msr", "kvm_async_pf_repeated_fault", "kvm_exit")


@dataclass
class Row:
    """One observed step: its rank in the run, time, what, and the fields (plus the state seen then)."""

    seq: int
    t_ns: int
    what: str
    f: dict = field(default_factory=dict)


class Watch:
    """The async-PF events of vcpu 0 in causal order, with the token slot and ``pageready_pending`` at each.

    ``ack`` rows are the guest's ACK writes as KVM starts handling them; a
    ``kvm_async_pf_ready`` row says whether it was sent from inside an ACK.
    """

    def __init__(self, s: Stage):
        self.s = s
        self.rows: list[Row] = []
        self.in_ack = False
        for name in EVENTS:
            s.on(name, self._add(name), once=False)

    def attach(self) -> None:
        """Wrap the ACK case of this VM's MSR switch (call once the machine exists)."""
        msrs = self.s.m.kvm.twins.msrs
        ack = INTERRUPT.msr_async_pf_ack
        handler = msrs[ack]

        def logged(vcpu: Any, data: int):
            self.rows.append(Row(len(self.rows), vcpu.kvm.env.now, "ack",
                                 {"data": data, "slot": slot(vcpu), "pending": vcpu.arch.apf.pageready_pending}))
            self.in_ack = True
            try:
                return (yield from handler(vcpu, data))
            finally:
                self.in_ack = False

        msrs[ack] = logged

    def _add(self, name: str):
        def hook(t_ns: int, fields: dict) -> None:
            f = dict(fields)
            m = self.s.m
            if m is not None and m.vcpus and name == "kvm_async_pf_ready":
                v = m.vcpus[0]
                f.update(slot=slot(v), pending=v.arch.apf.pageready_pending, in_ack=self.in_ack)
            self.rows.append(Row(len(self.rows), t_ns, name, f))
        return hook

    # queries
    def where(self, what: str, after: int = -1, **match: Any) -> Row | None:
        """The first row ``what`` after rank ``after`` whose fields equal ``match``."""
        for r in self.rows[after + 1:]:
            if r.what == what and all(r.f.get(k) == v for k, v in match.items()):
                return r
        return None

    def all(self, what: str, **match: Any) -> list[Row]:
        return [r for r in self.rows if r.what == what and all(r.f.get(k) == v for k, v in match.items())]

    def irq_tokens(self, since: int = -1) -> list[int]:
        """The token in the slot at each page-ready interrupt on the PV vector (what the guest reads)."""
        out = []
        for r in self.rows[since + 1:]:
            if r.what == "kvm_async_pf_ready" and r.f.get("sent"):
                out.append(r.f["token"])
        return out

    def mark_sent(self) -> None:
        """Tag each ready row followed by an interrupt on the PV vector before the next ready (it was sent)."""
        for i, r in enumerate(self.rows):
            if r.what != "kvm_async_pf_ready":
                continue
            nxt = next((q for q in self.rows[i + 1:] if q.what in ("kvm_async_pf_ready", "kvm_apic_accept_irq")
                        and (q.what == "kvm_async_pf_ready" or q.f.get("vec") == PV_VECTOR)), None)
            r.f["sent"] = nxt is not None and nxt.what == "kvm_apic_accept_irq"

    def handshake(self, token: int, gva: int) -> tuple[bool, str]:
        """not_present(T) -> #PF -> completed(gva) -> ready(T) -> IRQ vec 243 -> ACK (slot 0) -> kvm_msr ACK=1."""
        steps: list[Row] = []
        for what, match in (("kvm_async_pf_not_present", {"token": token}),
                            ("kvm_inj_exception", {"exception": x86.PF_VECTOR}),
                            ("kvm_async_pf_completed", {"gva": gva}),
                            ("kvm_async_pf_ready", {"token": token}),
                            ("kvm_apic_accept_irq", {"vec": PV_VECTOR}),
                            ("ack", {"data": 1, "slot": 0}),
                            ("kvm_msr", {"ecx": INTERRUPT.msr_async_pf_ack, "data": 1})):
            r = self.where(what, steps[-1].seq if steps else -1, **match)
            if r is None:
                return False, f"{token:#x}: no {what} {match} after {[s.what for s in steps]}"
            steps.append(r)
        return True, f"{token:#x}: " + " -> ".join(f"{s.what}@{s.seq}" for s in steps)


def watched(s: Stage, **build: Any) -> tuple[Watch, Any]:
    """The stage's machine, built with ``build``'s options and watched from boot (its ACK case wrapped)."""
    w = Watch(s)
    m = s.build(**build)
    w.attach()
    return w, m


def slot(vcpu: Any) -> int:
    """The area's ``token`` word as the guest sees it (0 = free)."""
    gpa = vcpu.arch.apf.data.gpa
    return int.from_bytes(read_guest_bytes(vcpu.kvm, gpa + ix86.TOKEN_OFFSET, 4), "little")


def _sleepers(s: Stage) -> int:
    return sum(1 for n in pv.all_nodes(s.kernel.sleepers) if n.task is not None)


def _run_msr(v: Any, msr: int, data: int) -> int:
    """A VMM's KVM_SET_MSRS write, run to completion at once (the enable path never waits)."""
    gen = x86.kvm_set_msr_common(v, msr, data)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


# --- the handshake ------------------------------------------------------------------------------

@scenario("ack_handshake",
          "two tasks each touch a swapped page (NVMe): for each token, in causal order, not-present -> #PF "
          "(CR2 = token) -> the worker's completion -> page-ready (token in the area's slot) -> interrupt "
          "vector 243 -> the guest clears the slot and writes 1 to MSR_KVM_ASYNC_PF_ACK (0x4b564d07)",
          generation="interrupt")
def _ack_handshake(s: Stage) -> None:
    w, m = watched(s)
    v = m.vcpus[0]
    gfns = s.swapped(2)
    tokens: dict[int, int] = {}
    s.on("kvm_async_pf_not_present", lambda t, f: tokens.setdefault(f["gva"], f["token"]), once=False)
    tasks = s.touchers(2)
    s.finish(tasks)
    s.check("registered: INT = 0xf3, then EN = area | ENABLED | DELIVERY_AS_INT (no SEND_ALWAYS)",
            v.arch.apf.vec == PV_VECTOR and v.arch.apf.msr_en_val & 0xF == abi.KVM_ASYNC_PF_ENABLED
            | abi.KVM_ASYNC_PF_DELIVERY_AS_INT, f"vec={v.arch.apf.vec:#x} msr_en_val={v.arch.apf.msr_en_val:#x}")
    s.check("two not-present, both injected", len(tokens) == 2 and v.stat["apf_not_present_injected"] == 2,
            f"tokens {[hex(t) for t in tokens.values()]}")
    for gfn in gfns:
        gpa = gfn << abi.PAGE_SHIFT
        ok, detail = w.handshake(tokens.get(gpa, -1), gpa)
        s.check(f"handshake in causal order for gfn {gfn:#x}", ok, detail)
    acks = w.all("ack")
    s.check("every ACK came after the guest cleared the slot, with a page-ready pending",
            acks and all(a.f["slot"] == 0 and a.f["pending"] for a in acks),
            f"{len(acks)} ACKs (slot, pending) = {sorted({(a.f['slot'], a.f['pending']) for a in acks})}")
    readies = w.all("kvm_async_pf_ready")
    s.check("no page-ready was sent while the slot was busy", all(r.f["slot"] == 0 for r in readies),
            f"slot at each ready: {[hex(r.f['slot']) for r in readies]}")
    s.check("one interrupt on vector 243 per page-ready (boot wake-all + 2)",
            len(w.all("kvm_apic_accept_irq", vec=PV_VECTOR)) == len(readies) == 3
            and s.kernel.cpus[0].stats["apf_ready"] == 3,
            f"irqs={len(w.all('kvm_apic_accept_irq', vec=PV_VECTOR))} readies={len(readies)}")
    s.check("no page-ready pending at the end", not v.arch.apf.pageready_pending and slot(v) == 0, "")


@scenario("page_ready_waits_for_free_slot",
          "two tasks sleep on APFs (NVMe) while a third runs a kernel section with interrupts off: both pages "
          "arrive; the first page-ready fills the slot and its interrupt waits for IF=1, the second stays on "
          "done (slot busy); it is sent from inside the guest's ACK write of the first, not at a later entry",
          generation="interrupt")
def _busy_slot(s: Stage) -> None:
    w, m = watched(s)
    v = m.vcpus[0]
    snap: dict[str, Any] = {}
    tokens: list[int] = []
    s.on("kvm_async_pf_not_present", lambda t, f: tokens.append(f["token"]), once=False)

    def irqs_off():
        yield Cli()
        yield Compute(1_000_000)            # local_irq_disable(); 1 ms of work; local_irq_enable()
        snap["end"] = (len(v.async_pf.done), slot(v), PV_VECTOR in v.irr, v.arch.apf.pageready_pending,
                       v.kvm.stat.async_pf_completed - snap.get("completed0", 0))
        yield Sti()

    a, b = s.touchers(2)
    snap["completed0"] = m.kvm.stat.async_pf_completed
    c = s.spawn("irqs-off", _prog(Work(1000), irqs_off))
    s.finish([a, b, c])
    readies = [r for r in w.all("kvm_async_pf_ready") if r.f["token"] in tokens]
    r1, r2 = (readies + [None, None])[:2]
    first = r1.f["token"] if r1 else -1
    s.check("both pages arrived inside the IF=0 section: the first page-ready in the slot, its interrupt "
            "pending, the second held on done", snap.get("end") == (1, first, True, True, 2),
            f"(done, slot, 243 in IRR, pending, completed) = {snap.get('end')}; first page-ready {first:#x}")
    ack1 = w.where("ack", r1.seq) if r1 else None
    s.check("the second page-ready only after the first ACK", r1 and r2 and ack1 and r1.seq < ack1.seq < r2.seq,
            f"ready {first:#x}@{r1 and r1.seq} ACK@{ack1 and ack1.seq} ready@{r2 and r2.seq}")
    s.check("sent from inside that ACK write, with the slot free and nothing pending",
            r2 is not None and r2.f["in_ack"] and r2.f["slot"] == 0 and not r2.f["pending"],
            f"{ {k: r2.f[k] for k in ('token', 'slot', 'pending', 'in_ack')} if r2 else None}")
    s.check("both sleepers woken, each page-ready matched its token",
            s.kernel.stats["sleeps"] == 2 and s.kernel.stats["dummies_created"] == 0,
            f"sleeps={s.kernel.stats['sleeps']} dummies={s.kernel.stats['dummies_created']}")


# --- enable, disable, reset -------------------------------------------------------------------------

@scenario("wake_all_at_enable",
          "boot: the guest writes INT = 0xf3 before EN, and the enable queues a wake-all delivered as token "
          "0xffffffff by interrupt; then, with two tasks asleep on APFs (2010 HDD), a migration: the "
          "destination vcpu starts from reset, the VMM restores INT then EN (as QEMU's kvm_put_msrs) and the "
          "one wake-all wakes both sleepers, which retry on the destination",
          generation="interrupt")
def _wake_all(s: Stage) -> None:
    w, m = watched(s, swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    w.mark_sent()
    boot = list(w.rows)
    spec = INTERRUPT
    msr_writes = [(r.f["ecx"], r.f["data"]) for r in boot if r.what == "kvm_msr"]
    en = cpu0.apf_gpa | abi.KVM_ASYNC_PF_ENABLED | abi.KVM_ASYNC_PF_DELIVERY_AS_INT
    s.check("boot: INT = 0xf3 written before EN = area | ENABLED | DELIVERY_AS_INT",
            msr_writes[:2] == [(spec.msr_async_pf_int, PV_VECTOR), (spec.msr_async_pf_en, en)],
            f"{[(hex(a), hex(b)) for a, b in msr_writes]}")
    s.check("boot: the enable's wake-all arrived as token 0xffffffff on vector 243 and was ACKed",
            w.irq_tokens() == [abi.BROADCAST_TOKEN] and cpu0.stats["apf_ready"] == 1
            and (spec.msr_async_pf_ack, 1) in msr_writes, f"page-ready tokens at boot {w.irq_tokens()}")
    snap: dict[str, Any] = {}

    def stop_source() -> None:
        snap["saved"] = (v.arch.apf.msr_int_val, v.arch.apf.msr_en_val)
        snap["before"] = (v.async_pf.queued, _sleepers(s))
        snap["rank"] = len(w.rows) - 1
        v.reset_pending = True
        v.kick()

    def restore() -> None:
        snap["at_restore"] = (v.arch.apf.msr_en_val, v.async_pf.queued, _sleepers(s))
        snap["r"] = (_run_msr(v, spec.msr_async_pf_int, snap["saved"][0]),
                     _run_msr(v, spec.msr_async_pf_en, snap["saved"][1]))
        snap["done"] = [x.wakeup_all for x in v.async_pf.done]
        v.kick()

    a, b = s.touchers(2)
    s.at(300_000, stop_source)
    s.at(100_000_000, restore)
    s.finish([a, b])
    w.mark_sent()
    s.check("two sleepers and two APFs when the source stopped", snap.get("before") == (2, 2), f"{snap}")
    s.check("destination before the restore: APF off, no queue, both still asleep",
            snap.get("at_restore") == (0, 0, 2), f"{snap}")
    s.check("restore accepted; the EN write queued one wake-all",
            snap.get("r") == (0, 0) and snap.get("done") == [True], f"{snap}")
    after = w.irq_tokens(snap.get("rank", 0))
    s.check("page-ready after the migration: only token 0xffffffff, by interrupt",
            after == [abi.BROADCAST_TOKEN], f"{[hex(t) for t in after]}")
    s.check("both sleepers had slept and none is left", s.kernel.stats["sleeps"] == 2 and _sleepers(s) == 0,
            f"sleeps={s.kernel.stats['sleeps']}")


@scenario("interrupt_msr_disable_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when a guest kernel thread writes 0 to MSR_KVM_ASYNC_PF_EN and "
          "wakes its waiters (as kvm_guest_cpu_offline): queue, done and the gfn hash cleared (running workers "
          "waited for), no page-ready and no interrupt after, the woken tasks retry and finish",
          generation="interrupt")
def _msr_disable(s: Stage) -> None:
    w, m = watched(s, swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def disable():
        snap["queued_before"] = v.async_pf.queued
        yield from guest_irq.kvm_pv_disable_apf(cpu0)       # WRMSR EN = 0 (the 6.18 guest's)
        snap["after"] = (len(v.async_pf.queue), len(v.async_pf.done), v.async_pf.queued, v.arch.apf.msr_en_val)
        snap["hash_empty"] = bool((v.arch.apf.gfns == x86.GFN_SLOT_EMPTY).all())
        snap["rank"] = len(w.rows) - 1
        pv.apf_task_wake_all(cpu0)                          # the rest of kvm_guest_cpu_offline(shutdown=false)

    a, b = s.touchers(2)
    k = s.spawn("cpuhp", _prog(Work(100_000), disable))
    s.finish([a, b, k])
    later = [r.what for r in w.rows[snap.get("rank", 0) + 1:]
             if r.what in ("kvm_async_pf_ready", "kvm_inj_exception", "kvm_async_pf_not_present")
             or (r.what == "kvm_apic_accept_irq" and r.f.get("vec") == PV_VECTOR)]
    s.check("two APFs were outstanding at the disable", snap.get("queued_before") == 2, f"{snap}")
    s.check("the write cleared queue, done and queued; APF off", snap.get("after") == (0, 0, 0, 0), f"{snap}")
    s.check("the gfn hash was reset", snap.get("hash_empty") is True, "")
    s.check("nothing sent after the disable (no page-ready, no #PF, no vector 243)", not later, f"{later}")
    s.check("both sleepers had slept and retried", s.kernel.stats["sleeps"] == 2 and _sleepers(s) == 0,
            f"sleeps={s.kernel.stats['sleeps']}")


@scenario("interrupt_vcpu_reset_with_outstanding",
          "two tasks sleep on APFs (2010 HDD) when the VMM resets the vcpu: both MSRs 0, queue cleared, nothing "
          "delivered (6.18 keeps the vector and pageready_pending); the guest re-registers (INT, then EN) and "
          "the wake-all interrupt makes the sleepers retry",
          generation="interrupt")
def _vcpu_reset(s: Stage) -> None:
    w, m = watched(s, swap="hdd_7200_2010")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    snap: dict[str, Any] = {}

    def reregister():
        a = v.arch.apf
        snap["after_reset"] = (a.msr_en_val, a.msr_int_val, len(v.async_pf.queue), len(v.async_pf.done),
                               v.async_pf.queued)
        snap["kept"] = (a.vec, a.pageready_pending)
        snap["sleepers"] = _sleepers(s)
        snap["ready_before"] = cpu0.stats["apf_ready"]
        yield from cpu0.kernel.twins.kvm_guest_cpu_init(cpu0)

    def reset() -> None:
        snap["queued_at_reset"] = v.async_pf.queued
        snap["rank"] = len(w.rows) - 1
        v.reset_pending = True
        v.kick()
        s.spawn("reregister", _prog(reregister))

    a, b = s.touchers(2)
    s.at(300_000, reset)
    s.finish([a, b])
    w.mark_sent()
    s.check("two APFs outstanding at the reset", snap.get("queued_at_reset") == 2, f"{snap}")
    s.check("reset: EN and INT 0, queue and done empty", snap.get("after_reset") == (0, 0, 0, 0, 0), f"{snap}")
    s.check("6.18 keeps the vector and pageready_pending across the reset", snap.get("kept") == (PV_VECTOR, False),
            f"(vec, pageready_pending) = {snap.get('kept')}")
    s.check("both tasks still asleep before the re-registration, nothing delivered",
            snap.get("sleepers") == 2 and snap.get("ready_before") == 1, f"{snap} (1 = the boot wake-all)")
    after = w.irq_tokens(snap.get("rank", 0))
    s.check("exactly one page-ready after the reset: the wake-all", after == [abi.BROADCAST_TOKEN],
            f"{[hex(t) for t in after]}")
    s.check("APF enabled again with DELIVERY_AS_INT", ix86.kvm_pv_async_pf_enabled(v) or m.shut_down,
            f"msr_en_val={v.arch.apf.msr_en_val:#x}")


# --- who gets no page-ready ---------------------------------------------------------------------------

@scenario("kernel_mode_fault_halts_without_page_ready",
          "a task touches a swapped page from kernel mode (a copy_to_user; 2010 HDD): no SEND_ALWAYS since 5.8, "
          "so KVM sets the APF up but halts the vcpu instead of injecting #PF; when the page is in, "
          "kvm_async_pf_ready is traced but no interrupt is sent (notpresent_injected is false) -- yet the vcpu "
          "unhalts and no dummy node is left (the 2020 fix of the legacy leak)",
          generation="interrupt")
def _kernel_mode(s: Stage) -> None:
    w, m = watched(s, swap="hdd_7200_2010")
    v = m.vcpus[0]
    rank = len(w.rows) - 1
    (gfn,) = s.swapped(1)
    t = s.spawn("syscall", _prog(_touch(s.gva(gfn), kernel=True)))
    s.finish([t])
    rows = w.rows[rank + 1:]
    np = [r for r in rows if r.what == "kvm_async_pf_not_present"]
    token = np[0].f["token"] if np else -1
    s.check("registered without SEND_ALWAYS", not v.arch.apf.msr_en_val & abi.KVM_ASYNC_PF_SEND_ALWAYS,
            f"msr_en_val={v.arch.apf.msr_en_val:#x}")
    s.check("an APF was set up (not-present traced once)", len(np) == 1, f"{len(np)}")
    s.check("no #PF injected at CPL0", v.stat["apf_not_present_injected"] == 0
            and not any(r.what == "kvm_inj_exception" for r in rows), "")
    s.check("the vcpu was APF-halted meanwhile", v.stat["apf_halts"] >= 1 and v.acct["halted"] > 0,
            f"apf_halts={v.stat['apf_halts']} halted={v.acct['halted']} ns")
    ready = [r for r in rows if r.what == "kvm_async_pf_ready"]
    irqs = [r for r in rows if r.what == "kvm_apic_accept_irq" and r.f.get("vec") == PV_VECTOR]
    s.check("kvm_async_pf_ready traced for the token, but no interrupt on vector 243",
            [r.f["token"] for r in ready] == [token] and not irqs and not v.arch.apf.pageready_pending,
            f"ready {[hex(r.f['token']) for r in ready]}, {len(irqs)} interrupts")
    s.check("the guest never waited and keeps no dummy",
            s.kernel.stats["sleeps"] == 0 and s.kernel.stats["dummies_created"] == 0, f"{dict(s.kernel.stats)}")


@scenario("legacy_guest_on_interrupt_host",
          "a 2.6.38-style guest (EN = area | ENABLED | SEND_ALWAYS, no DELIVERY_AS_INT) on the 6.18 host: the "
          "write is accepted but async PF stays off -- no wake-all, no #PF, no page-ready of either kind; a "
          "swapped page (2010 HDD) is met by the APF halt only",
          generation="interrupt")
def _legacy_guest(s: Stage) -> None:
    w, m = watched(s, swap="hdd_7200_2010", guest_generation="legacy")
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    boot_msrs = [r.f for r in w.rows if r.what == "kvm_msr"]
    legacy_en = cpu0.apf_gpa | abi.KVM_ASYNC_PF_ENABLED | abi.KVM_ASYNC_PF_SEND_ALWAYS
    s.check("EN written without DELIVERY_AS_INT and accepted (no #GP)",
            [(f["ecx"], f["data"], f["exception"]) for f in boot_msrs] == [(INTERRUPT.msr_async_pf_en, legacy_en,
                                                                            False)],
            f"{[(hex(f['ecx']), hex(f['data']), f['exception']) for f in boot_msrs]}")
    s.check("the guest believes it is registered; the host does not (enabled needs ENABLED and DELIVERY_AS_INT)",
            cpu0.apf_enabled and v.arch.apf.msr_en_val == legacy_en and not ix86.kvm_pv_async_pf_enabled(v),
            f"msr_en_val={v.arch.apf.msr_en_val:#x}")
    a, b = s.touchers(2)
    s.finish([a, b])
    kinds = sorted({r.what for r in w.rows if r.what == "kvm_inj_exception"
                    or (r.what == "kvm_apic_accept_irq" and r.f.get("vec") == PV_VECTOR)})
    s.check("no event of either kind: no wake-all, no #PF, no interrupt on vector 243, the slot never written",
            not kinds and v.stat["apf_injected"] == 0 and v.stat["apf_page_ready_irqs"] == 0 and slot(v) == 0,
            f"{kinds}")
    ready = w.all("kvm_async_pf_ready")
    s.check("kvm_async_pf_ready is still traced for each completion (before the enabled test)",
            len(ready) == 2 and all(r.f["token"] != abi.BROADCAST_TOKEN for r in ready),
            f"{[hex(r.f['token']) for r in ready]}")
    s.check("the faults went async on the host and halted the vcpu",
            s.since_boot("kvm_async_pf_not_present") == 2 and v.stat["apf_halts"] >= 2 and v.acct["halted"] > 0,
            f"not_present={s.since_boot('kvm_async_pf_not_present')} apf_halts={v.stat['apf_halts']} "
            f"halted={v.acct['halted']} ns")
    s.check("no task slept in the guest", s.kernel.stats["sleeps"] == 0, f"{dict(s.kernel.stats)}")


# --- a software-disabled LAPIC ---------------------------------------------------------------------

ENABLE_AT_NS = 2_000_000      # when, in the boot, the guest's setup_local_APIC enables the LAPIC
QUIET_NS = 5_000_000


@scenario("lapic_disabled_holds_page_ready",
          "the LAPIC is software-disabled when the guest enables async PF (as under Cloud Hypervisor's direct "
          "boot, the 2021 report): the wake-all stays on done, and done not empty makes the halted vcpu "
          "runnable, so HLT does not block: the idle vcpu spins through HLT exits until the guest's WRMSR "
          "0x80f = 0x1ff (SPIV enable, 2 ms into the boot) raises KVM_REQ_APF_READY and the wake-all is "
          "delivered; after that HLT blocks and a fault gets the usual handshake",
          generation="interrupt")
def _lapic_disabled(s: Stage) -> None:
    w = Watch(s)        # not watched(): setup_local_apic reads the rows while the machine is still booting
    snap: dict[str, Any] = {}

    def setup_local_apic():
        v = s.m.vcpus[0]
        v.flush_account()
        snap["spin"] = {"acct": dict(v.acct), "rank": len(w.rows) - 1, "t": s.m.env.now,
                        "done": [x.wakeup_all for x in v.async_pf.done], "slot": slot(v),
                        "ready": len(w.all("kvm_async_pf_ready")), "dropped": v.stat["irq_dropped_apic_disabled"]}
        snap["r"] = yield WrMsr(lapic.X2APIC_MSR_SPIV, 0x1FF)

    def lapic_off(m: Any) -> None:
        for vcpu in m.vcpus:
            vcpu.apic_sw_enabled = False

    def after_enable(t_ns: int, fields: dict) -> None:   # later in the boot, setup_local_APIC runs
        if fields["ecx"] == INTERRUPT.msr_async_pf_en and "armed" not in snap:
            snap["armed"] = t_ns
            kernel = s.m.guest
            s.m.env.schedule(ENABLE_AT_NS, lambda _arg: kernel.spawn("setup_local_APIC", _prog(setup_local_apic),
                                                                     0, AddressSpace()))

    s.on("kvm_msr", after_enable, once=False)
    m = s.build(before_boot=lapic_off)
    w.attach()
    w.mark_sent()
    v = m.vcpus[0]
    cpu0 = s.kernel.cpus[0]
    spin = snap.get("spin", {})
    en = w.where("kvm_msr", ecx=INTERRUPT.msr_async_pf_en)
    hlt = [r for r in w.rows[en.seq if en else 0:spin.get("rank", 0) + 1]
           if r.what == "kvm_exit" and r.f.get("exit_reason") == "HLT"]
    acct = spin.get("acct", {})
    window = spin.get("t", 0) - (en.t_ns if en else 0)
    s.check("until the enable: the wake-all held on done, the slot untouched, no page-ready traced",
            spin.get("done") == [True] and spin.get("slot") == 0 and spin.get("ready") == 0,
            f"done={spin.get('done')} slot={spin.get('slot')} ready events={spin.get('ready')}")
    s.check("meanwhile the idle vcpu never blocked: it spun through HLT exits (timer interrupts dropped)",
            acct.get("idle") == 0 and acct.get("halted") == 0 and len(hlt) > 1000,
            f"{len(hlt)} HLT exits in {window / 1e6:.2f} ms since the EN write (one per "
            f"{window // max(len(hlt), 1)} ns); boot time split guest {acct.get('guest')} / host {acct.get('host')} "
            f"/ idle {acct.get('idle')} ns; {spin.get('dropped')} timer interrupts dropped")
    after = w.irq_tokens(spin.get("rank", 0))
    s.check("the SPIV write was accepted and the held wake-all delivered by interrupt",
            snap.get("r") == 0 and v.apic_sw_enabled and after == [abi.BROADCAST_TOKEN]
            and cpu0.stats["apf_ready"] == 1, f"page-ready tokens after the enable: {[hex(t) for t in after]}")
    rank, t0 = len(w.rows) - 1, m.env.now
    v.flush_account()
    idle0 = v.acct["idle"]
    s.advance(t0 + QUIET_NS)
    v.flush_account()
    idle = v.acct["idle"] - idle0
    quiet_hlt = sum(1 for r in w.rows[rank + 1:] if r.what == "kvm_exit" and r.f.get("exit_reason") == "HLT")
    s.check(f"LAPIC on, {QUIET_NS // 1_000_000} ms with nothing to run: HLT blocks until the next tick",
            idle > QUIET_NS * 9 // 10 and quiet_hlt <= QUIET_NS // 1_000_000 + 1,
            f"{quiet_hlt} HLT exits, idle {idle} ns")
    (gfn,) = s.swapped(1)
    task = s.spawn("a", _prog(_touch(s.gva(gfn))))
    s.finish([task])
    w.mark_sent()
    s.check("then a fault got the usual handshake (the task slept once, one more page-ready interrupt)",
            len(w.irq_tokens(spin.get("rank", 0))) == 2 and s.kernel.stats["sleeps"] == 1
            and cpu0.stats["apf_ready"] == 2, f"sleeps={s.kernel.stats['sleeps']} irqs={cpu0.stats['apf_ready']}")

