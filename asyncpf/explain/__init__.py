"""Small helpers the notebooks use: text tables, scenario set-ups, summaries -- one module per notebook.

Simulation glue, not kernel twins (no ``kvm_``/``apf_`` names).  Every helper
builds its own seeded machine, returns plain values (ints, strings, dicts)
and prints nothing, so a notebook cell shows short stable text and asserts on
the values.  Page-state set-ups follow ``tests/conftest.py``.

* :mod:`.common` -- text tables, small machines, page states (shared)
* :mod:`.overview` (00), :mod:`.problem` (01), :mod:`.pv_abi` (02), :mod:`.paths` (03),
  :mod:`.work` (04), :mod:`.notifiers` (08): their names are re-exported here,
  so notebooks call ``explain.touch_run(...)``;
* :mod:`.guest` (05), :mod:`.end_to_end` (06), :mod:`.benchmark` (07), :mod:`.checker` (09):
  imported as modules (``from asyncpf.explain import guest as eg``); they boot
  the guest kernel or the checker, so importing this package does not load them.
"""

from .common import (
    G, MiB, apf_machine, enable_apf, enable_value, make_resident, make_swapped, page_state, run_process,
    small_machine, text_table)
from .overview import NOTEBOOKS, VOCABULARY, actors_table, mirror_map, mirrors_by_file, notebook_map, vocabulary
from .problem import MODES, account_table, latency_sweep, one_sync_fault, touch_run
from .pv_abi import EXC_NAMES, MsrGuest, apf_state, area_layout, msr_layout, msr_refusals, msr_write, refusal_table
from .paths import GFN_STATES, gfn_path, gfn_paths_table, path_text, pfn_name
from .work import (
    clear_scenario, colliding_gfns, hash_slots, limit_probe, pv_run, refs, repeated_fault, start_async,
    sync_fallback, work_timeline)
from .notifiers import RACES, NotifierSpy, kvm_view, notifier_race, spy

__all__ = [  # the modules above, in notebook order
    "MiB", "G", "text_table", "small_machine", "make_resident", "make_swapped", "page_state", "run_process",
    "enable_value", "enable_apf", "apf_machine", "NOTEBOOKS", "notebook_map", "mirrors_by_file", "mirror_map",
    "VOCABULARY", "actors_table", "vocabulary", "MODES", "touch_run", "one_sync_fault", "latency_sweep",
    "account_table", "area_layout", "msr_layout", "MsrGuest", "apf_state", "msr_write", "EXC_NAMES",
    "msr_refusals", "refusal_table", "GFN_STATES", "pfn_name", "gfn_path", "path_text", "gfn_paths_table",
    "start_async", "refs", "work_timeline", "pv_run", "sync_fallback", "repeated_fault", "clear_scenario",
    "hash_slots", "colliding_gfns", "limit_probe", "NotifierSpy", "spy", "kvm_view", "RACES", "notifier_race"
]
