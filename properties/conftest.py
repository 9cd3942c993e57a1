"""Pytest wiring of the property suite: Hypothesis profiles (see :mod:`properties.profiles`) and the
``nightly`` marker. The ci run deselects ``nightly`` tests unless ``HYPOTHESIS_PROFILE=nightly`` (or
an explicit ``-m`` expression) asks for them."""

from __future__ import annotations

import pytest

from properties.profiles import PROFILE


def pytest_configure(config: pytest.Config) -> None:
    # The repo's pytest config turns warnings into errors; Hypothesis' failure reporting imports
    # mypy_extensions, whose deprecation warning would turn every falsifying example into an
    # INTERNALERROR instead of a readable report.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:mypy_extensions")
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
    config.addinivalue_line(
        "markers", "nightly: slow property (flat memory over long loops); runs with HYPOTHESIS_PROFILE=nightly"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PROFILE == "nightly" or config.getoption("markexpr"):
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("nightly") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_collection_finish(session: pytest.Session) -> None:
    # Hypothesis properties run longer than the unit tests' 120 s pytest-timeout default.
    for item in session.items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(1800))
