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
    if op.layout == "transpose" and op.channels == 1 and engine != "plain":
        return _transpose_in_phases(planes, op, engine)
    from convfilter.engine.model import layer_model, run_model

    count, h, w = planes.shape
    channels = op.channels
    images = planes.reshape(count // channels, channels, h, w)
    if any(pad_y) or any(pad_x):
        images = np.pad(images, [(0, 0), (0, 0), tuple(pad_y), tuple(pad_x)])
    tensor = np.ascontiguousarray(images.transpose(0, 2, 3, 1), dtype=np.float32)
    return run_model(layer_model(op), op, tensor)


def _transpose_in_phases(planes: np.ndarray, op: Conv2DSpec, engine: str) -> np.ndarray:
    """A transposed convolution's whole scatter-add as ``sy*sx`` ordinary convolutions (its phases).

    Output row ``q*sy + p`` of the scatter-add only receives the taps ``p, p + sy, ...`` of the
    kernel (rows of the input ``q, q - 1, ...``): phase ``p`` is a cross-correlation of the input,
    zero-padded by ``M - 1`` (``M = ceil(kh / sy)``), with those taps in reverse order. All the
    phases (and filters) are the filters of one blocked ``Conv2D`` that reads each window once;
    their outputs are interleaved back. The sums are the layer's, the zeros of the stride never
    multiplied. Returns ``B x (h+My-1)*sy x (w+Mx-1)*sx x N``: at least the layer's 'valid' output;
    past its end only the bias (the caller cuts the output from it).
    """
    weights = op.layer_weights[:, :, 0, :]  # (kh, kw, N), the dilation written in
    (sy, sx), (kh, kw, filters) = op.stride, weights.shape
    my, mx = -(-kh // sy), -(-kw // sx)
    padded = np.zeros((my * sy, mx * sx, filters), dtype=np.float32)
    padded[:kh, :kw] = weights
    # phases[j, k, (p, r, n)] = padded[p + (my-1-j)*sy, r + (mx-1-k)*sx, n]
    phases = padded.reshape(my, sy, mx, sx, filters)[::-1, :, ::-1]
    phases = np.ascontiguousarray(phases.transpose(0, 2, 1, 3, 4)).reshape(my, mx, sy * sx * filters)
    out = convolve(
        planes, phases, pad_y=(my - 1, my - 1), pad_x=(mx - 1, mx - 1), bias=op.bias, engine=engine
    )
    count, rows, cols, _ = out.shape
    out = out.reshape(count, rows, cols, sy, sx, filters).transpose(0, 1, 3, 2, 4, 5)
    return out.reshape(count, rows * sy, cols * sx, filters)
