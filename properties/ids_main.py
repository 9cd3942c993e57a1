"""Helper for the cross-process identity property: rebuild descriptions in a fresh interpreter.

Reads JSON ``[[prefix, repr(workflow), seed], ...]`` on stdin, builds iteration ``start`` of loop 0
of each with the given task-name prefix and construction-order seed, and prints JSON
``[[structural_id, template_id], ...]``. Run as ``python -m properties.ids_main`` from the repo root.
"""

from __future__ import annotations

import json
import sys

import cascade as cs

from .builder import Built
from .model import Body, Loop, Node, Workflow


def ids(prefix: str, wf: Workflow, seed: int | None) -> list[str]:
    graph = cs.build_graph(Built(wf, prefix).iteration("L", 0, wf.start, seed))
    return [graph.structural_id, graph.template_id]


def main() -> None:
    namespace = {"Workflow": Workflow, "Loop": Loop, "Body": Body, "Node": Node}
    jobs = json.load(sys.stdin)
    out = [ids(prefix, eval(text, namespace), seed) for prefix, text, seed in jobs]  # noqa: S307
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
