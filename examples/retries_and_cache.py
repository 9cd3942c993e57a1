"""Retries and caching: a flaky call retried with backoff, an expensive call computed once.

Run it::

    python examples/retries_and_cache.py

``with_retry(max_attempts, delay, backoff)`` re-runs a call that raised; ``with_cache(policy)`` looks
the call up by task and arguments before running it. The events show what happened.
"""

from __future__ import annotations

import asyncio

import cascade as cs

attempts: dict[str, int] = {}


@cs.task
def flaky_fetch(url: str) -> str:
    """Fails on its first two attempts for each url, as a shaky network would."""
    attempts[url] = attempts.get(url, 0) + 1
    if attempts[url] < 3:
        raise ConnectionError(f"{url}: connection reset (attempt {attempts[url]})")
    return f"<page {url}>"


computed: list[int] = []


@cs.task
def expensive(n: int) -> int:
    """Stands for a slow computation: records every time it really runs."""
    computed.append(n)
    return sum(i * i for i in range(n))


def show_retry(event: cs.TaskRetrying) -> None:
    print(f"  retrying {event.task_name}: {event.error}")


def show_cache_hit(event: cs.TaskExecutionFinished) -> None:
    if event.status == "Cached":
        print(f"  {event.task_name}: cache hit")


def main() -> None:
    engine = cs.Engine()
    engine.bus.subscribe(cs.TaskRetrying, show_retry)
    engine.bus.subscribe(cs.TaskExecutionFinished, show_cache_hit)

    async def go() -> None:
        page = await engine.run(flaky_fetch("example.org").with_retry(max_attempts=3, delay=0.01, backoff=2))
        print(f"fetched {page} after {attempts['example.org']} attempts")

        cache = cs.InMemoryCache(maxsize=100)
        first = await engine.run(expensive(10_000).with_cache(cache))
        second = await engine.run(expensive(10_000).with_cache(cache))
        print(f"expensive(10000) = {first} twice ({first == second}), computed {len(computed)} time(s)")

        try:
            await engine.run(flaky_fetch("down.example").with_retry(max_attempts=2))
        except ConnectionError as exc:
            print(f"gave up: {exc}")

    asyncio.run(go())


if __name__ == "__main__":
    main()
