"""cs.visualize: DOT details that surviving mutants showed untested (docs/mutation.md): the layout
line, a node shape per kind, and labels escaped so that any task name stays valid DOT."""

from __future__ import annotations

import cascade as cs


@cs.task(name='say "hi" \\ there')
def quoted(x):
    return x


@cs.task(name="flag")
def flag():
    return True


@cs.task(name="one")
def one():
    return 1


@cs.task(name="inc")
def inc(x):
    return x + 1


@cs.task(name="total")
def total(a, b):
    return a, b


def _node_lines(dot: str) -> dict[str, str]:
    """label text (as written in the DOT) -> the rest of its node line."""
    out = {}
    for line in dot.splitlines():
        if "[label=" in line and "->" not in line:
            label, _, rest = line.split("[label=", 1)[1].rpartition(", shape=")
            out.setdefault(label, rest)
    return out


def test_visualize_lays_out_left_to_right_with_a_shape_per_node_kind():
    dot = cs.visualize(total(inc.map(x=[1, 2]), cs.Router(flag(), {True: one(), False: quoted(2)})))
    assert dot.splitlines()[:2] == ["digraph cascade {", "  rankdir=LR;"]
    shapes = _node_lines(dot)
    assert shapes['"flag"'] == "box];"
    assert shapes['"Router"'] == "diamond];"
    assert sorted(line.rsplit("shape=", 1)[1] for line in dot.splitlines() if '[label="inc"' in line) == [
        "box3d];", "box];", "box];",  # the map node and its two element calls
    ]


def test_visualize_escapes_quotes_and_backslashes_in_labels():
    dot = cs.visualize(quoted(1))
    assert '[label="say \\"hi\\" \\\\ there", shape=box];' in dot
