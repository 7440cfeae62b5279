"""Running the command-line group to its exit code, the same way in a process and in the warm server."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import click

from convfilter.cli.streams import silence_stdout
from convfilter.errors import ExitStatus, one_line, printable


def run_group(
    group: click.Group, argv: list[str] | None = None, on_crash: Callable[[str], None] | None = None
) -> int:
    """Run ``group`` on ``argv`` (default ``sys.argv[1:]``); its exit code, once nothing is left pending.

    By then every command has returned: batch worker threads are joined,
    outputs renamed into place, temporary files removed, a background
    TensorFlow import finished, standard output and error flushed. This is how
    both ``main`` and the warm server (:mod:`convfilter.server.daemon`) run a
    command, so both print the same text and return the same code (0, 1, 2,
    130; 143 and 129 for SIGTERM and SIGHUP, which are handled as Ctrl-C is).

    An exception no command expected (a bug meeting a damaged input, say) is
    one ``Error:`` line and exit 1, here and on the server alike; ``on_crash``
    gets its traceback (the server's log), else standard error does not.
    """
    try:
        group.main(args=argv, prog_name="convfilter")
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if on_crash is not None:
            on_crash(traceback.format_exc().rstrip())
        click.echo(
            f"Error: {printable(one_line(exc))} (an unexpected {type(exc).__name__}: a bug in convfilter, "
            "please report it)",
            err=True,
        )
        code = ExitStatus.ERROR
    else:  # pragma: no cover  (standalone Click always raises SystemExit)
        code = 0
    if "tensorflow" in sys.modules:
        from convfilter.engine.model import wait_for_preload

        wait_for_preload()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a full or closed reader: say nothing more at exit
            silence_stdout()
    if code is None:
        return ExitStatus.SUCCESS
    if not isinstance(code, int):
        click.echo(code, err=True)
        return ExitStatus.ERROR
    return code
