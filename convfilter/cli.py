"""The ``convfilter`` command: a thin Click layer over :mod:`convfilter.pipeline`.

Library code raises ``ValueError`` (bad argument, exit 2) or
:class:`~convfilter.errors.ConvFilterError` (a file problem, exit 1); only this
module turns them into Click's exceptions.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import sys

import click
import numpy as np

from convfilter import __version__
from convfilter.borders import BORDERS
from convfilter.errors import ConvFilterError, ImageTooSmallError
from convfilter.geometry import PADDINGS, padding_amounts
from convfilter.kernels import KERNELS, MAX_KERNEL_SIZE, KernelParameterError, NamedKernel, format_grid
from convfilter.pipeline import RAW, FilterResult, filter_file, pool_file
from convfilter.pixels import RANGE_MODES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

MAIN_HELP = """Filter images with a real Keras Conv2D layer.

Each KERNEL command loads INPUT as grayscale, runs it through
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
            type=click.Choice(["8", "16"]),
            default=None,
            help="Output bits per pixel (16 for PNG/TIFF only). "
            "Default: 16 for 16-bit inputs written as PNG/TIFF, else 8.",
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


SETTINGS = ("stride", "padding", "dilation", "bias", "range_mode", "depth", "border", "convolve")
"""The keyword arguments :func:`conv_options` adds that go to :func:`convfilter.pipeline.filter_file`."""


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
    """Take the :data:`SETTINGS` out of a command's keyword arguments (``depth`` as an int)."""
    settings = {name: params.pop(name) for name in SETTINGS}
    settings["depth"] = None if settings["depth"] is None else int(settings["depth"])
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
        f"Filter INPUT with the {kernel.name} kernel: {kernel.summary}.{grid_doc}"
        f"\n\n\b\nExample:\n  {example}"
    )

    @click.command(kernel.name, help=help_text, short_help=kernel.summary, context_settings=CONTEXT_SETTINGS)
    @click.argument("input_path", metavar="INPUT")
    @click.argument("output_path", metavar="OUTPUT")
    @kernel_options(kernel)
    @scale_option
    @conv_options
    def command(input_path, output_path, scale, verbose, **params):
        settings = _split_settings(params)
        if "seed" in kernel.options and params.get("seed") is None:
            params["seed"] = secrets.randbelow(2**31)
        try:
            grid = kernel.grid(**params)
        except KernelParameterError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'--{exc.param}'") from None
        if scale is not None:
            grid = grid * scale
            params["scale"] = scale
        result = _run(input_path, output_path, grid, **settings)
        if verbose:
            _report(kernel.name, grid, params, result, settings)

    return command


