"""Filtering a large image tile by tile, with a halo, so that memory stays bounded.

The output is cut into tiles of at most ``tile_size x tile_size`` pixels. For
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

from convfilter.engine.layouts import column_block, convolve
from convfilter.errors import ArgumentError
from convfilter.ops.geometry import dilated_extent, output_shape, padding_amounts
from convfilter.ops.spec import Conv2DSpec

DEFAULT_TILE_SIZE = 2048
"""Default side of an output tile: about 16 MB of float32 per buffer."""
MIN_TILE_SIZE = 16


@dataclass(frozen=True)
class Tile:
    """One output tile ``rows x cols`` and the input window (in image coordinates) it reads."""

    rows: slice
    cols: slice
    in_rows: slice
    in_cols: slice
    pad_y: tuple[int, int]
    pad_x: tuple[int, int]


def check_tile_size(tile_size: int) -> int:
    """Return ``tile_size`` if it is an integer >= :data:`MIN_TILE_SIZE`, else raise ``ValueError``."""
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < MIN_TILE_SIZE:
        raise ArgumentError(
            f"The `tile_size` argument must be an integer >= {MIN_TILE_SIZE}. "
            f"Received: tile_size={tile_size!r}"
        )
    return tile_size


def _axis_windows(n: int, k: int, s: int, d: int, padding: str, out: int, step: int):
    """(output slice, input slice, (zeros before, zeros after)) along one axis, tile by tile."""
    before, _ = padding_amounts(n, k, s, d, padding)
    span = dilated_extent(k, d)
    for start in range(0, out, step):
        stop = min(start + step, out)
        first = start * s - before
        last = (stop - 1) * s + span - before  # one past the last input index read
        yield (
            slice(start, stop),
            slice(max(first, 0), min(last, n)),
            (max(-first, 0), max(last - n, 0)),
        )


def plan_tiles(shape: tuple[int, int], op: Conv2DSpec, tile_size: int = DEFAULT_TILE_SIZE) -> list[Tile]:
    """The tiles covering the output of an ``H x W`` image, in row-major order."""
    check_tile_size(tile_size)
    kernel_shape, stride, padding, dilation = op.geometry
    out_h, out_w = output_shape(shape, kernel_shape, stride, padding, dilation)
    block = column_block(kernel_shape[1], stride[1], dilation[1])
    col_step = -(-tile_size // block) * block
    row_windows = list(
        _axis_windows(shape[0], kernel_shape[0], stride[0], dilation[0], padding, out_h, tile_size)
    )
    col_windows = list(
        _axis_windows(shape[1], kernel_shape[1], stride[1], dilation[1], padding, out_w, col_step)
    )
    return [
        Tile(rows, cols, in_rows, in_cols, pad_y, pad_x)
        for rows, in_rows, pad_y in row_windows
        for cols, in_cols, pad_x in col_windows
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


def _window(batch: np.ndarray, tile: Tile, border: str) -> tuple[np.ndarray, tuple, tuple]:
    """The input ``tile`` reads, and the zeros still to pad around it (none for non-zero borders)."""
    if border == "zero":
        return batch[:, tile.in_rows, tile.in_cols], tile.pad_y, tile.pad_x
    _, h, w = batch.shape
    rows = border_index(
        np.arange(tile.in_rows.start - tile.pad_y[0], tile.in_rows.stop + tile.pad_y[1]), h, border
    )
    cols = border_index(
        np.arange(tile.in_cols.start - tile.pad_x[0], tile.in_cols.stop + tile.pad_x[1]), w, border
    )
    return batch[:, rows][:, :, cols], (0, 0), (0, 0)


def convolve_op(
    batch: np.ndarray, op: Conv2DSpec, pad_y: tuple[int, int], pad_x: tuple[int, int], engine: str = "auto"
) -> np.ndarray:
    """:func:`convfilter.engine.layouts.convolve` with ``op``'s weights, stride, dilation and bias."""
    return convolve(
        batch,
        op.weights,
        stride=op.stride,
        dilation=op.dilation,
        pad_y=pad_y,
        pad_x=pad_x,
        bias=op.bias,
        engine=engine,
    )


def filter_tiles(
    batch: np.ndarray, op: Conv2DSpec, *, tile_size: int = DEFAULT_TILE_SIZE, engine: str = "auto"
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Yield ``(tile, float32 N x h x w values)`` per output tile of ``batch`` (``N x H x W``, any dtype).

    The image must fit ``op`` (:meth:`~convfilter.ops.spec.Conv2DSpec.output_shape`).
    ``op.border`` is what 'same' and 'full' pad with (:mod:`convfilter.ops.borders`):
    each tile's window is cut from the image with the border's pixels where
    it pokes out. Only one tile's float buffers exist at a time.
    """
    for tile in plan_tiles(batch.shape[1:], op, tile_size):
        window, pad_y, pad_x = _window(batch, tile, op.border)
        yield tile, convolve_op(window, op, pad_y, pad_x, engine)


def filter_tiled(
    batch: np.ndarray, op: Conv2DSpec, *, tile_size: int = DEFAULT_TILE_SIZE, engine: str = "auto"
) -> np.ndarray:
    """The whole ``N x H' x W'`` float32 result of ``batch``, computed tile by tile into one array.

    Equal to one whole-image call (see the module's doc on rounding); memory is
    the input, the output and one tile's buffers (instead of the engine's
    full-size padded copy).
    """
    out = np.empty((batch.shape[0], *op.output_shape(batch.shape[1:])), np.float32)
    for tile, values in filter_tiles(batch, op, tile_size=tile_size, engine=engine):
        out[:, tile.rows, tile.cols] = values
    return out
