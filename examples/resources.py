"""Resources: a database connection set up once per run and a per-call scratch buffer, both torn down.

Run it::

    python examples/resources.py

A ``@cs.resource`` is a generator: the code before ``yield`` sets the value up, the code after it
tears it down, also when the run fails. Register resources on the engine; a task asks for one with a
``cs.inject(name)`` default. ``scope="run"`` (the default) is shared by every call of a run,
``scope="task"`` is made fresh around each call that injects it.
"""

from __future__ import annotations

import itertools

import cascade as cs

log: list[str] = []
_ids = itertools.count(1)


@cs.resource
def db():
    """A run-scope 'connection' (a dict standing for a real client)."""
    conn = {"id": next(_ids), "rows": {"alice": 3, "bob": 5, "carol": 8}}
    log.append(f"open db #{conn['id']}")
    yield conn
    log.append(f"close db #{conn['id']}")


@cs.resource(scope="task")
def scratch():
    """A task-scope buffer: one per call, gone after it."""
    buf: list[str] = []
    yield buf
    log.append(f"drop scratch ({len(buf)} item)")


@cs.task
def lookup(name: str, conn=cs.inject("db"), buf=cs.inject("scratch")) -> int:  # noqa: B008
    """Read one row through the shared connection."""
    buf.append(name)
    return conn["rows"][name]


@cs.task
def total(values: list[int], conn=cs.inject("db")) -> str:  # noqa: B008
    """Sum the rows; the same connection object as the lookups used."""
    return f"total {sum(values)} via db #{conn['id']}"


def main() -> None:
    flow = total(lookup.map(name=["alice", "bob", "carol"]))
    print(cs.run(flow, resources=[db, scratch]))  # cs.run's keywords go to its Engine
    for line in log:
        print(line)


if __name__ == "__main__":
    main()
