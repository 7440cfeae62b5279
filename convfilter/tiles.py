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
place inside a block (same weights, same order of additions): the tiled
result is bit-identical to the whole image at once, which the tests check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from convfilter.engine import column_block, convolve
from convfilter.geometry import dilated_extent, output_shape, padding_amounts

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
        raise ValueError(
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


def plan_tiles(
    shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    tile_size: int = DEFAULT_TILE_SIZE,
) -> list[Tile]:
    """The tiles covering the output of an ``H x W`` image, in row-major order."""
    check_tile_size(tile_size)
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


def filter_tiles(
    image: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    bias: float,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    engine: str = "auto",
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Yield ``(tile, float32 values)`` for each output tile of the 2-D ``image`` (any real dtype).

    Arguments must already be validated (:func:`convfilter.core.check_fits`).
    Only one tile's float buffers exist at a time.
    """
    for tile in plan_tiles(image.shape, kernel.shape, stride, padding, dilation, tile_size):
        window = image[tile.in_rows, tile.in_cols][np.newaxis]
        values = convolve(
            window,
            kernel,
            stride=stride,
            dilation=dilation,
            pad_y=tile.pad_y,
            pad_x=tile.pad_x,
            bias=bias,
            engine=engine,
        )
        yield tile, values[0]
