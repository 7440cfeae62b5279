"""``--combine stack``: a filter bank's N responses to one input, as one ``H x W x N`` array or N images.

Every other ``--combine`` gives one image per input and runs through the
:class:`~convfilter.run.runner.Runner` like any operation; this one writes N
outputs for one input. Every output is planned and checked before the
model runs, and each is written atomically.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

import numpy as np

from convfilter.errors import ConvFilterError
from convfilter.io.atomic import atomic_file
from convfilter.io.pixels import resolve_range
from convfilter.ops.conv import Conv2DSpec
from convfilter.run.files import output_target, plan_output, read_input, write_output
from convfilter.run.jobs import OutputSettings
from convfilter.run.runner import check_output_pixels, png_params


@dataclass
class StackResult:
    """What was written: the input's shape, the responses' ``H' x W' x N`` shape and the files."""

    input: str
    input_shape: tuple[int, int]
    shape: tuple[int, int, int]
    outputs: list[str]
    minimum: float
    maximum: float


def stack_names(
    input_path: str, output_dir: str, names: tuple[str, ...], ext: str | None = None
) -> list[str]:
    """``DIR/<input stem>-<filter name>.<ext>`` for every filter (``-2``, ``-3`` ... for a repeated name).

    ``ext`` defaults to the input's own extension (``.npy`` for a matrix input).
    """
    stem, own = os.path.splitext(os.path.basename(input_path))
    ext = "." + ext.lstrip(".") if ext else own
    paths, seen = [], {}
    for name in names:
        label = re.sub(r"[^0-9A-Za-z_.-]+", "_", name).strip("_") or "filter"
        seen[label] = seen.get(label, 0) + 1
        suffix = "" if seen[label] == 1 else f"-{seen[label]}"
        paths.append(os.path.join(output_dir, f"{stem}-{label}{suffix}{ext}"))
    return paths


def write_stack(
    input_path: str, outputs: str | list[str], op: Conv2DSpec, settings: OutputSettings
) -> StackResult:
    """Run ``op`` on one input and write its N responses.

    ``outputs`` is one ``.npy`` path (the ``H' x W' x N`` raw float32 array)
    or N paths, one per filter: images (each filter's range mapped as a single
    filter with that kernel would map it) or matrix files (raw values).
    Existing files are refused, all of them before any work, unless ``settings.overwrite``.
    """
    from convfilter.engine.conv import filter_batch

    single = isinstance(outputs, str)
    paths = [outputs] if single else list(outputs)
    if single and os.path.splitext(outputs)[1].lower() != ".npy":
        raise ConvFilterError(
            f"{outputs}: --combine stack makes an H x W x N array, which only .npy holds; "
            "use OUTPUT.npy, or -o DIR for one image per filter"
        )
    if not single and len(paths) != op.filters:
        raise ValueError(f"one output per filter: {len(paths)} for {op.filters}")
    if not settings.overwrite:
        for path in paths:
            if os.path.lexists(path):
                raise ConvFilterError(f"{path}: already exists (use --overwrite to replace it)")
    plans = []
    if not single:
        for index, path in enumerate(paths):
            kernel = op.kernel[:, :, :, index : index + 1]
            filter_op = Conv2DSpec(kernel, convolve=op.convolve, bias=op.bias, transpose=op.transpose)
            mode = resolve_range(settings.range_request, filter_op)
            plans.append(
                plan_output(
                    input_path, path, mode, settings.depth, quality=settings.quality, create_dirs=True
                )
            )
    else:  # checked as any output is (writable, not the input); the array itself is written below
        plan_output(input_path, outputs, "clip", None)
    data = read_input(
        input_path,
        frame=settings.frame,
        max_pixels=settings.max_pixels,
        channels=op.channels,
        keep_dtype=True,
    )
    try:
        out_shape = op.output_shape(data.shape)
    except ConvFilterError as exc:
        raise type(exc)(f"{input_path}: {exc}") from None
    check_output_pixels(input_path, out_shape, settings.max_pixels)
    responses = filter_batch(data.channels, replace(op, combine="stack"), tile_size=settings.tile_size)[0]
    if single:
        with atomic_file(outputs, replace=settings.overwrite) as handle:
            np.save(handle, responses, allow_pickle=False)
    else:
        for index, plan in enumerate(plans):
            params = png_params(settings.png_compression) if plan.fmt == "PNG" else {}
            depth, mode = output_target(plan, data, input_path)
            values = responses[np.newaxis, ..., index]
            write_output(plan, data, values, depth, mode, replace=settings.overwrite, **params)
    return StackResult(
        input_path,
        data.shape,
        responses.shape,
        paths,
        float(np.nanmin(responses)),
        float(np.nanmax(responses)),
    )
