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

import codecs
import json
import socket
import struct

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 << 20
"""A request holds argv and the environment; anything larger is not a client of ours."""


class ProtocolError(Exception):
    """The other side closed the connection or sent something that is not a message."""


STREAMS = ("stdin", "stdout", "stderr")


def check_run(message: dict) -> dict:
    """``message`` if it is a well-formed ``run`` request, else :class:`ProtocolError` saying what is wrong.

    Every field is checked for its type and for values the operating system
    could not hold (a NUL in a path, an argument or the environment; a umask
    beyond 0o777; an unknown text encoding), so that no request can reach the
    command, or take the server down, with something it cannot use.
    """

    def text(value, what: str) -> str:
        if not isinstance(value, str):
            raise ProtocolError(f"{what} must be a string, got {type(value).__name__}")
        if "\0" in value:
            raise ProtocolError(f"{what} holds a NUL character")
        return value

    argv = message.get("argv")
    if not isinstance(argv, list):
        raise ProtocolError(f"argv must be a list, got {type(argv).__name__}")
    for number, arg in enumerate(argv):
        text(arg, f"argv[{number}]")
    cwd = text(message.get("cwd"), "cwd")
    if not cwd.startswith("/"):
        raise ProtocolError("cwd must be an absolute path")
    env = message.get("env")
    if not isinstance(env, dict):
        raise ProtocolError(f"env must be an object, got {type(env).__name__}")
    for key, value in env.items():
        if not key or "=" in text(key, "an environment name"):
            raise ProtocolError(f"environment name {key!r} is not one a process can have")
        text(value, f"env[{key!r}]")
    umask = message.get("umask", 0o022)
    if isinstance(umask, bool) or not isinstance(umask, int) or not 0 <= umask <= 0o777:
        raise ProtocolError(f"umask must be an integer from 0 to 0o777, got {umask!r}")
    closed = message.get("closed", [])
    if not isinstance(closed, list) or not all(fd in (0, 1, 2) and not isinstance(fd, bool) for fd in closed):
        raise ProtocolError(f"closed must be a list of 0, 1 and 2, got {closed!r}")
    streams = message.get("streams", {})
    if not isinstance(streams, dict) or set(streams) - set(STREAMS):
        raise ProtocolError("streams must map stdin, stdout and stderr to [encoding, errors]")
    for name, pair in streams.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise ProtocolError(f"streams[{name!r}] must be [encoding, errors]")
        encoding, errors = (text(v, f"streams[{name!r}]") for v in pair)
        try:
            codecs.lookup(encoding or "utf-8")
            codecs.lookup_error(errors or "strict")
        except LookupError as exc:
            raise ProtocolError(f"streams[{name!r}]: {exc}") from None
    return message


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
