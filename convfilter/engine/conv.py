"""The filtering core: validate a convolution, then run it through the Keras model.

:func:`filter_array` is the library entry point for notebooks and tests; the
CLI calls it too. TensorFlow is imported only when a model actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.ops.borders import check_border, pad_batch
from convfilter.engine.layouts import check_engine
from convfilter.errors import ImageTooSmallError
from convfilter.ops.geometry import (
    check_padding,
    dilated_extent,
    output_shape,
    padding_amounts,
    standardize_pair,
)
from convfilter.ops.kernels import MAX_KERNEL_SIZE


def check_kernel(kernel: np.ndarray | Sequence) -> np.ndarray:
    """Return ``kernel`` as a 2-D float64 array, or raise ``ValueError`` saying what is wrong."""
    try:
        grid = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"kernel must be a 2-D array of numbers, got {kernel!r}") from None
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {grid.shape}")
    if max(grid.shape) > MAX_KERNEL_SIZE:
        raise ValueError(
            f"kernel must be at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}, got {grid.shape[0]}x{grid.shape[1]}"
        )
    if not np.isfinite(grid).all():
        raise ValueError("kernel values must be finite (no NaN or infinity)")
    return grid


def check_fits(
    image_shape: Sequence[int],
    kernel_shape: Sequence[int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """Return the output shape, or raise :class:`ImageTooSmallError` if it would be empty."""
    out = output_shape(image_shape, kernel_shape, stride, padding, dilation)
    if min(out) < 1:
        h, w = image_shape
        kh, kw = kernel_shape
        needed = (
            dilated_extent(kh, dilation[0]),
            dilated_extent(kw, dilation[1]),
        )
        spread = "" if dilation == (1, 1) else f" with dilation {dilation[0]}x{dilation[1]}"
        raise ImageTooSmallError(
            f"image is {h}x{w} but the {kh}x{kw} kernel{spread} needs at least "
            f"{needed[0]}x{needed[1]} pixels under 'valid' padding"
        )
    return out


def check_border_use(border: str, padding: str) -> str:
    """Return ``border`` checked; a non-zero border needs 'same' or 'full' padding to mean anything."""
    border = check_border(border)
    if border != "zero" and padding == "valid":
        raise ValueError(
            f"border {border!r} has no effect with padding 'valid' (nothing is padded); "
            "use padding 'same' or 'full'"
        )
    return border


def orient_kernel(kernel: np.ndarray, convolve: bool) -> np.ndarray:
    """The weights the Conv2D gets: ``kernel`` as is (cross-correlation) or flipped in both axes.

    Flipping rows and columns turns Keras's cross-correlation into true
    mathematical convolution: ``out[i] = sum(x[i - a] * k[a])``.
    """
    return np.ascontiguousarray(kernel[::-1, ::-1]) if convolve else kernel


def filter_array(
    image: np.ndarray,
    kernel: np.ndarray | Sequence,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    border: str = "zero",
    convolve: bool = False,
    engine: str = "auto",
) -> np.ndarray:
    """Filter a 2-D array with a single-filter Keras ``Conv2D`` and return the raw float32 result.

    ``image`` is ``H x W``; ``kernel`` is ``kh x kw`` and is applied by
    cross-correlation (not flipped), exactly as ``Conv2D`` applies its weights,
    unless ``convolve`` is true (the kernel is flipped in both axes first).
    ``stride`` and ``dilation`` are ``(rows, columns)``; ``padding`` is
    ``'valid'``, ``'same'`` (TensorFlow's padding split) or ``'full'``
    (``d*(k-1)`` on every side). ``border`` is what 'same' and 'full' pad
    with: ``'zero'``, ``'reflect'``, ``'symmetric'``, ``'replicate'`` or
    ``'wrap'`` (see :mod:`convfilter.ops.borders`).

    Keras refuses ``dilation > 1`` together with ``stride > 1``; here that
    combination gives the result the definition gives: the input is padded as
    'same' pads it for that stride, a stride-1 dilated Conv2D runs on it, and
    every ``stride``-th row and column is kept.

    ``engine`` picks how the layer is fed (see :mod:`convfilter.engine.layouts`):
    ``'auto'`` (fast) or ``'plain'`` (the literal ``Conv2D(1, ...)``).

    Raises ``ValueError`` for bad arguments and :class:`ImageTooSmallError`
    when the image is smaller than the dilated kernel under 'valid' padding.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    grid = orient_kernel(check_kernel(kernel), bool(convolve))
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    border = check_border_use(border, padding)
    bias = float(bias)
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    check_engine(engine)
    check_fits(image.shape, grid.shape, stride, padding, dilation)
    return filter_batch(
        image[np.newaxis], grid, stride, padding, dilation, bias, border=border, engine=engine
    )[0]


def filter_batch(
    batch: np.ndarray,
    kernel: np.ndarray,
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    bias: float,
    *,
    border: str = "zero",
    engine: str = "auto",
    tile_size: int | None = None,
) -> np.ndarray:
    """Filter ``N x H x W`` images of one size (arguments already validated); returns ``N x H' x W'``.

    The padding amounts and split are those of
    :func:`convfilter.ops.geometry.padding_amounts`. Zero padding ('same' and
    'full') is written by :func:`convfilter.engine.convolve` into its input
    buffer; every non-zero ``border`` is padded here first. The Conv2D then
    runs with 'valid'. ``engine`` is ``'auto'`` (the fast blocked layout of
    :mod:`convfilter.engine.layouts`) or ``'plain'`` (the literal single-filter
    ``Conv2D``); both give the same result. With ``tile_size``, an output
    larger than ``tile_size x tile_size`` is computed in tiles of that size
    (:mod:`convfilter.engine.tiles`; bit-identical, memory bounded by the tile).
    """
    from convfilter.engine.layouts import convolve
    from convfilter.engine.tiles import filter_tiled, plan_tiles

    batch = np.asarray(batch)
    _, h, w = batch.shape
    if (
        tile_size is not None
        and len(plan_tiles((h, w), kernel.shape, stride, padding, dilation, tile_size)) > 1
    ):
        return filter_tiled(
            batch, kernel, stride, padding, dilation, bias, border=border, tile_size=tile_size, engine=engine
        )
    pad_y = padding_amounts(h, kernel.shape[0], stride[0], dilation[0], padding)
    pad_x = padding_amounts(w, kernel.shape[1], stride[1], dilation[1], padding)
    if border != "zero":
        batch = pad_batch(batch, pad_y, pad_x, border)
        pad_y = pad_x = (0, 0)
    return convolve(
        batch, kernel, stride=stride, dilation=dilation, pad_y=pad_y, pad_x=pad_x, bias=bias, engine=engine
    )
