"""The ``convfilter`` command: a thin Click layer over :mod:`convfilter.run.files`.

Library code raises ``ValueError`` (bad argument, exit 2) or
:class:`~convfilter.errors.ConvFilterError` (a file problem, exit 1); only this
module turns them into Click's exceptions.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sys

import click
import numpy as np

from convfilter import __version__
from convfilter.run.batch import make_settings
from convfilter.ops.borders import BORDERS
from convfilter.cli.files import BatchOptions, batch_options, filter_paths, is_single
from convfilter.cli.show import (
    chain_command,
    check_side_outputs,
    learn_command,
    show_options,
    write_side_outputs,
)
from convfilter.cli.tools import explain_command, kernels_group, pool_command
from convfilter.engine.layouts import describe as describe_engine
from convfilter.ops.geometry import PADDINGS, padding_amounts
from convfilter.io.images import DEFAULT_MAX_PIXELS
from convfilter.ops.kernels import KERNELS, MAX_KERNEL_SIZE, KernelParameterError, NamedKernel, format_grid
from convfilter.engine.model import compute_device
from convfilter.run.files import RAW, FilterResult
from convfilter.io.pixels import RANGE_MODES
from convfilter.engine.tiles import DEFAULT_TILE_SIZE, MIN_TILE_SIZE

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

MAIN_HELP = """Filter images with a real Keras Conv2D layer.

Each KERNEL command loads each INPUT as grayscale (with --color: each colour
channel, as a batch), runs it through
Conv2D(1, kernel_size, strides, padding, dilation_rate) with the kernel's
weights, maps the float result to pixels and writes OUTPUT (format from its
extension: .png .jpg .tif .bmp .webp ...; .npy .csv .txt files are
matrices, used and written as raw float values). Semantics are Keras's:
cross-correlation (no flip); 'valid' output floor((n - d(k-1) - 1)/s) + 1;
'same' output ceil(n/s), the odd padding pixel at the bottom/right.

