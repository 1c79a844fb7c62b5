"""Plain data across the sandbox boundary: a strict, bounded codec and length-prefixed frames.

Only None, bool, int, float, complex, str, bytes and lists, tuples, sets, frozensets and dicts of those
cross. The encoder runs on the candidate's side, so the trusted side never trusts its bytes: a frame
longer than ``MAX_FRAME`` is refused before it is read, JSON is parsed by the standard library (no
object hooks), and the tagged tree is rebuilt with a depth and node budget, exact types only. What
comes out is built from fresh builtins: no candidate object, method or ``__eq__`` survives the trip.

Encoding: JSON scalars stand for themselves (ints, floats with NaN/Infinity, strings, true/false,
null); every JSON array is a tagged container, ``["l", ...]`` list, ``["t", ...]`` tuple, ``["s", ...]``
set, ``["f", ...]`` frozenset, ``["d", k1, v1, k2, v2, ...]`` dict, ``["c", re, im]`` complex,
``["b", "hex"]`` bytes. This module imports the standard library only: it also runs inside the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from typing import Any, Optional

MAX_FRAME = 8 * 2**20  # bytes of one message: bounds what a hostile frame can make json build here (~100 MB)
MAX_DEPTH = 100
MAX_NODES = 2_000_000
_HEADER = struct.Struct(">I")


class WireError(ValueError):
    """Data that is not plain, too deep or too large, or a frame that breaks the protocol."""


def to_tree(value: Any, depth: int = 0) -> Any:
    """``value`` as a JSON-able tagged tree; WireError names the first type that is not plain data."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH}")
    t = type(value)
    if value is None or t is bool or t is int or t is float or t is str:
        return value
    if t is list or t is tuple or t is set or t is frozenset:
        items = sorted(value, key=_set_order) if t is set or t is frozenset else value
        tag = "l" if t is list else "t" if t is tuple else "s" if t is set else "f"
        return [tag, *(to_tree(v, depth + 1) for v in items)]
    if t is dict:
        out: list[Any] = ["d"]
        for k, v in value.items():
            out += [to_tree(k, depth + 1), to_tree(v, depth + 1)]
        return out
    if t is complex:
        return ["c", value.real, value.imag]
    if t is bytes:
        return ["b", value.hex()]
    raise WireError(f"not plain data: {t.__name__}")


def _set_order(v: Any) -> str:
    # Sets come out in hash order, which differs between processes: sort by canonical text so equal
    # sets give equal bytes (answer keys compare those bytes).
    return json.dumps(to_tree(v), sort_keys=True)


def dumps(value: Any) -> bytes:
    return json.dumps(to_tree(value), separators=(",", ":")).encode()


def from_tree(tree: Any) -> Any:
    """The value a tagged tree stands for, rebuilt from builtins with bounded depth and size."""
    budget = [MAX_NODES]
    return _build(tree, 0, budget)


def _build(node: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise WireError("data too large or too deep")
    t = type(node)
    if node is None or t is bool or t is int or t is float or t is str:
        return node
    if t is not list or not node or type(node[0]) is not str:
        raise WireError(f"malformed node of type {t.__name__}")
    tag, rest = node[0], node[1:]
    if tag == "c" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
        return complex(rest[0], rest[1])
    if tag == "b" and len(rest) == 1 and type(rest[0]) is str:
        try:
            return bytes.fromhex(rest[0])
        except ValueError:
            raise WireError("malformed bytes") from None
    items = [_build(x, depth + 1, budget) for x in rest]
    try:
        if tag == "l":
            return items
        if tag == "t":
            return tuple(items)
        if tag == "s":
            return set(items)
        if tag == "f":
            return frozenset(items)
        if tag == "d" and len(items) % 2 == 0:
            return dict(zip(items[::2], items[1::2]))
    except TypeError:  # an unhashable set member or dict key
        raise WireError("unhashable set member or dict key") from None
    raise WireError(f"unknown tag {tag!r}")


def loads(data: bytes) -> Any:
    """Strict inverse of ``dumps``: WireError for anything else (including over-long ints)."""
    try:
        tree = json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise WireError(f"not valid JSON: {type(exc).__name__}") from None
    return from_tree(tree)


def digest(values: list[Any]) -> str:
    """A hex key over plain values: equal values (sets in any order) give equal keys."""
    h = hashlib.sha256()
    for v in values:
        h.update(dumps(v))
        h.update(b"\n")
    return h.hexdigest()[:32]


def send(sock: socket.socket, message: dict[str, Any], fds: Optional[list[int]] = None) -> None:
    """One frame: 4-byte big-endian length, then a JSON object (the message's values already trees)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise WireError(f"message of {len(body)} bytes is over {MAX_FRAME}")
    data = _HEADER.pack(len(body)) + body
    if fds:
        socket.send_fds(sock, [data[:4]], fds)
        data = data[4:]
    sock.sendall(data)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 2**20))
        if not chunk:
            raise EOFError("peer closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket, with_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """The next frame as a dict (and up to ``with_fds`` passed descriptors). EOFError when the peer
    closed; WireError for an over-long or malformed frame; socket.timeout past the socket's timeout."""
    fds: list[int] = []
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, 4, with_fds)
        if not head:
            raise EOFError("peer closed the channel")
        head += _read_exact(sock, 4 - len(head))
    else:
        head = _read_exact(sock, 4)
    (size,) = _HEADER.unpack(head)
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes is over {MAX_FRAME}")
    try:
        message = json.loads(_read_exact(sock, size))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"malformed frame: {type(exc).__name__}") from None
    if type(message) is not dict:
        raise WireError("a frame must hold an object")
    return message, fds
