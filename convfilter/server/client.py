"""The ``convfilter`` command's client: forward to this user's warm server, or say to run here.

It imports the standard library only. When no server will do the work, it
calls the ``run_here`` it was given (:mod:`convfilter.entry` passes the real
command line), so it never imports :mod:`convfilter.cli` itself, as mypy's
``dmypy`` client does not. ``CONVFILTER_SERVER`` decides:

* unset: use this install's server if one is running; start none;
* ``auto``: start one on first use (it stays until its idle timeout);
* ``off`` (or ``convfilter --no-server ...``): never use one.

A server that is gone, hangs, or runs another version or install is never
waited on: connecting and its greeting each have a short timeout, a stale
socket is removed, and the command runs here (``-v`` says why).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from convfilter.errors import ExitStatus, signal_status
from convfilter.server import paths, protocol

CONNECT_TIMEOUT = 2.0
"""Seconds to connect and be greeted; a server that does not answer in this time is not used."""
START_TIMEOUT = 120.0
"""Seconds a newly started server may take to import TensorFlow and answer."""
DEFAULT_IDLE_TIMEOUT = 900.0
MODES = ("auto", "off")


class Fallback(Exception):
    """The server cannot run this command; the reason is said under ``-v``."""


class LostServer(Exception):
    """The server went away after it had started the command: it may be partly done."""


def main(run_here: Callable[[], None]) -> None:
    """Run ``convfilter`` with ``sys.argv``: on the warm server when there is one, else ``run_here()``."""
    argv = sys.argv[1:]
    mode = os.environ.get("CONVFILTER_SERVER", "").strip().lower()
    if mode and mode not in MODES:
        got = os.environ["CONVFILTER_SERVER"]
        sys.stderr.write(f"Error: CONVFILTER_SERVER: expected 'auto' or 'off' (or unset), got {got!r}\n")
        sys.exit(ExitStatus.USAGE)
    if mode != "off" and forwardable(argv):
        try:
            sys.exit(forward(argv, start=mode == "auto"))
        except Fallback as reason:
            if {"-v", "--verbose"} & set(argv) and str(reason):
                sys.stderr.write(f"convfilter: running here, not on the server: {reason}\n")
        except LostServer as exc:
            sys.stderr.write(f"Error: convfilter server: {exc}\n")
            sys.exit(ExitStatus.ERROR)
    run_here()


LOCAL_COMMANDS = ("server", "explore")
"""Commands that are processes of their own: never forwarded."""


def forwardable(argv: list[str]) -> bool:
    """False for ``--no-server``, the ``server`` commands and ``explore`` (a web server of its own),
    which always run here."""
    for token in argv:
        if token == "--no-server":
            return False
        if not token.startswith("-"):
            return token not in LOCAL_COMMANDS
    return True


LIMITS = {
    "RLIMIT_FSIZE": "ulimit -f",
    "RLIMIT_CPU": "ulimit -t",
    "RLIMIT_AS": "ulimit -v",
    "RLIMIT_DATA": "ulimit -d",
}
"""The resource limits a user sets on one command: the server's process would not have them."""


