"""One validate/replace for the settings dataclasses (asyncpf/validated.py): HostConfig's refusals by name."""

from __future__ import annotations

import pytest

from asyncpf.bm import BmParams
from asyncpf.machine import MAX_GUEST_MEM, HostConfig

MiB = 1 << 20


@pytest.mark.parametrize("change, message", [
    (dict(generation="bogus"), "bogus"),
    (dict(vcpus=0), "vcpus=0: expected a positive integer"),
    (dict(vcpus=True), "vcpus=True: expected a positive integer"),
    (dict(vcpus=65), "vcpus=65: expected at most 64"),
    (dict(guest_mem=4 * MiB + 1), "guest_mem=4194305: expected a multiple of the 4096-byte page size"),
    (dict(guest_mem=MAX_GUEST_MEM + 4096), r"expected at most 137438953472 bytes \(128 GiB\)"),
    (dict(host_limit=-4096), "host_limit=-4096: expected a positive integer"),
    (dict(reclaim="fifo"), "reclaim='fifo': expected 'clock' or 'lru'"),
    (dict(workers=0), "workers=0: expected None or a positive integer"),
    (dict(mmio_pages=-1), "mmio_pages=-1: expected zero or a positive integer"),
    (dict(swap_latency_ns=2.5), r"swap_latency_ns=2.5: expected None or a positive integer"),
    (dict(costs="1999"), "unknown cost era '1999'"),
    (dict(seed="0"), "seed='0': expected an integer"),
    (dict(swap_device="floppy"), "floppy"),
    (dict(swap_latency_ns=1000), "mean_read_ns 1000 must exceed"),
])
def test_host_config_refuses_bad_values_by_name(change, message):
    config = HostConfig().replace(**change)
    with pytest.raises(ValueError, match=message):
        config.validate()


@pytest.mark.parametrize("name, edge, past", [
    ("vcpus", 64, 65),
    ("guest_mem", MAX_GUEST_MEM, MAX_GUEST_MEM + 4096),
    ("host_limit", 4096, 0),
    ("workers", 1, 0),
    ("mmio_pages", 0, -1),
    ("seed", -3, 1.0),
])
def test_host_config_accepts_up_to_the_edge(name, edge, past):
    HostConfig().replace(**{name: edge}).validate()
    with pytest.raises(ValueError, match=f"{name}={past!r}: expected"):
        HostConfig().replace(**{name: past}).validate()


@pytest.mark.parametrize("cls", [HostConfig, BmParams])
def test_replace_copies_with_changes_and_refuses_unknown_fields(cls):
    base = cls()
    changed = base.replace(seed=7)
    assert changed.seed == 7 and base.seed == 0 and changed.replace(seed=0) == base
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} fields \['bogus', 'zz'\]"):
        base.replace(zz=1, bogus=2)


def test_bm_params_check_their_host_too():
    with pytest.raises(ValueError, match="vcpus=65: expected at most 64"):
        BmParams(vcpus=65).validate()
