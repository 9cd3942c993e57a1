"""Deterministic identities: structural ids (literals included) and template ids (literals left out).

Ids are SHA-1 digests of a canonical text, so they are equal across processes: no ``id()``, no
salted ``hash()`` of strings, dict keys sorted, tasks named by their fingerprint (which tells two
tasks with one name apart).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..spec.lazy import LazyResult, MappedLazyResult, Router, _scan, _sorted_keys
from ..spec.markers import Marker

__all__ = ["digest", "encode_literal", "encode_args"]

_PLAIN = (int, float, str, bytes, bool, type(None), complex)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def encode_literal(value: Any) -> str:
    """Canonical text of a literal value; equal values of equal types give equal text."""
    t = type(value)
    if t in _PLAIN:
        return f"{t.__name__}:{value!r}"
    if t is list or t is tuple:
        return f"{t.__name__}[" + ",".join(encode_literal(v) for v in value) + "]"
    if t is dict:
        return "dict{" + ",".join(f"{encode_literal(k)}={encode_literal(value[k])}" for k in _sorted_keys(value)) + "}"
    if t is set or t is frozenset:
        return f"{t.__name__}{{" + ",".join(sorted(encode_literal(v) for v in value)) + "}"
    return f"{t.__module__}.{t.__qualname__}:{value!r}"


def encode_args(obj: LazyResult, dep_ids: list[str], literals: bool) -> str:
    """Canonical text of a call's arguments, dependencies replaced by their ids (in ``_deps`` order)."""
    it = iter(dep_ids)

    def enc(value: Any) -> str:
        t = type(value)
        if t is LazyResult or t is MappedLazyResult or t is Router or isinstance(
            value, (LazyResult, MappedLazyResult, Router)
        ):
            return f"<{next(it)}>"
        if (t is list or t is tuple or t is dict) and _scan(value, []) is not None:
            if t is dict:
                return "dict{" + ",".join(f"{encode_literal(k)}={enc(value[k])}" for k in _sorted_keys(value)) + "}"
            return f"{t.__name__}[" + ",".join(enc(v) for v in value) + "]"
        if isinstance(value, Marker):
            return repr(value.shape_key)
        return encode_literal(value) if literals else "L"

    pos = ",".join(enc(a) for a in obj.args)
    kw = ",".join(f"{k}={enc(obj.kwargs[k])}" for k in sorted(obj.kwargs))
    return f"({pos};{kw})"
