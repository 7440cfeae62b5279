"""How a single-filter convolution is fed to Keras's ``Conv2D``: the layout and the strategy.

A ``Conv2D`` with one input and one output channel is a poor fit for the
CPU's convolution kernels (oneDNN vectorises over channels). The ``blocked``
engine therefore cuts every image row into blocks and puts the blocks into
channels: ``H x W x 1`` becomes ``H x (W / Bi) x Bi``, and the same
cross-correlation becomes a ``Conv2D`` with ``Bi`` input and ``B`` output
channels whose weights are block-Toeplitz copies of the kernel. Output block
``j``, channel ``b`` is output column ``j*B + b``; with column stride ``sx``
and dilation ``dx`` it reads input column ``(j*B + b)*sx + dx*c`` for kernel
column ``c``, which sits in input block ``j + q`` at channel ``p`` where
``q*Bi + p = b*sx + dx*c`` and ``Bi = B*sx``. So column stride and column
dilation live entirely in the weights; row stride and row dilation stay the
layer's own ``strides`` / ``dilation_rate`` (when both are > 1, which Keras
refuses, the rows are computed at stride 1 and every ``sy``-th one is kept).

Padding is always explicit: the caller says how many zeros lie around the
array on each side ('same' padding, the halo of a tile at the image border),
and the array is copied once into a zero-filled float32 buffer in the blocked
layout (the same copy converts ``uint8``/``uint16`` pixels to float32). The
layer then runs with ``padding='valid'``.

The ``plain`` engine is the literal ``Conv2D(1, ...)`` on ``N x H x W x 1``;
tests compare the two, and both against an independent NumPy reference.

Nothing here imports TensorFlow; :mod:`convfilter.model` builds the layers.
"""

from __future__ import annotations

import numpy as np

from convfilter.geometry import dilated_extent

ENGINES = ("auto", "blocked", "plain")


def block_size(kernel_width: int, stride: int = 1, dilation: int = 1) -> int:
    """Output columns per block ``B`` for a kernel row of ``kernel_width`` taps.

    Measured on a 2-core AVX-512 machine (``benchmarks/engine.py``): 8 is
    fastest for narrow kernels, 16 for wider ones.
    """
    span = dilated_extent(kernel_width, dilation)
    return 8 if span <= 5 else 16


def block_taps(block: int, kernel_width: int, stride: int = 1, dilation: int = 1) -> int:
    """Number of input blocks one output block reads (the layer's kernel width ``m``)."""
    in_block = block * stride
    last = stride * (block - 1) + dilation * (kernel_width - 1)
    return last // in_block + 1


