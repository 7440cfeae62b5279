"""Running a filter bank: one Keras ``Conv2D(N, ...)`` over a batch, then the combine step."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from convfilter.engine.model import MODEL_CACHE_SIZE, as_tensor, keras_module
from convfilter.ops.bank import BankSpec, combine_outputs
from convfilter.ops.borders import pad_batch
from convfilter.ops.geometry import padding_amounts


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def bank_model(
    kernel_shape: tuple[int, int],
    filters: int,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    use_bias: bool,
) -> Any:
    """``Conv2D(filters, kernel_shape)`` over an already padded ``N x H x W x 1`` batch ('valid').

    Keras refuses stride > 1 together with dilation > 1: the model then runs
    at stride 1 and keeps every stride-th row and column
    (``MaxPooling2D(pool_size=1, strides=stride)``), as a single filter does.
    """
    keras = keras_module()
    inputs = keras.Input(shape=(None, None, 1), name="image")
    split = max(stride) > 1 and max(dilation) > 1
    conv = keras.layers.Conv2D(
        filters,
        kernel_shape,
        strides=(1, 1) if split else stride,
        padding="valid",
        dilation_rate=dilation,
        use_bias=use_bias,
        name="bank",
    )
    tensor = conv(inputs)
    if split:
        tensor = keras.layers.MaxPooling2D(pool_size=1, strides=stride, name="bank_subsample")(tensor)
    return keras.Model(inputs, tensor, name="convfilter_bank")


def bank_responses(batch: np.ndarray, op: BankSpec) -> np.ndarray:
    """Every filter's output for ``N x H x W`` images of one size: ``N x H' x W' x filters`` float32.

    The padding ('same', 'full', any ``border``) is added first by the rules
    of :func:`convfilter.ops.geometry.padding_amounts`; the Conv2D runs 'valid'.
    """
    batch = np.asarray(batch, dtype=np.float32)
    _, h, w = batch.shape
    (kh, kw), (sy, sx), padding, (dy, dx) = op.geometry
    pad_y = padding_amounts(h, kh, sy, dy, padding)
    pad_x = padding_amounts(w, kw, sx, dx, padding)
    if any(pad_y) or any(pad_x):
        batch = pad_batch(batch, pad_y, pad_x, op.border)
    use_bias = op.bias != 0.0
    model = bank_model(op.window, op.filters, op.stride, op.dilation, use_bias)
    weights = [np.asarray(op.weights, dtype=np.float32)]
    if use_bias:
        weights.append(np.full(op.filters, op.bias, dtype=np.float32))
    model.get_layer("bank").set_weights(weights)
    result = model(as_tensor(np.ascontiguousarray(batch[..., np.newaxis])), training=False)
    return np.asarray(result)


def bank_batch(batch: np.ndarray, op: BankSpec) -> np.ndarray:
    """The combined output (``N x H' x W'``) of a bank whose ``combine`` is not ``stack``."""
    return combine_outputs(bank_responses(batch, op), op.combine)


def bank_array(image: np.ndarray, kernels, names=None, **settings) -> np.ndarray:
    """Run a 2-D array through a filter bank; ``H' x W' x N`` for ``combine='stack'``, else ``H' x W'``.

    ``kernels`` are N 2-D grids of one size; ``settings`` are the keywords of
    :class:`~convfilter.ops.bank.BankSpec` (``stride``, ``padding``, ``combine`` ...).
    """
    kernels = tuple(kernels)
    names = tuple(names) if names is not None else tuple(f"filter{i}" for i in range(1, len(kernels) + 1))
    op = BankSpec(kernels, names, **settings)
    image = np.asarray(image)
    op.output_shape(image.shape)
    responses = bank_responses(image[np.newaxis], op)[0]
    return combine_outputs(responses, op.combine)


def export_bank(path: str, op: BankSpec, input_shape: tuple[int, int]) -> None:
    """Save the bank's ``Conv2D(N, ...)`` model to ``path`` (``.keras``), built as a one-stage stack.

    The saved model maps ``N x H x W x 1`` to the N filters' responses (before
    ``combine``); padding that Keras cannot do itself is a ``ZeroPadding2D``
    (:func:`convfilter.engine.stack.add_stage`).
    """
    from convfilter.engine.stack import add_stage, needs_fixed_shape
    from convfilter.export import save_model

    keras = keras_module()
    fixed = needs_fixed_shape([op.geometry_op])
    inputs = keras.Input(shape=(*(input_shape if fixed else (None, None)), 1), name="image")
    outputs = add_stage(keras, inputs, op.geometry_op, input_shape, "bank", filters=op.filters)
    model = keras.Model(inputs, outputs, name="convfilter_bank")
    weights = [np.asarray(op.weights, dtype=np.float32)]
    if op.bias != 0.0:
        weights.append(np.full(op.filters, op.bias, dtype=np.float32))
    model.get_layer("bank").set_weights(weights)
    save_model(model, path)
