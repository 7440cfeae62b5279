"""The transposed convolution (Keras ``Conv2DTranspose``): a :class:`Conv2DSpec` with ``transpose=True``.

A transposed convolution runs a convolution backwards: every input pixel
adds the kernel, times its value, into the output at ``stride`` times its
position (a scatter-add), so a stride of 2 doubles the size. It is the
adjoint of the convolution with the same geometry:
``<conv(x), y> == <x, conv_transpose(y)>``. Output sizes follow Keras's
``deconv_output_length`` (:func:`convfilter.ops.geometry.transpose_length`),
including ``output_padding``, which picks one of the ``stride`` sizes that a
convolution would map to the same input size. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.ops.conv import (
    TRANSPOSE_PADDINGS,
    Conv2DSpec,
    check_layer_options,
    check_output_padding,
)

__all__ = ["TRANSPOSE_PADDINGS", "TransposeSpec", "check_layer_options", "check_output_padding"]


def TransposeSpec(  # noqa: N802  (named as the value it builds, as it was when it was a class)
    kernel: np.ndarray | Sequence,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    output_padding: int | Sequence[int] | None = None,
    bias: float = 0.0,
    convolve: bool = False,
    name: str = "conv",
) -> Conv2DSpec:
    """One ``Conv2DTranspose``: the :class:`Conv2DSpec` with its direction flipped."""
    return Conv2DSpec(
        kernel,
        stride,
        padding,
        dilation,
        bias,
        convolve=convolve,
        name=name,
        transpose=True,
        output_padding=output_padding,
    )
