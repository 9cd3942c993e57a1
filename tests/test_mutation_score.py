"""tools/mutation_score.py: the per-module breakdown of a mutmut listing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "mutation_score", Path(__file__).resolve().parent.parent / "tools" / "mutation_score.py")
assert _spec is not None and _spec.loader is not None
mutation_score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation_score)


def test_mutants_are_counted_per_module_functions_and_methods_alike() -> None:
    status = {
        "cascade.runtime.state.x_clear__mutmut_1": "killed",
        "cascade.runtime.state.xǁInMemoryStateBackendǁset__mutmut_2": "survived",
        "cascade.runtime.state.xǁInMemoryStateBackendǁset__mutmut_3": "timeout",
        "cascade.graph.plan.x__stages_by_level__mutmut_1": "no tests",
        "cascade.graph.plan.x__stages_by_level__mutmut_2": "not checked",
    }
    assert mutation_score.by_module(status) == [
        ("cascade.graph.plan", 0, 1, 1),
        ("cascade.runtime.state", 2, 3, 1),
    ]