def _run(
    input_path: str, output_path: str, grid: np.ndarray, *, too_small_param: str | None = None, **settings
) -> FilterResult:
    try:
        return filter_file(input_path, output_path, grid, **settings)
    except ImageTooSmallError as exc:
        if too_small_param is None:
            raise click.ClickException(str(exc)) from None
        raise click.BadParameter(str(exc), param_hint=too_small_param) from None
    except ConvFilterError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _report(name, grid, params, result: FilterResult, settings: dict) -> None:
    kh, kw = grid.shape
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None and v is not False)
    weights = f"{kh * kw} weights" + (" + 1 bias" if settings["bias"] else "")
    lines = [
        f"input:   {result.input}: {h}x{w} (tensor 1x{h}x{w}x1)",
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
    if result.range_mode == RAW:
        lines.append(
            f"output:  {result.output}: {oh}x{ow}, raw float32 values "
            f"{result.minimum:.6g}..{result.maximum:.6g}"
        )
    else:
        lines.append(
            f"output:  {result.output}: {oh}x{ow} (tensor 1x{oh}x{ow}x1), {result.depth}-bit, "
            f"range {result.range_mode} of raw values {result.minimum:.6g}..{result.maximum:.6g}"
        )
    click.echo("\n".join(lines), err=True)


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


# --- Exact numbers: custom kernels, `kernels`, `explain`, `pool` -------------------------------

CUSTOM_HELP = """Filter INPUT with your own kernel, given by --kernel SPEC.

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
"""


@cli.command(
    "custom",
    help=CUSTOM_HELP,
    short_help="your own weights: --kernel SPEC",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("input_path", metavar="INPUT")
@click.argument("output_path", metavar="OUTPUT")
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
def custom_command(input_path, output_path, spec, normalize, scale, verbose, **params):
    from convfilter import kernelspec

    settings = _split_settings(params)
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
    result = _run(input_path, output_path, grid, too_small_param="'--kernel'", **settings)
    if verbose:
        shown = {"kernel": spec, "normalize": normalize, "scale": scale}
        _report("custom", grid, shown, result, settings)


def _named_kernel(ctx: click.Context, param: click.Parameter, value):
    if value is None:
        return None
    try:
        return KERNELS[value]
    except KeyError:
        raise click.BadParameter(
            f"unknown kernel {value!r}; known kernels: {', '.join(KERNELS)}", ctx=ctx, param=param
        ) from None


def _build_named(kernel: NamedKernel, params: dict) -> tuple[np.ndarray, dict]:
    """The kernel's grid from the given parameters; a fresh seed for ``random`` when none is given."""
    params = {k: v for k, v in params.items() if v is not None}
    if "seed" in kernel.options and "seed" not in params:
        params["seed"] = secrets.randbelow(2**31)
    try:
        return kernel.grid(**params), params
    except KernelParameterError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'--{exc.param}'") from None


def _json_numbers(grid: np.ndarray) -> list:
    return np.asarray(grid, dtype=float).tolist()


@cli.group(
    "kernels",
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
would need. Give the input as IMAGE (an image or a matrix file) or --shape
H W, and the kernel as --kernel-size KH KW or --kernel NAME|SPEC (a named
kernel with its --size/--sigma/--seed, or a custom SPEC as for 'custom').

\b
Examples:
  convfilter explain --shape 28 28 --kernel-size 5 5 --padding same
  convfilter explain photo.png --kernel gaussian --size 7 --stride 2 2
  convfilter explain --shape 1 4 --kernel "1,-1" --json
"""


@cli.command(
    "explain",
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
    type=click.Choice(PADDINGS),
    default="valid",
    show_default=True,
    help="As for the filtering commands.",
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def explain_command(
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
            from convfilter.kernelspec import parse_kernel

            try:
                grid = parse_kernel(kernel_arg)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="'--kernel'") from None
            kernel_name = "custom"
    if grid is not None:
        kernel_size = grid.shape
    if not math.isfinite(bias):
        raise click.BadParameter(f"{bias} is not a finite number.", param_hint="'--bias'")
    source = ""
    if image is not None:
        from convfilter.pipeline import read_input

        try:
            shape = read_input(image).values.shape
        except ConvFilterError as exc:
            raise click.ClickException(str(exc)) from None
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
        )
    except ImageTooSmallError as exc:
        if image is not None:
            raise click.ClickException(f"{source}{exc}") from None
        raise click.BadParameter(str(exc), param_hint="'--shape'") from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(format_text(result))


POOL_HELP = """Pool INPUT with Keras's MaxPooling2D (max) or AveragePooling2D (avg).

The window is --size N x N; the stride defaults to the window, as in Keras.
'same' padding never counts padded pixels (avg divides by the real pixels in
each window). INPUT and OUTPUT may be images or matrix files (.npy .csv .txt).

\b
Examples:
  convfilter pool max sample_images/ascent.png small.png --size 2
  convfilter pool avg grid.csv pooled.csv --size 3 --stride 1 1 --padding same
"""


@cli.command(
    "pool",
    help=POOL_HELP,
    short_help="max or average pooling (Keras pooling layers)",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("kind", type=click.Choice(["max", "avg"]), metavar="max|avg")
@click.argument("input_path", metavar="INPUT")
@click.argument("output_path", metavar="OUTPUT")
@click.option(
    "--size",
    type=click.IntRange(1, MAX_KERNEL_SIZE),
    default=2,
    show_default=True,
    metavar="N",
    help="Pool window N x N.",
)
@click.option(
    "--stride",
    nargs=2,
    type=click.IntRange(min=1),
    default=None,
    metavar="SY SX",
    help="Step between windows (default: the window size).",
)
@click.option(
    "--padding",
    type=click.Choice(["valid", "same"]),
    default="valid",
    show_default=True,
    help="'valid': only whole windows; 'same': ceil(n/stride) outputs.",
)
@click.option(
    "--depth", type=click.Choice(["8", "16"]), default=None, help="Output bits per pixel (images only)."
)
@click.option("-v", "--verbose", is_flag=True, help="Print shapes to stderr.")
def pool_command(kind, input_path, output_path, size, stride, padding, depth, verbose):
    try:
        result = pool_file(
            input_path,
            output_path,
            kind,
            size,
            stride=stride,
            padding=padding,
            depth=None if depth is None else int(depth),
        )
    except ConvFilterError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if verbose:
        layer = {"max": "MaxPooling2D", "avg": "AveragePooling2D"}[kind]
        sy, sx = stride or (size, size)
        (h, w), (oh, ow) = result.input_shape, result.output_shape
        values = "raw float32 values" if result.range_mode == RAW else f"{result.depth}-bit"
        click.echo(
            f"input:   {result.input}: {h}x{w} (tensor 1x{h}x{w}x1)\n"
            f"layer:   {layer}(pool_size=({size}, {size}), strides=({sy}, {sx}), padding='{padding}')\n"
            f"output:  {result.output}: {oh}x{ow}, {values} {result.minimum:.6g}..{result.maximum:.6g}",
            err=True,
        )


def main() -> None:
    """Entry point for ``python -m convfilter``."""
    cli(prog_name="convfilter")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
