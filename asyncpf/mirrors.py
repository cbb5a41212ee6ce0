"""The spec <-> kernel map: every kernel twin is registered with ``@mirrors``.

A twin keeps the kernel's name so a reader can grep the kernel for it; the
decorator names the kernel file, function and the generations (each a tagged
tree, :data:`TAGS`) it follows.  Its docstring says the contract (first line)
and, under ``Simplification:``, what the twin leaves out (locks, RCU, real page
tables...); it does not retell the kernel body -- the comparison with the
released tree is recorded in ``asyncpf.fidelity``.  ``tests/test_mirrors.py``
holds every registered twin to that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Mirror:
    python: str        # module.qualname of the twin
    file: str          # kernel source file
    function: str      # kernel function (same name as the twin unless noted)
    generations: str   # which protocol generations it follows


MIRRORS: dict[str, Mirror] = {}

# The trees a generation's twins were compared with.
TAGS = {
    "seed": "v2 async PF series, 2009-11-23 (patch 08/12: Message-Id 1258985167-29178-9-git-send-email-gleb@redhat.com)",
    "legacy": "v2.6.38 (gfn_to_pfn_async as enabled in v2.6.39 by 0857b9e95c1a)",
    "unpatched": "v2.6.38 without CONFIG_KVM_ASYNC_PF (the v2.6.37 shape of the same functions)",
    "interrupt": "v6.18 (arch/x86/kvm/x86.c, virt/kvm/async_pf.c, arch/x86/kernel/kvm.c compared with the v6.18.2 "
                 "stable release, which lacks the later 5bb9ac186512 as v6.18 does)",
}

# Historical and modern names of the same kernel function, for grepping any tree.
ALIASES: dict[str, tuple[str, ...]] = {
    "gfn_to_pfn_async": ("__gfn_to_pfn(.., &async)", "__gfn_to_pfn_memslot(.., &async)", "kvm_faultin_pfn",
                         "__kvm_faultin_pfn"),
    "try_async_pf": ("kvm_faultin_pfn", "__kvm_mmu_faultin_pfn"),
    "get_user_pages_noio": ("get_user_pages(FOLL_NOWAIT)",),
    "kvm_async_pf_task_wait": ("kvm_async_pf_task_wait_schedule",),
    "kvm_read_and_reset_pf_reason": ("kvm_read_and_reset_apf_flags",),
    "kvm_async_pf_doublefault": ("kvm_async_pf_repeated_fault",),
    "kvm_handle_bad_page": ("kvm_handle_error_pfn",),
    "kvm_mmu_faultin_pfn": ("__kvm_mmu_faultin_pfn",),
    "kvm_arch_can_inject_async_page_present": ("kvm_arch_can_dequeue_async_page_present",),
    "mmu_notifier_seq": ("mmu_invalidate_seq",),
    "mmu_notifier_count": ("mmu_invalidate_in_progress",),
}


def mirrors(file: str, function: str | None = None, *, generations: str = "seed, legacy") -> Callable[[F], F]:
    """Register the decorated function as the twin of ``file:function``."""

    def register(fn: F) -> F:
        key = f"{fn.__module__}.{fn.__qualname__}"
        MIRRORS[key] = Mirror(key, file, function or fn.__name__, generations)
        fn.__mirrors__ = MIRRORS[key]  # type: ignore[attr-defined]
        return fn

    return register


def load_all() -> None:
    """Import every module of the package, so every twin is registered."""
    import importlib
    import pkgutil

    import asyncpf

    for mod in pkgutil.walk_packages(asyncpf.__path__, "asyncpf."):
        if not mod.name.endswith(".__main__"):  # entry points run when imported
            importlib.import_module(mod.name)


def mirror_table() -> list[Mirror]:
    """Every twin of the package, sorted by kernel file then function."""
    load_all()
    return sorted(MIRRORS.values(), key=lambda m: (m.file, m.function, m.python))
