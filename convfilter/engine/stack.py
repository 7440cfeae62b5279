"""Stacks of layers in one Keras model: convolution and pooling stages.

A stage is a :class:`ConvStage` (one single-filter ``Conv2D``) or a
:class:`PoolStage` (``MaxPooling2D`` / ``AveragePooling2D``). :func:`build_stack`
turns a list of stages into one Keras model whose intermediate results stay
float32 from stage to stage; it is what ``convfilter chain`` runs, what
``--export`` saves and what ``convfilter learn`` trains.

Where one ``Conv2D`` cannot do it alone, a stage is built from standard
layers that give the definition's result, so a saved model loads with plain
``keras.saving.load_model``: 'full' padding is a ``ZeroPadding2D`` of
``d*(k-1)`` on every side before a 'valid' ``Conv2D``; ``stride > 1``
together with ``dilation > 1`` (which Keras refuses) is ``ZeroPadding2D``
(the zeros 'same' would add, if any) -> ``Conv2D`` at stride 1 ->
``MaxPooling2D`` with a 1x1 window and the stage's stride, which keeps every
stride-th row and column. With 'same' padding those amounts depend on the
input size, so that model has a fixed input shape. Borders other than zeros
(``--border reflect`` ...) have no standard Keras layer and are not stages.

Shapes and validation need no TensorFlow; building or running a model
imports it through :func:`convfilter.engine.model.keras_module`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convfilter.engine.conv import check_fits, check_kernel
from convfilter.errors import ImageTooSmallError
from convfilter.ops.geometry import KERAS_PADDINGS, check_padding, padding_amounts, standardize_pair
from convfilter.ops.kernels import is_averaging
from convfilter.engine.pool import check_pool, pool_shape


@dataclass(frozen=True, eq=False)
class ConvStage:
    """One single-filter ``Conv2D`` with fixed weights; ``name`` labels it (e.g. ``'gaussian'``)."""

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    name: str = "conv"

    @property
    def window(self) -> tuple[int, int]:
        """The kernel's ``(rows, columns)``."""
        return self.kernel.shape

    @property
    def split(self) -> bool:
        """True when Keras refuses the configuration (stride > 1 with dilation > 1): conv, then subsample."""
        return max(self.stride) > 1 and max(self.dilation) > 1

    @property
    def keras_native(self) -> bool:
        """True when one plain ``Conv2D`` does it all (no explicit padding, no subsampling)."""
        return self.padding in KERAS_PADDINGS and not self.split

    def describe(self) -> str:
        """One line: the Keras layer(s) the stage is built from."""
        kh, kw = self.window
        use_bias = self.bias != 0.0
        if self.keras_native:
            return (
                f"Conv2D(1, ({kh}, {kw}), strides={self.stride}, padding='{self.padding}', "
                f"dilation_rate={self.dilation}, use_bias={use_bias})"
            )
        layers = [] if self.padding == "valid" else [f"ZeroPadding2D ('{self.padding}' amounts)"]
        strides = (1, 1) if self.split else self.stride
        layers.append(
            f"Conv2D(1, ({kh}, {kw}), strides={strides}, padding='valid', "
            f"dilation_rate={self.dilation}, use_bias={use_bias})"
        )
        if self.split:
            layers.append(f"MaxPooling2D(pool_size=1, strides={self.stride}) keeping every stride-th pixel")
        return " -> ".join(layers)


@dataclass(frozen=True)
class PoolStage:
    """A ``MaxPooling2D`` (``kind='max'``) or ``AveragePooling2D`` (``'avg'``) with a square window."""

    kind: str
    size: int = 2
    stride: tuple[int, int] = (2, 2)
    padding: str = "valid"

    @property
    def name(self) -> str:
        """``'max pool'`` or ``'avg pool'``."""
        return f"{self.kind} pool"

    @property
    def window(self) -> tuple[int, int]:
        """The pooling window ``(size, size)``."""
        return (self.size, self.size)

    def describe(self) -> str:
        """One line: the layer as Keras is asked for it."""
        layer = "MaxPooling2D" if self.kind == "max" else "AveragePooling2D"
        return f"{layer}(pool_size={self.window}, strides={self.stride}, padding='{self.padding}')"


