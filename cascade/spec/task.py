"""``@cs.task``: wrap a function so that calling it describes a call instead of making it."""

from __future__ import annotations

import functools
import hashlib
import inspect
import weakref
from types import FunctionType
from typing import Any, Callable, Iterable, overload

from ..graph.gcpause import collector_paused
from .lazy import (
    _ATOMIC,
    NO_KWARGS,
    SHAPE,
    SLOTS,
    LazyResult,
    MappedLazyResult,
    Router,
    TaskBase,
    _tuple_new,
    caller_for,
    nargs_of,
    new_lazy,
)
from .markers import Inject

__all__ = ["Task", "task"]

# How many tasks with one fingerprint were created so far: the k-th such task gets "#k" in its
# identity, so two tasks with one name and one body (a factory in a loop) stay different while the
# identity stays deterministic across processes (it depends on creation order, not on addresses).
_occurrences: dict[str, int] = {}
# Every task alive in this process, so that a constraint scope matching none of them can be reported.
_all_tasks: weakref.WeakSet[Task] = weakref.WeakSet()


def known_task_names() -> set[str]:
    """The names of every task that exists in this process now."""
    return {t.name for t in list(_all_tasks)}


def _fingerprint(fn: Callable[..., Any], name: str) -> str:
    code = getattr(fn, "__code__", None)
    parts = [getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", repr(type(fn))), name]
    if code is not None:
        parts += [code.co_filename.rsplit("/", 1)[-1], str(code.co_firstlineno), code.co_code.hex()]
    base = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()
    count = _occurrences.get(base, 0)
    _occurrences[base] = count + 1
    return f"{base[:16]}#{count}"


class Task(TaskBase):
    """A function wrapped by :func:`task`. Calling it returns a :class:`LazyResult`; nothing runs.

    ``fn`` is the original function (sync or async), ``name`` its display name, ``pure`` whether equal
    calls in one graph are one node, ``offload`` whether a sync function runs in a worker thread,
    ``executor`` the name of the remote executor its body runs on (``None``: the engine's default,
    ``"local"``: always in this process; see ``Engine(remote=...)``). ``signature`` is the function's
    signature (``None`` when unreadable), against which every call is checked when it is made.
    """

    __slots__ = (
        "fn", "name", "pure", "offload", "executor", "is_async", "fingerprint", "key", "injected", "signature",
        "sig_one", "sig_ok", "kw1", "positional", "maps", "__dict__", "__weakref__",
    )

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, pure: bool = False,
                 offload: bool | str = False, executor: str | None = None,
                 fingerprint: str | None = None, cache_version: str | int | None = None) -> None:
        if isinstance(fn, Task):
            fn = fn.fn
        if not callable(fn):
            raise TypeError(f"@cs.task needs a function, got {type(fn).__name__} {fn!r}")
        if isinstance(fn, type):
            # A class (``cs.task(int)``, ``cs.task(MyModel)``) is callable but almost always a slip
            # (a decorator on the wrong line, a type meant as an annotation): its identity, signature
            # and sync/async nature are those of its constructor, which nobody means to schedule.
            raise TypeError(
                f"@cs.task needs a function, got the class {fn.__qualname__!r}; to run it as a task, "
                f"wrap it in one: @cs.task def make(x): return {fn.__name__}(x)"
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"@cs.task(name=...) must be a non-empty string, got {name!r}")
        self.fn: Callable[..., Any] = fn
        # The plain ``__name__``: a task defined in a function or class shows as ``fetch``, not
        # ``outer.<locals>.fetch``. Names are for people and scopes; identity (the fingerprint)
        # does not rest on them, so two tasks may share one.
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.pure = bool(pure)
        if offload not in (True, False, "thread"):  # "thread": the design doc's wording of True
            raise TypeError(f"@cs.task(offload=...) of {self.name!r} must be True, False or 'thread', got {offload!r}")
        self.offload = bool(offload)
        if executor is not None and (not isinstance(executor, str) or not executor):
            raise TypeError(f"@cs.task(executor=...) of {self.name!r} must be a non-empty string, got {executor!r}")
        self.executor = executor
        if cache_version is not None and (isinstance(cache_version, bool) or not isinstance(cache_version, (str, int))):
            raise TypeError(f"@cs.task(cache_version=...) of {self.name!r} must be a str or int, got {cache_version!r}")
        # Part of every cache key of this task (runtime/cachekey.py): bump it when what the body
        # computes changes without its own bytecode changing (a helper it calls, data it reads).
        self.cache_version = cache_version
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)
        )
        # ``fingerprint`` is given only when a remote executor rebuilds a task it received: the copy
        # keeps the identity of the original (and takes no occurrence number of its own).
        self.fingerprint = fingerprint if fingerprint is not None else _fingerprint(fn, self.name)
        # An int for in-process shape hashes; derived from the fingerprint, never from id().
        self.key = int(hashlib.sha1(self.fingerprint.encode()).hexdigest()[:15], 16)
        self.injected = injected_params(fn)
        # Calls are checked against the signature when the lazy result is made (``check_call``);
        # a call pattern (argument count, keyword names) that bound once is remembered, so the
        # check costs one set lookup per call, and nothing for the one-argument call when
        # ``sig_one`` says one positional argument binds.
        self.signature, self.sig_one = _signature(fn)
        self.sig_ok: set[Any] = set()
        # The keyword of the last one-keyword call (``step(x=previous)``) and its shape key: the
        # same keyword again costs one dict lookup (``None`` is never a keyword, so it never matches).
        self.kw1: tuple[str | None, int] = (None, 0)
        # Keyword arguments that a plain function binds exactly as positional ones are stored as
        # positional ones (see ``new_lazy``): the names of its parameters by position, for that.
        self.positional = positional_names(fn, self.injected)
        if any(self.positional[:SLOTS]):
            self.__class__ = _own_class(self)
        # For the internal fan-out task of a dynamic ``map`` (see ``map``): the task it maps.
        self.maps: Task | None = None
        functools.update_wrapper(self, fn, updated=())
        _all_tasks.add(self)

    __call__ = new_lazy  # ``task(*args, **kwargs)``: a LazyResult, nothing runs

    def map(self, **iterables: Any) -> Any:
        """One call per element of the iterables (equal lengths), the result a list in input order.

        With concrete iterables (lists, tuples, ranges...) it returns a :class:`MappedLazyResult`
        whose element calls are part of the graph. When an iterable is a lazy result (the output of
        an upstream task: ``transform.map(rec=extract(url))``), the map is *dynamic*: it returns a
        lazy result whose value is the same list, its element calls made once the iterables are
        known, at run time, and evaluated like any lazy result a task returns (nested, hot plans
        included). ``with_retry``/``with_cache``/``with_constraints`` on it apply to every element
        call; ``run_if``/``after`` to the map as a whole.

        Raises ``ValueError`` when the iterables' lengths differ, ``TypeError`` when one is not
        iterable or is a ``str``/``bytes`` (for a dynamic map: when the run gets there, naming the
        task and argument).
        """
        if not iterables:
            raise TypeError(f"{self.name}.map() needs at least one keyword iterable")
        if any(isinstance(v, (LazyResult, MappedLazyResult, Router)) for v in iterables.values()):
            return _fan_out_task(self)(tuple(iterables), (), *iterables.values())
        with collector_paused():  # n lazy results that all stay alive: see graph/gcpause.py
            columns, n = _map_columns(self.name, iterables.items(), dynamic=False)
            return MappedLazyResult(self, _elements(self, columns, n))

    def __repr__(self) -> str:
        return f"<cs.Task {self.name}>"

    def __reduce__(self) -> Any:  # tasks pickle by reference, like functions
        return getattr, (inspect.getmodule(self.fn), getattr(self.fn, "__name__", self.name))


