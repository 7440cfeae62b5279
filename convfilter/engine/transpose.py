"""Running one transposed convolution from Python: Keras's ``Conv2DTranspose`` (``--transpose``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.engine.conv import filter_batch
from convfilter.errors import ArgumentError
from convfilter.ops.transpose import TransposeSpec


def transpose_array(
    image: np.ndarray,
    kernel: np.ndarray | Sequence,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    output_padding: int | Sequence[int] | None = None,
    bias: float = 0.0,
    convolve: bool = False,
) -> np.ndarray:
    """Run a 2-D array through a single-filter Keras ``Conv2DTranspose``; returns the float32 result.

    Every input pixel adds ``kernel`` (not flipped, unless ``convolve``) times
    its value into the output at ``stride`` times its position; ``padding``
    ('valid' or 'same') and ``output_padding`` give the output size exactly
    as Keras does (:func:`convfilter.ops.geometry.transpose_length`).
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ArgumentError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    op = TransposeSpec(kernel, stride, padding, dilation, output_padding, bias, convolve)
    op.output_shape(image.shape)
    return filter_batch(image[np.newaxis], op)[0]
