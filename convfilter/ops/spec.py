"""The operations convfilter runs, each one frozen value validated once on construction.

* :class:`Conv2DSpec`: one single-filter ``Conv2D`` (kernel, stride,
  padding, dilation, bias, border, ``convolve``);
* :class:`PoolSpec`: a ``MaxPooling2D`` or ``AveragePooling2D``;
* :class:`ChainSpec`: a sequence of those, run as one Keras model.

All three answer the same small protocol (:class:`Operation`): their output
shape for an input shape, a one-line ``describe()`` of the Keras layers,
whether they keep values in the input's range (for ``--range auto``), and
the sequence of single layers (``stages``) that :mod:`convfilter.engine.stack`
builds into Keras. Every layer below the command line takes one of these
values, never loose arguments. A bad argument raises
:class:`~convfilter.errors.ArgumentError` naming it and echoing what was
received, as Keras's own ``standardize_tuple`` does. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from convfilter.errors import ArgumentError, ImageTooSmallError
from convfilter.ops.alpha import window_anchor
from convfilter.ops.conv import (
    Conv2DSpec,
    check_bias,
    check_border_use,
    check_kernel,
    too_small,
)
from convfilter.ops.geometry import KERAS_PADDINGS, output_shape, padding_amounts, standardize_pair
from convfilter.ops.kernels import MAX_KERNEL_SIZE

__all__ = [
    "ChainSpec",
    "Conv2DSpec",
    "Operation",
    "PoolSpec",
    "Stage",
    "check_bias",
    "check_border_use",
    "check_kernel",
    "fits",
]

POOLS = ("max", "avg")
POOL_PADDINGS = KERAS_PADDINGS


class Operation(Protocol):
    """What the runner and the engine need of an operation; every operation answers for itself."""

    name: str

    @property
    def stages(self) -> tuple[Conv2DSpec | PoolSpec, ...]:
        """The single layers, in order (one for a convolution or a pool)."""

    @property
    def averaging(self) -> bool:
        """True when results stay in the input's range (``--range auto`` then means ``clip``)."""

    @property
    def layout(self) -> str:
        """Which engine layout runs it (:mod:`convfilter.engine.apply`)."""

    @property
    def tiles(self) -> bool:
        """True when its output can be computed tile by tile (:meth:`Conv2DSpec.input_window`)."""

    @property
    def channels(self) -> int:
        """Input channels one output reads (1: every channel of an image is filtered on its own)."""

    @property
    def out_channels(self) -> int:
        """Channels of one output (a bank's ``stack`` keeps N)."""

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """The output ``(H', W')`` for an ``H x W`` input, or :class:`ImageTooSmallError`."""

    def carry_alpha(self, alpha: np.ndarray) -> np.ndarray:
        """Alpha (``H x W``, never filtered) on the output grid."""

    def describe(self) -> str:
        """One line: the Keras layer(s) that compute it."""


def fits(
    image_shape: Sequence[int],
    window: Sequence[int],
    stride: tuple[int, int],
    padding: str | tuple,
    dilation: tuple[int, int],
    what: str = "kernel",
) -> tuple[int, int]:
    """The output shape of a window over an image, or :class:`ImageTooSmallError` if it would be empty."""
    out = output_shape(image_shape, window, stride, padding, dilation)
    if min(out) < 1:
        raise too_small(tuple(image_shape), window, dilation, what, padding)
    return out


@dataclass(frozen=True)
class PoolSpec:
    """A ``MaxPooling2D`` (``kind='max'``) or ``AveragePooling2D`` (``'avg'``) with a square window.

    ``stride`` defaults to ``size``, as in Keras.
    """

    kind: str
    size: int = 2
    stride: tuple[int, int] | None = None
    padding: str = "valid"

    def __post_init__(self) -> None:
        if self.kind not in POOLS:
            raise ArgumentError(
                f"The `kind` argument must be one of 'max', 'avg'. Received: kind={self.kind!r}"
            )
        size = self.size
        if (
            isinstance(size, bool)
            or not isinstance(size, int | np.integer)
            or not 1 <= size <= MAX_KERNEL_SIZE
        ):
            raise ArgumentError(f"pool size must be an integer between 1 and {MAX_KERNEL_SIZE}, got {size!r}")
        stride = (int(size), int(size)) if self.stride is None else standardize_pair(self.stride, "stride")
        padding = self.padding
        if not isinstance(padding, str) or padding.lower() not in POOL_PADDINGS:
            raise ArgumentError(
                f"The `padding` argument must be one of 'valid', 'same'. Received: padding={padding!r}"
            )
        object.__setattr__(self, "size", int(size))
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding.lower())

    @property
    def name(self) -> str:
        """``'max pool'`` or ``'avg pool'``."""
        return f"{self.kind} pool"

    label = name

    @property
    def window(self) -> tuple[int, int]:
        """The pooling window ``(size, size)``."""
        return (self.size, self.size)

    @property
    def stages(self) -> tuple[PoolSpec]:
        return (self,)

    @property
    def averaging(self) -> bool:
        return True

    layout = "pool"
    tiles = False
    params = 0
    channels = 1
    filters = 1
    out_channels = 1
    transpose = False

    @property
    def layer_name(self) -> str:
        """``max_pool`` or ``avg_pool``."""
        return f"{self.kind}_pool"

    def stage_name(self, number: int) -> str:
        """The layer name as stage ``number`` of a stack: ``stage2_max_pool``."""
        return f"stage{number}_{self.layer_name}"

    def pads(self, shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))`` as 'same' pooling pads (none for 'valid')."""
        return tuple(  # type: ignore[return-value]
            padding_amounts(int(shape[a]), self.size, self.stride[a], 1, self.padding) for a in (0, 1)
        )

    def carry_alpha(self, alpha: np.ndarray) -> np.ndarray:
        out, pads = self.output_shape(alpha.shape), self.pads(alpha.shape)
        return window_anchor(alpha, out, pads, self.window, self.stride)

    def needs_fixed_shape(self) -> bool:
        return False

    def add_layers(self, keras, tensor, in_shape, name: str):
        """Append the pooling layer to ``tensor`` (``keras`` is the Keras module)."""
        layer = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[self.kind]
        return layer(pool_size=self.window, strides=self.stride, padding=self.padding, name=name)(tensor)

    def keras_weights(self) -> list:
        """A pooling layer holds no weights."""
        return []

    @property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], str, tuple[int, int]]:
        """``(window, stride, padding, dilation)``: where each output window lies."""
        return self.window, self.stride, self.padding, (1, 1)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        return fits(tuple(shape), self.window, self.stride, self.padding, (1, 1), what="pool")

    def describe(self) -> str:
        layer = "MaxPooling2D" if self.kind == "max" else "AveragePooling2D"
        return f"{layer}(pool_size={self.window}, strides={self.stride}, padding='{self.padding}')"


Stage = Conv2DSpec | PoolSpec


def input_channels(stages: Sequence[Stage]) -> int:
    """The channels a stack of layers reads: the first convolution's C (pooling keeps channels)."""
    return next((stage.channels for stage in stages if isinstance(stage, Conv2DSpec)), 1)


