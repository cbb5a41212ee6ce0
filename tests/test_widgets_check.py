"""asyncpf.widgets.check_view: set the mutant in code and check .result and the shown text."""

from asyncpf import widgets
from asyncpf.check.mutants import MUTANTS


def test_check_view():
    v = widgets.check_view()
    assert list(v.controls["mutant"].options) == list(MUTANTS)
    assert v.result["mutant"] == "hash_delete_no_shift" and v.result["caught"] and v.result["choices"] == []
    v.controls["mutant"].value = "worker_uses_freed_work"
    assert v.result["caught"] and v.result["invariant"] == "no_use_after_free" and v.result["choice_count"] == 7
    assert "caught by no_use_after_free" in v.text and "[0, 0, 0, 0, 1, 0, 1]" in v.text
    v.controls["mutant"].value = "cpl0_without_send_always"
    assert v.result["baseline"] == ["ready_only_after_not_present"] and v.out.value.startswith("<pre>")
