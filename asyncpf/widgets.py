"""ipywidgets views for the notebooks: thin controls over functions in :mod:`asyncpf.explain`.

Every view is a :class:`View`: its controls re-run one small, seeded package
function on each change, keep the returned summary in ``.result`` and show
it as text in ``.out`` (an HTML ``<pre>``).  Nothing is printed and no Output
widget is used, so a notebook (and nbval) can set ``control.value`` in code
and assert on ``.result`` or ``.out.value``.  Every re-run stays well under a
second.
"""

from __future__ import annotations

import html
from typing import Any, Callable

import ipywidgets as w

from . import abi, explain


class View:
    """Controls -> ``compute(**values)`` -> ``.result`` -> ``render(result)`` into ``.out``."""

    def __init__(self, controls: dict[str, w.ValueWidget], compute: Callable[..., Any],
                 render: Callable[[Any], str]):
        self.controls = controls
        self.compute = compute
        self.render = render
        self.out = w.HTML()
        self.result: Any = None
        for c in controls.values():
            c.observe(self.update, names="value")
        self.widget = w.VBox([*controls.values(), self.out])
        self.update()

    def update(self, _change: Any = None) -> None:
        self.result = self.compute(**{k: c.value for k, c in self.controls.items()})
        self.out.value = "<pre>" + html.escape(self.render(self.result)) + "</pre>"

    @property
    def text(self) -> str:
        """What ``.out`` shows, as plain text."""
        return html.unescape(self.out.value.removeprefix("<pre>").removesuffix("</pre>"))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


# --- 01 -------------------------------------------------------------------------------------

SWAP_LATENCIES_US = (10, 50, 100, 500, 1000, 5000, 10000)


def _stall(latency_us: int, mode: str) -> dict[str, Any]:
    r = explain.touch_run(mode, swap_device="nvme_gen4", swap_latency_ns=latency_us * 1000)
    return {k: r[k] for k in ("mode", "swapins", "guest", "stalled", "halted", "idle", "finish_ns")}


def _stall_text(r: dict[str, Any]) -> str:
    return (f"{r['mode']}: {r['swapins']} swap-ins; guest {r['guest'] / 1e6:.2f} ms, "
            f"stalled {r['stalled'] / 1e6:.2f} ms, halted {r['halted'] / 1e6:.2f} ms, idle {r['idle'] / 1e6:.2f} ms; "
            f"finished after {r['finish_ns'] / 1e6:.2f} ms")


def stall_view(latency_us: int = 100, mode: str = "unpatched") -> View:
    """A swap-latency slider and a host dropdown over :func:`explain.touch_run` (20 touches)."""
    controls = {
        "latency_us": w.SelectionSlider(options=SWAP_LATENCIES_US, value=latency_us, description="read (us)"),
        "mode": w.Dropdown(options=list(explain.MODES), value=mode, description="host"),
    }
    return View(controls, _stall, _stall_text)


# --- 02 -------------------------------------------------------------------------------------

def _abi(generation: str) -> dict[str, Any]:
    g = abi.generation(generation, modelled=False)
    return {"generation": g.name, "msr": g.msr_async_pf_en, "reserved_mask": g.msr_reserved_mask,
            "cpuid_bit": g.kvm_feature_async_pf, "area_size": g.area_size,
            "text": "\n\n".join([f"CPUID 0x40000001 EAX bit {g.kvm_feature_async_pf} (KVM_FEATURE_ASYNC_PF)",
                                 explain.msr_layout(g), g.area_c_struct, explain.area_layout(g)])}


def abi_view(generation: str = "legacy") -> View:
    """A generation dropdown showing the CPUID bit, the MSR's bits and the shared area."""
    controls = {"generation": w.Dropdown(options=list(abi.GENERATIONS), value=generation, description="generation")}
    return View(controls, _abi, lambda r: r["text"])


# --- 03 -------------------------------------------------------------------------------------

def gfn_path_view(state: str = "swapped", generation: str = "legacy") -> View:
    """A gfn-state dropdown: which path gfn_to_pfn_async takes, and what the fault traces."""
    controls = {"state": w.Dropdown(options=list(explain.GFN_STATES), value=state, description="gfn state"),
                "generation": w.Dropdown(options=list(abi.MODELLED), value=generation, description="generation")}
    return View(controls, explain.gfn_path, explain.path_text)


# --- 04 -------------------------------------------------------------------------------------

def limit_view(faults: int = 10) -> View:
    """A slider of outstanding faults on one vcpu: how many go async before the limit forces sync."""
    controls = {"n": w.IntSlider(value=faults, min=1, max=80, description="faults"),
                "generation": w.Dropdown(options=list(abi.MODELLED), value="legacy", description="generation")}
    return View(controls, explain.limit_probe,
                lambda r: f"{r['faults']} faults: {r['async']} async, {r['sync']} synchronous "
                          f"({r['limit_hits']} limit hits)")


