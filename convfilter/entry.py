"""The ``convfilter`` console script: the tiny client first, the command line only when needed.

:func:`convfilter.server.client.main` forwards the command to this user's warm
server (standard library only); when no server takes it, it calls
:func:`run_here`, which imports the Click command line and runs it in this
process. The client never imports the command line, and the server never
imports the client: each gets what it needs passed in.
"""

from __future__ import annotations


def run_here() -> None:
    """Run the command line in this process."""
    from convfilter.cli import main as cli_main

    cli_main()


def main() -> None:
    """Forward to the warm server, or run here."""
    from convfilter.server.client import main as forward_or_run

    forward_or_run(run_here)
