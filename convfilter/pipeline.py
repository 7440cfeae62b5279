"""Filtering one file end to end: read, Conv2D (or pooling), map to pixels, write atomically.

INPUT and OUTPUT are images, or matrix files (``.npy``, ``.csv``, ``.txt``,
see :mod:`convfilter.matrixio`): a matrix input is used as it is, a matrix
output receives the raw float32 result (no range mapping, no rounding). A
matrix written to an image is taken to be in the 0..255 scale of an 8-bit
image for the ``clip`` and ``abs`` range modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convfilter.core import check_border_use, check_fits, check_kernel, filter_batch, orient_kernel
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
from convfilter.matrixio import is_matrix_path, read_matrix, write_matrix
from convfilter.pixels import resolve_range, to_pixels
from convfilter.pooling import check_pool, pool_batch, pool_shape

RAW = "raw"
"""The range mode reported for matrix outputs: the float32 values as computed."""
RAW_DEPTH = 32
"""The depth reported for matrix outputs: float32."""


@dataclass
class FilterResult:
    """What :func:`filter_file` did: shapes, the mapping used and the raw value range.

    For a matrix output ``range_mode`` is ``'raw'`` and ``depth`` 32 (float32).
    """

    input: str
    output: str
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    range_mode: str
    depth: int
    minimum: float
    maximum: float


@dataclass
class InputData:
    """A decoded INPUT: ``values`` (``H x W``) in a ``0..max_value`` scale, its depth and image info."""

    values: np.ndarray
    max_value: float
    depth: int
    info: dict


@dataclass
class OutputPlan:
    """Where and how the result is written, checked before any work: matrix or image format, depth."""

    path: str
    fmt: str | None
    depth: int | None
    range_mode: str


def plan_output(input_path: str, output_path: str, range_mode: str, depth: int | None) -> OutputPlan:
    """Check everything about OUTPUT that needs no decoding; ``range_mode`` must already be resolved.

    Raises ``ValueError`` for a range or depth given with a matrix output and
    :class:`ConvFilterError` for a file problem.
    """
    if is_matrix_path(output_path):
        if depth is not None:
            raise ValueError(f"{output_path}: depth applies to image outputs; a matrix file holds raw floats")
        fmt = None
    else:
        fmt = output_format(output_path)
        if depth is not None:
            check_depth(output_path, fmt, depth)
    check_writable(output_path)
    if same_file(input_path, output_path):
        raise ConvFilterError(f"{output_path}: is the input file; refusing to overwrite it")
    return OutputPlan(output_path, fmt, depth, range_mode)


def read_input(path: str) -> InputData:
    """Read an image (grayscale rule of :mod:`convfilter.imageio`) or a matrix file (values as they are)."""
    if is_matrix_path(path):
        return InputData(read_matrix(path), 255.0, 8, {})
    image = read_gray(path)
    return InputData(image.pixels, image.max_value, image.depth, image.info)


def write_output(plan: OutputPlan, data: InputData, values: np.ndarray) -> tuple[str, int]:
    """Write ``values`` as the plan says; returns the ``(range_mode, depth)`` actually used."""
    if plan.fmt is None:
        write_matrix(plan.path, values)
        return RAW, RAW_DEPTH
    depth = plan.depth
    if depth is None:
        depth = 16 if data.depth == 16 and plan.fmt in FORMATS_WITH_16_BIT else 8
    pixels = to_pixels(values, plan.range_mode, in_max=data.max_value, depth=depth)
    write_pixels(plan.path, pixels, plan.fmt, dpi=data.info.get("dpi"))
    return plan.range_mode, depth


def _check_raw_range(output_path: str, range_mode: str) -> None:
    if is_matrix_path(output_path) and range_mode != "auto":
        raise ValueError(
            f"{output_path}: range {range_mode!r} applies to image outputs; a matrix file holds raw floats"
        )


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
    border: str = "zero",
    convolve: bool = False,
) -> FilterResult:
    """Filter the image or matrix at ``input_path`` and write the result to ``output_path``.

    ``depth`` is the output bit depth (8 or 16); ``None`` keeps the input's
    precision where the output format can store it (16-bit PNG/TIFF inputs
    give 16-bit PNG/TIFF outputs) and is 8 otherwise. ``border`` and
    ``convolve`` are as in :func:`convfilter.core.filter_array`. Everything
    that can be checked without decoding (output format, depth, directory,
    output is the input) is checked first, so a doomed run does no work.
    Raises ``ValueError`` for bad arguments and :class:`ConvFilterError` for
    problems with the files.
    """
    grid = orient_kernel(check_kernel(kernel), bool(convolve))
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    border = check_border_use(border, padding)
    _check_raw_range(output_path, range_mode)
    mode = resolve_range(range_mode, grid)
    plan = plan_output(input_path, output_path, mode, depth)

    data = read_input(input_path)
    try:
        out_shape = check_fits(data.values.shape, grid.shape, stride, padding, dilation)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    values = filter_batch(data.values[np.newaxis], grid, stride, padding, dilation, bias, border=border)[0]
    used_mode, used_depth = write_output(plan, data, values)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=data.values.shape,
        output_shape=out_shape,
        range_mode=used_mode,
        depth=used_depth,
        minimum=float(np.nanmin(values)),
        maximum=float(np.nanmax(values)),
    )


def pool_file(
    input_path: str,
    output_path: str,
    kind: str,
    size: int = 2,
    *,
    stride: int | Sequence[int] | None = None,
    padding: str = "valid",
    depth: int | None = None,
) -> FilterResult:
    """Max- or average-pool the image or matrix at ``input_path`` into ``output_path``.

    Pooled values stay within the input's range, so images are written with
    the ``clip`` mapping; matrix outputs get the raw float32 values.
    """
    kind, pool_size, stride, padding = check_pool(kind, size, stride, padding)
    plan = plan_output(input_path, output_path, "clip", depth)
    data = read_input(input_path)
    try:
        out_shape = pool_shape(data.values.shape, pool_size, stride, padding)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    values = pool_batch(data.values[np.newaxis], kind, pool_size, stride, padding)[0]
    used_mode, used_depth = write_output(plan, data, values)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=data.values.shape,
        output_shape=out_shape,
        range_mode=used_mode,
        depth=used_depth,
        minimum=float(np.nanmin(values)),
        maximum=float(np.nanmax(values)),
    )
