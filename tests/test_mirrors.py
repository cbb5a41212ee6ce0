"""Every kernel twin says what it mirrors and what it leaves out, and keeps the kernel's name."""

import importlib
import inspect

import pytest

from asyncpf.mirrors import MIRRORS, TAGS, load_all, mirror_table

GENERATIONS = set(TAGS) | {"seed, legacy", "guest 2.6.32-38"}

load_all()


def _twin(key):
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(key)


def test_registry_is_populated():
    files = {m.file for m in mirror_table()}
    assert {"virt/kvm/async_pf.c", "virt/kvm/kvm_main.c", "arch/x86/kvm/x86.c", "arch/x86/kvm/mmu.c"} <= files
    assert len(MIRRORS) >= 40


@pytest.mark.parametrize("key", sorted(MIRRORS))
def test_twin_docstring_names_kernel_source_and_simplification(key):
    fn = _twin(key)
    doc = inspect.getdoc(fn) or ""
    mirror = MIRRORS[key]
    assert doc.splitlines()[0].strip(), f"{key}: the first docstring line must state the contract"
    assert "Simplification: none" not in doc, f"{key}: say what is left out, or nothing"
    assert mirror.generations in GENERATIONS, f"{key}: generations {mirror.generations!r} names no modelled tag"


@pytest.mark.parametrize("key", sorted(MIRRORS))
def test_twin_keeps_the_kernel_name(key):
    """Module-level twins carry the kernel's name (the decorator names file and function for grep)."""
    fn = _twin(key)
    mirror = MIRRORS[key]
    if fn.__name__ != mirror.function:
        assert "." in fn.__qualname__ or mirror.function.startswith("__"), f"{key} renames {mirror.function}"
