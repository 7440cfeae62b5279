"""The warm server: one process that keeps TensorFlow and the models loaded between commands.

It listens on a Unix socket of mode 0600 in a private directory
(:mod:`convfilter.server.paths`) and checks every peer's uid with
``SO_PEERCRED``. Each command runs exactly as ``convfilter`` would run it,
through the ``run_command`` of the :class:`Host` it was given (the command
line passes itself in; the server never imports it), in the main thread,
one after the other (clients that come together are queued), inside
:func:`client_context`: the client's standard streams (handed over as
descriptors), working directory, environment and umask. A client's Ctrl-C
(a ``cancel`` message) or its death (the connection closes) interrupts its
command as Ctrl-C interrupts a local one: files being written are finished
or removed, nothing partial is left.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Protocol

from convfilter.errors import ExitStatus, signal_status
from convfilter.server import paths, protocol

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class CannotEnter(Exception):
    """The client's working directory cannot be entered from the server."""


class ServerError(Exception):
    """The server cannot start: another one runs, or the socket's directory is unsafe."""


class Request:
    """One client's ``run`` request, from the moment it is queued until its exit code is sent."""

    def __init__(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        self.conn = conn
        self.message = message
        self.fds = fds
        self.state = "queued"  # then "running", "done"
        self.cancel_signum: int | None = None
        self.interrupted = False

    def reply(self, message: dict) -> None:
        """Send ``message`` to the client, if it is still there."""
        with contextlib.suppress(OSError):
            protocol.send(self.conn, message)

    def close(self) -> None:
        """Close the connection and every descriptor still held."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        with contextlib.suppress(OSError):
            self.conn.close()


class Host(Protocol):
    """What the server runs commands with, passed in by whoever starts it (the command line).

    The server never imports the command line: ``run_command(argv, log)`` runs
    one command and returns its exit code (``log`` takes what the server's log
    should say); ``warm_up()`` imports what the first command would;
    ``interrupt(signum)`` is the exception that stops a running command as
    that signal does; ``closed`` is the set of standard descriptors the
    command should treat as closed.
    """

    closed: set[int]

    def run_command(self, argv: list[str], log: Callable[[str], None]) -> int: ...

    def warm_up(self) -> None: ...

    def interrupt(self, signum: int) -> BaseException: ...


class Server:
    """This user's convfilter server for one install, in the runtime ``directory``."""

    def __init__(self, directory: str, idle_timeout: float, host: Host) -> None:
        self.host = host
        self.directory = directory
        self.socket_path = paths.socket_path(directory)
        self.idle_timeout = idle_timeout
        self.identity = paths.identity()
        self.started = time.time()
        self.jobs_served = 0
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._lock = threading.Lock()
        self._current: Request | None = None
        self._pending_cancels = 0
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._lock_fd: int | None = None
        self._log = sys.stderr

    def serve(self, ready=None) -> None:
        """Take the lock, warm up, listen, serve until stopped or idle; ``ready(server)`` once listening."""
        if not hasattr(socket, "SO_PEERCRED"):
            raise ServerError("the server needs Linux (SO_PEERCRED), to check who connects")
        self._take_lock()
        try:
            self.host.warm_up()
            self._listen()
            for signum in SIGNALS:
                signal.signal(signum, self._on_signal)
            threading.Thread(target=self._accept, name="convfilter-accept", daemon=True).start()
            if ready is not None:
                ready(self)
            self._loop()
        finally:
            self._shut_down()

    def stop(self) -> None:
        """Finish the command that is running, tell queued clients to run theirs themselves, and exit."""
        self._stopping.set()
        self._queue.put(None)

    def status(self) -> dict:
        """What ``convfilter server status`` shows."""
        from convfilter import __version__
        from convfilter.engine.model import cached_models

        return {
            "pid": os.getpid(),
            "version": __version__,
            "identity": self.identity,
            "uptime": time.time() - self.started,
            "jobs": self.jobs_served,
            "queued": self._queue.qsize(),
            "running": self._current is not None,
            "memory": resident_bytes(),
            "models": cached_models(),
            "idle_timeout": self.idle_timeout,
            "socket": self.socket_path,
        }

    def _take_lock(self) -> None:
        self._lock_fd = os.open(paths.lock_path(self.directory), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ServerError(f"a server is already running for this install ({self.socket_path})") from None

    def _listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # a stale socket: we hold the lock, so no server owns it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.socket_path)
        finally:
            os.umask(old)
        os.chmod(self.socket_path, 0o600)
        listener.listen(64)
        self._listener = listener

    def _shut_down(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                pending.reply({"fallback": "the server is stopping"})
                pending.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    def _loop(self) -> None:
        last_used = time.monotonic()
        while not self._stopping.is_set():
            wait = 1.0
            if self.idle_timeout > 0:
                wait = min(wait, max(0.0, last_used + self.idle_timeout - time.monotonic()))
            try:
                request = self._queue.get(timeout=wait)
            except queue.Empty:
                if self.idle_timeout > 0 and time.monotonic() - last_used >= self.idle_timeout:
                    self.log(f"idle for {self.idle_timeout:g} s: stopping")
                    return
                continue
            if request is None:
                continue
            try:
                self._serve(request)
            except KeyboardInterrupt:  # a cancel that came just as its command ended
                request.reply({"exit": signal_status(request.cancel_signum or signal.SIGINT)})
            finally:
                request.close()
            last_used = time.monotonic()

    def _serve(self, request: Request) -> None:
        with self._lock:
            if request.state != "queued":
                request.reply({"exit": signal_status(request.cancel_signum or signal.SIGINT)})
                return
            if self._stopping.is_set():
                request.reply({"fallback": "the server is stopping"})
                return
            request.state = "running"
            self._current = request
        try:
            with client_context(request.message, request.fds, self.host.closed):
                request.reply({"started": True})
                code = self.host.run_command(request.message["argv"], self.log)
        except KeyboardInterrupt:
            code = signal_status(request.cancel_signum or signal.SIGINT)
        except CannotEnter as exc:
            self.log(str(exc))
            code = None
        except Exception:  # one request never takes the server down for everyone
            self.log("a command failed unexpectedly:\n" + traceback.format_exc().rstrip())
            code = ExitStatus.ERROR
        finally:
            with self._lock:
                request.state = "done"
                self._current = None
        self.jobs_served += 1
        if code is None:
            request.reply({"fallback": "the server cannot enter the client's working directory"})
        else:
            request.reply({"exit": code})

    def _on_signal(self, signum: int, frame) -> None:
        with self._lock:
            simulated = self._pending_cancels > 0
            if simulated:
                self._pending_cancels -= 1
            request = self._current
        if not simulated:  # a real signal to the server: stop after the command that runs
            self.stop()
        if request is not None and request.state == "running" and not request.interrupted:
            request.interrupted = True
            raise self.host.interrupt(signum)

    def _cancel(self, request: Request, signum: int) -> None:
        """Cancel ``request``: drop it if queued, interrupt it (as Ctrl-C does) if running."""
        import _thread

        with self._lock:
            if request.cancel_signum is not None or request.state == "done":
                return
            request.cancel_signum = signum
            if request.state == "running" and self._current is request:
                self._pending_cancels += 1
                _thread.interrupt_main(signum)
            else:
                request.state = "cancelled"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _greet(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            pid, uid = peer(conn)
            if uid != os.getuid():
                self.log(f"refused a connection from uid {uid} (pid {pid})")
                conn.close()
                return
            conn.settimeout(10.0)
            protocol.send(conn, {"identity": self.identity, "pid": os.getpid()})
            message, fds = protocol.receive(conn, max_fds=3)
            op = message.get("op")
            if op == "status":
                protocol.send(conn, self.status())
            elif op == "stop":
                protocol.send(conn, {"stopping": True, "pid": os.getpid()})
                self.stop()
            elif op == "run" and len(fds) != 3:
                protocol.send(conn, {"error": f"bad request: a run needs 3 descriptors, got {len(fds)}"})
            elif op == "run":
                try:
                    protocol.check_run(message)
                except protocol.ProtocolError as exc:
                    self.log(f"refused a request from pid {pid}: {exc}")
                    protocol.send(conn, {"error": f"bad request: {exc}"})
                    raise
                if message.get("fsencoding") != sys.getfilesystemencoding():
                    protocol.send(conn, {"fallback": "the server uses another file-name encoding"})
                else:
                    conn.settimeout(None)
                    request = Request(conn, message, fds)
                    fds = []
                    self._queue.put(request)
                    self._watch(request)
                    return
        except (OSError, protocol.ProtocolError):
            pass
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            conn.close()

    def _watch(self, request: Request) -> None:
        """Wait for the client's ``cancel`` or its going away, and cancel its command then."""
        try:
            message, _ = protocol.receive(request.conn)
            signum = int(message.get("signum", signal.SIGINT)) if message.get("op") == "cancel" else None
        except (OSError, protocol.ProtocolError, ValueError, TypeError):  # a cancel we cannot read
            signum = signal.SIGINT  # the client is gone (killed): nobody waits for the result
        if signum in SIGNALS:
            self._cancel(request, signum)

    def log(self, line: str) -> None:
        """One line in the server's log (standard error when in the foreground)."""
        with contextlib.suppress(OSError, ValueError):
            self._log.write(f"convfilter server: {line}\n")
            self._log.flush()


def peer(conn: socket.socket) -> tuple[int, int]:
    """The (pid, uid) of the process at the other end of ``conn`` (``SO_PEERCRED``)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return pid, uid


def resident_bytes() -> int:
    """This process's resident memory, in bytes (0 where ``/proc`` is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def client_context(message: dict, fds: list[int], closed: set[int]) -> Iterator[None]:
    """Run the block as if in the client's process: its streams, directory, environment and umask.

    The three descriptors become 0, 1 and 2 (so terminals are terminals and
    pipes are pipes), with fresh Python streams on them in the client's
    encodings; standard descriptors the client had closed are put in ``closed``.
    Everything is put back afterwards, and the client's descriptors closed.
    """
    saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_closed = set(closed)
    umask = os.umask(int(message.get("umask", 0o022)) & 0o777)
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        fds.clear()
        encodings = message.get("streams", {})
        sys.stdin = _stream(0, "r", *encodings.get("stdin", ("utf-8", "strict")))
        sys.stdout = _stream(1, "w", *encodings.get("stdout", ("utf-8", "strict")))
        sys.stderr = _stream(2, "w", *encodings.get("stderr", ("utf-8", "backslashreplace")))
        closed.clear()
        closed.update(int(fd) for fd in message.get("closed", []))
        os.environ.clear()
        os.environ.update({str(key): str(value) for key, value in message.get("env", {}).items()})
        try:
            os.chdir(message["cwd"])
        except (OSError, KeyError, TypeError) as exc:
            raise CannotEnter(f"cannot enter the client's working directory: {exc}") from None
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for target, fd in enumerate(saved_fds):
            os.dup2(fd, target)
            os.close(fd)
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        closed.clear()
        closed.update(saved_closed)
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        os.umask(umask)


def _stream(fd: int, mode: str, encoding: str, errors: str) -> io.TextIOWrapper:
    raw = io.FileIO(fd, mode, closefd=False)
    tty = raw.isatty()
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered, encoding=encoding or "utf-8", errors=errors or "strict", line_buffering=tty or fd == 2
    )
