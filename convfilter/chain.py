"""``convfilter chain``: one image file through several stages in one Keras model.

The stages (:mod:`convfilter.stack`) run as one model, so intermediate
results stay float32; only the last stage's output is mapped to pixels
(``--range``) and written, atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from convfilter.errors import ConvFilterError
from convfilter.imageio import (
    FORMATS_WITH_16_BIT,
    check_depth,
    check_writable,
    output_format,
    read_gray,
    same_file,
    write_pixels,
)
from convfilter.pixels import RANGE_MODES, to_pixels
from convfilter.stack import Stage, run_stack, stack_is_averaging, stack_shapes


@dataclass
class ChainResult:
    """What :func:`chain_file` did: shapes, every stage's raw output and the mapping used."""

    input: str
    output: str
    input_shape: tuple[int, int]
    shapes: list[tuple[int, int]]
    range_mode: str
    depth: int
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
    depth: int | None = None,
) -> ChainResult:
    """Run the image at ``input_path`` through ``stages`` and write the last output to ``output_path``.

    ``range_mode`` and ``depth`` are as for :func:`convfilter.pipeline.filter_file`.
    Raises ``ValueError`` for bad arguments and :class:`ConvFilterError` for
    problems with the files, including a stage whose output would be empty.
    """
    if not stages:
        raise ValueError("a chain needs at least one stage")
    mode = resolve_chain_range(range_mode, stages)
    fmt = output_format(output_path)
    if depth is not None:
        check_depth(output_path, fmt, depth)
    check_writable(output_path)
    if same_file(input_path, output_path):
        raise ConvFilterError(f"{output_path}: is the input file; refusing to overwrite it")

    image = read_gray(input_path)
    try:
        shapes = stack_shapes(stages, image.pixels.shape)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    if depth is None:
        depth = 16 if image.depth == 16 and fmt in FORMATS_WITH_16_BIT else 8
    outputs = run_stack(image.pixels, stages)
    pixels = to_pixels(outputs[-1], mode, in_max=image.max_value, depth=depth)
    write_pixels(output_path, pixels, fmt, dpi=image.info.get("dpi"))
    return ChainResult(
        input=input_path,
        output=output_path,
        input_shape=image.pixels.shape,
        shapes=shapes,
        range_mode=mode,
        depth=depth,
        input_max=image.max_value,
        input_values=image.pixels,
        outputs=outputs,
    )
