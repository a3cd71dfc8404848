"""Frames between the relay and its check workers: a 4-byte big-endian
length, then a pickle. Both ends are the same sendguard install, talking
over a private socket pair, so pickle is safe and the cheapest encoding."""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

__all__ = ["HEADER", "encode", "recv_frame", "send_frame"]

HEADER = struct.Struct("!I")


def encode(obj: Any) -> bytes:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> Any:
    """The next frame's object from a blocking socket, or None at EOF."""
    head = _recv_exactly(sock, HEADER.size)
    if head is None:
        return None
    body = _recv_exactly(sock, HEADER.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def send_frame(sock: socket.socket, obj: Any) -> None:
    sock.sendall(encode(obj))
