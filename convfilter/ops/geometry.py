"""Output sizes and padding amounts of a 2-D convolution, exactly as Keras computes them.

For one axis with input length ``n``, kernel length ``k``, stride ``s`` and
dilation ``d`` the dilated kernel covers ``d*(k-1) + 1`` pixels and:

* ``'valid'``: no padding, output ``floor((n - d*(k-1) - 1) / s) + 1``;
* ``'same'``: output ``ceil(n / s)``; TensorFlow pads
  ``max((out - 1)*s + d*(k-1) + 1 - n, 0)`` zeros in total, ``total // 2``
  before and the rest (the odd pixel) after, i.e. at the bottom / right;
* ``'full'`` (beyond Keras): ``d*(k-1)`` zeros on both sides, then 'valid':
  output ``floor((n + d*(k-1) - 1) / s) + 1``, the full discrete convolution
  length ``n + k - 1`` at stride 1.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

from convfilter.errors import ArgumentError

PADDINGS = ("valid", "same", "full")
KERAS_PADDINGS = ("valid", "same")
"""The paddings Keras's ``Conv2D`` implements itself; ``'full'`` is padded explicitly."""


def standardize_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Return ``value`` as a pair of integers >= 1, or raise ``ValueError`` naming ``name``.

    A single integer is used for both axes, as Keras does for ``strides``.
    """
    error = f"The `{name}` argument must be a tuple of 2 integers >= 1. Received: {name}={value!r}"
    if isinstance(value, bool):
        raise ArgumentError(error)
    if isinstance(value, int):
        pair: tuple = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            raise ArgumentError(error) from None
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ArgumentError(error)
    return int(pair[0]), int(pair[1])


MAX_PADDING = 1 << 16
"""The most pixels numeric padding may add on one side."""


def check_padding(padding: str | int | Sequence[int]) -> str | tuple[int, int, int, int]:
    """``padding`` as one of :data:`PADDINGS` (lower-cased) or numbers ``(top, bottom, left, right)``.

    Numbers are written as a course writes them: ``N`` (every side), ``(PY, PX)``
    (rows, columns: both sides each) or ``(TOP, BOTTOM, LEFT, RIGHT)``; as a
    string too (``"1"``, ``"0,1"``, ``"1,1,2,2"``). They mean a Keras
    ``ZeroPadding2D`` before a 'valid' layer. Anything else raises :class:`ArgumentError`.
    """
    error = (
        f"The `padding` argument must be one of {', '.join(map(repr, PADDINGS))} or numbers "
        f"(N, PY,PX or TOP,BOTTOM,LEFT,RIGHT, each 0..{MAX_PADDING}). Received: padding={padding!r}"
    )
    if isinstance(padding, str):
        if padding.lower() in PADDINGS:
            return padding.lower()
        parts = [part.strip() for part in padding.replace(" ", ",").split(",") if part.strip()]
        try:
            values: tuple = tuple(int(part) for part in parts)
        except ValueError:
            raise ArgumentError(error, param="--padding") from None
    elif isinstance(padding, bool):
        raise ArgumentError(error, param="--padding")
    elif isinstance(padding, int):
        values = (padding,)
    else:
        try:
            values = tuple(padding)
        except TypeError:
            raise ArgumentError(error, param="--padding") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ArgumentError(error, param="--padding")
    if len(values) not in (1, 2, 4) or not all(0 <= v <= MAX_PADDING for v in values):
        raise ArgumentError(error, param="--padding")
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = (values[0], values[0], values[1], values[1])
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def padding_text(padding: str | Sequence[int]) -> str:
    """``'same'`` for a rule, ``(1, 1, 2, 2)`` for numbers: how messages and reports show the padding."""
    if isinstance(padding, str):
        return f"'{padding}'"
    return "(" + ", ".join(str(v) for v in padding) + ")"


def dilated_extent(k: int, d: int) -> int:
    """Number of input pixels a kernel of length ``k`` with dilation ``d`` spans."""
    return d * (k - 1) + 1


def output_length(n: int, k: int, s: int, d: int, padding: str | Sequence[int]) -> int:
    """Output length along one axis (may be <= 0 when the image is too small).

    ``padding`` is a rule's name or, for numbers, the ``(before, after)`` amounts of this axis.
    """
    if not isinstance(padding, str):
        return (n + padding[0] + padding[1] - dilated_extent(k, d)) // s + 1
    if padding == "same":
        return -(-n // s)
    if padding == "full":
        return (n + d * (k - 1) - 1) // s + 1
    if padding == "valid":
        return (n - dilated_extent(k, d)) // s + 1
    raise ValueError(f"padding must be 'valid', 'same', 'full' or numbers, got {padding!r}")


def padding_amounts(n: int, k: int, s: int, d: int, padding: str | Sequence[int]) -> tuple[int, int]:
    """Pixels added before and after one axis.

    ``(0, 0)`` for 'valid', TensorFlow's split for 'same' (odd pixel after),
    ``(d*(k-1), d*(k-1))`` for 'full'; numbers (this axis's ``(before, after)``) as they are.
    """
    if not isinstance(padding, str):
        return int(padding[0]), int(padding[1])
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return d * (k - 1), d * (k - 1)
    total = max((output_length(n, k, s, d, "same") - 1) * s + dilated_extent(k, d) - n, 0)
    return total // 2, total - total // 2


def output_shape(
    shape: Sequence[int],
    kernel_shape: Sequence[int],
    stride: Sequence[int] = (1, 1),
    padding: str | Sequence[int] = "valid",
    dilation: Sequence[int] = (1, 1),
) -> tuple[int, int]:
    """Output ``(H, W)`` of a convolution of an ``H x W`` input (values <= 0 mean 'too small')."""
    return (
        output_length(shape[0], kernel_shape[0], stride[0], dilation[0], axis_padding(padding, 0)),
        output_length(shape[1], kernel_shape[1], stride[1], dilation[1], axis_padding(padding, 1)),
    )


def axis_padding(padding: str | Sequence[int], axis: int) -> str | tuple[int, int]:
    """The padding along one axis: the rule's name, or numbers' ``(before, after)`` for that axis."""
    if isinstance(padding, str):
        return padding
    return int(padding[2 * axis]), int(padding[2 * axis + 1])


def transpose_length(n: int, k: int, s: int, d: int, padding: str, output_padding: int | None = None) -> int:
    """Output length of a transposed convolution along one axis: Keras's ``deconv_output_length``.

    With ``kd = d*(k-1) + 1`` and no ``output_padding``: 'valid' gives
    ``n*s + max(kd - s, 0)``, 'same' gives ``n*s``. With ``output_padding p``:
    ``(n - 1)*s + kd - 2*pad + p``, ``pad`` being ``kd // 2`` for 'same' and 0 for 'valid'.
    """
    kd = dilated_extent(k, d)
    if output_padding is None:
        return n * s + max(kd - s, 0) if padding == "valid" else n * s
    pad = kd // 2 if padding == "same" else 0
    return (n - 1) * s + kd - 2 * pad + output_padding


def transpose_crop(n: int, k: int, s: int, d: int, padding: str, out: int) -> tuple[int, int]:
    """What a transposed convolution cuts off its full scatter-add result, before and after one axis.

    Every input pixel ``i`` adds the kernel times its value at ``i*s`` of a
    line of ``(n - 1)*s + kd`` values; the output is ``out`` of them, starting
    at TensorFlow's 'same' split of the excess (the odd one after), or at 0
    for 'valid'. A negative amount after means zeros appended (``output_padding``).
    """
    full = (n - 1) * s + dilated_extent(k, d)
    before = max(full - out, 0) // 2 if padding == "same" else 0
    return before, full - out - before
