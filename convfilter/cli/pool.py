"""``convfilter pool max|avg``: Keras's pooling layers, with every many-files feature of the kernels."""

from __future__ import annotations

import click

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.filtering import check_single_side_outputs, run_op
from convfilter.cli.options import batch_options, max_pixels_option, parse_depth, show_options
from convfilter.cli.report import report_pool
from convfilter.ops.kernels import MAX_KERNEL_SIZE
from convfilter.ops.spec import POOL_PADDINGS, POOLS, PoolSpec

POOL_HELP = """Pool INPUT with Keras's MaxPooling2D (max) or AveragePooling2D (avg).

The window is --size N x N; the stride defaults to the window, as in Keras.
'same' padding never counts padded pixels (avg divides by the real pixels in
each window). INPUT and OUTPUT may be images or matrix files (.npy .csv .txt).
Takes one INPUT OUTPUT pair, or many inputs with -o DIR, --recursive,
--files-from and the other batch options, exactly as the kernel commands do.

\b
Examples:
  convfilter pool max sample_images/ascent.png small.png --size 2
  convfilter pool avg grid.csv pooled.csv --size 3 --stride 1 1 --padding same
  convfilter pool max a.png b.png -o pooled/
"""


@click.command(
    "pool",
    cls=Command,
    help=POOL_HELP,
    short_help="max or average pooling (Keras pooling layers)",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("kind", type=click.Choice(POOLS), metavar="max|avg")
@click.argument("paths", metavar="INPUT... [OUTPUT]", nargs=-1)
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
    type=click.Choice(POOL_PADDINGS),
    default="valid",
    show_default=True,
    help="'valid': only whole windows; 'same': ceil(n/stride) outputs.",
)
@click.option(
    "--depth", type=click.Choice(["8", "16"]), default=None, help="Output bits per pixel (images only)."
)
@max_pixels_option(
    "Refuse images with more pixels than this before decoding them (a decompression-bomb guard)."
)
@click.option(
    "--frame",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Which frame of a multi-frame input (GIF, TIFF ...) to pool, from 0 (default 0).",
)
@click.option("-v", "--verbose", is_flag=True, help="Print shapes to stderr.")
@batch_options
@show_options
def pool_command(
    kind, paths, size, stride, padding, depth, max_pixels, frame, verbose, batch, compare_path, export_path
):
    check_single_side_outputs(paths, batch, compare_path, export_path)
    op = PoolSpec(kind, size, stride, padding)
    output = {"depth": parse_depth(depth), "max_pixels": max_pixels, "frame": frame}
    report = (lambda op, result: report_pool(op, result)) if verbose else None
    run_op(op, paths, batch, output, report=report, compare_path=compare_path, export_path=export_path)
