"""Every filter's raw output for one window of input: the layer that serves an operation, run 'valid'.

One input channel goes through the fast blocked layouts of
:mod:`convfilter.engine.layouts`, one filter at a time on the same window;
several input channels and transposed convolutions run their Keras layer
itself (:func:`convfilter.engine.model.layer_model`).
"""

from __future__ import annotations

import numpy as np

from convfilter.engine.layouts import convolve
from convfilter.ops.conv import Conv2DSpec


def responses(
    planes: np.ndarray, op: Conv2DSpec, pad_y: tuple[int, int], pad_x: tuple[int, int], engine: str = "auto"
) -> np.ndarray:
    """Every filter's raw output for ``planes`` (``B*C x h x w``, zeros ``pad_y``/``pad_x`` around them).

    Returns ``B x h' x w' x N`` float32. A convolution runs 'valid' on the
    padded planes; a transposed convolution runs 'valid' without output
    padding (its whole scatter-add), the caller cuts its part out.
    """
    if op.layout == "blocked":  # one input channel: the fast layouts, every filter from one read of a window
        return convolve(
            planes,
            op.weights4[:, :, 0, :],
            stride=op.stride,
            dilation=op.dilation,
            pad_y=pad_y,
            pad_x=pad_x,
            bias=op.bias,
            engine=engine,
        )
    from convfilter.engine.model import layer_model, run_model

    count, h, w = planes.shape
    channels = op.channels
    images = planes.reshape(count // channels, channels, h, w)
    if any(pad_y) or any(pad_x):
        images = np.pad(images, [(0, 0), (0, 0), tuple(pad_y), tuple(pad_x)])
    tensor = np.ascontiguousarray(images.transpose(0, 2, 3, 1), dtype=np.float32)
    return run_model(layer_model(op), op, tensor)
