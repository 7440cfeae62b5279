"""Filtering one file end to end: read, Conv2D (or pooling), map to pixels, write atomically.

INPUT and OUTPUT are images, or matrix files (``.npy``, ``.csv``, ``.txt``,
see :mod:`convfilter.io.matrices`): a matrix input is used as it is, a matrix
output receives the raw float32 result (no range mapping, no rounding). A
matrix written to an image is taken to be in the 0..255 scale of an 8-bit
image for the ``clip`` and ``abs`` range modes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import Image

from convfilter.io.atomic import exists_message
from convfilter.io.color import merge_bands, pixel_array, resample_alpha
from convfilter.engine.conv import check_border_use, check_fits, check_kernel, filter_batch, orient_kernel
from convfilter.engine.layouts import check_engine
from convfilter.errors import ConvFilterError
from convfilter.ops.geometry import check_padding, output_shape, standardize_pair
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
from convfilter.io.pixels import DEPTHS, resolve_range, to_pixels
from convfilter.engine.pool import check_pool, pool_batch, pool_shape
from convfilter.engine.tiles import DEFAULT_TILE_SIZE, check_tile_size, filter_tiles, plan_tiles

RAW = "raw"
"""The range mode reported for raw float outputs (matrix files, ``--depth 32f``)."""
RAW_DEPTH = 32
"""The depth reported for matrix outputs: float32."""


@dataclass
class FilterResult:
    """What :func:`filter_file` did: shapes, the mapping used and the raw value range.

    ``depth`` is 8, 16, ``"32f"`` (float TIFF) or 32 (a matrix file, float32);
    ``range_mode`` is ``'raw'`` for the last two. ``mode`` is the Pillow mode
    written; ``channels`` is how many images went through the Conv2D as a
    batch; ``frame`` is the frame read out of the input's ``frames``.
    ``input_values`` (``C x H x W``, in a ``0..input_max`` scale) and
    ``values`` (``C x H' x W'``) are the decoded input and the raw float32
    result, for ``--compare``. An image output rendered tile by tile
    (:func:`filter_pixels`) has ``values`` ``None`` and ``input_values`` in
    the decoded dtype (``uint8``, ``uint16``): no full float copy is kept.
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
) -> OutputPlan:
    """Check everything about OUTPUT that needs no decoding; ``range_mode`` must already be resolved.

    Raises ``ValueError`` for options that a matrix output cannot honour and
    :class:`ConvFilterError` for a file problem.
    """
    depth = check_depth_value(depth)
    if is_matrix_path(output_path):
        for name, value in (("depth", depth), ("quality", quality), ("color", color or None)):
            if value is not None:
                raise ValueError(
                    f"{output_path}: {name} applies to image outputs; a matrix file holds raw floats"
                )
        fmt = None
    else:
        fmt = output_format(output_path)
        check_quality(output_path, fmt, quality)
        if depth is not None:
            check_depth(output_path, fmt, depth)
    check_writable(output_path)
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
) -> InputData:
    """Read an image (grayscale or colour rule of :mod:`convfilter.io.modes`) or a matrix file (values as is).

    ``source``, if given, is an open binary file holding an image (standard
    input) read instead of ``path``, which then only names it in messages.
    ``on_open`` is called when an image file has opened, before it decodes
    (see :func:`convfilter.io.images.read_gray`); not for matrix files.
    ``keep_dtype`` keeps 8/16-bit channels as ``uint8``/``uint16``.
    """
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
    **params,
) -> str:
    """Write ``values`` (``C x H' x W'``) as the plan says; returns the range mode actually used.

    ``replace=False`` never replaces an existing file (see
    :func:`convfilter.io.images.write_image`); ``params`` are extra Pillow save
    options for image outputs (e.g. PNG's ``compress_level``); ``pixels`` as
    in :func:`render_output`.
    """
    picture, used = render_output(plan, data, values, depth, out_mode, alpha, pixels=pixels)
    if plan.fmt is None:
        write_matrix(plan.path, picture, replace=replace)
    else:
        write_image(plan.path, picture, plan.fmt, replace=replace, **save_params(plan, data, **params))
    return used


