"""One entry point from an operation value to the engine that computes it, chosen by its ``layout``."""

from __future__ import annotations

import numpy as np

from convfilter.ops.spec import Operation


def _convolution(op, batch: np.ndarray, tile_size: int | None) -> list[np.ndarray]:
    from convfilter.engine.conv import filter_batch

    return [filter_batch(batch, op, tile_size=tile_size)]


def _pool(op, batch: np.ndarray, tile_size: int | None) -> list[np.ndarray]:
    from convfilter.engine.pool import pool_batch

    return [pool_batch(batch, op)]


def _chain(op, batch: np.ndarray, tile_size: int | None) -> list[np.ndarray]:
    from convfilter.engine.stack import run_stack

    return run_stack(batch, op)


ENGINES = {"blocked": _convolution, "keras": _convolution, "transpose": _convolution, "pool": _pool}
ENGINES["chain"] = _chain


def apply(op: Operation, batch: np.ndarray, *, tile_size: int | None = None) -> list[np.ndarray]:
    """Run ``B*C x H x W`` images of one size through ``op``; every stage's ``B x H' x W'`` float32 output.

    ``C`` is ``op.channels`` (the planes of one image follow each other). A
    convolution of any kind (N filters, C channels, transposed) or a pool has
    one stage; a chain runs as one Keras model (:func:`convfilter.engine.stack.run_stack`).
    ``tile_size`` tiles a large convolution (:mod:`convfilter.engine.tiles`). The images must fit ``op``.
    """
    return ENGINES[op.layout](op, batch, tile_size)