def _own_class(task: Task) -> type[Task]:
    """A subclass of ``task``'s class for ``task`` alone, whose ``__call__`` binds the first
    parameters by name (``caller_for``): ``task(x=previous)`` costs what ``task(previous)`` does.
    It keeps the class's name and everything else (a subclass of :class:`Task` stays itself)."""
    cls = type(task)
    return type(cls.__name__, (cls,), {
        "__slots__": (), "__call__": caller_for(task), "__module__": cls.__module__,
        "__qualname__": cls.__qualname__, "__doc__": cls.__doc__,
    })


def _elements(task: Task, columns: dict[str, list[Any]], n: int) -> tuple[LazyResult, ...]:
    """``task(**{name: column[i]})`` for each ``i``. Elements whose values are all plain literals
    share one template, so the first such element's signature check and shape serve the others
    (what :func:`new_lazy` would compute for each); any other element is made by ``new_lazy``."""
    names = tuple(columns)
    if n == 0:
        return ()
    rows = zip(*columns.values())
    plain: LazyResult | None = None
    folded: tuple[Any, ...] = ()  # the parameters the template's keywords became positional for
    out: list[LazyResult] = []
    for row in rows:
        for v in row:
            if type(v) not in _ATOMIC:
                out.append(new_lazy(task, **dict(zip(names, row))))
                break
        else:
            if plain is None:
                plain = new_lazy(task, **dict(zip(names, row)))
                shape = plain[SHAPE]
                folded = task.positional[:nargs_of(plain)]
                out.append(plain)
            elif folded == names:  # every keyword, in parameter order: the row is the arguments
                out.append(_tuple_new(LazyResult, (task, NO_KWARGS, (), 0, shape, 0, None, shape) + row))
            else:
                kwargs = dict(zip(names, row))
                args = [kwargs.pop(p) for p in folded]
                out.append(_tuple_new(LazyResult, (task, kwargs or NO_KWARGS, (), 0, shape, 0, None, shape,
                                                   *args)))
    return tuple(out)


