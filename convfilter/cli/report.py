"""What ``-v`` prints to standard error: shapes, tensors, weights and the Keras layers that ran."""

from __future__ import annotations

import click

from convfilter.cli.options import CONV_SETTINGS
from convfilter.engine.layouts import describe as describe_engine
from convfilter.engine.model import compute_device
from convfilter.figures import shape_text, value_range
from convfilter.ops.geometry import padding_amounts
from convfilter.ops.kernels import format_grid
from convfilter.ops.spec import ChainSpec, Conv2DSpec, PoolSpec
from convfilter.ops.transpose import TransposeSpec
from convfilter.run.files import RAW, FilterResult


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def report_conv(op: Conv2DSpec | TransposeSpec, params: dict, result: FilterResult) -> None:
    """``-v`` of a kernel command: ``params`` are the kernel's options as given (``size=5`` ...)."""
    name, grid = op.name, op.kernel
    kh, kw = grid.shape
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None and v is not False)
    weights = f"{kh * kw} weights" + (" + 1 bias" if op.bias else "")
    lines = [
        f"input:   {result.input}: {h}x{w} (tensor {result.channels}x{h}x{w}x1)",
        f"kernel:  {name} {kh}x{kw}" + (f" ({shown})" if shown else "") + f", {weights}",
        _indent(format_grid(grid), "         "),
    ]
    if op.convolve:
        lines += [
            "         flipped in both axes for --convolve, the Conv2D's weights are:",
            _indent(format_grid(grid[::-1, ::-1]), "         "),
        ]
    if isinstance(op, TransposeSpec):
        (top, bottom), (left, right) = op.crops(result.input_shape)
        lines.append(
            f"layer:   {op.describe()}: the kernel added at every input pixel, {op.stride[0]}x{op.stride[1]} "
            f"apart, cropped top {top}, bottom {bottom}, left {left}, right {right}"
        )
        lines.append("engine:  the Conv2DTranspose layer itself, on the whole image")
    else:
        lines.append(_describe_layer(op, result.input_shape))
        lines.append(
            "engine:  same result, computed fast: " + describe_engine(grid.shape, op.stride, op.dilation)
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


def _describe_layer(op: Conv2DSpec, input_shape) -> str:
    (kh, kw), stride, padding, dilation = op.geometry
    border, use_bias = op.border, bool(op.bias)
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


def report_pool(op: PoolSpec, result: FilterResult) -> None:
    """``-v`` of ``pool``: shapes and the pooling layer."""
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    values = "raw float32 values" if result.range_mode == RAW else f"{result.depth}-bit"
    click.echo(
        f"input:   {result.input}: {h}x{w} (tensor 1x{h}x{w}x1)\n"
        f"layer:   {op.describe()}\n"
        f"output:  {result.output}: {oh}x{ow}, {values} {result.minimum:.6g}..{result.maximum:.6g}",
        err=True,
    )


def report_chain(op: ChainSpec, shown: list[dict], result: FilterResult) -> None:
    """``-v`` of ``chain``: every stage with its options as given (``shown``), shape and weights."""
    stages, shapes = op.stages, op.shapes(result.input_shape)
    outputs = result.stage_values or [result.values]
    h, w = result.input_shape
    lines = [f"input:   {result.input}: {h}x{w} (tensor 1x{h}x{w}x1)"]
    weights = 0
    for number, (stage, params, shape) in enumerate(zip(stages, shown, shapes, strict=True), start=1):
        if isinstance(stage, Conv2DSpec):
            extra = ", ".join(
                f"{k}={v}" for k, v in params.items() if v is not None and k not in CONV_SETTINGS
            )
            count = stage.kernel.size + (1 if stage.bias else 0)
            weights += count
            lines.append(
                f"stage {number}: {stage.label}"
                + (f" ({extra})" if extra else "")
                + f" -> {shape_text(shape)}, "
                f"{count} weights: {stage.describe()}"
            )
            lines.append("\n".join("         " + row for row in format_grid(stage.weights).splitlines()))
        else:
            lines.append(f"stage {number}: {stage.describe()} -> {shape_text(shape)}, no weights")
    oh, ow = shapes[-1]
    if result.range_mode == "raw":
        written = "raw float32 values" + (" (32-bit float TIFF)" if result.depth == "32f" else "")
    else:
        written = f"{result.depth}-bit, range {result.range_mode} of raw values"
    lines.append(
        f"output:  {result.output}: {oh}x{ow}, {written} {value_range(outputs[-1][0])}; "
        f"{weights} weights in all"
    )
    click.echo("\n".join(lines), err=True)
