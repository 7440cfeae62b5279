"""Standard streams a shell may hand over closed (``<&-``, ``>&-``, ``2>&-``) or full (``> /dev/full``).

:func:`repair_streams` runs first thing in the ``convfilter`` process: a closed
descriptor 0, 1 or 2 is pointed at ``/dev/null`` (so no file convfilter opens
can take its number) and remembered, so that image data is never silently
written to, or read from, nothing: :func:`check_open` turns such a use into
one ``Error:`` line. Writing to standard output goes through :func:`write_stdout`,
which reports a full device or a closed reader as one line too.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

from convfilter.errors import ConvFilterError

NAMES = {0: "stdin", 1: "stdout", 2: "stderr"}
SHOWN = {0: "standard input", 1: "standard output", 2: "standard error"}
CLOSED: set[int] = set()
"""The descriptors that were closed when the process started."""


def repair_streams() -> None:
    """Point every closed standard descriptor at ``/dev/null`` and give Python a stream for it."""
    for fd, name in NAMES.items():
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            CLOSED.add(fd)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def check_open(fd: int, why: str) -> None:
    """A :class:`ConvFilterError` if standard descriptor ``fd`` was closed; ``why`` says what needed it."""
    if fd in CLOSED:
        raise ConvFilterError(f"{SHOWN[fd]} is closed; {why}")


def write_stdout(data: bytes | str) -> None:
    """Write ``data`` to standard output now; a failure but a closed pipe is a :class:`ConvFilterError`."""
    try:
        if isinstance(data, str):
            sys.stdout.write(data)
            sys.stdout.flush()
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()
        raise ConvFilterError(f"{SHOWN[1]}: cannot write ({exc.strerror})") from None


def silence_stdout() -> None:
    """Point standard output at ``/dev/null``, so nothing buffered fails again at exit."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
