"""Filtering one image file end to end: read, Conv2D, map to pixels, write atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convfilter.core import check_fits, check_kernel, filter_batch
from convfilter.errors import ConvFilterError
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
from convfilter.pixels import resolve_range, to_pixels


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
) -> FilterResult:
    """Filter the image at ``input_path`` and write the result to ``output_path``.

    ``depth`` is the output bit depth (8 or 16); ``None`` keeps the input's
    precision where the output format can store it (16-bit PNG/TIFF inputs
    give 16-bit PNG/TIFF outputs) and is 8 otherwise. Everything that can be
    checked without decoding (output format, depth, directory, output is the
    input) is checked first, so a doomed run does no work. Raises
    ``ValueError`` for bad arguments and :class:`ConvFilterError` for
    problems with the files.
    """
    grid = check_kernel(kernel)
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

    image = read_gray(input_path)
    try:
        out_shape = check_fits(image.pixels.shape, grid.shape, stride, padding, dilation)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    if depth is None:
        depth = 16 if image.depth == 16 and fmt in FORMATS_WITH_16_BIT else 8
    values = filter_batch(image.pixels[np.newaxis], grid, stride, padding, dilation, bias)[0]
    pixels = to_pixels(values, mode, in_max=image.max_value, depth=depth)
    write_pixels(output_path, pixels, fmt, dpi=image.info.get("dpi"))
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=image.pixels.shape,
        output_shape=out_shape,
        range_mode=mode,
        depth=depth,
        minimum=float(np.nanmin(values)),
        maximum=float(np.nanmax(values)),
    )