\b
Examples:
  convfilter blur sample_images/ascent.png out.png --stride 2 1
  convfilter edge photo.jpg edges.png --padding same
  convfilter random in.png out.png --seed 7 --size 5
  convfilter gaussian in.png soft.png --size 7 --sigma 2 -v
  convfilter custom --kernel "1,-1" signal.csv diff.csv
  convfilter explain --shape 28 28 --kernel-size 5 5 --padding same
  convfilter blur photos/*.jpg -o blurred/ --suffix _blur --format png
  find photos -name '*.png' -print0 | convfilter edge --files-from - --null -o edges/
  cat a.jpg | convfilter edge - - | display -

Outputs that exist are never replaced without --overwrite (--skip-existing
resumes an interrupted batch); an input is never written over.

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
            help="'valid': no padding (output shrinks); 'same': pad to ceil(n/stride); "
            "'full': pad d(k-1) on every side (full convolution, n + k - 1 at stride 1).",
        ),
        click.option(
            "--border",
            type=click.Choice(BORDERS),
            default="zero",
            show_default=True,
            help="What 'same'/'full' pad with, for a row a b c d: zero 0 0|a b c d|0 0; "
            "reflect c b|a b c d|c b; symmetric b a|a b c d|d c; replicate a a|a b c d|d d; "
            "wrap c d|a b c d|a b.",
        ),
        click.option(
            "--convolve",
            is_flag=True,
            help="Flip the kernel in both axes first: true convolution instead of Keras's cross-correlation.",
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
            "--tile-size",
            type=click.IntRange(min=MIN_TILE_SIZE),
            default=DEFAULT_TILE_SIZE,
            show_default=True,
            metavar="N",
            help="Filter outputs larger than N x N pixels in tiles of that size (with a halo; the "
            "result is identical), so the Conv2D's buffers stay bounded for huge images.",
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


SETTINGS = (
    "stride",
    "padding",
    "dilation",
    "bias",
    "range_mode",
    "depth",
    "border",
    "convolve",
    "color",
    "frame",
    "max_pixels",
    "quality",
    "tile_size",
)
"""The keyword arguments :func:`conv_options` adds that go to :func:`convfilter.run.files.filter_file`."""


def _finite_float(ctx: click.Context, param: click.Parameter, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number.", ctx=ctx, param=param)
    return value


def scale_option(command):
    """``--scale S``: multiply every weight of the kernel by S."""
    return click.option(
        "--scale",
        type=float,
        default=None,
        metavar="S",
        callback=_finite_float,
        help="Multiply every weight by S (after any normalization).",
    )(command)


def _split_settings(params: dict) -> dict:
    """Take the :data:`SETTINGS` out of a command's keyword arguments (``depth`` 8, 16 or ``"32f"``)."""
    settings = {name: params.pop(name) for name in SETTINGS}
    depth = settings["depth"]
    settings["depth"] = None if depth is None else (depth if depth == "32f" else int(depth))
    return settings


def _make_kernel_command(kernel: NamedKernel) -> click.Command:
    example = {
        "blur": "convfilter blur sample_images/ascent.png out.png --stride 2 1",
        "gaussian": "convfilter gaussian in.png out.png --size 7 --sigma 2 --padding same --border reflect",
        "random": "convfilter random in.png out.png --seed 7 --size 5",
        "identity": "convfilter identity in.png half.png --size 1 --stride 2 2",
    }.get(kernel.name, f"convfilter {kernel.name} in.png out.png --padding same")
    grid_doc = "" if kernel.options else "\n\n\b\nWeights:\n" + _indent(format_grid(kernel.build()))
    help_text = (
        f"Filter images with the {kernel.name} kernel: {kernel.summary}.{grid_doc}"
        f"\n\n\b\nForms:\n  {_forms(kernel.name)}"
        f"\n\n\b\nExample:\n  {example}"
    )

    @click.command(kernel.name, help=help_text, short_help=kernel.summary, context_settings=CONTEXT_SETTINGS)
    @click.argument("paths", metavar="INPUT... [OUTPUT]", nargs=-1)
    @kernel_options(kernel)
    @scale_option
    @conv_options
    @batch_options
    @show_options
    def command(paths, scale, verbose, batch, compare_path, export_path, **params):
        settings = _split_settings(params)
        _check_side_outputs(paths, batch, compare_path, export_path, settings)
        if "seed" in kernel.options and params.get("seed") is None:
            params["seed"] = secrets.randbelow(2**31)
        try:
            grid = kernel.grid(**params)
        except KernelParameterError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'--{exc.param}'") from None
        if scale is not None:
            grid = grid * scale
            params["scale"] = scale
        _run(
            kernel.name, paths, grid, batch, settings, params if verbose else None, compare_path, export_path
        )

    return command


def _check_side_outputs(paths, batch: BatchOptions, compare_path, export_path, settings: dict) -> None:
    """``--compare`` and ``--export`` describe one file: only the form INPUT OUTPUT; checked before work."""
    if not (compare_path or export_path):
        return
    if not is_single(paths, batch):
        raise click.UsageError("--compare and --export work on one file: give INPUT OUTPUT, not a batch.")
    check_side_outputs(paths[0], paths[1], compare_path, export_path, settings)


def _run(
    name: str,
    paths,
    grid: np.ndarray,
    batch: BatchOptions,
    settings: dict,
    shown: dict | None,
    compare_path: str | None = None,
    export_path: str | None = None,
    *,
    too_small_param: str | None = None,
) -> None:
    """Filter ``paths`` (one file, a batch or a pipe) with ``grid``; ``shown`` (-v) names its parameters.

    ``compare_path``/``export_path`` (single-file form only) are written after the output.
    """
    try:
        run_settings = make_settings(
            grid, png_compression=batch.png_compression, overwrite=batch.overwrite, **settings
        )
        if compare_path:  # the figure shows every raw value: no tile-by-tile pixel rendering
            run_settings.tile_size = None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    def describe(result: FilterResult) -> None:
        if shown is not None:
            _report(name, grid, shown, result, settings)
        write_side_outputs(name, grid, result, settings, compare_path, export_path)

    wanted = shown is not None or compare_path or export_path
    filter_paths(
        name,
        paths,
        batch,
        run_settings,
        describe if wanted else None,
        too_small_param=too_small_param,
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


def _report(name, grid, params, result: FilterResult, settings: dict) -> None:
    kh, kw = grid.shape
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None and v is not False)
    weights = f"{kh * kw} weights" + (" + 1 bias" if settings["bias"] else "")
    lines = [
        f"input:   {result.input}: {h}x{w} (tensor {result.channels}x{h}x{w}x1)",
        f"kernel:  {name} {kh}x{kw}" + (f" ({shown})" if shown else "") + f", {weights}",
        _indent(format_grid(grid), "         "),
    ]
    if settings["convolve"]:
        lines += [
            "         flipped in both axes for --convolve, the Conv2D's weights are:",
            _indent(format_grid(grid[::-1, ::-1]), "         "),
        ]
    lines.append(
        _describe_layer(
            grid.shape,
            result.input_shape,
            settings["stride"],
            settings["padding"],
            settings["dilation"],
            settings["bias"],
            settings["border"],
        )
    )
    lines.append(
        "engine:  same result, computed fast: "
        + describe_engine(grid.shape, settings["stride"], settings["dilation"])
    )
    lines.append(f"device:  {compute_device()}")
    if result.range_mode == RAW:
        lines.append(
            f"output:  {result.output}: {oh}x{ow}"
            + (", 32-bit float TIFF" if result.depth == "32f" else "")
            + f", raw float32 values {result.minimum:.6g}..{result.maximum:.6g}"
        )
    else:
        lines.append(
            f"output:  {result.output}: {oh}x{ow} (tensor {result.channels}x{oh}x{ow}x1), "
            f"{_depth_label(result.depth)}{'' if result.mode in ('L', 'I;16', 'F') else ' ' + result.mode}, "
            f"range {result.range_mode} of raw values {result.minimum:.6g}..{result.maximum:.6g}"
        )
    click.echo("\n".join(lines), err=True)


def _depth_label(depth) -> str:
    return "32-bit float" if depth == "32f" else f"{depth}-bit"


def _describe_layer(kernel_shape, input_shape, stride, padding, dilation, bias, border="zero") -> str:
    kh, kw = kernel_shape
    use_bias = bool(bias)
    explicit = padding == "full" or (padding == "same" and border != "zero")
    split = max(stride) > 1 and max(dilation) > 1
    if not explicit and not split:
        return (
            f"layer:   Conv2D(1, ({kh}, {kw}), strides={tuple(stride)}, padding='{padding}', "
            f"dilation_rate={tuple(dilation)}, use_bias={use_bias})"
        )
    pad_y = padding_amounts(input_shape[0], kh, stride[0], dilation[0], padding)
    pad_x = padding_amounts(input_shape[1], kw, stride[1], dilation[1], padding)
    strides = (1, 1) if split else tuple(stride)
    text = (
        f"layer:   Conv2D(1, ({kh}, {kw}), strides={strides}, padding='valid', "
        f"dilation_rate={tuple(dilation)}, use_bias={use_bias}) on the input {border}-padded "
        f"top {pad_y[0]}, bottom {pad_y[1]}, left {pad_x[0]}, right {pad_x[1]}"
    )
    if split:
        text += (
            f", then every {stride[0]} row(s) and {stride[1]} column(s) kept (Keras refuses stride > 1 "
            "with dilation > 1)"
        )
    return text


@click.group(help=MAIN_HELP, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="convfilter")
def cli() -> None:
    pass


for _kernel in KERNELS.values():
    cli.add_command(_make_kernel_command(_kernel))


# --- Your own kernel: `custom` (`kernels`, `explain` and `pool` live in convfilter.cli.tools) ---

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


@cli.command(
    "custom",
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
@scale_option
@conv_options
@batch_options
@show_options
def custom_command(paths, spec, normalize, scale, verbose, batch, compare_path, export_path, **params):
    from convfilter.ops import kernelspec

    settings = _split_settings(params)
    _check_side_outputs(paths, batch, compare_path, export_path, settings)
    try:
        grid = kernelspec.parse_kernel(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--kernel'") from None
    if normalize:
        try:
            grid = kernelspec.normalize(grid, spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--normalize'") from None
    if scale is not None:
        grid = grid * scale
    shown = {"kernel": spec, "normalize": normalize, "scale": scale} if verbose else None
    _run(
        "custom", paths, grid, batch, settings, shown, compare_path, export_path, too_small_param="'--kernel'"
    )


cli.add_command(kernels_group)
cli.add_command(explain_command)
cli.add_command(pool_command)
cli.add_command(chain_command(conv_options, kernel_options, scale_option))
cli.add_command(learn_command(conv_options))


def main() -> None:
    """Entry point of the installed ``convfilter`` command and of ``python -m convfilter``.

    Runs :data:`cli`; when TensorFlow was loaded, the process then ends with
    ``os._exit`` after flushing its output: TensorFlow's interpreter teardown
    takes about 0.7 s and has nothing left to do. By then every command has
    returned: batch worker threads are joined, outputs renamed into place,
    temporary files removed, a background TensorFlow import finished. The exit
    code (0, 1, 2, 130) is kept. Only this entry point exits that way, never
    :data:`cli` itself (``CliRunner``, library use).
    """
    try:
        cli.main(prog_name="convfilter")
    except SystemExit as exc:
        code = exc.code
    else:  # pragma: no cover  (standalone Click always raises SystemExit)
        code = 0
    if "tensorflow" not in sys.modules or not isinstance(code, int | None):
        sys.exit(code)
    from convfilter.engine.model import wait_for_preload

    wait_for_preload()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
