"""asyncpf.explain.checker: the deterministic tables and probes behind notebook 09."""

from asyncpf.explain import checker as ec
from asyncpf.check.explore import explore, fast_configs
from asyncpf.check.models import CONFIGS
from asyncpf.check.invariants import REGISTRY
from asyncpf.check.mutants import MUTANTS


def test_registry_tables_cover_the_issue():
    names = [r[0] for r in ec.registry_rows()]
    assert names == list(REGISTRY) and [r[0] for r in ec.source_rows()] == names
    assert {r[1] for r in ec.registry_rows()} <= {"per step", "per event", "at quiescence"}
    assert all(ok for _, _, ok in ec.issue_coverage()) and len(ec.issue_coverage()) == 10
    assert all(len(src) <= 48 for _, src in ec.source_rows())
    assert ec.short_source("a" * 60 + "; b", 10) == "a" * 9 + "…" and ec.short_source("x; y") == "x"


def test_counts_are_deterministic_and_timeless():
    c = ec.counts(explore("one_task", stop_at_first=False))
    assert c == ec.counts(explore("one_task", stop_at_first=False))
    assert "seconds" not in c and c["violations"] == [] and c["complete"]
    assert " s " not in ec.counts_text(c) and ec.counts_text(c).endswith("-- clean")


def test_choice_points_of_a_fifo_run():
    points = ec.choice_points("one_task")
    assert points and all(taken == 0 for _, taken, _ in points)
    assert [k for k, _, _ in points] == list(range(len(points))) and all(" | " in due for _, _, due in points)


def test_counterexample_replays():
    cx = ec.counterexample("worker_uses_freed_work")
    assert cx["choices"] and any(cx["choices"]) and cx["fifo_violations"] == []
    assert cx["replayed"] == cx["violations"] and cx["violations"][0][0] == "no_use_after_free"
    tail = ec.trace_tail(cx["trace"])
    assert "kvm_async_pf_not_present" in tail[0] and not any(ln.lstrip().startswith("#") for ln in tail)
    rows = ec.trace_rows(tail)
    assert [r[2] for r in rows].index("kvm_async_pf_ready") < [r[2] for r in rows].index("kvm_async_pf_completed")


def test_trace_helpers_on_plain_text():
    text = "# tracer: nop\n   qemu-kvm-1000  [000]     0.000301: kvm_exit: reason HLT rip 0x0\n"
    assert ec.trace_tail(text) == [text.splitlines()[1]]           # no not-present: the whole body
    assert ec.trace_rows(ec.trace_tail(text)) == [("301", "qemu-kvm-1000", "kvm_exit", "reason HLT rip 0x0")]


def test_kill_rows_and_probe():
    rows = ec.kill_rows()
    assert [r[0] for r in rows] == list(MUTANTS) and all(r[2] == "caught" for r in rows)
    p = ec.mutant_probe("hash_delete_no_shift")
    assert p["caught"] and p["invariant"] == "hash_iff_outstanding" and p["config"] == "hash_chain"
    assert "caught by hash_iff_outstanding" in ec.probe_text(p)


def test_correct_model_rows_mark_the_known_behaviour():
    fake = [{"config": "a", "generation": "legacy", "schedules": 2, "pruned": 1, "distinct_states": 2, "violations": [], "unexpected": []},
            {"config": "kernel_touch", "generation": "legacy", "schedules": 1, "pruned": 0, "distinct_states": 1,
             "violations": ["ready_only_after_not_present"], "unexpected": []},
            {"config": "b", "generation": "seed", "schedules": 1, "pruned": 0, "distinct_states": 1,
             "violations": ["x"], "unexpected": ["x"]}]
    rows = ec.correct_rows(fake)
    assert [r[5] for r in rows] == ["clean", "known: ready_only_after_not_present", "VIOLATED: x"]
    assert [r[1] for r in rows] == ["legacy", "legacy", "seed"]
    assert ec.KNOWN_GENERATION_BEHAVIOUR["kernel_touch"] == {"ready_only_after_not_present"}
    assert ec.KNOWN_GENERATION_BEHAVIOUR["seed_msr_disable"] == {"ready_only_after_not_present"}


def test_generation_tables():
    rows = ec.config_rows()
    assert [r[0] for r in rows] == list(CONFIGS) and {r[1] for r in rows} == {"legacy", "seed", "interrupt"}
    assert [r[0] for r in ec.config_rows(fast_only=True)] == [c.name for c in fast_configs()]
    limited = ec.generation_rows()
    merged = {"queued_counts_outstanding", "queue_within_limit", "hash_iff_outstanding", "gfn_outstanding_once",
              "no_ready_after_broadcast", "limit_refuses_only_at_limit",
              "no_registration_with_no_kvmapf"}
    merged |= {"no_sync_stall_on_outstanding_gfn", "repeated_fault_halts_before_entry"}   # the gfn hash's fault path
    merged |= {"page_ready_after_prefault", "tokens_follow_the_counter"}
    merged |= {"apf_events_traced", "not_present_told_or_halted", "completion_taken_when_possible"}
    # (their tracepoints, the APF halt, the run loop's completion check)
    only_2638 = {"kernel_fault_halts_only_unpreemptible_guest"}
    seed_only = {"seed_faults_go_async"}
    two_of_three = {"completion_traced_with_its_page": "seed, legacy", "no_block_with_exception_queued": "seed, interrupt"}
    assert merged | only_2638 | seed_only < {r[0] for r in limited}
    assert all(r[1] == "legacy, interrupt" and "seed" in r[2] for r in limited if r[0] in merged)
    assert all(r[1] == "legacy" and "seed" in r[2] for r in limited if r[0] in only_2638)
    assert all(r[1] == "seed" and r[2] for r in limited if r[0] in seed_only)
    assert all(r[1] == two_of_three[r[0]] and r[2] for r in limited if r[0] in two_of_three)
    assert all(r[1] == "interrupt" for r in limited if r[0] not in merged | only_2638 | seed_only | set(two_of_three))
    known = ec.known_rows()
    assert ("ready_only_after_not_present", "seed", "seed_msr_disable, seed_vcpu_reset") in [r[:3] for r in known]


def test_apf_rows_show_each_generation_s_abi():
    seed, legacy = ec.apf_rows("seed_one_task"), ec.apf_rows("one_task")
    assert seed[0][2:] == ("kvm_msr", "msr_write 13 = 0x10001")
    assert legacy[0][2:] == ("kvm_msr", "msr_write 4b564d02 = 0x10003")
    assert [r[2] for r in seed[1:]] == ["kvm_send_async_pf", "kvm_async_pf_completed", "kvm_send_async_pf"]
    assert all(int(r[0]) >= 200 for r in ec.apf_rows("seed_vcpu_reset", since_ns=200_000))
