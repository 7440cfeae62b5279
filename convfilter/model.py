"""The Keras model: ``Input(shape=(None, None, 1))`` -> ``Conv2D(1, ...)``.

This is the only module that imports TensorFlow, and it does so on first use
(:func:`keras_module`), so ``--help``, ``--version`` and everything that does
not run a model start instantly.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np


def keras_module() -> Any:
    """Import Keras (TensorFlow backend) once, with TensorFlow's start-up logging silenced.

    ``TF_CPP_MIN_LOG_LEVEL`` hides most of TensorFlow's C++ logging, but a few
    lines (oneDNN, CUDA probing) are written by absl before its log level is
    read, so standard error is pointed at ``/dev/null`` for the import itself.
    Python exceptions are unaffected: they are printed later, not by the import.
    """
    return _import_keras()


@functools.cache
def _import_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
        import tensorflow as tf  # noqa: F401  (imported for its side effect: the backend)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


@functools.cache
def conv_model(
    kernel_shape: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    use_bias: bool,
) -> Any:
    """A single-filter Conv2D model that accepts any ``N x H x W x 1`` batch.

    Models are cached per configuration; weights are set by :func:`run_conv`
    before every call.
    """
    keras = keras_module()
    inputs = keras.Input(shape=(None, None, 1), name="image")
    layer = keras.layers.Conv2D(
        1,
        kernel_shape,
        strides=stride,
        padding=padding,
        dilation_rate=dilation,
        use_bias=use_bias,
        name="conv",
    )
    return keras.Model(inputs, layer(inputs), name="convfilter")


def run_conv(
    batch: np.ndarray,
    kernel: np.ndarray,
    *,
    bias: float = 0.0,
    stride: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """Run ``batch`` (``N x H x W x 1`` float32) through the Conv2D; returns ``N x H' x W'``.

    The configuration must be one Keras accepts (no stride > 1 together with
    dilation > 1); :func:`convfilter.core.filter_array` takes care of that case.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    use_bias = bias != 0.0
    model = conv_model(kernel.shape, stride, padding, dilation, use_bias)
    weights = [kernel.reshape(kernel.shape + (1, 1))]
    if use_bias:
        weights.append(np.array([bias], dtype=np.float32))
    model.get_layer("conv").set_weights(weights)
    result = model(np.ascontiguousarray(batch, dtype=np.float32), training=False)
    return np.asarray(result)[..., 0]


@functools.cache
def pool_model(kind: str, pool_size: tuple[int, int], stride: tuple[int, int], padding: str) -> Any:
    """A ``MaxPooling2D`` (``kind='max'``) or ``AveragePooling2D`` (``'avg'``) model for ``N x H x W x 1``."""
    keras = keras_module()
    layers = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
    inputs = keras.Input(shape=(None, None, 1), name="image")
    layer = layers[kind](pool_size=pool_size, strides=stride, padding=padding, name="pool")
    return keras.Model(inputs, layer(inputs), name="convfilter_pool")


def run_pool(
    batch: np.ndarray,
    kind: str,
    pool_size: tuple[int, int],
    *,
    stride: tuple[int, int],
    padding: str = "valid",
) -> np.ndarray:
    """Run ``batch`` (``N x H x W x 1`` float32) through the pooling layer; returns ``N x H' x W'``."""
    model = pool_model(kind, pool_size, stride, padding)
    result = model(np.ascontiguousarray(batch, dtype=np.float32), training=False)
    return np.asarray(result)[..., 0]
