"""How values are written to stores outside the process (file and Redis caches, Redis state).

An entry is ``header + tag + payload``:

- ``header`` (6 bytes): ``b"CSC1"``, the payload format (``J`` tagged JSON, ``P`` pickle) and the
  check kind (``H`` HMAC-SHA256 with the configured key, ``S`` plain SHA-256);
- ``tag`` (32 bytes): the HMAC (or hash) of the *context* (the cache key or state field the entry
  is stored under) plus header and payload, so an entry copied under another key fails the check;
- ``payload``: the value.

**Tagged JSON** (``J``) is the format for plain data and never executes anything when read:
``None``, ``bool``, ``int``, ``float`` and ``str`` as JSON (integers beyond 2**53 and non-finite
floats as ``{"$int": hex}`` / ``{"$float": "nan"|"inf"|"-inf"}``), lists as arrays, and every
other container as a one-key object: ``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}``
(insertion order and key types kept), ``{"$set": [...]}``, ``{"$frozenset": [...]}``,
``{"$bytes": base64}``, ``{"$bytearray": base64}``, ``{"$complex": [re, im]}``. Types are matched exactly and read back exactly
(a tuple stays a tuple, ``-0.0`` stays ``-0.0``).

**Pickle** (``P``) is used only for values JSON cannot hold, and only when a ``key`` is
configured: a pickle is unpickled only after its HMAC verified. Without a key such a value is
refused (:class:`Unserialisable`) and the cache simply does not store it.

Reading checks everything before decoding: a short or unknown header, a wrong tag, an ``S`` entry
when a key is configured (a downgrade) or an ``H`` entry without one, or a payload that does not
parse raises :class:`~cascade.errors.CorruptEntryError`.

Without a key the ``S`` hash only detects accidental damage (truncation, bit rot); anyone who can
write to the store can forge plain data. Configure a key for any store others can write to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pickle
from typing import Any

from ..errors import CorruptEntryError, StoreError

__all__ = ["Serializer", "Unserialisable"]

_MAGIC = b"CSC1"
_HEADER = 6
_TAG = 32
_SAFE_INT = 2**53


class Unserialisable(StoreError):
    """The value cannot be written in a safe format (not plain data, and no HMAC key for pickle)."""


def _enc(v: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        return v if -_SAFE_INT < v < _SAFE_INT else {"$int": format(v, "x")}
    if t is float:
        if v != v:
            return {"$float": "nan"}
        if v in (float("inf"), float("-inf")):
            return {"$float": "inf" if v > 0 else "-inf"}
        return v
    if t is list:
        return [_enc(x) for x in v]
    if t is tuple:
        return {"$tuple": [_enc(x) for x in v]}
    if t is dict:
        return {"$dict": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {"$" + t.__name__: [_enc(x) for x in v]}
    if t is bytes or t is bytearray:
        return {"$" + t.__name__: base64.b64encode(v).decode("ascii")}
    if t is complex:
        return {"$complex": [_enc(v.real), _enc(v.imag)]}
    raise Unserialisable(f"a {t.__module__}.{t.__qualname__} is not plain data")


_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _dec(v: Any) -> Any:
    t = type(v)
    if t is list:
        return [_dec(x) for x in v]
    if t is not dict:
        return v  # None, bool, int, float, str (json.loads makes nothing else)
    if len(v) != 1:
        raise ValueError("a tagged object has exactly one key")
    ((tag, body),) = v.items()
    if tag == "$tuple":
        return tuple(_dec(x) for x in _list(body))
    if tag == "$dict":
        out = {}
        for pair in _list(body):
            k, x = _list(pair, 2)
            out[_dec(k)] = _dec(x)
        return out
    if tag == "$set":
        return {_dec(x) for x in _list(body)}
    if tag == "$frozenset":
        return frozenset(_dec(x) for x in _list(body))
    if tag == "$bytes":
        return base64.b64decode(_str(body), validate=True)
    if tag == "$bytearray":
        return bytearray(base64.b64decode(_str(body), validate=True))
    if tag == "$int":
        return int(_str(body), 16)
    if tag == "$float":
        return _FLOATS[_str(body)]
    if tag == "$complex":
        re, im = _list(body, 2)
        return complex(_dec(re), _dec(im))
    raise ValueError(f"unknown tag {tag!r}")


def _list(v: Any, n: int | None = None) -> list[Any]:
    if type(v) is not list or (n is not None and len(v) != n):
        raise ValueError("malformed tagged value")
    return v


def _str(v: Any) -> str:
    if type(v) is not str:
        raise ValueError("malformed tagged value")
    return v


def _reject_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not part of the format")


class Serializer:
    """Encodes values into entries and decodes them back, checking integrity first.

    ``key``: the HMAC secret (bytes or str; at least 16 bytes). With a key every entry is
    authenticated and values that are not plain data are pickled; without one only plain data
    (tagged JSON) is written.
    """

    def __init__(self, key: bytes | str | None = None) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if key is not None and (not isinstance(key, bytes) or len(key) < 16):
            raise ValueError("Serializer(key=...) must be bytes or str of at least 16 bytes")
        self._key = key

    @property
    def authenticated(self) -> bool:
        """Whether entries carry an HMAC (a key is configured)."""
        return self._key is not None

    def _tag(self, kind: bytes, context: bytes, body: bytes) -> bytes:
        mac: Any
        if kind == b"H":
            assert self._key is not None
            mac = hmac.new(self._key, digestmod=hashlib.sha256)
        else:
            mac = hashlib.sha256()
        mac.update(b"%d:" % len(context))
        mac.update(context)
        mac.update(body)
        return mac.digest()

    def dumps(self, value: Any, context: bytes = b"") -> bytes:
        """The entry for ``value`` stored under ``context``; raises :class:`Unserialisable`."""
        try:
            payload = json.dumps(_enc(value), allow_nan=False, separators=(",", ":")).encode("utf-8")
            fmt = b"J"
        except Unserialisable:
            if self._key is None:
                raise Unserialisable(
                    f"a {type(value).__module__}.{type(value).__qualname__} value is not plain data, and "
                    "pickling needs an HMAC key (key=...)"
                ) from None
            try:
                payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise Unserialisable(f"cannot pickle a {type(value).__qualname__}: {exc}") from exc
            fmt = b"P"
        except (RecursionError, ValueError) as exc:
            raise Unserialisable(f"cannot encode the value: {exc}") from exc
        kind = b"H" if self._key is not None else b"S"
        header = _MAGIC + fmt + kind
        return header + self._tag(kind, context, header + payload) + payload

    def loads(self, entry: bytes, context: bytes = b"") -> Any:
        """The value of ``entry`` stored under ``context``.

        Raises :class:`~cascade.errors.CorruptEntryError` when the entry is truncated, tampered
        with, stored under another context, or in a format this serializer must not read.
        """
        if not isinstance(entry, (bytes, bytearray, memoryview)):
            raise CorruptEntryError(f"entry is a {type(entry).__name__}, not bytes")
        entry = bytes(entry)
        if len(entry) < _HEADER + _TAG or entry[:4] != _MAGIC:
            raise CorruptEntryError("entry is truncated or not a Cascade entry")
        header, tag, payload = entry[:_HEADER], entry[_HEADER:_HEADER + _TAG], entry[_HEADER + _TAG:]
        fmt, kind = header[4:5], header[5:6]
        if kind == b"H" and self._key is None:
            raise CorruptEntryError("entry is authenticated but no key is configured to check it")
        if kind == b"S" and self._key is not None:
            raise CorruptEntryError("entry is not authenticated, but a key is configured")
        if kind not in (b"H", b"S") or fmt not in (b"J", b"P"):
            raise CorruptEntryError(f"unknown entry format {header[4:]!r}")
        if not hmac.compare_digest(tag, self._tag(kind, context, header + payload)):
            raise CorruptEntryError("entry failed its integrity check (tampered, truncated or stored under another key)")
        if fmt == b"P":
            if kind != b"H":  # unreachable after the checks above; never unpickle without an HMAC
                raise CorruptEntryError("pickled entry without HMAC")
            try:
                return pickle.loads(payload)
            except Exception as exc:
                raise CorruptEntryError(f"authenticated pickle failed to load: {exc!r}") from exc
        try:
            return _dec(json.loads(payload.decode("utf-8"), parse_constant=_reject_constant))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise CorruptEntryError(f"entry payload is malformed: {exc}") from exc
