"""The ``cascade`` command line through typer's test runner (and once through a real subprocess):
run, visualize, dry-run, bench, argument parsing, and errors as one line without a traceback.
The commands that talk to a broker are tested against a real mosquitto in
tests/adapters/test_control_plane.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cascade.cli.main import CLIError, app, main, parse_duration, parse_params, parse_rate


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_run_prints_the_value(runner, flow_file):
    result = runner.invoke(app, ["run", f"{flow_file}:main"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "12\n"


def test_run_with_params_and_a_factory_function(runner, flow_file):
    result = runner.invoke(app, ["run", f"{flow_file}:with_param", "--param", "bonus=41"])
    assert (result.exit_code, result.stdout) == (0, "42\n")
    result = runner.invoke(app, ["run", f"{flow_file}:with_param", "-p", 'bonus="x"'])
    assert result.exit_code == 1
    assert one_line(result.stderr).startswith("cascade run: the workflow failed: TypeError:")


def test_run_of_a_module_target(runner):
    result = runner.invoke(app, ["run", "tests.cli.flows:countdown_100"])
    assert (result.exit_code, result.stdout) == (0, "5050\n")


@pytest.mark.parametrize("target, message", [
    ("{flow}:failing", "cascade run: the workflow failed: ValueError: boom"),
    ("{flow}:missing", "cascade run: {flow}:missing: {flow} has no attribute 'missing'"),
    ("{flow}:not_lazy", "cascade run: {flow}:not_lazy is a int, not a lazy result (call a task to get one)"),
    ("{flow}:fetch", "cascade run: {flow}:fetch is a task; point at a lazy result (e.g. main = fetch(...)) "
                     "or a function making one"),
    ("nowhere.py:main", "cascade run: nowhere.py: no such file"),
    ("no_such_module_xyz:main", "cascade run: no_such_module_xyz: no module named 'no_such_module_xyz'"),
    ("justtext", "cascade run: 'justtext': expected FILE.py:ATTR or module:ATTR"),
])
def test_run_errors_are_one_clear_line(runner, flow_file, target, message):
    result = runner.invoke(app, ["run", target.format(flow=flow_file)])
    assert result.exit_code in (1, 2)
    assert one_line(result.stderr) == message.format(flow=flow_file)
    assert result.stdout == ""


def test_visualize_prints_dot(runner, flow_file, tmp_path):
    result = runner.invoke(app, ["visualize", f"{flow_file}:main"])
    assert result.exit_code == 0
    assert result.stdout.startswith("digraph cascade {\n") and result.stdout.count("shape=box]") == 4
    assert '[label="fetch", shape=box3d]' in result.stdout  # the map node
    out = tmp_path / "g.dot"
    result = runner.invoke(app, ["visualize", f"{flow_file}:main", "-o", str(out)])
    assert result.exit_code == 0 and out.read_text().startswith("digraph cascade {")
    result = runner.invoke(app, ["visualize", f"{flow_file}:main", "-o", str(tmp_path / "g.bmp")])
    assert one_line(result.stderr).endswith("unknown format 'bmp' (use .dot, .png, .svg or .pdf)")


def test_dry_run_prints_the_plan_once(runner, flow_file):
    result = runner.invoke(app, ["dry-run", f"{flow_file}:main"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("plan ") and lines[0].endswith(": 5 nodes in 3 stages")
    assert result.stdout.count("plan ") == 1
    assert lines[1:] == ["  stage 0: fetch#0, fetch#1, fetch#2", "  stage 1: fetch#3", "  stage 2: total#4"]


def test_limit_argument_errors(runner):
    cases = [
        (["limit", "task:x"], "cascade limit: give --concurrency N, --rate R/s or both"),
        (["limit", "task:x", "--rate", "fast"], "cascade limit: --rate 'fast': expected a positive rate such as "
                                                 "10/s, 600/m or 2/h"),
        (["limit", "task:x", "--burst", "3", "--concurrency", "1"], "cascade limit: --burst needs --rate"),
        (["limit", "task:x", "-c", "0"], "cascade limit: --concurrency 0: 'limit' must be a finite number >= 1, got 0"),
        (["pause", "task:x", "--ttl", "soon"], "cascade pause: --ttl 'soon': expected a positive duration such as "
                                               "30s, 500ms, 5m or 1h"),
        (["pause", "project:x"], "cascade pause: unknown scope 'project:x': scopes are 'global' and "
                                 "'task:<glob>'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, args
        assert one_line(result.stderr) == message


def test_parsers():
    assert parse_rate("10/s") == 10.0 and parse_rate("600/m") == 10.0 and parse_rate("36/h") == 0.01
    assert parse_rate("2.5") == 2.5
    assert parse_duration("30s") == 30.0 and parse_duration("500ms") == 0.5 and parse_duration("2m") == 120.0
    assert parse_params(["a=1", "b=x", "c=[1, 2]", "d="]) == {"a": 1, "b": "x", "c": [1, 2], "d": ""}
    for bad in (lambda: parse_rate("0/s"), lambda: parse_rate("1/d"), lambda: parse_duration("-1s"),
                lambda: parse_params(["novalue"])):
        with pytest.raises(CLIError):
            bad()


def test_bench_list_and_unknown_workload(runner):
    result = runner.invoke(app, ["bench", "--list"])
    assert result.exit_code == 0 and result.stdout.splitlines()[0].split()[0] == "countdown"
    result = runner.invoke(app, ["bench", "--only", "nope"])
    assert result.exit_code == 2 and one_line(result.stderr).startswith("cascade bench: unknown workload(s) nope")


def test_main_turns_usage_errors_into_one_line(capsys):
    assert main(["frobnicate"]) == 2
    assert one_line(capsys.readouterr().err) == "cascade frobnicate: No such command 'frobnicate'."
    assert main(["limit", "x", "--concurrency", "abc"]) == 2
    assert one_line(capsys.readouterr().err).startswith("cascade limit: Invalid value for '--concurrency'")


def test_a_real_subprocess(flow_file):
    ok = subprocess.run([sys.executable, "-m", "cascade.cli", "run", f"{flow_file}:main"],
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "12\n")
    bad = subprocess.run([sys.executable, "-m", "cascade.cli", "run", f"{flow_file}:failing"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stdout == ""
    assert one_line(bad.stderr) == "cascade run: the workflow failed: ValueError: boom"


def test_run_shows_progress_on_a_terminal_once_a_run_is_long():
    import asyncio
    import io

    from rich.console import Console

    import cascade as cs
    from cascade.cli.main import _run_async

    @cs.task
    async def nap(i):
        await asyncio.sleep(0.01)
        return i

    @cs.task
    def plus(a, b):
        return a + b

    @cs.task
    def naps(n, acc=0):
        return acc if n == 0 else naps(n - 1, plus(acc, nap(1)))

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    assert asyncio.run(_run_async(naps(80), {}, None, True, console)) == 80  # about 1 s: over the 0.5 s mark
    assert " done " in screen.getvalue() and " running " in screen.getvalue()
    quiet = io.StringIO()
    assert asyncio.run(_run_async(naps(2), {}, None, True, Console(file=quiet, force_terminal=True))) == 2
    assert quiet.getvalue() == ""  # a short run shows nothing
