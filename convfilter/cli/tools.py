"""The commands that run no model: ``kernels`` and ``explain`` (arithmetic and printing only).

They never import TensorFlow.
"""

from __future__ import annotations

import json
import math
import re
import secrets

import click
import numpy as np

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command, Group
from convfilter.cli.options import PADDING, max_pixels_option, transpose_options
from convfilter.errors import ArgumentError, ImageTooSmallError
from convfilter.ops.borders import BORDERS
from convfilter.ops.kernels import KERNELS, MAX_KERNEL_SIZE, NamedKernel, format_grid, get_kernel


def _named_kernel(ctx: click.Context, param: click.Parameter, value):
    if value is None:
        return None
    try:  # a callback runs while Click parses, before the error boundary
        return get_kernel(value)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _build_named(kernel: NamedKernel, params: dict) -> tuple[np.ndarray, dict]:
    """The kernel's grid from the given parameters; a fresh seed for ``random`` when none is given."""
    params = {k: v for k, v in params.items() if v is not None}
    if "seed" in kernel.options and "seed" not in params:
        params["seed"] = secrets.randbelow(2**31)
    return kernel.grid(**params), params


def _json_numbers(grid: np.ndarray) -> list:
    return np.asarray(grid, dtype=float).tolist()


@click.group(
    "kernels",
    cls=Group,
    invoke_without_command=True,
    short_help="list the named kernels; 'kernels show NAME' prints one",
    context_settings=CONTEXT_SETTINGS,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def kernels_group(ctx: click.Context, as_json: bool) -> None:
    """List every named kernel with a one-line description.

    \b
    Examples:
      convfilter kernels
      convfilter kernels show gaussian --size 5 --sigma 1.5
      convfilter kernels show sobel-x --json
    """
    ctx.ensure_object(dict)["json"] = as_json
    if ctx.invoked_subcommand is not None:
        return
    if as_json:
        listing = []
        for kernel in KERNELS.values():
            entry = {"name": kernel.name, "summary": kernel.summary, "options": list(kernel.options)}
            entry["defaults"] = dict(kernel.defaults or {})
            if not kernel.options:
                entry["shape"] = list(kernel.build().shape)
            listing.append(entry)
        click.echo(json.dumps(listing, indent=2))
        return
    width = max(len(name) for name in KERNELS)
    for kernel in KERNELS.values():
        click.echo(f"{kernel.name.ljust(width)}  {kernel.summary}")


@kernels_group.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("kernel", metavar="NAME", callback=_named_kernel)
@click.option(
    "--size", type=click.IntRange(1, MAX_KERNEL_SIZE), default=None, metavar="N", help="Kernel side N."
)
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=None, help="Gaussian sigma.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the random kernel.")
@click.option("--normalize/--no-normalize", default=None, help="blur: weights 1/N^2 or all ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (exact weights) instead of text.")
@click.pass_context
def kernels_show(ctx: click.Context, kernel: NamedKernel, as_json: bool, **params) -> None:
    """Print the weights of the named kernel NAME.

    The text form is a .txt matrix (the header is a # comment) that
    'convfilter custom --kernel @file.txt' reads back; values have 6
    significant digits, --json gives them exactly.
    """
    grid, used = _build_named(kernel, params)
    if as_json or (ctx.obj or {}).get("json"):
        data = {
            "name": kernel.name,
            "summary": kernel.summary,
            "shape": list(grid.shape),
            "params": used,
            "sum": float(grid.sum()),
            "kernel": _json_numbers(grid),
        }
        click.echo(json.dumps(data, indent=2))
        return
    shown = ", ".join(f"{k}={v}" for k, v in used.items())
    h, w = grid.shape
    click.echo(f"# {kernel.name} {h}x{w}" + (f" ({shown})" if shown else "") + f", sum {grid.sum():.6g}")
    click.echo(format_grid(grid))


EXPLAIN_HELP = """Explain what the Conv2D does to a shape, without running it.

Prints the input shape, the kernel size, the padding added on each side, the
output shape with the formula that gave it, the layer's trainable weights
and the connections a fully connected layer with the same input and output
would need. Give the input as IMAGE (an image, a matrix file or a .zarr array) or --shape
H W, and the kernel as --kernel-size KH KW or --kernel NAME|SPEC (a named
kernel with its --size/--sigma/--seed, or a custom SPEC as for 'custom').

\b
Examples:
  convfilter explain --shape 28 28 --kernel-size 5 5 --padding same
  convfilter explain photo.png --kernel gaussian --size 7 --stride 2 2
  convfilter explain --shape 1 4 --kernel "1,-1" --json
"""


