"""One file in, one file out, from Python: thin wrappers that run a one-file job.

Each builds its operation value (:mod:`convfilter.ops.spec`), runs a
:class:`~convfilter.run.jobs.Job` of one file through the one
:class:`~convfilter.run.runner.Runner` and returns what was done, raising
instead of reporting: :class:`~convfilter.errors.ArgumentError` for bad
arguments (including options the output cannot honour) and
:class:`~convfilter.errors.ConvFilterError` for problems with the files
(:class:`~convfilter.errors.ImageTooSmallError` when the image is smaller
than the window).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.engine.tiles import DEFAULT_TILE_SIZE
from convfilter.errors import ArgumentError, ConvFilterError, ImageTooSmallError
from convfilter.io.images import DEFAULT_MAX_PIXELS
from convfilter.ops.spec import ChainSpec, Conv2DSpec, Operation, PoolSpec, Stage
from convfilter.run.files import FilterResult
from convfilter.run.jobs import FAILED, FileJob, Job, OutputSettings, check_jobs
from convfilter.run.runner import Runner


def run_one(input_path: str, output_path: str, op: Operation, output: OutputSettings) -> FilterResult:
    """Run ``op`` on one file and write the result; raises as the module's doc says."""
    job = Job([FileJob(input_path, output_path)], op, output)
    check_jobs(job)
    file = job.files[0]
    if file.error is not None:
        raise (ArgumentError if file.usage else ConvFilterError)(file.error)
    for result in Runner(job, workers=1, keep_stages=len(op.stages) > 1).run():
        if result.status == FAILED:
            raise (ImageTooSmallError if result.too_small else ConvFilterError)(result.error)
        return result.detail
    raise ConvFilterError(f"{input_path}: skipped")  # pragma: no cover  (no skip without skip_existing)


def filter_file(
    input_path: str,
    output_path: str,
    kernel: np.ndarray,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    range_mode: str = "auto",
    depth: int | str | None = None,
    border: str = "zero",
    convolve: bool = False,
    color: bool = False,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
) -> FilterResult:
    """Filter the image or matrix at ``input_path`` with ``kernel`` and write ``output_path``.

    The convolution's arguments are those of :class:`~convfilter.ops.spec.Conv2DSpec`.
    ``depth`` is the output depth: 8, 16 (PNG/TIFF) or ``"32f"`` (TIFF: the
    raw float results, ``range_mode`` not applied); ``None`` keeps the input's
    precision where the output format can store it. ``color`` filters each
    colour channel and keeps the mode (alpha resampled, never filtered),
    otherwise the image is converted to grayscale (:mod:`convfilter.io.modes`).
    ``frame`` picks a frame of a multi-frame file; ``max_pixels`` is the
    decompression-bomb limit (``None``: none); ``quality`` is JPEG/WebP's.
    Outputs larger than ``tile_size`` x ``tile_size`` are computed in tiles.
    An existing ``output_path`` is replaced (never the input).
    """
    op = Conv2DSpec(kernel, stride, padding, dilation, bias, border, convolve)
    output = OutputSettings(
        range_mode, depth, color, frame, max_pixels, quality, None, overwrite=True, tile_size=tile_size
    )
    return run_one(input_path, output_path, op, output)


def pool_file(
    input_path: str,
    output_path: str,
    kind: str,
    size: int = 2,
    *,
    stride: int | Sequence[int] | None = None,
    padding: str = "valid",
    depth: int | None = None,
    overwrite: bool = True,
) -> FilterResult:
    """Max- or average-pool the image or matrix at ``input_path`` into ``output_path``.

    Pooled values stay within the input's range, so images are written with
    the ``clip`` mapping; matrix outputs get the raw float32 values. With
    ``overwrite=False`` an existing ``output_path`` is refused before any work.
    """
    op = PoolSpec(kind, size, stride, padding)
    return run_one(
        input_path, output_path, op, OutputSettings(depth=depth, png_compression=None, overwrite=overwrite)
    )


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
) -> FilterResult:
    """Run the image or matrix at ``input_path`` through ``stages`` in one Keras model; write the last output.

    The result's ``stage_values`` hold every stage's raw output.
    """
    output = OutputSettings(
        range_mode, depth, False, frame, max_pixels, quality, None, overwrite=overwrite, tile_size=None
    )
    return run_one(input_path, output_path, ChainSpec(tuple(stages)), output)
