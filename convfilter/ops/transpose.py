"""The transposed convolution (Keras ``Conv2DTranspose``) as one frozen value, validated once.

A transposed convolution runs a convolution backwards: every input pixel
adds the kernel, times its value, into the output at ``stride`` times its
position (a scatter-add), so a stride of 2 doubles the size. It is the
adjoint of :class:`~convfilter.ops.spec.Conv2DSpec` with the same geometry:
``<conv(x), y> == <x, conv_transpose(y)>``. Output sizes follow Keras's
``deconv_output_length`` (:func:`convfilter.ops.geometry.transpose_length`),
including ``output_padding``, which picks one of the ``stride`` sizes that a
convolution would map to the same input size. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.geometry import dilated_extent, standardize_pair, transpose_crop, transpose_length
from convfilter.ops.kernels import is_averaging
from convfilter.ops.spec import check_bias, check_kernel

TRANSPOSE_PADDINGS = ("valid", "same")


def check_output_padding(
    output_padding: int | Sequence[int] | None, stride: tuple[int, int]
) -> tuple[int, int] | None:
    """``output_padding`` as a pair of integers ``0 <= p < stride`` (or ``None``), else ArgumentError."""
    if output_padding is None:
        return None
    error = (
        "The `output_padding` argument must be a tuple of 2 integers >= 0. "
        f"Received: output_padding={output_padding!r}"
    )
    pair = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    try:
        pair = tuple(pair)
    except TypeError:
        raise ArgumentError(error, param="--output-padding") from None
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair):
        raise ArgumentError(error, param="--output-padding")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < 0:
        raise ArgumentError(error, param="--output-padding")
    if pair[0] >= stride[0] or pair[1] >= stride[1]:
        raise ArgumentError(
            "The `output_padding` argument must be smaller than the stride on each axis (it picks one of "
            f"the stride's output sizes). Received: output_padding={pair}, strides={stride}",
            param="--output-padding",
        )
    return pair


def check_layer_options(transpose: bool, output_padding, border: str) -> None:
    """Refuse what only the other layer takes: output padding without ``transpose``, a border with it."""
    if not transpose and output_padding is not None:
        message = "--output-padding needs --transpose (a Conv2D has no output padding)"
        raise ArgumentError(message, param="--output-padding")
    if transpose and border != "zero":
        raise ArgumentError(
            f"border {border!r}: a transposed convolution pads nothing, so there is no border to choose; "
            "leave out --border",
            param="--border",
        )


@dataclass(frozen=True, eq=False)
class TransposeSpec:
    """One single-filter ``Conv2DTranspose``: ``kernel`` scattered at every input pixel, ``stride`` apart.

    ``padding`` is 'valid' or 'same' (what Keras's layer takes); ``dilation``
    spreads the taps; ``output_padding`` (``None`` or a pair below the
    stride) adds rows and columns at the bottom and right. ``convolve``
    flips the kernel, as for :class:`~convfilter.ops.spec.Conv2DSpec`.
    """

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] | None = None
    bias: float = 0.0
    convolve: bool = False
    name: str = "conv"

    def __post_init__(self) -> None:
        padding = self.padding
        if not isinstance(padding, str) or padding.lower() not in TRANSPOSE_PADDINGS:
            raise ArgumentError(
                "The `padding` argument of a transposed convolution must be one of 'valid', 'same' "
                f"(as Conv2DTranspose takes). Received: padding={padding!r}",
                param="--padding",
            )
        stride = standardize_pair(self.stride, "stride")
        checked = {
            "kernel": check_kernel(self.kernel),
            "stride": stride,
            "padding": padding.lower(),
            "dilation": standardize_pair(self.dilation, "dilation"),
            "output_padding": check_output_padding(self.output_padding, stride),
            "bias": check_bias(self.bias),
            "convolve": bool(self.convolve),
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        self._check_same_even()

    def _check_same_even(self) -> None:
        """Refuse the one case Keras's formula gets wrong: 'same', an even (dilated) kernel, output_padding 0.

        The formula then gives ``(n - 1)*s`` rows, which a 'same' convolution
        maps to ``n - 1``, not back to ``n``: TensorFlow fails on it.
        """
        if self.output_padding is None or self.padding != "same":
            return
        for axis, what in ((0, "rows"), (1, "columns")):
            extent = dilated_extent(self.window[axis], self.dilation[axis])
            if extent % 2 == 0 and self.output_padding[axis] == 0:
                raise ArgumentError(
                    f"output_padding 0 with 'same' padding and a kernel {extent} {what} wide (even) gives "
                    "(n - 1) * stride, which a 'same' convolution does not map back to n; "
                    "give output padding >= 1 there, or leave it out",
                    param="--output-padding",
                )

    border = "zero"
    """A transposed convolution pads with nothing: there is no border to choose."""

    @cached_property
    def weights(self) -> np.ndarray:
        """The kernel the layer applies: flipped in both axes for ``convolve``."""
        return np.ascontiguousarray(self.kernel[::-1, ::-1]) if self.convolve else self.kernel

    @cached_property
    def layer_weights(self) -> np.ndarray:
        """:attr:`weights` with ``dilation - 1`` zeros between the taps: what the layer holds.

        TensorFlow's CPU kernels have no dilated transposed convolution, so the
        dilation is written into the kernel; the sums are the same.
        """
        kh, kw = self.window
        dy, dx = self.dilation
        grid = np.zeros((dilated_extent(kh, dy), dilated_extent(kw, dx)))
        grid[::dy, ::dx] = self.weights
        return grid

    @property
    def window(self) -> tuple[int, int]:
        """The kernel's ``(rows, columns)``."""
        return self.kernel.shape

    @property
    def label(self) -> str:
        """``name`` and ``transposed`` (and ``flipped`` for ``convolve``)."""
        return self.name + (" flipped" if self.convolve else "") + " transposed"

    @property
    def stages(self) -> tuple[TransposeSpec]:
        return (self,)

    @property
    def averaging(self) -> bool:
        # Every output is a sum of some of the non-negative weights (at most all) times inputs:
        # it stays in the input's range, as a convolution with an averaging kernel does.
        return is_averaging(self.weights)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            transpose_length(
                int(shape[axis]),
                self.window[axis],
                self.stride[axis],
                self.dilation[axis],
                self.padding,
                None if self.output_padding is None else self.output_padding[axis],
            )
            for axis in (0, 1)
        )

    def crops(self, shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))`` cut off the full scatter-add result (negative: zeros added)."""
        out = self.output_shape(shape)
        return tuple(  # type: ignore[return-value]
            transpose_crop(
                int(shape[axis]),
                self.window[axis],
                self.stride[axis],
                self.dilation[axis],
                self.padding,
                out[axis],
            )
            for axis in (0, 1)
        )

    def describe(self) -> str:
        kh, kw = self.layer_weights.shape
        text = (
            f"Conv2DTranspose(1, ({kh}, {kw}), strides={self.stride}, padding='{self.padding}', "
            f"output_padding={self.output_padding}, use_bias={self.bias != 0.0})"
        )
        if self.dilation != (1, 1):
            text += (
                f" holding the {self.window[0]}x{self.window[1]} kernel with dilation "
                f"{self.dilation[0]}x{self.dilation[1]} written in as zeros"
            )
        return text
