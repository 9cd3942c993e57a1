"""``cascade bench --quick``: median of 3 interleaved samples like a full run, and its figures marked indicative."""

from __future__ import annotations

import json

from cascade.cli.main import app


def test_quick_takes_three_samples_per_mode_and_says_its_figures_are_indicative(runner):
    result = runner.invoke(app, ["bench", "--quick", "--only", "countdown", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Cascade throughput (quick, indicative, median of 3;")
    assert lines[-1] == ("Quick figures are indicative only (short runs, easily moved by other load): "
                         "quote `cascade bench` without --quick.")


def test_quick_json_reports_three_samples_and_the_indicative_flag(runner):
    result = runner.invoke(app, ["bench", "--quick", "--only", "countdown", "--json", "-", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["quick"] is True and report["indicative"] is True and report["repeat"] == 3
    samples = report["workloads"][0]["samples"]
    assert {mode: len(s["samples"]) for mode, s in samples.items()} == {"baseline": 3, "hot": 3, "slow": 3}


def test_a_full_run_is_not_marked_indicative(runner):
    result = runner.invoke(app, ["bench", "--only", "countdown", "--repeat", "1", "--json", "-", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["indicative"] is False and report["repeat"] == 1
