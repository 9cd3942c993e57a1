"""Shared pieces: the workloads (tasks and raw-asyncio baselines) and feature probes.

Tasks are made on first use, not at import, so that discovering the suite never fails on a commit
whose API differs; a missing feature turns into ``NotImplementedError`` in ``setup`` (asv: skipped).
"""

import asyncio
import functools
import gc

try:
    import cascade as cs
except ImportError:  # pragma: no cover - asv reports the setup failure
    cs = None

CHAIN = 10


def require(*names):
    """Raise NotImplementedError unless ``cascade`` has every public attribute in ``names``."""
    if cs is None:
        raise NotImplementedError("cascade is not importable")
    missing = [n for n in names if not hasattr(cs, n)]
    if missing:
        raise NotImplementedError(f"cascade lacks {', '.join(missing)}")


def new_loop():
    """A fresh event loop, made in setup; timed calls only run_until_complete on it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def close_loop(loop):
    """Close a loop made by ``new_loop`` (``None``: setup stopped before making one)."""
    if loop is None:
        return
    asyncio.set_event_loop(None)
    loop.close()
    gc.collect()


def make_engine(mode):
    """``Engine()`` for "hot", ``Engine(hot_plans=False)`` for "slow"."""
    require("Engine")
    if mode == "hot":
        return cs.Engine()
    try:
        return cs.Engine(hot_plans=False)
    except TypeError as exc:  # an engine without the switch
        raise NotImplementedError(f"Engine(hot_plans=False) unsupported: {exc}") from None


@functools.cache
def tasks():
    """Every task the suite uses, made once per process."""
    require("task", "Engine")
    ns = {}

    @cs.task
    async def countdown(n):
        return "done" if n == 0 else countdown(n - 1)

    @cs.task
    async def noop(x):
        return x

    @cs.task
    async def chain_loop(n, value):
        if n == 0:
            return value
        link = n
        for _ in range(CHAIN):
            link = noop(link)
        return chain_loop(n - 1, link)

    @cs.task
    async def left(x):
        await asyncio.sleep(0)
        return x

    @cs.task
    async def right(x):
        await asyncio.sleep(0)
        return x + 1

    @cs.task
    async def fork_loop(n, a, b):
        if n == 0:
            return a + b
        return fork_loop(n - 1, left(n), right(n))

    @cs.task
    async def think(state):
        await asyncio.sleep(0)
        return state + 1

    @cs.task
    async def act(thought):
        return thought

    @cs.task
    async def agent(steps, state):
        if steps == 0:
            return state
        return agent(steps - 1, act(think(state)))

    @cs.task
    async def double(x):
        return 2 * x

    @cs.task
    async def join(a, b):
        return a

    @cs.task
    async def total(values):
        return sum(values)

    ns.update(countdown=countdown, noop=noop, chain_loop=chain_loop, left=left, right=right,
              fork_loop=fork_loop, think=think, act=act, agent=agent, double=double, join=join, total=total)
    return ns


# -- the three tail-call loops, Cascade and baseline; each returns a coroutine for n iterations -------
def cascade_loop(name, engine, n):
    t = tasks()
    if name == "countdown":
        return engine.run(t["countdown"](n))
    if name == "chain11":
        return engine.run(t["chain_loop"](n, 0))
    if name == "fork3":
        return engine.run(t["fork_loop"](n, 0, 0))
    raise ValueError(name)


async def _step(n):
    return n - 1


async def _anoop(x):
    return x


async def _left(x):
    await asyncio.sleep(0)
    return x


async def _right(x):
    await asyncio.sleep(0)
    return x + 1


async def _countdown_baseline(n):
    while n:
        n = await _step(n)
    return "done"


async def _chain_baseline(n):
    value = 0
    while n:
        link = n
        for _ in range(CHAIN):
            link = await _anoop(link)
        value = link
        n -= 1
    return value


async def _fork_baseline(n):
    a = b = 0
    while n:
        a, b = await asyncio.gather(_left(n), _right(n))
        n -= 1
    return a + b


BASELINES = {"countdown": _countdown_baseline, "chain11": _chain_baseline, "fork3": _fork_baseline}
EXPECTED = {"countdown": "done", "chain11": 1, "fork3": 3}


def loop_coro(name, mode, engine, n):
    """A coroutine running ``n`` iterations of loop ``name`` in ``mode`` (hot, slow, baseline)."""
    if mode == "baseline":
        return BASELINES[name](n)
    return cascade_loop(name, engine, n)


# -- concurrent agents --------------------------------------------------------------------------------
async def _think(state):
    await asyncio.sleep(0)
    return state + 1


async def _act(thought):
    return thought


async def _agent_baseline(steps):
    state = 0
    for _ in range(steps):
        state = await _act(await _think(state))
    return state


def agents_coro(mode, engine, agents, steps):
    """``agents`` agent loops of ``steps`` iterations each, all at once (on one engine)."""
    if mode == "baseline":
        return asyncio.gather(*(_agent_baseline(steps) for _ in range(agents)))
    agent = tasks()["agent"]
    return asyncio.gather(*(engine.run(agent(steps, 0)) for _ in range(agents)))
