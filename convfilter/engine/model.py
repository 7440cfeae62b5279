"""The Keras models: ``Input(shape=(None, None, C))`` -> ``Conv2D(...)``.

:func:`conv_model` is the literal single-filter layer ``Conv2D(1, ...)``;
:func:`blocked_model` is the many-channel ``Conv2D`` of the fast layouts in
:mod:`convfilter.engine.layouts`; :func:`pool_model` the pooling layers of ``pool``.
This is the only module that imports TensorFlow,
and it does so on first use (:func:`keras_module`, or in the background with
:func:`preload`), so ``--help``, ``--version`` and everything that does not
run a model start instantly.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np

_IMPORT_LOCK = threading.Lock()
_preloader: threading.Thread | None = None


def keras_module() -> Any:
    """Import Keras (TensorFlow backend) once, with TensorFlow's start-up logging silenced.

    ``TF_CPP_MIN_LOG_LEVEL`` hides most of TensorFlow's C++ logging, but a few
    lines (oneDNN, CUDA probing) are written by absl before its log level is
    read, so standard error is pointed at ``/dev/null`` for the import itself.
    Python exceptions are unaffected: they are printed later, not by the import.
    Thread-safe: a call during :func:`preload` waits for it.
    """
    with _IMPORT_LOCK:
        return _import_keras()


def preload() -> None:
    """Start importing TensorFlow in a background thread (once), so that it overlaps other work.

    Decoding a large image releases the GIL, so on two cores the import
    (seconds) and the decode run side by side. Standard error is silenced
    while the import runs: call :func:`wait_for_preload` before printing.
    """
    global _preloader
    with _IMPORT_LOCK:
        if _preloader is not None or _import_keras.cache_info().currsize:
            return
        _preloader = threading.Thread(target=_quiet_preload, name="convfilter-import-tensorflow", daemon=True)
        _preloader.start()


PRELOAD_PIXELS = 1 << 22
"""Images from this many pixels (2048x2048) start the TensorFlow import as soon as they open: their
decode then overlaps the import. Smaller images decode in milliseconds,
and a file that fails to decode should fail at once, without waiting for an import it started."""


def preload_for(size: tuple[int, int]) -> None:
    """:func:`preload` when an image of ``size`` (width, height) is worth decoding alongside the import."""
    if size[0] * size[1] >= PRELOAD_PIXELS:
        preload()


def _quiet_preload() -> None:
    try:
        keras_module()
    except Exception:  # the main thread's own keras_module() call raises it again
        pass


def wait_for_preload() -> None:
    """Block until a :func:`preload` in progress has finished (standard error is restored then)."""
    if _preloader is not None:
        _preloader.join()


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


def compute_device() -> str:
    """Where TensorFlow places the models: ``"GPU:0 (<name>)"`` when it sees a GPU, else ``"CPU"``.

    TensorFlow's CUDA build (the ``gpu`` extra) runs them on the first GPU it
    sees; ``CUDA_VISIBLE_DEVICES=-1`` hides the GPUs and keeps them on the CPU.
    """
    keras_module()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return f"GPU:0 ({name})" if name else "GPU:0"


MODEL_CACHE_SIZE = 32
"""Models kept per kind (plain, blocked, pooling): a long-running server's memory stays bounded."""


