"""An independent NumPy reference for a single-filter 2-D cross-correlation.

Written from the definitions, sharing no code with convfilter:

    out[i, j] = bias + sum_{a, b} xp[i*sy + a*dy, j*sx + b*dx] * k[a, b]

where ``xp`` is the input zero-padded as TensorFlow pads it: nothing for
'valid'; for 'same', ``total = max((ceil(n/s) - 1)*s + d*(k-1) + 1 - n, 0)``
zeros per axis, ``total // 2`` before and the rest after.
"""

from __future__ import annotations

import math

import numpy as np


def tf_same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) for one axis."""
    span = d * (k - 1) + 1
    out = math.ceil(n / s)
    total = max((out - 1) * s + span - n, 0)
    return total // 2, total - total // 2


def correlate(
    x: np.ndarray,
    k: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation: tuple[int, int] = (1, 1),
    bias: float = 0.0,
) -> np.ndarray:
    """Cross-correlate 2-D ``x`` with 2-D ``k`` in float64, by explicit loops over the kernel."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    (sy, sx), (dy, dx) = stride, dilation
    kh, kw = k.shape
    if padding == "same":
        x = np.pad(x, (tf_same_padding(x.shape[0], kh, sy, dy), tf_same_padding(x.shape[1], kw, sx, dx)))
    h, w = x.shape
    span_h, span_w = dy * (kh - 1) + 1, dx * (kw - 1) + 1
    out_h = (h - span_h) // sy + 1
    out_w = (w - span_w) // sx + 1
    out = np.full((out_h, out_w), float(bias))
    for a in range(kh):
        for b in range(kw):
            window = x[
                a * dy : a * dy + (out_h - 1) * sy + 1 : sy, b * dx : b * dx + (out_w - 1) * sx + 1 : sx
            ]
            out += k[a, b] * window
    return out


def correlate_channels(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    bias: float = 0.0,
) -> np.ndarray:
    """A Conv2D over every channel: ``x`` ``H x W x C``, ``w`` ``(kh, kw, C, N)``; ``H' x W' x N`` float64.

    ``pads`` are zeros ``(top, bottom, left, right)`` added first (a ZeroPadding2D), then 'valid':

        out[i, j, n] = bias + sum_{a, b, c} xp[i*sy + a*dy, j*sx + b*dx, c] * w[a, b, c, n]
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    top, bottom, left, right = pads
    x = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    kh, kw, _, n = w.shape
    (sy, sx), (dy, dx) = stride, dilation
    out_h = (x.shape[0] - dy * (kh - 1) - 1) // sy + 1
    out_w = (x.shape[1] - dx * (kw - 1) - 1) // sx + 1
    out = np.full((out_h, out_w, n), float(bias))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    out[i, j] += x[i * sy + a * dy, j * sx + b * dx] @ w[a, b]
    return out
