"""A filter bank: one ``Conv2D(N, ...)`` whose N filters are N kernels, and how their outputs combine.

The textbook edge detector is two filters, Sobel x and y, whose responses
``gx`` and ``gy`` combine into the gradient magnitude ``sqrt(gx**2 + gy**2)``.
A real layer computes every filter at once: its weights have the shape
``(kh, kw, 1, N)`` (rows, columns, input channels, filters), and its output
has N channels. A bank is therefore a :class:`Conv2DSpec` with N filters;
``combine`` says what becomes of them:

* ``stack``: the N channels as they are (an ``H x W x N`` matrix, or one image per filter);
* ``magnitude``: ``sqrt`` of the sum of their squares;
* ``max``: the largest response at each pixel;
* ``sum``: their sum (the same as one filter holding the summed kernels).

No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.conv import COMBINE_TEXT, COMBINES, Conv2DSpec, check_kernel, combine_outputs

__all__ = ["COMBINES", "COMBINE_TEXT", "BankSpec", "combine_outputs", "stack_kernels"]


def stack_kernels(kernels: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """N 2-D kernels of one size as ``(kh, kw, 1, N)`` weights; a size that differs is an ArgumentError."""
    grids = [check_kernel(kernel) for kernel in kernels]
    names = list(names)
    if not grids or len(names) != len(grids):
        raise ArgumentError(f"a filter bank needs one name per kernel, got {len(names)} for {len(grids)}")
    first = grids[0].shape
    for name, grid in zip(names, grids, strict=True):
        if grid.ndim != 2:
            raise ArgumentError(f"{name}: a filter bank's kernels are 2-D, got shape {grid.shape}")
        if grid.shape != first:
            raise ArgumentError(
                f"the filters of one Conv2D all have one size: {names[0]} is {first[0]}x{first[1]}, "
                f"{name} is {grid.shape[0]}x{grid.shape[1]} "
                "(--size N sets the named kernels that take one)"
            )
    return np.stack(grids, axis=-1)[:, :, np.newaxis, :]


def BankSpec(  # noqa: N802  (named as the value it builds, as it was when it was a class)
    kernels: Sequence[np.ndarray],
    names: Sequence[str],
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    border: str = "zero",
    convolve: bool = False,
    combine: str = "magnitude",
    name: str = "bank",
    transpose: bool = False,
    output_padding: int | Sequence[int] | None = None,
) -> Conv2DSpec:
    """N kernels of one size as the N filters of one layer, their outputs merged by ``combine``."""
    return Conv2DSpec(
        stack_kernels(kernels, names),
        stride,
        padding,
        dilation,
        bias,
        border,
        convolve,
        name,
        transpose=transpose,
        output_padding=output_padding,
        combine=combine,
        names=tuple(names),
    )
