"""Every kernel twin says what it mirrors and what it leaves out, and keeps the kernel's name."""

import importlib
import inspect

import pytest

from asyncpf.mirrors import MIRRORS, load_all, mirror_table

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
    assert "Mirrors:" in doc, f"{key}: no 'Mirrors:' line"
    assert mirror.file in doc, f"{key}: docstring does not name {mirror.file}"
    assert "Simplification:" in doc, f"{key}: no 'Simplification:' paragraph"


@pytest.mark.parametrize("key", sorted(MIRRORS))
def test_twin_keeps_the_kernel_name(key):
    """Module-level twins carry the kernel's name; a method (or a name Python would mangle)
    must at least name its kernel function in the Mirrors line, so grep finds it."""
    fn = _twin(key)
    mirror = MIRRORS[key]
    mirrors_line = next(line for line in inspect.getdoc(fn).splitlines() if "Mirrors:" in line)
    if fn.__name__ != mirror.function:
        is_method = "." in fn.__qualname__
        assert is_method or mirror.function.startswith("__"), f"{key} renames {mirror.function}"
    assert mirror.function in inspect.getdoc(fn), f"{key}: docstring does not name {mirror.function}"
    assert mirror.file in mirrors_line, f"{key}: the Mirrors line does not name {mirror.file}"
