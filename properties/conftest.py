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


# Per-property time limit (pytest-timeout), by profile: the unit tests' 120 s default is too short
# for a property, and the nightly profile's 20x examples take the equivalence properties past half
# an hour on two cores (a limit there ends the run with no verdict, not with a counterexample).
PROPERTY_TIMEOUT = {"ci": 1800.0, "dev": 1800.0, "mutation": 1800.0, "nightly": 4 * 3600.0}


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.getoption("timeout") is not None:
        return  # an explicit ``--timeout`` on the command line (``--timeout 0``: none) applies as given
    for item in session.items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(PROPERTY_TIMEOUT[PROFILE]))
