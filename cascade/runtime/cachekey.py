"""Exact cache keys: a digest of the task's identity, its cache version and every resolved input.

Two calls share a cache entry exactly when they are calls of the same task (same fingerprint, same
``cache_version``) with the same inputs, where "same" is type-exact: ``1``, ``True``, ``1.0`` and
``"1"`` are four inputs; so are ``0.0`` and ``-0.0``, ``b"a"`` and ``"a"``, ``(1,)`` and ``[1]``.
Equality (``==``), ``hash()`` and ``repr()`` are never used, so no user ``__eq__``/``__hash__``
runs and two objects with equal reprs cannot collide.

The encoding (version 1) is a byte string, each value a one-letter tag then its content; lengths
and counts are written in decimal followed by ``:``, so no encoding is a prefix of another:

=============================  =========================================================
``None`` / ``True`` / ``False``  ``N`` / ``T`` / ``F``
``int``                        ``i<len>:<two's-complement big-endian bytes>`` (any size)
``float``                      ``f<8 bytes IEEE-754 big-endian>``; every NaN is ``fnan``
``complex``                    ``c`` then real and imaginary parts as floats
``str`` / ``bytes``            ``s<len>:<UTF-8>`` / ``b<len>:<bytes>``; ``bytearray`` is ``B``
``tuple`` / ``list``           ``t<n>:`` / ``l<n>:`` then the items in order
``dict``                       ``d<n>:`` then key/value pairs sorted by encoded key (insertion
                               order is not part of the key)
``set`` / ``frozenset``        ``S<n>:`` / ``Z<n>:`` then the items' encodings, sorted
enum member                    ``E`` then the class's module and qualified name and the member name
an object with                 ``O`` then its class's module and qualified name, then the encoding
``__cascade_cache_key__()``    of what that method returns (the user's documented stable encoding)
=============================  =========================================================

Types are matched exactly (a subclass of ``int`` or ``str`` is not an ``int`` here). Any other
object, a container that contains itself, or a ``__cascade_cache_key__`` that raises makes the input
*unkeyable*: :func:`cache_key` raises :class:`UnkeyableInput` and the engine runs the call without the
cache (``cs.CacheBypassed(reason="unkeyable")``). The walk is iterative, so nesting depth is bounded
by memory, not by the recursion limit.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from typing import Any

__all__ = ["UnkeyableInput", "cache_key", "encode_exact"]

_VERSION = b"cascade-cache-key-v1\0"
_pack_double = struct.Struct(">d").pack
_ENTER, _MARK, _EXIT = 0, 1, 2


class UnkeyableInput(TypeError):
    """An input has no exact encoding; ``path`` says where (``args[1]['x'][0]``)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _float(v: float) -> bytes:
    return b"fnan" if v != v else b"f" + _pack_double(v)


def _int(v: int) -> bytes:
    raw = v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True)
    return b"i%d:%s" % (len(raw), raw)


def _sized(tag: bytes, raw: bytes) -> bytes:
    return b"%s%d:%s" % (tag, len(raw), raw)


def _atomic(v: Any, t: type) -> bytes | None:
    if t is str:
        return _sized(b"s", v.encode("utf-8", "surrogatepass"))
    if t is int:
        return _int(v)
    if v is None:
        return b"N"
    if t is bool:
        return b"T" if v else b"F"
    if t is float:
        return _float(v)
    if t is bytes:
        return _sized(b"b", v)
    if t is bytearray:
        return _sized(b"B", bytes(v))
    if t is complex:
        return b"c" + _float(v.real) + _float(v.imag)
    if isinstance(v, enum.Enum):
        return b"E" + _sized(b"s", f"{t.__module__}.{t.__qualname__}".encode()) + _sized(b"s", v.name.encode())
    return None


_CONTAINER_TAGS: dict[type, bytes] = {tuple: b"t", list: b"l", dict: b"d", set: b"S", frozenset: b"Z"}


def _render(path: Any) -> str:
    """A path kept as nested ``(parent, step)`` pairs (cheap to extend), as text."""
    steps: list[str] = []
    while type(path) is tuple:
        path, step = path
        steps.append(step)
    return str(path) + "".join(reversed(steps))


