"""Running a filter bank from Python: one Keras ``Conv2D(N, ...)``, then the combine step."""

from __future__ import annotations

import numpy as np

from convfilter.engine.conv import filter_batch
from convfilter.errors import ArgumentError
from convfilter.ops.bank import BankSpec


def bank_array(image: np.ndarray, kernels, names=None, **settings) -> np.ndarray:
    """Run a 2-D array through a filter bank; ``H' x W' x N`` for ``combine='stack'``, else ``H' x W'``.

    ``kernels`` are N 2-D grids of one size; ``settings`` are the keywords of
    :func:`~convfilter.ops.bank.BankSpec` (``stride``, ``padding``, ``combine`` ...).
    """
    kernels = tuple(kernels)
    names = tuple(names) if names is not None else tuple(f"filter{i}" for i in range(1, len(kernels) + 1))
    op = BankSpec(kernels, names, **settings)
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ArgumentError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    op.output_shape(image.shape)
    return filter_batch(image[np.newaxis], op)[0]
