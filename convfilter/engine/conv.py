"""Running one convolution: :func:`filter_array` for library users, :func:`filter_batch` for the runner.

Both take the convolution as a :class:`~convfilter.ops.spec.Conv2DSpec`
(``filter_array`` builds it from keywords). TensorFlow is imported only
when a model actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.engine.layouts import check_engine, convolve
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
    from convfilter.engine.tiles import filter_tiled

    check_engine(engine)
    return filter_tiled(np.asarray(batch), op, tile_size=tile_size, engine=engine)


def responses(
    planes: np.ndarray, op: Conv2DSpec, pad_y: tuple[int, int], pad_x: tuple[int, int], engine: str = "auto"
) -> np.ndarray:
    """Every filter's raw output for ``planes`` (``B*C x h x w``, zeros ``pad_y``/``pad_x`` around them).

    Returns ``B x h' x w' x N`` float32. A convolution runs 'valid' on the
    padded planes; a transposed convolution runs 'valid' without output
    padding (its whole scatter-add), the caller cuts its part out.
    """
    if op.layout == "blocked":  # one input channel: each filter through the fast layouts, same window
        grids = op.weights4[:, :, 0, :]
        outputs = [
            convolve(
                planes,
                grids[:, :, i],
                stride=op.stride,
                dilation=op.dilation,
                pad_y=pad_y,
                pad_x=pad_x,
                bias=op.bias,
                engine=engine,
            )
            for i in range(op.filters)
        ]
        return outputs[0][..., np.newaxis] if len(outputs) == 1 else np.stack(outputs, axis=-1)
    from convfilter.engine.model import layer_model, run_model

    count, h, w = planes.shape
    channels = op.channels
    images = planes.reshape(count // channels, channels, h, w)
    if any(pad_y) or any(pad_x):
        images = np.pad(images, [(0, 0), (0, 0), tuple(pad_y), tuple(pad_x)])
    tensor = np.ascontiguousarray(images.transpose(0, 2, 3, 1), dtype=np.float32)
    return run_model(layer_model(op), op, tensor)
