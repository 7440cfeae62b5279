"""How a single-filter convolution is fed to Keras's ``Conv2D``: the layout and the strategy.

A ``Conv2D`` with one input and one output channel is a poor fit for the
CPU's convolution kernels (oneDNN vectorises over channels). The ``blocked``
engine (the default, ``'auto'``) therefore puts runs of pixels of a row into
channels and gives the layer weights that are copies of the kernel, so that
the same cross-correlation becomes a ``Conv2D`` with many channels:

* windowed layout (narrow kernels, dilated span up to 9 columns): every
  output block of ``B`` columns reads one window of ``C`` consecutive input
  columns, stored as ``C`` channels (``H x W x 1`` becomes ``H x W/B x C``,
  windows overlap by ``C - B*sx`` columns; ``C = 16`` for spans up to 5,
  ``C = 24, B = 16`` up to 9). ``Conv2D(B, (kh, 1))`` with
  ``W[a, 0, b*sx + dx*c, b] = kernel[a, c]``. The windows are written in the
  one pass that also pads the image and converts it to float32.
* block-Toeplitz layout (wider kernels): the row is cut into blocks of
  ``Bi = B*sx`` columns (a free reshape), and output block ``j`` reads input
  blocks ``j .. j+m-1``: ``Conv2D(B, (kh, m))`` with
  ``W[a, q, p, b] = kernel[a, c]`` where ``q*Bi + p = b*sx + dx*c``.

Column stride and column dilation live entirely in the weights; row stride
and row dilation stay the layer's own ``strides`` / ``dilation_rate`` (when
both are > 1, which Keras refuses, the rows are computed at stride 1 and
every ``sy``-th one is kept). Padding is always explicit: the caller says how
many zeros lie around the array ('same' padding, the halo of a tile at the
image border), the buffer is 64-byte aligned so TensorFlow wraps it without
a copy, and the layer runs with ``padding='valid'``.

The ``plain`` engine is the literal ``Conv2D(1, ...)`` on ``N x H x W x 1``;
tests compare the two, and both against an independent NumPy reference.
Float input with NaN or infinity always runs plain (a zero weight times NaN
is NaN, which would spread to neighbours in the blocked layouts).

Nothing here imports TensorFlow; :mod:`convfilter.engine.model` builds the layers.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.geometry import dilated_extent

ENGINES = ("auto", "blocked", "plain")


def block_size(kernel_width: int, stride: int = 1, dilation: int = 1) -> int:
    """Output columns per block ``B`` for a kernel row of ``kernel_width`` taps.

    ``benchmarks/engine.py`` found 8 fastest for narrow kernels and 16 for
    wider ones (the README's Performance section has the figures).
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


WINDOW_CHANNELS = 16
"""Input channels of the windowed layout for the narrowest kernels: one AVX-512 register of float32."""
MIN_WINDOW_BLOCK = 12
"""Fewer outputs per 16-column window measured slower than the alternatives."""
WIDE_WINDOW = (24, 16)
"""(channels, outputs) of the windowed layout for kernels 6 to 9 columns wide, where it is at least
as fast as the block-Toeplitz layout (``benchmarks/engine.py``); wider kernels use block-Toeplitz."""


def window_block(
    kernel_width: int, stride: int = 1, dilation: int = 1, channels: int = WINDOW_CHANNELS
) -> int:
    """Outputs per window of ``channels`` columns: ``(channels - span) // stride + 1``."""
    return (channels - dilated_extent(kernel_width, dilation)) // stride + 1


def window_layout(kernel_width: int, stride: int = 1, dilation: int = 1) -> tuple[int, int] | None:
    """``(B, C)`` of the windowed layout for this kernel row, or ``None`` where block-Toeplitz is used."""
    block = window_block(kernel_width, stride, dilation)
    if block >= MIN_WINDOW_BLOCK:
        return block, WINDOW_CHANNELS
    channels, block = WIDE_WINDOW
    if window_block(kernel_width, stride, dilation, channels) >= block:
        return block, channels
    return None


def column_block(kernel_width: int, stride: int = 1, dilation: int = 1) -> int:
    """Output columns per block of the layout :func:`convolve` uses for this kernel row.

    Tiles that start on multiples of it are bit-identical to the whole image.
    """
    layout = window_layout(kernel_width, stride, dilation)
    return layout[0] if layout else block_size(kernel_width, stride, dilation)


def window_weights(
    kernel: np.ndarray, block: int, channels: int, stride: int = 1, dilation: int = 1
) -> np.ndarray:
    """``Conv2D`` weights ``(kh, 1, C, B)``: ``W[a, 0, b*stride + dilation*c, b] = kernel[a, c]``, else 0."""
    kernel = np.asarray(kernel, dtype=np.float32)
    kh, kw = kernel.shape
    weights = np.zeros((kh, 1, channels, block), dtype=np.float32)
    for b in range(block):
        for c in range(kw):
            weights[:, 0, b * stride + dilation * c, b] = kernel[:, c]
    return weights


def fill_windows(
    dest: np.ndarray,
    src: np.ndarray,
    pad_y: tuple[int, int],
    pad_x: tuple[int, int],
    step: int,
) -> np.ndarray:
    """Fill ``dest`` (``N x rows x nb x C``) with overlapping windows of the zero-padded ``src``.

    Window ``j`` of padded row ``r`` is padded columns ``j*step .. j*step + C - 1``.
    ``src`` (``N x H x W``, any real dtype, any strides) is read once; windows
    wholly inside it are copied straight from a strided view, the few at the
    borders through a small zero-padded strip. One pass, converting to float32.
    """
    n, rows, nb, channels = dest.shape
    _, h, w = src.shape
    top, left = pad_y[0], pad_x[0]
    r0, r1 = min(top, rows), min(top + h, rows)
    dest[:, :r0] = 0
    dest[:, r1:] = 0
    if r1 <= r0:
        return dest
    src = src[:, : r1 - r0]
    first = -(-left // step)  # first window starting inside src
    last = (w + left - channels) // step  # last window ending inside src
    first, last = min(first, nb), min(max(last, first - 1), nb - 1)
    if last >= first:
        start = first * step - left
        view = np.lib.stride_tricks.as_strided(
            src[:, :, start:],
            shape=(n, r1 - r0, last - first + 1, channels),
            strides=(src.strides[0], src.strides[1], src.strides[2] * step, src.strides[2]),
            writeable=False,
        )
        np.copyto(dest[:, r0:r1, first : last + 1], view, casting="unsafe")
    else:
        first = last = nb  # no interior window: everything goes through the strips
    for lo, hi in ((0, first), (max(last + 1, first), nb)):
        if hi > lo:
            _strip_windows(dest[:, r0:r1, lo:hi], src, lo * step - left, step)
    return dest


def _strip_windows(dest: np.ndarray, src: np.ndarray, start: int, step: int) -> None:
    """Windows ``dest`` (``N x rows x k x C``) of ``src`` columns from ``start`` on, zeros outside ``src``."""
    n, rows, count, channels = dest.shape
    width = (count - 1) * step + channels
    strip = np.zeros((n, rows, width), dtype=np.float32)
    a, b = max(start, 0), min(start + width, src.shape[2])
    if b > a:
        strip[:, :, a - start : b - start] = src[:, :, a:b]
    view = np.lib.stride_tricks.as_strided(
        strip,
        shape=dest.shape,
        strides=(strip.strides[0], strip.strides[1], strip.strides[2] * step, strip.strides[2]),
        writeable=False,
    )
    dest[...] = view


ALIGN_BYTES = 64


def aligned_empty(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised array whose data starts on a 64-byte boundary.

    TensorFlow wraps such a NumPy array without copying it; an array on
    NumPy's default 16-byte alignment is copied on every model call, which
    for a large image costs about as much as a fast convolution.
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.empty(count * dtype.itemsize + ALIGN_BYTES, dtype=np.uint8)
    offset = -raw.ctypes.data % ALIGN_BYTES
    return raw[offset : offset + count * dtype.itemsize].view(dtype).reshape(shape)


_scratch = threading.local()
_pool: ThreadPoolExecutor | None = None
PARALLEL_FILL_FLOATS = 1 << 20
"""Buffers above this size are filled by one thread per core (NumPy copies release the GIL)."""


def _fill_in_parallel(fill, dest: np.ndarray, src: np.ndarray, pad_y: tuple[int, int], *args) -> np.ndarray:
    """``fill(dest, src, pad_y, *args)`` split into row bands, one per core, run side by side."""
    global _pool
    workers = min(os.cpu_count() or 1, 8)
    rows = dest.shape[1]
    if workers < 2 or dest.size < PARALLEL_FILL_FLOATS or rows < 2 * workers:
        return fill(dest, src, pad_y, *args)
    if _pool is None:
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="convfilter-fill")
    bounds = [rows * i // workers for i in range(workers + 1)]
    jobs = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        first = start - pad_y[0]  # the source row that lands on buffer row `start`
        part = (src[:, first:], (0, 0)) if first >= 0 else (src, (-first, 0))
        jobs.append(_pool.submit(fill, dest[:, start:stop], part[0], part[1], *args))
    for job in jobs:
        job.result()
    return dest


def scratch_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """An aligned float32 input buffer, reused by the next call of the same shape in this thread.

    Tiles of one image (and repeated calls) have the same shape; reusing the
    buffer saves the page faults of a fresh allocation.
    Safe because :func:`convolve` has the model's output in NumPy before it
    returns, so the previous call no longer reads the buffer.
    """
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.shape != shape:
        buffer = _scratch.buffer = None  # free the old one first
        buffer = _scratch.buffer = aligned_empty(shape)
    return buffer


def _pad_into(
    buffer: np.ndarray, batch: np.ndarray, pad_y: tuple[int, int], pad_x: tuple[int, int]
) -> np.ndarray:
    """Copy ``batch`` (``N x H x W``) into zero-filled ``buffer`` at offset ``(pad_y[0], pad_x[0])``.

    The parts of ``batch`` that fall outside ``buffer`` are not needed and are left out.
    """
    _, rows, cols = buffer.shape
    top, left = min(pad_y[0], rows), pad_x[0]
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

    A 3-D ``kernel`` ``(kh, kw, F)`` is F filters over the same windows: one
    layer reads each window once and gives all F (``N x H' x W' x F``).
    """
    check_engine(engine)
    batch = np.asarray(batch)
    kernel = np.asarray(kernel, dtype=np.float32)
    many = kernel.ndim == 3
    kernels = kernel if many else kernel[..., np.newaxis]
    n, h, w = batch.shape
    kh, kw, _ = kernels.shape
    (sy, sx), (dy, dx) = stride, dilation
    span_y, span_x = dilated_extent(kh, dy), dilated_extent(kw, dx)
    out_h = (h + sum(pad_y) - span_y) // sy + 1
    out_w = (w + sum(pad_x) - span_x) // sx + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"a {h}x{w} array is too small for a {kh}x{kw} kernel with dilation {dy}x{dx}")
    if sy > span_y or sx > span_x:  # windows apart: gather them, so work follows the output, not the stride
        batch, stride = _gather_windows(batch, pad_y, pad_x, stride, (span_y, span_x), (out_h, out_w))
        pad_y = pad_x = (0, 0)
        (sy, sx) = stride
    rows = (out_h - 1) * sy + span_y
    args = (batch, kernels, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w)
    if engine == "plain" or not _all_finite(batch):
        # NaN or infinity times a zero weight is NaN: in the blocked layouts a
        # non-finite pixel would spoil its neighbours, so such input runs plain.
        result = np.stack(
            [_convolve_plain(batch, kernels[..., f], *args[2:]) for f in range(kernels.shape[2])], axis=-1
        )
    elif window_layout(kw, sx, dx):
        result = _convolve_windowed(*args)
    else:
        result = _convolve_blocked(*args)
    return result if many else result[..., 0]


def _gather_windows(batch, pad_y, pad_x, stride, spans, out_shape):
    """The pixels the windows read when the stride exceeds the dilated kernel, packed side by side.

    Along an axis whose stride ``s`` is larger than the window's span, output
    ``i`` reads padded positions ``i*s .. i*s + span - 1`` only; they are copied
    to ``i*span ..`` and the stride becomes ``span``. The padding is written
    into the result as zeros. Every output is the same sum of the same products.
    Returns the new batch and stride.
    """
    index = []
    new_stride = []
    for axis, (pad, s, span, out) in enumerate(zip((pad_y, pad_x), stride, spans, out_shape, strict=True)):
        if s > span:
            index.append((np.arange(out)[:, np.newaxis] * s + np.arange(span)).ravel() - pad[0])
            new_stride.append(span)
        else:
            index.append(np.arange(-pad[0], batch.shape[axis + 1] + pad[1]))
            new_stride.append(s)
    rows, cols = index
    inside_r = (rows >= 0) & (rows < batch.shape[1])
    inside_c = (cols >= 0) & (cols < batch.shape[2])
    gathered = batch[:, np.clip(rows, 0, batch.shape[1] - 1)][:, :, np.clip(cols, 0, batch.shape[2] - 1)]
    gathered = gathered.astype(np.float32) if not np.issubdtype(gathered.dtype, np.inexact) else gathered
    gathered[:, ~inside_r] = 0
    gathered[:, :, ~inside_c] = 0
    return gathered, tuple(new_stride)


def _all_finite(batch: np.ndarray) -> bool:
    """True for integer pixels, and for float pixels whose sum is finite (a fast check, one pass)."""
    if not np.issubdtype(batch.dtype, np.inexact):
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(batch)))  # an overflow to inf only means a needless plain run


def _row_step(sy: int, dy: int) -> tuple[int, int]:
    """(row stride the layer runs at, keep every n-th row): Keras refuses stride > 1 with dilation > 1."""
    return (1, sy) if sy > 1 and dy > 1 else (sy, 1)


def _filters_last(result: np.ndarray, n: int, filters: int, block: int) -> np.ndarray:
    """``N x rows x nb x (F*B)`` layer output as ``N x rows x (nb*B) x F``, each filter contiguous."""
    rows, blocks = result.shape[1], result.shape[2]
    if filters == 1:
        return result.reshape(n, rows, blocks * block, 1)
    by_filter = result.reshape(n, rows, blocks, filters, block).transpose(3, 0, 1, 2, 4)
    return np.moveaxis(by_filter.reshape(filters, n, rows, blocks * block), 0, -1)


def _convolve_windowed(batch, kernels, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w):
    from convfilter.engine.model import blocked_conv

    (sy, sx), (dy, dx) = stride, dilation
    n = batch.shape[0]
    filters = kernels.shape[2]
    block, channels = window_layout(kernels.shape[1], sx, dx)
    windows = -(-out_w // block)
    buffer = scratch_buffer((n, rows, windows, channels))
    _fill_in_parallel(fill_windows, buffer, batch, pad_y, pad_x, block * sx)
    layer_stride, keep = _row_step(sy, dy)
    weights = np.concatenate(
        [window_weights(kernels[..., f], block, channels, sx, dx) for f in range(filters)], axis=-1
    )
    result = blocked_conv(buffer, weights, bias=bias, stride=layer_stride, dilation=dy)
    return _filters_last(result, n, filters, block)[:, ::keep][:, :out_h, :out_w]


def _convolve_blocked(batch, kernels, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w):
    from convfilter.engine.model import blocked_conv

    (sy, sx), (dy, dx) = stride, dilation
    n = batch.shape[0]
    kw, filters = kernels.shape[1], kernels.shape[2]
    block = block_size(kw, sx, dx)
    in_block = block * sx
    taps = block_taps(block, kw, sx, dx)
    blocks_out = -(-out_w // block)
    blocks_in = blocks_out + taps - 1
    buffer = _fill_in_parallel(
        _pad_into, scratch_buffer((n, rows, blocks_in * in_block)), batch, pad_y, pad_x
    )
    layer_stride, keep = _row_step(sy, dy)
    weights = np.concatenate([block_weights(kernels[..., f], block, sx, dx) for f in range(filters)], axis=-1)
    result = blocked_conv(
        buffer.reshape(n, rows, blocks_in, in_block), weights, bias=bias, stride=layer_stride, dilation=dy
    )
    return _filters_last(result, n, filters, block)[:, ::keep][:, :out_h, :out_w]


def _convolve_plain(batch, kernel, stride, dilation, pad_y, pad_x, rows, bias, out_h, out_w):
    from convfilter.engine.model import plain_conv

    (sy, sx), dx = stride, dilation[1]
    n = batch.shape[0]
    cols = (out_w - 1) * sx + dilated_extent(kernel.shape[1], dx)
    buffer = _pad_into(aligned_empty((n, rows, cols)), batch, pad_y, pad_x)
    if max(stride) > 1 and max(dilation) > 1:
        result = plain_conv(buffer[..., np.newaxis], kernel, bias=bias, dilation=dilation)
        return result[:, ::sy, ::sx][:, :out_h, :out_w]
    return plain_conv(buffer[..., np.newaxis], kernel, bias=bias, stride=stride, dilation=dilation)


def describe(kernel_shape: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> str:
    """One line saying how the blocked engine feeds this convolution to its ``Conv2D``."""
    kh, kw = kernel_shape
    (sy, sx), (dy, dx) = stride, dilation
    layer_stride, keep = _row_step(sy, dy)
    rows = f"strides=({layer_stride}, 1), dilation_rate=({dy}, 1)"
    kept = f", then 1 row in {keep} kept" if keep > 1 else ""
    layout = window_layout(kw, sx, dx)
    if layout:
        block, channels = layout
        return (
            f"rows cut into {channels}-column windows ({channels} channels, {block} outputs each), "
            f"Conv2D({block}, ({kh}, 1), {rows}) with the kernel spread over its weights{kept}"
        )
    block = block_size(kw, sx, dx)
    taps = block_taps(block, kw, sx, dx)
    return (
        f"rows cut into {block * sx}-column blocks ({block * sx} channels, {block} outputs each), "
        f"Conv2D({block}, ({kh}, {taps}), {rows}) with block-Toeplitz weights{kept}"
    )


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise ``ArgumentError``."""
    if engine not in ENGINES:
        raise ArgumentError(
            f"The `engine` argument must be one of {', '.join(ENGINES)}. Received: {engine!r}"
        )
    return engine
