"""Hypothesis strategies drawing plain-data workflow descriptions (see :mod:`properties.model`).

Everything is drawn simplest-first (the first kind, no condition, one body, one loop, small
literals), so shrinking heads for the smallest workflow that still shows a difference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import strategies as st

from .model import KINDS, RUN_RESOURCE, TASK_RESOURCE, TYPED, Body, Loop, Node, Workflow

MAX_BODY = 6
FLOW_KINDS = ("sync", "pred", "select", "router", "map", "pure", "suspend", "spred", "kw", "cached")


def chance(draw: Any, k: int) -> bool:
    """True about once in ``k`` draws; shrinks to False."""
    return bool(draw(st.sampled_from((False,) * (k - 1) + (True,))))


@st.composite
def nodes(draw: Any, i: int, prev: list[Node], kinds: tuple[str, ...], allow_sub: bool,
          n_subs: int, extras: bool = True, cond_odds: int = 3) -> Node:
    """Node ``i`` of a body whose earlier nodes are ``prev``."""
    available = [k for k in kinds if k != "sub" or (allow_sub and n_subs and not any(p.kind == "sub" for p in prev))]
    if not any(p.kind == "select" for p in prev):
        available = [k for k in available if k != "router"]
    if not any(p.kind == "map" for p in prev):
        available = [k for k in available if k != "dmap"]
    weighted = available + [k for k in ("select", "select", "router", "router", "router", "map", "dmap", "dmap", "dmap")
                            if k in available]
    kind = draw(st.sampled_from(weighted))
    idx = st.integers(0, i - 1) if i else st.nothing()
    lit = draw(st.integers(0, 9))
    step = draw(st.sampled_from((1, 0, 3, -1)))
    inputs: tuple[int, ...] = tuple(draw(st.lists(idx, max_size=2))) if i else ()
    fields: dict[str, Any] = {}
    if kind == "pure" and draw(st.booleans()):
        twins = [p for p in prev if p.kind == "pure"]
        if twins:  # an equal pure call: it must merge with its twin ...
            twin = draw(st.sampled_from(twins))
            if twin.tsel >= 0 and chance(draw, 2):  # ... or a look-alike (1 vs True vs 1.0): it must not
                return dataclasses.replace(twin, tsel=twin.tsel + draw(st.integers(1, 2)))
            return twin
    if kind == "raise":
        fields["trigger"] = lit + step * draw(st.integers(0, 8)) + (draw(st.integers(0, 1)) if step == 0 else 0)
    elif kind == "flaky":
        fields["fails"] = draw(st.integers(0, 2))
        fields["attempts"] = draw(st.integers(1, 3)) if chance(draw, 4) else fields["fails"] + 1
    elif kind == "select":
        fields["modulus"] = draw(st.integers(1, 3))
        fields["koff"] = chance(draw, 2)  # its Routers' keys change with the iteration
    elif kind == "router":
        selects = [j for j, p in enumerate(prev) if p.kind == "select"]
        sel = draw(st.sampled_from(selects) if not chance(draw, 6) else idx)
        fields["selector"] = sel
        low = min(prev[sel].modulus if prev[sel].kind == "select" else 1, i)
        if chance(draw, 5):
            low = 1  # maybe fewer routes than selector values: RouteError
        routes = draw(st.lists(idx, min_size=low, max_size=max(low, 3), unique=True))
        gated = [j for j, p in enumerate(prev) if p.cond is not None and j not in routes]
        if gated and not chance(draw, 2):  # a conditional branch, last (often not picked)
            routes.append(draw(st.sampled_from(gated)))
        fields["routes"] = tuple(routes)
    elif kind == "map":
        fields["map_extra"] = draw(st.sampled_from((0, 2, 3)))
        # with extra elements, a map may be empty in some iterations (n % map_extra == 0)
        low = 0 if inputs or fields["map_extra"] else 1
        fields["map_lits"] = tuple(draw(st.lists(st.integers(0, 9), min_size=low, max_size=2)))
    elif kind == "pure":
        fields["pure_task"] = draw(st.integers(0, 1))
        if chance(draw, 2):
            fields["tsel"] = draw(st.integers(0, len(TYPED) - 1))
    elif kind == "cached":
        fields["tsel"] = draw(st.integers(0, len(TYPED) - 1))
        if draw(st.booleans()):  # the same positional literal every iteration: only the tag varies
            step = 0
        fields["cache_mod"] = draw(st.sampled_from((1, 2)))
    elif kind == "resource":
        fields["res"] = draw(st.sampled_from((RUN_RESOURCE, TASK_RESOURCE)))
        fields["via_arg"] = draw(st.booleans())
    elif kind == "constrained":
        fields["cname"] = draw(st.sampled_from(("slots", "gpu")))
        fields["amount"] = draw(st.sampled_from((1, 2, 1, 2, 3)))
    elif kind == "sub":
        fields["sub"] = draw(st.integers(0, n_subs - 1))
    elif kind == "dmap":
        inputs = (draw(st.sampled_from([j for j, p in enumerate(prev) if p.kind == "map"])),)
    cond = after = seq = None
    if i and extras:
        preds = [j for j, p in enumerate(prev) if p.kind in ("pred", "spred")]
        if chance(draw, cond_odds):
            cond = draw(st.sampled_from(preds) if preds and not chance(draw, 4) else idx)
        if chance(draw, 5):
            after = tuple(draw(st.lists(idx, min_size=1, max_size=2)))
        if kind != "map" and chance(draw, 5):
            cands = [j for j, p in enumerate(prev) if p.kind != "map"]
            if cands:
                seq = draw(st.sampled_from(cands))
    return Node(kind, inputs, lit, step, cond=cond, after=after or (), seq=seq, **fields)


@st.composite
def bodies(draw: Any, kinds: tuple[str, ...] = KINDS, allow_sub: bool = True, n_subs: int = 0,
           max_nodes: int = MAX_BODY, extras: bool = True, root_mode: str | None = None,
           flow: bool = False, min_nodes: int = 0) -> Body:
    size = draw(st.integers(min_nodes, max_nodes))
    cond_odds = 3
    if flow:
        cond_odds = 2
    elif extras and chance(draw, 3):  # a flow-heavy body: conditions, Routers with shared branches
        kinds = tuple(k for k in FLOW_KINDS if k in kinds) or kinds
        cond_odds = 2
    prev: list[Node] = []
    for i in range(size):
        prev.append(draw(nodes(i, prev, kinds, allow_sub, n_subs, extras, cond_odds)))
    i = size
    idx = st.integers(0, i - 1) if i else st.nothing()
    # the root consumes every sink (so the whole body is reachable) and maybe more
    used = {d for p in prev for d in p.inputs + p.after + ((p.selector,) + p.routes if p.kind == "router" else ())}
    sinks = tuple(j for j in range(i) if j not in used)
    inputs = tuple(draw(st.lists(idx, max_size=2))) if i else ()
    # each sink feeds the root as data (its value is observed) or as ordering only (a skipped sink
    # then skips nothing)
    as_data = tuple(j for j in sinks if j not in inputs and draw(st.booleans()))
    inputs += as_data
    cond = seq = None
    after = tuple(j for j in sinks if j not in inputs)
    if i:  # a few more, so that route branches are sometimes needed by another consumer
        routed = sorted({r for p in prev if p.kind == "router" for r in p.routes})
        extra = draw(st.lists(idx, max_size=2, unique=True))
        if routed and not chance(draw, 3):
            extra += routed
        after += tuple(dict.fromkeys(j for j in extra if j not in after))
    if i and extras:
        if chance(draw, 8):
            cond = draw(idx)
        if chance(draw, 8):
            cands = [j for j, p in enumerate(prev) if p.kind != "map"]
            if cands:
                seq = draw(st.sampled_from(cands))
    mode = root_mode or draw(st.sampled_from(("sync", "async", "suspend")))
    root = Node("root", inputs, draw(st.integers(0, 9)), draw(st.sampled_from((1, 0, 2))), cond=cond,
                after=after, seq=seq, mode=mode)
    return Body(tuple(prev) + (root,))


@st.composite
def loops(draw: Any, kinds: tuple[str, ...] = KINDS, allow_sub: bool = True, n_subs: int = 0,
          max_bodies: int = 3, max_nodes: int = MAX_BODY, extras: bool = True,
          allow_raise: bool = True) -> Loop:
    count = draw(st.integers(1, max_bodies))
    mode = draw(st.sampled_from(("sync", "async", "suspend")))
    bs = tuple(draw(bodies(kinds, allow_sub, n_subs, max_nodes, extras, root_mode=mode)) for _ in range(count))
    raise_at = None
    if allow_raise and "raise" in kinds and chance(draw, 8):
        raise_at = draw(st.integers(0, 4))
    return Loop(bs, raise_at)


@st.composite
def workflows(draw: Any, kinds: tuple[str, ...] = KINDS, max_loops: int = 3, max_subs: int = 2,
              max_start: int = 5, max_bodies: int = 3, max_nodes: int = MAX_BODY,
              extras: bool = True) -> Workflow:
    """A random recursive workflow: a ring of 1-3 loops (mutual recursion), 0-2 sub-loops."""
    n_subs = draw(st.integers(0, max_subs)) if "sub" in kinds else 0
    subs = tuple(draw(loops(kinds, False, 0, 2, 4, extras, allow_raise=False)) for _ in range(n_subs))
    n_loops = draw(st.integers(1, max_loops))
    ring = tuple(draw(loops(kinds, True, n_subs, max_bodies, max_nodes, extras, allow_raise=k == 0))
                 for k in range(n_loops))
    start = draw(st.integers(0, max_start) | st.just(max_start))  # half of the loops run long
    return Workflow(ring, subs, start)


@st.composite
def interleaving_workflows(draw: Any, kinds: tuple[str, ...]) -> Workflow:
    """One loop of one flow-heavy body (conditions on half the nodes), its root suspending first:
    copies of it run on one plan, and their skips, route choices and values outlive suspensions."""
    mode = draw(st.sampled_from(("suspend", "async", "sync")))
    body = draw(bodies(kinds, False, 0, MAX_BODY, True, root_mode=mode, flow=True, min_nodes=3))
    # the root orders after its inputs instead of consuming them: a skip inside the body then
    # never skips the whole iteration, so the loop runs on (hot) with skips in every iteration
    # Selectors with two values at least, and Routers with a branch for each, so that copies of the
    # loop (other counters, other literals) pick different branches of one plan.
    nodes = list(body.nodes)
    for i, nd in enumerate(nodes):
        if nd.kind == "select" and nd.modulus == 1:
            nodes[i] = dataclasses.replace(nd, modulus=2)
    for i, nd in enumerate(nodes):
        if nd.kind == "router" and nodes[nd.selector].kind == "select" and len(nd.routes) < 2:
            spare = [j for j in range(i) if j != nd.selector and j not in nd.routes]
            if spare:
                nodes[i] = dataclasses.replace(nd, routes=nd.routes + (spare[-1],))
    if draw(st.booleans()):
        # a Router gadget: a two-valued selector picking between two branches that suspend (for
        # different lengths), so runs of the plan sit between routing and their branch at once
        k = len(nodes) - 1
        lits = draw(st.lists(st.integers(0, 9), min_size=3, max_size=3))
        gadget = [Node("select", (), lits[0], 1, modulus=2), Node("suspend", (), lits[1], 1),
                  Node("suspend", (), lits[2], 1), Node("router", (), 0, 1, selector=k, routes=(k + 1, k + 2))]
        root = nodes[-1]
        nodes = nodes[:-1] + gadget + [dataclasses.replace(root, after=root.after + (k + 3,))]
    body = Body(tuple(nodes))
    # Route branches stay dormant (only their Router needs them), so a Router waits for the branch
    # it picked while other runs of the plan pick theirs.
    root = body.nodes[-1]
    routed = {r for nd in body.nodes if nd.kind == "router" for r in nd.routes}
    root = dataclasses.replace(root, inputs=(), cond=None, seq=None,
                               after=tuple(j for j in dict.fromkeys(root.inputs + root.after) if j not in routed))
    return Workflow((Loop((Body(body.nodes[:-1] + (root,)),)),))


LANE_KINDS = ("sync", "async", "suspend", "kw", "raise")


@st.composite
def alternating_workflows(draw: Any) -> Workflow:
    """One long loop alternating between two or three templates of plain calls (no flow, maps or
    merges), like an agent that listens, then flashes: after a few iterations every one of them
    runs on drive's lane, the programs trading places at each turn, and some walks hand their
    iteration over to the scheduler (a call suspending off the tail)."""
    count = 3 if chance(draw, 4) else 2
    mode = draw(st.sampled_from(("sync", "async", "suspend")))
    bs = tuple(draw(bodies(LANE_KINDS, False, 0, 4, False, root_mode=mode, min_nodes=1)) for _ in range(count))
    raise_at = draw(st.integers(0, 4)) if chance(draw, 8) else None
    return Workflow((Loop(bs, raise_at),), (), draw(st.integers(8, 16)))


STABLE_KINDS = ("sync", "async", "suspend", "pure", "pred", "map", "resource", "constrained")


def stable_workflows(**kw: Any) -> st.SearchStrategy[Workflow]:
    """Workflows that cannot fail: one loop of one body (stable shape), long loops."""
    return workflows(kinds=("sync", "async", "suspend", "pure", "pred", "select", "map", "resource"),
                     max_subs=0, max_loops=1, max_bodies=1, **kw)
