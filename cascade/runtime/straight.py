"""A hot program's sequential walk and its binder as straight-line Python, one function each.

The walker in :mod:`cascade.runtime.loop` interprets a program step by step: per step it unpacks
the step's entry, dispatches on its operation and argument mode, and stores its value in a list.
For a program that runs again and again (a loop's iteration, the same small graph run many
times), that interpretation is most of what the engine costs on top of the calls themselves. Here
the same walk is written out once as source, with each step's function, argument reads and
checks in place, and compiled with :func:`compile`; the loop runs it instead of interpreting.

What the generated walk does is exactly what the walker does, in the same order, per step:

- check the engine's gates (``cm.gating``) and hand the rest of the iteration to the scheduler
  when one is set;
- call the task with the arguments the walker would pass (literals read from the step's lazy
  result, inputs from earlier steps' values);
- await a call every later step depends on in place; step any other async call once and hand the
  iteration over if it suspends; drive a sync task's returned awaitable the same way;
- evaluate a lazy result returned by a non-target call;
- on failure, name the failed call (``note_failure``) and re-raise.

It is used for simple programs (no flow, no governed step) of at most :data:`MAX_STEPS` steps,
run without events (an active bus) and once their run-scope resources are set up; everything else
keeps the walker. Each value is stored where its lazy result was, as the walker does (a
scheduler taking over reads them there, and a finished iteration keeps no lazy result alive);
arguments the walker resolves in general are resolved by the same functions from that list. It is generated on a program's first
hit (a program compiled for a one-shot graph never pays for it). The property suite compares hot
runs (which take this path) with slow runs and the model; docs/harness.md lists the injected bugs
it catches here.

The binder (:func:`straight_bind`) is :func:`~cascade.runtime.binding.bind` written out the same
way for a program of calls only: each node read from its parent at its compiled place and checked
in turn, with no loop over extraction entries.
"""

from __future__ import annotations

import re
from keyword import iskeyword
from typing import Any, Callable

from ..spec.lazy import (
    _CONTAINERS,
    A0,
    DEPS,
    KWARGS,
    SHAPE,
    TASK,
    LazyResult,
    MappedLazyResult,
    deps_of,
    nargs_of,
)
from .executor import (
    AWAITABLE_TYPES,
    NOT_AWAITABLE,
    Scheduler,
    advance,
    awaited,
    cancel_pending,
    note_failure,
    resolve_args,
    resolve_compiled,
    returned_awaitable,
)
from .program import (
    A_ALL,
    A_GENERAL,
    A_KW1,
    A_LIT,
    A_LIT_INJ,
    A_LIT_KW,
    A_ONE,
    A_RESOLVE,
    A_SEQ1,
    A_SUBS,
    CALL,
    OP_AWAIT_KW1,
    OP_AWAIT_LIST1,
    OP_AWAIT_ONE,
    OP_AWAIT_SEQ1,
    OP_MAP,
    Program,
)

__all__ = ["MAX_STEPS", "bind_checks", "straight_bind", "straight_run", "straight_walk"]

MAX_STEPS = 64  # longer programs keep the walker (source and compile time grow with the steps)

_LAZY_TYPES = frozenset({LazyResult, MappedLazyResult})


