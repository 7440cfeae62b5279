"""Pooling with Keras's ``MaxPooling2D`` / ``AveragePooling2D`` on the same ``1 x H x W x 1`` tensor.

The window is ``size x size``; the stride defaults to the window, as in Keras.
Output sizes follow the convolution rule with a kernel of the window's size:
'valid' gives ``floor((n - size) / s) + 1``, 'same' gives ``ceil(n / s)``
with TensorFlow's padding split. Padded positions never count: max ignores
them, and the average divides by the number of real pixels in the window.
TensorFlow is imported only when a pool actually runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.errors import ImageTooSmallError
from convfilter.ops.geometry import output_shape, standardize_pair
from convfilter.ops.kernels import MAX_KERNEL_SIZE

POOLS = ("max", "avg")
POOL_PADDINGS = ("valid", "same")


def check_pool(
    kind: str, size: int, stride: int | Sequence[int] | None, padding: str
) -> tuple[str, tuple[int, int], tuple[int, int], str]:
    """Validate pooling arguments; returns ``(kind, pool_size, stride, padding)`` or raises ``ValueError``."""
    if kind not in POOLS:
        raise ValueError(f"The `kind` argument must be one of 'max', 'avg'. Received: kind={kind!r}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 1 <= size <= MAX_KERNEL_SIZE:
        raise ValueError(f"pool size must be an integer between 1 and {MAX_KERNEL_SIZE}, got {size!r}")
    pool_size = (int(size), int(size))
    stride = pool_size if stride is None else standardize_pair(stride, "stride")
    if not isinstance(padding, str) or padding.lower() not in POOL_PADDINGS:
        raise ValueError(
            f"The `padding` argument must be one of 'valid', 'same'. Received: padding={padding!r}"
        )
    return kind, pool_size, stride, padding.lower()


def pool_shape(
    image_shape: Sequence[int], pool_size: tuple[int, int], stride: tuple[int, int], padding: str
) -> tuple[int, int]:
    """The output shape, or :class:`ImageTooSmallError` when the window does not fit under 'valid'."""
    out = output_shape(image_shape, pool_size, stride, padding, (1, 1))
    if min(out) < 1:
        h, w = image_shape
        raise ImageTooSmallError(
            f"image is {h}x{w} but the {pool_size[0]}x{pool_size[1]} pool needs at least "
            f"{pool_size[0]}x{pool_size[1]} pixels under 'valid' padding"
        )
    return out


def pool_array(
    image: np.ndarray,
    kind: str,
    size: int = 2,
    *,
    stride: int | Sequence[int] | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Max- or average-pool a 2-D array with a Keras pooling layer; returns the float32 result.

    ``kind`` is ``'max'`` or ``'avg'``; ``stride`` defaults to ``size``.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    kind, pool_size, stride, padding = check_pool(kind, size, stride, padding)
    pool_shape(image.shape, pool_size, stride, padding)
    return pool_batch(image[np.newaxis], kind, pool_size, stride, padding)[0]


def pool_batch(
    batch: np.ndarray, kind: str, pool_size: tuple[int, int], stride: tuple[int, int], padding: str
) -> np.ndarray:
    """Pool ``N x H x W`` images of one size (arguments already validated); returns ``N x H' x W'``."""
    from convfilter.engine.model import run_pool

    batch = np.asarray(batch, dtype=np.float32)[..., np.newaxis]
    return run_pool(batch, kind, pool_size, stride=stride, padding=padding)
