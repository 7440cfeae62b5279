"""The command-line side of showing and learning: ``--compare``, ``--export``, ``chain`` and ``learn``.

Part of the CLI layer (split off :mod:`convfilter.cli` to keep that module
small): like it, this module turns the library's ``ConvFilterError`` into
exit 1 and ``ValueError`` into a usage error, exit 2. Options shared with the
filtering commands are taken from :func:`convfilter.cli.conv_options` and
:func:`convfilter.cli.kernel_options` themselves (passed in, to avoid an
import cycle), so a stage of ``chain`` accepts exactly what its kernel's own
command accepts.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Sequence

import click

from convfilter.engine.conv import orient_kernel
from convfilter.errors import ConvFilterError
from convfilter.export import check_model_path, export_stack
from convfilter.figures import check_figure_path, compare_figure, shape_text, stage_settings, value_range
from convfilter.ops.kernels import KERNELS, MAX_KERNEL_SIZE, KernelParameterError, format_grid
from convfilter.learn import (
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    check_kernel_path,
    learn_kernel,
    read_pair,
    save_kernel,
)
from convfilter.io.matrices import is_matrix_path
from convfilter.engine.pool import POOL_PADDINGS
from convfilter.engine.stack import ConvStage, PoolStage, conv_stage, pool_stage

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
STAGE_SETTINGS = ("stride", "padding", "dilation", "bias", "border", "convolve")
"""The options of :func:`conv_options` a chain stage takes (the output mapping belongs to the chain)."""
CHAIN_SETTINGS = ("range_mode", "depth", "frame", "max_pixels", "quality", "verbose")


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


def _guarded(action: Callable, *args, **kwargs):
    """Run a library call, turning its exceptions into Click's (exit 1 for files, 2 for arguments)."""
    try:
        return action(*args, **kwargs)
    except ConvFilterError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _check_paths(inputs: dict[str, str | None], extras: dict[str, str | None]) -> None:
    taken = {os.path.realpath(path): name for name, path in inputs.items() if path}
    for name, path in extras.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in taken:
            raise click.UsageError(f"{path}: is also {taken[key]}; {name} needs a file of its own")
        taken[key] = name


def check_side_outputs(
    input_path: str,
    output_path: str | None,
    compare_path: str | None,
    export_path: str | None,
    settings: dict | None = None,
) -> None:
    """Before any work: the figure and model paths are usable and distinct, and the settings allow them.

    ``--compare`` draws one channel, so it is refused with ``--color``;
    ``--export`` is refused with a non-zero ``--border``, which has no
    standard Keras layer (the saved model would not compute the output).
    """
    settings = settings or {}
    if compare_path and settings.get("color"):
        raise click.UsageError("--compare draws single-channel results; leave out --color")
    border = settings.get("border", "zero")
    if export_path and border != "zero" and settings.get("padding", "valid") != "valid":
        raise click.UsageError(
            f"--export: border {border!r} is padded outside Keras (no standard layer does it), so a saved "
            "model would not compute this output; use --border zero"
        )
    if compare_path:
        _guarded(check_figure_path, compare_path)
    if export_path:
        _guarded(check_model_path, export_path)
    _check_paths(
        {"INPUT": input_path, "OUTPUT": output_path}, {"--compare": compare_path, "--export": export_path}
    )


def write_side_outputs(name, grid, result, settings, compare_path, export_path) -> None:
    """After a filtering command: draw the ``--compare`` figure and save the ``--export`` model.

    The figure and the model show the weights the Conv2D holds (flipped with
    ``--convolve``).
    """
    if not (compare_path or export_path):
        return
    stage = conv_stage(
        orient_kernel(grid, bool(settings.get("convolve"))),
        stride=settings["stride"],
        padding=settings["padding"],
        dilation=settings["dilation"],
        bias=settings["bias"],
        name=name + (" flipped" if settings.get("convolve") else ""),
    )
    _write_stage_outputs(stage, result, compare_path, export_path)


def write_pool_side_outputs(kind, size, stride, padding, result, compare_path, export_path) -> None:
    """After ``convfilter pool``: the ``--compare`` figure and the ``--export`` model of the pooling layer."""
    if not (compare_path or export_path):
        return
    stage = _guarded(pool_stage, kind, size, stride=stride, padding=padding)
    _write_stage_outputs(stage, result, compare_path, export_path)


