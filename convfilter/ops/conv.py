"""One convolution, as Keras describes it: :class:`Conv2DSpec`, validated once on construction.

In the spirit of Keras's ``BaseConv``, the variants of a convolution are
fields of one description, not classes:

* ``kernel`` is ``(kh, kw)`` (one filter over one channel) or
  ``(kh, kw, C, N)``, as ``layer.get_weights()[0]`` holds it: ``C`` input
  channels (:attr:`~Conv2DSpec.channels`) and ``N`` filters
  (:attr:`~Conv2DSpec.filters`, a filter bank when ``N > 1``; ``combine``
  says how the ``N`` outputs become one image);
* ``padding`` is ``'valid'``, ``'same'``, ``'full'`` or numbers (``N``,
  ``(PY, PX)`` or ``(TOP, BOTTOM, LEFT, RIGHT)``: a ``ZeroPadding2D``, or
  ``border``'s pixels, before a 'valid' layer);
* ``transpose`` runs the convolution backwards (``Conv2DTranspose``), with
  Keras's ``output_padding``.

The description answers everything the layers above need: its output shape,
``describe()``, its Keras layers (:meth:`~Conv2DSpec.add_layers`), the input
window of an output tile (:meth:`~Conv2DSpec.input_window`), how alpha is
carried (:meth:`~Conv2DSpec.carry_alpha`) and which engine layout serves it
(:attr:`~Conv2DSpec.layout`). No TensorFlow here: the Keras module is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from convfilter.errors import ArgumentError, ImageTooSmallError
from convfilter.ops.alpha import nearest_source, window_anchor
from convfilter.ops.borders import check_border
from convfilter.ops.geometry import (
    KERAS_PADDINGS,
    axis_padding,
    check_padding,
    dilated_extent,
    output_length,
    padding_amounts,
    padding_text,
    standardize_pair,
    transpose_crop,
    transpose_length,
)
from convfilter.ops.kernels import MAX_KERNEL_SIZE, is_averaging

COMBINES = ("stack", "magnitude", "max", "sum")
COMBINE_TEXT = {
    "stack": "the {n} outputs kept as {n} channels",
    "magnitude": "sqrt of the sum of the {n} outputs squared",
    "max": "the largest of the {n} outputs at each pixel",
    "sum": "the sum of the {n} outputs",
}
TRANSPOSE_PADDINGS = KERAS_PADDINGS
MAX_CHANNELS = 1024
"""Input channels and filters a kernel may have: far beyond any image, small enough to stay fast."""


def check_kernel(kernel: np.ndarray | Sequence) -> np.ndarray:
    """``kernel`` as a 2-D ``(kh, kw)`` or 4-D ``(kh, kw, C, N)`` float64 array, or ArgumentError."""
    try:
        grid = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(f"kernel must be a 2-D array of numbers, got {kernel!r}") from None
    if grid.ndim in (0, 1, 2) and (grid.ndim != 2 or grid.size == 0):
        raise ArgumentError(f"kernel must be a non-empty 2-D array, got shape {grid.shape}")
    if grid.ndim not in (2, 4) or grid.size == 0:
        raise ArgumentError(
            "kernel must be a non-empty 2-D array, or 4-D (kh, kw, channels, filters) as Conv2D holds "
            f"its weights, got shape {grid.shape}"
        )
    if max(grid.shape[:2]) > MAX_KERNEL_SIZE:
        raise ArgumentError(
            f"kernel must be at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}, got {grid.shape[0]}x{grid.shape[1]}"
        )
    if grid.ndim == 4 and max(grid.shape[2:]) > MAX_CHANNELS:
        raise ArgumentError(
            f"kernel may have at most {MAX_CHANNELS} channels and {MAX_CHANNELS} filters, "
            f"got shape {grid.shape}"
        )
    if not np.isfinite(grid).all():
        raise ArgumentError("kernel values must be finite (no NaN or infinity)")
    with np.errstate(over="ignore"):
        too_large = not np.isfinite(grid.astype(np.float32)).all()
    if too_large:
        largest = float(np.abs(grid).max())
        raise ArgumentError(f"kernel values must fit the layer's float32 (|w| <= 3.4e38), got {largest:g}")
    return grid


def check_bias(bias: float) -> float:
    """Return ``bias`` as a finite float, or raise :class:`ArgumentError`."""
    try:
        value = float(bias)
    except (TypeError, ValueError):
        raise ArgumentError(f"bias must be a finite number, got {bias!r}") from None
    if not np.isfinite(value):
        raise ArgumentError(f"bias must be a finite number, got {value!r}")
    with np.errstate(over="ignore"):
        if not np.isfinite(np.float32(value)):
            raise ArgumentError(f"bias must fit the layer's float32 (|b| <= 3.4e38), got {value:g}")
    return value


def check_border_use(border: str, padding: str | tuple) -> str:
    """Return ``border`` checked; a non-zero border needs some padding to mean anything."""
    border = check_border(border)
    if border != "zero" and (padding == "valid" or padding == (0, 0, 0, 0)):
        raise ArgumentError(
            f"border {border!r} has no effect with padding 'valid' (nothing is padded); "
            "use padding 'same' or 'full'"
        )
    return border


def check_output_padding(
    output_padding: int | Sequence[int] | None, stride: tuple[int, int]
) -> tuple[int, int] | None:
    """``output_padding`` as a pair of integers ``0 <= p < stride`` (or ``None``), else ArgumentError."""
    if output_padding is None:
        return None
    error = (
        "The `output_padding` argument must be a tuple of 2 integers >= 0. "
        f"Received: output_padding={output_padding!r}"
    )
    pair = (output_padding, output_padding) if isinstance(output_padding, int) else output_padding
    try:
        pair = tuple(pair)
    except TypeError:
        raise ArgumentError(error, param="--output-padding") from None
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair):
        raise ArgumentError(error, param="--output-padding")
    pair = (int(pair[0]), int(pair[1]))
    if min(pair) < 0:
        raise ArgumentError(error, param="--output-padding")
    if pair[0] >= stride[0] or pair[1] >= stride[1]:
        raise ArgumentError(
            "The `output_padding` argument must be smaller than the stride on each axis (it picks one of "
            f"the stride's output sizes). Received: output_padding={pair}, strides={stride}",
            param="--output-padding",
        )
    return pair


def check_layer_options(transpose: bool, output_padding, border: str) -> None:
    """Refuse what only the other direction takes: output padding without ``transpose``, a border with it."""
    if not transpose and output_padding is not None:
        message = "--output-padding needs --transpose (a Conv2D has no output padding)"
        raise ArgumentError(message, param="--output-padding")
    if transpose and border != "zero":
        raise ArgumentError(
            f"border {border!r}: a transposed convolution pads nothing, so there is no border to choose; "
            "leave out --border",
            param="--border",
        )


def combine_outputs(responses: np.ndarray, combine: str) -> np.ndarray:
    """Merge ``... x N`` responses (last axis) as ``combine`` says; ``stack`` returns them as they are."""
    if combine == "stack":
        return responses
    planes = [responses[..., i] for i in range(responses.shape[-1])]  # filter by filter: small temporaries
    if combine == "magnitude":
        total = np.square(planes[0], dtype=np.float32)
        for plane in planes[1:]:
            total += np.square(plane, dtype=np.float32)
        return np.sqrt(total, out=total)
    total = np.array(planes[0], dtype=np.float32)
    for plane in planes[1:]:
        if combine == "max":
            np.maximum(total, plane, out=total)
        else:
            total += plane
    return total


def too_small(image_shape, window, dilation, what: str = "kernel", padding=None) -> ImageTooSmallError:
    """The error for an image smaller than the (dilated) window under ``padding``."""
    h, w = image_shape
    kh, kw = window
    needed = (dilated_extent(kh, dilation[0]), dilated_extent(kw, dilation[1]))
    spread = "" if tuple(dilation) == (1, 1) else f" with dilation {dilation[0]}x{dilation[1]}"
    under = "'valid' padding" if padding in (None, "valid") else f"padding {padding_text(padding)}"
    if padding not in (None, "valid"):
        top, bottom, left, right = padding
        needed = (needed[0] - top - bottom, needed[1] - left - right)
    return ImageTooSmallError(
        f"image is {h}x{w} but the {kh}x{kw} {what}{spread} needs at least "
        f"{needed[0]}x{needed[1]} pixels under {under}"
    )


@dataclass(frozen=True, eq=False)
class Conv2DSpec:
    """One convolution layer: ``Conv2D``, or with ``transpose`` ``Conv2DTranspose``.

    ``kernel`` is applied by cross-correlation; ``convolve`` flips it in both
    axes (true convolution), in one place, :attr:`weights`. ``border`` is
    what the padding holds (:mod:`convfilter.ops.borders`). ``name`` labels
    the operation (``'gaussian'``) in reports, figures and layer names;
    ``names`` labels each of the N filters. ``combine`` (N > 1 only) says how
    the N outputs become one image: ``stack`` keeps them.
    """

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str | tuple[int, int, int, int] = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    border: str = "zero"
    convolve: bool = False
    name: str = "conv"
    transpose: bool = False
    output_padding: tuple[int, int] | None = None
    combine: str = "magnitude"
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        transpose = bool(self.transpose)
        kernel = check_kernel(self.kernel)
        stride = standardize_pair(self.stride, "stride")
        if transpose:
            padding = self.padding
            if not isinstance(padding, str) or padding.lower() not in TRANSPOSE_PADDINGS:
                raise ArgumentError(
                    "The `padding` argument of a transposed convolution must be one of 'valid', 'same' "
                    f"(as Conv2DTranspose takes). Received: padding={padding!r}",
                    param="--padding",
                )
            padding = padding.lower()
        else:
            padding = check_padding(self.padding)
        check_layer_options(transpose, self.output_padding, check_border(self.border))
        if self.combine not in COMBINES:
            raise ArgumentError(
                f"The `combine` argument must be one of {', '.join(map(repr, COMBINES))}. "
                f"Received: combine={self.combine!r}",
                param="--combine",
            )
        filters = 1 if kernel.ndim == 2 else kernel.shape[3]
        names = self.names
        if names is None:
            names = (self.name,) if filters == 1 else tuple(f"{self.name}{i}" for i in range(1, filters + 1))
        names = tuple(str(n) for n in names)
        if len(names) != filters:
            raise ArgumentError(f"a filter bank needs one name per kernel, got {len(names)} for {filters}")
        checked = {
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": standardize_pair(self.dilation, "dilation"),
            "bias": check_bias(self.bias),
            "border": check_border_use(self.border, padding),
            "convolve": bool(self.convolve),
            "transpose": transpose,
            "output_padding": check_output_padding(self.output_padding, stride) if transpose else None,
            "names": names,
        }
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        if transpose:
            self._check_same_even()

    def _check_same_even(self) -> None:
        """Refuse the one case Keras's formula gets wrong: 'same', an even (dilated) kernel, output_padding 0.

        The formula then gives ``(n - 1)*s`` rows, which a 'same' convolution
        maps to ``n - 1``, not back to ``n``: TensorFlow fails on it.
        """
        if self.output_padding is None or self.padding != "same":
            return
        for axis, what in ((0, "rows"), (1, "columns")):
            extent = dilated_extent(self.window[axis], self.dilation[axis])
            if extent % 2 == 0 and self.output_padding[axis] == 0:
                raise ArgumentError(
                    f"output_padding 0 with 'same' padding and a kernel {extent} {what} wide (even) gives "
                    "(n - 1) * stride, which a 'same' convolution does not map back to n; "
                    "give output padding >= 1 there, or leave it out",
                    param="--output-padding",
                )

    # --- the weights -----------------------------------------------------------------------------

    @property
    def window(self) -> tuple[int, int]:
        """The kernel's ``(rows, columns)``."""
        return (int(self.kernel.shape[0]), int(self.kernel.shape[1]))

    @property
    def channels(self) -> int:
        """C, the input channels every filter reads (1 for a 2-D kernel)."""
        return 1 if self.kernel.ndim == 2 else int(self.kernel.shape[2])

    @property
    def filters(self) -> int:
        """N, the number of filters (output channels)."""
        return 1 if self.kernel.ndim == 2 else int(self.kernel.shape[3])

    @cached_property
    def weights(self) -> np.ndarray:
        """The kernel the layer applies, in the kernel's own shape: flipped in both axes for ``convolve``."""
        return np.ascontiguousarray(self.kernel[::-1, ::-1]) if self.convolve else self.kernel

    @cached_property
    def weights4(self) -> np.ndarray:
        """:attr:`weights` as Keras holds them: ``(kh, kw, C, N)``."""
        w = self.weights
        return w.reshape(w.shape + (1, 1)) if w.ndim == 2 else w

    @cached_property
    def kernels(self) -> tuple[np.ndarray, ...]:
        """Each filter's ``kh x kw`` kernel as given (one input channel only)."""
        if self.channels != 1:
            raise ArgumentError(f"the filters read {self.channels} channels: no single 2-D kernel each")
        return tuple(
            self.kernel.reshape(*self.window, 1, self.filters)[:, :, 0, i] for i in range(self.filters)
        )

    @cached_property
    def layer_weights(self) -> np.ndarray:
        """The ``(kh', kw', C, N)`` weights the Keras layer holds.

        A transposed convolution holds its dilation written in as ``dilation - 1``
        zeros between the taps: TensorFlow's CPU kernels have no dilated
        transposed convolution, and the sums are the same.
        """
        w = self.weights4
        if not self.transpose or self.dilation == (1, 1):
            return w
        (kh, kw), (dy, dx) = self.window, self.dilation
        grid = np.zeros((dilated_extent(kh, dy), dilated_extent(kw, dx), *w.shape[2:]))
        grid[::dy, ::dx] = w
        return grid

    @property
    def params(self) -> int:
        """Trainable weights: ``kh*kw*C*N``, plus N biases when there is a bias."""
        kh, kw = self.window
        return (kh * kw * self.channels + int(self.bias != 0.0)) * self.filters

    # --- what it is called -----------------------------------------------------------------------

    @property
    def label(self) -> str:
        """``name`` (``+``-joined filter names for a bank), with ``flipped`` and ``transposed`` added."""
        base = "+".join(self.names) if self.filters > 1 else self.name
        return base + (" flipped" if self.convolve else "") + (" transposed" if self.transpose else "")

    @property
    def layer_class(self) -> str:
        """``'Conv2D'`` or ``'Conv2DTranspose'``."""
        return "Conv2DTranspose" if self.transpose else "Conv2D"

    @property
    def layer_name(self) -> str:
        """The Keras layer name of a one-layer model: ``conv``, ``conv_transpose``, or ``bank``."""
        if self.transpose:
            return "conv_transpose"
        return "bank" if self.filters > 1 else "conv"

    def stage_name(self, number: int) -> str:
        """The layer name as stage ``number`` of a stack: ``stage2_sobel_x``."""
        return f"stage{number}_" + re.sub(r"[^0-9A-Za-z_]+", "_", self.label).strip("_")

    # --- geometry --------------------------------------------------------------------------------

    @property
    def explicit(self) -> bool:
        """True for numeric padding: given amounts, not a rule."""
        return isinstance(self.padding, tuple)

    @property
    def split(self) -> bool:
        """True when Keras refuses the configuration (stride > 1 with dilation > 1): conv, then subsample."""
        return not self.transpose and max(self.stride) > 1 and max(self.dilation) > 1

    @property
    def keras_native(self) -> bool:
        """True when one plain layer does it all (no explicit padding, no subsampling)."""
        if self.transpose:
            return True
        return self.padding in KERAS_PADDINGS and not self.split and self.border == "zero"

    @property
    def geometry(self) -> tuple[tuple[int, int], tuple[int, int], str | tuple, tuple[int, int]]:
        """``(window, stride, padding, dilation)``: where each output window lies."""
        return self.window, self.stride, self.padding, self.dilation

    def pads(self, shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))`` padded around an ``H x W`` input (none when transposed)."""
        if self.transpose:
            return (0, 0), (0, 0)
        return self._axis_pads(0, int(shape[0])), self._axis_pads(1, int(shape[1]))

    def _axis(self, axis: int) -> str | tuple[int, int]:
        return axis_padding(self.padding, axis)

    def _axis_pads(self, axis: int, n: int) -> tuple[int, int]:
        """The pixels padded before and after one axis of length ``n``."""
        return padding_amounts(n, self.window[axis], self.stride[axis], self.dilation[axis], self._axis(axis))

    def _transpose_length(self, axis: int, n: int) -> int:
        """A transposed convolution's output length along one axis (Keras's ``deconv_output_length``)."""
        return transpose_length(
            n,
            self.window[axis],
            self.stride[axis],
            self.dilation[axis],
            self.padding,
            None if self.output_padding is None else self.output_padding[axis],
        )

    def crops(self, shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """Transposed: ``((top, bottom), (left, right))`` cut off the full scatter-add (negative: added)."""
        out = self.output_shape(shape)
        return tuple(  # type: ignore[return-value]
            transpose_crop(
                int(shape[a]), self.window[a], self.stride[a], self.dilation[a], self.padding, out[a]
            )
            for a in (0, 1)
        )

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """The output ``(H', W')`` for an ``H x W`` input, or :class:`ImageTooSmallError`."""
        if self.transpose:
            return self._transpose_length(0, int(shape[0])), self._transpose_length(1, int(shape[1]))
        out = tuple(
            output_length(int(shape[a]), self.window[a], self.stride[a], self.dilation[a], self._axis(a))
            for a in (0, 1)
        )
        if min(out) < 1:
            raise too_small(tuple(shape), self.window, self.dilation, padding=self.padding)
        return out  # type: ignore[return-value]

    def input_window(self, axis: int, n: int, start: int, stop: int) -> tuple[int, int, int, int, int]:
        """What output positions ``start .. stop-1`` along ``axis`` read of an input ``n`` long.

        Returns ``(first, last, zeros_before, zeros_after, offset)``: input
        positions ``first .. last-1``, padded by that many pixels of the border,
        give (run 'valid', not transposed; or transposed, 'valid' and without output
        padding) a result whose positions ``offset ..`` are the wanted ones. Past
        the end of that result a transposed output holds no sums: it is the bias alone;
        so does the start of a transposed tile that begins in a gap of a stride wider
        than the kernel, where ``offset`` is negative (the result begins ``-offset`` in).
        """
        k, s, d = self.window[axis], self.stride[axis], self.dilation[axis]
        span = dilated_extent(k, d)
        if not self.transpose:
            before = self._axis_pads(axis, n)[0]
            first = start * s - before
            last = (stop - 1) * s + span - before
            return max(first, 0), min(last, n), max(-first, 0), max(last - n, 0), 0
        crop = transpose_crop(n, k, s, d, self.padding, self._transpose_length(axis, n))[0]
        f0, f1 = start + crop, stop + crop  # positions in the full scatter-add
        first = max(0, -(-(f0 - span + 1) // s))
        last = min(n, (f1 - 1) // s + 1)
        if last <= first:
            return 0, 0, 0, 0, 0
        return first, last, 0, 0, f0 - first * s

    # --- what the runner and the engine ask ------------------------------------------------------

    @property
    def stages(self) -> tuple[Conv2DSpec]:
        return (self,)

    @property
    def layout(self) -> str:
        """The engine layout that runs it (:mod:`convfilter.engine.apply`).

        ``'blocked'``: one filter over one channel, the fast blocked layouts
        (every filter of a bank in turn, each reading the same window);
        ``'keras'``: several input channels, one plain ``Conv2D(N, ...)``;
        ``'transpose'``: ``Conv2DTranspose(N, ...)``.
        """
        if self.transpose:
            return "transpose"
        return "blocked" if self.channels == 1 else "keras"

    @property
    def tiles(self) -> bool:
        """True: a convolution can be computed tile by tile (:meth:`input_window`)."""
        return True

    @property
    def averaging(self) -> bool:
        """True when results stay in the input's range (``--range auto`` then means ``clip``)."""
        if self.filters == 1:
            # A transposed output is a sum of some of the non-negative weights (at most all) times
            # inputs, so it stays in range as a convolution with an averaging kernel does.
            return is_averaging(self.weights4[..., 0])
        if self.bias != 0.0:
            return False
        grids = [self.weights4[..., i] for i in range(self.filters)]
        if self.combine == "sum":
            return is_averaging(np.sum(grids, axis=0))
        return self.combine != "magnitude" and all(is_averaging(w) for w in grids)

    @property
    def out_channels(self) -> int:
        """Channels of one output: N for ``stack``, else 1."""
        return self.filters if self.filters > 1 and self.combine == "stack" else 1

    def finish(self, responses: np.ndarray) -> np.ndarray:
        """``B x H' x W' x N`` responses as the output: combined for N > 1, else ``B x H' x W'``."""
        if self.filters == 1:
            return responses[..., 0]
        return combine_outputs(responses, self.combine)

    def carry_alpha(self, alpha: np.ndarray) -> np.ndarray:
        """Alpha (``H x W``) on the output grid: the window's middle tap, or for a transposed
        convolution the input pixel whose middle tap lands nearest."""
        if self.transpose:
            return nearest_source(alpha, self.output_shape(alpha.shape), self.crops(alpha.shape), self)
        out, pads = self.output_shape(alpha.shape), self.pads(alpha.shape)
        return window_anchor(alpha, out, pads, self.window, self.stride, self.dilation)

    def transpose_call(self, filters: int) -> str:
        """The ``Conv2DTranspose(...)`` call of this layer with ``filters`` filters, as Python source."""
        kh, kw = self.layer_weights.shape[:2]
        return (
            f"Conv2DTranspose({filters}, ({kh}, {kw}), strides={self.stride}, padding={self.padding!r}, "
            f"output_padding={self.output_padding}, use_bias={self.bias != 0.0})"
        )

    def describe(self) -> str:
        """One line: the Keras layer(s) that compute it."""
        n = self.filters
        use_bias = self.bias != 0.0
        if self.transpose:
            text = self.transpose_call(n)
            if self.dilation != (1, 1):
                text += (
                    f" holding the {self.window[0]}x{self.window[1]} kernel with dilation "
                    f"{self.dilation[0]}x{self.dilation[1]} written in as zeros"
                )
            return self._with_combine(text)
        kh, kw = self.window
        if self.keras_native:
            return self._with_combine(
                f"Conv2D({n}, ({kh}, {kw}), strides={self.stride}, padding='{self.padding}', "
                f"dilation_rate={self.dilation}, use_bias={use_bias})"
            )
        pad = "ZeroPadding2D" if self.border == "zero" else f"{self.border} padding (outside Keras)"
        layers = []
        if self.explicit:
            top, bottom, left, right = self.padding
            if any(self.padding):
                amounts = f"(({top}, {bottom}), ({left}, {right}))"
                layers.append(f"ZeroPadding2D({amounts})" if self.border == "zero" else f"{pad} {amounts}")
        elif self.padding != "valid":
            layers.append(f"{pad} ('{self.padding}' amounts)")
        strides = (1, 1) if self.split else self.stride
        layers.append(
            f"Conv2D({n}, ({kh}, {kw}), strides={strides}, padding='valid', "
            f"dilation_rate={self.dilation}, use_bias={use_bias})"
        )
        if self.split:
            layers.append(f"MaxPooling2D(pool_size=1, strides={self.stride}) keeping every stride-th pixel")
        return self._with_combine(" -> ".join(layers))

    def _with_combine(self, text: str) -> str:
        if self.filters == 1:
            return text
        return f"{text} -> {COMBINE_TEXT[self.combine].format(n=self.filters)}"

    # --- Keras -----------------------------------------------------------------------------------

    def needs_fixed_shape(self) -> bool:
        """True when the model pads by amounts that depend on the input size ('same' with a split)."""
        return self.split and self.padding == "same"

    def add_layers(self, keras: Any, tensor: Any, in_shape: tuple[int, int] | None, name: str) -> Any:
        """Append this layer (and the padding or subsampling it needs) to ``tensor``; weights not yet set.

        ``keras`` is the Keras module (this module imports none).
        """
        if self.border != "zero":
            raise ArgumentError(
                f"border {self.border!r} is padded outside Keras (no standard layer does it), so a model "
                "would not compute this output; use --border zero"
            )
        use_bias = self.bias != 0.0
        if self.transpose:
            return keras.layers.Conv2DTranspose(
                self.filters,
                self.layer_weights.shape[:2],
                strides=self.stride,
                padding=self.padding,
                output_padding=self.output_padding,
                use_bias=use_bias,
                name=name,
            )(tensor)
        if self.keras_native:
            conv = keras.layers.Conv2D(
                self.filters,
                self.window,
                strides=self.stride,
                padding=self.padding,
                dilation_rate=self.dilation,
                use_bias=use_bias,
                name=name,
            )
            return conv(tensor)
        if self.padding != "valid":  # 'full', numbers, or 'same' that Keras cannot do here: explicit zeros
            if in_shape is None and self.padding == "same":
                raise ArgumentError("a 'same' stage with stride > 1 and dilation > 1 needs the input shape")
            pads = self.pads(in_shape if in_shape else (0, 0))
            if any(any(p) for p in pads):
                tensor = keras.layers.ZeroPadding2D(tuple(pads), name=f"{name}_pad")(tensor)
        conv = keras.layers.Conv2D(
            self.filters,
            self.window,
            strides=(1, 1) if self.split else self.stride,
            padding="valid",
            dilation_rate=self.dilation,
            use_bias=use_bias,
            name=name,
        )
        tensor = conv(tensor)
        if not self.split:
            return tensor
        return keras.layers.MaxPooling2D(pool_size=1, strides=self.stride, name=f"{name}_subsample")(tensor)

    def keras_weights(self) -> list[np.ndarray]:
        """What ``layer.set_weights`` takes: the ``(kh, kw, C, N)`` kernel, and N biases if any."""
        values = [np.asarray(self.layer_weights, dtype=np.float32)]
        if self.bias != 0.0:
            values.append(np.full(self.filters, self.bias, dtype=np.float32))
        return values
