"""The swap device model and the data files it is read from."""

import json

import pytest

from asyncpf.datafiles import data_path, load_json
from asyncpf.host.swap import SwapDevice, device_names
from asyncpf.sim import Environment


def fixed(read_ns=1000, transfer_ns=10, qd=1):
    """A device whose service time is constant: read_ns positioning + transfer per page."""
    part = {"positioning_ns": [{"uniform_ns": [read_ns, read_ns]}], "transfer_ns_per_page": transfer_ns}
    return {"name": "fixed", "queue_depth": qd, "read": part, "write": part}


def completions(env, dev, requests):
    done = []
    for tag, op, n in requests:
        dev.submit(op, n, lambda tag=tag: done.append((tag, env.now)))
    env.run()
    return done


def test_data_files_exist_and_parse():
    assert data_path("swap_devices.json").is_file()
    devices = load_json("swap_devices.json")["devices"]
    assert {"hdd_7200_2010", "sata_ssd_2010", "nvme_gen4", "optane_p5800x"} <= set(devices)
    for name, spec in devices.items():
        assert spec["sources"] and spec["description"], name
        SwapDevice(Environment(), name)  # every shipped model parses
    assert "UNCONFIRMED" in devices["sata_ssd_2010"]["status"]
    with pytest.raises(FileNotFoundError, match="no-such.json"):
        load_json("no-such.json")
    with pytest.raises(ValueError, match=r"\.\."):
        data_path("../pyproject.toml")


def test_default_device_means():
    env = Environment()
    hdd = SwapDevice(env)
    assert hdd.name == "hdd_7200_2010" and hdd.queue_depth == 1
    assert hdd.mean_service_ns("read") == pytest.approx(4_165_000 + 4_000_000 + 41_000)
    # a batch write is one positioning plus n transfers
    assert hdd.mean_service_ns("write", 32) - hdd.mean_service_ns("write", 1) == pytest.approx(31 * 41_000)
    assert SwapDevice(env, "nvme_gen4").mean_service_ns("read") == pytest.approx(49_600)
    assert SwapDevice(env, "optane_p5800x").mean_service_ns("read") == pytest.approx(13_400)
    assert SwapDevice(env, "sata_ssd_2010").mean_service_ns("read") == pytest.approx(75_000)
    assert device_names()[0] == load_json("swap_devices.json")["default"] == hdd.name


def test_fifo_with_queue_depth_one():
    env = Environment()
    dev = SwapDevice(env, fixed())
    done = completions(env, dev, [("a", "read", 1), ("b", "write", 3), ("c", "read", 1)])
    assert done == [("a", 1010), ("b", 1010 + 1030), ("c", 1010 + 1030 + 1010)]
    s = dev.stats
    assert (s["reads"], s["writes"], s["pages_read"], s["pages_written"]) == (2, 1, 2, 3)
    assert s["busy_ns"] == 3050 and s["max_queue"] == 2 and s["in_flight"] == 0


def test_queue_depth_two_serves_two_at_once():
    env = Environment()
    dev = SwapDevice(env, fixed(qd=2))
    done = completions(env, dev, [("a", "read", 1), ("b", "read", 1), ("c", "read", 1)])
    assert done == [("a", 1010), ("b", 1010), ("c", 2020)]
    assert dev.stats["max_queue"] == 1


def test_sampled_mean_matches_analytic_mean():
    env = Environment(seed=3)
    dev = SwapDevice(env)
    n = 4000
    completions(env, dev, [(k, "read", 1) for k in range(n)])
    assert env.now / n == pytest.approx(dev.mean_service_ns("read"), rel=0.02)
    assert dev.stats["busy_ns"] == env.now  # queue depth 1, never idle


def test_mean_read_ns_scales_positioning():
    env = Environment(seed=4)
    dev = SwapDevice(env, mean_read_ns=1_000_000)
    assert dev.mean_service_ns("read") == pytest.approx(1_000_000)
    # writes position like reads: 1 ms - 41 us positioning + 8 transfers
    assert dev.mean_service_ns("write", 8) == pytest.approx(1_000_000 - 41_000 + 8 * 41_000)
    n = 4000
    completions(env, dev, [(k, "read", 1) for k in range(n)])
    assert env.now / n == pytest.approx(1_000_000, rel=0.02)


def test_same_seed_same_times_other_seed_differs():
    def times(seed):
        env = Environment(seed=seed)
        return [t for _, t in completions(env, SwapDevice(env, "nvme_gen4"), [(k, "read", 1) for k in range(50)])]

    assert times(7) == times(7)
    assert times(7) != times(8)


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "floppy"}, "floppy"),
    ({"mean_read_ns": 41_000}, "41000"),
    ({"mean_read_ns": -5}, "-5"),
    ({"model": {**fixed(), "queue_depth": 0}}, "queue_depth"),
    ({"model": {**fixed(), "read": {"positioning_ns": [{"uniform_ns": [5, 1]}],
                                    "transfer_ns_per_page": 1}}}, r"\[5.0, 1.0\]"),
])
def test_bad_device_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SwapDevice(Environment(), **kwargs)


def test_bad_requests_change_nothing():
    env = Environment()
    dev = SwapDevice(env, fixed())
    before = json.dumps(dev.stats)
    for op, n, cb in [("erase", 1, print), ("read", 0, print), ("read", -2, print), ("write", 1, None)]:
        with pytest.raises(ValueError, match=repr(op) if op == "erase" else "npages|on_done"):
            dev.submit(op, n, cb)
    assert json.dumps(dev.stats) == before and env.peek() is None
