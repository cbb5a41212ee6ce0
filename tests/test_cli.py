"""The door: every subcommand refuses malformed arguments cleanly, before doing anything.

A refusal is exit status 2 and one line on stderr naming the option -- no
traceback, nothing on stdout, no file written.  The property test drives every
subcommand with generated malformed values, one option at a time, on top of a
tiny valid command line (so a value wrongly accepted would run, and fail the
test, quickly).  Relations between options have their own cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpf.__main__ import build_parser, main
from asyncpf.check.explore import CONFIGS
from asyncpf.host.swap import device_names
from asyncpf.scenarios import SCENARIOS

NO_DIGITS = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=12)
SPECIAL = st.sampled_from(["inf", "-inf", "nan", "1e30", "1e3", "", " ", "0x10", "1.5.5", "--", "1/2"])


def ints(lo: int, hi: int):
    outside = st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)).map(str)
    return st.one_of(outside, NO_DIGITS, SPECIAL, st.floats(0.1, 1e6).filter(lambda x: x != int(x)).map(repr))


def sizes(lo: int, hi: int, multiple: int = 4096):
    mib = 1 << 20
    outside = st.one_of(st.integers(0, lo // mib - 1).map(lambda n: f"{n}M") if lo >= mib else st.just("0"),
                        st.integers(hi // mib + 1, 10**9).map(lambda n: f"{n}M"))
    ragged = st.integers(lo // multiple + 1, hi // multiple - 1).flatmap(
        lambda k: st.integers(1, multiple - 1).map(lambda r: str(k * multiple + r)))
    return st.one_of(outside, ragged, NO_DIGITS, SPECIAL, st.sampled_from(["-2G", "2X", "2GG", "1.5K", "G"]))


def times(lo_text: str, hi_text: str):
    return st.one_of(NO_DIGITS, SPECIAL, st.sampled_from(["0", "-1", "-0.5s", "5h", "5 min", "3m", lo_text, hi_text]))


def not_in(choices):
    return st.one_of(NO_DIGITS, st.text(max_size=12)).filter(lambda t: t not in choices and not t.startswith("-"))


def files(suffix: str | None):
    """Output files no run may write: in a missing folder, a folder, empty, or (if the option wants one) the wrong suffix."""
    return st.sampled_from(["/nonexistent/dir/out" + (suffix or ""), ".", ""] + (["out.wrong"] if suffix else [])
                           + ([] if suffix else ["/dev/null"]))   # a device: writing would replace it


BM = {"--vcpus": ints(1, 64), "--guest-mem": sizes(8 << 20, 128 << 30), "--host-limit": sizes(1 << 20, 128 << 30),
      "--fault-threads": ints(0, 1024), "--work-threads": ints(1, 1024), "--duration": times("9ms", "86401"),
      "--array": sizes(4096, 128 << 30), "--swap-device": not_in(device_names()),
      "--swap-latency": times("0.5us", "11s"), "--generation": not_in(["seed", "legacy"]),
      "--seed": ints(0, 2**63 - 1), "--jobs": ints(1, 3)}
TINY_BM = ["--vcpus", "1", "--guest-mem", "16M", "--host-limit", "4M", "--array", "8M", "-t", "0.05", "--jobs", "1"]
SPECS = {
    "bm": (TINY_BM + ["-f", "1", "-w", "1"],
           {**BM, "--trace": files(None), "--perfetto": files(".json"), "--plot": files(".png")}),
    "bm-sweep": (TINY_BM + ["--over", "mix", "--values", "1:1"],
                 {**{k: v for k, v in BM.items() if k not in ("--fault-threads", "--work-threads")},
                  "--jobs": ints(1, 256), "--seeds": ints(1, 64),
                  "--over": not_in(["mix", "swap-latency", "vcpus", "generation"]), "--plot": files(".svg"),
                  "--scheduler": st.sampled_from(["", "locale", "tcp://", "tcp://host", "host:0", "host:70000",
                                                  "http://host:8786", "tcp://a b:1"]),
                  "--grid": st.sampled_from(["", "=", "mix", "cpus=1", "vcpus=", "vcpus=0", "vcpus=65",
                                             "generation=2.6.38", "swap-latency=0us"]),
                  "--values": st.sampled_from(["", ",", "1:1,", ",1:1", "1:0", "0:0", "x", "1:x", "1:2:3", "1;1",
                                               "1:1,1:1", "1:1025", ",".join(["1:1"] * 33), "-1:2"])}),
    "scenario": (["wake_before_wait"], {"NAME": not_in(SCENARIOS), "--seed": ints(0, 2**63 - 1),
                                        "--generation": not_in(["seed", "legacy", "interrupt"]),
                                        "--trace-lines": ints(0, 100_000), "--trace": files(None),
                                        "--perfetto": files(".json")}),
    "check": (["--config", "one_task", "--max-seconds", "1", "--mutants", "--methods", "explorer"],
              {"--config": not_in(CONFIGS), "--methods": not_in(["explorer", "stateful", "scenario"]),
               "--max-seconds": st.one_of(NO_DIGITS, st.sampled_from(["0", "0.05", "-1", "3601", "1e9", "inf", "nan",
                                                                     "", "0x10", "1,5"]))}),
    "demo": (["--vcpus", "1", "--scripts", "1", "--steps", "1"],
             {"--vcpus": ints(1, 64), "--scripts": ints(1, 1000), "--steps": ints(1, 100_000),
              "--compute-ms": ints(1, 60_000), "--seed": ints(0, 2**63 - 1), "--trace-lines": ints(0, 100_000),
              "--generation": not_in(["seed", "legacy"])}),
    "live": (["--stored", "--program", "pv-wakeall"],
             {"--program": not_in(["halt-path", "halt-path-vcpu3", "pv-wakeall", "pv-pages", "pv-pages-xapic", "pv-retry", "pv-disable",
                                   "msr-table"]),
              "--keep-trace": st.sampled_from(["/nonexistent/dir", "", " ", "no-such-folder"])}),
    "conform": ([str(Path(__file__).resolve().parents[1] / "data" / "traces" / "pv-int-6.18.txt")],
                {"NAME": st.sampled_from(["no-such-trace.txt", "/", "", "/dev/zero"]),
                 "--generation": not_in(["seed", "legacy", "interrupt"])}),
    "bench-engine": (["--events", "100", "--repeat", "1"],
                     {"--events": ints(1, 10**7), "--entities": ints(1, 10**6), "--repeat": ints(1, 10),
                      "--seed": ints(0, 2**63 - 1)}),
    "bench-explore": (["--config", "one_task", "--forks", "1"],
                      {"--config": not_in(CONFIGS), "--forks": ints(1, 1000),
                       "--max-seconds": st.sampled_from(["0", "0.05", "-1", "3601", "inf", "nan", "", "x"])}),
}


def with_option(base: list[str], option: str, value: str) -> list[str]:
    """``base`` with ``option`` set to ``value`` (replaced where base has it, by any of its spellings)."""
    if option == "NAME":
        return [value, *base[1:]]
    spellings = {option, {"--fault-threads": "-f", "--work-threads": "-w", "--duration": "-t",
                          "--array": "-m"}.get(option, option)}
    argv = list(base)
    for i, arg in enumerate(argv):
        if arg in spellings:
            argv[i + 1] = value
            return argv
    return argv + [f"{option}={value}"]  # '=' keeps a value such as '-x' a value


def refused(argv: list[str]) -> str:
    """Run the command line in an empty folder; assert a clean refusal that writes nothing; return stderr."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main(argv)
        assert os.listdir(folder) == [], argv
    text = err.getvalue()
    assert exc.value.code == 2, (argv, text)
    assert out.getvalue() == "" and "Traceback" not in text, argv
    assert text.endswith("\n") and text.count("\n") == 1, (argv, text)
    assert text.startswith(f"asyncpf {argv[0]}: error: "), text
    return text