def straight_walk(prog: Program, objs: list[Any]) -> Any:
    """The generated walk of ``prog``, or ``None`` when it has a step only the walker runs.

    ``objs``: an iteration bound to ``prog`` (``bind``'s list): how many positional arguments each
    call has and whether it has keyword arguments is part of its template (``_shape``), so these
    are read from them once. ``values`` below is the bound objects in plan order (as ``bind``
    returns them), each replaced by its step's value as the walk goes.

    Two forms, by what the program calls:

    - with an async task in it: ``async def walk(values, ctx, cm, iteration)``, which awaits each
      call in place (one coroutine per iteration, what a chain of awaits costs least);
    - sync tasks only (an agent's ``cs.recv``, ``cs.publish`` and its own step): plain functions,
      ``(start, finish)``, so that a waiting iteration keeps no frame or coroutine of its own.
      ``start(values, ctx, cm, iteration)`` runs until a step waits; ``finish[k](values, ctx, cm,
      iteration, v)`` takes step ``k``'s value ``v`` and goes on.

    Each returns (the coroutine: with its value) ``(value, -1, None)`` when the iteration is done,
    ``(None, k, awaitable)`` when step ``k`` waits (plain form only: the caller awaits
    ``awaitable`` and calls ``finish[k]`` with the result; when the await raises, the caller
    cancels a pending future and names step ``k``, as the walker does), or ``(None, -2,
    scheduler)`` when the iteration was handed over (the caller awaits ``scheduler.run()``).
    """
    n = len(prog.steps)
    if n < 2 or n > MAX_STEPS or prog.single or not prog.simple:
        return None
    env = _walk_env(prog)
    plain = not any(st.is_async for st in prog.steps if st.kind == CALL)
    parts = []
    for k, (entry, st, fast) in enumerate(zip(prog.walk, prog.steps, prog.fast_entries())):
        step = _step(k, entry, st, fast, objs[k], env, plain)
        if step is None:
            return None
        parts.append(step)
    name = f"<cascade walk of {prog.steps[-1].name}>"
    if not plain:
        # (a finish's first line sets ``at`` again, for the plain form's functions: the start's here)
        body = [line for k, (start, finish) in enumerate(parts) for line in start + finish[1:] + [_keep(k)]]
        src = _function("async def walk(values, ctx, cm, iteration)", body, "return v, -1, None")
        return _define(src, name, env)["walk"]
    # Each function goes on through the steps that follow in place, up to _INLINE of them, rather
    # than calling the next step's finish: a call per step saved on an iteration that does not wait.
    src = _function("def _start(values, ctx, cm, iteration)", _rest(parts, 0), _then(n, 0))
    for k in range(n):
        src += _function(f"def _finish{k}(values, ctx, cm, iteration, v)",
                         parts[k][1] + [_keep(k)] + _rest(parts, k + 1), _then(n, k + 1))
    env = _define(src, name, env)
    return env["_start"], tuple(env[f"_finish{k}"] for k in range(n))


