"""Invariant 3: graph identity.

``cs.build_graph(target).structural_id`` / ``.template_id`` are deterministic (equal in a fresh
interpreter that rebuilds the same description), independent of the order in which the lazy
results were created (and of dict insertion orders), and equal exactly when the described
computations are equal: entirely (structural) or up to literal values (template), as decided by the
model's canonical encoding of the iteration graph (pure nodes merged, sharing included).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import cascade as cs

from .builder import Built, Registry, fresh_prefix
from .model import Body, IterGraph, Node, Workflow, canon, canonical_form
from .profiles import ci_settings
from .strategies import workflows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
seeds = st.none() | st.integers(0, 2**32 - 1)


def _ids(target: Any) -> tuple[str, str]:
    g = cs.build_graph(target)
    return g.structural_id, g.template_id


@ci_settings(300)
@given(workflows(), seeds, seeds)
def test_ids_are_deterministic_and_independent_of_construction_order(wf: Workflow, s1: Any, s2: Any) -> None:
    built = Built(wf)
    a = _ids(built.iteration("L", 0, wf.start, s1))
    b = _ids(built.iteration("L", 0, wf.start, s2))
    assert a == b, f"construction order changed the ids: seeds {s1} vs {s2}"


@st.composite
def variants(draw: Any) -> tuple[Workflow, Workflow]:
    """A workflow and a second one: equal, with a literal changed, with the structure changed, or new."""
    wf = draw(workflows(max_loops=1, max_subs=0))
    how = draw(st.sampled_from(("same", "literal", "literal", "structure", "structure", "other")))
    if how == "same":
        return wf, wf
    if how == "other":
        return wf, draw(workflows(max_loops=1, max_subs=0))
    loop = wf.loops[0]
    b = wf.start % len(loop.bodies)
    nodes = list(loop.bodies[b].nodes)
    i = draw(st.integers(0, len(nodes) - 1))
    nd = nodes[i]
    if how == "literal":
        new = dataclasses.replace(nd, lit=nd.lit + draw(st.sampled_from((1, -1, 5))))
        if nd.kind == "map" and nd.map_lits and draw(st.booleans()):
            new = dataclasses.replace(nd, map_lits=(nd.map_lits[0] + 1,) + nd.map_lits[1:])
    else:
        change = draw(st.sampled_from(("inputs", "cond", "kind", "after")))
        if change == "inputs" and i:
            new = dataclasses.replace(nd, inputs=nd.inputs[:-1] if nd.inputs else (i - 1,))
        elif change == "cond" and i and nd.kind != "root":
            new = dataclasses.replace(nd, cond=None if nd.cond is not None else i - 1)
        elif change == "after" and i:
            new = dataclasses.replace(nd, after=nd.after[:-1] if nd.after else (0,))
        elif nd.kind in ("sync", "async"):
            new = dataclasses.replace(nd, kind="async" if nd.kind == "sync" else "sync")
        else:
            new = dataclasses.replace(nd, lit=nd.lit + 1)
    nodes[i] = new
    bodies = list(loop.bodies)
    bodies[b] = Body(tuple(nodes))
    return wf, dataclasses.replace(wf, loops=(dataclasses.replace(loop, bodies=tuple(bodies)),))


@ci_settings(300)
@given(variants())
def test_ids_equal_exactly_when_computations_equal(pair: tuple[Workflow, Workflow]) -> None:
    wf1, wf2 = pair
    prefix, registry = fresh_prefix("id"), Registry()
    b1, b2 = Built(wf1, prefix, registry), Built(wf2, prefix, registry)
    s1, t1 = _ids(b1.iteration("L", 0, wf1.start))
    s2, t2 = _ids(b2.iteration("L", 0, wf2.start))
    g1 = IterGraph(wf1, prefix, "L", 0, wf1.start)
    g2 = IterGraph(wf2, prefix, "L", 0, wf2.start)
    same_structure = canonical_form(g1, template=False) == canonical_form(g2, template=False)
    same_template = canonical_form(g1, template=True) == canonical_form(g2, template=True)
    assert (s1 == s2) == same_structure, f"structural ids equal={s1 == s2}, computations equal={same_structure}"
    assert (t1 == t2) == same_template, f"template ids equal={t1 == t2}, templates equal={same_template}"


@ci_settings(10)
@given(st.lists(st.tuples(workflows(), seeds), min_size=1, max_size=6))
def test_ids_are_equal_across_processes(items: list[tuple[Workflow, Any]]) -> None:
    jobs, expected = [], []
    for wf, seed in items:
        prefix = fresh_prefix("xp")
        graph = cs.build_graph(Built(wf, prefix).iteration("L", 0, wf.start, seed))
        jobs.append([prefix, repr(wf), seed])
        expected.append([graph.structural_id, graph.template_id])
    proc = subprocess.run(
        [sys.executable, "-m", "properties.ids_main"], input=json.dumps(jobs), capture_output=True,
        text=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected, "ids differ in a fresh interpreter"


# Literals that look alike: equal under ``==`` across types (1, True, 1.0), signed zeros, NaN, str
# vs bytes, tuple vs list, big ints vs floats, dicts with reordered keys.
SCALARS = (0, 1, -1, True, False, 0.0, -0.0, 1.0, float("nan"), "1", "", b"1", b"", None, 10**30,
           float(10**30), 2**63)
literals = st.recursive(
    st.sampled_from(SCALARS),
    lambda inner: st.lists(inner, max_size=2) | st.lists(inner, max_size=2).map(tuple)
    | st.dictionaries(st.sampled_from(("a", "b")), inner, max_size=2),
    max_leaves=4,
)


LITERAL_EXAMPLES = 300


@ci_settings(LITERAL_EXAMPLES)
@given(st.lists(literals, min_size=2, max_size=4), st.randoms(use_true_random=False))
def test_literal_types_are_part_of_identity(values: list[Any], rnd: Any) -> None:
    """Pure calls merge, and structural ids are equal, exactly when their literals are the same value
    of the same type; on the hot path too, where a second run of the same template with other
    literals may merge differently."""
    seen: list[Any] = []

    def probe_fn(v: Any) -> Any:
        seen.append(canon(v))
        return canon(v)

    probe = cs.task(probe_fn, name="probe", pure=True)
    gather = cs.task(lambda *xs: list(xs), name="gather")
    ids = [cs.build_graph(probe(v)).structural_id for v in values]
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (ids[i] == ids[j]) == (canon(a) == canon(b)), f"ids of probe({a!r}) and probe({b!r})"
    other = list(values)
    rnd.shuffle(other)
    other[0] = values[-1]  # another pattern of look-alikes, same template

    async def main() -> list[Any]:
        engine = cs.Engine()
        outs = []
        for vs in (values, values, other):
            target = gather(*[probe(v) for v in vs])
            distinct = {canon(v) for v in vs}
            nodes = [n for n in cs.build_graph(target).nodes if n.name == "probe"]
            assert len(nodes) == len(distinct), f"{len(nodes)} probe nodes for {len(distinct)} distinct literals in {vs!r}"
            seen.clear()
            outs.append(await engine.run(target))
            assert sorted(map(repr, seen)) == sorted(map(repr, distinct)), f"calls {seen} for literals {vs!r}"
        return outs

    outs = asyncio.run(main())
    assert outs == [[canon(v) for v in vs] for vs in (values, values, other)]


__all__ = ["Node"]
