"""cs.visualize (DOT text) and cs.dry_run (stages)."""

from __future__ import annotations

import io

import cascade as cs


@cs.task(name="load")
def load():
    return 1


@cs.task(name="clean")
def clean(x):
    return x


@cs.task(name="report")
def report(x, y):
    return x + y


@cs.task(name="gate")
def gate():
    return True


def test_visualize_contains_node_names_and_edges():
    dot = cs.visualize(report(load(), clean(3)).run_if(gate()))
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    # canonical order: load n0, clean n1, gate n2, report n3
    assert 'n0 [label="load"' in dot
    assert 'n1 [label="clean"' in dot
    assert 'n2 [label="gate"' in dot
    assert 'n3 [label="report"' in dot
    assert "n0 -> n3" in dot
    assert "n1 -> n3" in dot
    assert "n2 -> n3" in dot
    assert dot.count("->") == 3


def test_visualize_runs_nothing():
    calls = []

    @cs.task(name="side")
    def side():
        calls.append(1)

    cs.visualize(side())
    cs.dry_run(side(), file=io.StringIO())
    assert calls == []


def test_dry_run_prints_stages(capsys):
    text = cs.dry_run(report(load(), clean(load())))
    out = capsys.readouterr().out
    assert out == text
    assert "4 nodes in 3 stages" in text
    lines = text.splitlines()
    assert lines[1].strip() == "stage 0: load#0, load#1"
    assert lines[2].strip() == "stage 1: clean#2"
    assert lines[3].strip() == "stage 2: report#3"


def test_dry_run_to_file():
    buf = io.StringIO()
    text = cs.dry_run(clean(1), file=buf)
    assert buf.getvalue() == text
    assert "stage 0: clean#0" in text
