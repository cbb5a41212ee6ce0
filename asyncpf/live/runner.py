"""One live program from end to end: capture it on real KVM (or load a stored capture), run it on the model, judge.

A *capture* is what the real run produced, as a JSON-able dict with its
provenance (date, ``uname -r``, KVM module, CPU, command); stored captures
live in ``data/live/<program>.json`` (:mod:`asyncpf.live.record` writes
them) and are judged the same way as fresh ones, so the comparison logic is
tested everywhere.  :func:`judge` returns the result the ``live`` command
prints: the real and model observations, the generation the model ran and
why, and a verdict (agree, disagree, pending, failed).
"""

from __future__ import annotations

import datetime
import shlex
import sys
from dataclasses import asdict
from typing import Any

from ..datafiles import data_path
from . import compare, hostinfo, msrtable, observe, realrun, realtrace
from .layout import EXIT_CODES, GuestParams, LogRecord
from .modelrun import run_model
from .programs import Program, model_generation
from .realrun import VmConfig

CAPTURE_FORMAT = 1

# The hosts the model runs a program on, in order, until one agrees.  Which of two racing host threads
# goes first is timing, not compared: a kworker that has not got a CPU when the guest disables async PF
# has its item cancelled by cancel_work_sync (kvm_clear_async_pf_completion_queue, virt/kvm/async_pf.c@v6.18)
# and the page is faulted again; on a loaded host the real run can take that branch.
MODEL_HOSTS = (
    (None, ""),
    (1, "the real kworker had not got a CPU before the guest's next exit (a loaded host): compared with the "
        "model on one host CPU shared by the vcpu thread and its bound kworker"),
)


def provenance(command: str | None = None) -> dict[str, Any]:
    info = hostinfo.describe()
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    info["command"] = command or shlex.join(["python", "-m", "asyncpf", *sys.argv[1:]])
    return info


def capture(program: Program, command: str | None = None) -> dict[str, Any]:
    """Run ``program`` on this host's /dev/kvm; the capture (LiveError etc. if the run cannot be done)."""
    out: dict[str, Any] = {"format": CAPTURE_FORMAT, "program": program.name, "provenance": provenance(command),
                           "vm": asdict(program.vm)}
    if program.params is None:
        out["table"] = msrtable.run_real()
        out["vmm_table"] = msrtable.run_real_vmm()
        return out
    run = realrun.run_vm(program.vm, program.params)
    out.update(params=asdict(program.params), exit_code=run.exit_code, exits=run.exits,
               resident_before=run.resident_before, seconds=round(run.seconds, 3),
               log=[r.to_json() for r in run.log], trace=run.trace, formats=run.formats)
    return out


def stored(program: Program) -> dict[str, Any] | None:
    """The capture stored in data/live for ``program``, or None."""
    import json
    try:
        path = data_path(f"live/{program.name}.json")
    except FileNotFoundError:
        return None
    with path.open(encoding="utf-8") as fh:
        cap = json.load(fh)
    if cap.get("format") != CAPTURE_FORMAT or cap.get("program") != program.name:
        raise ValueError(f"data/live/{program.name}.json is not a format-{CAPTURE_FORMAT} capture of {program.name}")
    return cap


