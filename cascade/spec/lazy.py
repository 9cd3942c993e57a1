"""Lazy results: immutable descriptions of calls, and the helpers that combine them.

Creating a lazy result happens once per node per loop iteration, so it is kept cheap: one tuple
holding its fields and its positional arguments (see TASK ... A0 below), no uuid, and the signature
check is one cached lookup per call pattern (``check_call``). Each lazy result carries, computed
once at creation:

- ``_deps``: the objects it depends on, in canonical order (data inputs in argument order, keyword
  arguments sorted by name, then the condition, ``after`` and ``sequence`` predecessors); where
  they are positional arguments the call records only their positions (``deps_of``);
- ``_shape``: an in-process hash of its template (task, argument structure, policies and the shapes
  of its dependencies, literal values left out). The engine keys its hot-plan cache on the target's
  ``_shape`` and verifies the match node by node, so a collision costs a slow run, never a wrong one;
- ``_mode``: how arguments are resolved (0 all literal, 1 lazy results at top level only, 2 nested
  or markers), so the executor builds arguments without re-scanning them.
"""

from __future__ import annotations

import inspect
from operator import itemgetter
from types import FunctionType, MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .markers import Marker
from .policies import CachePolicy, RetryPolicy, check_amount

if TYPE_CHECKING:
    from .task import Task

__all__ = ["LazyResult", "MappedLazyResult", "Router", "pipeline", "sequence"]

_ATOMIC = frozenset({int, float, str, bool, type(None), bytes, complex})
_CONTAINERS = (list, tuple, dict)


def _scan(value: Any, deps: list[Any]) -> Any:
    """Shape of one argument value: ``None`` for a plain literal, else a hashable description.

    Appends every lazy dependency found (depth-first, dict keys in sorted order) to ``deps``.
    Containers are walked iteratively (any depth); raises ``ValueError`` for a list, tuple or dict
    that contains itself (it could be neither described nor resolved).
    """
    t = type(value)
    if t in _ATOMIC:
        return None
    if t is LazyResult or t is MappedLazyResult or t is Router:
        deps.append(value)
        return value._shape
    if t is list or t is tuple or t is dict:
        return _scan_container(value, deps)
    return _scan_leaf(value, deps)


class TaskBase:
    """Base of :class:`cascade.Task`, defined here so that arguments can be checked without a cycle."""

    __slots__ = ()
    name: str
    positional: tuple[str | None, ...]  # see Task.__init__ and new_lazy
    maps: Any  # the mapped task, on the internal fan-out task of a dynamic map; else None


class UncalledTaskError(TypeError):
    """A task object itself was passed as an argument where its result was almost surely meant."""

    def __init__(self, task: TaskBase) -> None:
        super().__init__(task.name)
        self.task = task


def _scan_leaf(value: Any, deps: list[Any]) -> Any:
    if isinstance(value, Marker):
        return value.shape_key
    if isinstance(value, (LazyResult, MappedLazyResult, Router)):
        deps.append(value)
        return getattr(value, "_shape")
    if isinstance(value, TaskBase):
        raise UncalledTaskError(value)
    t = type(value)
    if value.__class__ is t and len(_PLAIN_OBJECTS) < _PLAIN_OBJECTS_MAX:
        _PLAIN_OBJECTS.add(t)  # its instances are plain too: calls skip scanning them
    return None


# Types whose instances ``_scan_leaf`` found to be plain objects (not a marker, a lazy result or a
# task): isinstance depends on the type alone, so ``new_lazy`` passes their instances like literals
# (an agent's state object, passed on every iteration). Bounded: types can be made at run time.
_PLAIN_OBJECTS: set[type] = set()
_PLAIN_OBJECTS_MAX = 1024


def _scan_container(root: Any, deps: list[Any]) -> Any:
    """:func:`_scan` of a list, tuple or dict, with an explicit stack.

    A nested container's shape is folded into one int as soon as it is complete (``hash`` of its
    type, length and the shapes of the items that are structure), so a deep argument gives a flat
    shape: nothing downstream recurses over its depth.
    """
    if type(root) is not dict:
        # The common cases: a flat list or tuple of literals, or of literals and lazy results (the
        # shape is what the general walk below computes for it).
        flat: list[Any] | None = None
        found: list[Any] = []
        for slot, item in enumerate(root):
            t = type(item)
            if t in _ATOMIC:
                continue
            if t is not LazyResult:
                break
            if flat is None:
                flat = []
            flat.append((slot, item[SHAPE]))
            found.append(item)
        else:
            if flat is None:
                return None
            deps.extend(found)
            return hash((type(root).__name__, len(root), tuple(flat)))
    on_path = {id(root)}
    # frame: [container, dict keys in canonical order or None, next index, (slot, shape) parts,
    #         its slot in the parent]
    stack: list[list[Any]] = [[root, _sorted_keys(root) if type(root) is dict else None, 0, None, None]]
    while True:
        frame = stack[-1]
        c, keys, i, parts, _ = frame
        if i < (len(c) if keys is None else len(keys)):
            frame[2] = i + 1
            slot = i if keys is None else keys[i]
            item = c[slot]
            t = type(item)
            if t in _ATOMIC:
                continue
            if t is list or t is tuple or t is dict:
                if id(item) in on_path:
                    raise ValueError(f"it holds a {t.__name__} that contains itself, which cannot be described")
                on_path.add(id(item))
                stack.append([item, _sorted_keys(item) if t is dict else None, 0, None, slot])
                continue
            if t is LazyResult or t is MappedLazyResult or t is Router:
                deps.append(item)
                s = item._shape
            else:
                s = _scan_leaf(item, deps)
            if s is not None:
                if parts is None:
                    parts = frame[3] = []
                parts.append((slot, s))
            continue
        stack.pop()
        on_path.discard(id(c))
        shape = None if parts is None else hash(("dict" if keys is not None else type(c).__name__, len(c), tuple(parts)))
        if not stack:
            return shape
        if shape is not None:
            parent = stack[-1]
            if parent[3] is None:
                parent[3] = []
            parent[3].append((frame[4], shape))


