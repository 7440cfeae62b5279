"""N filters whose outputs are kept apart: one ``H x W x N`` array, or one image per filter.

``bank --combine stack`` and a 4-D ``--kernel @w.npy`` with N > 1 filters
both end here: one INPUT, every output planned and checked before the model
runs (:func:`convfilter.run.bank.write_stack`).
"""

from __future__ import annotations

import click
import numpy as np

from convfilter.cli.options import BatchOptions
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
            f"--combine stack writes the N outputs of one INPUT; leave out {batch_only[0]}"
        )
    expected = 1 if batch.output_dir is not None else 2
    if len(paths) != expected:
        form = "INPUT -o DIR" if batch.output_dir is not None else "INPUT OUTPUT.npy (or INPUT -o DIR)"
        raise click.UsageError(f"--combine stack takes one input: give {form}, got {len(paths)} path(s)")
    input_path = paths[0]
    if input_path == "-":
        raise click.UsageError("--combine stack reads a file, not standard input")
    if batch.output_dir is not None:
        outputs = stack_names(input_path, batch.output_dir, op.names, batch.out_format)
    else:
        outputs = paths[1]
    if export_path:
        shown = outputs if isinstance(outputs, str) else None
        check_side_outputs(
            input_path,
            shown,
            None,
            export_path,
            border=op.border,
            padding=op.padding,
            overwrite=batch.overwrite,
        )
    settings = OutputSettings(**output, png_compression=batch.png_compression, overwrite=batch.overwrite)
    result = write_stack(input_path, outputs, op, settings)
    if export_path:
        from convfilter.export import export_stack

        export_stack(export_path, op.stages, result.input_shape)
    if verbose:
        lines = report_bank(op, used, None)
        h, w = result.input_shape
        lines.insert(0, f"input:   {input_path}: {h}x{w} (tensor 1x{h}x{w}x1)")
        oh, ow, n = result.shape
        lines.append(
            f"output:  {oh}x{ow}x{n} raw values {value_range(np.array([result.minimum, result.maximum]))} "
            f"-> " + ", ".join(result.outputs)
        )
        click.echo("\n".join(lines), err=True)
    if not batch.quiet and batch.output_dir is not None:
        click.echo(f"{len(result.outputs)} written (one per filter) in {batch.output_dir}", err=True)
