"""One request never takes the shared server down: malformed requests and crashing commands.

A real server process (``convfilter.server.daemon.Server`` on a Unix socket, in a private runtime
directory) with a small host whose commands are scripted: ``ok`` writes to the client's standard
output, ``boom`` raises as a buggy command would. Requests are sent with the real protocol,
descriptors and all, and after each bad one the server must still answer the next good one.
The command line's own handling of an unexpected exception (one ``Error:`` line, exit 1, the
same with and without the server) is tested in-process too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import textwrap
import time

import click
import pytest
from helpers import server_script

from convfilter.cli.running import run_group
from convfilter.server import paths, protocol

pytestmark = pytest.mark.slow  # a server process

SERVER = textwrap.dedent(
    """
    import sys
    from convfilter.server.daemon import Server

    class ScriptedHost:
        closed = set()

        def run_command(self, argv, log):
            if argv == ["boom"]:
                raise RuntimeError("the command's own code failed")
            sys.stdout.write("ok " + " ".join(argv) + "\\n")
            sys.stdout.flush()
            return 0

        def warm_up(self):
            pass

        def interrupt(self, signum):
            return KeyboardInterrupt()

    Server(sys.argv[1], 60.0, ScriptedHost()).serve(lambda server: print("ready", flush=True))
    """
)


@pytest.fixture
def server(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    with server_script(SERVER, runtime, tmp_path / "server.log"):
        yield paths.socket_path(str(runtime)), tmp_path / "server.log"


def good_request(cwd: str, argv: list[str]) -> dict:
    return {
        "op": "run",
        "argv": argv,
        "cwd": cwd,
        "env": {"PATH": os.environ.get("PATH", "")},
        "umask": 0o022,
        "closed": [],
        "streams": {
            "stdin": ["utf-8", "strict"],
            "stdout": ["utf-8", "strict"],
            "stderr": ["utf-8", "strict"],
        },
        "fsencoding": sys.getfilesystemencoding(),
    }


def send(socket_path: str, message: dict, tmp_path) -> tuple[list[dict], str]:
    """Send ``message`` with three descriptors; the replies up to the last word, and what stdout got."""
    out = tmp_path / f"out-{time.monotonic_ns()}.txt"
    with open(os.devnull) as stdin, open(out, "w") as stdout, open(os.devnull, "w") as stderr:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(socket_path)
            replies = [protocol.receive(sock)[0]]  # the greeting
            protocol.send(sock, message, [stdin.fileno(), stdout.fileno(), stderr.fileno()])
            while not {"exit", "error", "fallback"} & set(replies[-1]):  # the last word of an exchange
                replies.append(protocol.receive(sock)[0])
    return replies[1:], out.read_text()


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("argv", "blur in.png out.png", "argv must be a list, got str"),
        ("argv", ["blur", 7], "argv[1] must be a string, got int"),
        ("argv", ["blur", "in\0.png"], "argv[1] holds a NUL character"),
        ("cwd", None, "cwd must be a string, got NoneType"),
        ("cwd", "relative/dir", "cwd must be an absolute path"),
        ("env", ["PATH=/bin"], "env must be an object, got list"),
        ("env", {"A=B": "c"}, "environment name 'A=B' is not one a process can have"),
        ("env", {"HOME": 3}, "env['HOME'] must be a string, got int"),
        ("umask", "022", "umask must be an integer from 0 to 0o777, got '022'"),
        ("umask", 4096, "umask must be an integer from 0 to 0o777, got 4096"),
        ("closed", [5], "closed must be a list of 0, 1 and 2, got [5]"),
        (
            "streams",
            {"stdout": ["no-such-codec", "strict"]},
            "streams['stdout']: unknown encoding: no-such-codec",
        ),
        ("streams", {"stdout": "utf-8"}, "streams['stdout'] must be [encoding, errors]"),
    ],
)
def test_a_malformed_request_gets_an_error_reply_and_the_server_goes_on(
    server, tmp_path, field, value, reason
):
    socket_path, log = server
    bad = {**good_request(str(tmp_path), ["x"]), field: value}
    replies, _ = send(socket_path, bad, tmp_path)
    assert replies == [{"error": f"bad request: {reason}"}]
    replies, out = send(socket_path, good_request(str(tmp_path), ["still", "here"]), tmp_path)
    assert replies == [{"started": True}, {"exit": 0}]
    assert out == "ok still here\n"
    assert f"refused a request from pid {os.getpid()}: {reason}" in log.read_text()


def test_a_command_that_raises_is_exit_1_for_its_client_only(server, tmp_path):
    socket_path, log = server
    replies, _ = send(socket_path, good_request(str(tmp_path), ["boom"]), tmp_path)
    assert replies == [{"started": True}, {"exit": 1}]
    assert "RuntimeError: the command's own code failed" in log.read_text()
    replies, out = send(socket_path, good_request(str(tmp_path), ["next"]), tmp_path)
    assert (replies, out) == ([{"started": True}, {"exit": 0}], "ok next\n")


def test_an_unexpected_exception_is_one_error_line_and_exit_1_with_or_without_a_server(capsys):
    @click.group()
    def group():
        pass

    @group.command()
    def crash():
        raise ValueError("a value no check foresaw")

    logged = []
    assert run_group(group, ["crash"], on_crash=logged.append) == 1
    err = capsys.readouterr().err
    assert err == (
        "Error: a value no check foresaw (an unexpected ValueError: a bug in convfilter, please report it)\n"
    )
    assert "Traceback" in logged[0] and "ValueError: a value no check foresaw" in logged[0]


def test_a_cancel_the_server_cannot_read_is_taken_as_the_client_going_away(server, tmp_path):
    socket_path, _ = server
    with open(os.devnull) as stdin, open(os.devnull, "w") as stdout, open(os.devnull, "w") as stderr:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(socket_path)
            protocol.receive(sock)
            protocol.send(
                sock,
                good_request(str(tmp_path), ["slow"]),
                [stdin.fileno(), stdout.fileno(), stderr.fileno()],
            )
            # The command may end, and the server close the exchange, before the cancel is sent.
            with contextlib.suppress(BrokenPipeError):
                protocol.send(sock, {"op": "cancel", "signum": ["not", "a", "number"]})
            replies = [protocol.receive(sock)[0]]
            while not {"exit", "error", "fallback"} & set(replies[-1]):
                replies.append(protocol.receive(sock)[0])
    assert replies[-1] in ({"exit": 0}, {"exit": 130})
    replies, out = send(socket_path, good_request(str(tmp_path), ["after"]), tmp_path)
    assert (replies, out) == ([{"started": True}, {"exit": 0}], "ok after\n")