def argument_label(positional: tuple[str | None, ...], where: int | str) -> str:
    """How errors name an argument: by its parameter's name where its position has one
    (``argument 'x'``, as for the keyword: ``f(1)`` and ``f(x=1)`` are one call), else by its
    position (``argument 0``). ``positional`` is the task's ``positional``."""
    if isinstance(where, int):
        if where >= len(positional) or positional[where] is None:
            return f"argument {where}"
        where = positional[where]  # type: ignore[assignment]
    return f"argument {where!r}"


def _argument_error(task: Task, where: Any, exc: Exception) -> Exception:
    """The error for an argument that cannot be described, naming the task and the argument:
    ``ValueError`` for a self-containing container, else ``TypeError`` (what the argument's own
    ``__lt__``/``__repr__``/... raised is chained as the cause)."""
    arg = argument_label(task.positional, where)
    if isinstance(exc, UncalledTaskError):
        name = exc.task.name
        return TypeError(
            f"task {task.name!r} {arg} is the task {name!r} itself, not a call of it: write "
            f"{name}(...) to pass its result; to hand over the function, pass {name}.fn"
        )
    if isinstance(exc, ValueError):
        return ValueError(f"task {task.name!r} {arg}: {exc}")
    return TypeError(f"task {task.name!r} {arg} cannot be described: {type(exc).__name__}: {exc}")


def _sorted_keys(d: Mapping[Any, Any]) -> list[Any]:
    """Dict keys in an order that does not depend on insertion order."""
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=lambda k: (type(k).__qualname__, repr(k)))


# Field positions of a LazyResult (a tuple underneath: one C call creates it, and it is immutable).
# POLICY is ``None`` for a plain call, else a _Policies; BASE is the shape before policies. The
# positional arguments follow the fields, from A0 on: a call is one object, not a result and its
# argument tuple (one object fewer for the collector to walk in a big graph or a waiting agent).
# DEPS is a tuple of the dependencies, except when they are positional arguments (mode 1, no
# policy): then it is ``None`` when they are all of them (a chain's ``step(previous)``), else an
# ``_At`` of their argument positions, one shared per pattern (``loop(n - 1, previous)``), so such
# a call allocates nothing but itself. ``deps_of`` gives the dependencies in every case. KWARGS is
# the shared empty dict ``NO_KWARGS`` when there are none, never changed (``LazyResult.kwargs`` is a
# read-only view).
TASK, KWARGS, DEPS, NDATA, SHAPE, MODE, POLICY, BASE = range(8)
A0 = 8
ARGS = slice(A0, None)  # ``lazy[ARGS]``: the positional arguments (one slice object, made once)
NO_KWARGS: dict[str, Any] = {}
_tuple_new = tuple.__new__
_tuple_len = tuple.__len__


class _At(tuple):
    """The argument positions of a call's dependencies, as its DEPS field (see above)."""

    __slots__ = ()


_AT_BY_MASK: dict[int, _At] = {}
_AT_PATTERNS = 4096  # bound: argument counts could be generated


def _at(mask: int) -> _At:
    """The shared ``_At`` of the positions set in ``mask`` (bit ``i``: argument ``i``)."""
    at = _AT_BY_MASK.get(mask)
    if at is None:
        at = _tuple_new(_At, [i for i in range(mask.bit_length()) if mask >> i & 1])
        if len(_AT_BY_MASK) < _AT_PATTERNS:
            _AT_BY_MASK[mask] = at
    return at


_AT0 = _at(1)
_AT1 = _at(2)


def deps_of(lazy: LazyResult) -> tuple[Any, ...]:
    """The dependencies of a lazy result, in canonical order (its ``_deps``)."""
    deps = lazy[DEPS]
    if deps is None:
        return lazy[ARGS]
    if type(deps) is _At:
        return tuple([lazy[A0 + i] for i in deps])
    return deps


def args_of(lazy: LazyResult) -> tuple[Any, ...]:
    """The positional arguments of a lazy result (its ``args``)."""
    return lazy[ARGS]


def nargs_of(lazy: LazyResult) -> int:
    """How many positional arguments a lazy result has (its ``__len__`` refuses on purpose)."""
    return _tuple_len(lazy) - A0


