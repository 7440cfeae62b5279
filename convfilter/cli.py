"""The ``convfilter`` command: a thin Click layer over :mod:`convfilter.pipeline`.

Library code raises ``ValueError`` (bad argument, exit 2) or
:class:`~convfilter.errors.ConvFilterError` (a file problem, exit 1); only this
module turns them into Click's exceptions.
"""

from __future__ import annotations

import secrets
import sys

import click
import numpy as np

from convfilter import __version__
from convfilter.errors import ConvFilterError
from convfilter.geometry import PADDINGS, padding_amounts
from convfilter.imageio import DEFAULT_MAX_PIXELS
from convfilter.kernels import KERNELS, MAX_KERNEL_SIZE, KernelParameterError, NamedKernel, format_grid
from convfilter.pipeline import FilterResult, filter_file
from convfilter.pixels import RANGE_MODES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

MAIN_HELP = """Filter images with a real Keras Conv2D layer.

Each KERNEL command loads INPUT as grayscale (with --color: each colour
channel, as a batch), runs it through
Conv2D(1, kernel_size, strides, padding, dilation_rate) with the kernel's
weights, maps the float result to pixels and writes OUTPUT (format from its
extension: .png .jpg .tif .bmp .webp ...). Semantics are Keras's:
cross-correlation (no flip); 'valid' output floor((n - d(k-1) - 1)/s) + 1;
'same' output ceil(n/s), the odd padding pixel at the bottom/right.

\b
Examples:
  convfilter blur sample_images/ascent.png out.png --stride 2 1
  convfilter edge photo.jpg edges.png --padding same
  convfilter random in.png out.png --seed 7 --size 5
  convfilter gaussian in.png soft.png --size 7 --sigma 2 -v

Run 'convfilter KERNEL --help' for a kernel's options.
"""

RANGE_HELP = (
    "How float results become pixels. clip: round and clip to the output range; "
    "rescale: map min..max onto the full range (as a plot shows it); abs: magnitude, "
    "then clip. auto (default): clip for kernels with all weights >= 0 summing to 1, "
    "rescale otherwise."
)