def renders_in_tiles(
    plan: OutputPlan,
    depth: int | str,
    shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    tile_size: int | None,
) -> bool:
    """True when the output is an 8/16-bit image larger than one tile: :func:`filter_pixels` makes it.

    Matrix and ``--depth 32f`` outputs hold the raw float values, so they are
    filtered tile by tile into one float array instead.
    """
    return (
        tile_size is not None
        and plan.fmt is not None
        and depth != "32f"
        and len(plan_tiles(shape, kernel_shape, stride, padding, dilation, tile_size)) > 1
    )


def filter_pixels(
    data: InputData,
    plan: OutputPlan,
    depth: int,
    kernel: np.ndarray,
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    bias: float,
    *,
    border: str = "zero",
    tile_size: int = DEFAULT_TILE_SIZE,
    engine: str = "auto",
) -> tuple[np.ndarray, float, float]:
    """The output's ``C x H' x W'`` pixels, filtered and mapped tile by tile; and the raw min and max.

    No full-size float copy of the image exists: each tile's float values are
    mapped to pixels and dropped. ``rescale`` needs the min and max of the
    whole result first, so its tiles are computed twice (a min/max pass, then
    the mapping pass). The pixels are those of the whole image at once, bit for bit.
    """
    tiles = functools.partial(
        filter_tiles,
        data.channels,
        kernel,
        stride,
        padding,
        dilation,
        bias,
        border=border,
        tile_size=tile_size,
        engine=engine,
    )
    bounds = _global_bounds(tiles()) if plan.range_mode == "rescale" else None
    out_shape = output_shape(data.shape, kernel.shape, stride, padding, dilation)
    pixels = np.empty((len(data.channels), *out_shape), dtype=DEPTHS[depth][0])
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


def _check_raw_range(output_path: str, range_mode: str) -> None:
    if is_matrix_path(output_path) and range_mode != "auto":
        raise ValueError(
            f"{output_path}: range {range_mode!r} applies to image outputs; a matrix file holds raw floats"
        )


