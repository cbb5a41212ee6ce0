"""A private ftrace instance for one live run: created, armed, read and removed by the run.

``/sys/kernel/tracing/instances/asyncpf-<pid>`` (mkdir creates a ring buffer
of its own, so the global buffer and other users' instances are untouched);
instances left by a run of ours that died (the prefix, a pid that no longer
exists) are swept first.  The events are the async PF ones and their
neighbours (:data:`EVENTS`); each event's ``format`` file is read at run time
and kept with the capture.  :class:`Instance` is a context manager: the
instance is disabled and removed even when the run fails.
"""

from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")
PREFIX = "asyncpf-"
EVENTS = ("kvm_try_async_get_page", "kvm_async_pf_not_present", "kvm_async_pf_ready", "kvm_async_pf_completed",
          "kvm_async_pf_repeated_fault", "kvm_apic_accept_irq", "kvm_inj_exception", "kvm_msr", "kvm_eoi")
BUFFER_KB = 4096


class TraceError(RuntimeError):
    """tracefs is missing or refused us."""


def available(root: Path = TRACEFS) -> str | None:
    """None if a private instance can be made here, else why not."""
    if not (root / "instances").is_dir():
        return f"tracefs is not mounted at {root}"
    missing = [e for e in EVENTS if not (root / "events" / "kvm" / e).is_dir()]
    if missing:
        return f"the kernel has no kvm trace events {missing}"
    if not os.access(root / "instances", os.W_OK):
        return f"{root}/instances is not writable (not root?)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(root: Path = TRACEFS) -> list[str]:
    """Remove instances named ``asyncpf-<pid>`` whose process is gone; their names."""
    removed = []
    for d in sorted((root / "instances").glob(PREFIX + "*")):
        m = re.fullmatch(PREFIX + r"(\d+)", d.name)
        if m and not _alive(int(m.group(1))):
            try:
                d.rmdir()
                removed.append(d.name)
            except OSError:
                pass
    return removed


class Instance:
    """One private instance with :data:`EVENTS` enabled."""

    def __init__(self, root: Path = TRACEFS, events: tuple[str, ...] = EVENTS):
        self.root = root
        self.events = events
        self.path = root / "instances" / f"{PREFIX}{os.getpid()}"
        self.formats: dict[str, str] = {}

    def __enter__(self) -> "Instance":
        why = available(self.root)
        if why:
            raise TraceError(why)
        sweep(self.root)
        try:
            self.path.mkdir()
        except FileExistsError:  # our own pid: a previous run in this process did not finish
            self._remove()
            self.path.mkdir()
        try:
            self._write("tracing_on", "0")
            self._write("buffer_size_kb", str(BUFFER_KB))
            for name in self.events:
                self.formats[name] = (self.root / "events" / "kvm" / name / "format").read_text()
                self._write(f"events/kvm/{name}/enable", "1")
            self._write("trace", "")
        except BaseException:
            self._remove()
            raise
        return self

    def _write(self, rel: str, value: str) -> None:
        try:
            (self.path / rel).write_text(value)
        except OSError as exc:
            raise TraceError(f"{self.path / rel}: {os.strerror(exc.errno or errno.EIO)}") from None

    def start(self) -> None:
        self._write("tracing_on", "1")

    def stop(self) -> None:
        self._write("tracing_on", "0")

    def text(self) -> str:
        return (self.path / "trace").read_text()

    def _remove(self) -> None:
        if not self.path.exists():
            return
        for name in self.events:
            try:
                (self.path / "events" / "kvm" / name / "enable").write_text("0")
            except OSError:
                pass
        try:
            (self.path / "tracing_on").write_text("0")
        except OSError:
            pass
        for _ in range(50):  # rmdir is refused (EBUSY) while a reader holds the buffer
            try:
                self.path.rmdir()
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self._remove()
