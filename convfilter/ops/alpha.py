"""Where alpha comes from on a layer's output grid: alpha is never filtered, only carried.

A convolution's output pixel ``(i, j)`` takes the input alpha under the
kernel's middle tap of its window, i.e. at row ``i*sy + ((kh-1)//2)*dy - pad_top``
and column ``j*sx + ((kw-1)//2)*dx - pad_left``, clamped to the image. For an
odd kernel that is the window's centre; with 'same' padding and stride 1 the
alpha comes out unchanged. A transposed convolution's output pixel takes the
alpha of the input pixel whose kernel's middle tap lands nearest to it (ties to
the later one). Pooling carries it as a convolution with its window does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def window_anchor(
    alpha: np.ndarray,
    out: Sequence[int],
    pads: Sequence[Sequence[int]],
    window: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int] = (1, 1),
) -> np.ndarray:
    """Alpha (``H x W``) sampled at the middle tap of every output window."""
    indices = []
    for axis in (0, 1):
        k, s, d = window[axis], stride[axis], dilation[axis]
        index = np.arange(out[axis]) * s + ((k - 1) // 2) * d - pads[axis][0]
        indices.append(np.clip(index, 0, alpha.shape[axis] - 1))
    return alpha[np.ix_(*indices)]


def nearest_source(alpha: np.ndarray, out: Sequence[int], crops: Sequence[Sequence[int]], op) -> np.ndarray:
    """Alpha for a transposed convolution's output: the input pixel whose middle tap lands nearest."""
    indices = []
    for axis in (0, 1):
        k, s, d = op.window[axis], op.stride[axis], op.dilation[axis]
        landed = np.arange(out[axis]) + crops[axis][0] - ((k - 1) // 2) * d
        indices.append(np.clip((landed + s // 2) // s, 0, alpha.shape[axis] - 1))
    return alpha[np.ix_(*indices)]
