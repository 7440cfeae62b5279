"""The filtering commands: one per named kernel (``blur``, ``edge`` ...) and ``custom --kernel SPEC``.

Each builds its :class:`~convfilter.ops.spec.Conv2DSpec` from the options and
hands it to :func:`run_op`, which every command that runs a model shares.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import click
import numpy as np

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.files import filter_paths, is_single
from convfilter.cli.options import (
    BatchOptions,
    batch_options,
    conv_options,
    kernel_options,
    scale_option,
    show_options,
    split_conv,
    transpose_options,
)
from convfilter.cli.report import report_conv
from convfilter.cli.side import check_side_outputs, write_side_outputs
from convfilter.ops.kernels import NamedKernel, format_grid
from convfilter.ops.spec import Conv2DSpec, Operation
from convfilter.run.files import FilterResult
from convfilter.run.jobs import OutputSettings

EXAMPLES = {
    "blur": "convfilter blur sample_images/ascent.png out.png --stride 2 1",
    "gaussian": "convfilter gaussian in.png out.png --size 7 --sigma 2 --padding same --border reflect",
    "random": "convfilter random in.png out.png --seed 7 --size 5",
    "identity": "convfilter identity in.png half.png --size 1 --stride 2 2",
}


def mix_channels_option(command):
    """``--mix-channels``: one Conv2D reading every channel of the input, the kernel spread over them."""
    return click.option(
        "--mix-channels",
        is_flag=True,
        help="Read every channel of the input (alpha too) with one Conv2D(1, ...): the kernel spread "
        "over the C channels as weights k / C (C from the first INPUT). Writes one channel.",
    )(command)


def check_single_side_outputs(paths: Sequence[str], batch: BatchOptions, compare, export, **settings) -> None:
    """``--compare`` and ``--export`` describe one file: only the form INPUT OUTPUT; checked before work."""
    if not (compare or export):
        return
    if not is_single(paths, batch):
        raise click.UsageError("--compare and --export work on one file: give INPUT OUTPUT, not a batch.")
    check_side_outputs(paths[0], paths[1], compare, export, overwrite=batch.overwrite, **settings)


def conv_settings(params: dict, paths, batch: BatchOptions, compare, export) -> tuple[dict, dict]:
    """Take the convolution's and the output's settings out of ``params``, side outputs checked first."""
    conv, output = split_conv(params)
    check_single_side_outputs(
        paths, batch, compare, export, color=output["color"], border=conv["border"], padding=conv["padding"]
    )
    return conv, output


def conv_op(
    grid, conv: dict, transpose: bool, output_padding, name: str, mix_channels: int | None = None
) -> Conv2DSpec:
    """The layer the options ask for: a ``Conv2D``, or with ``--transpose`` a ``Conv2DTranspose``.

    A 4-D ``grid`` ``(kh, kw, C, N)`` reads C channels with N filters, kept
    apart; ``mix_channels`` C spreads a 2-D grid over C channels as ``grid / C``.
    """
    if mix_channels is not None:
        if np.ndim(grid) != 2:
            raise click.BadParameter(
                "takes a 2-D kernel (a 4-D one has its channels)", param_hint="'--mix-channels'"
            )
        grid = np.repeat(np.asarray(grid)[:, :, np.newaxis, np.newaxis] / mix_channels, mix_channels, axis=2)
    return Conv2DSpec(
        grid, **conv, name=name, transpose=transpose, output_padding=output_padding, combine="stack"
    )


def input_channels(paths: Sequence[str]) -> int:
    """The first input's channels (bands, alpha included; a matrix's third axis), for --mix-channels."""
    from convfilter.run.files import count_channels

    if not paths or paths[0] == "-":
        raise click.UsageError("--mix-channels counts the first INPUT's channels: give a file, not '-'")
    return count_channels(paths[0])


def run_op(
    op: Operation,
    paths: Sequence[str],
    batch: BatchOptions,
    output: dict,
    *,
    report=None,
    compare_path: str | None = None,
    export_path: str | None = None,
    too_small_param: str | None = None,
) -> None:
    """Run ``op`` on ``paths`` (one file, a batch or a pipe) with ``output`` (OutputSettings keywords).

    ``report(op, result)`` prints ``-v``; ``compare_path``/``export_path``
    (single-file form only) are written after the output.
    """
    if op.channels > 1 and output["color"]:
        raise click.UsageError(
            f"--color filters each channel on its own (a DepthwiseConv2D); this kernel's weights read all "
            f"{op.channels} channels at once (a Conv2D): leave out --color"
        )
    if op.out_channels > 1:  # N filters kept apart: one H x W x N array or one image per filter
        from convfilter.cli.stacked import write_stacked

        write_stacked(op, paths, batch, output, {}, report is not None, export_path)
        return
    if compare_path:  # the figure shows every raw value: no tile-by-tile pixel rendering
        output = {**output, "tile_size": None}
    settings = OutputSettings(**output, png_compression=batch.png_compression, overwrite=batch.overwrite)

    def describe(result: FilterResult) -> None:
        if report is not None:
            report(op, result)
        write_side_outputs(op, result, compare_path, export_path, overwrite=batch.overwrite)

    wanted = report is not None or compare_path or export_path
    filter_paths(
        op.name,
        paths,
        batch,
        op,
        settings,
        describe if wanted else None,
        too_small_param=too_small_param,
        keep_stages=bool(compare_path or report) and len(op.stages) > 1,
    )


def make_kernel_command(kernel: NamedKernel) -> click.Command:
    """The command of one named kernel: its grid's options, the convolution's, the batch options."""
    example = EXAMPLES.get(kernel.name, f"convfilter {kernel.name} in.png out.png --padding same")
    grid_doc = "" if kernel.options else "\n\n\b\nWeights:\n" + _indent(format_grid(kernel.build()))
    help_text = (
        f"Filter images with the {kernel.name} kernel: {kernel.summary}.{grid_doc}"
        f"\n\n\b\nForms:\n  {_forms(kernel.name)}"
        f"\n\n\b\nExample:\n  {example}"
    )

    @click.command(
        kernel.name, cls=Command, help=help_text, short_help=kernel.summary, context_settings=CONTEXT_SETTINGS
    )
    @click.argument("paths", metavar="INPUT... [OUTPUT]", nargs=-1)
    @kernel_options(kernel)
    @mix_channels_option
    @scale_option
    @conv_options
    @transpose_options
    @batch_options
    @show_options
    def command(
        paths,
        mix_channels,
        scale,
        verbose,
        batch,
        compare_path,
        export_path,
        transpose,
        output_padding,
        **params,
    ):
        conv, output = conv_settings(params, paths, batch, compare_path, export_path)
        if "seed" in kernel.options and params.get("seed") is None:
            params["seed"] = secrets.randbelow(2**31)
        grid = kernel.grid(**params)
        if scale is not None:
            grid = grid * scale
            params["scale"] = scale
        channels = input_channels(paths) if mix_channels else None
        op = conv_op(grid, conv, transpose, output_padding, kernel.name, channels)
        report = (lambda op, result: report_conv(op, params, result)) if verbose else None
        run_op(op, paths, batch, output, report=report, compare_path=compare_path, export_path=export_path)

    return command


CUSTOM_HELP = """Filter images or matrices with your own kernel, given by --kernel SPEC.

