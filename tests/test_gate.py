"""tools/gate.py and tools/gate_calibrate.py: the verdict rules, the profile parsing, the seeded
slowdown, and the worker run for real in a fresh process (the counted mode needs valgrind and is
exercised by ``nox -s gate`` and ``nox -s gate-calibrate``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import gate  # noqa: E402
import gate_calibrate  # noqa: E402

GATED = [spec for spec, gated in gate.BENCHMARKS if gated]
CONTROL = next(spec for spec, gated in gate.BENCHMARKS if not gated)


def _side(name: str, counter: str, figures: dict[str, list[float]], tmp_path: Path) -> gate.Side:
    side = gate.Side(name, name, "0" * 40, tmp_path, counter)
    side.rounds = {spec: list(values) for spec, values in figures.items()}
    return side


def _counts(scale: dict[str, float] | None = None) -> dict[str, list[float]]:
    scale = scale or {}
    return {spec: [1_000_000.0 * scale.get(spec, 1.0)] for spec, _ in gate.BENCHMARKS}


def test_instruction_counts_fail_only_above_the_factor(tmp_path: Path) -> None:
    base = _side("base", "instructions", _counts(), tmp_path)
    within = _side("head", "instructions", _counts({GATED[0]: 1.039}), tmp_path)
    beyond = _side("head", "instructions", _counts({GATED[-1]: 1.041}), tmp_path)
    assert gate.compare(base, within, 1.04)[0] == gate.PASS
    status, rows = gate.compare(base, beyond, 1.04)
    assert status == gate.SLOWER
    slower = [row for row in rows if row[-1].startswith("SLOWER")]
    assert [row[0] for row in slower] == [gate._label(GATED[-1])]
    assert slower[0][4] == "1.041x"


def test_the_control_never_fails_and_a_faster_head_says_so(tmp_path: Path) -> None:
    base = _side("base", "instructions", _counts(), tmp_path)
    head = _side("head", "instructions", _counts({CONTROL: 3.0, GATED[0]: 0.5}), tmp_path)
    status, rows = gate.compare(base, head, 1.04)
    assert status == gate.PASS
    verdicts = {row[0]: row[-1] for row in rows}
    assert verdicts[gate._label(CONTROL)] == "control"
    assert verdicts[gate._label(GATED[0])] == "faster"


def test_timings_fail_only_when_paired_and_best_round_ratios_agree(tmp_path: Path) -> None:
    def timed(head_rounds: list[float]) -> tuple[gate.Side, gate.Side]:
        base = {spec: [1.0, 1.0, 1.0] for spec, _ in gate.BENCHMARKS}
        head = {spec: [1.0, 1.0, 1.0] for spec, _ in gate.BENCHMARKS}
        head[GATED[0]] = head_rounds
        return _side("base", "cpu", base, tmp_path), _side("head", "cpu", head, tmp_path)

    # paired median 1.2 but the best round equal: one noisy process, not a slowdown
    assert gate.compare(*timed([1.2, 1.2, 1.0]), 1.10)[0] == gate.PASS
    assert gate.compare(*timed([1.2, 1.2, 1.15]), 1.10)[0] == gate.SLOWER


def test_a_gated_benchmark_missing_on_head_is_an_error_not_a_pass(tmp_path: Path) -> None:
    base = _side("base", "instructions", _counts(), tmp_path)
    head = _side("head", "instructions", _counts(), tmp_path)
    head.skipped[GATED[1]] = "cascade lacks Engine"
    with pytest.raises(gate.GateError, match="not available on head"):
        gate.compare(base, head, 1.04)


def test_callgrind_total_reads_the_summary_line(tmp_path: Path) -> None:
    profile = tmp_path / "callgrind.out.1"
    profile.write_text("version: 1\ncreator: callgrind\nevents: Ir\nfl=(1) x.c\nfn=(1) f\n3 120\nsummary: 4567\n")
    assert gate._callgrind_total(profile) == 4567
    profile.write_text("events: Ir\n")
    with pytest.raises(gate.GateError, match="no instruction total"):
        gate._callgrind_total(profile)


def test_markdown_report_has_one_row_per_benchmark(tmp_path: Path) -> None:
    base = _side("base", "instructions", _counts(), tmp_path)
    head = _side("head", "instructions", _counts({GATED[0]: 1.5}), tmp_path)
    _, rows = gate.compare(base, head, 1.04)
    report = gate.markdown_report("SLOWER", "HEAD vs BASE", rows, gate.tolerance_note("instructions", 1.04))
    table = [line for line in report.splitlines() if line.startswith("| ") and "benchmark" not in line]
    assert len(table) == len(gate.BENCHMARKS)
    assert "1.04x" in report and "docs/benchmarks.md" in report


def test_seeded_spin_goes_after_the_one_tail_call_count(tmp_path: Path) -> None:
    loop_file = tmp_path / gate_calibrate.LOOP_FILE
    loop_file.parent.mkdir(parents=True)
    loop_file.write_text((ROOT / gate_calibrate.LOOP_FILE).read_text())
    gate_calibrate.seed_spin(3)(tmp_path)
    lines = loop_file.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == gate_calibrate.ANCHOR)
    assert lines[at + 1].strip().startswith("for _ in range(3):")
    assert lines[at + 2].strip() == "pass"
    compile(loop_file.read_text(), str(loop_file), "exec")  # still valid Python


def test_worker_times_benchmarks_in_a_fresh_process(tmp_path: Path) -> None:
    bench_dir = gate.prepare_bench_dir(ROOT, tmp_path)
    spec = "loops:TailCallLoops.time_loop:'countdown','hot'"
    proc = subprocess.run([sys.executable, "-s", "-P", str(bench_dir / "gate_worker.py"), "--repeat", "2", spec,
                           "loops:NoSuchClass.time_x:"],
                          cwd=bench_dir, capture_output=True, text=True, env=gate._clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    timed = out["results"][spec]
    assert len(timed["cpu"]) == len(timed["wall"]) == 2
    assert all(c > 0 for c in timed["cpu"])
    assert "error" in out["results"]["loops:NoSuchClass.time_x:"]
    assert not (bench_dir / "cascade").exists()
