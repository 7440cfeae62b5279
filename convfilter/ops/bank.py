"""A filter bank: one ``Conv2D(N, ...)`` whose N filters are N kernels, and how their outputs combine.

The textbook edge detector is two filters, Sobel x and y, whose responses
``gx`` and ``gy`` combine into the gradient magnitude ``sqrt(gx**2 + gy**2)``.
A real layer computes every filter at once: its weights have the shape
``(kh, kw, 1, N)`` (rows, columns, input channels, filters), and its output
has N channels. ``combine`` says what becomes of them:

* ``stack``: the N channels as they are (an ``H x W x N`` matrix, or one image per filter);
* ``magnitude``: ``sqrt`` of the sum of their squares;
* ``max``: the largest response at each pixel;
* ``sum``: their sum (the same as one filter holding the summed kernels).

No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.kernels import is_averaging
from convfilter.ops.spec import Conv2DSpec, check_kernel

COMBINES = ("stack", "magnitude", "max", "sum")
COMBINE_TEXT = {
    "stack": "the {n} outputs kept as {n} channels",
    "magnitude": "sqrt of the sum of the {n} outputs squared",
    "max": "the largest of the {n} outputs at each pixel",
    "sum": "the sum of the {n} outputs",
}


def combine_outputs(responses: np.ndarray, combine: str) -> np.ndarray:
    """Merge ``... x N`` responses (last axis) as ``combine`` says; ``stack`` returns them as they are."""
    if combine == "stack":
        return responses
    if combine == "magnitude":
        return np.sqrt(np.sum(np.square(responses, dtype=np.float32), axis=-1, dtype=np.float32))
    if combine == "max":
        return responses.max(axis=-1)
    return responses.sum(axis=-1, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class BankSpec:
    """N kernels of one size as the N filters of one ``Conv2D``, their outputs merged by ``combine``.

    ``stride``, ``padding``, ``dilation``, ``bias`` (one per filter, the same),
    ``border`` and ``convolve`` mean what they mean for
    :class:`~convfilter.ops.spec.Conv2DSpec`, and are validated by it.
    """

    kernels: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    border: str = "zero"
    convolve: bool = False
    combine: str = "magnitude"
    name: str = "bank"

    def __post_init__(self) -> None:
        kernels = tuple(check_kernel(kernel) for kernel in self.kernels)
        names = tuple(self.names)
        if len(kernels) < 1 or len(names) != len(kernels):
            raise ArgumentError(
                f"a filter bank needs one name per kernel, got {len(names)} for {len(kernels)}"
            )
        if self.combine not in COMBINES:
            raise ArgumentError(
                f"The `combine` argument must be one of {', '.join(map(repr, COMBINES))}. "
                f"Received: combine={self.combine!r}",
                param="--combine",
            )
        first = kernels[0].shape
        for name, kernel in zip(names, kernels, strict=True):
            if kernel.shape != first:
                raise ArgumentError(
                    f"the filters of one Conv2D all have one size: {names[0]} is {first[0]}x{first[1]}, "
                    f"{name} is {kernel.shape[0]}x{kernel.shape[1]} "
                    "(--size N sets the named kernels that take one)"
                )
        object.__setattr__(self, "kernels", kernels)
        object.__setattr__(self, "names", names)
        layer = Conv2DSpec(kernels[0], self.stride, self.padding, self.dilation, self.bias, self.border)
        for key in ("stride", "padding", "dilation", "bias", "border"):
            object.__setattr__(self, key, getattr(layer, key))
        object.__setattr__(self, "convolve", bool(self.convolve))

    @property
    def filters(self) -> int:
        """N, the number of filters."""
        return len(self.kernels)

    @cached_property
    def geometry_op(self) -> Conv2DSpec:
        """A single-filter Conv2DSpec with the bank's geometry: its shapes, padding and layer plan."""
        return Conv2DSpec(self.kernels[0], self.stride, self.padding, self.dilation, self.bias, self.border)

    @cached_property
    def weights(self) -> np.ndarray:
        """The layer's weights, ``(kh, kw, 1, N)``: each kernel as given, flipped for ``convolve``."""
        grids = [kernel[::-1, ::-1] if self.convolve else kernel for kernel in self.kernels]
        return np.ascontiguousarray(np.stack(grids, axis=-1)[:, :, np.newaxis, :])

    @property
    def window(self) -> tuple[int, int]:
        """The kernels' ``(rows, columns)``."""
        return self.kernels[0].shape

    @property
    def params(self) -> int:
        """Trainable weights: ``kh*kw*N``, plus N biases when there is a bias."""
        kh, kw = self.window
        return (kh * kw + int(self.bias != 0.0)) * self.filters

    @property
    def label(self) -> str:
        return "+".join(self.names)

    @property
    def stages(self) -> tuple[BankSpec]:
        return (self,)

    @property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], str, tuple[int, int]]:
        """``(window, stride, padding, dilation)``: where each output window lies."""
        return self.geometry_op.geometry

    @property
    def averaging(self) -> bool:
        weights = [kernel[::-1, ::-1] if self.convolve else kernel for kernel in self.kernels]
        if self.bias != 0.0:
            return False
        if self.combine == "sum":
            return is_averaging(np.sum(weights, axis=0))
        return self.combine != "magnitude" and all(is_averaging(w) for w in weights)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        return self.geometry_op.output_shape(shape)

    def describe(self) -> str:
        conv = self.geometry_op.describe().replace("Conv2D(1,", f"Conv2D({self.filters},")
        return f"{conv} -> {COMBINE_TEXT[self.combine].format(n=self.filters)}"
