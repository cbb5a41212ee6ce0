"""Record the stored captures: ``python -m asyncpf.live.record [PROGRAM...]`` writes data/live/PROGRAM.json.

Run as root on a host with /dev/kvm and tracefs (this project's machines:
Linux 6.18, the PVM backend).  Each file holds the real run's trace, guest
log and read-backs with their provenance (date, ``uname -r``, KVM module,
CPU, command); the tests judge them against the model everywhere.  A program
whose real run does not agree with the model is still written (the capture is
the evidence) and reported.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from . import hostinfo, programs, runner

DATA_LIVE = Path(__file__).resolve().parents[2] / "data" / "live"


def main(argv: list[str]) -> int:
    why = hostinfo.cannot_run()
    if why:
        print(f"asyncpf.live.record: cannot run here: {why}", file=sys.stderr)
        return 2
    try:
        chosen = [programs.get(n) for n in argv] or list(programs.PROGRAMS.values())
    except KeyError as exc:
        print(f"asyncpf.live.record: {exc.args[0]}", file=sys.stderr)
        return 2
    DATA_LIVE.mkdir(parents=True, exist_ok=True)
    status = 0
    for program in chosen:
        cap = runner.capture(program, shlex.join(["python", "-m", "asyncpf.live.record", program.name]))
        verdict = runner.judge(program, cap)["verdict"]
        path = DATA_LIVE / f"{program.name}.json"
        path.write_text(json.dumps(cap, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path.name}: {verdict['verdict']}" + (f" ({verdict['reason']})" if verdict["reason"] else ""))
        status |= verdict["verdict"] in ("disagree", "failed")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