def _write_stage_outputs(stage, result, compare_path, export_path) -> None:
    """The ``--compare`` figure and the ``--export`` model of one layer ``stage`` that made ``result``."""
    if compare_path:
        _guarded(
            compare_figure,
            compare_path,
            result.input_values[0],
            [stage],
            [result.values[0]],
            input_max=None if is_matrix_path(result.input) else result.input_max,
            mapping=result.range_mode,
        )
    if export_path:
        _guarded(export_stack, export_path, [stage], result.input_shape)


# ---------------------------------------------------------------- chain


CHAIN_HELP = """Run INPUT through several stages in ONE Keras model and write the last stage's output.

Stages are separated by '--'. A stage is a kernel name with that kernel's
options (as 'convfilter KERNEL --help' lists them: --size, --scale, ...) and
--stride, --padding (valid, same, full), --dilation, --bias, --convolve;
'custom --kernel SPEC [--normalize]'; or 'pool max|avg' with --size N
(default 2), --stride (default: the pool size, as in Keras) and --padding.
Intermediate results stay float32 inside the model; only the last output is
mapped to pixels (--range). --border other than zero pads outside Keras and
is refused in a stage.

The chain's own options (--range, --depth, --compare, --export, -v) go
before INPUT. --compare draws every stage; --export saves the whole model.

\b
Examples:
  convfilter chain in.png out.png gaussian --size 5 -- sobel-x -- pool max --size 2
  convfilter chain --compare fig.png in.png out.png blur --stride 2 2 -- edge --padding same
"""


def _picked_params(decorator: Callable, names: Sequence[str]) -> list[click.Parameter]:
    """The Click parameters ``decorator`` adds whose names are in ``names`` (shared definitions, reused)."""

    def probe(**_):  # pragma: no cover - never called
        pass

    params = {param.name: param for param in click.command("probe")(decorator(probe)).params}
    return [params[name] for name in names if name in params]


def _stage_commands(
    conv_options: Callable, kernel_options: Callable, scale_option: Callable
) -> dict[str, click.Command]:
    commands: dict[str, click.Command] = {}
    settings = _picked_params(conv_options, STAGE_SETTINGS)
    for kernel in KERNELS.values():

        @click.command(kernel.name, context_settings=CONTEXT_SETTINGS, help=f"Stage: {kernel.summary}.")
        @kernel_options(kernel)
        @scale_option
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
) -> tuple[list[ConvStage | PoolStage], list[dict]]:
    """Parse ``STAGE -- STAGE ...`` with each stage's own Click options; returns stages and their settings."""
    stages: list[ConvStage | PoolStage] = []
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


def _build_stage(name: str, params: dict, number: int, ctx: click.Context) -> ConvStage | PoolStage:
    if name == "pool":
        return _guarded(
            pool_stage, params["kind"], params["size"], stride=params["stride"], padding=params["padding"]
        )
    where = f"stage {number} ({name})"
    settings = {key: params.pop(key) for key in STAGE_SETTINGS}
    border, convolve = settings.pop("border"), settings.pop("convolve")
    if border != "zero":
        raise click.UsageError(
            f"{where}: border {border!r} is padded outside Keras and cannot be part of one model; "
            "use --border zero",
            ctx=ctx,
        )
    scale = params.get("scale")
    try:
        if name == "custom":
            from convfilter.ops import kernelspec

            grid = kernelspec.parse_kernel(params["spec"])
            if params["normalize"]:
                grid = kernelspec.normalize(grid, params["spec"])
        else:
            kernel = KERNELS[name]
            if "seed" in kernel.options and params.get("seed") is None:
                params["seed"] = secrets.randbelow(2**31)
            grid = kernel.grid(**{k: v for k, v in params.items() if k != "scale"})
    except KernelParameterError as exc:
        raise click.UsageError(f"{where}: Invalid value for '--{exc.param}': {exc}", ctx=ctx) from None
    except ValueError as exc:
        raise click.UsageError(f"{where}: Invalid value for '--kernel': {exc}", ctx=ctx) from None
    if scale is not None:
        grid = grid * scale
    params.update(settings, convolve=convolve)
    label = name + (" flipped" if convolve else "")
    return _guarded(conv_stage, orient_kernel(grid, bool(convolve)), name=label, **settings)


