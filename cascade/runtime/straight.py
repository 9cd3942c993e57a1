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

from typing import Any, Callable

from ..spec.lazy import A0, DEPS, KWARGS, SHAPE, TASK, LazyResult, MappedLazyResult, deps_of, nargs_of
from .executor import (
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
    OP_AWAIT_KW1,
    OP_AWAIT_LIST1,
    OP_AWAIT_ONE,
    OP_AWAIT_SEQ1,
    OP_MAP,
    Program,
)

__all__ = ["MAX_STEPS", "straight_bind", "straight_walk"]

MAX_STEPS = 64  # longer programs keep the walker (source and compile time grow with the steps)

_LAZY_TYPES = frozenset({LazyResult, MappedLazyResult})


def straight_walk(prog: Program, objs: list[Any]) -> Callable[..., Any] | None:
    """The generated walk of ``prog``, or ``None`` when it has a step only the walker runs.

    ``objs``: an iteration bound to ``prog`` (``bind``'s list): how many positional arguments each
    call has and whether it has keyword arguments is part of its template (``_shape``), so these
    are read from them once.

    The walk is ``async def walk(values, ctx, cm, iteration)``: ``values`` is the bound objects in
    plan order (as ``bind`` returns them); it returns ``(value, None)``, or ``(None, scheduler)``
    when the iteration was handed over (the caller awaits ``scheduler.run()``). At a handover,
    ``values`` holds the finished steps' values, as the walker leaves it.
    """
    n = len(prog.steps)
    if n < 2 or n > MAX_STEPS or prog.single or not prog.simple:
        return None
    env: dict[str, Any] = {
        "_prog": prog, "_steps": prog.steps, "_Scheduler": Scheduler, "_advance": advance,
        "_awaited": awaited, "_cancel_pending": cancel_pending, "_note_failure": note_failure,
        "_returned_awaitable": returned_awaitable, "_NOT_AWAITABLE": NOT_AWAITABLE,
        "_LAZY": _LAZY_TYPES,
    }
    body: list[str] = []
    for k, (entry, st, fast) in enumerate(zip(prog.walk, prog.steps, prog.fast)):
        lines = _step(k, n, entry, st, fast, objs[k], env)
        if lines is None:
            return None
        body += lines
        body.append(_keep(k))
    src = ["async def walk(values, ctx, cm, iteration):", "    k = 0", "    try:"]
    src += ["        " + line for line in body]
    src += [
        "    except BaseException as exc:",
        "        _note_failure(exc, _steps, k)",
        "        raise",
        f"    return v{n - 1}, None",
    ]
    code = compile("\n".join(src) + "\n", f"<cascade walk of {prog.steps[-1].name}>", "exec")
    exec(code, env)
    walk: Callable[..., Any] = env["walk"]
    return walk


def _keep(k: int) -> str:
    """Step ``k``'s value where its lazy result was, as the walker stores it: what a scheduler
    taking over reads, and what a finished iteration's list holds (no lazy result of it kept)."""
    return f"values[{k}] = v{k}"


def _handover(k: int, suspended: bool) -> str:
    """Return the scheduler that finishes the iteration from step ``k`` (its call suspended on
    ``pending``, or not started: a gate is set)."""
    if suspended:
        return f"return None, _Scheduler(_prog, values, ctx, False, iteration, values, {k}, (coro, pending))"
    return f"return None, _Scheduler(_prog, values, ctx, False, iteration, values, {k})"


def _step(k: int, n: int, entry: tuple[Any, ...], st: Any, fast: tuple[Any, ...], obj: Any,
          env: dict[str, Any]) -> list[str] | None:
    op, fn, spec, _name, notlast = entry
    v = f"v{k}"
    lines = [f"k = {k}", "if cm.gating:", f"    {_handover(k, False)}"]
    if op == OP_MAP:
        if len(spec) > MAX_STEPS:
            return None
        lines += [f"{v} = [{', '.join(f'v{d}' for d in spec)}]"]
        return lines
    f = f"_f{k}"
    env[f] = fn
    if op == OP_AWAIT_ONE:
        lines += [f"{v} = await {f}(v{spec})"]
    elif op == OP_AWAIT_LIST1:
        lines += [f"{v} = await {f}([v{spec}])"]
    elif op == OP_AWAIT_KW1:
        env[f"_kw{k}"] = spec[0]
        lines += [f"{v} = await {f}(**{{_kw{k}: v{spec[1]}}})"]
    elif op == OP_AWAIT_SEQ1:
        items = ", ".join(f"v{d}" for d in spec[1])
        lines += [f"{v} = await {f}({'(' + items + ',)' if spec[0] else '[' + items + ']'})"]
    else:
        call = _call(k, f, fast, obj, env)
        if call is None:
            return None
        if "\n" in call:  # the arguments' resolution, then the call
            resolution, call = call.split("\n")
            lines += [resolution]
        elif "o[" in call:
            lines += [f"o = values[{k}]"]
        _, _, is_async, _, _, _, tail = fast
        if is_async:
            if tail:
                lines += [f"{v} = await {call}"]
            else:
                lines += [
                    f"coro = {call}",
                    "suspended, pending = _advance(coro)",
                    "if suspended:",
                    f"    {_handover(k, True)}",
                    f"{v} = pending",
                ]
        else:
            # a sync task: an awaitable it returns is driven as an async call's coroutine would be
            lines += [
                f"{v} = {call}",
                f"if type({v}) not in _NOT_AWAITABLE and _returned_awaitable({v}):",
            ]
            if tail:
                lines += [
                    f"    coro = {v}",
                    "    try:",
                    f"        {v} = await coro",
                    "    except BaseException:",
                    "        _cancel_pending(coro)",
                    "        raise",
                ]
            else:
                lines += [
                    f"    coro = _awaited({v})",
                    "    suspended, pending = _advance(coro)",
                    "    if suspended:",
                    f"        {_handover(k, True)}",
                    f"    {v} = pending",
                ]
    if notlast:
        # a non-target call returned a lazy result: evaluated as the walker does
        lines += [f"if type({v}) in _LAZY:"]
        if st.tail_dependent:
            lines += [f"    {v} = await ctx.evaluate({v})"]
        else:
            lines += [
                f"    coro = ctx.evaluate({v})",
                "    suspended, pending = _advance(coro)",
                "    if suspended:",
                f"        {_handover(k, True)}",
                f"    {v} = pending",
            ]
    return lines


