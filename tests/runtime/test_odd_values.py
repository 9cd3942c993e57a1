"""Values with broken dunders met at run time: a Router selector whose __hash__, __eq__ or __repr__ raises."""

from __future__ import annotations

import pytest

import cascade as cs


class BadHash:
    def __hash__(self):
        raise RuntimeError("no hash")

    def __repr__(self):
        return "BadHash()"


class BadEqAndRepr:
    def __hash__(self):
        return hash(1)  # collides with route key 1, so the lookup must compare

    def __eq__(self, other):
        raise RuntimeError("no eq")

    def __repr__(self):
        raise RuntimeError("no repr")


@cs.task
def ident(x):
    return x


@cs.task
def pick(kind):
    return BadHash() if kind == "hash" else BadEqAndRepr()


@pytest.mark.parametrize(
    ("kind", "shown", "why"),
    [
        ("hash", "BadHash()", "RuntimeError: no hash"),
        ("eq", "<BadEqAndRepr whose repr raised RuntimeError>", "RuntimeError: no eq"),
    ],
)
@pytest.mark.asyncio
async def test_router_selector_with_broken_dunders_raises_a_route_error(runner, kind, shown, why):
    router = cs.Router(pick(kind), routes={1: ident("one"), 2: ident("two")})
    with pytest.raises(cs.RouteError) as info:
        await runner.run(ident(router))
    message = str(info.value)
    assert message.startswith(f"Router selector returned {shown}, which has no route")
    assert f"(looking it up raised {why})" in message
    assert "used by ident" in message