\b
SPEC is one of:
  "1,0,-1"             inline rows: values split by , or spaces (1x3)
  "1,0.5;0.5,1"        rows split by ; (2x2)
  "[[1,0.5],[0.5,1]]"  a JSON nested list
  @kernel.npy          a matrix file: .npy, .csv or .txt

Parsing is strict: empty, ragged, non-numeric, NaN/infinite or larger than
101x101 kernels are refused. INPUT and OUTPUT may be images or matrix files
(.npy .csv .txt): matrices are used and written as raw float values.

\b
Examples:
  convfilter custom --kernel "1,-1" signal.csv diff.csv
  convfilter custom --kernel "1,2,1;2,4,2;1,2,1" --normalize in.png out.png
  convfilter custom --kernel "1,1" --padding full --convolve a.csv out.csv
  convfilter custom --kernel "1,-1" a.png b.png c.png -o out/

Takes one INPUT OUTPUT pair, or many inputs with -o DIR, --recursive,
--files-from and the other batch options, exactly as the named kernels do.
"""


@click.command(
    "custom",
    cls=Command,
    help=CUSTOM_HELP,
    short_help="your own weights: --kernel SPEC",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("paths", metavar="INPUT... [OUTPUT]", nargs=-1)
@click.option(
    "--kernel",
    "spec",
    required=True,
    metavar="SPEC",
    help='The weights: "1,0,-1", "1,0.5;0.5,1", "[[1,0.5],[0.5,1]]" or @file (.npy .csv .txt).',
)
@click.option("--normalize", is_flag=True, help="Divide the weights by their sum (refused if it is 0).")
@mix_channels_option
@scale_option
@conv_options
@transpose_options
@batch_options
@show_options
def custom_command(  # long: the options of one command, resolved into one operation
    paths,
    spec,
    normalize,
    mix_channels,
    scale,
    verbose,
    batch,
    compare_path,
    export_path,
    transpose,
    output_padding,
    **params,
):
    from convfilter.io import kernelspec

    conv, output = conv_settings(params, paths, batch, compare_path, export_path)
    grid = kernelspec.parse_kernel(spec)
    if normalize:
        grid = kernelspec.normalize(grid, spec)
    if scale is not None:
        grid = grid * scale
    channels = input_channels(paths) if mix_channels else None
    op = conv_op(grid, conv, transpose, output_padding, "custom", channels)
    shown = {"kernel": spec, "normalize": normalize, "scale": scale}
    report = (lambda op, result: report_conv(op, shown, result)) if verbose else None
    run_op(
        op,
        paths,
        batch,
        output,
        report=report,
        compare_path=compare_path,
        export_path=export_path,
        too_small_param="'--kernel'",
    )


def _forms(name: str) -> str:
    prefix = f"convfilter {name}"
    return "\n  ".join(
        [
            f"{prefix} INPUT OUTPUT          one file; '-' is standard input/output",
            f"{prefix} INPUT... -o DIR       many files in one call, named like the inputs",
            f"{prefix} DIR -r -o OUT         every image below DIR, the tree kept in OUT",
            f"{prefix} --files-from - --null -o OUT   paths from find -print0",
        ]
    )


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
