"""The plain-data codec the trusted side parses candidate bytes with: strict, bounded, canonical."""

from __future__ import annotations

import json
import math
import socket

import pytest

from passkcore.verify import wire

VALUES = [None, True, 0, -(2**100), 1.5, math.inf, "é\x00", b"\xff\x00", 1 + 2j, [1, [2]], (1, (2,)),
          {3, "a"}, frozenset({1}), {1: "a", (1, 2): [None], "k": {"n": 1.0}}, [], (), {}]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_round_trip_keeps_types(value: object) -> None:
    back = wire.loads(wire.dumps(value))
    assert back == value and type(back) is type(value)


def test_nan_and_canonical_sets() -> None:
    assert math.isnan(wire.loads(wire.dumps(math.nan)))
    words = [f"w{i}" for i in range(50)]
    a, b = set(words), set()
    for w in reversed(words):  # same members, another insertion order (and so iteration order, often)
        b.add(w)
    assert wire.dumps(a) == wire.dumps(b) and wire.digest([a]) == wire.digest([b]) != wire.digest([set()])


class Liar(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("value", [Liar(1), [Liar(1)], object(), {"a": print}, range(3), bytearray(b"x")],
                         ids=["int subclass", "nested subclass", "object", "function", "range", "bytearray"])
def test_only_exact_plain_types_encode(value: object) -> None:
    with pytest.raises(wire.WireError, match="not plain data"):
        wire.dumps(value)


@pytest.mark.parametrize("data", [
    b'["x", 1]', b'["l"', b'[1, 2]', b'{"a": 1}', b'["d", 1]', b'["s", ["l"]]', b'["d", ["l"], 1]',
    b'["b", "zz"]', b'["c", "1", 2]', b'1' * 5000, b'[' * 100_000 + b']' * 100_000, b'["l", ' * 150 + b'1' + b']' * 150,
], ids=["unknown tag", "truncated", "untagged list", "object", "odd dict", "unhashable set member",
        "unhashable key", "bad hex", "complex of str", "5000-digit int", "very deep JSON", "deeper than MAX_DEPTH"])
def test_malformed_input_is_refused(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.loads(data)


def test_frames_are_bounded_and_typed() -> None:
    a, b = socket.socketpair()
    with a, b:
        wire.send(a, {"r": 1})
        assert wire.recv(b)[0] == {"r": 1}
        a.sendall((wire.MAX_FRAME + 1).to_bytes(4, "big"))
        with pytest.raises(wire.WireError, match="over"):
            wire.recv(b)
    a, b = socket.socketpair()
    with a, b:
        body = json.dumps([1]).encode()
        a.sendall(len(body).to_bytes(4, "big") + body)
        with pytest.raises(wire.WireError, match="object"):
            wire.recv(b)
        a.close()
        with pytest.raises(EOFError):
            wire.recv(b)
