"""Pictures of ``bm`` and ``bm-sweep`` results (matplotlib, no pyplot: no display needed, nothing global).

Files are byte-identical for identical results: no date in SVG, fixed SVG ids,
no software tag in PNG.  matplotlib is imported only when a figure is drawn: it
is most of the command line's start-up time (about 0.7 s of 1.2 s) and most
commands draw nothing.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .bm import MODES, PUBLISHED

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SPLIT = {"guest": "running guest code", "stalled": "stalled in a host fault", "halted": "APF halt",
         "idle": "guest idle (HLT)", "host": "in KVM (exit handling)"}
COLOURS = {"guest": "#4c72b0", "stalled": "#c44e52", "halted": "#dd8452", "idle": "#bbbbbb", "host": "#8172b3"}
SUFFIXES = (".png", ".svg")


def time_split(run: dict, keys: tuple[str, ...] | None = None) -> dict[str, float]:
    """Mean per-vcpu time split of one host, in % of the run (``keys``: also "runq" when host CPUs are modelled)."""
    splits = run["vcpu_time_s"].values()
    total = sum(sum(s.values()) for s in splits) or 1
    return {k: 100 * sum(s.get(k, 0) for s in splits) / total for k in (keys or SPLIT)}


def bm_figure(report: dict) -> Figure:
    """Left: each host's per-vcpu time split as stacked bars.  Right: its work ratio beside the published ones."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), layout="constrained")
    split_ax, ratio_ax = fig.subplots(1, 2, width_ratios=(1, 1.15))
    hosts = list(report["runs"])
    bottom = [0.0] * len(hosts)
    for key, label in SPLIT.items():
        values = [time_split(report["runs"][h])[key] for h in hosts]
        split_ax.bar(hosts, values, bottom=bottom, color=COLOURS[key], label=label, width=0.6)
        bottom = [b + v for b, v in zip(bottom, values)]
    split_ax.set_ylabel("% of each vcpu's time (mean)")
    split_ax.set_ylim(0, 100)
    split_ax.set_title("where the vcpus' time went")
    split_ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    series = {"this model": report["ratios"], **PUBLISHED}
    width = 0.8 / len(series)
    for i, (name, ratios) in enumerate(series.items()):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(hosts))]
        ys = [ratios.get(h) or 0.0 for h in hosts]
        bars = ratio_ax.bar(xs, ys, width=width * 0.95, label=name, color=f"C{i}" if i else "black")
        ratio_ax.bar_label(bars, labels=[f"{y:.2f}" if y else "n/a" for y in ys], fontsize=6, padding=1)
    ratio_ax.set_xticks(range(len(hosts)), hosts)
    ratio_ax.set_ylabel("work threads' CPU time / unpatched")
    ratio_ax.set_title("bm's score: model and published")
    ratio_ax.legend(fontsize=7, loc="upper left", frameon=False)
    ratio_ax.set_ylim(0, 1.12 * max([2.3] + [v for r in series.values() for v in r.values() if v]))
    p = report["params"]
    fig.suptitle(f"bm -f {p['fault_threads']} -w {p['work_threads']} -t {p['duration_ns'] / 1e9:g}: "
                 f"{p['vcpus']} vcpus, {p['guest_mem'] >> 20} MiB guest in a {p['host_limit'] >> 20} MiB cgroup, "
                 f"swap {p['swap_device']}, {p['generation']} generation", fontsize=9)
    return fig


def sweep_figure(result: dict) -> Figure:
    """The halt and PV ratios against the swept value, with the published v7 figures as dashed lines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    labels = [row["value"] for row in result["rows"]]
    seeds = len(result.get("seeds", [0]))
    for i, host in enumerate(h for h in MODES if h != "unpatched"):
        ys = [row["ratios"][host] for row in result["rows"]]
        ax.plot(labels, ys, marker="o", color=f"C{i}", label=f"{host} / unpatched"
                + (f" (mean of {seeds} seeds, bars: sd)" if seeds > 1 else ""))
        if seeds > 1:
            ax.errorbar(labels, ys, yerr=[row["spread"][host]["sd"] for row in result["rows"]], fmt="none",
                        ecolor=f"C{i}", capsize=3, linewidth=0.8)
        ax.axhline(PUBLISHED["v7 (10 runs)"][host], color=f"C{i}", linestyle="--", linewidth=0.8,
                   label=f"{host}: published v7 at 4:4, 2010 disk")
    ax.set_xlabel({"mix": "fault:work threads", "swap-latency": "mean swap read", "vcpus": "vcpus", "host-cpus": "host CPUs",
                   "generation": "generation"}.get(result["over"], ", ".join(result.get("grid", {}))))
    if len(labels) > 6:
        ax.tick_params(axis="x", labelrotation=60, labelsize=6)
    ax.set_ylabel("work threads' CPU time / unpatched")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(f"bm-sweep over {result['over']}", fontsize=9)
    return fig


def render(fig: Figure, suffix: str) -> bytes:
    """The figure as PNG or SVG bytes, the same bytes every time."""
    import matplotlib

    fmt = suffix.lower().lstrip(".")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "asyncpf", "svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=120, metadata={"Date": None} if fmt == "svg" else {"Software": None})
    return buf.getvalue()
