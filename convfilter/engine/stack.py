"""Stacks of layers in one Keras model: convolution and pooling stages.

A stage is a :class:`~convfilter.ops.spec.Conv2DSpec` (one single-filter
``Conv2D``) or a :class:`~convfilter.ops.spec.PoolSpec` (``MaxPooling2D`` /
``AveragePooling2D``). :func:`build_stack` turns the stages of an operation
(one, or a :class:`~convfilter.ops.spec.ChainSpec`'s) into one Keras model
whose intermediate results stay float32 from stage to stage; it is what ``convfilter chain`` runs, what
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
from typing import Any

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.geometry import padding_amounts
from convfilter.ops.spec import ChainSpec, Conv2DSpec, PoolSpec, Stage
from convfilter.ops.transpose import TransposeSpec


def needs_fixed_shape(stages: Sequence[Stage]) -> bool:
    """True when some stage pads explicitly by amounts that depend on the input size ('same' + split)."""
    return any(isinstance(s, Conv2DSpec) and s.split and s.padding == "same" for s in stages)


def layer_name(number: int | None, stage: Stage) -> str:
    """The Keras layer name of a stage: ``conv`` alone, ``stage2_sobel_x`` in a stack."""
    if isinstance(stage, TransposeSpec):
        base = "conv_transpose"
    else:
        base = "conv" if isinstance(stage, Conv2DSpec) else f"{stage.kind}_pool"
    if number is None:
        return base
    label = stage.label if isinstance(stage, Conv2DSpec | TransposeSpec) else base
    return f"stage{number}_" + re.sub(r"[^0-9A-Za-z_]+", "_", label).strip("_")


def add_stage(
    keras: Any, tensor: Any, stage: Stage, in_shape: tuple[int, int] | None, name: str, filters: int = 1
) -> Any:
    """Append ``stage``'s layer(s) to ``tensor``; returns the new tensor (Conv2D weights not yet set).

    ``filters`` > 1 makes a convolution stage a ``Conv2D(filters, ...)`` (a filter bank's layer).
    """
    if isinstance(stage, Conv2DSpec) and stage.border != "zero":
        raise ArgumentError(
            f"border {stage.border!r} is padded outside Keras (no standard layer does it), so a model "
            "would not compute this output; use --border zero"
        )
    if isinstance(stage, TransposeSpec):
        return keras.layers.Conv2DTranspose(
            1,
            stage.layer_weights.shape,
            strides=stage.stride,
            padding=stage.padding,
            output_padding=stage.output_padding,
            use_bias=stage.bias != 0.0,
            name=name,
        )(tensor)
    if isinstance(stage, PoolSpec):
        layer = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[stage.kind]
        return layer(pool_size=stage.window, strides=stage.stride, padding=stage.padding, name=name)(tensor)
    use_bias = stage.bias != 0.0
    if stage.keras_native:
        conv = keras.layers.Conv2D(
            filters,
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
            raise ArgumentError("a 'same' stage with stride > 1 and dilation > 1 needs the input shape")
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
        filters,
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


def set_stage_weights(layer: Any, stage: Conv2DSpec | TransposeSpec) -> None:
    """Put the stage's kernel (and bias, if any) into its ``Conv2D`` (or ``Conv2DTranspose``) layer."""
    grid = stage.layer_weights if isinstance(stage, TransposeSpec) else stage.weights
    weights = [np.asarray(grid, dtype=np.float32).reshape(grid.shape + (1, 1))]
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
        raise ArgumentError("a stack needs at least one stage")
    fixed = needs_fixed_shape(stages)
    shapes: list[tuple[int, int] | None]
    if input_shape is not None:
        shapes = [tuple(input_shape)]
        for stage in stages:
            shapes.append(stage.output_shape(shapes[-1]))
    elif fixed:
        raise ArgumentError("this stack pads by amounts that depend on the image: give input_shape")
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
        if isinstance(stage, Conv2DSpec | TransposeSpec):
            set_stage_weights(model.get_layer(name), stage)
    probe = keras.Model(inputs, outputs, name="convfilter_stages")
    return model, probe


def run_stack(batch: np.ndarray, chain: ChainSpec) -> list[np.ndarray]:
    """Run ``N x H x W`` images through every stage of ``chain`` in one Keras model.

    Returns every stage's ``N x H' x W'`` float32 output. The images must fit
    (:meth:`~convfilter.ops.spec.ChainSpec.shapes`).
    """
    batch = np.asarray(batch, dtype=np.float32)
    _, probe = build_stack(chain.stages, batch.shape[1:])
    results = probe(np.ascontiguousarray(batch[..., np.newaxis]), training=False)
    if not isinstance(results, list | tuple):
        results = [results]
    return [np.asarray(result)[..., 0] for result in results]
