"""The messages between client and server: one JSON object per message, standard library only.

Each message is a 4-byte big-endian length and that many bytes of JSON; the
client's request also carries its standard input, output and error as file
descriptors (``SCM_RIGHTS``), so the server reads and writes the client's own
streams: pipes, terminals and files alike.

Client to server: ``{"op": "run", "argv": [...], "cwd", "env", "umask",
"closed", "streams"}`` (with three descriptors), then at most one
``{"op": "cancel", "signum": N}``; or ``{"op": "status"}`` or ``{"op": "stop"}``.
Server to client: first ``{"identity": ..., "pid": N}``; then
``{"exit": code}``, ``{"fallback": reason}`` (nothing was done: run it
yourself), or the status object.
"""

from __future__ import annotations

import json
import socket
import struct

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 << 20
"""A request holds argv and the environment; anything larger is not a client of ours."""


class ProtocolError(Exception):
    """The other side closed the connection or sent something that is not a message."""


def send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    """Send ``message`` (and ``fds``, if any) on ``sock``."""
    data = json.dumps(message).encode("utf-8")
    payload = HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [payload], fds)
        payload = payload[sent:]
    if payload:
        sock.sendall(payload)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict, list[int]]:
    """The next message on ``sock`` and the descriptors that came with it."""
    fds: list[int] = []
    if max_fds:
        head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, max_fds)
        if len(head) < HEADER.size:
            head += _exactly(sock, HEADER.size - len(head))
    else:
        head = _exactly(sock, HEADER.size)
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise ProtocolError(f"message of {size} bytes")
    try:
        message = json.loads(_exactly(sock, size))
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not an object")
    return message, fds


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ProtocolError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
