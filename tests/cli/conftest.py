"""Fixtures for the command-line tests: typer's test runner and a workflow file to point it at."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

FLOW = '''
import cascade as cs

@cs.task
async def fetch(n):
    return n * 2

@cs.task
def total(values, bonus=0):
    return sum(values) + bonus

@cs.task
def explode(x):
    raise ValueError("boom")

main = total(fetch.map(n=[1, 2, 3]))

def with_param():
    return total([1], bonus=cs.Param("bonus"))

failing = explode(1)
not_lazy = 42
'''


@pytest.fixture
def runner() -> CliRunner:
    """typer's CliRunner (stdout and stderr kept apart)."""
    return CliRunner()


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    """A small workflow module on disk: ``main`` (12), ``with_param`` (1 + bonus), ``failing``."""
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    return path
