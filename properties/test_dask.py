"""Invariant 1 with every task body running on Dask: hot = slow = model through ``cs.DaskExecutor``.

A ``LocalCluster`` whose one worker (one thread) runs in this process is started for this module
and closed after; each example's engines get ``Engine(remote=DaskExecutor(address))``, whose client
is opened in the example's event loop and closed with it. The workflows' tasks are closures (see
:mod:`properties.builder`): cloudpickle ships them, and the run's recorder reaches the worker because
an in-process worker runs the body in a copy of the caller's context. Every task of a description
is made before the runs, so a lazy result a remote body builds (a tail call) uses tasks this
process knows and the loops still reach hot plans (checked: ``hot_plan_hits > 0`` whenever a
template repeats).

Remote completions arrive in the cluster's order, so hot and slow events are compared as
multisets, and the workflows are those whose outcome cannot depend on that order (as for the
stores, properties/test_stores.py): the model says the run succeeds, no sub-loops (nested
evaluations number their iterations as they start), no constraints (who waits for a slot).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import assume, given

import cascade as cs

from .builder import Built, fresh_prefix
from .model import KINDS, Workflow, run_model
from .profiles import ci_settings
from .strategies import workflows
from .test_equivalence import check_hot_slow_model

EXAMPLES = 15  # ci budget: every example connects a client and runs three engines on the cluster
DASK_KINDS = tuple(k for k in KINDS if k not in ("sub", "constrained"))


class _Cluster:
    address = ""


CLUSTER = _Cluster()


@contextlib.contextmanager
def running_cluster() -> Iterator[str]:
    """A LocalCluster with one in-process worker of one thread, closed on exit."""
    try:
        from distributed import LocalCluster
    except ImportError as exc:  # a missing extra fails loudly, never skips
        raise RuntimeError("the Dask properties need the dask extra: pip install -e '.[dask]'") from exc
    cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    CLUSTER.address = cluster.scheduler_address
    try:
        yield cluster.scheduler_address
    finally:
        CLUSTER.address = ""
        cluster.close()


@pytest.fixture(scope="module", autouse=True)
def dask_cluster() -> Iterator[str]:
    """The cluster of this module's property."""
    with running_cluster() as address:
        yield address


@contextlib.asynccontextmanager
async def dask_remote() -> AsyncIterator[dict[str, Any]]:
    """Engine options for one example: every task body on the cluster; the client closed after."""
    async with cs.DaskExecutor(CLUSTER.address) as executor:
        yield {"remote": executor}
        assert executor.submitted > 0, "no call went to Dask"


def prepared(wf: Workflow) -> Built:
    """The description's tasks, every one made now (remote bodies build iterations from copies of
    ``built``: a task first made there would be a new task each time)."""
    built = Built(wf)
    for scope, lps in (("L", wf.loops), ("S", wf.subs)):
        for loop, lp in enumerate(lps):
            for b, body in enumerate(lp.bodies):
                for i, node in enumerate(body.nodes):
                    built.task(scope, loop, b, i, node)
    return built


def check_with_dask(wf: Workflow) -> None:
    """Invariant 1 with every body on Dask (the workflows this module covers, see its docstring)."""
    assume(run_model(wf, fresh_prefix()).ok)
    check_hot_slow_model(wf, setup=dask_remote, ordered_events=False, built=prepared(wf))


@ci_settings(EXAMPLES)
@given(workflows(kinds=DASK_KINDS, max_subs=0))
def test_hot_slow_model_with_dask_executor(wf: Workflow) -> None:
    check_with_dask(wf)