def own_limits() -> list[str]:
    """The resource limits (of :data:`LIMITS`) this process runs under, as the shell spells them."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return []
    found = []
    for name, spelled in LIMITS.items():
        limit = getattr(resource, name, None)
        if limit is not None and resource.getrlimit(limit)[0] != resource.RLIM_INFINITY:
            found.append(spelled)
    return found


OWN_FILE_PREFIXES = ("/dev/fd/", "/proc/self/", "/proc/thread-self/")
OWN_FILES = ("/dev/stdin", "/dev/stdout", "/dev/stderr")


def own_file(argv: list[str]) -> str | None:
    """The first argument (or ``--option=value``'s value) that names one of this process's own files:
    ``/dev/fd/N`` (bash's ``<(...)``), ``/dev/stdout``, ``/proc/self/...``. The server would open its
    own instead, so such a command runs here."""
    prefixes = (*OWN_FILE_PREFIXES, f"/proc/{os.getpid()}/")
    for token in argv:
        value = token.partition("=")[2] if token.startswith("--") else token
        if value in OWN_FILES or value.startswith(prefixes):
            return value
    return None


def forward(argv: list[str], start: bool = False) -> int:
    """Run ``argv`` on this install's server and return its exit code; :class:`Fallback` if it cannot.

    A command that names this process's own files (:func:`own_file`) runs here, and so does a
    command run under resource limits (``ulimit -f``, ``-t``, ``-v``, ``-d``): the server is
    another process, so it would not hold the work to them, and the outcome must be the one the
    limits give.
    """
    own = own_file(argv)
    if own:
        raise Fallback(f"{own} names a file of this process, which the server would open as its own")
    limits = own_limits()
    if limits:
        raise Fallback(
            f"this command runs under resource limits ({', '.join(limits)}) that the server does not have"
        )
    if not start and not os.path.lexists(paths.default_dir()):
        raise Fallback("")  # no server has ever run here: nothing worth saying
    try:
        directory = paths.runtime_dir(create=start)
    except paths.UnsafeDirectory as exc:
        raise Fallback(str(exc)) from None
    try:
        sock = connect(directory)
    except Fallback:
        if not start:
            raise
        sock = start_server(directory, DEFAULT_IDLE_TIMEOUT)
    with sock:
        return run_remote(sock, argv)


def connect(directory: str, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connection to this install's server that has greeted us with our own identity."""
    path = paths.socket_path(directory)
    if not os.path.exists(path):
        raise Fallback("")  # no server: nothing worth saying
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        hello, _ = protocol.receive(sock)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        remove_stale(directory)
        raise Fallback(f"no server answers at {path}; removed the stale socket") from None
    except (OSError, protocol.ProtocolError) as exc:
        sock.close()
        raise Fallback(f"the server at {path} did not answer ({exc or 'timed out'})") from None
    if hello.get("identity") != paths.identity():
        sock.close()
        raise Fallback(
            f"the server (pid {hello.get('pid')}) runs another convfilter version or install; "
            "restart it with 'convfilter server stop' and 'convfilter server start'"
        )
    sock.settimeout(None)
    return sock


def running(directory: str) -> bool:
    """True while a server of this install holds its lock in ``directory``."""
    import fcntl

    try:
        fd = os.open(paths.lock_path(directory), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def remove_stale(directory: str) -> None:
    """Remove the socket of a server that is gone (never one that is starting: it holds the lock)."""
    if not running(directory):
        try:
            os.unlink(paths.socket_path(directory))
        except FileNotFoundError:
            pass


def request(directory: str, message: dict) -> dict:
    """Send ``status`` or ``stop`` to the server and return its answer; :class:`Fallback` if none runs."""
    sock = connect_any(directory)
    with sock:
        protocol.send(sock, message)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            reply, _ = protocol.receive(sock)
        except (OSError, protocol.ProtocolError) as exc:
            raise Fallback(f"the server did not answer ({exc or 'timed out'})") from None
        return reply


def connect_any(directory: str) -> socket.socket:
    """A connection to this install's server, whatever its identity (to ask for its status or stop it)."""
    path = paths.socket_path(directory)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(path)
        protocol.receive(sock)
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        remove_stale(directory)
        raise Fallback("not running") from None
    except (OSError, protocol.ProtocolError) as exc:
        sock.close()
        raise Fallback(f"the server at {path} did not answer ({exc or 'timed out'})") from None
    return sock


def start_server(directory: str, idle_timeout: float, wait: float = START_TIMEOUT) -> socket.socket:
    """Start a detached server (stopping one of another identity first) and return a connection to it."""
    if running(directory):
        try:
            request(directory, {"op": "stop"})
        except Fallback:
            pass
        wait_until_stopped(directory)
    import subprocess

    log = os.open(paths.log_path(directory), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    command = [sys.executable, "-m", "convfilter", "server", "start", "--foreground"]
    command += ["--idle-timeout", f"{idle_timeout:g}"]
    env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Fallback(f"the server did not start: {last_line(paths.log_path(directory))}")
        try:
            return connect(directory)
        except Fallback:
            time.sleep(0.05)
    raise Fallback(f"the server did not answer within {wait:g} s of starting")


def wait_until_stopped(directory: str, wait: float = 60.0) -> bool:
    """Wait until no server of this install holds its lock; False if one still does after ``wait`` s."""
    deadline = time.monotonic() + wait
    while running(directory):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def last_line(path: str) -> str:
    """The last non-empty line of the file at ``path`` (a server's log), or a placeholder."""
    try:
        with open(path, "rb") as log:
            lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "(it wrote nothing)"


def run_remote(sock: socket.socket, argv: list[str]) -> int:
    """Send ``argv`` with this process's streams, directory, environment and umask; the exit code."""
    fds, closed = [], []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            closed.append(fd)
            fds.append(os.open(os.devnull, os.O_RDWR))
    try:
        cwd = os.getcwd()
    except OSError as exc:
        raise Fallback(f"the working directory is gone ({exc.strerror})") from None
    umask = os.umask(0o022)
    os.umask(umask)
    streams = {}
    for name in ("stdin", "stdout", "stderr"):
        stream = getattr(sys, name)
        streams[name] = [getattr(stream, "encoding", "utf-8"), getattr(stream, "errors", "strict")]
    message = {
        "op": "run",
        "argv": argv,
        "cwd": cwd,
        "env": dict(os.environ),
        "umask": umask,
        "closed": closed,
        "streams": streams,
        "fsencoding": sys.getfilesystemencoding(),
    }
    cancelled: list[int] = []

    def cancel(signum, frame):
        if not cancelled:  # the first signal wins; the server finishes the clean-up
            cancelled.append(signum)
            try:
                protocol.send(sock, {"op": "cancel", "signum": signum})
            except OSError:
                pass

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, cancel) for signum in handled}
    started = False
    try:
        protocol.send(sock, message, fds)
        while True:
            try:
                reply, _ = protocol.receive(sock)
            except (OSError, protocol.ProtocolError):
                if started:
                    raise LostServer("the server stopped while running this command") from None
                if cancelled:
                    return signal_status(cancelled[0])
                raise Fallback("the server closed the connection before running the command") from None
            if "fallback" in reply:
                raise Fallback(str(reply["fallback"]))
            if "error" in reply:  # the server refused the request (it cannot be ours): run it here
                raise Fallback(str(reply["error"]))
            if reply.get("started"):
                started = True
                continue
            return int(reply.get("exit", 1))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
