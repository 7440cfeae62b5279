"""Exceptions raised by the library, each with a one-line message.

Bad argument values (a stride of 0, an unknown padding name) raise
:class:`ArgumentError`, a ``ValueError``; problems that only show up at run
time with a particular file or image raise :class:`ConvFilterError`. The
command line turns them into its exit codes in one place
(:mod:`convfilter.cli.boundary`): 2 for the first, 1 for the second.
"""

import enum


class ExitStatus(enum.IntEnum):
    """Every exit code convfilter returns, as httpie's ``ExitStatus`` lists them.

    The command line decides them in one place (:mod:`convfilter.cli.boundary`);
    the forwarding client and the warm server pass them through unchanged.
    """

    SUCCESS = 0
    ERROR = 1
    """A problem with a file or a run (:class:`ConvFilterError`), or files of a batch that failed."""
    USAGE = 2
    """A bad argument (:class:`ArgumentError`, Click's usage errors)."""
    SIGNAL_BASE = 128
    """A run ended by a signal exits with ``128 + signum``: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP."""


def signal_status(signum: int) -> int:
    """The exit code of a run ended by signal ``signum`` (``128 + signum``, as shells report it)."""
    return ExitStatus.SIGNAL_BASE + int(signum)


class ArgumentError(ValueError):
    """A bad argument value; the message names the argument and echoes what was received.

    ``param`` names the command-line option it came from, where that is not
    clear from the message (``'--kernel'``), for the usage error the CLI prints.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ConvFilterError(Exception):
    """A run-time problem with an input or output; the message is one line."""


class TooManyPixelsError(ConvFilterError):
    """An input with more pixels than ``--max-pixels`` allows (a guard against decompression bombs)."""


class ImageTooSmallError(ConvFilterError):
    """The image is smaller than the (dilated) kernel under 'valid' padding."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for ``Error:`` lines."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def input_file_error(path: str, exc: OSError, what: str) -> ConvFilterError:
    """The one-line error for an input that cannot be opened: missing, a directory, unreadable.

    ``what`` names what the file should have been (``"an image file"``).
    """
    if isinstance(exc, FileNotFoundError):
        return ConvFilterError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return ConvFilterError(f"{path}: is a directory, not {what}")
    if isinstance(exc, PermissionError):
        return ConvFilterError(f"{path}: permission denied")
    return ConvFilterError(f"{path}: cannot read ({exc.strerror or one_line(exc)})")


def printable(text: str) -> str:
    """``text`` with control characters (a newline in a file name) escaped: a message stays one line."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
