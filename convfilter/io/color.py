"""Colour output (``--color``): alpha resampled to the Conv2D's output grid, bands merged back.

The colour channels go through the Conv2D as a batch (one image per
channel, the same kernel for each). Alpha is never filtered: output pixel
``(i, j)`` takes the input alpha under the kernel's middle tap of its window,
i.e. at row ``i*sy + ((kh-1)//2)*dy - pad_top`` and column
``j*sx + ((kw-1)//2)*dx - pad_left`` (``pad_*`` from 'same' padding, 0 for
'valid'), clamped to the image. For an odd kernel that is the window's centre;
with 'same' padding and stride 1 the alpha comes out unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from convfilter.io.png import layout_mode
from convfilter.ops.geometry import output_length, padding_amounts


def anchor_indices(n: int, k: int, s: int, d: int, padding: str) -> np.ndarray:
    """Input index of the middle tap of every output window along one axis (clamped to ``0..n-1``)."""
    before, _ = padding_amounts(n, k, s, d, padding)
    out = output_length(n, k, s, d, padding)
    return np.clip(np.arange(out) * s + ((k - 1) // 2) * d - before, 0, n - 1)


def resample_alpha(
    alpha: np.ndarray,
    kernel_shape: Sequence[int],
    stride: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> np.ndarray:
    """Alpha (``H x W``) sampled at every output window's middle tap: the Conv2D's output shape."""
    h, w = alpha.shape
    rows = anchor_indices(h, kernel_shape[0], stride[0], dilation[0], padding)
    cols = anchor_indices(w, kernel_shape[1], stride[1], dilation[1], padding)
    return alpha[np.ix_(rows, cols)]


def transpose_alpha(alpha: np.ndarray, op) -> np.ndarray:
    """Alpha for a transposed convolution's output (``op``, a TransposeSpec): nearest input pixel.

    Output pixel ``t`` takes the alpha of the input pixel whose kernel's
    middle tap lands nearest to it (ties to the later one), clamped to the image.
    """
    out = op.output_shape(alpha.shape)
    crops = op.crops(alpha.shape)
    indices = []
    for axis in (0, 1):
        k, s, d = op.window[axis], op.stride[axis], op.dilation[axis]
        landed = np.arange(out[axis]) + crops[axis][0] - ((k - 1) // 2) * d
        indices.append(np.clip((landed + s // 2) // s, 0, alpha.shape[axis] - 1))
    return alpha[np.ix_(*indices)]


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
