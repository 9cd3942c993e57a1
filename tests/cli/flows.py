"""Workflows the command-line tests run by module path (``tests.cli.flows:NAME``)."""

from __future__ import annotations

import cascade as cs


@cs.task
def countdown(n, acc=0):
    return acc if n == 0 else countdown(n - 1, acc + n)


countdown_100 = countdown(100)
