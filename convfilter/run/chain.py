"""``convfilter chain``: one image file through several stages in one Keras model.

The stages (:mod:`convfilter.engine.stack`) run as one model, so intermediate
results stay float32; only the last stage's output is mapped to pixels
(``--range``) and written, atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from convfilter.io.atomic import exists_message
from convfilter.errors import ConvFilterError
from convfilter.io.images import DEFAULT_MAX_PIXELS
from convfilter.io.matrices import is_matrix_path
from convfilter.run.files import output_target, plan_output, read_input, write_output
from convfilter.io.pixels import RANGE_MODES
from convfilter.engine.stack import Stage, run_stack, stack_is_averaging, stack_shapes


@dataclass
class ChainResult:
    """What :func:`chain_file` did: shapes, every stage's raw output and the mapping used."""

    input: str
    output: str
    input_shape: tuple[int, int]
    shapes: list[tuple[int, int]]
    range_mode: str
    depth: int | str
    input_max: float
    input_values: np.ndarray = field(repr=False)
    outputs: list[np.ndarray] = field(repr=False)


def resolve_chain_range(range_mode: str, stages: Sequence[Stage]) -> str:
    """``auto`` means ``clip`` when every stage keeps the input's range, else ``rescale``."""
    if range_mode not in RANGE_MODES:
        raise ValueError(
            f"The `range` argument must be one of {', '.join(RANGE_MODES)}. Received: {range_mode!r}"
        )
    if range_mode == "auto":
        return "clip" if stack_is_averaging(stages) else "rescale"
    return range_mode


def chain_file(
    input_path: str,
    output_path: str,
    stages: Sequence[Stage],
    *,
    range_mode: str = "auto",
    depth: int | str | None = None,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
    overwrite: bool = True,
) -> ChainResult:
    """Run the image or matrix at ``input_path`` through ``stages``; write the last output to ``output_path``.

    ``range_mode``, ``depth``, ``frame``, ``max_pixels`` and ``quality`` are as
    for :func:`convfilter.run.files.filter_file` (grayscale only). Raises
    ``ValueError`` for bad arguments and :class:`ConvFilterError` for problems
    with the files, including a stage whose output would be empty. With
    ``overwrite=False`` an existing ``output_path`` is refused before any work
    (and never replaced, even one created meanwhile).
    """
    if not stages:
        raise ValueError("a chain needs at least one stage")
    if is_matrix_path(output_path) and range_mode != "auto":
        raise ValueError(
            f"{output_path}: range {range_mode!r} applies to image outputs; a matrix file holds raw floats"
        )
    mode = resolve_chain_range(range_mode, stages)
    plan = plan_output(input_path, output_path, mode, depth, quality=quality)
    if not overwrite and os.path.lexists(output_path):
        raise ConvFilterError(exists_message(output_path))
    data = read_input(input_path, frame=frame, max_pixels=max_pixels)
    try:
        shapes = stack_shapes(stages, data.shape)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    used_depth, out_mode = output_target(plan, data, input_path)
    outputs = run_stack(data.channels[0], stages)
    used_mode = write_output(plan, data, outputs[-1][np.newaxis], used_depth, out_mode, replace=overwrite)
    return ChainResult(
        input=input_path,
        output=output_path,
        input_shape=data.shape,
        shapes=shapes,
        range_mode=used_mode,
        depth=used_depth,
        input_max=data.max_value,
        input_values=data.channels[0],
        outputs=outputs,
    )