def check_channel_flow(stages: Sequence[Stage]) -> None:
    """Refuse stages whose channels do not follow on, as Keras would refuse to build the model.

    A convolution with N filters hands N channels to the next stage, which must
    read N (weights ``(kh, kw, N, ...)``); pooling keeps the channels; the last
    stage gives one channel, the one OUTPUT holds.
    """
    flow = input_channels(stages)
    for number, stage in enumerate(stages, start=1):
        if not isinstance(stage, Conv2DSpec):
            continue
        if stage.channels != flow:
            raise ArgumentError(
                f"stage {number} ({stage.name}) reads {stage.channels} channel(s), but the stage before "
                f"it gives {flow}"
            )
        if stage.filters > 1 and stage.combine != "stack":
            raise ArgumentError(
                f"stage {number} ({stage.name}): in one model the {stage.filters} filters' outputs go on "
                f"as {stage.filters} channels; combine {stage.combine!r} is not a layer (use 'stack')"
            )
        flow = stage.filters
    if flow != 1:
        raise ArgumentError(
            f"the last stage gives {flow} channels; a chain writes one: end with a stage that reads "
            f"them all (a 4-D kernel of shape (kh, kw, {flow}, 1))"
        )


@dataclass(frozen=True)
class ChainSpec:
    """Several stages in one Keras model: intermediate results stay float32 from stage to stage.

    Stages with a non-zero border are refused: that padding happens outside
    Keras and cannot sit between two layers of one model.
    """

    stages: tuple[Stage, ...] = field(default=())
    name: str = "chain"

    def __post_init__(self) -> None:
        stages = tuple(self.stages)
        if not stages:
            raise ArgumentError("a chain needs at least one stage")
        for number, stage in enumerate(stages, start=1):
            if not isinstance(stage, Conv2DSpec | PoolSpec):
                raise ArgumentError(f"stage {number} must be a Conv2DSpec or PoolSpec, got {stage!r}")
            if isinstance(stage, Conv2DSpec) and stage.border != "zero":
                raise ArgumentError(
                    f"stage {number} ({stage.name}): border {stage.border!r} is padded outside Keras and "
                    "cannot be part of one model; use --border zero"
                )
        check_channel_flow(stages)
        object.__setattr__(self, "stages", stages)

    @property
    def averaging(self) -> bool:
        return all(stage.averaging and getattr(stage, "bias", 0.0) == 0.0 for stage in self.stages)

    layout = "chain"
    tiles = False

    @property
    def channels(self) -> int:
        return input_channels(self.stages)

    out_channels = 1

    def carry_alpha(self, alpha: np.ndarray) -> np.ndarray:
        for stage in self.stages:
            alpha = stage.carry_alpha(alpha)
        return alpha

    def shapes(self, shape: Sequence[int]) -> list[tuple[int, int]]:
        """Every stage's output shape in turn; the error names the stage (``stage 2 (sobel-x): ...``)."""
        shapes = []
        current = (int(shape[0]), int(shape[1]))
        for number, stage in enumerate(self.stages, start=1):
            try:
                current = stage.output_shape(current)
            except ImageTooSmallError as exc:
                raise ImageTooSmallError(f"stage {number} ({stage.name}): {exc}") from None
            shapes.append(current)
        return shapes

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        return self.shapes(shape)[-1]

    def describe(self) -> str:
        return " -> ".join(stage.describe() for stage in self.stages)
