"""How many CPU cores this process may use (its affinity, not the machine's count)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