def chain_command(conv_options: Callable, kernel_options: Callable, scale_option: Callable) -> click.Command:
    """The ``chain`` command, its stages parsed with the kernels' own option definitions."""
    commands = _stage_commands(conv_options, kernel_options, scale_option)

    @click.command(
        "chain",
        help=CHAIN_HELP,
        short_help="Several stages (kernels, pooling) in one Keras model.",
        context_settings={**CONTEXT_SETTINGS, "allow_interspersed_args": False},
    )
    @click.argument("input_path", metavar="INPUT")
    @click.argument("output_path", metavar="OUTPUT")
    @click.argument(
        "stage_args", metavar="STAGE [-- STAGE]...", nargs=-1, required=True, type=click.UNPROCESSED
    )
    @show_options
    @click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (never the input).")
    @click.pass_context
    def chain(ctx, input_path, output_path, stage_args, compare_path, export_path, verbose, **settings):
        from convfilter.run.chain import chain_file

        options = {
            opt for param in ctx.command.params if isinstance(param, click.Option) for opt in param.opts
        }
        stages, shown = parse_stages(ctx, stage_args, commands, options)
        check_side_outputs(input_path, output_path, compare_path, export_path)
        depth = settings["depth"]
        settings["depth"] = None if depth is None else (depth if depth == "32f" else int(depth))
        result = _guarded(chain_file, input_path, output_path, stages, **settings)
        if verbose:
            _report_chain(result, stages, shown)
        if compare_path:
            _guarded(
                compare_figure,
                compare_path,
                result.input_values,
                stages,
                result.outputs,
                input_max=None if is_matrix_path(input_path) else result.input_max,
                mapping=result.range_mode,
            )
        if export_path:
            _guarded(export_stack, export_path, stages, result.input_shape)

    chain.params.extend(_picked_params(conv_options, CHAIN_SETTINGS))
    return chain


def _report_chain(result, stages, shown) -> None:
    h, w = result.input_shape
    lines = [f"input:   {result.input}: {h}x{w} (tensor 1x{h}x{w}x1)"]
    weights = 0
    for number, (stage, params, shape) in enumerate(zip(stages, shown, result.shapes, strict=True), start=1):
        if isinstance(stage, ConvStage):
            extra = ", ".join(
                f"{k}={v}" for k, v in params.items() if v is not None and k not in STAGE_SETTINGS
            )
            count = stage.kernel.size + (1 if stage.bias else 0)
            weights += count
            lines.append(
                f"stage {number}: {stage.name}"
                + (f" ({extra})" if extra else "")
                + f" -> {shape_text(shape)}, "
                f"{count} weights: {stage.describe()}"
            )
            lines.append("\n".join("         " + row for row in format_grid(stage.kernel).splitlines()))
        else:
            lines.append(f"stage {number}: {stage.describe()} -> {shape_text(shape)}, no weights")
    oh, ow = result.shapes[-1]
    if result.range_mode == "raw":
        written = "raw float32 values" + (" (32-bit float TIFF)" if result.depth == "32f" else "")
    else:
        written = f"{result.depth}-bit, range {result.range_mode} of raw values"
    lines.append(
        f"output:  {result.output}: {oh}x{ow}, {written} {value_range(result.outputs[-1])}; "
        f"{weights} weights in all"
    )
    click.echo("\n".join(lines), err=True)


# ---------------------------------------------------------------- learn


LEARN_HELP = """Learn the kernel that turns BEFORE into AFTER by training a Conv2D with Keras.

Trains the same single-filter Conv2D the filtering commands run (same
--stride, --padding, --dilation) with model.fit, the Adam optimizer and a
mean-squared-error loss, full batch: one epoch is one gradient step over the
whole image. Prints the learned grid, the bias (with --bias), the final error
and the epochs used; -o saves the kernel as .csv/.txt (rows of numbers) or
.npy, which 'custom --kernel @FILE' reads.

BEFORE and AFTER are images or matrix files (.npy, .csv, .txt: numbers used
as they are). 8-bit AFTER images were rounded, clipped or rescaled when they
were written, so what is learned from them is approximate; a 16-bit AFTER of an
averaging kernel (written with clip) or a matrix file gives an exact recovery.

\b
Example:
  convfilter gaussian in.png after.png --size 5 --depth 16
  convfilter learn in.png after.png --size 5 -o gaussian.csv
"""


def _progress(epochs: int, total: int, loss: float) -> None:
    click.echo(f"\repoch {epochs}/{total}  loss {loss:.3e}  ", err=True, nl=False)