Stage = ConvStage | PoolStage


def conv_stage(
    kernel: np.ndarray | Sequence,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    name: str = "conv",
) -> ConvStage:
    """A validated :class:`ConvStage` (``ValueError`` for a bad argument)."""
    grid = check_kernel(kernel)
    bias = float(bias)
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    return ConvStage(
        grid,
        standardize_pair(stride, "stride"),
        check_padding(padding),
        standardize_pair(dilation, "dilation"),
        bias,
        name,
    )


def pool_stage(
    kind: str, size: int = 2, *, stride: int | Sequence[int] | None = None, padding: str = "valid"
) -> PoolStage:
    """A validated :class:`PoolStage`; ``stride`` defaults to ``size``, as in Keras."""
    kind, pool_size, stride, padding = check_pool(kind, size, stride, padding)
    return PoolStage(kind, pool_size[0], stride, padding)


def stage_output_shape(stage: Stage, shape: Sequence[int]) -> tuple[int, int]:
    """The stage's output ``(H, W)`` for an ``H x W`` input, or :class:`ImageTooSmallError`."""
    if isinstance(stage, ConvStage):
        return check_fits(tuple(shape), stage.window, stage.stride, stage.padding, stage.dilation)
    return pool_shape(tuple(shape), stage.window, stage.stride, stage.padding)


def stack_shapes(stages: Sequence[Stage], shape: Sequence[int]) -> list[tuple[int, int]]:
    """Every stage's output shape in turn; the error names the stage (``stage 2 (sobel-x): ...``)."""
    shapes = []
    current = (int(shape[0]), int(shape[1]))
    for number, stage in enumerate(stages, start=1):
        try:
            current = stage_output_shape(stage, current)
        except ImageTooSmallError as exc:
            raise ImageTooSmallError(f"stage {number} ({stage.name}): {exc}") from None
        shapes.append(current)
    return shapes


def stack_is_averaging(stages: Sequence[Stage]) -> bool:
    """True when every stage keeps values in the input's range (averaging kernels, pools, no bias)."""
    return all(
        isinstance(stage, PoolStage) or (is_averaging(stage.kernel) and stage.bias == 0.0) for stage in stages
    )


def needs_fixed_shape(stages: Sequence[Stage]) -> bool:
    """True when some stage pads explicitly by amounts that depend on the input size ('same' + split)."""
    return any(isinstance(s, ConvStage) and s.split and s.padding == "same" for s in stages)


def layer_name(number: int | None, stage: Stage) -> str:
    """The Keras layer name of a stage: ``conv`` alone, ``stage2_sobel_x`` in a stack."""
    base = "conv" if isinstance(stage, ConvStage) else f"{stage.kind}_pool"
    if number is None:
        return base
    label = stage.name if isinstance(stage, ConvStage) else base
    return f"stage{number}_" + re.sub(r"[^0-9A-Za-z_]+", "_", label).strip("_")


