"""What a single-filter Conv2D does to a shape, in numbers: pure arithmetic, no TensorFlow.

``convfilter explain`` prints this: input shape, kernel size, the padding
added on each side, the output shape with the formula that gave it, the
layer's trainable weights and the connections a fully connected (``Dense``)
layer mapping the same input to the same output would need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.conv import MAX_CHANNELS, Conv2DSpec
from convfilter.ops.geometry import dilated_extent, standardize_pair
from convfilter.ops.kernels import format_grid


@dataclass
class Explanation:
    """Shapes, padding, formulas and weight counts of one convolution."""

    input_shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding_mode: str
    padding: dict[str, int]
    output_shape: tuple[int, int]
    formulas: dict[str, str]
    use_bias: bool
    border: str = "zero"
    convolve: bool = False
    kernel_name: str | None = None
    kernel: np.ndarray | None = field(default=None, repr=False)
    transpose: bool = False
    output_padding: tuple[int, int] | None = None
    filters: int = 1
    channels: int = 1

    @property
    def params(self) -> int:
        """Trainable weights: ``kh*kw*C`` per filter, plus 1 per filter with a bias."""
        kh, kw = self.kernel_shape
        return (kh * kw * self.channels + int(self.use_bias)) * self.filters

    @property
    def weights_shape(self) -> tuple[int, int, int, int]:
        """The layer's kernel tensor: ``(kh, kw, C, N)``."""
        return (*self.kernel_shape, self.channels, self.filters)

    @property
    def dense_connections(self) -> int:
        """Weights of a Dense layer from every input value to every output value: ``H*W*C*H'*W'*N``."""
        (h, w), (oh, ow) = self.input_shape, self.output_shape
        return h * w * self.channels * oh * ow * self.filters

    @property
    def multiply_adds(self) -> int:
        """Multiplications the layer does: one per weight per output pixel (per input pixel, transposed)."""
        (h, w), (kh, kw) = self.output_shape if not self.transpose else self.input_shape, self.kernel_shape
        return h * w * kh * kw * self.channels * self.filters

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (lists for shapes)."""
        data = {
            "input_shape": list(self.input_shape),
            "kernel_shape": list(self.kernel_shape),
            "stride": list(self.stride),
            "dilation": list(self.dilation),
            "padding_mode": self.padding_mode,
            "padding": dict(self.padding),
            "border": self.border,
            "convolve": self.convolve,
            "output_shape": list(self.output_shape),
            "formulas": dict(self.formulas),
            "use_bias": self.use_bias,
            "params": self.params,
            "filters": self.filters,
            "channels": self.channels,
            "weights_shape": list(self.weights_shape),
            "dense_connections": self.dense_connections,
            "multiply_adds": self.multiply_adds,
            "transpose": self.transpose,
        }
        if self.transpose:
            data["output_padding"] = None if self.output_padding is None else list(self.output_padding)
        if self.kernel_name is not None:
            data["kernel_name"] = self.kernel_name
        if self.kernel is not None:
            data["kernel"] = np.asarray(self.kernel, dtype=float).tolist()
        return data


def axis_formula(n: int, k: int, s: int, d: int, padding: str | tuple, out: int, axis: int = 0) -> str:
    """The output-length formula of one axis with the numbers filled in, e.g. ``ceil(28 / 1) = 28``."""
    if not isinstance(padding, str):
        before, after = padding[2 * axis], padding[2 * axis + 1]
        return f"floor(({n} + {before} + {after} - {d}*({k} - 1) - 1) / {s}) + 1 = {out}"
    if padding == "same":
        return f"ceil({n} / {s}) = {out}"
    sign = "+" if padding == "full" else "-"
    return f"floor(({n} {sign} {d}*({k} - 1) - 1) / {s}) + 1 = {out}"


def transpose_formula(n: int, k: int, s: int, d: int, padding: str, p: int | None, out: int) -> str:
    """A transposed convolution's output-length formula with the numbers in, e.g. ``14*2 = 28``."""
    kd = dilated_extent(k, d)
    if p is None:
        return f"{n}*{s} = {out}" if padding == "same" else f"{n}*{s} + max({kd} - {s}, 0) = {out}"
    pad = kd // 2 if padding == "same" else 0
    return f"({n} - 1)*{s} + {kd} - 2*{pad} + {p} = {out}"