# --- 08 -------------------------------------------------------------------------------------

def race_view(race: str = "none") -> View:
    """A race dropdown: what runs at tdp_page_fault's interleaving point, and the fault's outcome."""
    controls = {"race": w.Dropdown(options=list(explain.RACES), value=race, description="race")}
    return View(controls, explain.notifier_race,
                lambda r: f"race {r['race']}: fault {r['fault']}, seq moved by {r['seq_moved']}, "
                          f"spte mapped {r['spte_mapped']}, retries {r['retries']}, page {r['page']}")


# --- 05 · 06 · 07 (helpers in asyncpf.explain (guest, end_to_end, benchmark)) ----------------------------------------

def _guest_scenario(name: str) -> dict[str, Any]:
    from .explain import guest as explain_guest
    cache = _guest_scenario.__dict__.setdefault("cache", {})
    if name not in cache:
        cache[name] = explain_guest.guest_scenario(name)
    return cache[name]


def _guest_step(scenario: str, step: int) -> dict[str, Any]:
    r = _guest_scenario(scenario)
    snaps = r["snaps"]
    i = min(step, len(snaps) - 1)
    s = snaps[i]
    return {"scenario": scenario, "step": i, "steps": len(snaps), "last": i == len(snaps) - 1,
            "running": s.running, "tasks": s.tasks, "sleepers": s.sleepers, "reason": s.reason,
            "text": f"{scenario}: step {i} of {len(snaps) - 1}\n{s.text()}"}


class GuestStepView(View):
    """A scenario dropdown, a step slider and a "next" button over :func:`explain_guest.guest_scenario`.

    Each step is a snapshot of the guest: who runs, task states, the sleeper
    hash, the reason word, and the APF trace lines since the previous step.
    """

    def __init__(self, scenario: str = "sleep_and_schedule"):
        from .explain import guest as explain_guest
        controls = {"scenario": w.Dropdown(options=list(explain_guest.GUEST_SCENARIOS), value=scenario,
                                           description="scenario"),
                    "step": w.IntSlider(value=0, min=0, max=40, description="step")}
        super().__init__(controls, _guest_step, lambda r: r["text"])
        self.next = w.Button(description="next step")
        self.next.on_click(self._next)
        controls["scenario"].observe(self._restart, names="value")
        self.widget = w.VBox([controls["scenario"], w.HBox([controls["step"], self.next]), self.out])

    def _next(self, _button: Any = None) -> None:
        step = self.controls["step"]
        if not self.result["last"]:
            step.value = self.result["step"] + 1

    def _restart(self, _change: Any) -> None:
        self.controls["step"].value = 0


def guest_step_view(scenario: str = "sleep_and_schedule") -> GuestStepView:
    return GuestStepView(scenario)


def _timeline(host: str) -> dict[str, Any]:
    from .explain import end_to_end as explain_e2e
    r = explain_e2e.e2e_run(host)
    pairs = explain_e2e.apf_pairs(r.events + r.after)
    return {"host": host, "share": explain_e2e.task_share(r), "not_present": len(pairs),
            "answered": sum(p["ready"] is not None for p in pairs), "switches": {v: len(x) - 1 for v, x in r.runs.items()},
            "acct_ms": {v: {k: round(ns / 1e6, 1) for k, ns in a.items() if ns} for v, a in r.acct.items()},
            "leaks": r.leaks, "text": explain_e2e.timeline_summary(r), "run": r}


class TimelineView(View):
    """A host dropdown re-running the 06 end-to-end run: its summary as text and its first 60 ms redrawn.

    The picture is a PNG in an Image widget (``.png``): the notebook stores it with the widget state,
    and nbval compares none of it, so the notebook asserts on it in code instead.
    """

    WINDOW_NS = 60_000_000

    def __init__(self, host: str = "pv"):
        from .explain import end_to_end as explain_e2e
        self.image = w.Image(format="png", layout=w.Layout(width="760px"))
        controls = {"host": w.Dropdown(options=list(explain_e2e.HOSTS), value=host, description="host")}
        super().__init__(controls, _timeline,
                         lambda r: r["text"] + "\nvcpu time (ms): " + "; ".join(
                             f"vcpu{v} " + ", ".join(f"{k} {x}" for k, x in a.items())
                             for v, a in r["acct_ms"].items()))
        self.widget = w.VBox([*controls.values(), self.out, self.image])

    def update(self, _change: Any = None) -> None:
        from matplotlib.figure import Figure

        from .explain.end_to_end import plot_timeline
        from .plots import render
        super().update()
        run = self.result["run"]
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        plot_timeline(run, fig.subplots(), window_ns=(run.start_ns, run.start_ns + self.WINDOW_NS))
        self.image.value = render(fig, ".png")

    @property
    def png(self) -> bytes:
        """The picture shown, as PNG bytes."""
        return bytes(self.image.value)


