"""``convfilter bank KERNEL... INPUT... [OUTPUT]``: N kernels as the N filters of one Conv2D."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

import click

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.filtering import check_single_side_outputs, run_op
from convfilter.cli.options import batch_options, conv_options, split_conv
from convfilter.cli.stacked import report_bank, write_stacked
from convfilter.ops.bank import COMBINES, BankSpec
from convfilter.ops.kernels import KERNELS, MAX_KERNEL_SIZE
from convfilter.run.files import FilterResult

BANK_HELP = """Run several kernels at once, as the N filters of one Conv2D(N, ...), and combine them.

\b
KERNEL is a named kernel (sobel-x, gaussian ...) or a custom SPEC ("1,0,-1",
"[[1,2],[3,4]]", @k.npy). The kernels come first, then the paths; every
kernel has the same size. The layer's weights have the shape (kh, kw, 1, N).

\b
--combine:
  magnitude  sqrt of the sum of the squared outputs (sobel-x sobel-y: the gradient magnitude)
  max        the largest output at each pixel
  sum        the sum of the outputs
  stack      every output: OUTPUT.npy holds H x W x N raw values, or
             INPUT... -o DIR writes one image per filter and input,
             named <input>-<kernel>.<ext>

Every form of the filtering commands works with magnitude, max and sum
(INPUT OUTPUT, INPUT... -o DIR, -r, --files-from, '-' pipes, --dask, Zarr
arrays); stack takes INPUT OUTPUT.npy or INPUT... -o DIR.

\b
Examples:
  convfilter bank sobel-x sobel-y sample_images/ascent.png edges.png
  convfilter bank sobel-x sobel-y in.png responses.npy --combine stack
  convfilter bank sobel-x sobel-y emboss in.png -o filters/ --combine stack
  convfilter bank "1,-1" "1;-1" photos/*.png -o diffs/ --combine max
"""

_SPEC_LIKE = re.compile(r"^[\s0-9eE+\-.,;]*[0-9][\s0-9eE+\-.,;]*$")


def is_kernel_argument(token: str) -> bool:
    """True for a kernel name or something shaped like a SPEC (numbers, ``@file``, a JSON list)."""
    return token in KERNELS or token.startswith(("@", "[")) or bool(_SPEC_LIKE.match(token))


def split_kernels(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The leading kernel arguments and the paths after them."""
    count = 0
    while count < len(args) and is_kernel_argument(args[count]):
        count += 1
    return list(args[:count]), list(args[count:])


def build_kernels(tokens: Sequence[str], named: dict) -> tuple[list, list[str], dict]:
    """Each token's grid and name; ``named`` (size, sigma, seed) goes to the named kernels that take it.

    Returns ``(grids, names, used)``: ``used`` holds the options as applied (a fresh seed, if drawn).
    """
    from convfilter.io.kernelspec import parse_kernel

    grids, names, taken = [], [], set()
    used = {key: value for key, value in named.items() if value is not None}
    for token in tokens:
        if token in KERNELS:
            kernel = KERNELS[token]
            if "seed" in kernel.options and "seed" not in used:
                used["seed"] = secrets.randbelow(2**31)
            params = {key: value for key, value in used.items() if key in kernel.options}
            taken.update(params)
            grids.append(kernel.grid(**params))
            names.append(token)
        else:
            grids.append(parse_kernel(token))
            names.append(f"custom{len(names) + 1}" if len(tokens) > 1 else "custom")
    for key in named:
        if named[key] is not None and key not in taken:
            raise click.BadParameter(
                f"none of the kernels takes --{key} ({', '.join(tokens)})", param_hint=f"'--{key}'"
            )
    return grids, names, used


@click.command(
    "bank",
    cls=Command,
    help=BANK_HELP,
    short_help="several kernels as the N filters of one Conv2D, combined",
    context_settings=CONTEXT_SETTINGS,
)
@click.argument("args", metavar="KERNEL... INPUT... [OUTPUT]", nargs=-1)
@click.option(
    "--combine",
    type=click.Choice(COMBINES),
    default="magnitude",
    show_default=True,
    help="How the N outputs become one (stack: keep all N).",
)
@click.option(
    "--size",
    type=click.IntRange(1, MAX_KERNEL_SIZE),
    default=None,
    metavar="N",
    help="Side of the named kernels that take one (blur, gaussian, identity, random).",
)
@click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=None, help="gaussian's sigma.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="random's seed.")
@conv_options
@batch_options
@click.option(
    "--export",
    "export_path",
    metavar="MODEL.keras",
    default=None,
    help="Also save the Conv2D(N, ...) model (its output: the N filters' responses, before --combine).",
)
@click.option(
    "--compare",
    "compare_path",
    metavar="FIGURE",
    default=None,
    help="Also draw input, the N kernels as heat maps and the combined output (.png, .pdf or .svg).",
)
def bank_command(args, combine, size, sigma, seed, verbose, batch, export_path, compare_path, **params):
    tokens, paths = split_kernels(args)
    if not tokens:
        raise click.UsageError("give at least one KERNEL (a name or a SPEC) before the paths")
    conv, output = split_conv(params)
    grids, names, used = build_kernels(tokens, {"size": size, "sigma": sigma, "seed": seed})
    op = BankSpec(tuple(grids), tuple(names), **conv, combine=combine)
    if combine == "stack":
        if compare_path:
            raise click.UsageError("--compare draws one output; --combine stack keeps N: leave one out")
        write_stacked(op, paths, batch, output, used, verbose, export_path)
        return
    check_single_side_outputs(
        paths,
        batch,
        compare_path,
        export_path,
        color=output["color"],
        border=conv["border"],
        padding=conv["padding"],
    )

    def report(op: BankSpec, result: FilterResult) -> None:
        click.echo("\n".join(report_bank(op, used, result)), err=True)

    run_op(
        op,
        paths,
        batch,
        output,
        report=report if verbose else None,
        export_path=export_path,
        compare_path=compare_path,
    )
