"""bm-sweep's grid on Dask: the same numbers on a cluster as serially; mean and spread over seeds; the door."""

from __future__ import annotations

import json

import pytest

from asyncpf.__main__ import main
from asyncpf.bm import BmParams
from asyncpf import sweep

TINY = ["--guest-mem", "16M", "--host-limit", "4M", "--array", "8M", "-t", "0.05"]
GRID = ["--grid", "mix=1:1,2:1", "--grid", "generation=legacy,interrupt", "--seeds", "2"]


def _points():
    base = BmParams(guest_mem=16 << 20, host_limit=4 << 20, array=8 << 20, duration_ns=50_000_000)
    return [[base.replace(fault_threads=f, work_threads=1, generation=g, seed=s) for s in (0, 1)]
            for f in (1, 2) for g in ("legacy", "interrupt")]


def test_a_grid_on_a_dask_cluster_gives_the_serial_numbers(cluster):
    tasks = sweep.tasks_of(_points())
    assert len(tasks) == 4 * 2 * 3
    with sweep.Cluster(cluster.scheduler_address) as on_dask, sweep.Cluster("serial") as serial:
        assert on_dask.client is not None and serial.client is None
        assert on_dask.run(tasks) == serial.run(tasks)


def test_the_cli_gives_the_same_json_on_a_cluster_at_an_address_as_serially(cluster, capsys):
    assert main(["bm-sweep", *TINY, *GRID, "--json", "--scheduler", "serial"]) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main(["bm-sweep", *TINY, *GRID, "--json", "--scheduler", cluster.scheduler_address]) == 0
    assert json.loads(capsys.readouterr().out) == serial
    assert serial["over"] == "grid" and serial["seeds"] == [0, 1] and len(serial["rows"]) == 4
    row = serial["rows"][0]
    assert row["point"] == {"mix": "1:1", "generation": "legacy"}
    pv = [s["ratios"]["pv"] for s in row["per_seed"]]
    assert row["ratios"]["pv"] == round(sum(pv) / 2, 4)
    assert row["spread"]["pv"]["min"] == min(pv) and row["spread"]["pv"]["max"] == max(pv)


def test_the_table_shows_mean_and_spread_with_several_seeds(capsys):
    assert main(["bm-sweep", *TINY, "--grid", "vcpus=1,2", "--seeds", "2", "--scheduler", "serial"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "vcpus" and "±" in out[1] and out[-1].startswith("mean over 2 seeds")


def test_host_cpus_is_an_axis_and_fewer_cpus_cost_the_vcpus_time(capsys):
    """Two vcpus on one host CPU wait for it: the unpatched host's work gets less CPU than on two."""
    assert main(["bm-sweep", *TINY, "--vcpus", "2", "--grid", "host-cpus=1,2", "--json", "--scheduler", "serial"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["point"] for r in rows] == [{"host-cpus": "1"}, {"host-cpus": "2"}]
    assert rows[0]["work"]["unpatched"] < rows[1]["work"]["unpatched"]


@pytest.mark.parametrize("args, named", [
    (["--scheduler", "tcp://nowhere"], "--scheduler"),
    (["--scheduler", "localhost:99999"], "--scheduler"),
    (["--grid", "cpus=1,2"], "--grid"),
    (["--grid", "vcpus=1,x"], "--grid vcpus"),
    (["--grid", "generation=2025"], "--grid generation"),
    (["--grid", "mix=1:1", "--grid", "mix=2:2"], "--grid mix"),
    (["--grid", "vcpus=1,2", "--vcpus", "2"], "--vcpus"),
    (["--grid", "host-cpus=0,2"], "--grid host-cpus"),
    (["--grid", "host-cpus=1,2", "--host-cpus", "2"], "--host-cpus"),
    (["--over", "mix"], "--over and --values"),
    ([], "--grid"),
    (["--grid", "vcpus=1", "--seeds", "0"], "--seeds"),
    (["--grid", "vcpus=1,01"], "expected each value once"),                    # one value written twice
    (["--over", "swap-latency", "--values", "8ms,8000us"], "expected each value once"),
    (["--scheduler", "tls://127.0.0.1:8786"], "--scheduler"),                  # needs TLS settings it cannot have
])
def test_bad_grids_are_refused_at_the_door(args, named, capsys, tmp_path):
    plot = tmp_path / "never.png"
    with pytest.raises(SystemExit) as exc:
        main(["bm-sweep", *TINY, *args, "--plot", str(plot)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert not plot.exists()


def test_a_listener_that_is_no_dask_scheduler_is_refused_in_bounded_time(monkeypatch):
    """Client's own timeout covers the connect, not the handshake: a silent listener would hold it for ever."""
    import socket
    monkeypatch.setattr(sweep, "CONNECT_S", 1)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with pytest.raises(ConnectionError, match="no Dask handshake within 1 s"):
            sweep.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")


def test_a_leaking_point_is_named_in_the_text_and_the_exit_status(monkeypatch, capsys):
    real = sweep.run_bm

    def leaky(mode, params, **kw):
        r = real(mode, params, **kw)
        r["leaks"] = r["leaks"] + (["work items: 1 allocated, 0 freed"] if mode == "pv" else [])
        return r

    monkeypatch.setattr(sweep, "run_bm", leaky)
    assert main(["bm-sweep", *TINY, "--over", "mix", "--values", "1:1,2:1", "--scheduler", "serial"]) == 1
    out = capsys.readouterr().out
    assert "LEAKS after VM destroy (lines per point): 1:1 (1); 2:1 (1)" in out
