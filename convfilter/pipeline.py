"""Filtering one image file end to end: read, Conv2D, map to pixels, write atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convfilter.color import merge_bands, resample_alpha
from convfilter.core import check_fits, check_kernel, filter_batch
from convfilter.errors import ConvFilterError
from convfilter.geometry import check_padding, standardize_pair
from convfilter.imageio import (
    DEFAULT_MAX_PIXELS,
    FORMATS_WITH_16_BIT,
    check_depth,
    check_depth_value,
    check_encodable,
    check_quality,
    check_writable,
    output_format,
    read_color,
    read_gray,
    same_file,
    write_image,
)
from convfilter.pixels import resolve_range, to_pixels


@dataclass
class FilterResult:
    """What :func:`filter_file` did: shapes, the mapping used and the raw value range.

    ``depth`` is 8, 16 or ``"32f"``; ``mode`` is the Pillow mode written;
    ``channels`` is how many images went through the Conv2D as a batch;
    ``frame`` is the frame read out of the input's ``frames``.
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
    color: bool = False,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
) -> FilterResult:
    """Filter the image at ``input_path`` and write the result to ``output_path``.

    ``depth`` is the output depth: 8, 16 (PNG/TIFF) or ``"32f"`` (TIFF: the
    raw float results, ``range_mode`` not applied); ``None`` keeps the input's
    precision where the output format can store it (16-bit PNG/TIFF inputs
    give 16-bit PNG/TIFF outputs) and is 8 otherwise. ``color`` filters each
    colour channel with the kernel and keeps the mode (alpha resampled, never
    filtered; see :mod:`convfilter.color`), otherwise the image is converted
    to grayscale (:mod:`convfilter.modes`). ``frame`` picks a frame of a
    multi-frame file (0-based, default the first); ``max_pixels`` is the
    decompression-bomb limit (``None``: none); ``quality`` is JPEG/WebP's.

    Everything that can be checked without decoding (output format, depth,
    quality, directory, output is the input) is checked first, and what
    depends on the image (size, mode the output format can store) before the
    model runs, so a doomed run does no work. Raises ``ValueError`` for bad
    arguments and :class:`ConvFilterError` for problems with the files.
    """
    grid = check_kernel(kernel)
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    mode = resolve_range(range_mode, grid)
    depth = check_depth_value(depth)
    _check_count(max_pixels, "max_pixels", 1)
    _check_count(frame, "frame", 0)
    fmt = output_format(output_path)
    check_quality(output_path, fmt, quality)
    if depth is not None:
        check_depth(output_path, fmt, depth)
    check_writable(output_path)
    if same_file(input_path, output_path):
        raise ConvFilterError(f"{output_path}: is the input file; refusing to overwrite it")

    if color:
        image = read_color(input_path, frame=frame, max_pixels=max_pixels)
        channels, alpha, band_mode = image.channels, image.alpha, image.mode
    else:
        image = read_gray(input_path, frame=frame, max_pixels=max_pixels)
        channels, alpha, band_mode = image.pixels[np.newaxis], None, "L"
    in_shape = channels.shape[1:]
    try:
        out_shape = check_fits(in_shape, grid.shape, stride, padding, dilation)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    if depth is None:
        depth = 16 if image.depth == 16 and fmt in FORMATS_WITH_16_BIT else 8
    out_mode = _output_mode(output_path, fmt, band_mode, depth, input_path)

    values = filter_batch(channels, grid, stride, padding, dilation, bias)
    if depth == "32f":
        pixels = values.astype(np.float32)
    else:
        pixels = to_pixels(values, mode, in_max=image.max_value, depth=depth)
    if alpha is not None:
        alpha = resample_alpha(alpha, grid.shape, stride, padding, dilation)
    picture = merge_bands(pixels, alpha, band_mode)
    if picture.mode != out_mode:
        picture = picture.convert(out_mode)
    params = {} if quality is None else {"quality": quality}
    write_image(output_path, picture, fmt, dpi=_usable_dpi(image.info.get("dpi")), **params)
    return FilterResult(
        input=input_path,
        output=output_path,
        input_shape=in_shape,
        output_shape=out_shape,
        range_mode="raw" if depth == "32f" else mode,
        depth=depth,
        minimum=float(np.nanmin(values)),
        maximum=float(np.nanmax(values)),
        mode=out_mode,
        channels=len(channels),
        frame=image.frame,
        frames=image.frames,
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
