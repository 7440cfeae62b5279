"""One entry point from an operation value to the Keras layer(s) that compute it."""

from __future__ import annotations

import numpy as np

from convfilter.ops.bank import BankSpec
from convfilter.ops.spec import ChainSpec, Conv2DSpec, Operation, PoolSpec
from convfilter.ops.transpose import TransposeSpec


def apply(op: Operation, batch: np.ndarray, *, tile_size: int | None = None) -> list[np.ndarray]:
    """Run ``N x H x W`` images of one size through ``op``; every stage's ``N x H' x W'`` float32 output.

    A convolution or a pool has one stage; a chain runs as one Keras model
    (:func:`convfilter.engine.stack.run_stack`). ``tile_size`` tiles a large
    convolution (:mod:`convfilter.engine.tiles`); a transposed convolution runs whole.
    The images must fit ``op``.
    """
    if isinstance(op, Conv2DSpec):
        from convfilter.engine.conv import filter_batch

        return [filter_batch(batch, op, tile_size=tile_size)]
    if isinstance(op, PoolSpec):
        from convfilter.engine.pool import pool_batch

        return [pool_batch(batch, op)]
    if isinstance(op, BankSpec):
        from convfilter.engine.bank import bank_batch

        return [bank_batch(batch, op)]
    if isinstance(op, TransposeSpec):
        from convfilter.engine.transpose import transpose_batch

        return [transpose_batch(batch, op)]
    if isinstance(op, ChainSpec):
        from convfilter.engine.stack import run_stack

        return run_stack(batch, op)
    raise TypeError(f"not an operation: {op!r}")