def encode_exact(value: Any, where: str = "value") -> bytes:
    """The type-exact encoding of ``value`` (see the module docstring).

    Raises :class:`UnkeyableInput` naming the position (``where`` and the path inside it) of the
    first part that has no exact encoding.
    """
    # Pieces are appended to ``out`` in order; a sequence writes its header and then its items, so
    # the whole walk is linear. Dicts and sets must sort their items' encodings: a _MARK frame
    # before each item records where it starts in ``out``, and the _EXIT frame joins and sorts.
    out: list[bytes] = []
    active: set[int] = set()  # ids of the containers on the current path (a cycle check)
    # Frames: (_ENTER, value, path), (_MARK, starts), (_EXIT, tag, n, starts or None, id).
    # Paths are nested (parent, step) pairs, rendered only for an error message.
    work: list[tuple[Any, ...]] = [(_ENTER, value, where)]
    while work:
        frame = work.pop()
        op = frame[0]
        if op == _ENTER:
            v, path = frame[1], frame[2]
            t = type(v)
            enc = _atomic(v, t)
            if enc is not None:
                out.append(enc)
                continue
            if id(v) in active:
                raise UnkeyableInput(f"{_render(path)} contains itself", _render(path))
            tag = _CONTAINER_TAGS.get(t)
            if tag is None:
                hook = getattr(t, "__cascade_cache_key__", None)
                if hook is None:
                    where_ = _render(path)
                    raise UnkeyableInput(
                        f"{where_} is a {t.__module__}.{t.__qualname__}, which has no exact cache-key encoding "
                        "(give its class a __cascade_cache_key__() method returning plain data)", where_)
                try:
                    data = hook(v)
                except Exception as exc:
                    where_ = _render(path)
                    raise UnkeyableInput(f"{where_}: __cascade_cache_key__() raised {exc!r}", where_) from exc
                out.append(b"O" + _sized(b"s", f"{t.__module__}.{t.__qualname__}".encode()))
                active.add(id(v))
                work.append((_EXIT, b"O", 1, None, id(v)))
                work.append((_ENTER, data, (path, ".__cascade_cache_key__()")))
                continue
            active.add(id(v))
            if t is dict:
                items = list(v.items())
                starts: list[int] = []
                work.append((_EXIT, tag, len(items), starts, id(v)))
                for k, x in reversed(items):
                    work.append((_ENTER, x, (path, f"[{k!r}]" if type(k) is str else "[...]")))
                    work.append((_MARK, starts))
                    work.append((_ENTER, k, (path, " (a key)")))
                    work.append((_MARK, starts))
            elif t is set or t is frozenset:
                items = list(v)
                starts = []
                work.append((_EXIT, tag, len(items), starts, id(v)))
                for x in items:
                    work.append((_ENTER, x, (path, "{...}")))
                    work.append((_MARK, starts))
            else:
                items = list(v)
                out.append(b"%s%d:" % (tag, len(items)))
                work.append((_EXIT, tag, len(items), None, id(v)))
                for i in range(len(items) - 1, -1, -1):
                    work.append((_ENTER, items[i], (path, f"[{i}]")))
        elif op == _MARK:
            frame[1].append(len(out))
        else:
            _, tag, n, starts, ident = frame
            active.discard(ident)
            if starts is None:
                continue  # a sequence or a hook object: already written in order
            bounds = starts + [len(out)]
            parts = [b"".join(out[bounds[i]:bounds[i + 1]]) for i in range(len(starts))]
            if starts:
                del out[starts[0]:]
            if tag == b"d":
                joined = b"".join(k + x for k, x in sorted(zip(parts[0::2], parts[1::2])))
            else:
                joined = b"".join(sorted(parts))
            out.append(b"%s%d:%s" % (tag, n, joined))
    return b"".join(out)


def cache_key(fingerprint: str, version: Any, args: Any, kwargs: dict[str, Any],
              skip: frozenset[str] = frozenset()) -> str:
    """The cache key of one call: a SHA-256 hex digest of the task's fingerprint, its cache
    version and the exact encodings of ``args`` and ``kwargs`` (keyword names sorted; the names in
    ``skip``, injected resources, left out).

    Raises :class:`UnkeyableInput` when an input has no exact encoding.
    """
    h = hashlib.sha256(_VERSION)
    h.update(_sized(b"s", fingerprint.encode()))
    h.update(encode_exact(version, "cache_version"))
    h.update(b"a%d:" % len(args))
    for i, a in enumerate(args):
        h.update(encode_exact(a, f"args[{i}]"))
    names = sorted(k for k in kwargs if k not in skip)
    h.update(b"k%d:" % len(names))
    for k in names:
        h.update(_sized(b"s", k.encode("utf-8", "surrogatepass")))
        h.update(encode_exact(kwargs[k], k))
    return h.hexdigest()
