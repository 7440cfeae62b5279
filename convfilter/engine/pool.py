"""Running one pooling layer: Keras's ``MaxPooling2D`` / ``AveragePooling2D`` (``convfilter pool``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.spec import PoolSpec


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
        raise ArgumentError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    op = PoolSpec(kind, size, stride, padding)
    op.output_shape(image.shape)
    return pool_batch(image[np.newaxis], op)[0]


def pool_batch(batch: np.ndarray, op: PoolSpec) -> np.ndarray:
    """Pool ``N x H x W`` images of one size (fitting ``op``); returns ``N x H' x W'`` float32."""
    from convfilter.engine.model import pool_model

    model = pool_model(op.kind, op.window, op.stride, op.padding)
    result = model(np.ascontiguousarray(np.asarray(batch, dtype=np.float32)[..., np.newaxis]), training=False)
    return np.asarray(result)[..., 0]