@pytest.mark.parametrize("command", SPECS)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_every_malformed_value_is_refused_at_the_door(command, data):
    base, options = SPECS[command]
    option = data.draw(st.sampled_from(sorted(options)), label="option")
    value = data.draw(options[option], label="value")
    text = refused([command, *with_option(base, option, value)])
    assert option in text or (option == "NAME" and value in text), text


@pytest.mark.parametrize("command", SPECS)
@pytest.mark.parametrize("extra, named", [(["--no-such-option"], "--no-such-option"), (["stray", "words"], "words"),
                                          (["--seed"], "--seed")])
def test_unknown_options_stray_words_and_missing_values_are_refused(command, extra, named):
    base = SPECS[command][0]
    if command == "check" and extra == ["--seed"]:
        extra, named = ["--max-seconds"], "--max-seconds"  # check has no seed
    if command == "conform" and extra == ["stray", "words"]:
        named = "stray"  # words are TRACE files to conform: the first one that is not a file is named
    assert named in refused([command, *base, *extra])


@pytest.mark.parametrize("argv, named", [
    (["bm", *TINY_BM, "--host-limit", "32M"], "--host-limit 32M"),
    (["bm", *TINY_BM, "--array", "14M"], "-m/--array 14M"),
    (["bm", *TINY_BM, "--swap-device", "sata_ssd_2010", "--swap-latency", "10us"], "--swap-latency 10us"),
    (["bm", "-t", "86400"], "-t/--duration 86400s"),
    (["bm", "--host-limit", "2G", "-t", "600"], "-t/--duration 600s"),
    (["bm", *TINY_BM, "--trace", "same.json", "--perfetto", "same.json"], "--perfetto 'same.json'"),
    (["bm-sweep", *TINY_BM, "--over", "mix", "-f", "2", "--values", "1:1"], "-f/--fault-threads"),
    (["bm-sweep", *TINY_BM, "--over", "swap-latency", "--swap-latency", "1ms", "--values", "2ms"], "--swap-latency"),
    (["bm-sweep", *TINY_BM, "--over", "mix", "--values", "1:1,1:1"], "--values 1:1,1:1"),
    (["bm-sweep", "--over", "swap-latency", "--values", "50us,60us,70us", "-t", "3600"], "-t/--duration"),
    (["scenario"], "NAME"),
    (["scenario", "wake_before_wait", "--list"], "NAME 'wake_before_wait'"),
    (["scenario", "--list", "--trace", "x.txt"], "--trace 'x.txt'"),
    (["check", "--methods", "explorer"], "--methods explorer"),
    (["check", "--full", "--config", "one_task"], "--full"),
    (["check", "--config", "one_task", "--config", "one_task"], "--config one_task,one_task"),
    (["check", "--list", "--mutants"], "--list"),
    (["bench-explore", "--config", "one_task", "--config", "one_task"], "--config one_task,one_task"),
    (["demo", "--scripts", "1000", "--steps", "100000"], "--steps 100000"),
    (["live", "--list", "--stored"], "--list"),
    (["live", "--stored", "--program", "pv-retry", "--program", "pv-retry"], "--program pv-retry,pv-retry"),
    (["check", "--list", "--max-seconds", "5"], "--max-seconds"),
    (["scenario", "--list", "--seed", "5"], "--seed '5'"),
    (["scenario", "--list", "--trace-lines", "3"], "--trace-lines '3'"),
    (["bm", "--vcpus", "64", "-f", "1024", "--host-limit", "1M", "-t", "10ms"], "-f/--fault-threads 1024"),  # OOM
    (["check", "--config", "one_task", "--scheduler", "tls://127.0.0.1:8786"], "--scheduler"),
    (["check", "--config", "one_task", "--scheduler", "inproc://x"], "--scheduler"),      # not a cluster's address
    (["bm", "--guest-mem", "128G", "-m", "100G", "--host-limit", "1M", "-t", "10ms"], "-m/--array 100G"),  # set-up
    (["demo", "--vcpus", "64", "--scripts", "10", "--steps", "50", "--compute-ms", "1"], "kept traces hold in memory"),
    (["bm", "-t", "3600", "--trace", "x.txt"], "a kept trace holds in memory"),   # 3600 s fits untraced
])
def test_relations_between_options_are_refused_by_name(argv, named):
    assert named in refused(argv)