class _Policies(tuple):
    """The rarely used part of a lazy result, kept out of the tuple every call allocates."""

    __slots__ = ()
    cond = property(itemgetter(0))
    after_deps = property(itemgetter(1))
    seq_deps = property(itemgetter(2))
    retry = property(itemgetter(3))
    cache = property(itemgetter(4))
    constraints = property(itemgetter(5))


_NO_POLICIES = _tuple_new(_Policies, (None, (), (), None, None, ()))
_COND, _AFTER, _SEQ, _RETRY, _CACHE, _CONSTRAINTS = range(6)


def _policy(field: int, doc: str) -> Any:
    def get(self: LazyResult) -> Any:
        pol = tuple.__getitem__(self, POLICY)
        return (pol or _NO_POLICIES)[field]

    return property(get, doc=doc)


class LazyResult(tuple):
    """An immutable description of one call of a task: ``task``, ``args``, ``kwargs`` (a read-only
    mapping) and policies.

    A keyword argument that binds exactly as a positional one is in ``args`` (``step(x=a)`` of
    ``def step(x)`` has ``args == (a,)``); see :func:`new_lazy`.

    Chaining methods (``run_if``, ``after``, ``with_retry``, ``with_cache``, ``with_constraints``)
    return a new lazy result and leave the receiver unchanged. Lazy results compare and hash by
    identity: two calls with equal arguments are still two calls.
    """

    __slots__ = ()

    task: Task = property(itemgetter(TASK))  # type: ignore[assignment]
    args: tuple[Any, ...] = property(args_of)  # type: ignore[assignment]
    kwargs: Mapping[str, Any] = property(  # type: ignore[assignment]
        lambda self: MappingProxyType(self[KWARGS]), doc="The keyword arguments (a read-only view).")
    cond: LazyResult | None = _policy(_COND, "The ``run_if`` condition, or ``None``.")
    after_deps: tuple[Any, ...] = _policy(_AFTER, "The ``after`` predecessors.")
    seq_deps: tuple[Any, ...] = _policy(_SEQ, "The ``sequence`` predecessors.")
    retry: RetryPolicy | None = _policy(_RETRY, "The ``with_retry`` policy, or ``None``.")
    cache: CachePolicy | None = _policy(_CACHE, "The ``with_cache`` policy, or ``None``.")
    constraints: tuple[tuple[str, float], ...] = _policy(
        _CONSTRAINTS, "The ``with_constraints`` amounts as ``(name, amount)`` pairs.")
    _deps: tuple[Any, ...] = property(deps_of)  # type: ignore[assignment]
    _ndata: int = property(itemgetter(NDATA))  # type: ignore[assignment]
    _shape: int = property(itemgetter(SHAPE))  # type: ignore[assignment]
    _mode: int = property(itemgetter(MODE))  # type: ignore[assignment]

    def __new__(cls, *_: Any, **__: Any) -> LazyResult:
        raise TypeError("LazyResult is created by calling a task, not directly")

    # -- chaining --------------------------------------------------------------------------------
    def run_if(self, condition: Any) -> LazyResult:
        """Run only if ``condition`` (a lazy result) is truthy, else skip with ``ConditionFalse``."""
        if not isinstance(condition, (LazyResult, MappedLazyResult)):
            raise TypeError(f"{self.task.name}.run_if() needs a lazy result, got {type(condition).__name__}")
        return self._evolve(_COND, condition)

    def after(self, *others: Any) -> LazyResult:
        """Order this call after ``others`` without using their values."""
        for other in others:
            if not isinstance(other, (LazyResult, MappedLazyResult)):
                raise TypeError(f"{self.task.name}.after() takes lazy results, got {type(other).__name__}")
        return self._evolve(_AFTER, self.after_deps + tuple(others))

    def with_retry(self, max_attempts: int = 3, delay: float = 0.0, backoff: float = 1.0) -> LazyResult:
        """Retry on exception; ``max_attempts`` is the total number of attempts, the first included.

        Raises ``TypeError`` for a non-number (a ``bool`` is not a count here) and ``ValueError`` for
        ``max_attempts < 1``, a negative, nan or infinite ``delay``/``backoff``, or a last wait that
        overflows; the message names the task and the argument.
        """
        if self.task.maps is not None:  # a dynamic map: every element call retries
            _retry_policy(self.task.maps.name, max_attempts, delay, backoff)
            return _element_policy(self, "with_retry", (max_attempts, delay, backoff))
        return self._evolve(_RETRY, _retry_policy(self.task.name, max_attempts, delay, backoff))

    def with_cache(self, policy: CachePolicy) -> LazyResult:
        """Skip execution when ``policy`` holds a value for (task, all resolved inputs)."""
        if not (callable(getattr(policy, "get", None)) and callable(getattr(policy, "set", None))):
            raise TypeError(f"{self.task.name}.with_cache() needs a cache policy with get/set, got {policy!r}")
        if self.task.maps is not None:
            return _element_policy(self, "with_cache", (policy,))
        return self._evolve(_CACHE, policy)

    def with_constraints(self, **amounts: float) -> LazyResult:
        """Hold ``amounts`` of the engine's ``system_resources`` while this call runs.

        Each amount must be a finite number >= 0: ``TypeError`` for a non-number (``bool``
        included), ``ValueError`` for nan, infinity or a negative amount, naming task and argument.
        """
        if self.task.maps is not None:
            _check_constraints(self.task.maps.name, amounts)
            return _element_policy(self, "with_constraints", amounts)
        _check_constraints(self.task.name, amounts)
        merged = dict(self.constraints)
        merged.update(amounts)
        return self._evolve(_CONSTRAINTS, tuple(sorted(merged.items())))

    def _evolve(self, field: int, value: Any) -> LazyResult:
        fields = list(self[:])  # tuple slicing: the overridden __iter__ refuses on purpose
        policies = list(fields[POLICY] or _NO_POLICIES)
        policies[field] = value
        fields[POLICY] = _tuple_new(_Policies, tuple(policies))
        return _finish(fields)

    # -- a lazy result is not a value: refuse what would silently misbehave -------------------------
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__
    def __lt__(self, other: Any) -> Any:
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__

    def __iter__(self) -> Any:
        raise TypeError(f"a lazy call of {self.task.name} cannot be iterated or unpacked before it runs")

    def __len__(self) -> int:
        raise TypeError(f"a lazy call of {self.task.name} has no length before it runs")

    def __add__(self, other: Any) -> Any:
        return NotImplemented

    __mul__ = __rmul__ = __add__

    def __contains__(self, item: Any) -> bool:
        raise TypeError(f"a lazy call of {self.task.name} has no items before it runs")

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of a lazy call of {self.task.name} is not known until it runs; "
            "use .run_if(...) or cs.Router(...)"
        )

    def __getnewargs__(self) -> Any:
        raise TypeError("lazy results are not picklable")

    def __repr__(self) -> str:
        return f"<LazyResult {self.task.name}>"


