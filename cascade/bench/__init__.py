"""Throughput workloads: each a Cascade loop and a hand-written asyncio baseline doing the same work.

Used by ``cascade bench`` (see :mod:`cascade.cli.main`); the asv suite in ``asv_benchmarks/`` keeps its
own copies written against the public API only, so that it also runs on older commits.
"""

from __future__ import annotations

from .runner import Measurement, WorkloadResult, measure_workload, run_suite
from .workloads import WORKLOADS, Workload, get_workloads

__all__ = [
    "WORKLOADS", "Measurement", "Workload", "WorkloadResult", "get_workloads", "measure_workload", "run_suite",
]