def explain(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str | int | Sequence[int] = "valid",
    dilation: int | Sequence[int] = (1, 1),
    use_bias: bool = False,
    kernel_name: str | None = None,
    kernel: np.ndarray | None = None,
    border: str = "zero",
    convolve: bool = False,
    transpose: bool = False,
    output_padding: int | Sequence[int] | None = None,
    filters: int = 1,
    channels: int = 1,
) -> Explanation:
    """Work out a convolution's shapes and counts; ``ValueError`` for bad arguments.

    The layer is the same :class:`~convfilter.ops.conv.Conv2DSpec` the
    filtering commands build, so it is validated the same way. ``filters`` is
    the layer's N (a filter bank) and ``channels`` the input's C: weights
    ``(kh, kw, C, N)``. ``padding`` is a rule (``'valid'``, ``'same'``,
    ``'full'``) or numbers (``N``, ``(PY, PX)``, ``(TOP, BOTTOM, LEFT, RIGHT)``).

    ``kernel`` (optional) is the grid as given; with ``convolve`` the
    explanation holds it flipped, as the Conv2D receives it. ``border`` does
    not change any number; it is recorded for the text.

    With ``transpose`` it explains a ``Conv2DTranspose`` (with ``output_padding``):
    ``padding`` then holds what is cropped off the full scatter-add result.

    Raises :class:`~convfilter.errors.ImageTooSmallError` when the output
    would be empty (an input smaller than the kernel, after padding).
    """
    h, w = standardize_pair(tuple(input_shape), "shape")
    kh, kw = standardize_pair(tuple(kernel_shape), "kernel_size")
    for value, what in ((filters, "filters"), (channels, "channels")):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHANNELS:
            raise ArgumentError(
                f"{what} must be an integer from 1 to {MAX_CHANNELS}, got {value!r}", param=f"--{what}"
            )
    shown = kernel is not None and np.ndim(kernel) == 2 and filters == channels == 1
    if shown:
        grid = np.asarray(kernel, dtype=np.float64)  # validated and flipped by the one description
    else:
        grid = np.zeros((kh, kw)) if filters == channels == 1 else np.zeros((kh, kw, channels, filters))
    op = Conv2DSpec(
        grid,
        stride,
        padding,
        dilation,
        1.0 if use_bias else 0.0,
        border,
        convolve,
        transpose=transpose,
        output_padding=output_padding,
    )
    if kernel is not None:
        kernel = op.weights if shown else np.asarray(kernel)
    out = op.output_shape((h, w))
    if transpose:
        (top, bottom), (left, right) = op.crops((h, w))
        formulas = [
            transpose_formula(
                (h, w)[a],
                op.window[a],
                op.stride[a],
                op.dilation[a],
                op.padding,
                None if op.output_padding is None else op.output_padding[a],
                out[a],
            )
            for a in (0, 1)
        ]
    else:
        (top, bottom), (left, right) = op.pads((h, w))
        formulas = [
            axis_formula((h, w)[a], op.window[a], op.stride[a], op.dilation[a], op.padding, out[a], a)
            for a in (0, 1)
        ]
    return Explanation(
        filters=filters,
        channels=channels,
        input_shape=(h, w),
        kernel_shape=(kh, kw),
        stride=op.stride,
        dilation=op.dilation,
        padding_mode=op.padding if isinstance(op.padding, str) else "explicit",
        padding={"top": top, "bottom": bottom, "left": left, "right": right},
        output_shape=out,
        formulas={"rows": formulas[0], "cols": formulas[1]},
        use_bias=bool(use_bias),
        border=op.border,
        convolve=bool(convolve),
        kernel_name=kernel_name,
        kernel=kernel,
        transpose=op.transpose,
        output_padding=op.output_padding,
    )


