"""Colour output (``--color``): alpha resampled to the Conv2D's output grid, bands merged back.

The colour channels go through the Conv2D as a batch (one image per
channel, the same kernel for each: what Keras calls a ``DepthwiseConv2D``).
Alpha is never filtered: each operation carries it to its output grid
(:mod:`convfilter.ops.alpha`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from convfilter.io.png import layout_mode
from convfilter.ops.conv import Conv2DSpec


def resample_alpha(
    alpha: np.ndarray,
    kernel_shape: Sequence[int],
    stride: Sequence[int],
    padding: str | Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Alpha (``H x W``) sampled at every output window's middle tap: the Conv2D's output shape."""
    return Conv2DSpec(np.zeros(tuple(kernel_shape)), stride, padding, dilation).carry_alpha(alpha)


def pixel_array(pixels: np.ndarray, alpha: np.ndarray | None, mode: str) -> np.ndarray | None:
    """``C x H x W`` pixels and optional alpha as one ``mode`` array for the PNG writer, or ``None``.

    ``None`` when ``mode`` has no such layout (see
    :func:`convfilter.io.png.layout_mode`). A single band is a view, not a copy.
    """
    if layout_mode(len(pixels) + (alpha is not None), pixels.dtype) != mode:
        return None
    if len(pixels) == 1 and alpha is None:
        return pixels[0]
    return np.stack([*pixels, *([] if alpha is None else [alpha])], axis=-1)


def merge_bands(pixels: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """A Pillow image of ``mode`` from ``C x H x W`` pixels and optional ``H x W`` uint8 alpha.

    A single channel without alpha becomes ``L``, ``I;16`` or ``F`` by its dtype.
    """
    if len(pixels) == 1 and alpha is None:
        return Image.fromarray(np.ascontiguousarray(pixels[0]))
    bands = [Image.fromarray(np.ascontiguousarray(band)) for band in pixels]
    if alpha is not None:
        bands.append(Image.fromarray(np.ascontiguousarray(alpha)))
    return Image.merge(mode, bands)
