"""The one place where the library's exceptions become Click's, and so exit codes.

:class:`~convfilter.errors.ArgumentError` (a bad option value) becomes a
usage error, exit 2 (:class:`~convfilter.errors.ExitStatus`), printed with the command's usage line (as
``Invalid value for '--kernel': ...`` when it names its option);
:class:`~convfilter.errors.ConvFilterError` (a problem with a file) becomes
``Error: <message>``, exit 1. Every convfilter command is a :class:`Command`,
so its callback simply lets them propagate.
"""

from __future__ import annotations

import signal

import click

from convfilter.errors import ArgumentError, ConvFilterError, printable, signal_status

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def as_click_error(exc: Exception, ctx: click.Context | None = None) -> click.ClickException:
    """The Click exception that reports ``exc`` (an :class:`ArgumentError` or a :class:`ConvFilterError`)."""
    message = printable(str(exc))
    if isinstance(exc, ArgumentError):
        if exc.param:
            return click.BadParameter(message, ctx=ctx, param_hint=f"'{exc.param}'")
        return click.UsageError(message, ctx=ctx)
    return click.ClickException(message)


def interrupted_status(exc: BaseException) -> int:
    """The exit code of a run stopped by Ctrl-C, or by SIGTERM/SIGHUP raised as ``Terminated(signum)``."""
    return signal_status(getattr(exc, "signum", signal.SIGINT))


class Command(click.Command):
    """A Click command whose library errors are reported as :func:`as_click_error` says."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ArgumentError, ConvFilterError) as exc:
            raise as_click_error(exc, ctx) from None


class Group(click.Group):
    """A Click group whose commands (and subgroups) are :class:`Command` / :class:`Group`.

    A Ctrl-C, SIGTERM or SIGHUP that arrives before a command's run has
    started (while TensorFlow imports, say) ends the process with 128 + the
    signal, as it does during a run, not with Click's "Aborted!" and exit 1.
    """

    command_class = Command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ArgumentError, ConvFilterError) as exc:  # raised by a group's own callback
            raise as_click_error(exc, ctx) from None
        except KeyboardInterrupt as exc:
            raise click.exceptions.Exit(interrupted_status(exc)) from None


Group.group_class = Group
