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

from convfilter.ops.geometry import check_padding, dilated_extent, padding_amounts, standardize_pair
from convfilter.ops.kernels import format_grid
from convfilter.ops.spec import check_border_use, fits


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

    @property
    def params(self) -> int:
        """Trainable weights of the single-filter layer: ``kh*kw``, plus 1 with a bias."""
        return self.kernel_shape[0] * self.kernel_shape[1] + int(self.use_bias)

    @property
    def dense_connections(self) -> int:
        """Weights of a Dense layer from every input pixel to every output pixel: ``H*W*H'*W'``."""
        return self.input_shape[0] * self.input_shape[1] * self.output_shape[0] * self.output_shape[1]

    @property
    def multiply_adds(self) -> int:
        """Multiplications the convolution does: one per weight per output pixel."""
        return self.output_shape[0] * self.output_shape[1] * self.kernel_shape[0] * self.kernel_shape[1]

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
            "dense_connections": self.dense_connections,
            "multiply_adds": self.multiply_adds,
        }
        if self.kernel_name is not None:
            data["kernel_name"] = self.kernel_name
        if self.kernel is not None:
            data["kernel"] = np.asarray(self.kernel, dtype=float).tolist()
        return data


def axis_formula(n: int, k: int, s: int, d: int, padding: str, out: int) -> str:
    """The output-length formula of one axis with the numbers filled in, e.g. ``ceil(28 / 1) = 28``."""
    if padding == "same":
        return f"ceil({n} / {s}) = {out}"
    sign = "+" if padding == "full" else "-"
    return f"floor(({n} {sign} {d}*({k} - 1) - 1) / {s}) + 1 = {out}"


def explain(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    use_bias: bool = False,
    kernel_name: str | None = None,
    kernel: np.ndarray | None = None,
    border: str = "zero",
    convolve: bool = False,
) -> Explanation:
    """Work out a convolution's shapes and counts; ``ValueError`` for bad arguments.

    ``kernel`` (optional) is the grid as given; with ``convolve`` the
    explanation holds it flipped, as the Conv2D receives it. ``border`` does
    not change any number; it is recorded for the text.

    Raises :class:`~convfilter.errors.ImageTooSmallError` when the output
    would be empty ('valid' padding and an input smaller than the kernel).
    """
    h, w = standardize_pair(tuple(input_shape), "shape")
    kh, kw = standardize_pair(tuple(kernel_shape), "kernel_size")
    stride = standardize_pair(stride, "stride")
    dilation = standardize_pair(dilation, "dilation")
    padding = check_padding(padding)
    border = check_border_use(border, padding)
    if kernel is not None:
        kernel = np.asarray(kernel, dtype=np.float64)
        kernel = np.ascontiguousarray(kernel[::-1, ::-1]) if convolve else kernel
    out = fits((h, w), (kh, kw), stride, padding, dilation)
    top, bottom = padding_amounts(h, kh, stride[0], dilation[0], padding)
    left, right = padding_amounts(w, kw, stride[1], dilation[1], padding)
    return Explanation(
        input_shape=(h, w),
        kernel_shape=(kh, kw),
        stride=stride,
        dilation=dilation,
        padding_mode=padding,
        padding={"top": top, "bottom": bottom, "left": left, "right": right},
        output_shape=out,
        formulas={
            "rows": axis_formula(h, kh, stride[0], dilation[0], padding, out[0]),
            "cols": axis_formula(w, kw, stride[1], dilation[1], padding, out[1]),
        },
        use_bias=bool(use_bias),
        border=border,
        convolve=bool(convolve),
        kernel_name=kernel_name,
        kernel=kernel,
    )


def format_text(e: Explanation) -> str:
    """The explanation as aligned ``label: value`` lines for a terminal."""
    (h, w), (kh, kw), (oh, ow) = e.input_shape, e.kernel_shape, e.output_shape
    span = (dilated_extent(kh, e.dilation[0]), dilated_extent(kw, e.dilation[1]))
    name = f"{e.kernel_name} " if e.kernel_name else ""
    pad = e.padding
    if e.padding_mode == "valid":
        padding = "'valid': none"
    else:
        fill = "zeros" if e.border == "zero" else f"{e.border} border"
        padding = (
            f"'{e.padding_mode}' ({fill}): top {pad['top']}, bottom {pad['bottom']}, "
            f"left {pad['left']}, right {pad['right']}"
        )
    bias = "plus 1 bias" if e.use_bias else f"no bias; {kh * kw + 1} with a bias"
    ratio = e.dense_connections / e.params
    lines = [
        f"input:        {h}x{w} (tensor 1x{h}x{w}x1)",
        f"kernel:       {name}{kh}x{kw}, stride {e.stride[0]}x{e.stride[1]}, "
        f"dilation {e.dilation[0]}x{e.dilation[1]}: each window covers {span[0]}x{span[1]} pixels",
    ]
    if e.kernel is not None:
        if e.convolve:
            lines.append("              flipped for --convolve, the Conv2D's weights:")
        lines.append("\n".join("              " + row for row in format_grid(e.kernel).splitlines()))
    lines += [
        f"padding:      {padding}",
        f"output rows:  {e.formulas['rows']}",
        f"output cols:  {e.formulas['cols']}",
        f"output:       {oh}x{ow} (tensor 1x{oh}x{ow}x1)",
        f"weights:      {e.params:,} trainable ({kh}*{kw} kernel weights shared by every window, {bias})",
        f"work:         {e.multiply_adds:,} multiply-adds ({oh}*{ow} outputs x {kh * kw} weights)",
        f"dense layer:  {e.dense_connections:,} connections ({h}*{w} inputs x {oh}*{ow} outputs), "
        f"{ratio:,.0f} times the convolution's weights",
    ]
    return "\n".join(lines)