def _prefixed(input_path: str, check, *args):
    """Run a size check, prefixing its :class:`ConvFilterError` message with the input's name."""
    try:
        return check(*args)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None


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
    depth: int | str | None = None,
    border: str = "zero",
    convolve: bool = False,
    color: bool = False,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
    engine: str = "auto",
) -> FilterResult:
    """Filter the image or matrix at ``input_path`` and write the result to ``output_path``.

    ``depth`` is the output depth: 8, 16 (PNG/TIFF) or ``"32f"`` (TIFF: the
    raw float results, ``range_mode`` not applied); ``None`` keeps the input's
    precision where the output format can store it (16-bit PNG/TIFF inputs
    give 16-bit PNG/TIFF outputs) and is 8 otherwise. ``border`` and
    ``convolve`` are as in :func:`convfilter.engine.conv.filter_array`. ``color``
    filters each colour channel with the kernel and keeps the mode (alpha
    resampled, never filtered; see :mod:`convfilter.io.color`), otherwise the
    image is converted to grayscale (:mod:`convfilter.io.modes`). ``frame`` picks
    a frame of a multi-frame file (0-based, default the first); ``max_pixels``
    is the decompression-bomb limit (``None``: none); ``quality`` is
    JPEG/WebP's. Outputs larger than ``tile_size`` x ``tile_size`` are
    computed in tiles (bit-identical; see :mod:`convfilter.engine.tiles`); ``engine``
    is as in :func:`convfilter.engine.conv.filter_batch`. TensorFlow is imported in
    the background while a large image decodes (:func:`convfilter.engine.model.preload_for`).

    Everything that can be checked without decoding (output format, depth,
    quality, directory, output is the input) is checked first, and what
    depends on the image (size, mode the output format can store) before the
    model runs, so a doomed run does no work. Raises ``ValueError`` for bad
    arguments and :class:`ConvFilterError` for problems with the files.
    """
    grid = orient_kernel(check_kernel(kernel), bool(convolve))
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    border = check_border_use(border, padding)
    _check_raw_range(output_path, range_mode)
    mode = resolve_range(range_mode, grid)
    _check_count(max_pixels, "max_pixels", 1)
    _check_count(frame, "frame", 0)
    check_tile_size(tile_size)
    check_engine(engine)
    plan = plan_output(input_path, output_path, mode, depth, quality=quality, color=color)

    from convfilter.engine.model import preload_for, wait_for_preload

    try:
        data = read_input(
            input_path, color=color, frame=frame, max_pixels=max_pixels, on_open=preload_for, keep_dtype=True
        )
        out_shape = _prefixed(input_path, check_fits, data.shape, grid.shape, stride, padding, dilation)
        used_depth, out_mode = output_target(plan, data, input_path)
    except BaseException:
        wait_for_preload()  # standard error is silenced while the import runs
        raise
    conv = (grid, stride, padding, dilation)
    values = pixels = None
    if renders_in_tiles(plan, used_depth, data.shape, grid.shape, stride, padding, dilation, tile_size):
        pixels, minimum, maximum = filter_pixels(
            data, plan, used_depth, *conv, bias, border=border, tile_size=tile_size, engine=engine
        )
    else:
        data.channels = data.channels.astype(np.float32, copy=False)
        values = filter_batch(data.channels, *conv, bias, border=border, engine=engine, tile_size=tile_size)
        minimum, maximum = float(np.nanmin(values)), float(np.nanmax(values))
    alpha = None
    if data.alpha is not None:
        alpha = resample_alpha(data.alpha, grid.shape, stride, padding, dilation)
    used_mode = write_output(plan, data, values, used_depth, out_mode, alpha, pixels=pixels)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=data.shape,
        output_shape=out_shape,
        range_mode=used_mode,
        depth=used_depth,
        minimum=minimum,
        maximum=maximum,
        mode=out_mode or "F",
        channels=len(data.channels),
        frame=data.frame,
        frames=data.frames,
        input_values=data.channels,
        values=values,
        input_max=data.max_value,
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
    overwrite: bool = True,
) -> FilterResult:
    """Max- or average-pool the image or matrix at ``input_path`` into ``output_path``.

    Pooled values stay within the input's range, so images are written with
    the ``clip`` mapping; matrix outputs get the raw float32 values. With
    ``overwrite=False`` an existing ``output_path`` is refused before any work
    (and never replaced, even one created meanwhile).
    """
    kind, pool_size, stride, padding = check_pool(kind, size, stride, padding)
    plan = plan_output(input_path, output_path, "clip", depth)
    if not overwrite and os.path.lexists(output_path):
        raise ConvFilterError(exists_message(output_path))
    data = read_input(input_path)
    out_shape = _prefixed(input_path, pool_shape, data.shape, pool_size, stride, padding)
    used_depth, out_mode = output_target(plan, data, input_path)
    values = pool_batch(data.channels, kind, pool_size, stride, padding)
    used_mode = write_output(plan, data, values, used_depth, out_mode, replace=overwrite)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=data.shape,
        output_shape=out_shape,
        range_mode=used_mode,
        depth=used_depth,
        minimum=float(np.nanmin(values)),
        maximum=float(np.nanmax(values)),
        mode=out_mode or "F",
        input_values=data.channels,
        values=values,
        input_max=data.max_value,
    )


def _check_count(value: int | None, name: str, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"The `{name}` argument must be an integer >= {minimum} or None. Received: {name}={value!r}"
        )


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


def _usable_dpi(dpi) -> tuple[float, float] | None:
    """The input's DPI when it is a pair of positive finite numbers, else ``None``."""
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if all(np.isfinite(v) and v > 0 for v in (x, y)) else None
