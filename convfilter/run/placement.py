"""Where a job runs: one file here, a Zarr array tile by tile, a batch here, or a batch on a Dask cluster.

The choice is made from the paths and options alone (a ``.zarr`` suffix is a
suffix test), so choosing imports nothing: ``cluster/`` is imported only by
the placements that need it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class Placement(enum.Enum):
    """Where a filtering command's job runs."""

    SINGLE = "one file, here"
    ZARR = "a Zarr array, tile by tile (with --dask, as tasks)"
    BATCH = "many files, here"
    CLUSTER = "many files, as Dask tasks"


def is_zarr_path(path: str) -> bool:
    """Whether ``path`` names a Zarr array (a ``.zarr`` directory)."""
    return path.rstrip("/").lower().endswith(".zarr")


def choose_placement(paths: Sequence[str], *, single: bool, dask: str | None) -> Placement:
    """Where a job on ``paths`` runs: ``single`` is the form INPUT OUTPUT, ``dask`` the --dask address."""
    if single:
        if any(is_zarr_path(path) for path in paths[:2]):
            return Placement.ZARR
        return Placement.SINGLE
    return Placement.BATCH if dask is None else Placement.CLUSTER
