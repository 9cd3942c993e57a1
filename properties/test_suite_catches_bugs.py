"""The property suite catches realistic engine bugs.

Each test injects one bug with pytest's ``monkeypatch`` (patching names where the engine looks them
up; no file is edited) and runs the matching property's check under Hypothesis with the property's
own ci budget (derandomized, no shrinking): the property must find a counterexample.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cascade.runtime.engine as engine_mod
import cascade.runtime.executor as executor_mod
import cascade.runtime.loop as loop_mod
import cascade.spec.lazy as lazy_mod
from cascade.spec.lazy import MappedLazyResult

from .profiles import budget
from .strategies import alternating_workflows, workflows
from .test_equivalence import ALTERNATING_EXAMPLES, check_hot_slow_model
from .test_equivalence import EXAMPLES as EQUIVALENCE_EXAMPLES
from .test_isolation import EXAMPLES as ISOLATION_EXAMPLES
from .test_isolation import check_isolation, fleets
from .test_keyword_binding import EXAMPLES as KEYWORD_EXAMPLES
from .test_keyword_binding import cases, check_keyword_binding

Scheduler = executor_mod.Scheduler


def expect_counterexample(check: Callable[[Any], None], strategy: st.SearchStrategy[Any], ci_budget: int) -> None:
    """Run ``check`` as a property with ``ci_budget`` examples; it must fail with an AssertionError."""

    @settings(max_examples=budget(ci_budget), derandomize=True, database=None, deadline=None,
              phases=(Phase.generate,), report_multiple_bugs=False, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(strategy)
    def prop(value: Any) -> None:
        check(value)

    with pytest.raises(AssertionError):
        prop()


def test_catches_hot_path_ignoring_run_if(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Scheduler._decide

    def decide(self: Any, st: Any) -> Any:
        if not self.full and st.cond >= 0:  # the hot path forgets the condition
            st = dataclasses.replace(st, cond=-1)
        return original(self, st)

    monkeypatch.setattr(Scheduler, "_decide", decide)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_hot_path_reusing_stale_inner_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    first: dict[int, tuple[Any, list[Any]]] = {}
    original = loop_mod.bind

    def stale_bind(prog: Any, target: Any, into: Any = None) -> Any:
        objs = original(prog, target)
        if objs is None:
            return None
        kept = first.setdefault(id(prog), (prog, list(objs)))[1]
        return kept[:-1] + [objs[-1]]  # non-root objects come from the first bound iteration

    monkeypatch.setattr(loop_mod, "bind", stale_bind)
    monkeypatch.setattr(engine_mod, "bind", stale_bind)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_reused_binding_list_keeping_a_slot_of_the_last_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    original = loop_mod.bind

    def bind(prog: Any, target: Any, into: Any = None) -> Any:
        objs = original(prog, target)
        if objs is None or into is None or len(into) != len(objs):
            return objs
        into[1:] = objs[1:]  # the first step's slot keeps what the last iteration left there
        return into

    monkeypatch.setattr(loop_mod, "bind", bind)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_argument_positions_taken_for_the_leading_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    # A call whose lazy inputs are some of its positional arguments keeps their positions (one
    # shared tuple per pattern); here the positions are taken to be the first ones, so ``f(1, a)``
    # would read its input from where the literal is.
    def at(mask: int) -> Any:
        return lazy_mod._tuple_new(lazy_mod._At, range(bin(mask).count("1")))

    monkeypatch.setattr(lazy_mod, "_at", at)
    monkeypatch.setattr(lazy_mod, "_AT_BY_MASK", {})  # every pattern goes through ``_at``
    monkeypatch.setattr(lazy_mod, "_AT0", at(1))
    monkeypatch.setattr(lazy_mod, "_AT1", at(2))
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_hot_path_skipping_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Scheduler._attempts

    def attempts(self: Any, p: int, st: Any, args: Any, kwargs: Any) -> Any:
        if not self.full and st.retry is not None:  # the cached program lost its retry policy
            st = dataclasses.replace(st, retry=None)
        return original(self, p, st, args, kwargs)

    monkeypatch.setattr(Scheduler, "_attempts", attempts)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_flow_state_shared_between_concurrent_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    shared: dict[int, tuple[Any, list[Any]]] = {}
    original = Scheduler.__init__

    def init(self: Any, prog: Any, objs: Any, ctx: Any, full: bool, iteration: int,
             values: Any = None, *rest: Any, **kw: Any) -> None:
        pool = shared.setdefault(id(prog), (prog, [None] * prog.size))[1]  # one values list per program
        if values is not None:
            pool[:] = values
        original(self, prog, objs, ctx, full, iteration, pool, *rest, **kw)

    monkeypatch.setattr(Scheduler, "__init__", init)
    expect_counterexample(check_isolation, fleets(with_failure=False, with_cancel=False), ISOLATION_EXAMPLES)


def test_catches_router_pruning_a_branch_another_consumer_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    original = engine_mod.compile_program

    def compile_program(*args: Any, **kwargs: Any) -> Any:
        prog = original(*args, **kwargs)
        if not prog.has_routers:
            return prog
        steps = prog.steps
        routed = {d for s in steps if s.kind == executor_mod.ROUTER for d in s.deps[1:]}
        needed = [False] * len(steps)
        stack = [len(steps) - 1]
        while stack:  # "needed" stops at every route branch, even one another consumer uses
            p = stack.pop()
            if needed[p] or p in routed:
                continue
            needed[p] = True
            stack.extend(steps[p].inputs)
        return dataclasses.replace(prog, needed=tuple(needed),
                                   ready0=tuple(p for p in prog.ready0 if needed[p]))

    monkeypatch.setattr(engine_mod, "compile_program", compile_program)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_template_key_ignoring_map_element_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def init(self: Any, task: Any, elements: Any) -> None:
        sa = object.__setattr__
        sa(self, "task", task)
        sa(self, "elements", elements)
        sa(self, "_deps", elements)
        # the element count is left out of the shape: a map of 3 binds to a program compiled for 2
        sa(self, "_shape", hash(("map", task.key, elements[0]._shape if elements else None)))

    monkeypatch.setattr(MappedLazyResult, "__init__", init)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_hot_path_ignoring_constraints_set_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_governance_outside import EXAMPLES as GOVERNANCE_EXAMPLES
    from .test_governance_outside import check_governance, schedules

    original = Scheduler._start

    def start(self: Any, p: int) -> None:
        st_ = self.steps[p]
        if not self.full and st_.kind not in (executor_mod.MAP, executor_mod.ROUTER) and not st_.governed:
            self.state[p] = executor_mod.RUNNING
            self._call_plain(p, st_)  # the hot path forgets to read ``gating``
            return
        original(self, p)

    monkeypatch.setattr(Scheduler, "_start", start)
    expect_counterexample(check_governance, schedules(), GOVERNANCE_EXAMPLES)


def test_catches_a_constraint_wake_up_that_reaches_one_waiter_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from time import monotonic

    from cascade.runtime.constraints import ConstraintManager

    from .test_governance_outside import EXAMPLES as GOVERNANCE_EXAMPLES
    from .test_governance_outside import check_governance, schedules

    def grant_one(self: Any, now: float | None = None) -> None:
        # like one shared wake-up event: the first waiter that may go is woken, the others are lost
        for name, queue in list(self._queues.items()):
            while queue and queue[0][1].done():
                queue.popleft()
            if not queue:
                del self._queues[name]
                continue
            if self._blocker(name, monotonic() if now is None else now) is None:
                _, fut = queue.popleft()
                if not queue:
                    del self._queues[name]
                self._grant(name)
                fut.set_result(None)
            break
        self._schedule(now)

    monkeypatch.setattr(ConstraintManager, "_pass", grant_one)
    expect_counterexample(check_governance, schedules(), GOVERNANCE_EXAMPLES)


# -- stores and cache keys (properties/test_cache_keys.py, properties/test_stores.py) ---------------

def test_catches_cache_key_comparing_by_equality(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.runtime.caching as caching_mod

    from .test_cache_keys import EXAMPLES as KEY_EXAMPLES
    from .test_cache_keys import call_sequences, check_exact_cache_keys

    ids: dict[Any, str] = {}

    def equality_key(fingerprint: str, version: Any, args: Any, kwargs: Any, skip: Any = frozenset()) -> str:
        # the old key: a dict lookup, so 1, True and 1.0 (equal, one hash) get one entry
        from cascade.graph.identity import encode_literal

        try:
            k: Any = (fingerprint, version, tuple(args), tuple(sorted(kwargs.items())))
            hash(k)
        except TypeError:
            k = (fingerprint, version, encode_literal(list(args)), encode_literal(dict(kwargs)))
        return ids.setdefault(k, format(len(ids), "x"))

    monkeypatch.setattr(caching_mod, "cache_key", equality_key)
    expect_counterexample(check_exact_cache_keys, call_sequences(), KEY_EXAMPLES)


def test_catches_a_cache_format_that_reads_tuples_back_as_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.adapters.serialization as ser

    from .test_cache_keys import EXAMPLES as KEY_EXAMPLES
    from .test_cache_keys import call_sequences, check_exact_cache_keys

    original = ser._enc

    def plain_json(v: Any) -> Any:  # tuples written as JSON arrays, untagged
        return [plain_json(x) for x in v] if type(v) is tuple else original(v)

    monkeypatch.setattr(ser, "_enc", plain_json)
    expect_counterexample(check_exact_cache_keys, call_sequences(), KEY_EXAMPLES)


def test_catches_a_state_backend_not_namespaced_by_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade as cs
    from tests.adapters.redis_server import RedisServer

    from . import test_stores

    monkeypatch.setattr(cs.RedisStateBackend, "run_key", lambda self, run_id: f"{self.prefix}{self.namespace}:all-runs")
    server = RedisServer()
    monkeypatch.setattr(test_stores.STORES, "url", server.url)
    try:
        expect_counterexample(test_stores.check_shared_state, workflows(kinds=test_stores.INTERLEAVING, max_subs=0),
                              test_stores.EXAMPLES)
    finally:
        server.stop()


def test_catches_a_written_out_walk_keeping_the_literals_it_was_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # Writing a program's walk out as source, the literal arguments of a call are folded into it as
    # constants (those of the iteration seen when it was written) instead of read from each
    # iteration's lazy result.
    import cascade.runtime.straight as straight_mod
    from cascade.runtime.program import A_LIT
    from cascade.spec.lazy import A0

    original = straight_mod._call

    def call(k: int, f: str, fast: Any, obj: Any, env: dict[str, Any]) -> Any:
        expr = original(k, f, fast, obj, env)
        if expr is not None and fast[3] == A_LIT:
            env[f"_seen{k}"] = obj[A0:]
            return f"{f}(*_seen{k})"
        return expr

    monkeypatch.setattr(straight_mod, "_call", call)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_written_out_walk_that_checks_the_gates_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The written-out walk checks for a pause or limit before its first step only, as if none
    # could be set while an iteration runs (from outside, between two of its steps).
    import cascade.runtime.straight as straight_mod

    from .test_governance_outside import EXAMPLES as OUTSIDE_EXAMPLES
    from .test_governance_outside import check_governance as check_outside
    from .test_governance_outside import schedules

    original = straight_mod._step

    def step(k: int, *args: Any) -> Any:
        parts = original(k, *args)
        if parts is not None and k > 0:
            start, finish = parts
            parts = [line for i, line in enumerate(start) if i not in (1, 2)], finish  # "if cm.gating: ..."
        return parts

    monkeypatch.setattr(straight_mod, "_step", step)
    expect_counterexample(check_outside, schedules(), OUTSIDE_EXAMPLES)


def test_catches_a_written_out_walk_keeping_its_values_in_locals_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The written-out walk passes each value on from a local and never stores it where the walker
    # does: a scheduler taking the iteration over then reads lazy results as values.
    import cascade.runtime.straight as straight_mod

    monkeypatch.setattr(straight_mod, "_keep", lambda k: "pass")
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_written_out_binder_that_leaves_a_slot_of_the_last_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    # The written-out binder fills the list it reuses from the second slot on: the first step keeps
    # the lazy result of the iteration before (``bind``'s own bug of that kind is tested above).
    import cascade.runtime.straight as straight_mod

    original_compile = compile

    def compile_(source: str, filename: str, mode: str) -> Any:
        if filename.startswith("<cascade binder"):
            source = source.replace("        into[0] = o0\n", "")
        return original_compile(source, filename, mode)

    monkeypatch.setattr(straight_mod, "compile", compile_, raising=False)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_written_out_run_that_loses_the_context_of_its_tail_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    # A template's run written out from engine.run (``Program.entry``) hands its tail call to the
    # loop on a context it makes but does not keep: run-scope resources that later iterations open
    # are never torn down, and a subscriber never hears the run end.
    import cascade.runtime.straight as straight_mod

    original_compile = compile
    rewritten = []

    def compile_(source: str, filename: str, mode: str) -> Any:
        was = "await (ctx := ctx or engine._first_context()).evaluate(v)\n"
        if filename.startswith("<cascade run of") and was in source:
            rewritten.append(filename)
            source = source.replace(was, "await (ctx or engine._first_context()).evaluate(v)\n")
        return original_compile(source, filename, mode)

    monkeypatch.setattr(straight_mod, "compile", compile_, raising=False)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)
    assert rewritten


def test_catches_a_written_out_run_that_checks_the_gates_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A template's run written out from engine.run checks for a pause or limit before its first
    # step only (the loop's own walks stay right): a change made from outside while such a run's
    # first iteration waits does not hold back its next call (the property's warm runs).
    import cascade.runtime.straight as straight_mod

    from .test_governance_outside import EXAMPLES as OUTSIDE_EXAMPLES
    from .test_governance_outside import check_governance as check_outside
    from .test_governance_outside import schedules

    original_compile = compile
    rewritten = []

    def compile_(source: str, filename: str, mode: str) -> Any:
        if filename.startswith("<cascade run of"):
            lines = source.split("\n")
            gates = [i for i, line in enumerate(lines) if line.strip() == "if cm.gating:"]
            if len(gates) > 1:
                rewritten.append(filename)
                drop = {j for i in gates[1:] for j in (i, i + 1)}
                source = "\n".join(line for j, line in enumerate(lines) if j not in drop)
        return original_compile(source, filename, mode)

    monkeypatch.setattr(straight_mod, "compile", compile_, raising=False)
    expect_counterexample(check_outside, schedules(), OUTSIDE_EXAMPLES)
    assert rewritten


# -- issue 9: one injected bug (at least) per family the suite must catch --------------------------
# governance on the hot path (properties/test_governance.py, test_machine.py)

def test_catches_hot_path_ignoring_pauses_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_governance import GOVERNANCE_EXAMPLES, check_governance, governed

    original = Scheduler._start

    def start(self: Any, p: int) -> None:
        cm = self.ctx.constraints
        gating = cm.gating
        if not self.full:
            cm.gating = False  # a hot iteration decides as if no pause or limit were in force
        try:
            original(self, p)
        finally:
            cm.gating = gating

    monkeypatch.setattr(Scheduler, "_start", start)
    expect_counterexample(check_governance, governed(), GOVERNANCE_EXAMPLES)


def _limits_do_not_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only pauses switch the hot path to governed calls; a concurrency limit set while a loop runs
    hot is honoured on the slow path only."""
    from cascade.runtime.constraints import ConstraintManager

    original = ConstraintManager._changed

    def changed(self: Any, entry: Any, cleared: bool) -> None:
        original(self, entry, cleared)
        self.gating = any(e.kind == "pause" for e in self._entries.values())

    monkeypatch.setattr(ConstraintManager, "_changed", changed)