def test_every_command_and_option_explains_itself():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(SPECS)
    assert all(line.help for line in sub._choices_actions)  # a one-line purpose per command in --help
    for name, cmd in sub.choices.items():
        for action in cmd._actions:
            assert action.help, (name, action.dest)
    helps = {name: " ".join(cmd.format_help().split()) for name, cmd in sub.choices.items()}
    assert all(d in helps["bm"] for d in device_names()) and "seed" in helps["bm"] and "legacy" in helps["bm"]
    assert all(c in helps["check"] for c in CONFIGS) and "--list" in helps["scenario"]


def run(*argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asyncpf", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def test_a_closed_pipe_ends_quietly():
    proc = run("scenario", "--list")
    proc.stdout.close()  # the reader is gone before the first line is written (cf. `| head`)
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_stops_a_long_run_cleanly_and_writes_nothing(tmp_path):
    trace = tmp_path / "pv.trace"
    proc = run("bm", "-t", "400", "--trace", str(trace), cwd=tmp_path, start_new_session=True)
    time.sleep(6)  # inside the simulation by now (a 400 s bm takes minutes)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read().decode()
    assert err == "asyncpf bm: interrupted; no partial output file was written\n", err
    assert proc.stdout.read() == b"" and list(tmp_path.iterdir()) == []


def test_version_and_json_listings():
    parser = build_parser()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert out.getvalue().startswith("asyncpf ")
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        assert main(["scenario", "--list", "--json"]) == 0
        assert main(["check", "--list", "--json"]) == 0
    first, _, second = listing.getvalue().partition("\n]\n")
    assert [s["name"] for s in json.loads(first + "\n]")] == list(SCENARIOS)
    assert {c["name"] for c in json.loads(second)["configs"]} == set(CONFIGS)
