"""``convfilter chain``: several stages (kernels, pooling) in one Keras model, on one file or many.

Stages are parsed with the kernels' own option definitions (passed in by
:mod:`convfilter.cli`), so a stage accepts exactly what its kernel's command
accepts; the chain is one :class:`~convfilter.ops.spec.ChainSpec` run by the
same runner as every other command.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import click

from convfilter.cli.boundary import CONTEXT_SETTINGS, Command
from convfilter.cli.filtering import check_single_side_outputs, conv_op, run_op
from convfilter.cli.options import (
    CONV_SETTINGS,
    batch_options,
    parse_depth,
    picked_params,
    show_options,
    transpose_options,
)
from convfilter.cli.report import report_chain
from convfilter.errors import ArgumentError
from convfilter.ops.kernels import KERNELS, MAX_KERNEL_SIZE
from convfilter.ops.spec import POOL_PADDINGS, ChainSpec, PoolSpec, Stage

CHAIN_SETTINGS = ("range_mode", "depth", "frame", "max_pixels", "quality", "verbose")
"""The options of :func:`~convfilter.cli.options.conv_options` the chain itself takes."""


CHAIN_HELP = """Run INPUT through several stages in ONE Keras model and write the last stage's output.

Stages are separated by '--'. A stage is a kernel name with that kernel's
options (as 'convfilter KERNEL --help' lists them: --size, --scale, ...) and
--stride, --padding (valid, same, full or numbers), --dilation, --bias,
--convolve, --transpose [--output-padding PY PX] (a Conv2DTranspose stage);
'custom --kernel SPEC [--normalize]' (a 4-D @w.npy of shape (kh, kw, C, N)
gives N channels, which the next stage reads: weights (kh, kw, N, ...)); or
'pool max|avg' with --size N (default 2), --stride (default: the pool size,
as in Keras) and --padding.
Intermediate results stay float32 inside the model; only the last output is
mapped to pixels (--range). --border other than zero pads outside Keras and
is refused in a stage.

The chain's own options (--range, --depth, --compare, --export, -v, and the
batch options -o DIR, --recursive, --json ...) go before INPUT. The stages
begin at the first argument that names a stage; every argument before it is
an INPUT (or INPUT OUTPUT). --compare draws every stage; --export saves the
whole model.

\b
Examples:
  convfilter chain in.png out.png gaussian --size 5 -- sobel-x -- pool max --size 2
  convfilter chain --compare fig.png in.png out.png blur --stride 2 2 -- edge --padding same
  convfilter chain -o out/ a.png b.png gaussian --size 5 -- pool max
"""


def _stage_commands(
    conv_options: Callable, kernel_options: Callable, scale_option: Callable
) -> dict[str, click.Command]:
    commands: dict[str, click.Command] = {}
    settings = picked_params(conv_options, CONV_SETTINGS)
    for kernel in KERNELS.values():

        @click.command(kernel.name, context_settings=CONTEXT_SETTINGS, help=f"Stage: {kernel.summary}.")
        @kernel_options(kernel)
        @scale_option
        @transpose_options
        def stage(**params):  # pragma: no cover - only parsed, never invoked
            return params

        stage.params.extend(settings)
        commands[kernel.name] = stage

    @click.command(
        "custom", context_settings=CONTEXT_SETTINGS, help="Stage: your own weights, --kernel SPEC."
    )
    @click.option("--kernel", "spec", required=True, metavar="SPEC", help="As for 'convfilter custom'.")
    @click.option("--normalize", is_flag=True, help="Divide the weights by their sum.")
    @scale_option
    @transpose_options
    def custom(**params):  # pragma: no cover - only parsed, never invoked
        return params

    custom.params.extend(settings)
    commands["custom"] = custom

    @click.command("pool", context_settings=CONTEXT_SETTINGS, help="Stage: MaxPooling2D or AveragePooling2D.")
    @click.argument("kind", type=click.Choice(["max", "avg"]))
    @click.option(
        "--size", type=click.IntRange(1, MAX_KERNEL_SIZE), default=2, show_default=True, metavar="N"
    )
    @click.option("--stride", nargs=2, type=click.IntRange(min=1), default=None, metavar="SY SX")
    @click.option("--padding", type=click.Choice(POOL_PADDINGS), default="valid", show_default=True)
    def pool(**params):  # pragma: no cover - only parsed, never invoked
        return params

    commands["pool"] = pool
    return commands


def _split_stages(tokens: Sequence[str]) -> list[list[str]]:
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token == "--":
            stages.append([])
        else:
            stages[-1].append(token)
    return stages


def parse_stages(
    ctx: click.Context, tokens: Sequence[str], commands: dict[str, click.Command], chain_options: set[str]
) -> tuple[list[Stage], list[dict]]:
    """Parse ``STAGE -- STAGE ...`` with each stage's own Click options; returns stages and their settings."""
    stages: list[Stage] = []
    shown: list[dict] = []
    for number, args in enumerate(_split_stages(tokens), start=1):
        if not args:
            raise click.UsageError(f"stage {number} is empty (two '--' in a row, or one at an end)", ctx=ctx)
        name, rest = args[0], args[1:]
        if name not in commands:
            known = ", ".join(commands)
            raise click.UsageError(f"stage {number}: unknown stage {name!r}; use one of: {known}", ctx=ctx)
        for token in rest:
            if token.split("=", 1)[0] in chain_options:
                raise click.UsageError(
                    f"stage {number} ({name}): {token} is an option of 'chain' itself; give it before INPUT",
                    ctx=ctx,
                )
        try:
            with commands[name].make_context(name, list(rest), parent=ctx) as stage_ctx:
                params = dict(stage_ctx.params)
        except click.UsageError as exc:
            message = f"stage {number} ({name}): {exc.format_message()}"
            raise click.UsageError(message, ctx=exc.ctx or ctx) from None
        stages.append(_build_stage(name, params, number, ctx))
        shown.append(params)
    return stages, shown


