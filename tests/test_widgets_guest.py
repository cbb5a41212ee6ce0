"""Widget views of notebooks 05-07: driven from code, as the notebooks assert them."""

from asyncpf import widgets


def test_guest_step_view():
    v = widgets.guest_step_view()
    assert v.result["step"] == 0
    v.next.click()
    assert v.result["step"] == 1
    v.controls["step"].value = 40
    assert v.result["last"]
    v.controls["scenario"].value = "halt_in_kernel_section"
    assert v.result["step"] == 0 and "halt_in_kernel_section" in v.text


def test_timeline_view():
    v = widgets.timeline_view("pv")
    assert v.result["not_present"] == v.result["answered"] > 0
    pv_png = v.png
    assert pv_png.startswith(b"\x89PNG") and v.image in v.widget.children
    v.controls["host"].value = "unpatched"
    assert v.result["not_present"] == 0 and v.text.startswith("unpatched")
    assert v.png.startswith(b"\x89PNG") and v.png != pv_png  # the picture is redrawn
    v.controls["host"].value = "pv"
    assert v.png == pv_png  # and the same run draws the same bytes


def test_bm_view_text_changes():
    v = widgets.bm_view()
    before = v.out.value
    v.controls["fault_threads"].value = 2
    assert v.out.value != before and v.result["fault_threads"] == 2
