"""Deterministic identities: structural ids (literals included) and template ids (literals left out).

Ids are SHA-1 digests of a canonical text, so they are equal across processes: no ``id()``, no
salted ``hash()`` of strings, dict keys sorted, tasks named by their fingerprint (which tells two
tasks with one name apart).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..spec.lazy import ARGS, KWARGS, LazyResult, MappedLazyResult, Router, _sorted_keys, argument_label
from ..spec.markers import Marker

__all__ = ["digest", "encode_literal", "encode_args", "plain_call_texts"]

_PLAIN = (int, float, str, bytes, bool, type(None), complex)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# Ints above this many bits are written in hex: ``repr`` of an int beyond Python's int-to-string
# limit (4300 digits by default, settable down to 640) raises, hex conversion is never limited, and
# a fixed threshold keeps the text the same in every process whatever its limit. 2000 bits are
# about 600 decimal digits. Decimal ``repr`` never contains an ``x``, so the two forms cannot meet.
_HEX_BITS = 2000


def _atom(value: Any) -> str:
    t = type(value)
    if t is int and value.bit_length() > _HEX_BITS:
        return f"int:{value:#x}"
    return f"{t.__name__}:{value!r}"


def encode_literal(value: Any) -> str:
    """Canonical text of a literal value; equal values of equal types give equal text.

    Iterative (any nesting depth). Raises ``ValueError`` for a container that contains itself and
    whatever ``repr``/ordering of an unknown object raises; :func:`encode_args` names the task and
    argument for it.
    """
    if type(value) in _PLAIN:
        return _atom(value)
    return _walk(value, True, None)[0]


def encode_args(obj: LazyResult, dep_ids: list[str], literals: bool) -> str:
    """Canonical text of a call's arguments, dependencies replaced by their ids (in ``_deps`` order).

    ``literals=False`` writes every literal as ``L`` (the template). A failure to encode an
    argument is re-raised as ``TypeError`` (``ValueError`` for a self-containing container) naming
    the task and the argument.
    """
    it = iter(dep_ids)
    parts: list[str] = []
    where: Any = 0
    try:
        for value in obj[ARGS]:
            parts.append(_arg(value, literals, it))
            where += 1
        parts.append(";")
        kwargs = obj[KWARGS]
        for n, where in enumerate(sorted(kwargs)):
            parts.append(("," if n else "") + f"{where}={_arg(kwargs[where], literals, it)}")
    except Exception as exc:
        arg = argument_label(obj.task.positional, where)
        cls = ValueError if isinstance(exc, ValueError) else TypeError
        raise cls(
            f"task {obj.task.name!r} {arg}: cannot be encoded for the graph's identity: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    pos = ",".join(parts[: parts.index(";")])
    return f"({pos};{''.join(parts[parts.index(';') + 1:])})"


def plain_call_texts(obj: LazyResult, dep_sids: list[str], dep_tids: list[str]) -> tuple[str, str] | None:
    """``encode_args`` of a call with literals and without, in one pass, when every argument is a
    plain literal or a lazy result at top level (the common call); ``None`` otherwise (the caller
    then encodes it in general). The texts are exactly ``encode_args``'s."""
    s_pos: list[str] = []
    t_pos: list[str] = []
    k = 0
    for value in obj[ARGS]:
        t = type(value)
        if t in _PLAIN:
            s_pos.append(encode_literal(value))
            t_pos.append("L")
        elif t is LazyResult:
            s_pos.append(f"<{dep_sids[k]}>")
            t_pos.append(f"<{dep_tids[k]}>")
            k += 1
        else:
            return None
    kwargs = obj[KWARGS]
    if not kwargs:
        return f"({','.join(s_pos)};)", f"({','.join(t_pos)};)"
    s_kw: list[str] = []
    t_kw: list[str] = []
    for name in sorted(kwargs):
        value = kwargs[name]
        t = type(value)
        if t in _PLAIN:
            s_kw.append(f"{name}={encode_literal(value)}")
            t_kw.append(f"{name}=L")
        elif t is LazyResult:
            s_kw.append(f"{name}=<{dep_sids[k]}>")
            t_kw.append(f"{name}=<{dep_tids[k]}>")
            k += 1
        else:
            return None
    return f"({','.join(s_pos)};{','.join(s_kw)})", f"({','.join(t_pos)};{','.join(t_kw)})"


def _arg(value: Any, literals: bool, it: Any) -> str:
    t = type(value)
    if t in _PLAIN:
        return encode_literal(value) if literals else "L"
    return _walk(value, literals, it)[0]


_STRUCT = (LazyResult, MappedLazyResult, Router)


def _leaf(value: Any, literals: bool, it: Any) -> tuple[str, bool]:
    """Text of a non-container value and whether it is structure (a dependency or a marker)."""
    t = type(value)
    if t in _PLAIN:
        return (encode_literal(value) if literals else "L"), False
    if it is not None:
        if t is LazyResult or t is MappedLazyResult or t is Router or isinstance(value, _STRUCT):
            return f"<{next(it)}>", True
        if isinstance(value, Marker):
            return repr(value.shape_key), True
    if not literals:
        return "L", False
    if t is set or t is frozenset:
        return f"{t.__name__}{{" + ",".join(sorted(encode_literal(v) for v in value)) + "}", False
    return f"{t.__module__}.{t.__qualname__}:{value!r}", False


def _walk(root: Any, literals: bool, it: Any) -> tuple[str, bool]:
    """Text of ``root`` (a list, tuple or dict at any depth, or a leaf), iteratively.

    ``it`` (dependency ids, or ``None`` for a plain literal) is consumed in the order ``_scan``
    found dependencies: depth first, dict keys sorted. A container holding no dependency or marker
    is a literal: in a template (``literals=False``) it is ``L`` whatever its length.
    """
    t = type(root)
    if t is not list and t is not tuple and t is not dict:
        return _leaf(root, literals, it)
    # frame: [container, keys (dict) or None, next index, texts so far, any structure inside]
    stack: list[list[Any]] = [[root, _sorted_keys(root) if t is dict else None, 0, [], False]]
    on_path = {id(root)}
    while True:
        frame = stack[-1]
        c, keys, i, texts, _ = frame
        n = len(c) if keys is None else len(keys)
        if i < n:
            frame[2] = i + 1
            item = c[i] if keys is None else c[keys[i]]
            if keys is not None:
                texts.append(encode_literal(keys[i]) + "=")
            ti = type(item)
            if ti is list or ti is tuple or ti is dict:
                if id(item) in on_path:
                    raise ValueError(f"a {ti.__name__} that contains itself cannot be described")
                on_path.add(id(item))
                stack.append([item, _sorted_keys(item) if ti is dict else None, 0, [], False])
                continue
            text, structural = _leaf(item, literals, it)
            texts.append(text)
            frame[4] = frame[4] or structural
            continue
        stack.pop()
        on_path.discard(id(c))
        structural = frame[4]
        if not literals and not structural:
            text = "L"
        elif keys is not None:
            text = "dict{" + ",".join(texts[j] + texts[j + 1] for j in range(0, len(texts), 2)) + "}"
        else:
            text = f"{type(c).__name__}[" + ",".join(texts) + "]"
        if not stack:
            return text, structural
        parent = stack[-1]
        parent[3].append(text)
        parent[4] = parent[4] or structural
