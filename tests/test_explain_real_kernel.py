"""Notebook 11's helpers: the stored real captures conform, agree with the model, and the MSR table matches."""

from asyncpf.explain import real_kernel as rk
from asyncpf.widgets import real_kernel_view


def test_every_stored_program_conforms_and_agrees():
    names = rk.program_names()
    assert {"halt-path", "pv-pages", "pv-retry", "msr-table"} <= set(names)
    for n in names:
        assert rk.judged(n)["verdict"]["verdict"] == "agree", n
        if n != "msr-table":
            assert rk.conform_verdict(n)["verdict"] == "conforms", n


def test_chains_and_guest_view_are_the_models_too():
    assert all(real == model for _, real, model in rk.chains("pv-retry"))
    assert rk.guest_view("pv-pages", "real", 3) == ["wrmsr INT 0xf3", "wrmsr EN 0xa009", "irq vector=0xf3 token=ALL"]
    assert "PVM backend" in rk.provenance("halt-path") and "kvm_pvm (PVM" not in rk.provenance("halt-path")


def test_msr_table_and_widget():
    t = rk.msr_table()
    from asyncpf.live import msrtable
    hidden = [c for c in msrtable.CONFIGS if "no ASYNC_PF" in c]          # read back through KVM_GET_MSRS: the
    assert {c for c, _ in t["fixed"]} == set(hidden) and len(t["fixed"]) == len(hidden) * len(msrtable.ROWS)  # fix
    assert t["agree"] + len(t["fixed"]) == len(msrtable.ROWS) * len(msrtable.CONFIGS) and not t["mismatches"]
    view = real_kernel_view("pv-pages")
    assert view.text.startswith("pv-pages: agree")
    view.controls["name"].value = "pv-retry"
    assert "repeated_fault" in view.text