def test_catches_limits_not_gating_the_hot_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_governance import GOVERNANCE_EXAMPLES, check_governance, governed

    _limits_do_not_gate(monkeypatch)
    expect_counterexample(check_governance, governed(), GOVERNANCE_EXAMPLES)


# liveness of capacity waiters (properties/test_governance.py::test_constraints_are_safe_and_live)

def test_catches_capacity_waiters_woken_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.runtime.constraints import ConstraintManager

    from .test_governance import FAN_EXAMPLES, check_fan, fans

    def release(self: Any, amounts: dict[str, float]) -> None:
        for n, a in amounts.items():
            self.available[n] += a
        rest = []
        while len(self._waiters) > 1:  # each release considers the head only
            rest.append(self._waiters.pop())
        self._wake()
        self._waiters.extend(reversed(rest))

    monkeypatch.setattr(ConstraintManager, "release", release)
    expect_counterexample(check_fan, fans(), FAN_EXAMPLES)


def test_catches_capacity_release_losing_the_wake_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.runtime.constraints import ConstraintManager

    from .test_governance import FAN_EXAMPLES, check_fan, fans

    def release(self: Any, amounts: dict[str, float]) -> None:
        for n, a in amounts.items():
            self.available[n] += a
        if self._waiters and all(a >= self._waiters[0][0].get(n, 0) for n, a in amounts.items()):
            self._wake()  # wakes only when what was just released covers the head by itself

    monkeypatch.setattr(ConstraintManager, "release", release)
    expect_counterexample(check_fan, fans(), FAN_EXAMPLES)


