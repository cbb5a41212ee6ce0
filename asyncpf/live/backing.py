"""File-backed guest memory the host must read back from disk: the way to make real KVM take async PFs.

A memslot backed by a file mapped ``MAP_SHARED``, written with real blocks
and dropped from the page cache with ``posix_fadvise(POSIX_FADV_DONTNEED)``,
turns a guest touch into a major fault that ``FOLL_NOWAIT`` refuses to wait
for: ``kvm_try_async_get_page``, then an async PF.  One file per slot of at
most 256 MiB (the page cache stops reading around after about 100 misses on
one file), touches 4 MiB apart (read-around is 8 MiB), data starting 16 MiB
into the file (large folios can keep the first pages resident); residency is
checked with ``mincore``.  Files live in a private temporary folder on a
disk-backed filesystem (never tmpfs: its pages cannot be evicted) and are
removed by :meth:`Backing.close`, also on failure.  Nothing machine-wide is
changed: no ``drop_caches``, no swap, no ``read_ahead_kb``.

Simulation glue, not a kernel twin.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import shutil
import tempfile
from dataclasses import dataclass, field

MiB = 1 << 20
SLOT_MAX = 256 * MiB
LEAD = 16 * MiB                 # file bytes before the first touched page
TMPFS_MAGIC = 0x01021994
RAMFS_MAGIC = 0x858458F6
CANDIDATE_DIRS = ("/var/tmp", "/tmp")
PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]


class BackingError(RuntimeError):
    """The host cannot provide evictable file-backed memory here."""


def fs_magic(path: str) -> int:
    """``statfs(path).f_type``."""
    buf = (ctypes.c_long * 32)()
    if _libc.statfs(path.encode(), buf) != 0:
        err = ctypes.get_errno()
        raise BackingError(f"statfs {path}: {os.strerror(err)}")
    return buf[0] & 0xFFFFFFFF


def disk_dir() -> str:
    """A writable folder on a disk-backed filesystem (TMPDIR first, then /var/tmp, /tmp)."""
    for d in (os.environ.get("TMPDIR"), *CANDIDATE_DIRS):
        if d and os.path.isdir(d) and os.access(d, os.W_OK) and fs_magic(d) not in (TMPFS_MAGIC, RAMFS_MAGIC):
            return d
    raise BackingError(f"no disk-backed temporary folder among {CANDIDATE_DIRS} (tmpfs pages cannot be evicted)")


def address_of(mm: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(mm))


@dataclass
class Slot:
    """One file-backed memslot: ``size`` bytes at ``gpa``, mapped at ``host_addr``."""

    gpa: int
    size: int
    path: str
    fd: int
    mm: mmap.mmap
    host_addr: int

    def resident(self, offsets: list[int]) -> list[bool]:
        """``mincore`` of the pages at these byte offsets of the slot."""
        vec = (ctypes.c_ubyte * (self.size // PAGE))()
        if _libc.mincore(ctypes.c_void_p(self.host_addr), self.size, vec) != 0:
            raise BackingError(f"mincore: {os.strerror(ctypes.get_errno())}")
        return [bool(vec[o // PAGE] & 1) for o in offsets]

    def evict(self) -> None:
        os.fdatasync(self.fd)
        os.posix_fadvise(self.fd, 0, self.size, os.POSIX_FADV_DONTNEED)


@dataclass
class Backing:
    """The temporary folder and the slots in it; a context manager that removes everything."""

    folder: str = ""
    slots: list[Slot] = field(default_factory=list)

    def __enter__(self) -> "Backing":
        self.folder = tempfile.mkdtemp(prefix="asyncpf-live-", dir=disk_dir())
        return self

    def add_slot(self, gpa: int, size: int) -> Slot:
        """A slot file of ``size`` bytes (a multiple of 2 MiB, at most 256 MiB) written with real blocks."""
        if size % (2 * MiB) or not 0 < size <= SLOT_MAX:
            raise ValueError(f"slot size {size}: expected a multiple of 2 MiB up to {SLOT_MAX >> 20} MiB")
        path = os.path.join(self.folder, f"slot{len(self.slots)}.img")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            chunk = bytes(range(256)) * (MiB // 256)   # not zeros: no filesystem can store it as a hole
            for _ in range(size // MiB):
                os.write(fd, chunk)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        slot = Slot(gpa, size, path, fd, mm, address_of(mm))
        self.slots.append(slot)
        return slot

    def close(self) -> None:
        for slot in self.slots:
            try:
                slot.mm.close()
            except BufferError:
                pass  # still exported to ctypes: the mapping goes with the process
            os.close(slot.fd)
        self.slots = []
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = ""

    def __exit__(self, *exc: object) -> None:
        self.close()


def data_slot_size(count: int, stride: int) -> int:
    """Bytes of the one data slot for ``count`` touches ``stride`` apart after the lead (a multiple of 2 MiB)."""
    size = LEAD + max(count, 1) * stride
    size += -size % (2 * MiB)
    if size > SLOT_MAX:
        raise ValueError(f"{count} touches {stride >> 20} MiB apart need {size >> 20} MiB; one slot holds "
                         f"{SLOT_MAX >> 20} MiB (at most {(SLOT_MAX - LEAD) // stride} touches)")
    return size
