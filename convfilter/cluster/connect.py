"""Connecting to a Dask scheduler, or starting a ``LocalCluster``, for one convfilter call."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from convfilter.errors import ArgumentError, ConvFilterError

EXTRA = "pip install 'convfilter[dask]'"
LOCAL = re.compile(r"^local:(\d+)$")
DEFAULT_TIMEOUT = 10.0


def require_dask() -> Any:
    """The ``distributed`` module, or a usage error naming the extra that provides it."""
    try:
        import distributed
    except ImportError:
        raise ArgumentError(f"needs Dask, which is not installed: {EXTRA}", param="--dask") from None
    return distributed


def resolve_address(value: str) -> str:
    """``value``, or ``$DASK_SCHEDULER_ADDRESS`` for a bare ``--dask``; checked for its form."""
    address = value or os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    if not address:
        raise ArgumentError(
            "give a scheduler address (tcp://HOST:8786) or local:N, or set DASK_SCHEDULER_ADDRESS",
            param="--dask",
        )
    match = LOCAL.match(address)
    if match:
        workers, most = int(match.group(1)), max_local_workers()
        if workers < 1:
            raise ArgumentError(f"local:N needs N >= 1 worker processes, got {address!r}", param="--dask")
        if workers > most:
            raise ArgumentError(
                f"local:{workers} would start {workers} worker processes (each loads TensorFlow, about "
                f"0.6 GB) on {most // 2} cores; at most local:{most} (twice the cores)",
                param="--dask",
            )
        return address
    if "://" not in address:
        raise ArgumentError(
            f"expected a scheduler address such as tcp://HOST:8786, or local:N, got {address!r}",
            param="--dask",
        )
    scheme = address.split("://", 1)[0].lower()
    if scheme != "tcp":
        raise ArgumentError(
            f"{address}: the scheme {scheme + '://'!r} is not one convfilter connects with; give "
            "tcp://HOST:PORT (TLS and UCX need security or network settings that convfilter does not take)",
            param="--dask",
        )
    return address


def max_local_workers() -> int:
    """The most worker processes ``--dask local:N`` starts: twice the cores this process may use."""
    from convfilter.run.runner import default_workers

    return 2 * default_workers()


@contextlib.contextmanager
def dask_client(address: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``local:N``: a ``LocalCluster`` of N processes).

    Every worker gets :class:`~convfilter.cluster.tasks.WarmWorker`, which
    imports TensorFlow once and keeps the models between tasks. Dask's own
    log lines stay out of convfilter's output (errors only).
    """
    distributed = require_dask()
    import dask

    from convfilter.cluster.tasks import WarmWorker

    dask.config.set({"distributed.admin.system-monitor.gil.enabled": False})
    for name in ("distributed", "distributed.client", "distributed.worker", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster = None
    try:
        match = LOCAL.match(address)
        if match:
            cluster = distributed.LocalCluster(
                n_workers=int(match.group(1)),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: two runs at once never collide on 8787
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster, timeout=timeout)
        else:
            client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc).splitlines()[0]
        raise ConvFilterError(
            f"{address}: cannot reach the Dask scheduler within {timeout:g} s ({reason})"
        ) from None
    try:
        client.register_plugin(WarmWorker(), name="convfilter-warm")
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=timeout)
