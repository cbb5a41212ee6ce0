"""A swap device: a FIFO request queue in front of a random service-time model.

The device is hardware, not kernel code, so nothing here carries ``@mirrors``.
Models live in ``data/swap_devices.json`` (schema and sources in
``data/README.md``).  A request of ``n`` pages costs one *positioning* (the sum
of the model's uniform components: rotation + seek on a disk, the flash/media
access on an SSD) plus ``n`` page *transfers*: reclaim writes a batch to one
contiguous swap cluster, so a batch is one sequential IO.

Simplification: up to ``queue_depth`` requests are in service at once and each
takes its own independent service time (no bandwidth sharing, no reordering by
the device, no readahead); every random draw comes from ``env.rng(stream)`` at
the moment a request enters service, so a run is reproducible.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from asyncpf.datafiles import load_json
from asyncpf.sim import Environment

DEVICES_FILE = "swap_devices.json"
OPS = ("read", "write")


@dataclass(frozen=True)
class ServiceModel:
    """Service time of one request: sum of uniform positioning parts + npages transfers."""

    positioning_ns: tuple[tuple[float, float], ...]  # (low, high) of each uniform component
    transfer_ns_per_page: float

    @property
    def mean_positioning_ns(self) -> float:
        return sum((lo + hi) / 2 for lo, hi in self.positioning_ns)

    def mean_ns(self, npages: int) -> float:
        return self.mean_positioning_ns + npages * self.transfer_ns_per_page

    def scaled(self, factor: float) -> "ServiceModel":
        """The same model with every positioning component multiplied by ``factor``."""
        parts = tuple((lo * factor, hi * factor) for lo, hi in self.positioning_ns)
        return ServiceModel(parts, self.transfer_ns_per_page)

    def draw(self, rng: Any, npages: int) -> int:
        total = npages * self.transfer_ns_per_page
        for lo, hi in self.positioning_ns:
            total += rng.uniform(lo, hi)
        return int(total + 0.5)


def device_names() -> list[str]:
    """The device models shipped in ``data/swap_devices.json``, in file order."""
    return list(load_json(DEVICES_FILE)["devices"])


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{what} is {value!r}; expected a number >= 0")
    return float(value)


def _parse_service(spec: Any, what: str) -> ServiceModel:
    if not isinstance(spec, dict):
        raise ValueError(f"{what} is {spec!r}; expected an object with positioning_ns and transfer_ns_per_page")
    parts = spec.get("positioning_ns")
    if not isinstance(parts, list):
        raise ValueError(f"{what}.positioning_ns is {parts!r}; expected a list of {{'uniform_ns': [low, high]}}")
    bounds = []
    for k, part in enumerate(parts):
        pair = part.get("uniform_ns") if isinstance(part, dict) else None
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{what}.positioning_ns[{k}] is {part!r}; expected {{'uniform_ns': [low, high]}}")
        lo = _number(pair[0], f"{what}.positioning_ns[{k}] low")
        hi = _number(pair[1], f"{what}.positioning_ns[{k}] high")
        if hi < lo:
            raise ValueError(f"{what}.positioning_ns[{k}] is [{lo}, {hi}]; expected low <= high")
        bounds.append((lo, hi))
    transfer = _number(spec.get("transfer_ns_per_page"), f"{what}.transfer_ns_per_page")
    return ServiceModel(tuple(bounds), transfer)


def _resolve(model: str | dict) -> tuple[str, dict]:
    if isinstance(model, dict):
        return str(model.get("name", "custom")), model
    devices = load_json(DEVICES_FILE)["devices"]
    if model not in devices:
        raise ValueError(f"unknown swap device {model!r}; expected one of {', '.join(devices)}")
    return model, devices[model]


class SwapDevice:
    """A swap device: FIFO queue, ``queue_depth`` requests in service, random service times."""

    def __init__(self, env: Environment, model: str | dict = "hdd_7200_2010", *,
                 mean_read_ns: int | None = None, stream: str = "swap"):
        name, spec = _resolve(model)
        depth = spec.get("queue_depth")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"swap device {name!r}: queue_depth is {depth!r}; expected an int >= 1")
        read = _parse_service(spec.get("read"), f"swap device {name!r} read")
        write = _parse_service(spec.get("write"), f"swap device {name!r} write")
        if mean_read_ns is not None:
            factor = self._scale_factor(name, read, mean_read_ns)
            # the whole device gets slower or faster: writes position like reads
            read, write = read.scaled(factor), write.scaled(factor)
        self.env = env
        self.name = name
        self.description = str(spec.get("description", ""))
        self.queue_depth = depth
        self.models = {"read": read, "write": write}
        self._rng = env.rng(stream)
        self._queue: deque[tuple[str, int, Callable[[], None]]] = deque()
        self._in_service = 0
        # in_flight = submitted and not completed; max_queue = most requests waiting (not in service)
        self.stats = {"reads": 0, "writes": 0, "pages_read": 0, "pages_written": 0,
                      "busy_ns": 0, "max_queue": 0, "in_flight": 0}

    @staticmethod
    def _scale_factor(name: str, read: ServiceModel, mean_read_ns: Any) -> float:
        if isinstance(mean_read_ns, bool) or not isinstance(mean_read_ns, int):
            raise ValueError(f"mean_read_ns is {mean_read_ns!r}; expected an int (ns)")
        if mean_read_ns <= read.transfer_ns_per_page:
            raise ValueError(
                f"mean_read_ns {mean_read_ns} must exceed the 4 KiB transfer time "
                f"{read.transfer_ns_per_page:g} ns of swap device {name!r}")
        if read.mean_positioning_ns == 0:
            raise ValueError(f"swap device {name!r} has no positioning time to scale to mean_read_ns {mean_read_ns}")
        return (mean_read_ns - read.transfer_ns_per_page) / read.mean_positioning_ns

    def mean_service_ns(self, op: str, npages: int = 1) -> float:
        """Analytic mean service time of one request (queueing excluded)."""
        self._check_request(op, npages)
        return self.models[op].mean_ns(npages)

    def submit(self, op: str, npages: int, on_done: Callable[[], None]) -> None:
        """Queue a request; ``on_done()`` is called (from the engine) when it completes."""
        self._check_request(op, npages)
        if not callable(on_done):
            raise ValueError(f"on_done is {on_done!r}; expected a callable")
        stats = self.stats
        if op == "read":
            stats["reads"] += 1
            stats["pages_read"] += npages
        else:
            stats["writes"] += 1
            stats["pages_written"] += npages
        stats["in_flight"] += 1
        self._queue.append((op, npages, on_done))
        self._start()
        stats["max_queue"] = max(stats["max_queue"], len(self._queue))

    def _check_request(self, op: str, npages: int) -> None:
        if op not in OPS:
            raise ValueError(f"swap op {op!r}; expected 'read' or 'write'")
        if isinstance(npages, bool) or not isinstance(npages, int) or npages < 1:
            raise ValueError(f"npages is {npages!r}; expected an int >= 1")

    def _start(self) -> None:
        """Move queued requests into service while the device has free slots."""
        while self._queue and self._in_service < self.queue_depth:
            op, npages, on_done = self._queue.popleft()
            service = self.models[op].draw(self._rng, npages)
            self._in_service += 1
            self.stats["busy_ns"] += service
            self.env.schedule(service, self._complete, (op, npages, on_done))

    def _complete(self, request: tuple[str, int, Callable[[], None]]) -> None:
        op, npages, on_done = request
        self._in_service -= 1
        self.stats["in_flight"] -= 1
        self._start()  # the next request enters service before the caller reacts
        on_done()

    def __repr__(self) -> str:
        return f"<SwapDevice {self.name} qd={self.queue_depth} in_flight={self.stats['in_flight']}>"
