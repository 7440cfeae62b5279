"""Zarr arrays in and out: a 2-D array larger than memory, filtered tile by tile with halos.

The output is planned with convfilter's own tile planner
(:func:`convfilter.engine.tiles.plan_tiles`) on the whole array's shape, so
'same' padding is split as Keras splits it for the whole axis, whatever the
chunks. Each output tile reads exactly the input window it needs (plus the
border's pixels where the window pokes out) from the Zarr store, runs through
the same engine as an image, and is written as whole chunks of the output
(its chunks are the tiles), so tiles never share a chunk and may be written in
any order, by threads here or by Dask workers. Memory is a few tiles' windows,
whatever the array's size. The result is float32, the raw Conv2D values
(``--range`` is for image outputs).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convfilter.errors import ArgumentError, ConvFilterError, ImageTooSmallError, one_line
from convfilter.io import stores
from convfilter.io.atomic import exists_message, rename_no_replace
from convfilter.io.images import nesting
from convfilter.ops.spec import Conv2DSpec
from convfilter.run.placement import is_zarr_path

__all__ = ["filter_zarr", "is_zarr_path", "open_input", "require_zarr"]

URL_WORKERS = 16
"""Threads filtering tiles when the input or the output is at a URL (requests mostly wait)."""
TILES_PER_TASK = 4
"""Output tiles per Dask task: each task is worth its round trip, and a worker holds few windows."""
EXTRA = "pip install 'convfilter[dask]'"


def require_zarr() -> Any:
    """The ``zarr`` module, or a usage error naming the extra that provides it."""
    try:
        import zarr
    except ImportError:
        raise ArgumentError(f"Zarr arrays need zarr, which is not installed: {EXTRA}") from None
    return zarr


def open_input(path: str, max_pixels: int | None = None) -> Any:
    """The one 2-D array of the Zarr store at ``path`` (an array, or a group holding exactly one).

    ``max_pixels`` refuses a store that declares more pixels (whatever data it holds), up front.
    """
    zarr = require_zarr()
    if stores.is_url(path):
        from convfilter.cluster import zarr_objects

        if not zarr_objects.has_array(path):
            raise ConvFilterError(f"{stores.shown(path)}: no such Zarr array (no zarr.json there)")
        opener = functools.partial(zarr_objects.open_array, path)
    else:
        if not os.path.isdir(path):
            raise ConvFilterError(f"{path}: no such Zarr array (a .zarr directory)")
        opener = functools.partial(zarr.open, path, mode="r")
    try:
        node = opener()
    except Exception as exc:
        raise ConvFilterError(f"{path}: not a Zarr array ({one_line(exc)})") from None
    if not hasattr(node, "shape"):
        arrays = list(node.arrays())
        if len(arrays) != 1:
            raise ConvFilterError(f"{path}: a Zarr group with {len(arrays)} arrays; expected exactly one")
        node = arrays[0][1]
    if len(node.shape) != 2:
        raise ConvFilterError(f"{path}: a {len(node.shape)}-D Zarr array; expected a 2-D one (H x W)")
    if not np.issubdtype(node.dtype, np.number) or np.issubdtype(node.dtype, np.complexfloating):
        raise ConvFilterError(f"{path}: Zarr values of type {node.dtype}; expected real numbers")
    height, width = node.shape
    if max_pixels is not None and height * width > max_pixels:
        raise ConvFilterError(
            f"{path}: array is {height}x{width} = {height * width} pixels, more than the limit of "
            f"{max_pixels}; raise it with --max-pixels if you mean it"
        )
    return node


def checked_window(path: str, array: Any, tile: Any, border: str) -> tuple[np.ndarray, tuple, tuple]:
    """:func:`read_window`, with a chunk that cannot be read, or values beyond float32, as one Error line."""
    try:
        window, pad_y, pad_x = read_window(array, tile, border)
    except Exception as exc:  # a damaged or missing chunk: zarr and its codecs raise many kinds
        rows, cols = tile.in_rows, tile.in_cols
        raise ConvFilterError(
            f"{path}: cannot read the chunk(s) of rows {rows.start}..{rows.stop - 1}, columns "
            f"{cols.start}..{cols.stop - 1} ({one_line(exc)})"
        ) from None
    if window.dtype.kind == "f" and window.dtype.itemsize > 4 and window.size:
        with np.errstate(over="ignore", invalid="ignore"):
            bad = np.argwhere(~np.isfinite(window[0].astype(np.float32)) & np.isfinite(window[0]))
        if bad.size:
            r, c = bad[0]
            row, col = _source_index(array, tile, border, int(r), int(c))
            value = float(window[0][r, c])
            raise ConvFilterError(
                f"{path}: value at row {row + 1}, column {col + 1} ({value:g}) does not fit a float32 "
                "(|v| <= 3.4e38)"
            )
    return window, pad_y, pad_x


def plan(shape: tuple[int, int], op: Conv2DSpec, tile_size: int) -> tuple[list, tuple[int, int]]:
    """The output tiles and the output chunk shape (the tiles' full size) for an ``H x W`` input."""
    from convfilter.engine.tiles import plan_tiles

    tiles = plan_tiles(shape, op, tile_size)
    first = tiles[0]
    return tiles, (first.rows.stop - first.rows.start, first.cols.stop - first.cols.start)


def read_window(array: Any, tile: Any, border: str) -> tuple[np.ndarray, tuple, tuple]:
    """The input window ``tile`` reads from ``array`` (``1 x h x w``) and the zeros still to pad around it."""
    from convfilter.engine.tiles import border_index

    if border == "zero":
        if tile.in_rows.stop <= tile.in_rows.start or tile.in_cols.stop <= tile.in_cols.start:
            return np.zeros((1, 0, 0), np.float32), (0, 0), (0, 0)  # no input reaches this tile
        window = np.asarray(array[tile.in_rows, tile.in_cols])
        return window[None], tile.pad_y, tile.pad_x
    h, w = array.shape
    rows = border_index(
        np.arange(tile.in_rows.start - tile.pad_y[0], tile.in_rows.stop + tile.pad_y[1]), h, border
    )
    cols = border_index(
        np.arange(tile.in_cols.start - tile.pad_x[0], tile.in_cols.stop + tile.pad_x[1]), w, border
    )
    # Read each needed row and column once (a 'wrap' border may need both ends of an axis).
    unique_rows, row_at = np.unique(rows, return_inverse=True)
    unique_cols, col_at = np.unique(cols, return_inverse=True)
    block = np.asarray(array.oindex[unique_rows, unique_cols])
    return block[row_at][:, col_at][None], (0, 0), (0, 0)


def _source_index(array: Any, tile: Any, border: str, r: int, c: int) -> tuple[int, int]:
    """The array's row and column that position ``(r, c)`` of ``tile``'s window was read from."""
    if border == "zero":  # the window is the array's own rows and columns; the zeros come later
        return tile.in_rows.start + r, tile.in_cols.start + c
    from convfilter.engine.tiles import border_index

    h, w = array.shape
    rows = np.arange(tile.in_rows.start - tile.pad_y[0], tile.in_rows.stop + tile.pad_y[1])
    cols = np.arange(tile.in_cols.start - tile.pad_x[0], tile.in_cols.stop + tile.pad_x[1])
    return int(border_index(rows, h, border)[r]), int(border_index(cols, w, border)[c])


def filter_tiles_of(
    input_path: str,
    output: Any,
    op: Conv2DSpec,
    tile_size: int,
    indices: Sequence[int],
    shown: str | None = None,
    options: stores.StorageOptions | None = None,
) -> int:
    """Filter the output tiles numbered ``indices`` of ``input_path`` into the Zarr array ``output``
    (a local path, or an object store's :class:`~convfilter.cluster.zarr_objects.ObjectTarget`).

    Runs wherever the arrays can be opened (a thread here, a Dask worker, which
    is given this run's storage ``options``); returns how many tiles it wrote.
    """
    from convfilter.engine.tiles import run_tile

    zarr = require_zarr()
    if options is not None:
        stores.configure(options)
    source = open_input(input_path)
    target = zarr.open_array(output, mode="r+") if isinstance(output, str) else output.open()
    tiles, _ = plan(source.shape, op, tile_size)

    def read(array, tile, border):
        return checked_window(shown or input_path, array, tile, border)

    for index in indices:
        tile = tiles[index]
        target[tile.rows, tile.cols] = run_tile(source, op, tile, read=read)[0]
    return len(indices)


def filter_zarr(
    input_path: str,
    output_path: str,
    op: Conv2DSpec,
    *,
    tile_size: int,
    overwrite: bool = False,
    client: Any = None,
    workers: int | None = None,
    max_pixels: int | None = None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Filter the Zarr array ``input_path`` into a new float32 Zarr array ``output_path``.

    Tiles run in ``workers`` threads, or as Dask tasks when ``client`` is a
    ``distributed.Client`` (then both paths must be on storage every worker
    sees). The output is built next to ``output_path`` under a temporary name
    and renamed into place when complete; an existing output is refused unless
    ``overwrite``. Returns the input and output shapes.
    """
    zarr = require_zarr()
    source = open_input(input_path, max_pixels)
    shape = tuple(source.shape)
    if op.channels != 1:
        raise ConvFilterError(
            f"{input_path}: a 2-D Zarr array has one channel, but the kernel reads {op.channels}"
        )
    try:
        out_shape = op.output_shape(shape)
    except ImageTooSmallError as exc:
        raise ConvFilterError(f"{input_path}: {exc}") from None
    problem = nesting(input_path, output_path)
    if problem is not None:  # an output replaced whole must never take the input with it
        raise ConvFilterError(f"{output_path}: {problem}; choose another output")
    tiles, chunks = plan(shape, op, tile_size)
    depth = (op.filters,) if op.out_channels > 1 else ()  # a stack of N filters: H' x W' x N
    starts = range(0, len(tiles), TILES_PER_TASK)
    groups = [list(range(i, min(i + TILES_PER_TASK, len(tiles)))) for i in starts]
    # Workers may run in another directory: they get the input as an absolute path.
    source_path = input_path if stores.is_url(input_path) else os.path.abspath(input_path)
    run = functools.partial(_run_groups, source_path, op, tile_size, groups, input_path, client, workers)
    if stores.is_url(output_path):
        _filter_into_objects(output_path, (*out_shape, *depth), (*chunks, *depth), overwrite, run)
        return shape, out_shape
    if os.path.lexists(output_path) and not overwrite:
        raise ConvFilterError(exists_message(output_path))
    parent = os.path.dirname(os.path.abspath(output_path))
    try:
        temporary = tempfile.mkdtemp(prefix=".convfilter-", suffix=".zarr.part", dir=parent)
    except OSError as exc:
        raise ConvFilterError(f"{output_path}: cannot write ({exc.strerror})") from None
    try:
        os.chmod(temporary, 0o777 & ~_umask())
        zarr.create_array(
            temporary, shape=(*out_shape, *depth), chunks=(*chunks, *depth), dtype="float32", overwrite=True
        )
        run(temporary)
        _move_into_place(temporary, output_path, replace=overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return shape, out_shape


def _run_groups(source_path, op, tile_size, groups, shown, client, workers, target) -> None:
    """Every group of tiles into ``target``: as Dask tasks with ``client``, else in threads here."""
    options = stores.current_options()
    if client is not None:
        futures = [
            client.submit(
                filter_tiles_of, source_path, target, op, tile_size, group, shown, options, pure=False
            )
            for group in groups
        ]
        client.gather(futures)
        return
    if workers is None:  # each chunk of a URL is a request: keep several in flight
        workers = URL_WORKERS if stores.is_url(source_path) or not isinstance(target, str) else os.cpu_count()
    with ThreadPoolExecutor(max_workers=workers or 1) as pool:
        list(
            pool.map(lambda group: filter_tiles_of(source_path, target, op, tile_size, group, shown), groups)
        )


def _filter_into_objects(output_path: str, shape: tuple, chunks: tuple, overwrite: bool, run) -> None:
    """An object store's output: chunks first (leftovers of an interrupted run removed), metadata last."""
    from convfilter.cluster import zarr_objects

    if zarr_objects.has_array(output_path) and not overwrite:
        raise ConvFilterError(exists_message(output_path))
    zarr_objects.clear(output_path)  # the replaced array, or chunks an interrupted run left
    store, target = zarr_objects.create(output_path, shape, chunks)
    run(target)
    if not overwrite and zarr_objects.has_array(output_path):  # another run finished first meanwhile
        raise ConvFilterError(exists_message(output_path))
    store.commit()


def _move_into_place(temporary: str, output_path: str, *, replace: bool) -> None:
    """Rename the finished store into place; without ``replace``, never over one that appeared meanwhile
    (another run into the same folder): the check at the start is not enough."""
    if not replace:
        try:
            rename_no_replace(temporary, output_path)
        except OSError as exc:
            raise ConvFilterError(f"{output_path}: cannot write ({exc.strerror})") from None
        return
    old = None
    if os.path.lexists(output_path):
        old = tempfile.mkdtemp(prefix=".convfilter-old-", dir=os.path.dirname(os.path.abspath(output_path)))
        os.rename(output_path, os.path.join(old, "replaced"))
    try:
        os.rename(temporary, output_path)
    except OSError as exc:
        if old is not None:
            os.rename(os.path.join(old, "replaced"), output_path)
        raise ConvFilterError(f"{output_path}: cannot write ({exc.strerror})") from None
    finally:
        if old is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
