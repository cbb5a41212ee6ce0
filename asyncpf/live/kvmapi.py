"""The KVM ioctl API in pure Python: ``fcntl.ioctl`` on ``ctypes`` structures, ``mmap`` of the run area.

Only what the live programs need, with the layouts of
``include/uapi/linux/kvm.h`` and ``arch/x86/include/uapi/asm/kvm.h`` (x86_64).
Every fd is closed by :meth:`Vm.close` (also on failure, through ``with``).
``KVM_RUN`` is bounded by an interval timer: a run longer than its bound
raises :class:`RunTimeout` (the SIGALRM handler raises it when ``KVM_RUN``
returns EINTR); so a run must be made from the main thread.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import signal
from contextlib import contextmanager
from typing import Iterator

KVMIO = 0xAE
_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(0, nr, 0)


# --- structures ----------------------------------------------------------------------------------

class UserspaceMemoryRegion(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("guest_phys_addr", ctypes.c_uint64),
                ("memory_size", ctypes.c_uint64), ("userspace_addr", ctypes.c_uint64)]


class Regs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")]


class Segment(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint32), ("selector", ctypes.c_uint16),
                ("type", ctypes.c_uint8), ("present", ctypes.c_uint8), ("dpl", ctypes.c_uint8),
                ("db", ctypes.c_uint8), ("s", ctypes.c_uint8), ("l", ctypes.c_uint8), ("g", ctypes.c_uint8),
                ("avl", ctypes.c_uint8), ("unusable", ctypes.c_uint8), ("padding", ctypes.c_uint8)]


class DTable(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint16), ("padding", ctypes.c_uint16 * 3)]


class Sregs(ctypes.Structure):
    _fields_ = [("cs", Segment), ("ds", Segment), ("es", Segment), ("fs", Segment), ("gs", Segment),
                ("ss", Segment), ("tr", Segment), ("ldt", Segment), ("gdt", DTable), ("idt", DTable),
                ("cr0", ctypes.c_uint64), ("cr2", ctypes.c_uint64), ("cr3", ctypes.c_uint64),
                ("cr4", ctypes.c_uint64), ("cr8", ctypes.c_uint64), ("efer", ctypes.c_uint64),
                ("apic_base", ctypes.c_uint64), ("interrupt_bitmap", ctypes.c_uint64 * 4)]


class MsrEntry(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("reserved", ctypes.c_uint32), ("data", ctypes.c_uint64)]


class MsrsHeader(ctypes.Structure):
    _fields_ = [("nmsrs", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


def _msrs(n: int) -> type:
    class Msrs(ctypes.Structure):
        _fields_ = [("nmsrs", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("entries", MsrEntry * n)]
    return Msrs


class CpuidEntry2(ctypes.Structure):
    _fields_ = [("function", ctypes.c_uint32), ("index", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("eax", ctypes.c_uint32), ("ebx", ctypes.c_uint32), ("ecx", ctypes.c_uint32),
                ("edx", ctypes.c_uint32), ("padding", ctypes.c_uint32 * 3)]


class Cpuid2Header(ctypes.Structure):
    _fields_ = [("nent", ctypes.c_uint32), ("padding", ctypes.c_uint32)]


def _cpuid2(n: int) -> type:
    class Cpuid2(ctypes.Structure):
        _fields_ = [("nent", ctypes.c_uint32), ("padding", ctypes.c_uint32), ("entries", CpuidEntry2 * n)]
    return Cpuid2


class EnableCap(ctypes.Structure):
    _fields_ = [("cap", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("args", ctypes.c_uint64 * 4),
                ("pad", ctypes.c_uint8 * 64)]


KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_GET_SUPPORTED_CPUID = _ioc(_IOC_READ | _IOC_WRITE, 0x05, ctypes.sizeof(Cpuid2Header))
KVM_CREATE_VCPU = _io(0x41)
KVM_SET_USER_MEMORY_REGION = _ioc(_IOC_WRITE, 0x46, ctypes.sizeof(UserspaceMemoryRegion))
KVM_CREATE_IRQCHIP = _io(0x60)
KVM_SET_BOOT_CPU_ID = _io(0x78)
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ioc(_IOC_READ, 0x81, ctypes.sizeof(Regs))
KVM_SET_REGS = _ioc(_IOC_WRITE, 0x82, ctypes.sizeof(Regs))
KVM_GET_SREGS = _ioc(_IOC_READ, 0x83, ctypes.sizeof(Sregs))
KVM_SET_SREGS = _ioc(_IOC_WRITE, 0x84, ctypes.sizeof(Sregs))
KVM_GET_MSRS = _ioc(_IOC_READ | _IOC_WRITE, 0x88, ctypes.sizeof(MsrsHeader))
KVM_SET_MSRS = _ioc(_IOC_WRITE, 0x89, ctypes.sizeof(MsrsHeader))
KVM_SET_CPUID2 = _ioc(_IOC_WRITE, 0x90, ctypes.sizeof(Cpuid2Header))
KVM_ENABLE_CAP = _ioc(_IOC_WRITE, 0xA3, ctypes.sizeof(EnableCap))

KVM_CAP_ENFORCE_PV_FEATURE_CPUID = 190

KVM_EXIT_NAMES = {0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT", 6: "MMIO",
                  7: "IRQ_WINDOW_OPEN", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 10: "INTR", 17: "INTERNAL_ERROR"}
KVM_EXIT_IO = 2
RUN_EXIT_REASON_OFFSET = 8
RUN_IO_OFFSET = 32  # struct kvm_run: the exit union starts at byte 32


class KvmError(OSError):
    """An ioctl the live harness needs failed."""


class RunTimeout(Exception):
    """KVM_RUN did not return within its bound."""


def _ioctl(fd: int, request: int, arg: object = 0, what: str = "") -> int:
    try:
        return fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        if isinstance(exc, InterruptedError):
            raise
        raise KvmError(exc.errno, f"{what or hex(request)}: {os.strerror(exc.errno)}") from None


class Kvm:
    """``/dev/kvm``: the system fd."""

    def __init__(self, path: str = "/dev/kvm"):
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            version = _ioctl(self.fd, KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")
            if version != 12:
                raise KvmError(errno.EINVAL, f"KVM API version {version}, expected 12")
            self.vcpu_mmap_size = _ioctl(self.fd, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE")
        except BaseException:
            os.close(self.fd)
            raise

    def check_extension(self, cap: int) -> int:
        return _ioctl(self.fd, KVM_CHECK_EXTENSION, cap, "KVM_CHECK_EXTENSION")

    def supported_cpuid(self, max_entries: int = 256) -> list[CpuidEntry2]:
        buf = _cpuid2(max_entries)()
        buf.nent = max_entries
        _ioctl(self.fd, KVM_GET_SUPPORTED_CPUID, buf, "KVM_GET_SUPPORTED_CPUID")
        return [CpuidEntry2.from_buffer_copy(buf.entries[i]) for i in range(buf.nent)]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Vm:
    """A VM: ``KVM_CREATE_VM`` and what hangs off it (memory slots, irqchip, vcpus)."""

    def __init__(self, kvm: Kvm):
        self.kvm = kvm
        self.fd = _ioctl(kvm.fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM")
        self.vcpus: list[Vcpu] = []
        self.irqchip = False

    def create_irqchip(self) -> None:
        _ioctl(self.fd, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP")
        self.irqchip = True

    def set_boot_cpu_id(self, vcpu_id: int) -> None:
        """Make ``vcpu_id`` the BSP (before any vcpu exists); other vcpus wait for INIT/SIPI."""
        _ioctl(self.fd, KVM_SET_BOOT_CPU_ID, vcpu_id, "KVM_SET_BOOT_CPU_ID")

    def set_memory(self, slot: int, gpa: int, size: int, host_addr: int) -> None:
        region = UserspaceMemoryRegion(slot, 0, gpa, size, host_addr)
        _ioctl(self.fd, KVM_SET_USER_MEMORY_REGION, region, f"KVM_SET_USER_MEMORY_REGION slot {slot}")

    def create_vcpu(self, vcpu_id: int) -> "Vcpu":
        fd = _ioctl(self.fd, KVM_CREATE_VCPU, vcpu_id, f"KVM_CREATE_VCPU {vcpu_id}")
        vcpu = Vcpu(self, fd, vcpu_id)
        self.vcpus.append(vcpu)
        return vcpu

    def close(self) -> None:
        for vcpu in self.vcpus:
            vcpu.close()
        self.vcpus = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Vcpu:
    """One vcpu fd with its mmapped ``struct kvm_run``."""

    def __init__(self, vm: Vm, fd: int, vcpu_id: int):
        self.vm, self.fd, self.vcpu_id = vm, fd, vcpu_id
        try:
            self.run_area = mmap.mmap(fd, vm.kvm.vcpu_mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise

    # registers
    def get_regs(self) -> Regs:
        regs = Regs()
        _ioctl(self.fd, KVM_GET_REGS, regs, "KVM_GET_REGS")
        return regs

    def set_regs(self, regs: Regs) -> None:
        _ioctl(self.fd, KVM_SET_REGS, regs, "KVM_SET_REGS")

    def get_sregs(self) -> Sregs:
        sregs = Sregs()
        _ioctl(self.fd, KVM_GET_SREGS, sregs, "KVM_GET_SREGS")
        return sregs

    def set_sregs(self, sregs: Sregs) -> None:
        _ioctl(self.fd, KVM_SET_SREGS, sregs, "KVM_SET_SREGS")

    def set_cpuid(self, entries: list[CpuidEntry2]) -> None:
        buf = _cpuid2(len(entries))()
        buf.nent = len(entries)
        for i, e in enumerate(entries):
            buf.entries[i] = e
        _ioctl(self.fd, KVM_SET_CPUID2, buf, "KVM_SET_CPUID2")

    def enable_cap(self, cap: int, arg0: int) -> None:
        ec = EnableCap(cap=cap)
        ec.args[0] = arg0
        _ioctl(self.fd, KVM_ENABLE_CAP, ec, f"KVM_ENABLE_CAP {cap}")

    # MSRs: KVM_SET_MSRS / KVM_GET_MSRS return how many entries were processed (stop at the first refusal)
    def set_msr(self, index: int, data: int) -> bool:
        buf = _msrs(1)()
        buf.nmsrs = 1
        buf.entries[0].index, buf.entries[0].data = index, data
        return _ioctl(self.fd, KVM_SET_MSRS, buf, f"KVM_SET_MSRS {index:#x}") == 1

    def get_msr(self, index: int) -> int | None:
        buf = _msrs(1)()
        buf.nmsrs = 1
        buf.entries[0].index = index
        if _ioctl(self.fd, KVM_GET_MSRS, buf, f"KVM_GET_MSRS {index:#x}") != 1:
            return None
        return buf.entries[0].data

    # running
    def run(self, bound_s: float) -> int:
        """``KVM_RUN`` once, at most ``bound_s`` seconds; the exit reason.  RunTimeout past the bound."""
        with _alarm(bound_s):
            try:
                _ioctl(self.fd, KVM_RUN, 0, "KVM_RUN")
            except InterruptedError:
                pass  # a signal other than ours: report it as an INTR exit
        return int.from_bytes(self.run_area[RUN_EXIT_REASON_OFFSET:RUN_EXIT_REASON_OFFSET + 4], "little")

    def io_exit(self) -> tuple[int, int, int, bytes]:
        """(direction, size, port, data) of a KVM_EXIT_IO."""
        area = self.run_area
        direction, size = area[RUN_IO_OFFSET], area[RUN_IO_OFFSET + 1]
        port = int.from_bytes(area[RUN_IO_OFFSET + 2:RUN_IO_OFFSET + 4], "little")
        count = int.from_bytes(area[RUN_IO_OFFSET + 4:RUN_IO_OFFSET + 8], "little")
        offset = int.from_bytes(area[RUN_IO_OFFSET + 8:RUN_IO_OFFSET + 16], "little")
        return direction, size, port, bytes(area[offset:offset + size * count])

    def close(self) -> None:
        if self.fd >= 0:
            self.run_area.close()
            os.close(self.fd)
            self.fd = -1


def _raise_timeout(signum: int, frame: object) -> None:
    raise RunTimeout("KVM_RUN did not return in time")


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds``: its handler raises RunTimeout, which interrupts KVM_RUN (EINTR)."""
    old = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