def straight_run(prog: Program, objs: list[Any]) -> Any:
    """A whole run of ``prog``'s template from ``engine.run`` on, written out, or ``None``.

    ``async def run(engine, target)`` is what ``drive(engine, target)`` does for a target bound to
    ``prog`` when ``drive`` would take the written-out walk at once (a hot engine, no params, no
    events, no state backend, no inputs to check, no run-scope resources), in one coroutine: the
    binder's checks, then the walk with each step's value in a local instead of a list, then the
    run's end. Many small concurrent runs of one graph then cost one coroutine and no list each.
    The run's context is made only when something needs it (a nested evaluation, a hand-over, the
    run's end with a subscriber): a run's id is made on first read, so no one can tell.

    Whatever the walk would not finish itself goes where ``drive`` sends it: a target that does
    not bind, or a subscriber or state backend at the start, runs in ``drive``; a hand-over (a gate,
    a suspended independent call) is awaited here as ``drive`` awaits it; a tail call continues in
    ``drive`` on this run's context, at iteration 2.
    """
    walk = prog.straight
    if not walk or type(walk) is tuple or not prog.binder or prog.checks_inputs or prog.run_resources:
        return None
    from .loop import BY_DRIVE, skipped_target  # loop imports this module

    n = len(prog.steps)
    env = _walk_env(prog)
    env.update(_skipped=skipped_target, _BY_DRIVE=BY_DRIVE, _Miss=_Miss, _name=prog.steps[-1].name)
    checks = bind_checks(prog, env, "raise _Miss")
    if checks is None:
        return None
    steps = []
    for k, (entry, st, fast) in enumerate(zip(prog.walk, prog.steps, prog.fast_entries())):
        step = _step(k, entry, st, fast, objs[k], env, False)
        if step is None:
            return None
        lines = step[0] + step[1][1:] + [_keep(k)]  # (the finish's ``at``: the start's)
        read = f"o = values[{k}]"
        if read in lines:  # the step's own lazy result read as a local of its own, not ``o``
            rest = [line for line in lines if line != read]
            if not any(_BARE_O.search(line) for line in rest):
                lines = [_O_ITEM.sub(f"o{k}[", line) for line in rest]
        steps += lines
    everything = ", ".join(f"o{p}" for p in range(n))
    body = []
    for line in steps:
        line = _VALUE.sub(r"o\1", line)
        line = _HANDOVER.sub(f"h = _Scheduler(_prog, (values := [{everything}]), "
                             r"(ctx := ctx or engine._first_context()), False, 1, values, \1); break", line)
        line = line.replace("ctx.evaluate(", "(ctx := ctx or engine._first_context()).evaluate(")
        if _NOT_WRITTEN.search(_HANDOVERS.sub("", line)):
            return None  # a step reads the values as a whole (resolved in general): the walk's list
        body.append(line)
    src = [
        "async def run(engine, target):",
        "    bus = engine.bus",
        "    if bus.active or engine.state_backend is not None:",
        "        return await engine.run(target, _BY_DRIVE)",
        "    try:",
        *("        " + line for line in checks),
        "    except _Miss:",
        "        return await engine.run(target, _BY_DRIVE)",
        "    target = None",
        "    engine.stats.hot_plan_hits += 1",
        "    cm = engine.constraints",
        "    ctx = h = failure = None",
        "    try:",
        "        at = 0",
        "        try:",
        "            while True:",
        *("                " + line for line in body),
        "                break",
        "        except BaseException as exc:",
        "            _note_failure(exc, _steps, at)",
        "            raise",
        "        if h is not None:",
        "            v, reason = await h.run()",
        "            h = values = None",
        "            if reason is not None:",
        "                _skipped(_name, reason)",
        "                return None",
        "        if type(v) in _LAZY:",
        "            engine.stats.tail_calls += 1",
        f"            o = {' = '.join(f'o{p}' for p in range(n))} = None  # none kept while the loop runs",
        "            v = await (ctx := ctx or engine._first_context()).evaluate(v)",
        "    except BaseException as exc:",
        "        failure = exc",
        "        raise",
        "    finally:",
        "        if ctx is not None and (ctx._gens or ctx.values and bus.active):",
        "            await engine._close_run(ctx, failure)",
        "        elif engine.state_backend is not None or bus.active:",
        "            engine._end_run(ctx or engine._first_context(), failure)",
        "    return v",
    ]
    return _define(src, f"<cascade run of {prog.steps[-1].name}>", env)["run"]


def _walk_env(prog: Program) -> dict[str, Any]:
    """The names a written-out walk of ``prog`` reads (its steps' functions are added as written)."""
    return {
        "_prog": prog, "_steps": prog.steps, "_Scheduler": Scheduler, "_advance": advance,
        "_awaited": awaited, "_note_failure": note_failure, "_cancel_pending": cancel_pending,
        "_returned_awaitable": returned_awaitable, "_NOT_AWAITABLE": NOT_AWAITABLE,
        "_AWAITS": AWAITABLE_TYPES, "_LAZY": _LAZY_TYPES,
    }


class _Miss(Exception):
    """A target that does not bind to the written-out run's program (it runs in ``drive``)."""


_VALUE = re.compile(r"\bvalues\[(\d+)\]")
_HANDOVER = re.compile(r"return None, -2, _Scheduler\(_prog, values, ctx, False, iteration, values, (.*)\)$")
_HANDOVERS = re.compile(r"h = _Scheduler\(.*; break$")
_NOT_WRITTEN = re.compile(r"\b(values|iteration)\b")
_O_ITEM = re.compile(r"\bo\[")
_BARE_O = re.compile(r"\bo\b(?!\[)")


_INLINE = 8  # steps a function of the plain form writes out in place before calling the next finish


def _rest(parts: list[tuple[list[str], list[str]]], k: int) -> list[str]:
    """Steps ``k``... written out in place, up to ``_INLINE`` of them: each started, finished and
    kept, but for the last of them when steps follow it (the function then calls its finish)."""
    n = len(parts)
    end = min(n, k + _INLINE) - 1
    body: list[str] = []
    for j in range(k, end + 1):
        body += parts[j][0]
        if j < end or end == n - 1:
            body += parts[j][1] + [_keep(j)]
    return body


