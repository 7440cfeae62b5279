"""``convfilter animate OUT.gif``: a convolution (or a transposed one) drawn step by step."""

from __future__ import annotations

import click
import numpy as np

from convfilter.cli.bank import build_kernels
from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.filtering import conv_op
from convfilter.cli.options import CONV_SETTINGS, conv_options, picked_params, transpose_options
from convfilter.cli.side import refuse_existing
from convfilter.ops.kernels import MAX_KERNEL_SIZE

ANIMATE_HELP = """Draw a convolution step by step, as an animated GIF (or APNG for .png).

\b
Two ways to say what to draw:
  --shape H W --kernel-size KH KW    the geometry: where every window lies
  --input FILE --kernel NAME|SPEC    real values: each step's products and sum,
                                     the numbers the Keras layer computes

One frame per output position (per input position with --transpose), plus
an opening and a closing frame: the padded input (padding pale grey), the
window's taps (orange; dilation leaves gaps), and the output filling in.
--stride, --padding, --dilation, --border, --convolve, --bias, --transpose and
--output-padding mean what they mean for the filtering commands. At most 400
steps; FILE is a small image or matrix file (.npy .csv .txt).

\b
Examples:
  convfilter animate valid.gif --shape 5 5 --kernel-size 3 3
  convfilter animate same.gif --shape 5 5 --kernel-size 3 3 --padding same
  convfilter animate dilated.gif --shape 7 7 --kernel-size 3 3 --dilation 2 2
  convfilter animate up.gif --shape 3 3 --kernel-size 3 3 --transpose --stride 2 2
  convfilter animate sobel.png --input small.csv --kernel sobel-x --fps 1
"""


@click.command(
    "animate",
    cls=Command,
    help=ANIMATE_HELP,
    short_help="an animated GIF of a convolution, step by step",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("output", metavar="OUT.gif")
@click.option(
    "--shape", nargs=2, type=click.IntRange(min=1), default=None, metavar="H W", help="Input rows, columns."
)
@click.option(
    "--kernel-size",
    nargs=2,
    type=click.IntRange(1, MAX_KERNEL_SIZE),
    default=None,
    metavar="KH KW",
    help="Kernel rows and columns.",
)
@click.option(
    "--input", "input_path", metavar="FILE", default=None, help="A small image or matrix: its values."
)
@click.option("--kernel", "kernel_arg", metavar="NAME|SPEC", default=None, help="A named kernel or a SPEC.")
@click.option(
    "--size", type=click.IntRange(1, MAX_KERNEL_SIZE), default=None, metavar="N", help="Named kernel's side."
)
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=None, help="gaussian's sigma.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="random's seed.")
@click.option(
    "--fps",
    type=click.FloatRange(0.1, 50),
    default=2.0,
    show_default=True,
    help="Steps per second (the first and last frames stay three times as long).",
)
@transpose_options
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def animate_command(  # long: the options resolved into one operation and one animation
    output,
    shape,
    kernel_size,
    input_path,
    kernel_arg,
    size,
    sigma,
    seed,
    fps,
    transpose,
    output_padding,
    overwrite,
    **conv,
):
    from convfilter.animation.draw import format_for, write
    from convfilter.animation.steps import build

    if (input_path is None) == (shape is None):
        raise click.UsageError(
            "give the input as --shape H W (geometry) or as --input FILE (values), one of them"
        )
    if input_path is not None and kernel_arg is None:
        raise click.UsageError(
            "--input FILE needs --kernel NAME|SPEC: the values are drawn with real weights"
        )
    if (kernel_size is None) == (kernel_arg is None):
        raise click.UsageError(
            "give the kernel as --kernel-size KH KW or as --kernel NAME|SPEC (one of them)"
        )
    format_for(output)
    refuse_existing([output], overwrite)
    if kernel_arg is not None:
        grids, names, _ = build_kernels([kernel_arg], {"size": size, "sigma": sigma, "seed": seed})
        grid, name = grids[0], names[0]
    else:
        grid, name = np.ones(kernel_size), "kernel"
    op = conv_op(grid, conv, transpose, output_padding, name)
    image = None
    if input_path is not None:
        from convfilter.errors import TooManyPixelsError
        from convfilter.run.files import read_input

        try:
            image = read_input(input_path, max_pixels=MAX_INPUT_PIXELS).channels[0].astype(np.float64)
        except TooManyPixelsError:  # no option raises this one: an animation draws a small input
            raise click.ClickException(
                f"{input_path}: an animation draws a small input (at most {MAX_INPUT_PIXELS} pixels; "
                "its steps are capped at 400); crop it first"
            ) from None
    animation = build(op, image, shape)
    count = write(output, animation, fps=fps, overwrite=overwrite)
    steps = len(animation.steps)
    click.echo(f"{output}: {count} frames, {steps} step{'s' if steps != 1 else ''}", err=True)


MAX_INPUT_PIXELS = 1 << 16
"""The largest --input an animation reads (its frames are capped long before)."""

animate_command.params.extend(picked_params(conv_options, CONV_SETTINGS))