_SIG_PATTERNS = 256  # call patterns remembered per task (a bound: keyword sets could be generated)


def check_call(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any) -> None:
    """Check ``task(*args, **kwargs)`` against the task's signature (its pattern is ``key``).

    Binding depends only on the number of positional arguments and the keyword names, so a
    pattern that bound once is remembered in ``task.sig_ok``. Raises ``TypeError`` naming the
    task, the argument and the signature, before anything runs.
    """
    sig = task.signature
    if sig is not None:
        try:
            sig.bind(*args, **_beside_positional_only(sig, kwargs))
        except TypeError as exc:
            shown = ", ".join(["_"] * len(args) + [f"{k}=_" for k in kwargs])
            raise TypeError(
                f"task {task.name!r} called as {task.name}({shown}): {exc}; its signature is {task.name}{sig}"
            ) from None
    if len(task.sig_ok) < _SIG_PATTERNS:
        task.sig_ok.add(key)


def _beside_positional_only(sig: inspect.Signature, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the keywords that Python puts in the function's ``**kwargs`` although a
    positional-only parameter has their name (``f(x=1)`` of ``def f(x=0, /, **kw)``), which
    ``Signature.bind`` refuses; the others bind as the call does."""
    params = sig.parameters
    if not kwargs or not any(p.kind is _VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k not in params or params[k].kind is not _POSITIONAL_ONLY}


_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_POSITIONAL_ONLY = inspect.Parameter.POSITIONAL_ONLY


def _retry_policy(task_name: str, max_attempts: Any, delay: Any, backoff: Any) -> RetryPolicy:
    try:
        return RetryPolicy(max_attempts, delay, backoff)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"task {task_name!r}: {exc}") from None


def _check_constraints(task_name: str, amounts: Mapping[str, Any]) -> None:
    for name, amount in amounts.items():
        try:
            check_amount(f"with_constraints({name}=...)", amount)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"task {task_name!r}: {exc}") from None


class _Unset:
    """The default of a parameter slot of :func:`new_lazy`: no argument was bound to it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()
SLOTS = 2  # the parameters of a task that its call binds by name (see ``caller_for``)


def new_lazy(task: Task, /, _s0: Any = _UNSET, _s1: Any = _UNSET, *args: Any, **kwargs: Any) -> LazyResult:
    """Create a lazy result for ``task(*args, **kwargs)``; see the module docstring for the fields.

    It is ``Task.__call__`` itself, so a call costs one Python frame; the shape hash is folded
    argument by argument so that plain literals cost nothing but a type check.

    Keyword arguments that a plain function binds exactly as positional ones are stored as
    positional ones (the rule of ``inspect.BoundArguments.args``): ``step(x=previous)`` is
    ``step(previous)`` when ``x`` is the first parameter, one template made and run as cheaply.
    A task's own copy of this function (``caller_for``) names its slots ``_s0`` and ``_s1`` after
    the task's first two parameters, so CPython binds those keywords into them without a dict; the
    slots of this generic copy have names no keyword can spell, so every argument arrives by
    position.

    Raises ``TypeError`` when the arguments do not bind to the task's signature, ``ValueError`` for
    an argument that contains itself and ``TypeError`` for one that cannot be described (its dict
    keys cannot be ordered), each naming the task and the argument, before anything runs.
    """
    # The slots bound, in order, are the leading positional arguments; one bound after an unbound
    # one came by keyword and stays a keyword argument (``_regroup``). The commonest calls are made
    # right where their arguments are known.
    if _s1 is _UNSET:
        if _s0 is not _UNSET:
            if not kwargs:
                # The commonest call in a loop body, ``step(previous)`` or ``step(literal)``, without
                # the general loop below. Its shape formula is its own: a call with one positional
                # argument always comes here, so equal structures still get equal shapes.
                if not task.sig_one:
                    check_call(task, (_s0,), kwargs, 1)  # raises: one argument does not bind
                a = _s0
                t = type(a)
                if t is LazyResult:
                    h = hash((task.key, a[SHAPE]))
                    return _tuple_new(LazyResult, (task, NO_KWARGS, None, 1, h, 1, None, h, a))
                if t in _ATOMIC:
                    h = hash((task.key, 1))
                    return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, h, 0, None, h, a))
                if t is list or t is tuple:  # ``step([a, b])``: the general loop's result, directly
                    if len(a) == 1 and type(item := a[0]) is LazyResult:  # ``step([previous])``
                        h = hash((task.key, t, item[SHAPE]))  # its own formula: such calls come here
                        return _tuple_new(LazyResult, (task, NO_KWARGS, (item,), 1, h, 2, None, h, a))
                    inputs: list[Any] = []
                    try:
                        shape = _scan_container(a, inputs)
                    except Exception:  # described and named by the general loop below
                        pass
                    else:
                        if shape is None:  # a plain literal container: like an atomic literal
                            h = hash((task.key, 1))
                            return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, h, 0, None, h, a))
                        h = hash((hash((task.key, 0, shape)), 1))
                        return _tuple_new(LazyResult, (task, NO_KWARGS, tuple(inputs), len(inputs), h, 2,
                                                       None, h, a))
            args = (_s0,)
    elif _s0 is _UNSET:
        args, kwargs = _regroup(task, (_s0, _s1), kwargs)
    elif args:
        if not kwargs and len(args) == 2:
            # Four positional arguments (an agent's step, ``firefly(me, t0, flashed, message)``),
            # each a lazy result or a plain literal: the general loop's shape, mode and dependencies
            # (below), unrolled, and the result made in one tuple. ``at`` < 0: some other argument.
            c, d = args
            h = task.key
            at = 0
            t = type(_s0)
            if t is LazyResult:
                at = 1
                h = hash((h, 0, _s0[SHAPE]))
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                at = -1
            t = type(_s1)
            if t is LazyResult:
                at |= 2
                h = hash((h, 1, _s1[SHAPE]))
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                at = -1
            t = type(c)
            if t is LazyResult:
                at |= 4
                h = hash((h, 2, c[SHAPE]))
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                at = -1
            t = type(d)
            if t is LazyResult:
                at |= 8
                h = hash((h, 3, d[SHAPE]))
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                at = -1
            if at >= 0:
                if 4 not in task.sig_ok:
                    check_call(task, (_s0, _s1, c, d), kwargs, 4)
                h = hash((h, 4))
                if not at:
                    return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, h, 0, None, h, _s0, _s1, c, d))
                nd = at.bit_count()
                return _tuple_new(LazyResult, (task, NO_KWARGS, None if nd == 4 else _AT_BY_MASK.get(at) or _at(at),
                                               nd, h, 1, None, h, _s0, _s1, c, d))
        args = (_s0, _s1) + args
    else:
        if not kwargs:
            # The commonest tail call, ``loop(n - 1, previous)``: two positional arguments, each a
            # lazy result or a plain literal, with the general loop's own shape, mode and dependencies.
            a, b = _s0, _s1
            ta = type(a)
            tb = type(b)
            if ta is LazyResult:
                if tb is LazyResult or tb in _ATOMIC or tb in _PLAIN_OBJECTS:
                    if 2 not in task.sig_ok:
                        check_call(task, (a, b), kwargs, 2)
                    h = hash((task.key, 0, a[SHAPE]))
                    if tb is LazyResult:
                        h = hash((hash((h, 1, b[SHAPE])), 2))
                        return _tuple_new(LazyResult, (task, NO_KWARGS, None, 2, h, 1, None, h, a, b))
                    h = hash((h, 2))
                    return _tuple_new(LazyResult, (task, NO_KWARGS, _AT0, 1, h, 1, None, h, a, b))
            elif tb is LazyResult and (ta in _ATOMIC or ta in _PLAIN_OBJECTS):
                if 2 not in task.sig_ok:
                    check_call(task, (a, b), kwargs, 2)
                h = hash((hash((task.key, 1, b[SHAPE])), 2))
                return _tuple_new(LazyResult, (task, NO_KWARGS, _AT1, 1, h, 1, None, h, a, b))
            elif (tb is list and len(b) == 1 and type(item := b[0]) is LazyResult
                  and (ta in _ATOMIC or ta in _PLAIN_OBJECTS)):
                # ``loop(n - 1, [previous])``: the general loop's shape, mode and inputs, directly
                if 2 not in task.sig_ok:
                    check_call(task, (a, b), kwargs, 2)
                h = hash((hash((task.key, 1, hash(("list", 1, ((0, item[SHAPE]),))))), 2))
                return _tuple_new(LazyResult, (task, NO_KWARGS, (item,), 1, h, 2, None, h, a, b))
            elif ((ta in _ATOMIC or ((ta is tuple or ta is list) and _flat_literal(a)))
                  and (tb in _ATOMIC or ((tb is tuple or tb is list) and _flat_literal(b)))):
                # ``cs.recv(topic, timeout)``, ``cs.publish(topics, payload)``: two plain literals
                # (a flat list or tuple of them is one, as the general loop's _scan finds)
                if 2 not in task.sig_ok:
                    check_call(task, (a, b), kwargs, 2)
                h = hash((task.key, 2))
                return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, h, 0, None, h, a, b))
        args = (_s0, _s1)
    nargs = len(args)
    if not kwargs:
        # Positional arguments only, each a lazy result or a plain literal (``firefly(me, t0, None,
        # recv(...))``): the general loop's shape, mode and dependencies, without its other cases.
        if nargs not in task.sig_ok:
            check_call(task, args, kwargs, nargs)
        h = task.key
        at = i = 0
        for a in args:
            t = type(a)
            if t is LazyResult:
                at |= 1 << i
                h = hash((h, i, a[SHAPE]))
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                break
            i += 1
        else:
            h = hash((h, nargs))
            if not at:
                return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, h, 0, None, h) + args)
            nd = at.bit_count()
            return _tuple_new(LazyResult, (task, NO_KWARGS, None if nd == nargs else _AT_BY_MASK.get(at) or _at(at),
                                           nd, h, 1, None, h) + args)
    if kwargs:
        # Keywords for parameters after the slots, right after the positional arguments.
        pos = task.positional
        if nargs < len(pos) and pos[nargs] in kwargs:
            args, kwargs = _fold_keywords(pos, args, kwargs)
            nargs = len(args)
        if nargs == 0 and len(kwargs) == 1:
            # ``step(x=previous)`` or ``step(x=literal)`` where ``x`` does not bind by position (a
            # keyword-only parameter, a wrapper's ``**kwargs``). A lazy input by one keyword always
            # comes here, so its shape formula is its own (one hash); a literal keeps the general
            # loop's (a literal container goes there, and literals of any type share a template).
            name, kkey = task.kw1
            if name in kwargs:  # the keyword of the task's last such call: its signature bound then
                a = kwargs[name]
            else:
                (name,) = kwargs
                a = kwargs[name]
                # The pattern "no positional argument, this one keyword" is remembered under the bare
                # name (the other patterns are ints and tuples): no key tuple to build per call.
                if name not in task.sig_ok:
                    check_call(task, args, kwargs, name)
                kkey = hash((task.key, name))
                task.kw1 = (name, kkey)
            t = type(a)
            if t is LazyResult:
                h = hash((kkey, a[SHAPE]))
                return _tuple_new(LazyResult, (task, kwargs, (a,), 1, h, 2, None, h))
            if t in _ATOMIC:
                h = hash((task.key, 0, (name,)))
                return _tuple_new(LazyResult, (task, kwargs, (), 0, h, 0, None, h))
    names: tuple[str, ...] = ()
    if kwargs:
        names = tuple(kwargs)  # the keyword names in call order: the pattern's key, then sorted once
        if (key := (nargs, names)) not in task.sig_ok:
            check_call(task, args, kwargs, key)
        if len(names) > 1:
            names = tuple(sorted(names))
    elif nargs not in task.sig_ok:
        check_call(task, args, kwargs, nargs)
    deps: list[Any] | None = None
    h = task.key
    mode = 0
    i = 0
    at = 0  # bit i: argument i is a lazy result (mode 1's DEPS)
    k: str | None = None
    try:  # free unless raised: a self-containing or undescribable argument is named below
        for a in args:
            t = type(a)
            if t is LazyResult:
                if deps is None:
                    deps = [a]
                else:
                    deps.append(a)
                at |= 1 << i
                h = hash((h, i, a[SHAPE]))
                if mode == 0:
                    mode = 1
            elif t is list and len(a) == 1 and type(item := a[0]) is LazyResult:
                # ``step(..., [previous])``: what _scan_container finds and describes, directly
                if deps is None:
                    deps = [item]
                else:
                    deps.append(item)
                h = hash((h, i, hash(("list", 1, ((0, item[SHAPE]),)))))
                mode = 2
            elif t not in _ATOMIC and t not in _PLAIN_OBJECTS:
                found: list[Any] = []
                shape = _scan(a, found)
                if shape is not None:
                    deps = found if deps is None else deps + found
                    h = hash((h, i, shape))
                    mode = 2
            i += 1
        if kwargs:
            for k in names:
                a = kwargs[k]
                t = type(a)
                if t in _ATOMIC or t in _PLAIN_OBJECTS:
                    continue
                if t is LazyResult:  # ``step(..., x=previous)``: what _scan would find, directly
                    if deps is None:
                        deps = [a]
                    else:
                        deps.append(a)
                    h = hash((h, k, a[SHAPE]))
                    mode = 2
                    continue
                found = []
                shape = _scan(a, found)
                if shape is not None:
                    deps = found if deps is None else deps + found
                    h = hash((h, k, shape))
                    mode = 2
    except Exception as exc:
        raise _argument_error(task, i if k is None else k, exc) from exc
    if kwargs:
        h = hash((h, i, names))
    else:
        h = hash((h, i))
    if not kwargs:
        kwargs = NO_KWARGS
    if deps is None:
        return _tuple_new(LazyResult, (task, kwargs, (), 0, h, 0, None, h) + args)
    if mode == 1:  # the dependencies are positional arguments: every one of them, or those in ``at``
        nd = len(deps)
        if nd == nargs:
            return _tuple_new(LazyResult, (task, kwargs, None, nd, h, 1, None, h) + args)
        return _tuple_new(LazyResult, (task, kwargs, _AT_BY_MASK.get(at) or _at(at), nd, h, 1, None, h) + args)
    return _tuple_new(LazyResult, (task, kwargs, tuple(deps), len(deps), h, mode, None, h) + args)


