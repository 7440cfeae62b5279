"""What ``-v`` prints to standard error: shapes, tensors, weights and the Keras layers that ran."""

from __future__ import annotations

import click

from convfilter.cli.options import CONV_SETTINGS
from convfilter.engine.layouts import describe as describe_engine
from convfilter.engine.model import compute_device
from convfilter.figures import shape_text, value_range
from convfilter.ops.kernels import format_grid
from convfilter.ops.spec import ChainSpec, Conv2DSpec, PoolSpec
from convfilter.run.files import RAW, FilterResult


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def report_conv(op: Conv2DSpec, params: dict, result: FilterResult) -> None:
    """``-v`` of a kernel command: ``params`` are the kernel's options as given (``size=5`` ...)."""
    name, grid = op.name, op.kernel
    kh, kw = op.window
    c, n = op.channels, op.filters
    (h, w), (oh, ow) = result.input_shape, result.output_shape
    shown = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None and v is not False)
    if grid.ndim == 2:
        weights = f"{kh * kw} weights" + (" + 1 bias" if op.bias else "")
        images, in_c = result.channels, 1
    else:
        weights = f"{kh * kw * c * n} weights ({kh}x{kw}x{c}x{n})" + (f" + {n} bias" if op.bias else "")
        images, in_c = 1, c
    lines = [
        f"input:   {result.input}: {h}x{w} (tensor {images}x{h}x{w}x{in_c})",
        f"kernel:  {name} {kh}x{kw}" + (f" ({shown})" if shown else "") + f", {weights}",
    ]
    if grid.ndim == 2:
        lines.append(_indent(format_grid(grid), "         "))
    else:
        for f in range(n):
            for ch in range(c):
                lines.append(f"         filter {f + 1}, channel {ch + 1}:")
                lines.append(_indent(format_grid(grid[:, :, ch, f]), "         "))
    if op.convolve and grid.ndim == 2:
        lines += [
            "         flipped in both axes for --convolve, the Conv2D's weights are:",
            _indent(format_grid(op.weights), "         "),
        ]
    elif op.convolve:
        lines.append("         flipped in both axes for --convolve")
    if op.transpose:
        (top, bottom), (left, right) = op.crops(result.input_shape)
        lines.append(
            f"layer:   {op.describe()}: the kernel added at every input pixel, {op.stride[0]}x{op.stride[1]} "
            f"apart, cropped top {top}, bottom {bottom}, left {left}, right {right}"
        )
        if op.channels == 1:
            phases = op.stride[0] * op.stride[1]
            lines.append(
                f"engine:  same result, computed fast: the scatter-add's {phases} phase(s) (rows and columns "
                "modulo the stride) as the filters of one blocked Conv2D, tile by tile beyond --tile-size"
            )
        else:
            lines.append("engine:  the Conv2DTranspose layer itself, tile by tile beyond --tile-size")
    else:
        lines.append(_describe_layer(op, result.input_shape))
        if op.layout == "blocked":
            engine = describe_engine(op.window, op.stride, op.dilation)
            lines.append("engine:  same result, computed fast: " + engine)
        else:
            lines.append("engine:  the Conv2D layer itself, reading every channel")
    lines.append(f"device:  {compute_device()}")
    if result.range_mode == RAW:
        lines.append(
            f"output:  {result.output}: {oh}x{ow}"
            + (", 32-bit float TIFF" if result.depth == "32f" else "")
            + f", raw float32 values {result.minimum:.6g}..{result.maximum:.6g}"
        )
    else:
        lines.append(
            f"output:  {result.output}: {oh}x{ow} (tensor {images}x{oh}x{ow}x1), "
            f"{_depth_label(result.depth)}{'' if result.mode in ('L', 'I;16', 'F') else ' ' + result.mode}, "
            f"range {result.range_mode} of raw values {result.minimum:.6g}..{result.maximum:.6g}"
        )
    click.echo("\n".join(lines), err=True)


def _depth_label(depth) -> str:
    return "32-bit float" if depth == "32f" else f"{depth}-bit"


def _describe_layer(op: Conv2DSpec, input_shape) -> str:
    (kh, kw), stride, padding, dilation = op.geometry
    border, use_bias, n = op.border, bool(op.bias), op.filters
    split = op.split
    if op.keras_native:
        return (
            f"layer:   Conv2D({n}, ({kh}, {kw}), strides={tuple(stride)}, padding='{padding}', "
            f"dilation_rate={tuple(dilation)}, use_bias={use_bias})"
        )
    pad_y, pad_x = op.pads(input_shape)
    strides = (1, 1) if split else tuple(stride)
    text = (
        f"layer:   Conv2D({n}, ({kh}, {kw}), strides={strides}, padding='valid', "
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
        if stage.params:
            extra = ", ".join(
                f"{k}={v}" for k, v in params.items() if v is not None and k not in CONV_SETTINGS
            )
            count = stage.params
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
