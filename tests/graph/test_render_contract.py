"""The header of ``cs.dry_run`` in detail: which plan it names, and how."""

from __future__ import annotations

import io
import re

import cascade as cs


@cs.task(name="rc_add")
def add(x: int, y: int) -> int:
    return x + y


@cs.task(name="rc_neg")
def neg(x: int) -> int:
    return -x


def header(target: object) -> str:
    """The first line ``cs.dry_run`` prints for ``target``."""
    return cs.dry_run(target, file=io.StringIO()).splitlines()[0]


def test_the_dry_run_header_names_the_shape_by_twelve_hex_digits_and_counts_nodes_and_stages() -> None:
    line = header(add(neg(1), neg(2)))
    assert re.fullmatch(r"plan [0-9a-f]{12}: 3 nodes in 2 stages", line), line
    assert header(add(neg(5), neg(6))) == line  # other literals, one shape: one name
    other = header(neg(add(1, 2)))
    assert re.fullmatch(r"plan [0-9a-f]{12}: 2 nodes in 2 stages", other), other
    assert other.split(":")[0] != line.split(":")[0]