def test_catches_overlapping_calls_serialised(monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_governance import FAN_EXAMPLES, check_fan, fans

    def may_inline(self: Any, p: int, st_: Any) -> bool:
        return self.inline_task is None  # awaits every suspended call in place: results equal, no overlap

    monkeypatch.setattr(Scheduler, "_may_inline", may_inline)
    expect_counterexample(check_fan, fans(), FAN_EXAMPLES)


# shared-engine isolation: per-run bookkeeping reachable from two runs of one template

def _share_per_program(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    """Scheduler state ``field`` kept per program (one list for every run of a template, reset when
    an iteration starts) instead of per run."""
    shared: dict[int, tuple[Any, list[Any]]] = {}
    original = Scheduler.__init__

    def init(self: Any, prog: Any, *args: Any, **kwargs: Any) -> None:
        original(self, prog, *args, **kwargs)
        mine = getattr(self, field)
        if isinstance(mine, list) and len(mine) == prog.size:
            pool = shared.setdefault(id(prog), (prog, list(mine)))[1]
            pool[:] = mine
            setattr(self, field, pool)

    monkeypatch.setattr(Scheduler, "__init__", init)


@pytest.mark.parametrize("field", ["skipped", "chosen", "waiting"])
def test_catches_run_state_shared_between_runs_of_one_template(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    _share_per_program(monkeypatch, field)
    expect_counterexample(check_isolation, fleets(with_failure=False, with_cancel=False), ISOLATION_EXAMPLES)


# identity of literals (properties/test_identity.py::test_literal_types_are_part_of_identity)

def test_catches_literal_identity_by_numeric_value(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.graph.identity as identity_mod

    from .test_identity import LITERAL_EXAMPLES, literals, test_literal_types_are_part_of_identity

    original = identity_mod.encode_literal

    def encode(value: Any) -> str:
        if type(value) in (int, float, bool):  # "1, True and 1.0 are the same number"
            return f"num:{float(value)!r}"
        return original(value)

    monkeypatch.setattr(identity_mod, "encode_literal", encode)
    inner = test_literal_types_are_part_of_identity.hypothesis.inner_test  # type: ignore[attr-defined]
    expect_counterexample(lambda a: inner(*a), st.tuples(st.lists(literals, min_size=2, max_size=4),
                                                         st.randoms(use_true_random=False)), LITERAL_EXAMPLES)


# templates: what varies between iterations while the shape looks the same

def test_catches_router_template_ignoring_route_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.spec.lazy import Router

    original = Router.__init__

    def init(self: Any, selector: Any, routes: Any) -> None:
        original(self, selector, routes)
        # the keys are left out of the template: only the routes' shapes, in key order
        object.__setattr__(self, "_shape", hash(("router", selector._shape, tuple(routes[k]._shape for k in self.keys))))

    monkeypatch.setattr(Router, "__init__", init)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


# cache keys missing an input

def test_catches_cache_key_missing_keyword_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.runtime.caching as caching_mod

    original = caching_mod.cache_key

    def key(fingerprint: str, version: Any, args: Any, kwargs: Any, skip: Any = frozenset()) -> str:
        return original(fingerprint, version, args, {}, skip)  # keyword inputs left out

    monkeypatch.setattr(caching_mod, "cache_key", key)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


# events and failures on the hot path

def test_catches_hot_path_dropping_retry_events(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Scheduler.__init__

    class _NoRetryEvents:
        """The bus as a hot iteration sees it when it forgets to report retries."""

        def __init__(self, bus: Any) -> None:
            self._bus = bus

        def publish(self, event: Any) -> None:
            if type(event).__name__ != "TaskRetrying":
                self._bus.publish(event)

    def init(self: Any, prog: Any, objs: Any, ctx: Any, full: bool, *args: Any, **kwargs: Any) -> None:
        original(self, prog, objs, ctx, full, *args, **kwargs)
        if not full and self.bus is not None:
            self.bus = _NoRetryEvents(self.bus)

    monkeypatch.setattr(Scheduler, "__init__", init)
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


# cancellation: waiter bookkeeping

def test_catches_cancelled_waiter_removed_twice_from_the_constraint_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from cascade.runtime.constraints import ConstraintManager

    from .test_cancellation import EXAMPLES as CANCELLATION_EXAMPLES
    from .test_cancellation import cancel_plans, check_cancellation

    async def acquire(self: Any, amounts: dict[str, float]) -> None:
        # the old bookkeeping: a waiter cancelled in the loop cycle of a release was already dropped
        # from the queue by that release, and removing it again raises ValueError (not CancelledError)
        if self.try_acquire(amounts):
            return
        fut = asyncio.get_running_loop().create_future()
        entry = (amounts, fut)
        self._waiters.append(entry)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release(amounts)
            else:
                self._waiters.remove(entry)
                self._wake()
            raise

    monkeypatch.setattr(ConstraintManager, "acquire", acquire)
    expect_counterexample(check_cancellation, cancel_plans(), CANCELLATION_EXAMPLES)


def test_catches_connector_delivering_to_another_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.adapters.connector import InMemoryConnector, Message, _Inbox

    from .test_agents_at_scale import EXAMPLES as AGENT_EXAMPLES
    from .test_agents_at_scale import check_agents_isolated
    from .test_agents_at_scale import fleets as agent_fleets

    original = InMemoryConnector.publish_nowait

    def leaky(self: Any, topic: str, payload: Any, retain: bool = False) -> None:
        original(self, topic, payload, retain)
        first = next(iter(self._exact), None)  # cross talk: the oldest subscriber hears it too
        if first is not None and first != topic:
            subs = self._exact[first]  # a lone listening cs.recv, or a set of subscribers
            for sub in [subs] if type(subs) is _Inbox else list(subs):
                sub._deliver(Message(topic, payload, False))

    monkeypatch.setattr(InMemoryConnector, "publish_nowait", leaky)
    expect_counterexample(check_agents_isolated, agent_fleets(), AGENT_EXAMPLES)


def test_catches_a_recv_listener_that_stays_on_its_topic_after_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.adapters.connector import _Inbox

    from .test_agents_at_scale import EXAMPLES as AGENT_EXAMPLES
    from .test_agents_at_scale import check_agents_isolated
    from .test_agents_at_scale import fleets as agent_fleets

    def take_and_stay(self: Any, msg: Any) -> None:  # completes, but never leaves its topic
        if not self.done():
            self.set_result(msg)

    monkeypatch.setattr(_Inbox, "_take", take_and_stay)
    monkeypatch.setattr(_Inbox, "_deliver", take_and_stay)
    expect_counterexample(check_agents_isolated, agent_fleets(), AGENT_EXAMPLES)


def test_catches_a_cancelled_recv_listener_left_on_its_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from cascade.adapters.connector import _Inbox

    from .test_agents_at_scale import EXAMPLES as AGENT_EXAMPLES
    from .test_agents_at_scale import check_cancelled_agents_leave, fleets_with_cancellations

    def cancel_only(self: Any, msg: Any = None) -> bool:  # the future ends, its subscription stays
        return asyncio.Future.cancel(self, msg)

    monkeypatch.setattr(_Inbox, "cancel", cancel_only)
    expect_counterexample(check_cancelled_agents_leave, fleets_with_cancellations(), AGENT_EXAMPLES)


def test_catches_remote_calls_dropping_keyword_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.adapters.dask_executor import DaskExecutor

    from .test_dask import DASK_KINDS, check_with_dask, running_cluster
    from .test_dask import EXAMPLES as DASK_EXAMPLES

    original = DaskExecutor.call

    async def call(self: Any, fn: Any, args: Any, kwargs: Any, **options: Any) -> Any:
        return await original(self, fn, args, {}, **options)  # the payload forgets the keywords

    monkeypatch.setattr(DaskExecutor, "call", call)
    with running_cluster():
        expect_counterexample(check_with_dask, workflows(kinds=DASK_KINDS, max_subs=0), DASK_EXAMPLES)


def test_catches_a_rate_limit_overwriting_the_concurrency_limit_of_its_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.runtime.control import ConstraintListener

    from .test_governance_outside import EXAMPLES as GOVERNANCE_EXAMPLES
    from .test_governance_outside import check_governance, schedules

    original = ConstraintListener.on_message

    def on_message(self: Any, message: Any) -> None:
        # the ancestor's bug: one retained slot per scope, so a rate limit replaces the scope's
        # concurrency limit (and the other way round)
        parts = message.topic.split("/")
        if len(parts) == 4 and parts[3] in ("concurrency", "rate") and message.payload:
            self.constraints.clear(parts[2], "rate" if parts[3] == "concurrency" else "concurrency")
        original(self, message)

    monkeypatch.setattr(ConstraintListener, "on_message", on_message)
    expect_counterexample(check_governance, schedules(), GOVERNANCE_EXAMPLES)


def test_catches_subscribe_returning_before_the_retained_state_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade.adapters.mqtt import MQTTConnector
    from tests.adapters.mosquitto_server import MosquittoServer

    from .test_mqtt_delivery import EXAMPLES as DELIVERY_EXAMPLES
    from .test_mqtt_delivery import check_delivery, scripts

    async def no_barrier(self: Any, client: Any) -> None:
        return None  # subscribe() returns at SUBACK, as with a fixed sleep that is too short

    monkeypatch.setattr(MQTTConnector, "_barrier", no_barrier)
    server = MosquittoServer()
    try:
        expect_counterexample(lambda script: check_delivery(server.url, script), scripts, DELIVERY_EXAMPLES)
    finally:
        server.close()


def test_catches_a_dynamic_map_that_drops_its_element_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.task as task_mod

    from .test_dynamic_map import EXAMPLES as DYNAMIC_MAP_EXAMPLES
    from .test_dynamic_map import check_dynamic_map, specs

    original = task_mod._fan_out_task

    def fan_out_task(task: Any) -> Any:
        fan = original(task)

        def forgetful(names: Any, policies: Any, *values: Any) -> Any:
            return fan.fn(names, (), *values)  # with_retry on the map never reaches its elements

        bad = task_mod.Task(forgetful, name=fan.name, executor="local")
        bad.maps = task
        return bad

    monkeypatch.setattr(task_mod, "_fan_out_task", fan_out_task)
    expect_counterexample(check_dynamic_map, specs, DYNAMIC_MAP_EXAMPLES)


def test_catches_a_dynamic_map_that_loses_the_order_of_its_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.task as task_mod

    from .test_dynamic_map import EXAMPLES as DYNAMIC_MAP_EXAMPLES
    from .test_dynamic_map import check_dynamic_map, specs

    original = task_mod._fan_out_task

    def fan_out_task(task: Any) -> Any:
        fan = original(task)

        def reordering(names: Any, policies: Any, *values: Any) -> Any:
            # elements made from the inputs sorted by value (the upstream's order lost)
            return fan.fn(names, policies, *[sorted(v, reverse=True) if isinstance(v, list) else v for v in values])

        bad = task_mod.Task(reordering, name=fan.name, executor="local")
        bad.maps = task
        return bad

    monkeypatch.setattr(task_mod, "_fan_out_task", fan_out_task)
    expect_counterexample(check_dynamic_map, specs, DYNAMIC_MAP_EXAMPLES)


def test_catches_a_dynamic_map_reusing_its_first_expansion_of_a_length(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.task as task_mod

    from .test_dynamic_map import MODEL_EXAMPLES, dmap_workflows

    original = task_mod._fan_out_task
    expansions: dict[tuple[Any, int], Any] = {}

    def fan_out_task(task: Any) -> Any:
        fan = original(task)

        def memoizing(names: Any, policies: Any, *values: Any) -> Any:
            # an "optimisation" that keys the expanded map on its length, not on its elements
            size = len(list(values[0]))
            if (task, size) not in expansions:
                expansions[(task, size)] = fan.fn(names, policies, *values)
            return expansions[(task, size)]

        bad = task_mod.Task(memoizing, name=fan.name, executor="local")
        bad.maps = task
        return bad

    monkeypatch.setattr(task_mod, "_fan_out_task", fan_out_task)
    expect_counterexample(check_hot_slow_model, dmap_workflows, MODEL_EXAMPLES)


# keyword arguments stored as positional ones

def test_catches_keywords_folded_in_call_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.lazy as lazy_mod

    def fold(pos: Any, args: Any, kwargs: Any) -> Any:
        folded = list(args)
        for name in list(kwargs):  # the call's order, not the parameters'
            if name in pos[len(args):]:
                folded.append(kwargs.pop(name))
        return tuple(folded), kwargs

    monkeypatch.setattr(lazy_mod, "_fold_keywords", fold)
    expect_counterexample(check_keyword_binding, cases(), KEYWORD_EXAMPLES)


def test_catches_a_keyword_after_a_gap_stored_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.lazy as lazy_mod

    def regroup(task: Any, slots: Any, kwargs: Any) -> Any:
        return tuple(v for v in slots if v is not lazy_mod._UNSET), kwargs  # the gap closed up

    monkeypatch.setattr(lazy_mod, "_regroup", regroup)
    expect_counterexample(check_keyword_binding, cases(), KEYWORD_EXAMPLES)


def test_catches_a_signature_check_refusing_positional_only_names_in_var_keyword(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import cascade.spec.lazy as lazy_mod

    monkeypatch.setattr(lazy_mod, "_beside_positional_only", lambda sig, kwargs: kwargs)
    expect_counterexample(check_keyword_binding, cases(), KEYWORD_EXAMPLES)


def _drive_rewritten(monkeypatch: pytest.MonkeyPatch, old: str, new: str, *more: tuple[str, str]) -> None:
    """Run every loop with ``drive`` compiled from loop.py's source with ``old`` replaced by ``new``
    (and each further ``(old, new)`` pair in ``more``), in a namespace of its own; the module and
    its file are left as they are."""
    import inspect

    import cascade.runtime.context as context_mod

    source = inspect.getsource(loop_mod)
    for was, now in ((old, new), *more):
        assert source.count(was) == 1, was
        source = source.replace(was, now)
    namespace: dict[str, Any] = {"__name__": "cascade.runtime._loop_with_bug", "__package__": "cascade.runtime"}
    exec(compile(source, "<loop.py with a bug>", "exec"), namespace)
    monkeypatch.setattr(engine_mod.Engine, "run", namespace["drive"])
    monkeypatch.setattr(context_mod, "drive", namespace["drive"])


def test_catches_a_loop_lane_taken_while_someone_listens_to_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lane (the previous iteration's written-out walk, straight from binding) is taken without
    # asking whether the event bus is active: a repeated iteration publishes no task events.
    _drive_rewritten(monkeypatch, "if lane is not None and not event_bus.active:", "if lane is not None:")
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_loop_lane_that_trades_the_programs_but_not_their_walks(monkeypatch: pytest.MonkeyPatch) -> None:
    # When an iteration's template is the one before last, the two programs trade places but the
    # walk taken is still the previous program's.
    _drive_rewritten(monkeypatch, "                    lane, alt_lane = alt_lane, lane\n", "")
    expect_counterexample(check_hot_slow_model, workflows(), EQUIVALENCE_EXAMPLES)


def test_catches_a_loop_lane_list_kept_by_both_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A second reused list for the alternate program (the other's list, emptied, kept when they
    # trade places) that stays the current spare too: once a walk hands its iteration over (and so
    # does not take a new spare), one list is bound by both programs and emptied under a walk.
    # Only loops alternating templates of one length on the lane show it.
    _drive_rewritten(
        monkeypatch,
        "    spare: list[Any] | None = None\n",
        "    spare: list[Any] | None = None\n    alt_spare: list[Any] | None = None\n",
        ("                objs = alt_prog.binder(current, spare)  # type: ignore[union-attr]\n",
         "                objs = alt_prog.binder(current, alt_spare)  # type: ignore[union-attr]\n"),
        ("                    lane, alt_lane = alt_lane, lane\n",
         "                    lane, alt_lane = alt_lane, lane\n"
         "                    alt_spare = spare\n"
         "                    if spare is not None:\n"
         "                        spare[:] = [None] * len(spare)\n"),
    )
    expect_counterexample(check_hot_slow_model, alternating_workflows(), ALTERNATING_EXAMPLES)


def test_catches_a_call_granted_before_a_rate_limit_starting_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # A call granted under a concurrency limit resumes after a rate limit came into force and
    # starts without taking one of its tokens (the bug the nightly profile found): the schedule the
    # property runs as an explicit example shows it.
    from cascade.runtime.constraints import ConstraintManager

    from .test_governance_outside import RATE_AFTER_GRANT
    from .test_governance_outside import check_governance as check_outside

    monkeypatch.setattr(ConstraintManager, "_late_rates", lambda self, name, granted, now: [])
    with pytest.raises(AssertionError, match="starts of global"):
        check_outside(RATE_AFTER_GRANT)
