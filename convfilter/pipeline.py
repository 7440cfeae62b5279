"""Filtering one image file end to end: read, Conv2D, map to pixels, write atomically."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convfilter.core import check_fits, check_kernel
from convfilter.engine import check_engine
from convfilter.errors import ConvFilterError, ImageTooSmallError
from convfilter.geometry import check_padding, standardize_pair
from convfilter.imageio import (
    FORMATS_WITH_16_BIT,
    check_depth,
    check_writable,
    output_format,
    read_gray,
    same_file,
    write_pixels,
)
from convfilter.model import preload, wait_for_preload
from convfilter.pixels import DEPTHS, resolve_range, to_pixels
from convfilter.tiles import DEFAULT_TILE_SIZE, check_tile_size, filter_tiles, plan_tiles

FAST_PNG_PIXELS = 4_000_000
"""PNG outputs above this many pixels use zlib level 1 with the run-length strategy (OpenCV's
defaults) instead of Pillow's level 6: for an 8192x8192 blur 15 s of a 17 s run went to encoding at
level 6; level 1 + RLE encodes 5-8x faster, and measured files were no larger than level 6's."""
FAST_PNG = {"compress_level": 1, "compress_type": 3}  # 3 = zlib's Z_RLE


@dataclass
class FilterResult:
    """What :func:`filter_file` did: shapes, the mapping used and the raw value range."""

    input: str
    output: str
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    range_mode: str
    depth: int
    minimum: float
    maximum: float


def filter_file(
    input_path: str,
    output_path: str,
    kernel: np.ndarray,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    range_mode: str = "auto",
    depth: int | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
    max_pixels: int | None = None,
    engine: str = "auto",
) -> FilterResult:
    """Filter the image at ``input_path`` and write the result to ``output_path``.

    ``depth`` is the output bit depth (8 or 16); ``None`` keeps the input's
    precision where the output format can store it (16-bit PNG/TIFF inputs
    give 16-bit PNG/TIFF outputs) and is 8 otherwise. Everything that can be
    checked without decoding (output format, depth, directory, output is the
    input) is checked first, so a doomed run does no work. Raises
    ``ValueError`` for bad arguments and :class:`ConvFilterError` for
    problems with the files.

    The image is filtered in output tiles of at most ``tile_size`` x
    ``tile_size`` pixels (see :mod:`convfilter.tiles`; the result is
    bit-identical to one whole-image call), reading from the decoded 8/16-bit
    pixels and writing into one preallocated output array, so memory is about
    the input and output pixels plus one tile's float buffers. ``rescale``
    needs the global min and max first: with more than one tile the tiles
    are computed twice (a min/max pass, then the mapping pass) rather than
    holding a full-size float copy. ``max_pixels`` replaces Pillow's
    decompression-bomb limit (``None``: Pillow's default).
    """
    grid = check_kernel(kernel)
    check_tile_size(tile_size)
    check_engine(engine)
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    mode = resolve_range(range_mode, grid)
    fmt = output_format(output_path)
    if depth is not None:
        check_depth(output_path, fmt, depth)
    check_writable(output_path)
    if same_file(input_path, output_path):
        raise ConvFilterError(f"{output_path}: is the input file; refusing to overwrite it")

    try:
        # TensorFlow's import (seconds) runs in the background while the image decodes.
        image = read_gray(input_path, keep_dtype=True, max_pixels=max_pixels, on_open=preload)
        out_shape = check_fits(image.pixels.shape, grid.shape, stride, padding, dilation)
    except ImageTooSmallError as exc:
        wait_for_preload()  # standard error is silenced while the import runs
        raise type(exc)(f"{input_path}: {exc}") from None
    except BaseException:
        wait_for_preload()
        raise
    if depth is None:
        depth = 16 if image.depth == 16 and fmt in FORMATS_WITH_16_BIT else 8

    tiles = functools.partial(
        filter_tiles, image.pixels, grid, stride, padding, dilation, bias, tile_size=tile_size, engine=engine
    )
    bounds = None
    if (
        mode == "rescale"
        and len(plan_tiles(image.pixels.shape, grid.shape, stride, padding, dilation, tile_size)) > 1
    ):
        bounds = _global_bounds(tiles())
    pixels = np.empty(out_shape, dtype=DEPTHS[depth][0])
    minimum, maximum = np.nan, np.nan
    for tile, values in tiles():
        pixels[tile.rows, tile.cols] = to_pixels(
            values, mode, in_max=image.max_value, depth=depth, bounds=bounds
        )
        minimum = np.fmin(minimum, np.fmin.reduce(values, axis=None))
        maximum = np.fmax(maximum, np.fmax.reduce(values, axis=None))
    input_shape, dpi = image.pixels.shape, image.info.get("dpi")
    del image, tiles  # the decoded pixels are not needed while the output is encoded
    fast = FAST_PNG if fmt == "PNG" and pixels.size > FAST_PNG_PIXELS else {}
    write_pixels(output_path, pixels, fmt, dpi=dpi, **fast)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=input_shape,
        output_shape=out_shape,
        range_mode=mode,
        depth=depth,
        minimum=float(minimum),
        maximum=float(maximum),
    )


def _global_bounds(tiles) -> tuple[float, float]:
    """The finite min and max over all tiles, as :func:`finite_bounds` gives them for the whole image."""
    lo, hi = np.inf, -np.inf
    for _, values in tiles:
        finite = values[np.isfinite(values)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if lo <= hi else (0.0, 0.0)