def timeline_view(host: str = "pv") -> TimelineView:
    """A host dropdown re-running the 06 end-to-end run (0.2 s of guest time): shares, APFs, vcpu time split,
    and the per-vcpu timeline redrawn."""
    return TimelineView(host)


BM_LATENCIES_US = (50, 200, 1000, 4000, 8000, 16000)


def bm_view(fault_threads: int = 1, latency_us: int = 8000) -> View:
    """A fault-thread slider and a swap-latency slider over a tiny bm (1 vcpu, 0.1 s, one work thread)."""
    from .explain import benchmark as explain_benchmark
    controls = {"fault_threads": w.IntSlider(value=fault_threads, min=1, max=4, description="fault threads"),
                "swap_latency_us": w.SelectionSlider(options=BM_LATENCIES_US, value=latency_us,
                                                     description="read (us)")}
    return View(controls, explain_benchmark.tiny_bm, explain_benchmark.tiny_text)


# --- 09 (helpers in asyncpf.explain.checker) ---------------------------------------------------

def check_view(mutant: str = "hash_delete_no_shift") -> View:
    """A mutant dropdown: explore its configuration with and without the bug; caught?, by what, how short."""
    from .explain import checker as explain_check
    from .check.mutants import MUTANTS
    controls = {"mutant": w.Dropdown(options=list(MUTANTS), value=mutant, description="mutant")}
    return View(controls, explain_check.mutant_probe, explain_check.probe_text)


# --- 10 -------------------------------------------------------------------------------------

def _interrupt_scenario(name: str) -> dict[str, Any]:
    from .explain import interrupt_era as explain_irq
    cache = _interrupt_scenario.__dict__.setdefault("cache", {})
    if name not in cache:
        cache[name] = explain_irq.scenario_summary(name)
    return cache[name]


def interrupt_scenario_view(name: str = "ack_handshake") -> View:
    """A dropdown of the interrupt era's scenarios: each one's checks and its first async-PF trace lines."""
    from .explain import interrupt_era as explain_irq
    controls = {"name": w.Dropdown(options=explain_irq.interrupt_scenarios(), value=name, description="scenario")}
    return View(controls, _interrupt_scenario, explain_irq.summary_text)


# --- 12 · 13 (hostsched, issue 13) ------------------------------------------------------------------------------------

def _runq_waits(ncpus: int) -> dict[str, Any]:
    from .host import hostsched
    from .sim import Environment
    env = Environment(0)
    s = hostsched.HostScheduler(env, ncpus, costs=False)
    hostsched.busy_thread(s, "a", [4_000_000])
    hostsched.busy_thread(s, "b", [4_000_000])
    env.schedule(1_000_000, lambda _x: hostsched.busy_thread(s, "late", [1_000_000]))
    env.run()
    return {"cpus": ncpus, "runq_ns": {name: st["runq_ns"] for name, st in s.stats().items()}}


def host_cpus_view(cpus: int = 3) -> View:
    """A host-CPU slider: two busy host threads and a late one; how long each waited for a CPU."""
    controls = {"ncpus": w.IntSlider(value=cpus, min=1, max=3, description="host CPUs")}
    return View(controls, _runq_waits, lambda r: f"{r['cpus']} host CPUs: runq ns per thread {r['runq_ns']}")


def _edge_level(delivery: str) -> dict[str, Any]:
    from .host.ppc import scenarios as ppc
    return {"delivery": delivery, **ppc.edge_only_loses_and_invents(level_support=delivery == "level+unset")}


def edge_level_view(delivery: str = "level+unset") -> View:
    """A delivery dropdown: a level-triggered device under edge-only or level + unset KVM_INTERRUPT (Book3S)."""
    controls = {"delivery": w.Dropdown(options=["level+unset", "edge only"], value=delivery, description="delivery")}
    return View(controls, _edge_level, lambda r: f"{r['delivery']}: delivered {r['delivered']}, lost "
                                                 f"{r['left_in_device']}, spurious {r['spurious']}")


# --- 11 -------------------------------------------------------------------------------------

def _real_kernel(name: str) -> dict[str, Any]:
    from .explain import real_kernel as rk
    cache = _real_kernel.__dict__.setdefault("cache", {})
    if name not in cache:
        cache[name] = {"name": name, "verdict": rk.verdict_line(name), "chains": rk.chains(name)}
    return cache[name]


def real_kernel_view(name: str = "pv-pages") -> View:
    """A dropdown of the live programs: the stored real run against the model, token by token."""
    from .explain import real_kernel as rk
    names = [n for n in rk.program_names() if n != "msr-table"]
    controls = {"name": w.Dropdown(options=names, value=name, description="program")}

    def render(r: dict[str, Any]) -> str:
        rows = [f"{t:<4} real:  {real}\n     model: {model}" for t, real, model in r["chains"]]
        return r["verdict"] + "\n" + "\n".join(rows)
    return View(controls, _real_kernel, render)
