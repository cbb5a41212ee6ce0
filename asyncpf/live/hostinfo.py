"""What the live results were measured on, and whether this host can run them.

Every live run and stored capture records the kernel release (``uname -r``),
the loaded KVM backend module and the CPU.  This project's machines run the
**PVM** backend (``kvm_pvm``: pagetable-based, shadow paging, guest CPL0 code
largely emulated), not ``kvm_intel``/``kvm_amd``; results say so wherever
they are shown (:func:`backend_label`).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import tracefs

BACKENDS = {"kvm_pvm": "PVM backend", "kvm_intel": "VMX backend", "kvm_amd": "SVM backend"}


def kvm_module(sys_module: Path = Path("/sys/module")) -> str | None:
    """The loaded KVM backend module (kvm_pvm, kvm_intel, kvm_amd), or None."""
    for name in BACKENDS:
        if (sys_module / name).is_dir():
            return name
    return None


def backend_label(module: str | None) -> str:
    return f"{BACKENDS.get(module or '', 'unknown backend')} ({module or 'no kvm module'})"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def describe() -> dict[str, str | None]:
    module = kvm_module()
    return {"uname_r": os.uname().release, "kvm_module": module, "backend": backend_label(module), "cpu": cpu_model()}


def cannot_run(kvm: str = "/dev/kvm") -> str | None:
    """None if live programs can run here (root, /dev/kvm, tracefs); else the reason."""
    if os.geteuid() != 0:
        return "not root (a private tracefs instance needs root)"
    if not os.path.exists(kvm):
        return f"{kvm} does not exist"
    if not os.access(kvm, os.R_OK | os.W_OK):
        return f"{kvm} is not readable and writable"
    return tracefs.available()
