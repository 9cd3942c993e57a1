"""Events: subscribe to what a run does (run: python docs/snippets/events.py)."""

import asyncio

import cascade as cs


@cs.task
def double(x: int) -> int:
    return 2 * x


def show(event: cs.Event) -> None:
    name = type(event).__name__
    print(name, getattr(event, "task_name", ""), getattr(event, "status", ""))


async def main() -> None:
    engine = cs.Engine()
    engine.bus.subscribe(cs.Event, show)  # every event; or one class: cs.TaskExecutionFinished
    print(await engine.run(double(21)))


asyncio.run(main())