def judge(program: Program, cap: dict[str, Any]) -> dict[str, Any]:
    """Hold ``cap`` against the model; a JSON-able result with the verdict."""
    generation, why = model_generation(program)
    result: dict[str, Any] = {"program": program.name, "summary": program.summary,
                              "provenance": cap["provenance"], "model_generation": generation, "model_why": why}
    if program.params is None:
        return _judge_table(result, cap, generation, why)
    params = GuestParams(**cap["params"])
    cfg = VmConfig(**cap["vm"])
    log = [LogRecord(*r) for r in cap["log"]]
    real_touches = {params.base + i * params.stride: i for i in range(params.count)}
    real_obs = observe.observe(realtrace.parse(cap["trace"]), log, vcpu_id=cfg.vcpu_id, touches=real_touches)
    result["real"] = {"exit_code": cap["exit_code"], "resident_before": cap["resident_before"],
                      "seconds": cap["seconds"], "observation": real_obs.to_json()}
    failed = []
    if cap["exit_code"] != 0:
        failed.append(f"the real guest stopped with code {cap['exit_code']:#x} "
                      f"({EXIT_CODES.get(cap['exit_code'], 'not one guest.S uses')})")
    if cap["resident_before"]:
        failed.append(f"{cap['resident_before']} touched pages were still in the page cache when the run started")
    if failed:
        result["verdict"] = compare.Verdict("failed", reason="; ".join(failed)).to_json()
        return result
    if generation is None:
        result["verdict"] = compare.Verdict("pending", reason=why).to_json()
        return result
    runs = []
    for host_cpus, why_host in MODEL_HOSTS:
        try:
            runs.append(_model_verdict(generation, cfg, params, real_obs, host_cpus, why_host))
        except AssertionError as exc:  # the model did something guest.S would have stopped on
            result["verdict"] = compare.Verdict("disagree", [f"the model's guest stopped: {exc}"]).to_json()
            return result
        if runs[-1][2].verdict == "agree":
            break
    model, model_obs, verdict, host_cpus = runs[-1] if runs[-1][2].verdict == "agree" else runs[0]
    result["model"] = {"leaks": model.leaks, "observation": model_obs.to_json(), "host_cpus": host_cpus}
    result["verdict"] = verdict.to_json()
    result["_traces"] = {"real": cap["trace"], "model": model.trace}
    return result


def _model_verdict(generation: str, cfg: VmConfig, params: GuestParams, real_obs: observe.Observation,
                   host_cpus: int | None, why_host: str) -> tuple[Any, observe.Observation, compare.Verdict, int | None]:
    """The program on the model with ``host_cpus``, and the verdict of the real observation against it."""
    model = run_model(generation, cfg, params, host_cpus=host_cpus)
    model_obs = observe.observe(observe.from_model(model.events, generation), model.log, vcpu_id=cfg.vcpu_id,
                                touches=_model_touches(params, model))
    verdict = compare.compare(real_obs, model_obs, generation)
    if model.leaks:
        verdict.mismatches.append(f"the model leaked after VM destroy: {model.leaks}")
        verdict.verdict = "disagree"
    if why_host and verdict.verdict == "agree":
        verdict.relaxed.append(why_host)
    return model, model_obs, verdict, host_cpus


def _model_touches(params: GuestParams, model: Any) -> dict[int, int]:
    """Touch index by address: the real run's gvas and the model's frames alike."""
    touches = {}
    for i in range(params.count):
        touches[params.base + i * params.stride] = i
        touches[model.gpas[i]] = i
    return touches


def _judge_table(result: dict, cap: dict, generation: str | None, why: str) -> dict:
    result["real"] = {"table": cap["table"], "vmm_table": cap.get("vmm_table")}
    if generation is None:
        result["verdict"] = compare.Verdict("pending", reason=why).to_json()
        return result
    try:
        model = msrtable.run_model(generation)
        model_vmm = msrtable.run_model_vmm(generation) if cap.get("vmm_table") else None
    except AssertionError as exc:
        result["verdict"] = compare.Verdict("disagree", [f"the model's guest stopped: {exc}"]).to_json()
        return result
    result["model"] = {"table": model, "vmm_table": model_vmm}
    # the model is v6.18; a kernel carrying 5bb9ac186512 differs in the rows the fix names, and only there
    tables = [("guest writes", "", cap["table"], model, False)]
    if model_vmm is not None:
        tables.append(("VMM writes", "VMM write ", cap["vmm_table"], model_vmm, True))
    mismatches, reasons, fixed = [], [], 0
    for what, prefix, real, modelled, vmm_writes in tables:
        t = msrtable.judge(real, modelled, vmm_writes)
        mismatches += [prefix + m for m in t.mismatches]
        reasons.append(f"{what}: {t.agree} of {t.rows} rows agree"
                       + (f", {len(t.fixed)} more differ only as 5bb9ac186512 makes them" if t.fixed else ""))
        fixed += len(t.fixed)
    reason = "; ".join(reasons)
    if fixed:
        reason += " (5bb9ac186512 came after v6.18, which the model follows; the running kernel carries it)"
    verdict = compare.Verdict("disagree" if mismatches else "agree", mismatches, reason=reason)
    result["verdict"] = verdict.to_json()
    return result
