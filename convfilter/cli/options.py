"""Reusable groups of command-line options, each a decorator, and the values they produce.

* :func:`conv_options`: a convolution's settings (``--stride`` ... ``--convolve``)
  and the output settings (``--range`` ... ``--tile-size``, ``-v``);
* :func:`kernel_options` / :func:`scale_option`: what builds a named kernel's grid;
* :func:`batch_options`: many files and pipes, passed on as one :class:`BatchOptions`;
* :func:`show_options`: ``--compare`` and ``--export``.

:func:`split_conv` turns a command's keyword arguments into the pieces the
library takes: the :class:`~convfilter.ops.spec.Conv2DSpec` keywords and the
:class:`~convfilter.run.jobs.OutputSettings` keywords.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

from convfilter.engine.tiles import DEFAULT_TILE_SIZE, MIN_TILE_SIZE
from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io.images import DEFAULT_MAX_PIXELS, output_format
from convfilter.io.matrices import is_matrix_path
from convfilter.io.pixels import RANGE_MODES
from convfilter.ops.borders import BORDERS
from convfilter.ops.geometry import MAX_PADDING, PADDINGS, check_padding
from convfilter.ops.kernels import MAX_KERNEL_SIZE, NamedKernel
from convfilter.run.jobs import TEMPLATE_FIELDS

DEFAULT_PNG_COMPRESSION = 1
CONV_SETTINGS = ("stride", "padding", "dilation", "bias", "border", "convolve")
"""The keyword arguments :func:`conv_options` adds that belong to the convolution."""
OUTPUT_SETTINGS = ("range_mode", "depth", "color", "frame", "max_pixels", "quality", "tile_size")
"""The keyword arguments :func:`conv_options` adds that say how outputs are read and written."""


def parse_depth(depth: str | None) -> int | str | None:
    """``--depth`` as the library takes it: 8, 16, ``"32f"`` or ``None``."""
    return None if depth is None else (depth if depth == "32f" else int(depth))


def split_conv(params: dict) -> tuple[dict, dict]:
    """Take the convolution's and the output's settings out of a command's keyword arguments.

    Returns ``(conv, output)``: keywords of :class:`~convfilter.ops.spec.Conv2DSpec`
    and of :class:`~convfilter.run.jobs.OutputSettings`.
    """
    conv = {name: params.pop(name) for name in CONV_SETTINGS}
    output = {name: params.pop(name) for name in OUTPUT_SETTINGS}
    output["range_request"] = output.pop("range_mode")
    output["depth"] = parse_depth(output["depth"])
    return conv, output


def max_pixels_option(text: str) -> Callable:
    """``--max-pixels N``: the decompression-bomb guard (and the output guard), with its own help."""
    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        metavar="N",
        help=text,
    )


class PaddingType(click.ParamType):
    """``--padding``: a rule (``valid``, ``same``, ``full``) or numbers (``1``, ``0,1``, ``1,1,2,2``)."""

    name = "padding"

    def get_metavar(self, param, ctx=None) -> str:
        return "[" + "|".join(PADDINGS) + "|N|PY,PX|T,B,L,R]"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return check_padding(value)
        except ArgumentError:
            rules = ", ".join(map(repr, PADDINGS))
            numbers = f"N, PY,PX or TOP,BOTTOM,LEFT,RIGHT (each 0..{MAX_PADDING})"
            self.fail(f"{value!r} is not one of {rules}, {numbers}.", param, ctx)


PADDING = PaddingType()


RANGE_HELP = (
    "How float results become pixels. clip: round and clip to the output range; "
    "rescale: map min..max onto the full range (as a plot shows it); abs: magnitude, "
    "then clip. auto (default): clip for kernels with all weights >= 0 summing to 1, "
    "rescale otherwise."
)


def conv_options(command):  # long: one declarative list of options, no logic
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
            type=PADDING,
            default="valid",
            show_default=True,
            help="'valid': no padding (output shrinks); 'same': pad to ceil(n/stride); "
            "'full': pad d(k-1) on every side (full convolution, n + k - 1 at stride 1); "
            "numbers as courses write them: N, PY,PX or TOP,BOTTOM,LEFT,RIGHT "
            "(Keras's ZeroPadding2D, or --border's pixels, before a 'valid' layer).",
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
        max_pixels_option(
            "Refuse images with more pixels than this before decoding them "
            "(a guard against decompression bombs); raise it for trusted huge images."
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


def transpose_options(command):
    """``--transpose`` and ``--output-padding``: a ``Conv2DTranspose`` instead of a ``Conv2D``."""
    command = click.option(
        "--output-padding",
        nargs=2,
        type=click.IntRange(min=0),
        default=None,
        metavar="PY PX",
        help="With --transpose: Keras's output_padding, rows then columns, each below the stride: "
        "which of the stride's possible output sizes to make. Default: Keras's size without it.",
    )(command)
    return click.option(
        "--transpose",
        is_flag=True,
        help="Run a Conv2DTranspose (transposed convolution) instead: every input pixel adds the "
        "kernel times its value into the output, --stride apart, so the stride upsamples. "
        "Padding 'valid' or 'same'; see 'convfilter explain --transpose'.",
    )(command)


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


@dataclass
class BatchOptions:
    """The values of the options :func:`batch_options` adds."""

    output_dir: str | None
    output_template: str | None
    suffix: str
    out_format: str | None
    recursive: bool
    files_from: object
    null: bool
    overwrite: bool
    skip_existing: bool
    fail_fast: bool
    json_lines: bool
    quiet: bool
    jobs: int | None
    png_compression: int
    dask: str | None
    dask_timeout: float
    storage_options: object = None


def _check_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    ext = value.lower().lstrip(".")
    if is_matrix_path(f"x.{ext}"):
        return ext
    try:
        output_format(f"x.{ext}")
    except ConvFilterError:
        raise click.BadParameter(
            f"{value!r} is not a format Pillow can write (png, jpg, tif, bmp, webp ...) "
            "nor a matrix file (npy, csv, txt)"
        ) from None
    return ext


def _storage_options(ctx: click.Context, param: click.Parameter, value: str | None):
    from convfilter.io import stores

    try:  # a callback runs while Click parses, before the error boundary
        options = stores.parse_storage_options(value)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    stores.configure(options)  # every URL this command opens, here and on Dask workers
    return options


def storage_options_option() -> Callable:
    """``--storage-options JSON`` (or ``CONVFILTER_STORAGE_OPTIONS``): fsspec's options for every URL."""
    return click.option(
        "--storage-options",
        metavar="JSON",
        envvar="CONVFILTER_STORAGE_OPTIONS",
        callback=_storage_options,
        help="fsspec storage options for s3://, gs://, az:// ... inputs and outputs, e.g. "
        '\'{"endpoint_url": "http://127.0.0.1:9000"}\' (or CONVFILTER_STORAGE_OPTIONS). Without them '
        "the store's own settings apply (AWS_PROFILE, AWS_ENDPOINT_URL, ...).",
    )


