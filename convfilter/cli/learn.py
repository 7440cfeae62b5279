"""``convfilter learn BEFORE AFTER``: train the Conv2D to find the kernel that turns one into the other."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.options import max_pixels_option, picked_params, show_options, storage_options_option
from convfilter.cli.side import check_distinct, check_side_outputs, refuse_existing
from convfilter.errors import ConvFilterError
from convfilter.export import export_stack
from convfilter.figures import compare_figure, stage_settings
from convfilter.learn import (
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    check_kernel_path,
    learn_kernel,
    read_pair,
    save_kernel,
)
from convfilter.ops.conv import MAX_CHANNELS
from convfilter.ops.kernels import MAX_KERNEL_SIZE, format_grid
from convfilter.ops.spec import Conv2DSpec, check_border_use

LEARN_HELP = """Learn the kernel that turns BEFORE into AFTER by training a Conv2D with Keras.

Trains the same single-filter Conv2D the filtering commands run (same
--stride, --padding, --dilation) with model.fit, the Adam optimizer and a
mean-squared-error loss, full batch: one epoch is one gradient step over the
whole image. Prints the learned grid, the bias (with --bias), the final error
and the epochs used; -o saves the kernel as .csv/.txt (rows of numbers) or
.npy, which 'custom --kernel @FILE' reads.

BEFORE and AFTER are images or matrix files (.npy, .csv, .txt: numbers used
as they are). 8-bit AFTER images were rounded, clipped or rescaled when they
were written, so what is learned from them is approximate; a 16-bit AFTER of an
averaging kernel (written with clip) or a matrix file gives an exact recovery.

\b
Example:
  convfilter gaussian in.png after.png --size 5 --depth 16
  convfilter learn in.png after.png --size 5 -o gaussian.csv