def add_stage(keras: Any, tensor: Any, stage: Stage, in_shape: tuple[int, int] | None, name: str) -> Any:
    """Append ``stage``'s layer(s) to ``tensor``; returns the new tensor (Conv2D weights not yet set)."""
    if isinstance(stage, PoolStage):
        layer = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[stage.kind]
        return layer(pool_size=stage.window, strides=stage.stride, padding=stage.padding, name=name)(tensor)
    use_bias = stage.bias != 0.0
    if stage.keras_native:
        conv = keras.layers.Conv2D(
            1,
            stage.window,
            strides=stage.stride,
            padding=stage.padding,
            dilation_rate=stage.dilation,
            use_bias=use_bias,
            name=name,
        )
        return conv(tensor)
    if stage.padding != "valid":  # 'full', or 'same' that Keras cannot do here: zeros added explicitly
        if in_shape is None and stage.padding == "same":
            raise ValueError("a 'same' stage with stride > 1 and dilation > 1 needs the input shape")
        pads = [
            padding_amounts(
                in_shape[axis] if in_shape else 0,
                stage.window[axis],
                stage.stride[axis],
                stage.dilation[axis],
                stage.padding,
            )
            for axis in (0, 1)
        ]
        if any(any(p) for p in pads):
            tensor = keras.layers.ZeroPadding2D(tuple(pads), name=f"{name}_pad")(tensor)
    conv = keras.layers.Conv2D(
        1,
        stage.window,
        strides=(1, 1) if stage.split else stage.stride,
        padding="valid",
        dilation_rate=stage.dilation,
        use_bias=use_bias,
        name=name,
    )
    tensor = conv(tensor)
    if not stage.split:
        return tensor
    return keras.layers.MaxPooling2D(pool_size=1, strides=stage.stride, name=f"{name}_subsample")(tensor)


def set_stage_weights(layer: Any, stage: ConvStage) -> None:
    """Put the stage's kernel (and bias, if any) into its ``Conv2D`` layer."""
    weights = [np.asarray(stage.kernel, dtype=np.float32).reshape(stage.window + (1, 1))]
    if stage.bias != 0.0:
        weights.append(np.array([stage.bias], dtype=np.float32))
    layer.set_weights(weights)


def build_stack(
    stages: Sequence[Stage], input_shape: Sequence[int] | None = None, *, single_name: bool = True
) -> tuple[Any, Any]:
    """Build ``(model, probe)`` for ``stages``, weights set.

    ``model`` maps ``N x H x W x 1`` to the last stage's output; ``probe``
    shares its layers and returns every stage's output. ``input_shape``
    (``H, W``) is needed, and fixed in the model, only when
    :func:`needs_fixed_shape`. With ``single_name`` a one-stage stack's
    layer is called plain ``conv`` / ``max_pool`` / ``avg_pool``.
    """
    from convfilter.engine.model import keras_module

    keras = keras_module()
    if not stages:
        raise ValueError("a stack needs at least one stage")
    fixed = needs_fixed_shape(stages)
    shapes: list[tuple[int, int] | None]
    if input_shape is not None:
        shapes = [tuple(input_shape), *stack_shapes(stages, input_shape)]
    elif fixed:
        raise ValueError("this stack pads by amounts that depend on the image: give input_shape")
    else:
        shapes = [None] * (len(stages) + 1)
    inputs = keras.Input(shape=(*(shapes[0] if fixed else (None, None)), 1), name="image")
    tensor = inputs
    outputs = []
    names = []
    for number, stage in enumerate(stages, start=1):
        name = layer_name(None if single_name and len(stages) == 1 else number, stage)
        tensor = add_stage(keras, tensor, stage, shapes[number - 1], name)
        outputs.append(tensor)
        names.append(name)
    model = keras.Model(inputs, tensor, name="convfilter")
    for name, stage in zip(names, stages, strict=True):
        if isinstance(stage, ConvStage):
            set_stage_weights(model.get_layer(name), stage)
    probe = keras.Model(inputs, outputs, name="convfilter_stages")
    return model, probe


def run_stack(image: np.ndarray, stages: Sequence[Stage]) -> list[np.ndarray]:
    """Run a 2-D ``image`` through all stages in one Keras model; returns every stage's float32 output.

    Raises ``ValueError`` for a bad image and :class:`ImageTooSmallError` (naming
    the stage) when some stage's output would be empty.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    stack_shapes(stages, image.shape)
    _, probe = build_stack(stages, image.shape)
    results = probe(np.ascontiguousarray(image[np.newaxis, ..., np.newaxis]), training=False)
    if not isinstance(results, list | tuple):
        results = [results]
    return [np.asarray(result)[0, ..., 0] for result in results]
