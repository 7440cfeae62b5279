"""The ``convfilter`` command: a thin Click layer over the library, one module per command family.

* :mod:`~convfilter.cli.filtering`: the named kernels and ``custom``;
* :mod:`~convfilter.cli.pool`, :mod:`~convfilter.cli.chain`, :mod:`~convfilter.cli.learn`;
* :mod:`~convfilter.cli.tools`: ``kernels`` and ``explain`` (no model);
* :mod:`~convfilter.cli.options`: the option groups; :mod:`~convfilter.cli.files`:
  one file, a batch or a pipe; :mod:`~convfilter.cli.report`: ``-v``;
  :mod:`~convfilter.cli.side`: ``--compare`` and ``--export``;
* :mod:`~convfilter.cli.boundary`: the one place library errors become exit codes.
"""

from __future__ import annotations

import os
import sys

import click

from convfilter import __version__
from convfilter.cli.animate import animate_command
from convfilter.cli.bank import bank_command
from convfilter.cli.boundary import CONTEXT_SETTINGS, Group
from convfilter.cli.chain import chain_command
from convfilter.cli.explore import explore_command
from convfilter.cli.files import handle_termination
from convfilter.cli.filtering import custom_command, make_kernel_command
from convfilter.cli.learn import learn_command
from convfilter.cli.options import conv_options, kernel_options, scale_option
from convfilter.cli.pool import pool_command
from convfilter.cli.running import run_group
from convfilter.cli.server import server_group
from convfilter.cli.streams import repair_streams
from convfilter.cli.tools import explain_command, kernels_group
from convfilter.ops.kernels import KERNELS

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
  convfilter blur in.png up.png --transpose --stride 2 2 --padding same
  convfilter bank sobel-x sobel-y in.png edges.png --combine magnitude
  convfilter animate same.gif --shape 5 5 --kernel-size 3 3 --padding same
  convfilter blur photos/*.jpg -o blurred/ --suffix _blur --format png
  find photos -name '*.png' -print0 | convfilter edge --files-from - --null -o edges/
  cat a.jpg | convfilter edge - - | display -

Outputs that exist are never replaced without --overwrite (--skip-existing
resumes an interrupted batch); an input is never written over.

Run 'convfilter KERNEL --help' for a kernel's options.
"""


@click.group(cls=Group, help=MAIN_HELP, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="convfilter")
@click.option(
    "--no-server",
    is_flag=True,
    help="Run in this process even when a convfilter server is running (as CONVFILTER_SERVER=off does).",
)
def cli(no_server: bool) -> None:
    pass


for _kernel in KERNELS.values():
    cli.add_command(make_kernel_command(_kernel))
cli.add_command(custom_command)
cli.add_command(kernels_group)
cli.add_command(explain_command)
cli.add_command(explore_command)
cli.add_command(pool_command)
cli.add_command(bank_command)
cli.add_command(animate_command)
cli.add_command(chain_command(conv_options, kernel_options, scale_option))
cli.add_command(learn_command(conv_options))
cli.add_command(server_group)


def run_command(argv: list[str] | None = None) -> int:
    """Run :data:`cli` on ``argv`` (default ``sys.argv[1:]``); its exit code (:func:`run_group`)."""
    return run_group(cli, argv)


def main() -> None:
    """Run the command line in this process (the forwarding client's fallback, and ``--no-server``).

    When TensorFlow was loaded, the process then ends with ``os._exit``:
    TensorFlow's interpreter teardown takes a noticeable part of a second and
    has nothing left to do (see :func:`run_command`). Only this entry point
    exits that way, never :data:`cli` itself (``CliRunner``, library use).
    """
    repair_streams()
    handle_termination()
    code = run_command()
    if "tensorflow" not in sys.modules:
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
