"""Every runtime test also checks that the event loop reported nothing.

An error raised in a done-callback, a Task whose exception nobody retrieved, or a Task destroyed
while pending reaches only the loop's exception handler: the run's result can still be right. Such
a report is a bug a user sees in the log, so a test that provokes one fails.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def loop_reports_nothing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    reports: list[dict[str, Any]] = []
    original = asyncio.BaseEventLoop.default_exception_handler

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(context)
        original(loop, context)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "default_exception_handler", record)
    yield reports
    gc.collect()  # a Task destroyed while pending reports from its finaliser
    assert not reports, [c.get("message") for c in reports]
