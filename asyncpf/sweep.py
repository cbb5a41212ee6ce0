"""``bm-sweep``'s grid as Dask tasks: every host run of every point and seed is one independent, seeded task.

A grid is the product of its axes (fault:work mix, swap latency, vcpus,
host CPUs, generation) times the seeds; each point runs bm's three hosts.  A host run
depends on nothing but its parameters, so the numbers are the same whether
the tasks run here one after another, on a ``LocalCluster`` of this machine
or on any Dask cluster (``--scheduler ADDRESS``): only the wall time changes.
Several seeds per point give a mean and a spread (sample standard deviation,
min and max) of each ratio.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import itertools
import logging
import os
import statistics
from typing import Any, Callable, Iterable

from .bm import MODES, BmParams, ratios, run_bm

AXES = ("mix", "swap-latency", "vcpus", "host-cpus", "generation")


def run_host(mode: str, params: BmParams) -> dict[str, Any]:
    """One host run of a point: what a sweep keeps of it (a Dask task; the machine stays in the worker)."""
    r = run_bm(mode, params)
    return {"work": r["work"], "leaks": len(r["leaks"]), "events": r["events"]}


Task = tuple[int, int, str, BmParams]   # (point index, seed index, host, parameters)


def tasks_of(points: list[list[BmParams]]) -> list[Task]:
    """Every host run of every point (its params per seed), in a fixed order."""
    return [(p, s, mode, params) for p, per_seed in enumerate(points) for s, params in enumerate(per_seed)
            for mode in MODES]


def map_serial(fn: Callable[..., Any], calls: list[tuple], done: Callable[[int], None] | None = None) -> list:
    """``fn(*call)`` for every call, in this process, in order."""
    out = []
    for k, call in enumerate(calls):
        out.append(fn(*call))
        if done is not None:
            done(k)
    return out


_BATCHES = itertools.count()


def map_dask(fn: Callable[..., Any], calls: list[tuple], client: Any, name: str,
             done: Callable[[int], None] | None = None) -> list:
    """``fn(*call)`` for every call as one Dask task each on ``client``; results in call order."""
    from dask.distributed import as_completed

    batch = next(_BATCHES)  # a key is never reused: a repeated key would get the earlier batch's result back
    futures = [client.submit(fn, *call, key=f"asyncpf-{name}-{os.getpid()}-{batch}-{k}", pure=False)
               for k, call in enumerate(calls)]
    index = {f.key: k for k, f in enumerate(futures)}
    for future in as_completed(futures):
        if done is not None:
            done(index[future.key])
    return client.gather(futures)


CONNECT_S = 10   # a scheduler that does not answer, or answers as something else, is refused after this


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``; ConnectionError if none answers as one within CONNECT_S.

    The connect timeout of ``Client`` does not cover the handshake: a listener that is not a Dask scheduler (a web
    server, say) can keep it waiting for ever or send what it reads as an absurd frame length.  So the client is
    made on a helper thread that is given up after the bound (it only ever waits on that socket).
    """
    import threading

    from dask.distributed import Client

    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            box["client"] = Client(address, timeout=f"{CONNECT_S}s")
        except Exception as exc:   # any failure to connect is the same answer at the door
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=attempt, name=f"connect {address}", daemon=True)
    thread.start()
    thread.join(CONNECT_S + 5)
    if "client" in box:
        return box["client"]
    raise ConnectionError(box.get("error", f"no Dask handshake within {CONNECT_S} s"))


class Cluster:
    """Where the tasks run: ``"serial"`` (this process), ``"local"`` (a LocalCluster of ``workers`` processes)
    or the address of a running Dask scheduler."""

    def __init__(self, scheduler: str, workers: int | None = None):
        self.scheduler = scheduler
        self.workers = workers or os.cpu_count() or 1
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> "Cluster":
        if self.scheduler == "serial":
            return self
        from dask.distributed import Client, LocalCluster

        if self.scheduler == "local":
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.CRITICAL)
            self.client = Client(self.cluster)
        else:
            self.client = connect(self.scheduler)
        return self

    def run(self, tasks: list[Task], done: Callable[[Task], None] | None = None) -> list[dict]:
        """Every task's host run (run_host), results in task order; ``done(task)`` as each finishes."""
        calls = [(mode, params) for _p, _s, mode, params in tasks]
        return self.map(run_host, calls, "bm", None if done is None else (lambda k: done(tasks[k])))

    def map(self, fn: Callable[..., Any], calls: list[tuple], name: str,
            done: Callable[[int], None] | None = None) -> list:
        """``fn(*call)`` for every call (a module-level function: Dask pickles it by name), results in order."""
        if self.client is None:
            return map_serial(fn, calls, done)
        return map_dask(fn, calls, self.client, name, done)

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def rows_of(labels: list[dict[str, str]], points: list[list[BmParams]], results: Iterable[dict]) -> list[dict]:
    """One row per point: the ratios (mean over seeds), their spread and each seed's numbers."""
    by = {}
    for (p, s, mode, _params), r in zip(tasks_of(points), results):
        by.setdefault(p, {}).setdefault(s, {})[mode] = r
    rows = []
    for p, label in enumerate(labels):
        per_seed = []
        for s, params in enumerate(points[p]):
            runs = by[p][s]
            per_seed.append({"seed": params.seed, "ratios": ratios(runs),
                             "work": {m: runs[m]["work"] for m in MODES},
                             "leaks": sum(runs[m]["leaks"] for m in MODES)})
        rows.append({"point": label, "value": ", ".join(label.values()), **_mean_and_spread(per_seed),
                     "per_seed": per_seed})
    return rows


def _mean_and_spread(per_seed: list[dict]) -> dict:
    ratios, spread, work = {}, {}, {}
    for m in MODES:
        xs = [r["ratios"][m] for r in per_seed if r["ratios"][m] is not None]
        ratios[m] = round(statistics.fmean(xs), 4) if xs else None
        spread[m] = {"sd": round(statistics.stdev(xs), 4) if len(xs) > 1 else 0.0,
                     "min": min(xs, default=None), "max": max(xs, default=None)}
        work[m] = round(statistics.fmean(r["work"][m] for r in per_seed), 6)
    return {"ratios": ratios, "spread": spread, "work": work, "leaks": sum(r["leaks"] for r in per_seed)}


def product(axes: dict[str, list[tuple[str, dict]]]) -> list[tuple[dict[str, str], dict]]:
    """Every combination of the axes' values: (label per axis, BmParams changes)."""
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        out.append(({n: label for n, (label, _) in zip(names, combo)},
                    {k: v for _, changes in combo for k, v in changes.items()}))
    return out
