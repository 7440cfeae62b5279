"""An independent NumPy reference for a single-filter transposed convolution (Keras ``Conv2DTranspose``).

Written from the definitions, sharing no code with convfilter. Every input
pixel scatters the kernel, times its value, into a grid:

    full[i*sy + a*dy, j*sx + b*dx] += x[i, j] * k[a, b]

of ``(n - 1)*s + d*(k - 1) + 1`` values per axis. The output length is
Keras's ``deconv_output_length``; the output starts ``before`` values into
``full`` (0 for 'valid', TensorFlow's 'same' split of the excess, odd one
after) and is extended with zeros where it runs past ``full``.
"""

from __future__ import annotations

import numpy as np


def keras_length(n: int, k: int, s: int, d: int, padding: str, output_padding: int | None) -> int:
    """Keras's ``deconv_output_length`` for one axis."""
    kd = k + (k - 1) * (d - 1)
    if output_padding is None:
        return n * s + max(kd - s, 0) if padding == "valid" else n * s
    pad = kd // 2 if padding == "same" else 0
    return (n - 1) * s + kd - 2 * pad + output_padding


def scatter_add(
    x: np.ndarray,
    k: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation: tuple[int, int] = (1, 1),
    output_padding: tuple[int, int] | None = None,
    bias: float = 0.0,
) -> np.ndarray:
    """The transposed convolution of 2-D ``x`` by 2-D ``k``, in float64, by explicit loops."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    (n_h, n_w), (kh, kw) = x.shape, k.shape
    (sy, sx), (dy, dx) = stride, dilation
    full = np.zeros(((n_h - 1) * sy + dy * (kh - 1) + 1, (n_w - 1) * sx + dx * (kw - 1) + 1))
    for i in range(n_h):
        for j in range(n_w):
            for a in range(kh):
                for b in range(kw):
                    full[i * sy + a * dy, j * sx + b * dx] += x[i, j] * k[a, b]
    lengths = [
        keras_length(
            x.shape[axis],
            k.shape[axis],
            stride[axis],
            dilation[axis],
            padding,
            None if output_padding is None else output_padding[axis],
        )
        for axis in (0, 1)
    ]
    starts = [max(full.shape[axis] - lengths[axis], 0) // 2 if padding == "same" else 0 for axis in (0, 1)]
    grown = np.zeros((full.shape[0] + lengths[0], full.shape[1] + lengths[1]))
    grown[: full.shape[0], : full.shape[1]] = full
    return grown[starts[0] : starts[0] + lengths[0], starts[1] : starts[1] + lengths[1]] + bias
