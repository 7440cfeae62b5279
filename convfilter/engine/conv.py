"""Running one convolution: :func:`filter_array` for library users, :func:`filter_batch` for the runner.

Both take the convolution as a :class:`~convfilter.ops.spec.Conv2DSpec`
(``filter_array`` builds it from keywords). TensorFlow is imported only
when a model actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.engine.layouts import check_engine
from convfilter.errors import ArgumentError
from convfilter.ops.borders import pad_batch
from convfilter.ops.geometry import padding_amounts
from convfilter.ops.spec import Conv2DSpec


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
        raise ArgumentError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    op = Conv2DSpec(kernel, stride, padding, dilation, bias, border, convolve)
    check_engine(engine)
    op.output_shape(image.shape)
    return filter_batch(image[np.newaxis], op, engine=engine)[0]


def filter_batch(
    batch: np.ndarray, op: Conv2DSpec, *, engine: str = "auto", tile_size: int | None = None
) -> np.ndarray:
    """Filter ``N x H x W`` images of one size with ``op`` (fitting it); returns ``N x H' x W'`` float32.

    The padding amounts and split are those of
    :func:`convfilter.ops.geometry.padding_amounts`. Zero padding ('same' and
    'full') is written by :func:`convfilter.engine.layouts.convolve` into its input
    buffer; every non-zero ``border`` is padded here first. The Conv2D then
    runs with 'valid'. ``engine`` is ``'auto'`` (the fast blocked layout of
    :mod:`convfilter.engine.layouts`) or ``'plain'`` (the literal single-filter
    ``Conv2D``); both give the same result. With ``tile_size``, an output
    larger than ``tile_size x tile_size`` is computed in tiles of that size
    (:mod:`convfilter.engine.tiles`: the same sums, memory bounded by the tile).
    """
    from convfilter.engine.tiles import convolve_op, filter_tiled, plan_tiles

    batch = np.asarray(batch)
    _, h, w = batch.shape
    if tile_size is not None and len(plan_tiles((h, w), op, tile_size)) > 1:
        return filter_tiled(batch, op, tile_size=tile_size, engine=engine)
    (kh, kw), (sy, sx), padding, (dy, dx) = op.geometry
    pad_y = padding_amounts(h, kh, sy, dy, padding)
    pad_x = padding_amounts(w, kw, sx, dx, padding)
    if op.border != "zero":
        batch = pad_batch(batch, pad_y, pad_x, op.border)
        pad_y = pad_x = (0, 0)
    return convolve_op(batch, op, pad_y, pad_x, engine)