def _then(n: int, k: int) -> str:
    """How a function whose in-place steps start at ``k`` ends (see ``_rest``)."""
    end = min(n, k + _INLINE) - 1
    if end == n - 1 or k >= n:
        return "return v, -1, None"
    return f"return _finish{end}(values, ctx, cm, iteration, v)"


def _define(src: list[str], name: str, env: dict[str, Any]) -> dict[str, Any]:
    exec(compile("\n".join(src) + "\n", name, "exec"), env)
    return env


def _function(signature: str, body: list[str], then: str) -> list[str]:
    """A function of the walk: ``body`` with failures named (the step is ``at``), then ``then``."""
    return [f"{signature}:", "    at = 0", "    try:", *("        " + line for line in body),
            "    except BaseException as exc:", "        _note_failure(exc, _steps, at)", "        raise",
            f"    {then}"]


def _keep(k: int) -> str:
    """Step ``k``'s value where its lazy result was, as the walker stores it: where later steps
    and a scheduler taking over read it, and what a finished iteration's list holds."""
    return f"values[{k}] = v"


def _handover(k: int, suspended: bool) -> str:
    """Return the scheduler that finishes the iteration from step ``k`` (its call suspended,
    ``coro`` having yielded ``v``; or not started: a gate is set)."""
    if suspended:
        return f"return None, -2, _Scheduler(_prog, values, ctx, False, iteration, values, {k}, (coro, v))"
    return f"return None, -2, _Scheduler(_prog, values, ctx, False, iteration, values, {k})"


def _step(k: int, entry: tuple[Any, ...], st: Any, fast: tuple[Any, ...], obj: Any,
          env: dict[str, Any], plain: bool) -> tuple[list[str], list[str]] | None:
    """Step ``k``'s start (the gate, the call: its value in ``v``, or in the plain form a return to
    wait) and its finish (with ``v`` its value), or ``None`` for a step only the walker runs."""
    op, fn, spec, _name, notlast = entry
    start = [f"at = {k}", "if cm.gating:", f"    {_handover(k, False)}"]
    if op == OP_MAP:
        if len(spec) > MAX_STEPS:
            return None
        return start + [f"v = [{', '.join(f'values[{d}]' for d in spec)}]"], [f"at = {k}"]
    f = f"_f{k}"
    env[f] = fn
    if op == OP_AWAIT_ONE:
        start += [f"v = await {f}(values[{spec}])"]
    elif op == OP_AWAIT_LIST1:
        start += [f"v = await {f}([values[{spec}]])"]
    elif op == OP_AWAIT_KW1:
        start += [f"v = await {f}({_keyword(k, spec[0], f'values[{spec[1]}]', env)})"]
    elif op == OP_AWAIT_SEQ1:
        start += [f"v = await {f}({_sequence(spec[0], spec[1])})"]
    else:
        call = _call(k, f, fast, obj, env)
        if call is None:
            return None
        if "o[" in call:
            start += [f"o = values[{k}]"]
        if "\n" in call:  # the arguments' resolution, then the call
            resolution, call = call.split("\n")
            start += [resolution]
        _, _, is_async, _, _, _, tail = fast
        if is_async:
            if tail:
                start += [f"v = await {call}"]
            else:
                start += [f"coro = {call}", *_stepped_once(k)]
        else:
            # a sync task: an awaitable it returns is driven as an async call's coroutine would be
            start += [f"v = {call}", "t = type(v)",
                      "if t in _AWAITS or t not in _NOT_AWAITABLE and _returned_awaitable(v):"]
            if tail and plain:
                start += [f"    return None, {k}, v"]
            elif tail:
                start += ["    coro = v", "    try:", "        v = await coro", "    except BaseException:",
                          "        _cancel_pending(coro)", "        raise"]
            else:
                start += ["    coro = _awaited(v)", *("    " + line for line in _stepped_once(k))]
    finish = [f"at = {k}"]
    if notlast:
        # a non-target call returned a lazy result: evaluated as the walker does (its value is
        # never lazy, so finishing the step again after waiting for it goes on)
        finish += ["if type(v) in _LAZY:"]
        if st.tail_dependent:
            finish += [f"    return None, {k}, ctx.evaluate(v)" if plain else "    v = await ctx.evaluate(v)"]
        else:
            finish += ["    coro = ctx.evaluate(v)", *("    " + line for line in _stepped_once(k))]
    return start, finish