def _format_transpose(e: Explanation) -> list[str]:
    (h, w), (kh, kw) = e.input_shape, e.kernel_shape
    (sy, sx), (dy, dx) = e.stride, e.dilation
    span = (dilated_extent(kh, dy), dilated_extent(kw, dx))
    full = ((h - 1) * sy + span[0], (w - 1) * sx + span[1])
    pad = e.padding
    output_padding = "none" if e.output_padding is None else f"{e.output_padding[0]}x{e.output_padding[1]}"
    return [
        f"scatter:      every input pixel (i, j) adds the kernel ({span[0]}x{span[1]} with its dilation) "
        f"times its value at ({sy}*i, {sx}*j): a {full[0]}x{full[1]} grid, ({h} - 1)*{sy} + {span[0]} "
        f"by ({w} - 1)*{sx} + {span[1]}",
        f"crop:         '{e.padding_mode}', output padding {output_padding}: top {pad['top']}, "
        f"bottom {pad['bottom']}, left {pad['left']}, right {pad['right']} (negative: zeros added)",
    ]


def format_text(e: Explanation) -> str:
    """The explanation as aligned ``label: value`` lines for a terminal."""
    (h, w), (kh, kw), (oh, ow) = e.input_shape, e.kernel_shape, e.output_shape
    span = (dilated_extent(kh, e.dilation[0]), dilated_extent(kw, e.dilation[1]))
    name = f"{e.kernel_name} " if e.kernel_name else ""
    pad = e.padding
    fill = "zeros" if e.border == "zero" else f"{e.border} border"
    amounts = f"top {pad['top']}, bottom {pad['bottom']}, left {pad['left']}, right {pad['right']}"
    if e.padding_mode == "valid":
        padding = "'valid': none"
    elif e.padding_mode == "explicit":
        layer = "ZeroPadding2D" if e.border == "zero" else f"{e.border} border"
        padding = f"numbers ({layer}, then a 'valid' layer): {amounts}"
    else:
        padding = f"'{e.padding_mode}' ({fill}): {amounts}"
    c = e.channels
    per = f"{kh}*{kw}" if c == 1 else f"{kh}*{kw}*{c}"
    bias = "plus 1 bias" if e.use_bias else f"no bias; {kh * kw * c + 1} with a bias"
    ratio = e.dense_connections / e.params
    lines = [
        f"input:        {h}x{w} (tensor 1x{h}x{w}x{c})",
        f"kernel:       {name}{kh}x{kw}, stride {e.stride[0]}x{e.stride[1]}, "
        f"dilation {e.dilation[0]}x{e.dilation[1]}: each window covers {span[0]}x{span[1]} pixels",
    ]
    if e.kernel is not None:
        if e.convolve:
            lines.append("              flipped for --convolve, the Conv2D's weights:")
        lines.append("\n".join("              " + row for row in format_grid(e.kernel).splitlines()))
    if e.transpose:
        lines[1] = (
            f"kernel:       {name}{kh}x{kw}, stride {e.stride[0]}x{e.stride[1]}, "
            f"dilation {e.dilation[0]}x{e.dilation[1]}, transposed (Conv2DTranspose)"
        )
        lines += _format_transpose(e)
        work = f"{h}*{w} inputs x {kh * kw * c} weights"
    else:
        lines.append(f"padding:      {padding}")
        work = f"{oh}*{ow} outputs x {kh * kw * c} weights"
    per_filter = f" x {e.filters} filters" if e.filters > 1 else ""
    lines += [
        f"output rows:  {e.formulas['rows']}",
        f"output cols:  {e.formulas['cols']}",
        f"output:       {oh}x{ow} (tensor 1x{oh}x{ow}x{e.filters})",
        f"weights:      {e.params:,} trainable ({per} kernel weights shared by every window, {bias})"
        if e.filters == 1 and c == 1
        else f"weights:      {e.params:,} trainable, shape {e.weights_shape} ({e.filters} filter"
        f"{'s' if e.filters > 1 else ''} of {per} weights shared by every window, "
        + ("plus 1 bias each)" if e.use_bias else "no bias)"),
        f"work:         {e.multiply_adds:,} multiply-adds ({work}{per_filter})",
        f"dense layer:  {e.dense_connections:,} connections "
        f"({h}*{w}{'' if c == 1 else f'*{c}'} inputs x {oh}*{ow} outputs{per_filter}), "
        f"{ratio:,.0f} times the convolution's weights",
    ]
    return "\n".join(lines)
