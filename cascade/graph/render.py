"""Looking at a workflow without running it: Graphviz DOT text and the plan stage by stage."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .build import build_graph
from .plan import NativeSolver

__all__ = ["dry_run", "visualize"]

_EDGE_STYLE = {
    "data": "",
    "condition": ' [style=dashed, label="if"]',
    "after": ' [style=dotted, label="after"]',
    "sequence": ' [style=dotted, label="seq"]',
    "selector": ' [label="select"]',
    "route": ' [style=dashed, label="route"]',
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def visualize(target: Any) -> str:
    """Graphviz DOT text of ``target``'s first iteration (tail calls are not followed)."""
    graph = build_graph(target)
    lines = ["digraph cascade {", "  rankdir=LR;"]
    for node in graph.nodes:
        shape = {"call": "box", "map": "box3d", "router": "diamond"}[node.kind]
        lines.append(f"  n{node.index} [label={_quote(node.name)}, shape={shape}];")
    for edge in graph.edges:
        lines.append(f"  n{edge.source} -> n{edge.target}{_EDGE_STYLE[edge.kind]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dry_run(target: Any, file: TextIO | None = None) -> str:
    """Print (to ``file``, default stdout) and return the plan of ``target``, stage by stage."""
    graph = build_graph(target)
    plan = NativeSolver().solve(graph)
    lines = [f"plan {graph.template_id[:12]}: {len(graph.nodes)} nodes in {len(plan.stages)} stages"]
    for i, stage in enumerate(plan.stages):
        names = ", ".join(f"{graph.nodes[n].name}#{n}" for n in stage)
        lines.append(f"  stage {i}: {names}")
    text = "\n".join(lines) + "\n"
    (file or sys.stdout).write(text)
    return text