def literal_call2(task: Task, shape: int, a: Any, b: Any) -> LazyResult:
    """The lazy result of ``task(a, b)`` where ``a`` and ``b`` are plain literals (neither a lazy
    result, a marker nor a container holding one), made without ``new_lazy``'s checks: for a
    caller that checked the arguments and their binding itself (``cs.recv`` and ``cs.publish`` in
    an agent's loop). ``shape`` is ``literal_shape(task, 2)``; the result equals, field by field,
    what ``task(a, b)`` makes."""
    return _tuple_new(LazyResult, (task, NO_KWARGS, (), 0, shape, 0, None, shape, a, b))


def literal_shape(task: Task, nargs: int) -> int:
    """The shape of a call of ``task`` with ``nargs`` positional plain literals (``new_lazy``'s
    formula for such calls, in each of its paths)."""
    return hash((task.key, nargs))


def _flat_literal(items: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a plain literal of an atomic type (the container is then one literal)."""
    for item in items:
        if type(item) not in _ATOMIC:
            return False
    return True


def _regroup(task: Task, slots: tuple[Any, ...], kwargs: dict[str, Any]
             ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of a call whose bound slots are not all leading: the leading ones are the
    positional arguments, every later bound slot goes back to the keywords under its name."""
    names = type(task).__call__.__code__.co_varnames[1:1 + SLOTS]
    args: list[Any] = []
    for i, value in enumerate(slots):
        if value is _UNSET:
            continue
        if len(args) == i:
            args.append(value)
        else:
            kwargs[names[i]] = value
    return tuple(args), kwargs


def caller_for(task: Task) -> Any:
    """``new_lazy`` with its slots renamed after ``task``'s first parameters (``task.positional``),
    for ``task``'s own class: CPython then binds ``task(x=...)`` into a slot, no dict made. A local
    of ``new_lazy`` with the name of such a parameter is renamed out of the way (locals are used by
    position; a name with a space is one no keyword can spell)."""
    code = new_lazy.__code__
    names = list(code.co_varnames)
    for i, name in enumerate(task.positional[:SLOTS]):
        if name is None:
            continue  # positional-only: no keyword binds it
        if name in names:
            names[names.index(name)] = f" {name}"
        names[1 + i] = name
    renamed = code.replace(co_varnames=tuple(names), co_name=task.name, co_qualname=task.name)
    return FunctionType(renamed, new_lazy.__globals__, task.name, new_lazy.__defaults__)


def _fold_keywords(pos: tuple[str | None, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``args`` extended by the keyword arguments named ``pos[len(args)]``, ``pos[len(args) + 1]``...
    while there are any, and the keyword arguments left (``kwargs`` is the call's own dict)."""
    folded = list(args)
    for name in pos[len(args):]:
        if name not in kwargs:
            break
        folded.append(kwargs.pop(name))
    return tuple(folded), kwargs


# The generic copy: slot names that no keyword argument can spell (a keyword is an identifier).
new_lazy.__code__ = new_lazy.__code__.replace(
    co_varnames=(new_lazy.__code__.co_varnames[0], *(f" {i}" for i in range(SLOTS)),
                 *new_lazy.__code__.co_varnames[1 + SLOTS:]))


def _element_policy(lazy: LazyResult, method: str, args: Any) -> LazyResult:
    """A dynamic map's call (``lazy.task.maps`` is set) with one more policy for its element calls:
    the same call of its fan-out task with the policy added to its literal ``policies`` argument,
    its own ``run_if``/``after``/``sequence`` kept."""
    names, policies, *values = lazy[ARGS]
    if method == "with_constraints":
        before = next((dict(a) for m, a in policies if m == method), {})
        args = {**before, **args}
    policies = tuple(p for p in policies if p[0] != method) + ((method, args),)
    out = new_lazy(lazy.task, names, policies, *values)
    pol = tuple.__getitem__(lazy, POLICY)
    if pol is None:
        return out
    fields = list(out[:])
    fields[POLICY] = pol
    return _finish(fields)


def _finish(f: list[Any]) -> LazyResult:
    """Build a lazy result from fields whose policies changed: recompute dependencies and shape."""
    data: list[Any] = []
    for a in f[ARGS]:
        _scan(a, data)
    for k in sorted(f[KWARGS]):
        _scan(f[KWARGS][k], data)
    pol = f[POLICY]
    cond, after, seq, retry, cache, constraints = pol
    extra = ((cond,) if cond is not None else ()) + after + seq
    f[DEPS] = tuple(data) + extra
    f[NDATA] = len(data)
    policy = (
        cond._shape if cond is not None else None,
        tuple(d._shape for d in after),
        tuple(d._shape for d in seq),
        (retry.max_attempts, retry.delay, retry.backoff) if retry else None,
        id(cache) if cache is not None else None,
        constraints,
    )
    f[SHAPE] = hash((f[BASE], policy))
    return _tuple_new(LazyResult, tuple(f))


class MappedLazyResult:
    """``task.map(...)``: one call per element; its value is the list of results in input order.

    Chaining methods apply to every element call and return a new ``MappedLazyResult``.
    """

    __slots__ = ("task", "elements", "_deps", "_shape")
    task: Task
    elements: tuple[LazyResult, ...]
    _deps: tuple[LazyResult, ...]
    _shape: int

    def __init__(self, task: Task, elements: tuple[LazyResult, ...]) -> None:
        sa = object.__setattr__
        sa(self, "task", task)
        sa(self, "elements", elements)
        sa(self, "_deps", elements)
        sa(self, "_shape", hash(("map", task.key, tuple(e._shape for e in elements))))

    def _each(self, method: str, *args: Any, **kwargs: Any) -> MappedLazyResult:
        return MappedLazyResult(self.task, tuple(getattr(e, method)(*args, **kwargs) for e in self.elements))

    def run_if(self, condition: Any) -> MappedLazyResult:
        """Apply ``run_if`` to every element call."""
        return self._each("run_if", condition)

    def after(self, *others: Any) -> MappedLazyResult:
        """Apply ``after`` to every element call."""
        return self._each("after", *others)

    def with_retry(self, max_attempts: int = 3, delay: float = 0.0, backoff: float = 1.0) -> MappedLazyResult:
        """Apply ``with_retry`` to every element call (validated once, also for an empty map)."""
        _retry_policy(self.task.name, max_attempts, delay, backoff)
        return self._each("with_retry", max_attempts, delay, backoff)

    def with_cache(self, policy: CachePolicy) -> MappedLazyResult:
        """Apply ``with_cache`` to every element call."""
        return self._each("with_cache", policy)

    def with_constraints(self, **amounts: float) -> MappedLazyResult:
        """Apply ``with_constraints`` to every element call (validated once, also for an empty map)."""
        _check_constraints(self.task.name, amounts)
        return self._each("with_constraints", **amounts)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MappedLazyResult is immutable")

    def __len__(self) -> int:
        return len(self.elements)

    def __repr__(self) -> str:
        return f"<MappedLazyResult {self.task.name} x{len(self.elements)}>"


class Router:
    """Argument that takes the value of ``routes[selector's value]``.

    The routes not chosen are pruned (not executed) unless another consumer needs them. A selector
    value with no route raises :class:`cascade.RouteError`.
    """

    __slots__ = ("selector", "routes", "keys", "_deps", "_shape")
    selector: Any
    routes: dict[Any, Any]
    keys: tuple[Any, ...]
    _deps: tuple[Any, ...]
    _shape: int

    def __init__(self, selector: Any, routes: Mapping[Any, Any]) -> None:
        if not isinstance(selector, (LazyResult, MappedLazyResult)):
            raise TypeError(f"cs.Router(selector=...) needs a lazy result, got {type(selector).__name__}")
        if not isinstance(routes, Mapping) or not routes:
            raise TypeError("cs.Router(routes=...) needs a non-empty dict {key: lazy result}")
        for key, route in routes.items():
            if not isinstance(route, (LazyResult, MappedLazyResult)):
                raise TypeError(f"cs.Router route {key!r} must be a lazy result, got {type(route).__name__}")
        keys = tuple(_sorted_keys(routes))
        sa = object.__setattr__
        sa(self, "selector", selector)
        sa(self, "routes", dict(routes))
        sa(self, "keys", keys)
        sa(self, "_deps", (selector,) + tuple(routes[k] for k in keys))
        sa(self, "_shape", hash(("router", selector._shape, tuple((k, routes[k]._shape) for k in keys))))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Router is immutable")

    def __repr__(self) -> str:
        return f"<cs.Router keys={list(self.keys)!r}>"


def sequence(steps: Sequence[Any]) -> LazyResult:
    """Run ``steps`` one after another; the result is the last step's value.

    If a step is skipped, every later step is skipped with ``UpstreamSkipped_Sequence``; a target
    skipped only that way makes ``run()`` return ``None``.
    """
    steps = list(steps)
    if not steps:
        raise ValueError("cs.sequence() needs at least one step")
    for i, step in enumerate(steps):
        if not isinstance(step, LazyResult):
            raise TypeError(f"cs.sequence() step {i} must be a lazy result, got {type(step).__name__}")
    prev = steps[0]
    for step in steps[1:]:
        prev = step._evolve(_SEQ, step.seq_deps + (prev,))
    return prev


def pipeline(initial: Any, steps: Iterable[Any]) -> Any:
    """Fold ``initial`` through ``steps``: ``pipeline(x, [f, g])`` is ``g(f(x))``."""
    value = initial
    for i, step in enumerate(steps):
        if not callable(step):
            raise TypeError(f"cs.pipeline() step {i} must be a task or callable, got {type(step).__name__}")
        value = step(value)
    return value
