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

from collections.abc import Sequence
from typing import Any

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.spec import ChainSpec, Stage, input_channels


def needs_fixed_shape(stages: Sequence[Stage]) -> bool:
    """True when some stage pads explicitly by amounts that depend on the input size ('same' + split)."""
    return any(stage.needs_fixed_shape() for stage in stages)


def layer_name(number: int | None, stage: Stage) -> str:
    """The Keras layer name of a stage: ``conv`` alone, ``stage2_sobel_x`` in a stack."""
    return stage.layer_name if number is None else stage.stage_name(number)


def add_stage(keras: Any, tensor: Any, stage: Stage, in_shape: tuple[int, int] | None, name: str) -> Any:
    """Append ``stage``'s layer(s) to ``tensor``; returns the new tensor (weights not yet set)."""
    return stage.add_layers(keras, tensor, in_shape, name)


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
    channels = input_channels(stages)
    inputs = keras.Input(shape=(*(shapes[0] if fixed else (None, None)), channels), name="image")
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
        weights = stage.keras_weights()
        if weights:
            model.get_layer(name).set_weights(weights)
    probe = keras.Model(inputs, outputs, name="convfilter_stages")
    return model, probe


def run_stack(batch: np.ndarray, chain: ChainSpec) -> list[np.ndarray]:
    """Run ``N x H x W`` images through every stage of ``chain`` in one Keras model.

    Returns every stage's ``N x H' x W'`` float32 output. The images must fit
    (:meth:`~convfilter.ops.spec.ChainSpec.shapes`).
    """
    batch = np.asarray(batch, dtype=np.float32)
    count, h, w = batch.shape
    channels = chain.channels
    tensor = np.ascontiguousarray(batch.reshape(count // channels, channels, h, w).transpose(0, 2, 3, 1))
    _, probe = build_stack(chain.stages, (h, w))
    results = probe(tensor, training=False)
    if not isinstance(results, list | tuple):
        results = [results]
    outputs = [np.asarray(result) for result in results]
    return [values if values.shape[-1] > 1 else values[..., 0] for values in outputs]