def batch_options(command: Callable) -> Callable:  # long: a declarative list of options
    """Options for many files and pipes; their values reach ``command`` as one ``batch`` argument."""
    fields = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
    options = [
        click.option(
            "-o",
            "--output-dir",
            metavar="DIR",
            help="Write one output per input into DIR (created if missing), named like the input.",
        ),
        click.option(
            "--output-template",
            metavar="TEMPLATE",
            help=f"Name each output from the input's fields {fields}, "
            "e.g. '{dir}/{stem}_{kernel}.{ext}' (relative to -o DIR if given).",
        ),
        click.option(
            "--suffix",
            default="",
            metavar="TEXT",
            help="Add TEXT to each output's name (--suffix _blur: a.png -> a_blur.png).",
        ),
        click.option(
            "--format",
            "out_format",
            metavar="EXT",
            callback=_check_format,
            help="Output format by extension (png, jpg, tif ..., or npy, csv, txt for raw float "
            "matrices) for -o/--output-template outputs and standard output (default there: png).",
        ),
        click.option("-r", "--recursive", is_flag=True, help="Filter the images in directories, and below."),
        click.option(
            "--files-from",
            type=click.File("rb"),
            metavar="FILE",
            help="Read input paths from FILE, one per line ('-': standard input).",
        ),
        click.option(
            "--null", "-0", is_flag=True, help="--files-from paths end with NUL, not newline (find -print0)."
        ),
        click.option("--overwrite", is_flag=True, help="Replace outputs that exist (never an input)."),
        click.option("--skip-existing", is_flag=True, help="Leave outputs that exist alone (resume a run)."),
        click.option("--fail-fast", is_flag=True, help="Stop at the first file that fails."),
        click.option(
            "--json", "json_lines", is_flag=True, help="Print one JSON line per file on standard output."
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line."),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=None,
            metavar="N",
            help="Threads decoding and encoding images. Default: the number of CPU cores.",
        ),
        click.option(
            "--png-compression",
            type=click.IntRange(0, 9),
            default=DEFAULT_PNG_COMPRESSION,
            show_default=True,
            metavar="0..9",
            help="PNG outputs: 0 no compression; 1 fastest (the Sub row filter and zlib's run-length "
            "strategy, as OpenCV does); 2..9 zlib levels with every row filter tried, slower, smaller.",
        ),
        click.option(
            "--dask",
            metavar="[ADDRESS]",
            is_flag=False,
            flag_value="",
            default=None,
            help="Run the files as tasks on a Dask cluster: tcp://HOST:8786, or local:N for N worker "
            "processes on this machine; a bare --dask reads DASK_SCHEDULER_ADDRESS. Inputs and outputs "
            "must be on storage every worker sees (a shared disk, or s3:// gs:// az:// URLs). Needs "
            "pip install 'convfilter[dask]'.",
        ),
        storage_options_option(),
        click.option(
            "--dask-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            metavar="SECONDS",
            help="How long to try to reach the Dask scheduler.",
        ),
    ]
    names = list(BatchOptions.__dataclass_fields__)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        batch = BatchOptions(**{name: kwargs.pop(name) for name in names})
        return command(*args, batch=batch, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def show_options(command):
    """``--compare FIGURE`` and ``--export MODEL.keras``, for every command that runs a model."""
    command = click.option(
        "--export",
        "export_path",
        metavar="MODEL.keras",
        default=None,
        help="Also save the Keras model that produced the output (keras.saving.load_model reads it).",
    )(command)
    return click.option(
        "--compare",
        "compare_path",
        metavar="FIGURE",
        default=None,
        help="Also draw input, kernel heat map and output side by side (.png, .pdf or .svg).",
    )(command)


def picked_params(decorator: Callable, names: Sequence[str]) -> list[click.Parameter]:
    """The Click parameters ``decorator`` adds whose names are in ``names`` (shared definitions, reused)."""

    def probe(**_):  # pragma: no cover - never called
        pass

    params = {param.name: param for param in click.command("probe")(decorator(probe)).params}
    return [params[name] for name in names if name in params]