def conv_options(command):
    """Options every filtering command shares: the Conv2D's settings and the output mapping."""
    options = [
        click.option(
            "--stride",
            nargs=2,
            type=click.IntRange(min=1),
            default=(1, 1),
            show_default=True,
            metavar="SY SX",
            help="Step between windows, rows then columns.",
        ),
        click.option(
            "--padding",
            type=click.Choice(PADDINGS),
            default="valid",
            show_default=True,
            help="'valid': no padding (output shrinks); 'same': zero-pad to ceil(n/stride).",
        ),
        click.option(
            "--dilation",
            nargs=2,
            type=click.IntRange(min=1),
            default=(1, 1),
            show_default=True,
            metavar="DY DX",
            help="Gap between kernel taps, rows then columns (works with any stride).",
        ),
        click.option(
            "--bias",
            type=float,
            default=0.0,
            show_default=True,
            help="The layer's bias, added to every output value.",
        ),
        click.option(
            "--range",
            "range_mode",
            type=click.Choice(RANGE_MODES),
            default="auto",
            show_default=True,
            help=RANGE_HELP,
        ),
        click.option(
            "--depth",
            type=click.Choice(["8", "16", "32f"]),
            default=None,
            help="Output bits per pixel: 8, 16 (PNG/TIFF only) or 32f (TIFF only: the raw float "
            "results, --range not applied). Default: 16 for 16-bit and float inputs written as "
            "PNG/TIFF, else 8.",
        ),
        click.option(
            "--color",
            is_flag=True,
            help="Filter each colour channel with the kernel and keep the image's mode (RGB, RGBA, "
            "LA, CMYK; palette images become RGB/RGBA). Alpha is carried through, not filtered.",
        ),
        click.option(
            "--frame",
            type=click.IntRange(min=0),
            default=None,
            metavar="N",
            help="Frame of a multi-frame file (animated GIF, multi-page TIFF) to filter, from 0. "
            "Default: the first, with a notice when there are more.",
        ),
        click.option(
            "--max-pixels",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_PIXELS,
            show_default=True,
            metavar="N",
            help="Refuse images with more pixels than this before decoding them "
            "(a guard against decompression bombs); raise it for trusted huge images.",
        ),
        click.option(
            "--quality",
            type=click.IntRange(1, 100),
            default=None,
            metavar="Q",
            help="JPEG/WebP quality 1..100 (Pillow's default: 75 for JPEG, 80 for WebP); "
            "an error for other output formats.",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            help="Print shapes, the kernel grid and the weight count to stderr.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _reject_size(kernel: NamedKernel):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            h, w = kernel.build().shape
            raise click.BadParameter(
                f"{kernel.name} is a fixed {h}x{w} kernel and takes no size "
                "(blur, gaussian, identity and random take --size).",
                ctx=ctx,
                param=param,
            )
        return value

    return callback


def kernel_options(kernel: NamedKernel):
    """The options that build ``kernel``'s grid; ``--size`` is refused clearly where it doesn't fit."""
    defaults = kernel.defaults or {}
    size_help = f"Kernel side N (N x N weights, 1..{MAX_KERNEL_SIZE})."
    if kernel.name == "identity":
        size_help = f"Kernel side N, odd (1..{MAX_KERNEL_SIZE})."
    options = []
    if "size" in kernel.options:
        options.append(
            click.option(
                "--size",
                type=click.IntRange(1, MAX_KERNEL_SIZE),
                default=defaults.get("size"),
                show_default=True,
                metavar="N",
                help=size_help,
            )
        )
    else:
        options.append(
            click.option("--size", type=int, hidden=True, expose_value=False, callback=_reject_size(kernel))
        )
    if "sigma" in kernel.options:
        options.append(
            click.option(
                "--sigma",
                type=click.FloatRange(min=0, min_open=True),
                default=defaults.get("sigma"),
                show_default=True,
                help="Standard deviation in pixels.",
            )
        )
    if "seed" in kernel.options:
        options.append(
            click.option(
                "--seed",
                type=click.IntRange(min=0),
                default=None,
                help="Seed of the weights; the same seed gives the same kernel and image. "
                "Default: a fresh seed, shown with -v.",
            )
        )
    if "normalize" in kernel.options:
        options.append(
            click.option(
                "--normalize/--no-normalize",
                default=True,
                show_default=True,
                help="Weights 1/N^2 (an average) or all ones (a sum).",
            )
        )

    def decorator(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorator


def _make_kernel_command(kernel: NamedKernel) -> click.Command:
    example = {
        "blur": "convfilter blur sample_images/ascent.png out.png --stride 2 1",
        "gaussian": "convfilter gaussian in.png out.png --size 7 --sigma 2",
        "random": "convfilter random in.png out.png --seed 7 --size 5",
        "identity": "convfilter identity in.png half.png --size 1 --stride 2 2",
    }.get(kernel.name, f"convfilter {kernel.name} in.png out.png --padding same")
    grid_doc = "" if kernel.options else "\n\n\b\nWeights:\n" + _indent(format_grid(kernel.build()))
    help_text = (
        f"Filter INPUT with the {kernel.name} kernel: {kernel.summary}.{grid_doc}"
        f"\n\n\b\nExample:\n  {example}"
    )

    @click.command(kernel.name, help=help_text, short_help=kernel.summary, context_settings=CONTEXT_SETTINGS)
    @click.argument("input_path", metavar="INPUT")
    @click.argument("output_path", metavar="OUTPUT")
    @kernel_options(kernel)
    @conv_options
    def command(
        input_path,
        output_path,
        stride,
        padding,
        dilation,
        bias,
        range_mode,
        depth,
        color,
        frame,
        max_pixels,
        quality,
        verbose,
        **params,
    ):
        if "seed" in kernel.options and params.get("seed") is None:
            params["seed"] = secrets.randbelow(2**31)
        try:
            grid = kernel.grid(**params)
        except KernelParameterError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'--{exc.param}'") from None
        result = _run(
            input_path,
            output_path,
            grid,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
            range_mode=range_mode,
            depth=None if depth is None else (depth if depth == "32f" else int(depth)),
            color=color,
            frame=frame,
            max_pixels=max_pixels,
            quality=quality,
        )
        if frame is None and result.frames > 1:
            click.echo(
                f"note: {input_path} has {result.frames} frames; filtered frame 0 "
                "(pick another with --frame N)",
                err=True,
            )
        if verbose:
            _report(kernel.name, grid, params, result, stride, padding, dilation, bias)

    return command


def _run(input_path: str, output_path: str, grid: np.ndarray, **settings) -> FilterResult:
    try:
        return filter_file(input_path, output_path, grid, **settings)
    except ConvFilterError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _report(name, grid, params, result: FilterResult, stride, padding, dilation, bias) -> None:
    kh, kw = grid.shape
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    weights = f"{kh * kw} weights" + (" + 1 bias" if bias else "")
    lines = [
        f"input:   {result.input}: {h}x{w} (tensor {result.channels}x{h}x{w}x1)",
        f"kernel:  {name} {kh}x{kw}" + (f" ({shown})" if shown else "") + f", {weights}",
        _indent(format_grid(grid), "         "),
        _describe_layer(grid.shape, result.input_shape, stride, padding, dilation, bias),
        f"output:  {result.output}: {oh}x{ow} (tensor {result.channels}x{oh}x{ow}x1), "
        f"{_depth_label(result.depth)}{'' if result.mode in ('L', 'I;16', 'F') else ' ' + result.mode}, "
        f"range {result.range_mode} of raw values {result.minimum:.6g}..{result.maximum:.6g}",
    ]
    click.echo("\n".join(lines), err=True)


def _depth_label(depth) -> str:
    return "32-bit float" if depth == "32f" else f"{depth}-bit"


def _describe_layer(kernel_shape, input_shape, stride, padding, dilation, bias) -> str:
    kh, kw = kernel_shape
    use_bias = bool(bias)
    if max(stride) == 1 or max(dilation) == 1:
        return (
            f"layer:   Conv2D(1, ({kh}, {kw}), strides={tuple(stride)}, padding='{padding}', "
            f"dilation_rate={tuple(dilation)}, use_bias={use_bias})"
        )
    pad_y = padding_amounts(input_shape[0], kh, stride[0], dilation[0], padding)
    pad_x = padding_amounts(input_shape[1], kw, stride[1], dilation[1], padding)
    return (
        f"layer:   Conv2D(1, ({kh}, {kw}), strides=(1, 1), padding='valid', "
        f"dilation_rate={tuple(dilation)}, use_bias={use_bias}) on the input zero-padded "
        f"top {pad_y[0]}, bottom {pad_y[1]}, left {pad_x[0]}, right {pad_x[1]}, then every "
        f"{stride[0]} row(s) and {stride[1]} column(s) kept (Keras refuses stride > 1 with "
        "dilation > 1)"
    )


@click.group(help=MAIN_HELP, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="convfilter")
def cli() -> None:
    pass


for _kernel in KERNELS.values():
    cli.add_command(_make_kernel_command(_kernel))


def main() -> None:
    """Entry point for ``python -m convfilter``."""
    cli(prog_name="convfilter")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