def _call(k: int, f: str, fast: tuple[Any, ...], obj: Any, env: dict[str, Any]) -> str | None:
    """The call expression of a general step (after a line that resolves its arguments, for a call
    whose arguments the walker resolves in general), or ``None`` for one it cannot write. ``o`` is
    the step's lazy result (``obj`` is one bound earlier, of the same template)."""
    _, _, _, am, aspec, _, _ = fast
    if am == A_ONE:
        return f"{f}(v{aspec})"
    if am == A_ALL:
        return f"{f}({', '.join(f'v{d}' for d in aspec)})"
    if am == A_SEQ1:
        items = ", ".join(f"v{d}" for d in aspec[1])
        return f"{f}({'(' + items + ',)' if aspec[0] else '[' + items + ']'})"
    if am == A_KW1:
        env[f"_kw{k}"] = aspec[0]
        return f"{f}(**{{_kw{k}: v{aspec[1]}}})"
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
            args[i] = f"v{d}"
    if obj[KWARGS]:
        args.append(f"**o[{KWARGS}]")
    if am == A_LIT_INJ:
        # run-scope resources, set up before this walk runs (a parameter given as a keyword is not
        # injected: ``Step.injected`` leaves it out)
        for param, name in aspec:
            args.append(f"{param}=ctx.values[{name!r}]")
    return f"{f}({', '.join(args)})"


def straight_bind(prog: Program) -> Callable[[Any, list[Any] | None], list[Any] | None] | None:
    """:func:`~cascade.runtime.binding.bind` for ``prog`` written out: ``binder(target, into)``
    gives what ``bind(prog, target, into)`` gives, or ``None`` for a program it does not write out
    (maps or routers in it, nodes without an extraction path, pure merges, too many steps).

    Each node is read from its parent at its compiled place and checked for its shape and task,
    the shared edges by identity and twin nodes for distinctness, as ``bind`` does.
    """
    n = len(prog.steps)
    if (n < 2 or n > MAX_STEPS or not prog.calls_only or prog.bind_by_graph
            or len(prog.extract) != n - 1):
        return None
    env: dict[str, Any] = {"_deps_of": deps_of}
    last = n - 1
    src = [
        "def binder(target, into):",
        f"    o{last} = target",
        "    try:",
        f"        if target[{TASK}] is not _t{last}:",
        "            return None",
    ]
    env[f"_t{last}"] = prog.tasks[last]
    for p, parent, i in prog.extract:
        env[f"_t{p}"] = prog.tasks[p]
        read = f"o{parent}[{i}]" if i > 0 else f"o{parent}[{DEPS}][{~i}]"
        src += [
            f"        o{p} = {read}",
            f"        if o{p}[{SHAPE}] != {prog.shapes[p]!r} or o{p}[{TASK}] is not _t{p}:",
            "            return None",
        ]
    src += ["    except (IndexError, AttributeError, TypeError):  # only on a hash collision between shapes",
            "        return None"]
    for c, slot, p in prog.shared:
        src += [f"    if _deps_of(o{c})[{slot}] is not o{p}:", "        return None"]
    for group in prog.twins:
        ids = ", ".join(f"id(o{p})" for p in group)
        src += [f"    if len({{{ids}}}) != {len(group)}:", "        return None"]
    src += [f"    if into is not None and len(into) == {n}:"]
    src += [f"        into[{p}] = o{p}" for p in range(n)]
    src += ["        return into", f"    return [{', '.join(f'o{p}' for p in range(n))}]"]
    code = compile("\n".join(src) + "\n", f"<cascade binder of {prog.steps[-1].name}>", "exec")
    exec(code, env)
    binder: Callable[[Any, list[Any] | None], list[Any] | None] = env["binder"]
    return binder
