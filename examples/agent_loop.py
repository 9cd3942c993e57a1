"""A tail-call agent loop: agents that observe, decide and act until they reach their goal.

Run it::

    python examples/agent_loop.py

Each agent guesses a hidden number by bisection. One turn is one iteration: ``ask`` (the
environment's answer to the guess) runs first, then ``agent`` decides and returns the *next turn*
as a lazy call of itself. That return is a tail call: the engine loops, the Python stack stays
flat however many turns it takes, and from the second turn on the iteration runs from a hot plan
(the compiled template is reused; only the new values are bound). Several agents share one Engine
concurrently.
"""

from __future__ import annotations

import asyncio

import cascade as cs


@cs.task
async def ask(secret: int, guess: int) -> int:
    """The environment: -1 when the guess is too low, 1 when too high, 0 when right."""
    await asyncio.sleep(0)  # stands for a call to the outside world
    return (guess > secret) - (guess < secret)


@cs.task
def agent(name: str, secret: int, lo: int, hi: int, guess: int, answer: int | None, turns: int):
    """One turn: read the answer to the last guess, then stop or take the next turn."""
    if answer == 0:
        return f"{name} found {guess} in {turns} turns"
    if answer is not None:
        lo, hi = (guess + 1, hi) if answer < 0 else (lo, guess - 1)
    nxt = (lo + hi) // 2
    return agent(name, secret, lo, hi, nxt, ask(secret, nxt), turns + 1)  # the tail call


async def main_async() -> None:
    engine = cs.Engine()
    secrets = {"ada": 1, "bo": 777_777, "cy": 999_999}
    results = await asyncio.gather(*(
        engine.run(agent(name, secret, 0, 1_000_000, -1, None, 0)) for name, secret in secrets.items()
    ))
    for line in results:
        print(line)
    stats = engine.stats
    iterations = len(secrets) + stats.tail_calls  # each run's first iteration, then its tail calls
    print(f"{iterations} iterations: {stats.hot_plan_misses} compiled, {stats.hot_plan_hits} from a hot plan")


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
