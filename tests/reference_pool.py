"""An independent NumPy reference for 2-D max and average pooling, written from the definitions.

Windows are ``size x size`` and move by ``stride``. Under 'same' the input is
padded as TensorFlow pads it (``tf_same_padding`` of :mod:`reference`), and
padded positions never count: the maximum ignores them and the average
divides by the number of real pixels in the window.
"""

from __future__ import annotations

import numpy as np
from reference import tf_same_padding


def pool(x: np.ndarray, kind: str, size: int, stride: tuple[int, int] | None = None, padding: str = "valid"):
    """Max (``kind='max'``) or average (``'avg'``) pooling of 2-D ``x`` in float64, window by window."""
    x = np.asarray(x, dtype=np.float64)
    sy, sx = stride or (size, size)
    real = np.ones_like(x, dtype=bool)
    if padding == "same":
        pads = (tf_same_padding(x.shape[0], size, sy, 1), tf_same_padding(x.shape[1], size, sx, 1))
        x = np.pad(x, pads)
        real = np.pad(real, pads)
    out_h = (x.shape[0] - size) // sy + 1
    out_w = (x.shape[1] - size) // sx + 1
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = x[i * sy : i * sy + size, j * sx : j * sx + size]
            mask = real[i * sy : i * sy + size, j * sx : j * sx + size]
            out[i, j] = window[mask].max() if kind == "max" else window[mask].mean()
    return out