def learn_command(conv_options: Callable) -> click.Command:
    """The ``learn`` command."""

    @click.command(
        "learn",
        help=LEARN_HELP,
        short_help="Learn a kernel back from BEFORE and AFTER.",
        context_settings=CONTEXT_SETTINGS,
    )
    @click.argument("before_path", metavar="BEFORE")
    @click.argument("after_path", metavar="AFTER")
    @click.option(
        "--size",
        type=click.IntRange(1, MAX_KERNEL_SIZE),
        required=True,
        metavar="K",
        help="Side of the K x K kernel to learn.",
    )
    @click.option(
        "-o",
        "--output",
        "kernel_path",
        metavar="KERNEL",
        default=None,
        help="Save the learned kernel: .csv or .txt (rows of numbers) or .npy.",
    )
    @click.option(
        "--bias/--no-bias",
        "learn_bias",
        default=False,
        show_default=True,
        help="Also learn the layer's bias.",
    )
    @click.option(
        "--epochs",
        type=click.IntRange(min=1),
        default=DEFAULT_EPOCHS,
        show_default=True,
        help="At most this many epochs (stops early once the error stops falling).",
    )
    @click.option(
        "--learning-rate",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_LEARNING_RATE,
        show_default=True,
        help="Adam's learning rate.",
    )
    @click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the initial weights.",
    )
    @show_options
    def learn(
        before_path,
        after_path,
        size,
        kernel_path,
        learn_bias,
        epochs,
        learning_rate,
        seed,
        compare_path,
        export_path,
        stride,
        padding,
        dilation,
        border,
    ):
        from convfilter.engine.conv import check_border_use, filter_array

        _guarded(check_border_use, border, padding)
        if kernel_path:
            _guarded(check_kernel_path, kernel_path)
        _check_paths({"BEFORE": before_path, "AFTER": after_path}, {"--output": kernel_path})
        check_side_outputs(
            before_path, after_path, compare_path, export_path, {"border": border, "padding": padding}
        )
        before, after = _guarded(read_pair, before_path, after_path)
        progress = _progress if sys.stderr.isatty() else None
        try:
            result = learn_kernel(
                before,
                after,
                size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                border=border,
                learn_bias=learn_bias,
                epochs=epochs,
                learning_rate=learning_rate,
                seed=seed,
                progress=progress,
            )
        except ValueError as exc:
            raise click.ClickException(f"{after_path}: {exc}") from None
        finally:
            if progress is not None:
                click.echo(err=True)
        _print_learned(result, stride, padding, dilation)
        stage = conv_stage(
            result.kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=result.bias or 0.0,
            name="learned",
        )
        if kernel_path:
            _guarded(save_kernel, kernel_path, result.kernel)
            click.echo(f"kernel written to {kernel_path}")
        if compare_path:
            settings = {"stride": stride, "padding": padding, "dilation": dilation, "border": border}
            output = filter_array(before, result.kernel, bias=result.bias or 0.0, **settings)
            _guarded(
                compare_figure,
                compare_path,
                before,
                [stage],
                [output],
                input_max=None,
                title=f"learned from {before_path} → {after_path}: BEFORE, the learned kernel, its output",
            )
        if export_path:
            _guarded(export_stack, export_path, [stage], before.shape)

    learn.params.extend(_picked_params(conv_options, ("stride", "padding", "dilation", "border")))
    return learn


def _print_learned(result, stride, padding, dilation) -> None:
    kh, kw = result.kernel.shape
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    stage = ConvStage(result.kernel, tuple(stride), padding, tuple(dilation))
    lines = [
        f"learned {kh}x{kw} kernel: BEFORE {h}x{w} -> AFTER {oh}x{ow} ({stage_settings(stage)})",
        "\n".join("  " + row for row in format_grid(result.kernel).splitlines()),
    ]
    if result.bias is not None:
        lines.append(f"bias: {result.bias:.6g}")
    lines.append(
        f"final error: mean squared {result.error:.3g}, largest {result.max_error:.3g} (in BEFORE's scale)"
    )
    why = (
        ", stopped early: the error stopped falling"
        if result.stopped_early
        else " (all of them: raise --epochs if the error was still falling)"
    )
    lines.append(f"epochs: {result.epochs} of {result.max_epochs}{why}")
    click.echo("\n".join(lines))


__all__ = [
    "chain_command",
    "check_side_outputs",
    "learn_command",
    "parse_stages",
    "show_options",
    "write_side_outputs",
]
