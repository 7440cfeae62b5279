"""The few lines of Keras that build and run the layer the explorer shows, to copy and run.

The code is plain Keras and NumPy (no convfilter): it reads the image as the
command line does (grayscale, float32 in the 0..255 scale of an 8-bit image),
pads where Keras has no padding rule for it (numbers, 'full', a non-zero
``border``), builds the layer, sets its weights and runs ``predict``; then
maps the floats to pixels as ``--range`` does.
"""

from __future__ import annotations

import numpy as np

from convfilter.ops.borders import NUMPY_MODES
from convfilter.ops.conv import Conv2DSpec
from convfilter.ops.spec import PoolSpec


def keras_code(op: Conv2DSpec | PoolSpec, image_name: str, shape: tuple[int, int], range_mode: str) -> str:
    """Python source that computes ``y``, the layer's raw output for ``image_name``, and ``pixels``.

    ``shape`` is the input's ``(H, W)`` (a 'same' layer that Keras cannot
    pad itself needs the amounts); ``range_mode`` is the resolved ``--range``.
    """
    lines = [
        "import keras",
        "import numpy as np",
        "from PIL import Image",
        "",
        f"image = np.asarray(Image.open({image_name!r}).convert('L'), dtype='float32')",
    ]
    if isinstance(op, PoolSpec):
        layer = "MaxPooling2D" if op.kind == "max" else "AveragePooling2D"
        lines += [
            "x = image[np.newaxis, :, :, np.newaxis]  # 1 x H x W x 1",
            f"layer = keras.layers.{layer}(pool_size={op.window}, strides={op.stride}, "
            f"padding={op.padding!r})",
            "y = np.asarray(layer(x))[0, :, :, 0]",
        ]
        return "\n".join(lines + _pixels("clip")) + "\n"
    use_bias = op.bias != 0.0
    if op.transpose:
        layer = f"keras.layers.{op.transpose_call(1)}"
    else:
        padding = op.padding
        if not op.keras_native:
            padding, pads = "valid", op.pads(shape)
            if any(any(p) for p in pads):
                why = f"padding {op.padding!r}" if isinstance(op.padding, str) else "numeric padding"
                lines.append(f"image = np.pad(image, {pads}, mode={NUMPY_MODES[op.border]!r})  # {why}")
        strides = (1, 1) if op.split else op.stride
        layer = (
            f"keras.layers.Conv2D(1, {op.window}, strides={strides}, padding={padding!r}, "
            f"dilation_rate={op.dilation}, use_bias={use_bias})"
        )
    weights = np.asarray(op.layer_weights[:, :, 0, 0], dtype=np.float32)
    lines += [
        "x = image[np.newaxis, :, :, np.newaxis]  # 1 x H x W x 1",
        f"layer = {layer}",
        "model = keras.Sequential([keras.Input(x.shape[1:]), layer])",
        f"kernel = np.array({_rows(weights)}, dtype='float32')"
        + ("  # flipped: --convolve" if op.convolve else ""),
    ]
    weights_list = "[kernel[:, :, np.newaxis, np.newaxis]" + (
        f", np.array([{float(op.bias)!r}], dtype='float32')]" if use_bias else "]"
    )
    lines += [
        f"layer.set_weights({weights_list})",
        "y = model.predict(x, verbose=0)[0, :, :, 0]",
    ]
    if op.split:
        lines.append(
            f"y = y[::{op.stride[0]}, ::{op.stride[1]}]  # Keras refuses stride > 1 with dilation > 1"
        )
    return "\n".join(lines + _pixels(range_mode)) + "\n"


def _rows(weights: np.ndarray) -> str:
    """The weights as a nested list literal, every value exactly as float32 holds it."""
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in weights) + "]"


def _pixels(range_mode: str) -> list[str]:
    """The ``--range`` mapping of ``y`` to 8-bit pixels."""
    if range_mode == "rescale":
        body = [
            "lo, hi = float(y.min()), float(y.max())",
            "scaled = (y.astype('float64') - lo) * (255 / (hi - lo)) if hi > lo else np.zeros(y.shape)",
            "pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)  # --range rescale",
        ]
    elif range_mode == "abs":
        body = ["pixels = np.clip(np.rint(np.abs(y)), 0, 255).astype(np.uint8)  # --range abs"]
    else:
        body = ["pixels = np.clip(np.rint(y), 0, 255).astype(np.uint8)  # --range clip"]
    return ["", *body]
