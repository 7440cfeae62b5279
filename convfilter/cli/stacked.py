"""N filters whose outputs are kept apart: one ``H x W x N`` array, or one image per filter.

``bank --combine stack`` and a 4-D ``--kernel @w.npy`` with N > 1 filters
both end here: one INPUT, every output planned and checked before the model
runs (:func:`convfilter.run.bank.write_stack`).
"""

from __future__ import annotations

import click
import numpy as np

from convfilter.cli.options import BatchOptions
from convfilter.errors import ConvFilterError, ExitStatus, printable
from convfilter.figures import value_range
from convfilter.ops.conv import Conv2DSpec
from convfilter.ops.kernels import format_grid
from convfilter.run.files import FilterResult
from convfilter.run.jobs import OutputSettings


def report_bank(
    op: Conv2DSpec, used: dict, result: FilterResult | None, lines_only: bool = False
) -> list[str]:
    """The ``-v`` lines: shapes, every filter's weights, the weight tensor's shape and the layer."""
    kh, kw = op.window
    shown = ", ".join(f"{key}={value}" for key, value in used.items())
    biases = f" + {op.filters} biases" if op.bias else ""
    c = op.channels
    per = f"*{c}" if c > 1 else ""
    lines = []
    if result is not None:
        (h, w) = result.input_shape
        lines.append(f"input:   {result.input}: {h}x{w} (tensor {result.channels}x{h}x{w}x1)")
    lines.append(
        f"filters: {op.filters}, each {kh}x{kw}" + (f" ({shown})" if shown else "") + f": weights shape "
        f"({kh}, {kw}, {c}, {op.filters}), {op.params:,} trainable ({op.filters}*{kh}*{kw}{per}{biases})"
    )
    for index, name in enumerate(op.names):
        flipped = " (flipped for --convolve)" if op.convolve else ""
        lines.append(f"  {index}: {name}{flipped}")
        for channel in range(c):
            if c > 1:
                lines.append(f"         channel {channel + 1}:")
            grid = op.weights4[:, :, channel, index]
            lines += ["         " + row for row in format_grid(grid).splitlines()]
    lines.append(f"layer:   {op.describe()}")
    if result is not None:
        oh, ow = result.output_shape
        lines.append(
            f"output:  {result.output}: {oh}x{ow}, range {result.range_mode} of raw values "
            f"{result.minimum:.6g}..{result.maximum:.6g}"
        )
    return lines


def write_stacked(
    op: Conv2DSpec, paths, batch: BatchOptions, output: dict, used: dict, verbose: bool, export_path
):
    """N filters kept apart (``bank --combine stack``, a 4-D kernel with N > 1): one INPUT, to
    OUTPUT.npy or one file per filter in -o DIR."""
    from convfilter.cli.side import check_side_outputs
    from convfilter.run.bank import stack_names, write_stack

    batch_only = [
        name
        for name, value in (
            ("--output-template", batch.output_template),
            ("--files-from", batch.files_from),
            ("--recursive", batch.recursive or None),
            ("--skip-existing", batch.skip_existing or None),
            ("--json", batch.json_lines or None),
            ("--dask", batch.dask),
            ("--color", output["color"] or None),
        )
        if value is not None
    ]
    if batch_only:
        raise click.UsageError(
            f"--combine stack writes the N outputs of the INPUTs given; leave out {batch_only[0]}"
        )
    if batch.output_dir is None and len(paths) != 2:
        raise click.UsageError(
            f"N filters kept apart take INPUT OUTPUT.npy, or INPUT... -o DIR; got {len(paths)} path(s)"
        )
    if batch.output_dir is not None and not paths:
        raise click.UsageError("give at least one INPUT before -o DIR")
    inputs = paths[:1] if batch.output_dir is None else list(paths)
    if "-" in inputs:
        raise click.UsageError("N filters kept apart read files, not standard input")
    if export_path and len(inputs) > 1:
        raise click.UsageError("--export describes one file: give one INPUT")
    settings = OutputSettings(**output, png_compression=batch.png_compression, overwrite=batch.overwrite)
    plans = []
    for input_path in inputs:  # every output named and checked before any work
        if batch.output_dir is not None:
            plans.append((input_path, stack_names(input_path, batch.output_dir, op.names, batch.out_format)))
        else:
            plans.append((input_path, paths[1]))
    if export_path:
        shown = plans[0][1] if isinstance(plans[0][1], str) else None
        check_side_outputs(
            inputs[0],
            shown,
            None,
            export_path,
            border=op.border,
            padding=op.padding,
            overwrite=batch.overwrite,
        )
    written, failed = 0, 0
    for input_path, outputs in plans:
        try:
            result = write_stack(input_path, outputs, op, settings)
        except ConvFilterError as exc:
            if len(plans) == 1:
                raise
            click.echo(f"Error: {printable(str(exc))}", err=True)
            failed += 1
            if batch.fail_fast:
                break
            continue
        written += len(result.outputs)
        if export_path:
            from convfilter.export import export_stack

            export_stack(export_path, op.stages, result.input_shape, replace=batch.overwrite)
        if verbose:
            lines = report_bank(op, used, None)
            h, w = result.input_shape
            lines.insert(0, f"input:   {input_path}: {h}x{w} (tensor 1x{h}x{w}x{op.channels})")
            oh, ow, n = result.shape
            values = value_range(np.array([result.minimum, result.maximum]))
            lines.append(f"output:  {oh}x{ow}x{n} raw values {values} -> " + ", ".join(result.outputs))
            click.echo("\n".join(lines), err=True)
    if not batch.quiet and batch.output_dir is not None:
        per = f"one per filter, {op.filters} per input" if len(plans) > 1 else "one per filter"
        click.echo(f"{written} written ({per}) in {batch.output_dir}", err=True)
    if failed:
        raise click.exceptions.Exit(ExitStatus.ERROR)
