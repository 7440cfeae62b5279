"""What every frame of an animation shows: grids, window taps, products and sums.

An animation is built from the operation the filtering commands run
(:class:`~convfilter.ops.spec.Conv2DSpec` or
:class:`~convfilter.ops.conv.Conv2DSpec` with ``transpose``), so it has their
validation, their shapes and their padding. When values are given (an input
and a kernel), every output number drawn is the one the real Keras layer
computed (:func:`convfilter.engine.apply.apply`), and the products drawn
beside it are taken from the same padded input.

A convolution has one step per output position: the window's taps on the
padded input, the products ``x * w`` and their sum. A transposed
convolution has one step per input position: the kernel scaled by that
pixel, added into the output grid at ``stride`` times its position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.borders import pad_batch
from convfilter.ops.geometry import dilated_extent
from convfilter.ops.spec import Conv2DSpec

MAX_FRAMES = 400
"""Most steps an animation may have (one frame each): enough for a 20x20 output."""


def number_text(value: float) -> str:
    """A value in at most 4 significant digits; ``0`` for zero (no ``-0``)."""
    if value == 0:
        return "0"
    return f"{value:.4g}".replace("e-0", "e-").replace("e+0", "e")


@dataclass
class Step:
    """One frame's step: ``index`` is the output position (convolution) or the input position
    (transposed); ``taps`` are the cells of the grid the kernel touches, in kernel order;
    ``terms`` the ``(x, w)`` pairs multiplied there; ``value`` the number the layer computed."""

    index: tuple[int, int]
    taps: list[tuple[int, int]]
    terms: list[tuple[float, float]] | None = None
    value: float | None = None


@dataclass
class Animation:
    """Everything the frames draw.

    ``source`` is the left grid: the padded input of a convolution, the input
    of a transposed one; ``inside`` marks its cells that are the image (not
    padding). ``target`` is the right grid's shape: the output of a
    convolution, the full scatter grid of a transposed one, of which the
    output is ``crop`` = ``(top, left)`` on (``output_shape`` cells).
    """

    op: Conv2DSpec
    input_shape: tuple[int, int]
    source_shape: tuple[int, int]
    inside: tuple[int, int, int, int]
    target_shape: tuple[int, int]
    output_shape: tuple[int, int]
    crop: tuple[int, int]
    steps: list[Step]
    source: np.ndarray | None = None
    weights: np.ndarray | None = None
    outputs: np.ndarray | None = field(default=None, repr=False)

    @property
    def transpose(self) -> bool:
        return self.op.transpose

    def accumulated(self, count: int) -> np.ndarray | None:
        """A transposed convolution's target grid after the first ``count`` steps (float64 sums)."""
        if self.source is None or self.weights is None:
            return None
        grid = np.zeros(self.target_shape)
        for step in self.steps[:count]:
            for (r, c), (x, w) in zip(step.taps, step.terms or [], strict=True):
                grid[r, c] += x * w
        return grid


def check_frames(count: int, what: str) -> None:
    """Refuse an animation of more than :data:`MAX_FRAMES` steps, saying how to make it smaller."""
    if count > MAX_FRAMES:
        raise ArgumentError(
            f"the animation would have {count} frames (one per {what}); at most {MAX_FRAMES}: "
            "use a smaller input or a larger stride"
        )


def build(op: Conv2DSpec, image: np.ndarray | None, shape: tuple[int, int] | None = None):
    """The :class:`Animation` of ``op`` over ``image`` (its values and ``op``'s weights shown, the
    layer run) or over an input of ``shape`` (geometry only: no TensorFlow)."""
    if image is not None:
        image = np.asarray(image, dtype=np.float64)
        shape = image.shape
    assert shape is not None
    h, w = int(shape[0]), int(shape[1])
    if op.filters != 1 or op.channels != 1:
        raise ArgumentError(
            f"an animation draws one filter over one channel; this layer has {op.filters} filters "
            f"over {op.channels} channels"
        )
    if op.transpose:
        return _build_transpose(op, image, (h, w))
    return _build_conv(op, image, (h, w))


def _build_conv(op: Conv2DSpec, image: np.ndarray | None, shape: tuple[int, int]) -> Animation:
    out = op.output_shape(shape)
    check_frames(out[0] * out[1], "output position")
    (kh, kw), (sy, sx), (dy, dx) = op.window, op.stride, op.dilation
    (top, bottom), (left, right) = op.pads(shape)
    source_shape = (shape[0] + top + bottom, shape[1] + left + right)
    source = outputs = None
    weights = op.weights
    if image is not None:
        source = pad_batch(image[np.newaxis], (top, bottom), (left, right), op.border)[0]
        from convfilter.engine.apply import apply

        outputs = apply(op, image[np.newaxis].astype(np.float32))[0][0].astype(np.float64)
    steps = []
    for i in range(out[0]):
        for j in range(out[1]):
            taps = [(i * sy + a * dy, j * sx + b * dx) for a in range(kh) for b in range(kw)]
            step = Step((i, j), taps)
            if source is not None:
                step.terms = [
                    (float(source[r, c]), float(weights[a, b]))
                    for (r, c), (a, b) in zip(taps, np.ndindex(kh, kw), strict=True)
                ]
                step.value = float(outputs[i, j])
            steps.append(step)
    return Animation(
        op,
        shape,
        source_shape,
        (top, left, top + shape[0], left + shape[1]),
        out,
        out,
        (0, 0),
        steps,
        source=source,
        weights=weights if image is not None else None,
        outputs=outputs,
    )


def _build_transpose(op: Conv2DSpec, image: np.ndarray | None, shape: tuple[int, int]) -> Animation:
    out = op.output_shape(shape)
    check_frames(shape[0] * shape[1], "input position")
    (kh, kw), (sy, sx), (dy, dx) = op.window, op.stride, op.dilation
    (top, bottom), (left, right) = op.crops(shape)
    full = ((shape[0] - 1) * sy + dilated_extent(kh, dy), (shape[1] - 1) * sx + dilated_extent(kw, dx))
    target = (max(full[0], top + out[0]), max(full[1], left + out[1]))  # output padding can reach past full
    outputs = None
    if image is not None:
        from convfilter.engine.apply import apply

        outputs = apply(op, image[np.newaxis].astype(np.float32))[0][0].astype(np.float64)
    steps = []
    for i in range(shape[0]):
        for j in range(shape[1]):
            taps = [(i * sy + a * dy, j * sx + b * dx) for a in range(kh) for b in range(kw)]
            step = Step((i, j), taps)
            if image is not None:
                step.terms = [(float(image[i, j]), float(op.weights[a, b])) for a, b in np.ndindex(kh, kw)]
            steps.append(step)
    return Animation(
        op,
        shape,
        shape,
        (0, 0, shape[0], shape[1]),
        target,
        out,
        (top, left),
        steps,
        source=image,
        weights=op.weights if image is not None else None,
        outputs=outputs,
    )