@click.command(
    "explain",
    cls=Command,
    help=EXPLAIN_HELP,
    short_help="shapes, padding and weight counts, no model run",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("image", metavar="[IMAGE]", required=False)
@click.option(
    "--shape",
    nargs=2,
    type=click.IntRange(min=1),
    default=None,
    metavar="H W",
    help="Input rows and columns.",
)
@click.option(
    "--kernel-size",
    nargs=2,
    type=click.IntRange(1, MAX_KERNEL_SIZE),
    default=None,
    metavar="KH KW",
    help="Kernel rows and columns.",
)
@click.option("--kernel", "kernel_arg", metavar="NAME|SPEC", help="A named kernel or a custom SPEC.")
@click.option(
    "--size", type=click.IntRange(1, MAX_KERNEL_SIZE), default=None, metavar="N", help="Named kernel's side."
)
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=None, help="gaussian's sigma.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="random's seed (to show its weights).")
@click.option(
    "--stride",
    nargs=2,
    type=click.IntRange(min=1),
    default=(1, 1),
    show_default=True,
    metavar="SY SX",
    help="Step between windows, rows then columns.",
)
@click.option(
    "--padding",
    type=PADDING,
    default="valid",
    show_default=True,
    help="As for the filtering commands: valid, same, full or numbers (N, PY,PX, TOP,BOTTOM,LEFT,RIGHT).",
)
@click.option(
    "--border",
    type=click.Choice(BORDERS),
    default="zero",
    show_default=True,
    help="What the padding holds (shapes do not depend on it).",
)
@click.option("--convolve", is_flag=True, help="Show the weights flipped, as --convolve applies them.")
@click.option(
    "--dilation",
    nargs=2,
    type=click.IntRange(min=1),
    default=(1, 1),
    show_default=True,
    metavar="DY DX",
    help="Gap between kernel taps, rows then columns.",
)
@click.option("--bias", type=float, default=0.0, show_default=True, help="A non-zero bias adds 1 weight.")
@transpose_options
@click.option(
    "--filters",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="The layer's filters (see 'convfilter bank'): weights (kh, kw, C, N).",
)
@click.option(
    "--channels",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="C",
    help="Input channels every filter reads (3 for RGB into one Conv2D): weights (kh, kw, C, N).",
)
@click.option(
    "--color",
    is_flag=True,
    help="Say what --color does: each channel filtered on its own, a DepthwiseConv2D.",
)
@max_pixels_option(
    "Refuse an IMAGE (or .zarr array) with more pixels than this (a decompression-bomb guard)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def explain_command(  # long: a dozen options resolved into one explain() call
    image,
    shape,
    kernel_size,
    kernel_arg,
    size,
    sigma,
    seed,
    stride,
    padding,
    border,
    convolve,
    dilation,
    bias,
    transpose,
    output_padding,
    filters,
    channels,
    color,
    max_pixels,
    as_json,
):
    from convfilter.explain import explain, format_text

    if (image is None) == (shape is None):
        raise click.UsageError("give the input as IMAGE or as --shape H W (one of them)")
    if (kernel_size is None) == (kernel_arg is None):
        raise click.UsageError(
            "give the kernel as --kernel-size KH KW or as --kernel NAME|SPEC (one of them)"
        )
    named = {"size": size, "sigma": sigma, "seed": seed}
    kernel_name, grid = None, None
    if kernel_arg is not None and kernel_arg in KERNELS:
        kernel = KERNELS[kernel_arg]
        hide_weights = "seed" in kernel.options and seed is None
        if hide_weights:
            named["seed"] = 0  # the shape only: random weights are shown with --seed
        grid, _ = _build_named(kernel, named)
        kernel_name = kernel.name
        kernel_size = grid.shape
        if hide_weights:
            grid = None
    else:
        for option, value in named.items():
            if value is not None:
                raise click.BadParameter(
                    "applies to named kernels (--kernel NAME) only", param_hint=f"'--{option}'"
                )
        if kernel_arg is not None and re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", kernel_arg):
            raise click.BadParameter(
                f"unknown kernel {kernel_arg!r}; known kernels: {', '.join(KERNELS)} "
                '(or a SPEC such as "1,0,-1")',
                param_hint="'--kernel'",
            )
        if kernel_arg is not None:
            from convfilter.io.kernelspec import parse_kernel

            grid = parse_kernel(kernel_arg)
            kernel_name = "custom"
    if grid is not None and grid.ndim == 4:  # (kh, kw, C, N) weights: their channels and filters
        for option, given, held in (
            ("--channels", channels, grid.shape[2]),
            ("--filters", filters, grid.shape[3]),
        ):
            if given not in (1, held):
                raise click.BadParameter(
                    f"is {given}, but the kernel's weights have {held}", param_hint=f"'{option}'"
                )
        channels, filters = int(grid.shape[2]), int(grid.shape[3])
        grid = None
    if grid is not None:
        kernel_size = grid.shape
    if color and channels > 1:
        raise click.UsageError(
            "--color filters each channel on its own; --channels C is one Conv2D reading C channels: give one"
        )
    if not math.isfinite(bias):
        raise click.BadParameter(f"{bias} is not a finite number.", param_hint="'--bias'")
    source = ""
    if image is not None:
        from convfilter.run.files import read_input
        from convfilter.run.placement import is_zarr_path

        if is_zarr_path(image):
            from convfilter.cluster.zarr_arrays import open_input

            shape = tuple(open_input(image, max_pixels).shape)
        else:
            shape = read_input(image, max_pixels=max_pixels).shape
        source = f"{image}: "
    try:
        result = explain(
            shape,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            use_bias=bias != 0.0,
            kernel_name=kernel_name,
            kernel=grid,
            border=border,
            convolve=convolve,
            transpose=transpose,
            output_padding=output_padding,
            filters=filters,
            channels=channels,
        )
    except ImageTooSmallError as exc:
        if image is not None:
            raise click.ClickException(f"{source}{exc}") from None
        raise click.BadParameter(str(exc), param_hint="'--shape'") from None
    if as_json:
        data = result.as_dict()
        if color:
            data["color"] = "DepthwiseConv2D"
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(format_text(result))
        if color:
            click.echo(
                "color:        each channel of the image goes through this kernel on its own and stays a "
                "channel of the output: Keras calls that a DepthwiseConv2D (depth_multiplier=1), not a "
                "Conv2D, which would sum over the channels (see --channels)"
            )