"""


def _progress(epochs: int, total: int, loss: float) -> None:
    click.echo(f"\repoch {epochs}/{total}  loss {loss:.3e}  ", err=True, nl=False)


def learn_command(conv_options: Callable) -> click.Command:  # long: mostly option declarations
    """The ``learn`` command."""

    @click.command(
        "learn",
        cls=Command,
        help=LEARN_HELP,
        short_help="Learn a kernel back from BEFORE and AFTER.",
        context_settings=CONTEXT_SETTINGS,
    )
    @click.argument("before_path", metavar="BEFORE")
    @click.argument("after_path", metavar="AFTER")
    @click.option(
        "--size",
        type=click.IntRange(1, MAX_KERNEL_SIZE),
        required=True,
        metavar="K",
        help="Side of the K x K kernel to learn.",
    )
    @click.option(
        "-o",
        "--output",
        "kernel_path",
        metavar="KERNEL",
        default=None,
        help="Save the learned kernel: .csv or .txt (rows of numbers) or .npy.",
    )
    @click.option(
        "--bias/--no-bias",
        "learn_bias",
        default=False,
        show_default=True,
        help="Also learn the layer's bias.",
    )
    @click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=DEFAULT_EPOCHS,
        show_default=True,
        help="At most this many epochs (stops early once the error stops falling).",
    )
    @click.option(
        "--learning-rate",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_LEARNING_RATE,
        show_default=True,
        help="Adam's learning rate.",
    )
    @click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the initial weights.",
    )
    @click.option(
        "--overwrite", is_flag=True, help="Replace -o KERNEL, --compare and --export files that exist."
    )
    @max_pixels_option(
        "Refuse BEFORE or AFTER images with more pixels than this (a decompression-bomb guard)."
    )
    @click.option(
        "--channels",
        type=click.IntRange(1, MAX_CHANNELS),
        default=1,
        show_default=True,
        metavar="C",
        help="Read BEFORE's C channels (alpha too) and learn a (K, K, C, 1) kernel reading them all "
        "(saved as .npy).",
    )
    @storage_options_option()
    @show_options
    def learn(
        before_path,
        after_path,
        size,
        max_pixels,
        channels,
        storage_options,
        kernel_path,
        learn_bias,
        epochs,
        learning_rate,
        seed,
        overwrite,
        compare_path,
        export_path,
        stride,
        padding,
        dilation,
        border,
    ):
        from convfilter.engine.conv import filter_array

        check_border_use(border, padding)
        if kernel_path:
            check_kernel_path(kernel_path)
            if channels > 1 and not kernel_path.lower().endswith(".npy"):
                raise click.BadParameter(
                    f"{kernel_path}: a (K, K, {channels}, 1) kernel is saved as .npy", param_hint="'-o'"
                )
        refuse_existing([kernel_path], overwrite)
        check_distinct({"BEFORE": before_path, "AFTER": after_path}, {"--output": kernel_path})
        check_side_outputs(
            before_path,
            after_path,
            compare_path,
            export_path,
            border=border,
            padding=padding,
            overwrite=overwrite,
        )
        before, after = read_pair(before_path, after_path, channels, max_pixels)
        progress = _progress if sys.stderr.isatty() else None
        try:
            result = learn_kernel(
                before,
                after,
                size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                border=border,
                learn_bias=learn_bias,
                epochs=epochs,
                learning_rate=learning_rate,
                seed=seed,
                progress=progress,
            )
        except ConvFilterError as exc:  # what BEFORE and AFTER hold; a bad option stays a usage error
            raise click.ClickException(f"{after_path}: {exc}") from None
        finally:
            if progress is not None:
                click.echo(err=True)
        _print_learned(result, stride, padding, dilation)
        stage = Conv2DSpec(result.kernel, stride, padding, dilation, result.bias or 0.0, name="learned")
        if kernel_path:
            save_kernel(kernel_path, result.kernel, replace=overwrite)
            click.echo(f"kernel written to {kernel_path}")
        if compare_path:
            settings = {"stride": stride, "padding": padding, "dilation": dilation, "border": border}
            output = filter_array(before, result.kernel, bias=result.bias or 0.0, **settings)
            compare_figure(
                compare_path,
                before if channels == 1 else before[..., 0],
                [stage],
                [output],
                input_max=None,
                title=f"learned from {before_path} → {after_path}: BEFORE, the learned kernel, its output",
                input_note="" if channels == 1 else f" (channel 1 of {channels})",
                replace=overwrite,
            )
        if export_path:
            export_stack(export_path, [stage], before.shape[:2], replace=overwrite)

    learn.params.extend(picked_params(conv_options, ("stride", "padding", "dilation", "border")))
    return learn


def _print_learned(result, stride, padding, dilation) -> None:
    kh, kw = result.kernel.shape[:2]
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    stage = Conv2DSpec(result.kernel, stride, padding, dilation)
    shape = f"{kh}x{kw}" if result.kernel.ndim == 2 else f"{kh}x{kw}x{stage.channels}x1"
    lines = [f"learned {shape} kernel: BEFORE {h}x{w} -> AFTER {oh}x{ow} ({stage_settings(stage)})"]
    grids = (
        [result.kernel]
        if result.kernel.ndim == 2
        else [result.kernel[:, :, c, 0] for c in range(stage.channels)]
    )
    for channel, grid in enumerate(grids, start=1):
        if len(grids) > 1:
            lines.append(f"  channel {channel}:")
        lines.append("\n".join("  " + row for row in format_grid(grid).splitlines()))
    if result.bias is not None:
        lines.append(f"bias: {result.bias:.6g}")
    lines.append(
        f"final error: mean squared {result.error:.3g}, largest {result.max_error:.3g} (in BEFORE's scale)"
    )
    why = (
        ", stopped early: the error stopped falling"
        if result.stopped_early
        else " (all of them: raise --epochs if the error was still falling)"
    )
    lines.append(f"epochs: {result.epochs} of {result.max_epochs}{why}")
    click.echo("\n".join(lines))