def _build_stage(name: str, params: dict, number: int, ctx: click.Context) -> Stage:
    if name == "pool":
        return PoolSpec(params["kind"], params["size"], params["stride"], params["padding"])
    where = f"stage {number} ({name})"
    settings = {key: params.pop(key) for key in CONV_SETTINGS}
    if settings["border"] != "zero":
        raise click.UsageError(
            f"{where}: border {settings['border']!r} is padded outside Keras and cannot be part of one "
            "model; use --border zero",
            ctx=ctx,
        )
    scale = params.get("scale")
    transpose, output_padding = params.pop("transpose"), params.pop("output_padding")
    try:
        if name == "custom":
            from convfilter.io import kernelspec

            grid = kernelspec.parse_kernel(params["spec"])
            if params["normalize"]:
                grid = kernelspec.normalize(grid, params["spec"])
        else:
            kernel = KERNELS[name]
            if "seed" in kernel.options and params.get("seed") is None:
                params["seed"] = secrets.randbelow(2**31)
            grid = kernel.grid(**{k: v for k, v in params.items() if k != "scale"})
    except ArgumentError as exc:
        raise click.UsageError(
            f"{where}: Invalid value for '{exc.param or '--kernel'}': {exc}", ctx=ctx
        ) from None
    if scale is not None:
        grid = grid * scale
    params.update(settings)
    if transpose:
        params.update(transpose=True, output_padding=output_padding)
    try:
        return conv_op(grid, settings, transpose, output_padding, name)
    except ArgumentError as exc:
        raise click.UsageError(f"{where}: {exc}", ctx=ctx) from None


def split_paths(tokens: Sequence[str], commands: dict[str, click.Command]) -> tuple[list[str], list[str]]:
    """``INPUT... [OUTPUT] STAGE ...`` split at the first token that names a stage: (paths, stage tokens)."""
    for index, token in enumerate(tokens):
        if token in commands:
            return list(tokens[:index]), list(tokens[index:])
    raise click.UsageError(f"no stage given: name one of {', '.join(commands)} after the paths")


def chain_command(conv_options: Callable, kernel_options: Callable, scale_option: Callable) -> click.Command:
    """The ``chain`` command, its stages parsed with the kernels' own option definitions."""
    commands = _stage_commands(conv_options, kernel_options, scale_option)

    @click.command(
        "chain",
        cls=Command,
        help=CHAIN_HELP,
        short_help="Several stages (kernels, pooling) in one Keras model.",
        context_settings={**CONTEXT_SETTINGS, "allow_interspersed_args": False},
    )
    @click.argument(
        "args",
        metavar="INPUT... [OUTPUT] STAGE [-- STAGE]...",
        nargs=-1,
        required=True,
        type=click.UNPROCESSED,
    )
    @batch_options
    @show_options
    @click.pass_context
    def chain(ctx, args, batch, compare_path, export_path, verbose, **output):
        options = {
            opt for param in ctx.command.params if isinstance(param, click.Option) for opt in param.opts
        }
        paths, stage_args = split_paths(args, commands)
        stages, shown = parse_stages(ctx, stage_args, commands, options)
        check_single_side_outputs(paths, batch, compare_path, export_path)
        try:
            op = ChainSpec(tuple(stages))
        except ArgumentError as exc:
            raise click.UsageError(str(exc), ctx=ctx) from None
        output["range_request"] = output.pop("range_mode")
        output["depth"] = parse_depth(output["depth"])
        report = (lambda op, result: report_chain(op, shown, result)) if verbose else None
        run_op(op, paths, batch, output, report=report, compare_path=compare_path, export_path=export_path)

    chain.params.extend(picked_params(conv_options, CHAIN_SETTINGS))
    return chain
