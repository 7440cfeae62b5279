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
from functools import cached_property
from typing import Protocol

import numpy as np

from convfilter.errors import ArgumentError, ImageTooSmallError
from convfilter.ops.borders import check_border
from convfilter.ops.geometry import (
    KERAS_PADDINGS,
    check_padding,
    dilated_extent,
    output_shape,
    standardize_pair,
)
from convfilter.ops.kernels import MAX_KERNEL_SIZE, is_averaging

POOLS = ("max", "avg")
POOL_PADDINGS = ("valid", "same")


class Operation(Protocol):
    """What the runner needs of an operation: shapes, a description, the layers, the range rule."""

    name: str

    @property
    def stages(self) -> tuple[Conv2DSpec | PoolSpec, ...]:
        """The single layers, in order (one for a convolution or a pool)."""

    @property
    def averaging(self) -> bool:
        """True when results stay in the input's range (``--range auto`` then means ``clip``)."""

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """The output ``(H', W')`` for an ``H x W`` input, or :class:`ImageTooSmallError`."""

    def describe(self) -> str:
        """One line: the Keras layer(s) that compute it."""


def check_kernel(kernel: np.ndarray | Sequence) -> np.ndarray:
    """Return ``kernel`` as a 2-D float64 array, or raise :class:`ArgumentError` saying what is wrong."""
    try:
        grid = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(f"kernel must be a 2-D array of numbers, got {kernel!r}") from None
    if grid.ndim != 2 or grid.size == 0:
        raise ArgumentError(f"kernel must be a non-empty 2-D array, got shape {grid.shape}")
    if max(grid.shape) > MAX_KERNEL_SIZE:
        raise ArgumentError(
            f"kernel must be at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}, got {grid.shape[0]}x{grid.shape[1]}"
        )
    if not np.isfinite(grid).all():
        raise ArgumentError("kernel values must be finite (no NaN or infinity)")
    with np.errstate(over="ignore"):
        too_large = not np.isfinite(grid.astype(np.float32)).all()
    if too_large:
        largest = float(np.abs(grid).max())
        raise ArgumentError(f"kernel values must fit the layer's float32 (|w| <= 3.4e38), got {largest:g}")
    return grid


def check_bias(bias: float) -> float:
    """Return ``bias`` as a finite float, or raise :class:`ArgumentError`."""
    try:
        value = float(bias)
    except (TypeError, ValueError):
        raise ArgumentError(f"bias must be a finite number, got {bias!r}") from None
    if not np.isfinite(value):
        raise ArgumentError(f"bias must be a finite number, got {value!r}")
    with np.errstate(over="ignore"):
        if not np.isfinite(np.float32(value)):
            raise ArgumentError(f"bias must fit the layer's float32 (|b| <= 3.4e38), got {value:g}")
    return value


def check_border_use(border: str, padding: str) -> str:
    """Return ``border`` checked; a non-zero border needs 'same' or 'full' padding to mean anything."""
    border = check_border(border)
    if border != "zero" and padding == "valid":
        raise ArgumentError(
            f"border {border!r} has no effect with padding 'valid' (nothing is padded); "
            "use padding 'same' or 'full'"
        )
    return border


def fits(
    image_shape: Sequence[int],
    window: Sequence[int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    what: str = "kernel",
) -> tuple[int, int]:
    """The output shape of a window over an image, or :class:`ImageTooSmallError` if it would be empty."""
    out = output_shape(image_shape, window, stride, padding, dilation)
    if min(out) < 1:
        h, w = image_shape
        kh, kw = window
        needed = (dilated_extent(kh, dilation[0]), dilated_extent(kw, dilation[1]))
        spread = "" if dilation == (1, 1) else f" with dilation {dilation[0]}x{dilation[1]}"
        raise ImageTooSmallError(
            f"image is {h}x{w} but the {kh}x{kw} {what}{spread} needs at least "
            f"{needed[0]}x{needed[1]} pixels under 'valid' padding"
        )
    return out


@dataclass(frozen=True, eq=False)
class Conv2DSpec:
    """One single-filter ``Conv2D``: ``kernel`` as given, applied by cross-correlation.

    ``convolve`` flips the kernel in both axes (true convolution): that is
    done in one place, :attr:`weights`, which is what the layer holds.
    ``border`` is what 'same' and 'full' pad with (:mod:`convfilter.ops.borders`).
    ``name`` labels the kernel (``'gaussian'``) in reports, figures and layer names.
    """

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    border: str = "zero"
    convolve: bool = False
    name: str = "conv"

    def __post_init__(self) -> None:
        padding = check_padding(self.padding)
        checked = {
            "kernel": check_kernel(self.kernel),
            "stride": standardize_pair(self.stride, "stride"),
            "padding": padding,
            "dilation": standardize_pair(self.dilation, "dilation"),
            "bias": check_bias(self.bias),
            "border": check_border_use(self.border, padding),
            "convolve": bool(self.convolve),
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    @cached_property
    def weights(self) -> np.ndarray:
        """The weights the Conv2D holds: the kernel, flipped in both axes for ``convolve``."""
        return np.ascontiguousarray(self.kernel[::-1, ::-1]) if self.convolve else self.kernel

    @property
    def window(self) -> tuple[int, int]:
        """The kernel's ``(rows, columns)``."""
        return self.kernel.shape

    @property
    def label(self) -> str:
        """``name``, with ``flipped`` added for ``convolve``."""
        return self.name + (" flipped" if self.convolve else "")

    @property
    def split(self) -> bool:
        """True when Keras refuses the configuration (stride > 1 with dilation > 1): conv, then subsample."""
        return max(self.stride) > 1 and max(self.dilation) > 1

    @property
    def keras_native(self) -> bool:
        """True when one plain ``Conv2D`` does it all (no explicit padding, no subsampling)."""
        return self.padding in KERAS_PADDINGS and not self.split and self.border == "zero"

    @property
    def stages(self) -> tuple[Conv2DSpec]:
        return (self,)

    @property
    def averaging(self) -> bool:
        return is_averaging(self.weights)

    @property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], str, tuple[int, int]]:
        """``(window, stride, padding, dilation)``: where each output window lies."""
        return self.window, self.stride, self.padding, self.dilation

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        return fits(tuple(shape), self.window, self.stride, self.padding, self.dilation)

    def describe(self) -> str:
        kh, kw = self.window
        use_bias = self.bias != 0.0
        if self.keras_native:
            return (
                f"Conv2D(1, ({kh}, {kw}), strides={self.stride}, padding='{self.padding}', "
                f"dilation_rate={self.dilation}, use_bias={use_bias})"
            )
        pad = "ZeroPadding2D" if self.border == "zero" else f"{self.border} padding (outside Keras)"
        layers = [] if self.padding == "valid" else [f"{pad} ('{self.padding}' amounts)"]
        strides = (1, 1) if self.split else self.stride
        layers.append(
            f"Conv2D(1, ({kh}, {kw}), strides={strides}, padding='valid', "
            f"dilation_rate={self.dilation}, use_bias={use_bias})"
        )
        if self.split:
            layers.append(f"MaxPooling2D(pool_size=1, strides={self.stride}) keeping every stride-th pixel")
        return " -> ".join(layers)


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
        object.__setattr__(self, "stages", stages)

    @property
    def averaging(self) -> bool:
        return all(
            isinstance(stage, PoolSpec) or (stage.averaging and stage.bias == 0.0) for stage in self.stages
        )

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
