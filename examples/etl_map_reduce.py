"""ETL with map/reduce: extract records, transform each one concurrently, reduce them, load a report.

Run it::

    python examples/etl_map_reduce.py

``transform.map(rec=extract())`` makes one call per record ``extract`` returns (a dynamic map: the
calls are made when the records are known); the calls run concurrently (each sleeps to stand for
I/O) and their values come back as a list in input order.
"""

from __future__ import annotations

import asyncio

import cascade as cs

RAW = [
    "alice,berlin,31",
    "bob,paris,45",
    "carol,berlin,27",
    "dave,rome,38",
    "erin,paris,22",
    "frank,berlin,50",
]


@cs.task
def extract() -> list[str]:
    """Read the raw records (a real pipeline would read a file or an API)."""
    return list(RAW)


in_flight = {"now": 0, "max": 0}  # how many transforms run at once


@cs.task
async def transform(rec: str) -> dict:
    """Parse one CSV line (the sleep stands for a lookup over the network)."""
    in_flight["now"] += 1
    in_flight["max"] = max(in_flight["max"], in_flight["now"])
    try:
        await asyncio.sleep(0.05)
    finally:
        in_flight["now"] -= 1
    name, city, age = rec.split(",")
    return {"name": name.title(), "city": city, "age": int(age)}


@cs.task
def by_city(rows: list[dict]) -> dict[str, list[str]]:
    """Reduce: names grouped by city, cities sorted."""
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["city"], []).append(row["name"])
    return dict(sorted(out.items()))


@cs.task
def mean_age(rows: list[dict]) -> float:
    """Reduce: the mean age."""
    return sum(r["age"] for r in rows) / len(rows)


@cs.task
def load(groups: dict[str, list[str]], age: float) -> str:
    """Load: here, format the report (a real pipeline would write it somewhere)."""
    lines = [f"{city}: {', '.join(names)}" for city, names in groups.items()]
    return "\n".join(lines + [f"mean age: {age:.1f}"])


def main() -> None:
    rows = transform.map(rec=extract())  # one call per record extract() returns; nothing runs yet
    report = load(by_city(rows), mean_age(rows))  # both reductions share the mapped rows
    print(cs.run(report))
    print(f"{len(RAW)} records, at most {in_flight['max']} transforms in flight at once")


if __name__ == "__main__":
    main()