def _stepped_once(k: int) -> list[str]:
    """Step ``coro`` (step ``k``'s call) once; hand the iteration over if it suspends."""
    return ["suspended, v = _advance(coro)", "if suspended:", f"    {_handover(k, True)}"]


def _keyword(k: int, name: str, value: str, env: dict[str, Any]) -> str:
    """The keyword argument ``name=value`` of a call; ``**{name: value}`` for a name that is not an
    identifier (a ``**kwargs`` parameter takes any string)."""
    if name.isidentifier() and not iskeyword(name):
        return f"{name}={value}"
    env[f"_kw{k}"] = name
    return f"**{{_kw{k}: {value}}}"


def _sequence(is_tuple: bool, positions: tuple[int, ...]) -> str:
    return _display(is_tuple, [f"values[{d}]" for d in positions])


def _display(is_tuple: bool, items: list[str]) -> str:
    """A tuple or list display of ``items`` (expressions)."""
    if not is_tuple:
        return f"[{', '.join(items)}]"
    return f"({', '.join(items)},)" if items else "()"


def _call(k: int, f: str, fast: tuple[Any, ...], obj: Any, env: dict[str, Any]) -> str | None:
    """The call expression of a general step (after a line that resolves its arguments, for a call
    whose arguments the walker resolves in general), or ``None`` for one it cannot write. ``o`` is
    the step's lazy result (``obj`` is one bound earlier, of the same template)."""
    _, _, _, am, aspec, _, _ = fast
    if am == A_ONE:
        return f"{f}(values[{aspec}])"
    if am == A_ALL:
        return f"{f}({', '.join(f'values[{d}]' for d in aspec)})"
    if am == A_SEQ1:
        return f"{f}({_sequence(aspec[0], aspec[1])})"
    if am == A_KW1:
        return f"{f}({_keyword(k, aspec[0], f'values[{aspec[1]}]', env)})"
    if am == A_RESOLVE and (written := _resolution(k, f, aspec, obj, env)) is not None:
        return written
    if am == A_RESOLVE or am == A_GENERAL:
        # resolved as the walker does, from the values list
        env["_resolve_compiled"] = resolve_compiled
        env["_resolve_args"] = resolve_args
        env[f"_spec{k}"] = aspec
        pre = "r = "
        if am == A_RESOLVE:
            pre += f"_resolve_compiled(_spec{k}, values[{k}], values) or "
        pre += f"_resolve_args(_steps[{k}], values[{k}], values, ctx, None)"
        return f"{pre}\n({f}(*r[0], **r[1]) if r[1] else {f}(*r[0]))"
    if am not in (A_LIT, A_LIT_KW, A_LIT_INJ, A_SUBS):
        return None
    args = [f"o[{A0 + i}]" for i in range(nargs_of(obj))]
    if am == A_SUBS:
        for i, d in aspec:
            args[i] = f"values[{d}]"
    if obj[KWARGS]:
        args.append(f"**o[{KWARGS}]")
    if am == A_LIT_INJ:
        # run-scope resources, set up before this walk runs (a parameter given as a keyword is not
        # injected: ``Step.injected`` leaves it out)
        for param, name in aspec:
            args.append(f"{param}=ctx.values[{name!r}]")
    return f"{f}({', '.join(args)})"