def _map_columns(name: str, items: Iterable[tuple[str, Any]], dynamic: bool) -> tuple[dict[str, list[Any]], int]:
    """The columns of ``name.map(...)`` as lists of equal length, and that length. ``dynamic``: the
    iterables are values of upstream results (the errors say so), not arguments given directly."""
    columns: dict[str, list[Any]] = {}
    for arg, v in items:
        if isinstance(v, (str, bytes)):
            got = f"but its input gave {type(v).__name__} {v!r}" if dynamic else f"got {type(v).__name__}"
            kinds = "an iterable of elements," if dynamic else "a list, tuple or other iterable of elements,"
            raise TypeError(f"{name}.map({arg}=...) needs {kinds} {got}")
        try:
            columns[arg] = list(v)
        except TypeError:
            why = f"needs an iterable, but its input gave {type(v).__name__} {v!r}" if dynamic else f"is not iterable: {v!r}"
            raise TypeError(f"{name}.map({arg}=...) {why}") from None
    lengths = {arg: len(vals) for arg, vals in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{arg}={n}" for arg, n in lengths.items())
        raise ValueError(f"{name}.map() needs iterables of equal length, got {detail}")
    return columns, next(iter(lengths.values()))


def _fan_out_task(task: Task) -> Task:
    """The internal task of ``task``'s dynamic maps (one per task, made on first use, run locally).

    Its call ``fan(names, policies, *iterables)`` checks the iterables' values, makes
    ``task.map(...)`` of them with the element ``policies`` and returns it, so the engine evaluates
    the element calls as the value of this node; an empty map's value is ``[]`` at once.
    """
    fan: Task | None = task.__dict__.get("_fan_out")
    if fan is not None:
        return fan

    def fan_out(names: tuple[str, ...], policies: tuple[tuple[str, Any], ...], *values: Any) -> Any:
        columns, n = _map_columns(task.name, zip(names, values), dynamic=True)
        if not n:
            return []
        mapped = task.map(**columns)
        for method, args in policies:
            mapped = mapped.with_constraints(**args) if method == "with_constraints" else getattr(mapped, method)(*args)
        return mapped

    fan = Task(fan_out, name=f"{task.name}.map", executor="local")
    fan.maps = task
    task.__dict__["_fan_out"] = fan
    return fan


def _signature(fn: Callable[..., Any]) -> tuple[inspect.Signature | None, bool]:
    """``fn``'s signature (``None`` when it cannot be read) and whether one positional argument binds."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, True
    try:
        sig.bind(None)
    except TypeError:
        return sig, False
    return sig, True


def positional_names(fn: Callable[..., Any], injected: tuple[tuple[str, str], ...]) -> tuple[str | None, ...]:
    """The parameters of ``fn`` that a keyword argument binds exactly as a positional one does, by
    position: the leading positional-or-keyword parameters of a plain Python function (``None`` for
    a positional-only one, which no keyword binds), up to its first injected parameter.

    Anything but a plain function (a wrapper taking ``*args, **kwargs``, a builtin, a bound method,
    a callable object) gives ``()``: what a keyword means to it is not read from its code.
    """
    if type(fn) is not FunctionType:
        return ()
    code = fn.__code__
    names: list[str | None] = [None] * code.co_posonlyargcount
    injected_names = {param for param, _ in injected}
    for name in code.co_varnames[code.co_posonlyargcount:code.co_argcount]:
        if name in injected_names:
            break
        names.append(name)
    return tuple(names) if any(names) else ()


def injected_params(fn: Callable[..., Any]) -> tuple[tuple[str, str], ...]:
    """``(parameter, resource)`` for every parameter of ``fn`` whose default is ``cs.inject(name)``
    (read once, at decoration time; tasks and resources both use it)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ()
    return tuple(
        (p.name, p.default.name) for p in sig.parameters.values() if isinstance(p.default, Inject)
    )


@overload
def task(fn: Callable[..., Any], /) -> Task: ...
@overload
def task(*, name: str | None = None, pure: bool = False, offload: bool | str = False,
         executor: str | None = None, cache_version: str | int | None = None) -> Callable[[Callable[..., Any]], Task]: ...
def task(fn: Any = None, /, *, name: str | None = None, pure: bool = False, offload: bool | str = False,
         executor: str | None = None, cache_version: str | int | None = None) -> Any:
    """Declare a task: ``@cs.task`` or ``@cs.task(name=None, pure=False, offload=False, executor=None)``.

    ``offload=True`` (or ``"thread"``) runs a sync body in a worker thread so it cannot block the
    event loop; ``executor="dask"`` runs the body on the engine's remote executor of that name,
    ``executor="local"`` keeps it in this process even when the engine sends every task remote.
    Raises ``TypeError`` when given something that is not callable, or a bad ``offload`` or
    ``executor`` value. ``cache_version`` (a str or int) is part of every ``with_cache`` key of the
    task: bump it to invalidate cached values when the body's behaviour changes without its own
    code changing (the key already covers the task's bytecode).
    """
    if fn is None:
        return lambda f: Task(f, name=name, pure=pure, offload=offload, executor=executor,
                              cache_version=cache_version)
    return Task(fn, name=name, pure=pure, offload=offload, executor=executor, cache_version=cache_version)
