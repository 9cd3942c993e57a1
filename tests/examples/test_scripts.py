"""Every script in examples/ runs (as ``python -m examples.<name>``, tiny sizes) and prints what it says."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if p.stem != "__init__")

# name -> (arguments, lines the output must contain, checked by hand against a run)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "etl_map_reduce": ([], [
        "berlin: Alice, Carol, Frank",
        "paris: Bob, Erin",
        "rome: Dave",
        "mean age: 35.5",
        "6 records, at most 6 transforms in flight at once",
    ]),
    "retries_and_cache": ([], [
        "  retrying flaky_fetch: ConnectionError('example.org: connection reset (attempt 1)')",
        "  retrying flaky_fetch: ConnectionError('example.org: connection reset (attempt 2)')",
        "fetched <page example.org> after 3 attempts",
        "  expensive: cache hit",
        "expensive(10000) = 333283335000 twice (True), computed 1 time(s)",
        "gave up: down.example: connection reset (attempt 2)",
    ]),
    "resources": ([], [
        "total 16 via db #1",
        "open db #1",
        "drop scratch (1 item)",
        "close db #1",
    ]),
    "agent_loop": ([], [
        "ada found 1 in 20 turns",
        "bo found 777777 in 17 turns",
        "cy found 999999 in 19 turns",
        "59 iterations: 2 compiled, 57 from a hot plan",
    ]),
    "fireflies": (["--agents", "16", "--period", "0.2", "--duration", "1", "--quiet"], [
        "cascade: 16 agents, period 0.2 s, nudge 0.2, 1.0 s",
    ]),
    "agents_bench": (["--agents", "16", "--periods", "0.2", "--duration", "0.5"], [
        "16 agents, period 0.2 s",
    ]),
}


def test_every_example_has_a_check():
    assert SCRIPTS and set(SCRIPTS) == set(EXPECTED), "add the new example's arguments and output to EXPECTED"


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_and_prints_its_result(name):
    args, lines = EXPECTED[name]
    proc = subprocess.run([sys.executable, "-m", f"examples.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    missing = [line for line in lines if line not in out and not any(o.startswith(line) for o in out)]
    assert not missing, f"missing {missing!r} in:\n{proc.stdout}"


def test_resources_are_set_up_before_and_torn_down_after_their_users():
    proc = subprocess.run([sys.executable, "-m", "examples.resources"], cwd=ROOT, capture_output=True,
                          text=True, timeout=90)
    assert proc.stdout.splitlines() == [
        "total 16 via db #1", "open db #1", *["drop scratch (1 item)"] * 3, "close db #1",
    ]


def test_agents_bench_repeats_a_case_and_gives_the_median_ratios(tmp_path):
    out = tmp_path / "agents.json"
    proc = subprocess.run([sys.executable, "-m", "examples.agents_bench", "--agents", "16", "--periods", "0.2",
                           "--duration", "0.4", "--repeat", "3", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert [line.split(":")[0].strip() for line in proc.stdout.splitlines() if line.strip().startswith("run ")] == [
        "run 1", "run 2", "run 3"]
    assert "(median of 3 runs)" in proc.stdout
    case = json.loads(out.read_text())["16@0.2"]
    pairs = case["pairs"]
    assert [tuple(p)[:2] for p in pairs] == [("asyncio", "cascade"), ("cascade", "asyncio"), ("asyncio", "cascade")]
    for key in ("rate", "lag_p99", "cpu_per_iteration"):
        assert case["ratios"][key] == sorted(p["ratios"][key] for p in pairs)[1]
    assert math.isnan(pairs[1]["cascade"]["memory_bytes_per_agent"])  # memory measured in the first run only
    assert case["ratios"]["memory_per_agent"] == pairs[0]["ratios"]["memory_per_agent"] > 0
