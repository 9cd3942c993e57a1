"""Constraints: capacities, concurrency limits and pauses (run: python docs/snippets/constraints.py)."""

import asyncio

import cascade as cs

running = {"now": 0, "max": 0}


@cs.task
async def fetch(i: int) -> int:
    running["now"] += 1
    running["max"] = max(running["max"], running["now"])
    await asyncio.sleep(0.01)
    running["now"] -= 1
    return i


@cs.task
def total(xs: list[int]) -> int:
    return sum(xs)


async def main() -> None:
    # with_constraints: each call holds 1 of the engine's 2 "gpu" slots while it runs
    engine = cs.Engine(system_resources={"gpu": 2})
    print(await engine.run(total(fetch.map(i=range(8)).with_constraints(gpu=1))))  # 28
    print(f"at most {running['max']} at once")  # at most 2 at once

    # a concurrency limit by task name (also settable from outside: docs/control-plane.md)
    running["max"] = 0
    engine = cs.Engine()
    engine.constraints.limit("task:fetch", concurrency=3)
    print(await engine.run(total(fetch.map(i=range(8)))), f"at most {running['max']} at once")  # 28 at most 3

    # a pause holds calls until resumed; blocked calls emit TaskBlocked
    engine.bus.subscribe(cs.TaskBlocked, lambda e: print(f"blocked {e.task_name}: {e.reason}"))
    engine.pause("fetch")
    run = asyncio.ensure_future(engine.run(fetch(1)))
    await asyncio.sleep(0.05)
    print("done while paused?", run.done())  # False
    engine.resume("fetch")
    print(await run)  # 1


asyncio.run(main())
