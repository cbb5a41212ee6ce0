"""bm --plot and bm-sweep --plot: what the figures show, and the same bytes for the same run."""

from __future__ import annotations

import pytest

from asyncpf import plots
from asyncpf.__main__ import main
from asyncpf.bm import PUBLISHED

SWEEP = ["--vcpus", "2", "--guest-mem", "64M", "--host-limit", "16M", "--array", "32M", "-t", "0.2", "--jobs", "1"]


def _report(pv: float) -> dict:
    split = {"guest": 0.5, "host": 0.0, "stalled": 0.5, "halted": 0.0, "idle": 0.0}
    runs = {m: {"vcpu_time_s": {"0": dict(split), "1": dict(split)}} for m in ("unpatched", "halt", "pv")}
    runs["pv"]["vcpu_time_s"] = {v: {**split, "guest": 1.0, "stalled": 0.0} for v in ("0", "1")}
    params = {"fault_threads": 2, "work_threads": 2, "duration_ns": 10**9, "vcpus": 2, "guest_mem": 64 << 20,
              "host_limit": 16 << 20, "swap_device": "hdd_7200_2010", "generation": "legacy"}
    return {"params": params, "runs": runs, "ratios": {"unpatched": 1.0, "halt": 1.0, "pv": pv}}


def test_bm_figure_stacks_the_split_to_100_and_puts_the_published_ratios_beside_ours():
    fig = plots.bm_figure(_report(2.0))
    split_ax, ratio_ax = fig.axes
    tops = {}
    for bar in split_ax.patches:
        tops[round(bar.get_x(), 3)] = tops.get(round(bar.get_x(), 3), 0) + bar.get_height()
    assert list(tops.values()) == pytest.approx([100, 100, 100])
    heights = sorted(round(b.get_height(), 3) for b in ratio_ax.patches)
    published = [v for series in PUBLISHED.values() for v in series.values() if v]
    assert heights == sorted([1.0, 1.0, 2.0, 0.0] + published)  # v4 has no halt figure: a zero bar


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_rendering_is_byte_identical(suffix, magic):
    first = plots.render(plots.bm_figure(_report(2.0)), suffix)
    assert first.startswith(magic) and first == plots.render(plots.bm_figure(_report(2.0)), suffix)
    assert first != plots.render(plots.bm_figure(_report(1.5)), suffix)


def test_bm_sweep_plot_draws_a_line_per_host(tmp_path, capsys):
    path = tmp_path / "sweep.png"
    assert main(["bm-sweep", *SWEEP, "--over", "mix", "--values", "1:1,2:2", "--plot", str(path)]) == 0
    assert f"plot written to {path}" in capsys.readouterr().out
    assert path.read_bytes().startswith(b"\x89PNG")
    fig = plots.sweep_figure({"over": "mix", "rows": [{"value": "1:1", "ratios": {"halt": 1.0, "pv": 1.5}},
                                                      {"value": "2:2", "ratios": {"halt": 1.0, "pv": 2.0}}]})
    lines = [ln for ln in fig.axes[0].lines if ln.get_label().endswith("/ unpatched")]
    assert [list(ln.get_ydata()) for ln in lines] == [[1.0, 1.0], [1.5, 2.0]]