def _resolution(k: int, f: str, spec: Any, obj: Any, env: dict[str, Any]) -> str | None:
    """The call of a step whose inputs sit at top level or in flat lists and tuples among
    positional arguments (``resolve_compiled``'s spec without keywords), written out: what
    ``resolve_compiled`` gives, the containers copied with their inputs in place. An iteration
    whose other arguments or items hold a container is resolved in general instead, as
    ``resolve_compiled`` leaves it to ``resolve_args`` (the first line). ``None``: not written."""
    pos_ops, kw_ops, other_pos, other_kw = spec
    if kw_ops or other_kw or any(kind not in (0, 1, 2) for _, kind, _ in pos_ops):
        return None
    args = [f"o[{A0 + i}]" for i in range(nargs_of(obj))]
    odd = [f"type(o[{A0 + i}]) in _CONTAINERS" for i in other_pos]
    for i, kind, sub in pos_ops:
        if kind == 0:
            args[i] = f"values[{sub}]"
            continue
        at = dict(sub)  # slot -> input position; the template fixes the container's length
        items = []
        for j in range(len(obj[A0 + i])):
            if j in at:
                items.append(f"values[{at[j]}]")
            else:
                items.append(f"o[{A0 + i}][{j}]")
                odd.append(f"type(o[{A0 + i}][{j}]) in _CONTAINERS")
        args[i] = _display(kind == 2, items)
    if obj[KWARGS]:
        args.append(f"**o[{KWARGS}]")
    call = f"{f}({', '.join(args)})"
    if not odd:
        return call
    env["_resolve_args"] = resolve_args
    env["_CONTAINERS"] = _CONTAINERS
    return (f"r = _resolve_args(_steps[{k}], o, values, ctx, None) if {' or '.join(odd)} else None\n"
            f"(({f}(*r[0], **r[1]) if r[1] else {f}(*r[0])) if r is not None else {call})")


def bind_checks(prog: Program, env: dict[str, Any], miss: str) -> list[str] | None:
    """The binder's reads and checks of ``target`` as lines of source: each node of the iteration in
    a local ``o<position>``, and ``miss`` (a statement) where the iteration does not bind. ``None``:
    a program that is not bound this way (see :func:`straight_bind`). Fills ``env``."""
    n = len(prog.steps)
    if (n < 2 or n > MAX_STEPS or not prog.calls_only or prog.bind_by_graph
            or len(prog.extract) != n - 1):
        return None
    env["_deps_of"] = deps_of
    last = n - 1
    src = [f"o{last} = target", "try:", f"    if target[{TASK}] is not _t{last}:", f"        {miss}"]
    env[f"_t{last}"] = prog.tasks[last]
    for p, parent, i in prog.extract:
        env[f"_t{p}"] = prog.tasks[p]
        read = f"o{parent}[{i}]" if i > 0 else f"o{parent}[{DEPS}][{~i}]"
        src += [
            f"    o{p} = {read}",
            f"    if o{p}[{SHAPE}] != {prog.shapes[p]!r} or o{p}[{TASK}] is not _t{p}:",
            f"        {miss}",
        ]
    src += ["except (IndexError, AttributeError, TypeError):  # only on a hash collision between shapes",
            f"    {miss}"]
    for c, slot, p in prog.shared:
        src += [f"if _deps_of(o{c})[{slot}] is not o{p}:", f"    {miss}"]
    for group in prog.twins:
        ids = ", ".join(f"id(o{p})" for p in group)
        src += [f"if len({{{ids}}}) != {len(group)}:", f"    {miss}"]
    return src


def straight_bind(prog: Program) -> Callable[[Any, list[Any] | None], list[Any] | None] | None:
    """:func:`~cascade.runtime.binding.bind` for ``prog`` written out: ``binder(target, into)``
    gives what ``bind(prog, target, into)`` gives, or ``None`` for a program it does not write out
    (maps or routers in it, nodes without an extraction path, pure merges, too many steps).

    Each node is read from its parent at its compiled place and checked for its shape and task,
    the shared edges by identity and twin nodes for distinctness, as ``bind`` does.
    """
    n = len(prog.steps)
    env: dict[str, Any] = {}
    checks = bind_checks(prog, env, "return None")
    if checks is None:
        return None
    src = ["def binder(target, into):", *("    " + line for line in checks)]
    src += [f"    if into is not None and len(into) == {n}:"]
    src += [f"        into[{p}] = o{p}" for p in range(n)]
    src += ["        return into", f"    return [{', '.join(f'o{p}' for p in range(n))}]"]
    code = compile("\n".join(src) + "\n", f"<cascade binder of {prog.steps[-1].name}>", "exec")
    exec(code, env)
    binder: Callable[[Any, list[Any] | None], list[Any] | None] = env["binder"]
    return binder
