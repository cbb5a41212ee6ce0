"""asyncpf.explain.interrupt_era: the helpers notebook 10 calls return what the notebook says."""

from asyncpf import abi
from asyncpf.explain import interrupt_era as ie


def test_the_2020_reasons_cite_public_sources():
    assert len(ie.REASONS_2020) == 4
    assert all("Msg-Id" in src or "commit" in src for _, src in ie.REASONS_2020)
    assert ie.reasons_table().startswith("1. ")


def test_the_handshake_chain_chart_and_picture():
    r = ie.run_scenario("ack_handshake")
    chain = ie.handshake_events(r)
    assert [e.name for e in chain] == [name for name, _ in ie.STEPS]
    f = [ie.fields(e) for e in chain]
    assert f[0]["token"] == f[3]["token"] and f[4]["vec"] == abi.HYPERVISOR_CALLBACK_VECTOR
    chart = ie.sequence_chart(chain).splitlines()
    assert len(chart) == 2 + 6 and "o------->" in chart[2] and "<-------o" in chart[3]
    assert ie.arrow(0, 0) == "  *       :       :" and ie.arrow(2, 1) == "  :       <-------o"
    assert len(ie.trace_text(chain).splitlines()) == 6
    import matplotlib
    matplotlib.use("Agg")
    ax = ie.plot_sequence(chain)
    assert len(ax.texts) == 3 + 6 + 5          # lane names, labels, the five arrows (annotations)


def test_run_scenario_refuses_another_generation():
    import pytest
    with pytest.raises(ValueError, match="legacy scenario"):
        ie.run_scenario("wake_before_wait")


def test_legacy_guest_beside_a_new_one():
    new, old = ie.legacy_vs_pv()
    assert new["ok"] and old["ok"] and old["pf_injected"] == old["page_ready_irqs"] == 0 and old["apf_halts"] > 0
    assert "2.6.38-style" in ie.legacy_table([new, old])
