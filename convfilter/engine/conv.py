"""Running one convolution: :func:`filter_array` for library users, :func:`filter_batch` for the runner.

Both take the convolution as a :class:`~convfilter.ops.spec.Conv2DSpec`
(``filter_array`` builds it from keywords). TensorFlow is imported only
when a model actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.engine.layouts import check_engine
from convfilter.engine.tiles import filter_tiled
from convfilter.errors import ArgumentError
from convfilter.ops.conv import Conv2DSpec


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

    A 4-D ``kernel`` ``(kh, kw, C, N)``, as ``Conv2D`` holds its weights, reads
    an ``H x W x C`` ``image`` (channels last) with N filters: the result is
    ``H' x W'`` for N = 1, ``H' x W' x N`` otherwise.

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
    op = Conv2DSpec(kernel, stride, padding, dilation, bias, border, convolve, combine="stack")
    check_engine(engine)
    if op.channels == 1 and (image.ndim != 2 or image.size == 0):
        raise ArgumentError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    if op.channels > 1:
        if image.ndim != 3 or image.size == 0 or image.shape[2] != op.channels:
            raise ArgumentError(
                f"image must be a non-empty H x W x {op.channels} array for a kernel of shape "
                f"{op.kernel.shape}, got shape {image.shape}"
            )
        image = np.moveaxis(image, -1, 0)
    else:
        image = image[np.newaxis]
    op.output_shape(image.shape[1:])
    return filter_batch(image, op, engine=engine)[0]


def filter_batch(
    batch: np.ndarray, op: Conv2DSpec, *, engine: str = "auto", tile_size: int | None = None
) -> np.ndarray:
    """Filter ``B*C x H x W`` images of one size with ``op`` (fitting it); ``B x H' x W'`` float32.

    ``C`` is ``op.channels``: the C planes of one image follow each other. A
    bank whose ``combine`` is 'stack' gives ``B x H' x W' x N``. The padding
    (the amounts of :meth:`~convfilter.ops.conv.Conv2DSpec.pads`) is written as
    zeros into the engine's input buffer, or cut with the border's pixels;
    the layer then runs 'valid'. ``engine`` is ``'auto'`` (the fast blocked
    layout of :mod:`convfilter.engine.layouts`, for one input channel) or
    ``'plain'`` (the literal ``Conv2D``); both give the same result. With
    ``tile_size``, an output larger than ``tile_size x tile_size`` is computed
    in tiles of that size (:mod:`convfilter.engine.tiles`: the same sums,
    memory bounded by the tile).
    """
    check_engine(engine)
    return filter_tiled(np.asarray(batch), op, tile_size=tile_size, engine=engine)
