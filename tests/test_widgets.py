"""asyncpf.widgets: set each control's value in code and check .result and the shown text."""

from asyncpf import explain, widgets


def test_stall_view():
    v = widgets.stall_view()
    assert v.result["mode"] == "unpatched" and v.result["stalled"] > 0
    v.controls["latency_us"].value = 1000
    slow = v.result["stalled"]
    assert slow > 0 and f"stalled {slow / 1e6:.2f} ms" in v.text
    v.controls["mode"].value = "pv"
    assert v.result["stalled"] == 0 and v.out.value.startswith("<pre>")


def test_abi_view():
    v = widgets.abi_view()
    assert v.result["msr"] == 0x4B564D02 and "KVM_ASYNC_PF_SEND_ALWAYS" in v.text
    v.controls["generation"].value = "seed"
    assert v.result["cpuid_bit"] == 3 and v.result["area_size"] == 8


def test_gfn_path_view():
    v = widgets.gfn_path_view()
    assert v.result["async"] and "fault_pfn" in v.text
    v.controls["state"].value = "error"
    assert v.result["pfn"] == "bad_pfn" and v.result["fault"] == "emulate"
    assert v.text == explain.path_text(v.result)


def test_limit_view():
    v = widgets.limit_view()
    v.controls["n"].value = 65
    assert v.result["sync"] == 1 and "1 synchronous" in v.text


def test_race_view():
    v = widgets.race_view()
    v.controls["race"].value = "reclaim_other"
    assert v.result["fault"] == "retry" and "page RESIDENT" in v.text


def test_views_are_displayable():
    v = widgets.race_view()
    bundle = v._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_interrupt_scenario_view():
    v = widgets.interrupt_scenario_view()
    assert v.result["ok"] and v.result["irqs_243"] == 3 and "vec 243" in v.text
    v.controls["name"].value = "kernel_mode_fault_halts_without_page_ready"
    assert v.result["ok"] and v.result["irqs_243"] == 1          # only the boot wake-all
    assert "PASS  no #PF injected at CPL0" in v.text
