"""``convfilter server start|stop|status``: this user's warm server (see :mod:`convfilter.server`)."""

from __future__ import annotations

import os
import re

import click

from convfilter.cli import streams
from convfilter.cli.boundary import CONTEXT_SETTINGS, Command, Group
from convfilter.cli.running import run_group
from convfilter.errors import ConvFilterError, ExitStatus
from convfilter.server import client, paths

SERVER_HELP = """A warm convfilter process, so that each call skips TensorFlow's start-up.

While this user's server runs, every convfilter command (except 'server')
is handed to it transparently: the same outputs, messages and exit codes,
with the caller's standard streams, working directory, environment and umask.
Set CONVFILTER_SERVER=auto to start one on first use; CONVFILTER_SERVER=off,
or 'convfilter --no-server ...', runs in the calling process instead. A
server of another convfilter version or install, or one that does not answer
within 2 s, is never used.

The server listens on a Unix socket that only you can reach (in
$XDG_RUNTIME_DIR/convfilter, or convfilter-UID in the temporary directory;
CONVFILTER_RUNTIME_DIR overrides) and refuses connections from other users.

\b
Examples:
  convfilter server start
  for f in *.png; do convfilter blur "$f" "blurred/$f"; done
  convfilter server status
  convfilter server stop
"""

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


class Duration(click.ParamType):
    """Seconds, or a number with ``s``, ``m`` or ``h``; 0 means never."""

    name = "DURATION"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = DURATION.match(str(value))
        if not match:
            self.fail(f"expected seconds, or a number with s, m or h (15m), got {value!r}", param, ctx)
        return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


@click.group("server", cls=Group, help=SERVER_HELP, context_settings=CONTEXT_SETTINGS)
def server_group() -> None:
    pass


def _directory(create: bool = False) -> str:
    if not create and not os.path.lexists(paths.default_dir()):
        raise client.Fallback("not running")
    try:
        return paths.runtime_dir(create=create)
    except paths.UnsafeDirectory as exc:
        raise ConvFilterError(f"{exc} (the server's socket needs a private directory)") from None


@server_group.command("start", cls=Command)
@click.option("--foreground", is_flag=True, help="Stay attached and log to standard error; Ctrl-C stops it.")
@click.option(
    "--idle-timeout",
    type=Duration(),
    default="15m",
    show_default=True,
    help="Exit after this long without a command (900, 15m, 1h; 0: never), freeing its memory.",
)
def start(foreground: bool, idle_timeout: float) -> None:
    """Start this user's server (detached, unless --foreground)."""
    directory = _directory(create=True)
    if client.running(directory):
        try:
            status = client.request(directory, {"op": "status"})
        except client.Fallback:
            status = {}
        if status.get("identity") == paths.identity():
            click.echo(f"convfilter server: already running (pid {status.get('pid')})")
            return
    if foreground:
        _serve(directory, idle_timeout)
        return
    try:
        sock = client.start_server(directory, idle_timeout)
    except client.Fallback as exc:
        raise ConvFilterError(f"convfilter server: {exc}") from None
    sock.close()
    status = client.request(directory, {"op": "status"})
    click.echo(f"convfilter server: started (pid {status['pid']}, socket {status['socket']})")


class CommandHost:
    """The command line as the server's :class:`~convfilter.server.daemon.Host`: passed in, never imported.

    ``group`` is the root command group this ``server start`` runs under (Click's
    context holds it), so neither module imports the other to find it.
    """

    closed = streams.CLOSED

    def __init__(self, group: click.Group) -> None:
        self.group = group

    def run_command(self, argv: list[str], log) -> int:
        return run_group(
            self.group, argv, on_crash=lambda text: log(f"a command failed unexpectedly:\n{text}")
        )

    def warm_up(self) -> None:
        """Load every command's modules and TensorFlow, and run one small model, before the first client."""
        import numpy as np

        from convfilter.engine.conv import filter_array

        filter_array(np.zeros((8, 8), dtype=np.float32), np.ones((3, 3), dtype=np.float32))

    def interrupt(self, signum: int) -> BaseException:
        from convfilter.cli.files import Terminated

        return Terminated(signum)


def _serve(directory: str, idle_timeout: float) -> None:
    from convfilter.server.daemon import Server, ServerError

    def ready(server: Server) -> None:
        server.log(f"listening on {server.socket_path} (pid {os.getpid()})")

    try:
        root = click.get_current_context().find_root().command
        Server(directory, idle_timeout, CommandHost(root)).serve(ready)
    except ServerError as exc:
        raise ConvFilterError(str(exc)) from None


@server_group.command("stop", cls=Command)
def stop() -> None:
    """Stop this user's server (after the command it is running); fine if none runs."""
    try:
        directory = _directory()
        reply = client.request(directory, {"op": "stop"})
    except client.Fallback:
        click.echo("convfilter server: not running")
        return
    if not client.wait_until_stopped(directory):
        raise ConvFilterError(f"convfilter server: pid {reply.get('pid')} did not stop within 60 s")
    click.echo(f"convfilter server: stopped (pid {reply.get('pid')})")


@server_group.command("status", cls=Command)
def status() -> None:
    """Say whether this user's server runs, and its pid, version, uptime, jobs and memory (exit 1 if none)."""
    try:
        directory = _directory()
        info = client.request(directory, {"op": "status"})
    except (ConvFilterError, client.Fallback):
        click.echo("convfilter server: not running")
        raise click.exceptions.Exit(ExitStatus.ERROR) from None
    current = info.get("identity") == paths.identity()
    click.echo("convfilter server: running" + ("" if current else " (another version or install: not used)"))
    timeout = info["idle_timeout"]
    rows = [
        ("pid", info["pid"]),
        ("version", info["version"]),
        ("uptime", _duration(info["uptime"])),
        ("jobs served", info["jobs"]),
        ("running now", f"{'1' if info['running'] else '0'} ({info['queued']} queued)"),
        ("memory", f"{info['memory'] / 2**20:.0f} MiB resident, {info['models']} models cached"),
        ("idle timeout", _duration(timeout) if timeout > 0 else "none"),
        ("socket", info["socket"]),
    ]
    for name, value in rows:
        click.echo(f"  {name + ':':<14}{value}")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"