def cached_models() -> int:
    """How many Keras models are held now."""
    makers = (conv_model, blocked_model, pool_model, _layer_model)
    return sum(make.cache_info().currsize for make in makers)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def conv_model(
    kernel_shape: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    dilation: tuple[int, int],
    use_bias: bool,
) -> Any:
    """A single-filter Conv2D model that accepts any ``N x H x W x 1`` batch.

    Models are cached per configuration (the last :data:`MODEL_CACHE_SIZE`);
    weights are set by :func:`plain_conv` before every call.
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


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def blocked_model(
    kernel_shape: tuple[int, int],
    channels: tuple[int, int],
    stride: int,
    dilation: int,
    use_bias: bool,
) -> Any:
    """A ``Conv2D(channels[1], kernel_shape)`` model over ``N x H x blocks x channels[0]`` batches.

    The blocked layout of :mod:`convfilter.engine.layouts`: ``stride`` and
    ``dilation`` are the row stride and row dilation (columns are in the
    weights); padding is always 'valid'. Cached per configuration.
    """
    keras = keras_module()
    inputs = keras.Input(shape=(None, None, channels[0]), name="blocks")
    layer = keras.layers.Conv2D(
        channels[1],
        kernel_shape,
        strides=(stride, 1),
        padding="valid",
        dilation_rate=(dilation, 1),
        use_bias=use_bias,
        name="conv",
    )
    return keras.Model(inputs, layer(inputs), name="convfilter_blocked")


def blocked_conv(
    blocks: np.ndarray, weights: np.ndarray, *, bias: float = 0.0, stride: int = 1, dilation: int = 1
) -> np.ndarray:
    """Run ``blocks`` (``N x H x nb x Bi`` float32) through a blocked ``Conv2D``; ``N x H' x nb' x B``."""
    kh, taps, in_block, block = weights.shape
    use_bias = bias != 0.0
    model = blocked_model((kh, taps), (in_block, block), stride, dilation, use_bias)
    layer = model.get_layer("conv")
    layer.kernel.assign(weights)
    if use_bias:
        layer.bias.assign(np.full(block, bias, dtype=np.float32))
    return np.asarray(model(as_tensor(blocks), training=False))


def as_tensor(array: np.ndarray) -> Any:
    """``array`` as a TensorFlow tensor, without a copy where that is safe.

    TensorFlow copies every NumPy array it is given (twice when the array is
    not 64-byte aligned). A C-contiguous float32 array on a 64-byte boundary
    (:func:`convfilter.engine.layouts.aligned_empty`) is wrapped instead through
    DLPack; the tensor keeps the array alive, and the caller must not change
    the array while the tensor is in use. Anything else is passed as it is.
    """
    if array.dtype == np.float32 and array.flags.c_contiguous and array.ctypes.data % 64 == 0:
        keras_module()
        import tensorflow as tf

        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return array


def plain_conv(
    batch: np.ndarray,
    kernel: np.ndarray,
    *,
    bias: float = 0.0,
    stride: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """The literal ``Conv2D(1, ...)`` on ``batch`` (``N x H x W x 1`` float32); returns ``N x H' x W'``.

    The configuration must be one Keras accepts (no stride > 1 together with dilation > 1).
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    use_bias = bias != 0.0
    model = conv_model(kernel.shape, stride, padding, dilation, use_bias)
    weights = [kernel.reshape(kernel.shape + (1, 1))]
    if use_bias:
        weights.append(np.array([bias], dtype=np.float32))
    model.get_layer("conv").set_weights(weights)
    result = model(as_tensor(np.ascontiguousarray(batch, dtype=np.float32)), training=False)
    return np.asarray(result)[..., 0]


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def pool_model(kind: str, pool_size: tuple[int, int], stride: tuple[int, int], padding: str) -> Any:
    """A ``MaxPooling2D`` (``kind='max'``) or ``AveragePooling2D`` (``'avg'``) model for ``N x H x W x 1``."""
    keras = keras_module()
    layers = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
    inputs = keras.Input(shape=(None, None, 1), name="image")
    layer = layers[kind](pool_size=pool_size, strides=stride, padding=padding, name="pool")
    return keras.Model(inputs, layer(inputs), name="convfilter_pool")


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _layer_model(
    kind: str,
    kernel_shape: tuple[int, int],
    channels: int,
    filters: int,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    use_bias: bool,
) -> Any:
    """One layer over ``N x H x W x channels``, 'valid': ``Conv2D(filters, ...)`` or ``Conv2DTranspose``.

    Keras refuses a ``Conv2D`` with stride > 1 together with dilation > 1: it
    then runs at stride 1 and keeps every stride-th row and column
    (``MaxPooling2D(pool_size=1, strides=stride)``). A transposed layer runs
    without output padding: its whole scatter-add (the caller cuts the output from it).
    """
    keras = keras_module()
    inputs = keras.Input(shape=(None, None, channels), name="image")
    if kind == "transpose":
        layer = keras.layers.Conv2DTranspose(
            filters, kernel_shape, strides=stride, padding="valid", use_bias=use_bias, name="layer"
        )
        return keras.Model(inputs, layer(inputs), name="convfilter_transpose")
    split = max(stride) > 1 and max(dilation) > 1
    layer = keras.layers.Conv2D(
        filters,
        kernel_shape,
        strides=(1, 1) if split else stride,
        padding="valid",
        dilation_rate=dilation,
        use_bias=use_bias,
        name="layer",
    )
    tensor = layer(inputs)
    if split:
        tensor = keras.layers.MaxPooling2D(pool_size=1, strides=stride, name="subsample")(tensor)
    return keras.Model(inputs, tensor, name="convfilter_layer")


def layer_model(op: Any) -> Any:
    """The cached model of ``op`` (a :class:`~convfilter.ops.conv.Conv2DSpec`) as the engine runs it."""
    dilation = (1, 1) if op.transpose else op.dilation  # a transposed layer holds its dilation as zeros
    return _layer_model(
        "transpose" if op.transpose else "conv",
        tuple(op.layer_weights.shape[:2]),
        op.channels,
        op.filters,
        op.stride,
        dilation,
        op.bias != 0.0,
    )


def run_model(model: Any, op: Any, tensor: np.ndarray) -> np.ndarray:
    """Set ``op``'s weights into ``model``'s layer and run it on ``tensor``; the float32 result."""
    model.get_layer("layer").set_weights(op.keras_weights())
    return np.asarray(model(as_tensor(tensor), training=False))
