"""Contract of the exact cache-key encoding, version 1 (the table in cascade/runtime/cachekey.py).

Persistent cache backends (``cs.FileCache``, ``cs.RedisCache``) and the Redis state backend store
entries under these bytes and digests, so within a version they must not change: a key written by
one process or release has to be found by the next. The expected values below are written out from
the documented format, not computed with the module's helpers. The error paths are what a user
reads in ``CacheBypassed`` and ``UnkeyableInput``.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from typing import Any

import pytest

from cascade.runtime.cachekey import UnkeyableInput, cache_key, encode_exact


class Color(enum.Enum):
    """An enum keyed by class and member name."""

    RED = 1


class Point:
    """An object with a documented stable encoding."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __cascade_cache_key__(self) -> Any:
        return (self.x, self.y)


class Holder:
    """An object whose cache-key data is whatever it was given."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __cascade_cache_key__(self) -> Any:
        return self.data


class Broken:
    """An object whose cache-key method raises."""

    def __cascade_cache_key__(self) -> Any:
        raise RuntimeError("boom")


class SelfReferring:
    """An object whose cache-key data contains the object itself (a cycle through the hook).

    The method gives up after a few calls so that a walk that missed the cycle ends too.
    """

    def __init__(self) -> None:
        self.calls = 0

    def __cascade_cache_key__(self) -> Any:
        self.calls += 1
        if self.calls > 5:
            raise RuntimeError("called again and again")
        return [self]


def _s(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"s%d:%s" % (len(raw), raw)


def _f(x: float) -> bytes:
    return b"f" + struct.pack(">d", x)


MODULE = __name__

GOLDEN: list[tuple[Any, bytes]] = [
    (None, b"N"),
    (True, b"T"),
    (False, b"F"),
    (0, b"i1:\x00"),
    (1, b"i1:\x01"),
    (127, b"i1:\x7f"),
    (128, b"i2:\x00\x80"),
    (255, b"i2:\x00\xff"),
    (-1, b"i1:\xff"),
    (-128, b"i2:\xff\x80"),
    (2**63, b"i9:\x00\x80\x00\x00\x00\x00\x00\x00\x00"),
    (1.5, b"f?\xf8\x00\x00\x00\x00\x00\x00"),
    (-0.0, b"f\x80\x00\x00\x00\x00\x00\x00\x00"),
    (float("nan"), b"fnan"),
    (complex(1.5, -0.0), b"c" + b"f?\xf8\x00\x00\x00\x00\x00\x00" + b"f\x80\x00\x00\x00\x00\x00\x00\x00"),
    (complex(0.0, float("nan")), b"cf\x00\x00\x00\x00\x00\x00\x00\x00fnan"),
    ("", b"s0:"),
    ("ab", b"s2:ab"),
    ("\u00e9", b"s2:\xc3\xa9"),
    ("\udc80", b"s3:\xed\xb2\x80"),  # a lone surrogate is kept, not an error
    (b"ab", b"b2:ab"),
    (bytearray(b"ab"), b"B2:ab"),
    ((), b"t0:"),
    ((1, "a"), b"t2:i1:\x01s1:a"),
    ([True, None, 2], b"l3:TNi1:\x02"),
    ([[1], (2,)], b"l2:l1:i1:\x01t1:i1:\x02"),
    ({}, b"d0:"),
    ({"b": 1, "a": 2}, b"d2:s1:ai1:\x02s1:bi1:\x01"),
    ({2: None, 1: None}, b"d2:i1:\x01Ni1:\x02N"),
    ({9, 1}, b"S2:i1:\x01i1:\t"),
    (frozenset({"b", "a"}), b"Z2:s1:as1:b"),
    (Color.RED, b"E" + _s(f"{MODULE}.Color") + b"s3:RED"),
    (Point(1, 2), b"O" + _s(f"{MODULE}.Point") + b"t2:i1:\x01i1:\x02"),
    ([Point(1, 2), Color.RED], b"l2:O" + _s(f"{MODULE}.Point") + b"t2:i1:\x01i1:\x02E"
                               + _s(f"{MODULE}.Color") + b"s3:RED"),
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN, ids=[f"{i}-{type(v).__name__}" for i, (v, _) in enumerate(GOLDEN)])
def test_encoding_version_1_is_the_documented_byte_string(value: Any, expected: bytes) -> None:
    assert encode_exact(value) == expected


def test_cache_key_is_sha256_of_the_documented_layout() -> None:
    preimage = (b"cascade-cache-key-v1\0" + b"s4:fp#0" + b"i1:\x03"
                + b"a2:" + b"i1:\x01" + b"s1:a"
                + b"k2:" + b"s1:x" + b"T" + b"s1:y" + b"l0:")
    expected = hashlib.sha256(preimage).hexdigest()
    assert cache_key("fp#0", 3, (1, "a"), {"y": [], "x": True, "r": object()}, frozenset({"r"})) == expected
    assert expected == "70d699bda387ff301d77b659d46a8ded17141fad1a9e218b1d6bb59b17e2ee42"


def test_cache_key_of_a_call_without_inputs() -> None:
    preimage = b"cascade-cache-key-v1\0" + _s("t\u00e9#1") + b"N" + b"a0:" + b"k0:"
    assert cache_key("t\u00e9#1", None, (), {}) == hashlib.sha256(preimage).hexdigest()


def test_keyword_names_with_lone_surrogates_are_keyed() -> None:
    name = "x\udc80"
    preimage = b"cascade-cache-key-v1\0" + b"s2:fp" + b"N" + b"a0:" + b"k1:" + b"s4:x\xed\xb2\x80" + b"i1:\x01"
    assert cache_key("fp", None, (), {name: 1}) == hashlib.sha256(preimage).hexdigest()
    assert cache_key("fp", None, (), {name: 1}) != cache_key("fp", None, (), {"x": 1})


def test_every_item_of_a_sequence_is_part_of_the_key() -> None:
    base = encode_exact([1, 2, 3, 4])
    for i in range(4):
        changed = [1, 2, 3, 4]
        changed[i] = 9
        assert encode_exact(changed) != base
        assert encode_exact(tuple(changed)) != encode_exact((1, 2, 3, 4))


def test_a_sets_iteration_order_is_not_part_of_the_key() -> None:
    first, second = {1, 9}, {9, 1}  # 1 and 9 share a slot: the two sets iterate in opposite orders
    assert list(first) != list(second)
    assert encode_exact(first) == encode_exact(second)
    assert encode_exact(frozenset(first)) == encode_exact(frozenset(second))


@pytest.mark.parametrize("shared", [[1], (1,), {"a": 1}, {1}, frozenset({1}), Point(1, 2)],
                         ids=["list", "tuple", "dict", "set", "frozenset", "hook object"])
def test_a_value_used_twice_is_not_a_cycle(shared: Any) -> None:
    single = encode_exact(shared)
    assert encode_exact([shared, shared]) == b"l2:" + single + single
    assert encode_exact({"a": shared, "b": shared}) == b"d2:s1:a" + single + b"s1:b" + single


def test_an_unknown_object_names_its_type_and_the_fix() -> None:
    with pytest.raises(UnkeyableInput) as info:
        encode_exact(object())
    assert str(info.value) == (
        "value is a builtins.object, which has no exact cache-key encoding "
        "(give its class a __cascade_cache_key__() method returning plain data)")
    assert info.value.path == "value"


def test_the_position_of_an_unkeyable_part_is_named() -> None:
    cases: list[tuple[Any, str]] = [
        ([1, object()], "value[1]"),
        ({"k": object()}, "value['k']"),
        ({1: object()}, "value[...]"),
        ({object(): 1}, "value (a key)"),
        ({object()}, "value{...}"),
        (frozenset({object()}), "value{...}"),
        (Holder([0, object()]), "value.__cascade_cache_key__()[1]"),
    ]
    for value, path in cases:
        with pytest.raises(UnkeyableInput, match=r"which has no exact cache-key encoding") as info:
            encode_exact(value)
        assert info.value.path == path
        assert str(info.value).startswith(f"{path} is a builtins.object, ")
    with pytest.raises(UnkeyableInput) as info:
        encode_exact({"a": [object()]}, "kwargs")
    assert info.value.path == "kwargs['a'][0]"


def test_a_container_that_contains_itself_is_unkeyable() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UnkeyableInput) as info:
        encode_exact(loop)
    assert str(info.value) == "value[1] contains itself"
    assert info.value.path == "value[1]"


def test_a_cycle_through_cascade_cache_key_is_unkeyable() -> None:
    obj = SelfReferring()
    with pytest.raises(UnkeyableInput) as info:
        encode_exact(obj)
    assert str(info.value) == "value.__cascade_cache_key__()[0] contains itself"
    assert info.value.path == "value.__cascade_cache_key__()[0]"
    assert obj.calls == 1


def test_a_raising_cascade_cache_key_is_reported_with_its_error() -> None:
    with pytest.raises(UnkeyableInput) as info:
        encode_exact([Broken()])
    assert str(info.value) == "value[0]: __cascade_cache_key__() raised RuntimeError('boom')"
    assert info.value.path == "value[0]"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_cache_key_names_the_unkeyable_argument() -> None:
    cases: list[tuple[Any, tuple[Any, ...], dict[str, Any], str]] = [
        (object(), (), {}, "cache_version"),
        (None, (1, object()), {}, "args[1]"),
        (None, (), {"n": 1, "when": [object()]}, "when[0]"),
        (None, (), {"obj": Broken()}, "obj"),
    ]
    for version, args, kwargs, path in cases:
        with pytest.raises(UnkeyableInput) as info:
            cache_key("fp", version, args, kwargs)
        assert info.value.path == path
        assert str(info.value).startswith(f"{path} is a ") or str(info.value).startswith(f"{path}: ")
