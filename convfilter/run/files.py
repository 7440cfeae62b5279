"""The stages one file goes through: plan the output, read the input, map the result to pixels, write.

:class:`~convfilter.run.runner.Runner` runs them for every file of a job.

INPUT and OUTPUT are images, or matrix files (``.npy``, ``.csv``, ``.txt``,
see :mod:`convfilter.io.matrices`): a matrix input is used as it is, a matrix
output receives the raw float32 result (no range mapping, no rounding). A
matrix written to an image is taken to be in the 0..255 scale of an 8-bit
image for the ``clip`` and ``abs`` range modes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import Image

from convfilter.engine.tiles import DEFAULT_TILE_SIZE, filter_tiles, plan_tiles
from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io import stores
from convfilter.io.color import merge_bands, pixel_array
from convfilter.io.images import (
    DEFAULT_MAX_PIXELS,
    FORMATS_WITH_16_BIT,
    FORMATS_WITH_DPI,
    check_depth,
    check_depth_value,
    check_encodable,
    check_quality,
    check_writable,
    depth_of_scale,
    output_format,
    read_color,
    read_gray,
    same_file,
    write_image,
)
from convfilter.io.matrices import is_matrix_path, read_matrix, write_matrix
from convfilter.io.pixels import DEPTHS, to_pixels
from convfilter.ops.conv import Conv2DSpec
from convfilter.ops.spec import Operation

RAW = "raw"
"""The range mode reported for raw float outputs (matrix files, ``--depth 32f``)."""
RAW_DEPTH = 32
"""The depth reported for matrix outputs: float32."""


@dataclass
class FilterResult:
    """What was done to one file: shapes, the mapping used and the raw value range.

    ``depth`` is 8, 16, ``"32f"`` (float TIFF) or 32 (a matrix file, float32);
    ``range_mode`` is ``'raw'`` for the last two. ``mode`` is the Pillow mode
    written; ``channels`` is how many images went through the Conv2D as a
    batch; ``frame`` is the frame read out of the input's ``frames``.
    ``input_values`` (``C x H x W``, in a ``0..input_max`` scale) and
    ``values`` (``C x H' x W'``) are the decoded input and the raw float32
    result, for ``--compare``. An image output rendered tile by tile
    (:func:`filter_pixels`) has ``values`` ``None`` and ``input_values`` in
    the decoded dtype (``uint8``, ``uint16``): no full float copy is kept.
    ``stage_values`` holds every stage's raw output when the runner was asked
    to keep them (a chain's ``--compare``).
    """

    input: str
    output: str
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]
    range_mode: str
    depth: int | str
    minimum: float
    maximum: float
    mode: str = "L"
    channels: int = 1
    frame: int = 0
    frames: int = 1
    input_values: np.ndarray | None = field(default=None, repr=False)
    values: np.ndarray | None = field(default=None, repr=False)
    input_max: float = 255.0
    stage_values: list[np.ndarray] | None = field(default=None, repr=False)


@dataclass
class InputData:
    """A decoded INPUT: ``channels`` (``C x H x W``) in a ``0..max_value`` scale, alpha and image info.

    Grayscale reads and matrix files have one channel; ``band_mode`` is the
    mode the channels form (``L`` for one channel).
    """

    channels: np.ndarray
    alpha: np.ndarray | None
    band_mode: str
    max_value: float
    info: dict
    frame: int = 0
    frames: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the input."""
        return self.channels.shape[1:]

    @property
    def depth(self) -> int:
        """8 for inputs in the 0..255 scale, 16 for the higher-precision ones."""
        return depth_of_scale(self.max_value)


@dataclass
class OutputPlan:
    """Where and how the result is written, checked before any work: matrix or image format, depth."""

    path: str
    fmt: str | None
    depth: int | str | None
    range_mode: str
    quality: int | None = None


def plan_output(
    input_path: str,
    output_path: str,
    range_mode: str,
    depth: int | str | None,
    *,
    quality: int | None = None,
    color: bool = False,
    create_dirs: bool = False,
) -> OutputPlan:
    """Check everything about OUTPUT that needs no decoding; ``range_mode`` must already be resolved.

    ``create_dirs`` accepts a missing output directory that :func:`write_output` will create.

    Raises :class:`ArgumentError` for options that a matrix output cannot honour and
    :class:`ConvFilterError` for a file problem.
    """
    depth = check_depth_value(depth)
    if is_matrix_path(output_path):
        for name, value in (("depth", depth), ("quality", quality), ("color", color or None)):
            if value is not None:
                raise ArgumentError(
                    f"{output_path}: {name} applies to image outputs; a matrix file holds raw floats"
                )
        fmt = None
    else:
        fmt = output_format(output_path)
        check_quality(output_path, fmt, quality)
        if depth is not None:
            check_depth(output_path, fmt, depth)
    check_writable(output_path, create_dirs=create_dirs)
    if same_file(input_path, output_path):
        raise ConvFilterError(f"{output_path}: is the input file; refusing to overwrite it")
    return OutputPlan(output_path, fmt, depth, range_mode, quality)


def read_input(
    path: str,
    *,
    color: bool = False,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    source: BinaryIO | None = None,
    on_open: Callable[[tuple[int, int]], None] | None = None,
    keep_dtype: bool = False,
    channels: int = 1,
) -> InputData:
    """Read an image (grayscale or colour rule of :mod:`convfilter.io.modes`) or a matrix file (values as is).

    ``source``, if given, is an open binary file holding an image (standard
    input) read instead of ``path``, which then only names it in messages.
    ``on_open`` is called when an image file has opened, before it decodes
    (see :func:`convfilter.io.images.read_gray`); not for matrix files.
    ``keep_dtype`` keeps 8/16-bit channels as ``uint8``/``uint16``.

    ``channels`` > 1 is the C a multi-channel kernel reads: every band of the
    image, alpha included (gray, LA, RGB, RGBA ...), or the C planes of an
    ``H x W x C`` ``.npy``, as one input whose output has one channel. A
    different count is a :class:`ConvFilterError` naming both numbers.
    """
    if channels > 1:
        return _read_all_channels(path, channels, frame, max_pixels, source, on_open, keep_dtype)
    if source is None and is_matrix_path(path):
        return InputData(read_matrix(path)[np.newaxis], None, "L", 255.0, {})
    if color:
        image = read_color(
            path, frame=frame, max_pixels=max_pixels, source=source, on_open=on_open, keep_dtype=keep_dtype
        )
        return InputData(
            image.channels, image.alpha, image.mode, image.max_value, image.info, image.frame, image.frames
        )
    gray = read_gray(
        path, frame=frame, max_pixels=max_pixels, source=source, on_open=on_open, keep_dtype=keep_dtype
    )
    return InputData(gray.pixels[np.newaxis], None, "L", gray.max_value, gray.info, gray.frame, gray.frames)


def count_channels(path: str) -> int:
    """The channels ``path`` gives a kernel that reads them all (bands, alpha; a matrix's 3rd axis)."""
    if is_matrix_path(path):
        values = read_matrix(path, more=(3,))
        return 1 if values.ndim == 2 else int(values.shape[2])
    image = read_color(path, max_pixels=None, keep_dtype=True)
    return len(image.channels) + (image.alpha is not None)


def _read_all_channels(path, channels, frame, max_pixels, source, on_open, keep_dtype) -> InputData:
    """Every band of ``path`` as the C input channels of one multi-channel convolution."""
    if source is None and is_matrix_path(path):
        values = read_matrix(path, more=(3,))
        planes = values[np.newaxis] if values.ndim == 2 else np.moveaxis(values, -1, 0)
        data = InputData(np.ascontiguousarray(planes), None, "L", 255.0, {})
        what = "an H x W matrix" if values.ndim == 2 else f"an H x W x {values.shape[2]} array"
    else:
        image = read_color(
            path, frame=frame, max_pixels=max_pixels, source=source, on_open=on_open, keep_dtype=keep_dtype
        )
        planes = image.channels
        if image.alpha is not None:
            alpha = image.alpha.astype(planes.dtype, copy=False)
            planes = np.concatenate([planes, alpha[np.newaxis]])
        data = InputData(planes, None, "L", image.max_value, image.info, image.frame, image.frames)
        what = f"a {image.source_mode} image"
    if len(data.channels) != channels:
        count = len(data.channels)
        raise ConvFilterError(
            f"{path}: has {count} channel{'s' if count != 1 else ''} ({what}), but the kernel reads "
            f"{channels} (weights (kh, kw, {channels}, N))"
        )
    return data


def output_target(plan: OutputPlan, data: InputData, input_path: str) -> tuple[int | str, str | None]:
    """The output's depth and Pillow mode for this input, refused before the model runs if unstorable.

    Matrix outputs give ``(32, None)``.
    """
    if plan.fmt is None:
        return RAW_DEPTH, None
    depth = plan.depth
    if depth is None:
        depth = 16 if data.depth == 16 and plan.fmt in FORMATS_WITH_16_BIT else 8
    return depth, _output_mode(plan.path, plan.fmt, data.band_mode, depth, input_path)


def render_output(
    plan: OutputPlan,
    data: InputData,
    values: np.ndarray,
    depth: int | str,
    out_mode: str | None,
    alpha: np.ndarray | None = None,
    *,
    pixels: np.ndarray | None = None,
) -> tuple[Image.Image | np.ndarray, str]:
    """What :func:`write_output` stores, and the range mode used: the pixels (a NumPy array where
    :func:`convfilter.io.color.pixel_array` has a layout for them, else a Pillow image), or for a
    matrix output the raw ``H' x W'`` values. ``pixels`` already mapped (:func:`filter_pixels`) replace
    ``values`` (``None`` then)."""
    if pixels is not None:
        used = plan.range_mode
    elif plan.fmt is None:
        return values[0], RAW
    elif depth == "32f":
        pixels, used = values.astype(np.float32), RAW
    else:
        pixels, used = to_pixels(values, plan.range_mode, in_max=data.max_value, depth=depth), plan.range_mode
    array = pixel_array(pixels, alpha, out_mode)
    if array is not None:  # the writers take arrays: no Pillow copy of a huge image
        return array, used
    picture = merge_bands(pixels, alpha, data.band_mode)
    if picture.mode != out_mode:
        picture = picture.convert(out_mode)
    return picture, used


def save_params(plan: OutputPlan, data: InputData, **params) -> dict:
    """Pillow's save options for an image output: ``params``, the plan's quality, the input's DPI."""
    if plan.quality is not None:
        params["quality"] = plan.quality
    dpi = _usable_dpi(data.info.get("dpi"))
    if dpi and plan.fmt in FORMATS_WITH_DPI:
        params["dpi"] = dpi
    return params


def write_output(
    plan: OutputPlan,
    data: InputData,
    values: np.ndarray,
    depth: int | str,
    out_mode: str | None,
    alpha: np.ndarray | None = None,
    *,
    replace: bool = True,
    pixels: np.ndarray | None = None,
    claim: str | None = None,
    **params,
) -> str:
    """Write ``values`` (``C x H' x W'``) as the plan says; returns the range mode actually used.

    ``replace=False`` never replaces an existing file (see
    :func:`convfilter.io.images.write_image`); ``params`` are extra Pillow save
    options for image outputs (e.g. PNG's ``compress_level``); ``pixels`` as
    in :func:`render_output`; ``claim`` names a Dask run (:func:`convfilter.io.atomic.move_into_place`).
    """
    picture, used = render_output(plan, data, values, depth, out_mode, alpha, pixels=pixels)
    parent = os.path.dirname(plan.path)
    if parent and not stores.is_url(plan.path) and not os.path.isdir(parent):
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConvFilterError(f"{plan.path}: cannot create directory {parent} ({exc.strerror})") from None
    if plan.fmt is None:
        write_matrix(plan.path, picture, replace=replace, claim=claim)
    else:
        params = save_params(plan, data, **params)
        write_image(plan.path, picture, plan.fmt, replace=replace, claim=claim, **params)
    return used


def renders_in_tiles(
    plan: OutputPlan, depth: int | str, shape: tuple[int, int], op: Operation, tile_size: int | None
) -> bool:
    """True when ``op`` is a convolution whose 8/16-bit image output is larger than one tile:
    :func:`filter_pixels` makes it.

    Matrix and ``--depth 32f`` outputs hold the raw float values, so they are
    filtered tile by tile into one float array instead.
    """
    return (
        tile_size is not None
        and op.tiles
        and plan.fmt is not None
        and depth != "32f"
        and len(plan_tiles(shape, op, tile_size)) > 1
    )


def filter_pixels(
    data: InputData, plan: OutputPlan, depth: int, op: Conv2DSpec, tile_size: int = DEFAULT_TILE_SIZE
) -> tuple[np.ndarray, float, float]:
    """The output's ``C x H' x W'`` pixels, filtered and mapped tile by tile; and the raw min and max.

    No full-size float copy of the image exists: each tile's float values are
    mapped to pixels and dropped. ``rescale`` needs the min and max of the
    whole result first, so its tiles are computed twice (a min/max pass, then
    the mapping pass).
    """
    tiles = functools.partial(filter_tiles, data.channels, op, tile_size=tile_size)
    bounds = _global_bounds(tiles()) if plan.range_mode == "rescale" else None
    out_shape = op.output_shape(data.shape)
    pixels = np.empty((len(data.channels) // op.channels, *out_shape), dtype=DEPTHS[depth][0])
    minimum, maximum = np.nan, np.nan
    for tile, values in tiles():
        pixels[:, tile.rows, tile.cols] = to_pixels(
            values, plan.range_mode, in_max=data.max_value, depth=depth, bounds=bounds
        )
        minimum = np.fmin(minimum, np.fmin.reduce(values, axis=None))
        maximum = np.fmax(maximum, np.fmax.reduce(values, axis=None))
    return pixels, float(minimum), float(maximum)


def _global_bounds(tiles) -> tuple[float, float]:
    """The finite min and max over all tiles, as :func:`convfilter.io.pixels.finite_bounds` gives them."""
    lo, hi = np.inf, -np.inf
    for _, values in tiles:
        finite = values[np.isfinite(values)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if lo <= hi else (0.0, 0.0)


def _output_mode(path: str, fmt: str, band_mode: str, depth: int | str, input_path: str) -> str:
    """The Pillow mode to write, refused before any work if ``fmt`` cannot store it.

    8-bit keeps the bands' mode, except CMYK, which becomes RGB for formats
    without CMYK (PNG, BMP); 16 and ``"32f"`` are single-channel only.
    """
    if depth != 8:
        if band_mode != "L":
            raise ConvFilterError(
                f"{input_path}: is {band_mode}; only single-channel images can be written at depth {depth}, "
                "use --depth 8 or leave out --color"
            )
        out_mode = "I;16" if depth == 16 else "F"
    else:
        out_mode = band_mode
        if band_mode == "CMYK":
            try:
                check_encodable(path, fmt, "CMYK")
            except ConvFilterError:
                out_mode = "RGB"
    check_encodable(path, fmt, out_mode)
    return out_mode


MAX_DPI = 1e6
"""DPI above this is left out: no real image has it, and formats store it in fixed fields (PNG's
``pHYs`` holds pixels per metre in 32 bits, BMP in a signed 32-bit field)."""


def _usable_dpi(dpi) -> tuple[float, float] | None:
    """The input's DPI when it is a pair of positive finite numbers up to :data:`MAX_DPI`, else ``None``."""
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError, OverflowError):
        return None
    return (x, y) if all(np.isfinite(v) and 0 < v <= MAX_DPI for v in (x, y)) else None