def block_weights(kernel: np.ndarray, block: int, stride: int = 1, dilation: int = 1) -> np.ndarray:
    """Block-Toeplitz ``Conv2D`` weights ``(kh, m, B*stride, B)`` for column ``stride``/``dilation``.

    ``W[a, q, p, b] = kernel[a, c]`` where ``q*B*stride + p == b*stride + dilation*c``, zero elsewhere.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    kh, kw = kernel.shape
    in_block = block * stride
    taps = block_taps(block, kw, stride, dilation)
    weights = np.zeros((kh, taps, in_block, block), dtype=np.float32)
    for b in range(block):
        for c in range(kw):
            position = b * stride + dilation * c
            weights[:, position // in_block, position % in_block, b] = kernel[:, c]
    return weights


def _pad_into(
    buffer: np.ndarray, batch: np.ndarray, pad_y: tuple[int, int], pad_x: tuple[int, int]
) -> np.ndarray:
    """Copy ``batch`` (``N x H x W``) into zero-filled ``buffer`` at offset ``(pad_y[0], pad_x[0])``.

    The parts of ``batch`` that fall outside ``buffer`` are not needed and are left out.
    """
    _, rows, cols = buffer.shape
    top, left = pad_y[0], pad_x[0]
    h = min(batch.shape[1], rows - top)
    w = min(batch.shape[2], cols - left)
    buffer[:, :top] = 0
    buffer[:, top + h :] = 0
    buffer[:, top : top + h, :left] = 0
    buffer[:, top : top + h, left + w :] = 0
    np.copyto(buffer[:, top : top + h, left : left + w], batch[:, :h, :w], casting="unsafe")
    return buffer


def convolve(
    batch: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    pad_y: tuple[int, int] = (0, 0),
    pad_x: tuple[int, int] = (0, 0),
    bias: float = 0.0,
    engine: str = "auto",
) -> np.ndarray:
    """Cross-correlate ``batch`` (``N x H x W``, any real dtype) with ``kernel``; ``N x H' x W'`` float32.

    The batch is taken as zero-padded by ``pad_y`` rows (top, bottom) and
    ``pad_x`` columns (left, right) and convolved with 'valid' padding at
    ``stride`` and ``dilation`` (any combination). The padded batch must be
    at least as large as the dilated kernel. ``engine`` is ``'blocked'`` (the
    fast layout, also what ``'auto'`` picks) or ``'plain'`` (``Conv2D(1, ...)``
    on the padded batch). The result may be a view of the model's output.
    """
    check_engine(engine)
    batch = np.asarray(batch)
    kernel = np.asarray(kernel, dtype=np.float32)
    n, h, w = batch.shape
    kh, kw = kernel.shape
    (sy, sx), (dy, dx) = stride, dilation
    span_y, span_x = dilated_extent(kh, dy), dilated_extent(kw, dx)
    out_h = (h + sum(pad_y) - span_y) // sy + 1
    out_w = (w + sum(pad_x) - span_x) // sx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"a {h}x{w} array is too small for a {kh}x{kw} kernel with dilation {dy}x{dx}")
    rows = (out_h - 1) * sy + span_y
    if engine == "plain":
        return _convolve_plain(batch, kernel, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w)
    return _convolve_blocked(batch, kernel, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w)


def _row_step(sy: int, dy: int) -> tuple[int, int]:
    """(row stride the layer runs at, keep every n-th row): Keras refuses stride > 1 with dilation > 1."""
    return (1, sy) if sy > 1 and dy > 1 else (sy, 1)


def _convolve_blocked(batch, kernel, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w):
    from convfilter.model import blocked_conv

    (sy, sx), (dy, dx) = stride, dilation
    n = batch.shape[0]
    kw = kernel.shape[1]
    block = block_size(kw, sx, dx)
    in_block = block * sx
    taps = block_taps(block, kw, sx, dx)
    blocks_out = -(-out_w // block)
    blocks_in = blocks_out + taps - 1
    buffer = np.empty((n, rows, blocks_in * in_block), dtype=np.float32)
    _pad_into(buffer, batch, pad_y, pad_x)
    layer_stride, keep = _row_step(sy, dy)
    weights = block_weights(kernel, block, sx, dx)
    result = blocked_conv(
        buffer.reshape(n, rows, blocks_in, in_block), weights, bias=bias, stride=layer_stride, dilation=dy
    )
    result = result.reshape(n, result.shape[1], blocks_out * block)
    return result[:, ::keep][:, :out_h, :out_w]


def _convolve_plain(batch, kernel, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w):
    from convfilter.model import plain_conv

    (sy, sx), dx = stride, dilation[1]
    n = batch.shape[0]
    cols = (out_w - 1) * sx + dilated_extent(kernel.shape[1], dx)
    buffer = _pad_into(np.empty((n, rows, cols), dtype=np.float32), batch, pad_y, pad_x)
    if max(stride) > 1 and max(dilation) > 1:
        result = plain_conv(buffer[..., np.newaxis], kernel, bias=bias, dilation=dilation)
        return result[:, ::sy, ::sx][:, :out_h, :out_w]
    return plain_conv(buffer[..., np.newaxis], kernel, bias=bias, stride=stride, dilation=dilation)


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise ``ValueError``."""
    if engine not in ENGINES:
        raise ValueError(f"The `engine` argument must be one of {', '.join(ENGINES)}. Received: {engine!r}")
    return engine
