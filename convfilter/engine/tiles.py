"""Filtering a large image tile by tile, with a halo, so that memory stays bounded.

Every convolution is tiled the same way: the operation says which input
window an output tile reads (:meth:`convfilter.ops.conv.Conv2DSpec.input_window`),
for a transposed convolution too (output tiles map back to the input pixels
that scatter into them), for N filters and for C input channels.

For a convolution the output is cut into tiles of at most ``tile_size x tile_size`` pixels. For
each output tile the input window it reads is cut from the (unconverted,
e.g. ``uint8``) image: output rows ``i0 .. i1-1`` read the zero-padded input
rows ``i0*sy .. (i1-1)*sy + dy*(kh-1)``, which is the tile plus a halo of the
dilated kernel's reach, starting on the stride grid. Where the window pokes
out of the image (``'same'`` padding at the border), the missing pixels are
the zeros the whole-image convolution would see. Every output pixel is
therefore the same sum of the same products as in one whole-image call.

Tiles start on multiples of the blocked engine's column block
(:func:`convfilter.engine.column_block`), so every output column keeps its
place inside a block (same weights, same products). Whether the additions
then run in the same order is oneDNN's choice, made by the shape it is
given: on many CPUs the tiled result is bit-identical to the whole image, on
some it differs in the last bit of a float32 sum; the tests allow that much.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from convfilter.engine.layouts import column_block
from convfilter.engine.window import responses
from convfilter.errors import ArgumentError
from convfilter.ops.conv import Conv2DSpec

DEFAULT_TILE_SIZE = 2048
"""Default side of an output tile: about 16 MB of float32 per buffer."""
MIN_TILE_SIZE = 16


@dataclass(frozen=True)
class Tile:
    """One output tile ``rows x cols`` and the input window (in image coordinates) it reads.

    ``pad_y``/``pad_x`` are the border pixels around the window; ``offset`` is
    where the tile starts in the window's result (a transposed convolution's
    scatter-add reaches beyond the tile; 0 for a convolution).
    """

    rows: slice
    cols: slice
    in_rows: slice
    in_cols: slice
    pad_y: tuple[int, int]
    pad_x: tuple[int, int]
    offset: tuple[int, int] = (0, 0)


def check_tile_size(tile_size: int) -> int:
    """Return ``tile_size`` if it is an integer >= :data:`MIN_TILE_SIZE`, else raise ``ValueError``."""
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < MIN_TILE_SIZE:
        raise ArgumentError(
            f"The `tile_size` argument must be an integer >= {MIN_TILE_SIZE}. "
            f"Received: tile_size={tile_size!r}"
        )
    return tile_size


def _axis_windows(op: Conv2DSpec, axis: int, n: int, out: int, step: int):
    """(output slice, input slice, (pixels before, after), offset) along one axis, tile by tile."""
    for start in range(0, out, step):
        stop = min(start + step, out)
        first, last, before, after, offset = op.input_window(axis, n, start, stop)
        yield slice(start, stop), slice(first, last), (before, after), offset


def plan_tiles(
    shape: tuple[int, int], op: Conv2DSpec, tile_size: int | None = DEFAULT_TILE_SIZE
) -> list[Tile]:
    """The tiles covering the output of an ``H x W`` image, in row-major order (one for ``None``)."""
    out_h, out_w = op.output_shape(shape)
    if tile_size is None:
        row_step, col_step = max(out_h, 1), max(out_w, 1)
    else:
        check_tile_size(tile_size)
        block = 1 if op.transpose else column_block(op.window[1], op.stride[1], op.dilation[1])
        row_step, col_step = tile_size, -(-tile_size // block) * block
    row_windows = list(_axis_windows(op, 0, shape[0], out_h, row_step))
    col_windows = list(_axis_windows(op, 1, shape[1], out_w, col_step))
    return [
        Tile(rows, cols, in_rows, in_cols, pad_y, pad_x, (offset_y, offset_x))
        for rows, in_rows, pad_y, offset_y in row_windows
        for cols, in_cols, pad_x, offset_x in col_windows
    ]


def border_index(index: np.ndarray, n: int, border: str) -> np.ndarray:
    """Where position ``index`` (may lie outside ``0..n-1``) of a ``border``-padded axis reads from.

    The same pixels ``numpy.pad`` (:func:`convfilter.ops.borders.pad_batch`)
    puts there, for any amount of padding, including more than ``n``.
    """
    index = np.asarray(index)
    if border == "replicate":
        return np.clip(index, 0, n - 1)
    if border == "wrap":
        return index % n
    if border == "symmetric":
        m = index % (2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    if border == "reflect":
        if n == 1:
            return np.zeros_like(index)
        period = 2 * (n - 1)
        m = index % period
        return np.where(m >= n, period - m, m)
    raise ArgumentError(f"no index rule for border {border!r}")


def tile_window(batch, tile: Tile, border: str) -> tuple[np.ndarray, tuple, tuple]:
    """The input ``tile`` reads, and the zeros still to pad around it (none for non-zero borders).

    ``batch`` is ``N x H x W``: a NumPy array, or anything sliced like one (a Zarr array).
    """
    if border == "zero":
        return np.asarray(batch[:, tile.in_rows, tile.in_cols]), tile.pad_y, tile.pad_x
    _, h, w = batch.shape
    rows = border_index(
        np.arange(tile.in_rows.start - tile.pad_y[0], tile.in_rows.stop + tile.pad_y[1]), h, border
    )
    cols = border_index(
        np.arange(tile.in_cols.start - tile.pad_x[0], tile.in_cols.stop + tile.pad_x[1]), w, border
    )
    window = np.asarray(batch[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    return window[:, rows - rows.min()][:, :, cols - cols.min()], (0, 0), (0, 0)


def run_tile(batch, op: Conv2DSpec, tile: Tile, engine: str = "auto", read=tile_window) -> np.ndarray:
    """One tile of ``op``'s output for ``batch`` (``B*C x H x W``): ``B x h x w`` (``x N`` for 'stack').

    ``read(batch, tile, border)`` cuts the window (:func:`tile_window`; a Zarr
    array has its own reader).
    """
    window, pad_y, pad_x = read(batch, tile, op.border)
    size = (tile.rows.stop - tile.rows.start, tile.cols.stop - tile.cols.start)
    if window.shape[1] == 0 or window.shape[2] == 0:  # a transposed tile no input reaches: the bias
        raw = np.full((len(window) // op.channels, *size, op.filters), op.bias, np.float32)
    else:
        raw = responses(window, op, pad_y, pad_x, engine)
    if op.transpose:
        raw = _cut(raw, tile.offset, size, op.bias)
    return op.finish(raw)


def _cut(raw: np.ndarray, offset: tuple[int, int], size: tuple[int, int], bias: float) -> np.ndarray:
    """``size`` of ``raw`` (``B x h x w x N``) from ``offset`` on; outside ``raw``, the bias alone.

    An offset is negative where the tile begins in a gap that no input reaches (a stride wider
    than the kernel): ``raw`` then starts that far into the tile."""
    (oy, ox), (h, w) = offset, size
    if oy >= 0 and ox >= 0:
        part = raw[:, oy : oy + h, ox : ox + w]
        if part.shape[1:3] == (h, w):
            return part
    out = np.full((raw.shape[0], h, w, raw.shape[3]), bias, np.float32)
    at_y, at_x = max(-oy, 0), max(-ox, 0)  # where raw begins in the tile
    from_y, from_x = max(oy, 0), max(ox, 0)  # where the tile begins in raw
    part = raw[:, from_y : from_y + h - at_y, from_x : from_x + w - at_x]
    out[:, at_y : at_y + part.shape[1], at_x : at_x + part.shape[2]] = part
    return out


def filter_tiles(
    batch: np.ndarray, op: Conv2DSpec, *, tile_size: int | None = DEFAULT_TILE_SIZE, engine: str = "auto"
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Yield ``(tile, float32 B x h x w values)`` per output tile of ``batch`` (``B*C x H x W``, any dtype).

    The image must fit ``op`` (:meth:`~convfilter.ops.conv.Conv2DSpec.output_shape`).
    ``op.border`` is what the padding holds (:mod:`convfilter.ops.borders`):
    each tile's window is cut from the image with the border's pixels where
    it pokes out. Only one tile's float buffers exist at a time.
    """
    for tile in plan_tiles(batch.shape[1:], op, tile_size):
        yield tile, run_tile(batch, op, tile, engine)


def filter_tiled(
    batch: np.ndarray, op: Conv2DSpec, *, tile_size: int | None = DEFAULT_TILE_SIZE, engine: str = "auto"
) -> np.ndarray:
    """The whole float32 result of ``batch``, computed tile by tile into one array.

    Equal to one whole-image call (see the module's doc on rounding); memory is
    the input, the output and one tile's buffers (instead of the engine's
    full-size padded copy).
    """
    tiles = plan_tiles(batch.shape[1:], op, tile_size)
    if len(tiles) == 1:
        return run_tile(batch, op, tiles[0], engine)
    count = len(batch) // op.channels
    extra = (op.filters,) if op.out_channels > 1 else ()
    out = np.empty((count, *op.output_shape(batch.shape[1:]), *extra), np.float32)
    for tile in tiles:
        out[:, tile.rows, tile.cols] = run_tile(batch, op, tile, engine)
    return out
