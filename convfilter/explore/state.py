"""What the explorer page shows, as one value read from (and written back to) the URL query.

``kernel=blur&size=5&stride=2,1&padding=same&border=reflect`` is an
:class:`ExploreState`; it builds the same operation value the command line
builds (:class:`~convfilter.ops.conv.Conv2DSpec` or
:class:`~convfilter.ops.spec.PoolSpec`), so it is validated once, by the same
code, with the same messages. It also writes the equivalent ``convfilter``
command line. No web server, no TensorFlow, no files here.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.io.kernelspec import normalize, parse_kernel
from convfilter.io.pixels import RANGE_MODES, resolve_range
from convfilter.ops.borders import check_border
from convfilter.ops.conv import Conv2DSpec
from convfilter.ops.geometry import check_padding, standardize_pair
from convfilter.ops.kernels import KERNELS
from convfilter.ops.spec import POOLS, PoolSpec

FIELDS = (
    "image",
    "kernel",
    "size",
    "sigma",
    "seed",
    "normalize",
    "stride",
    "padding",
    "dilation",
    "border",
    "convolve",
    "bias",
    "range",
    "transpose",
    "output_padding",
    "pool",
)
"""The query keys the page understands, in the order a link writes them."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class QueryError(ArgumentError):
    """A query value the explorer cannot use; ``param`` names the query key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message, key)
        self.key = key


@dataclass(frozen=True)
class ExploreState:
    """One view of the explorer: the image, the kernel and the layer's settings.

    ``kernel`` is a named kernel (``blur``, ``sobel-x`` ...) or a SPEC as
    ``convfilter custom --kernel`` takes it inline (``"1,0,-1;2,0,-2;1,0,-1"``;
    no ``@file``: the page reaches no file). ``pool`` (``max``/``avg``) shows
    a pooling layer instead, with ``size`` as its window. ``None`` stands for
    "the default" wherever the command line has one.
    """

    image: str = "given"
    kernel: str = "blur"
    size: int | None = None
    sigma: float | None = None
    seed: int | None = None
    normalize: bool = False
    stride: tuple[int, int] | None = None
    padding: str | tuple[int, int, int, int] = "valid"
    dilation: tuple[int, int] = (1, 1)
    border: str = "zero"
    convolve: bool = False
    bias: float = 0.0
    range: str = "auto"
    transpose: bool = False
    output_padding: tuple[int, int] | None = None
    pool: str | None = None
    _op: object = field(default=None, repr=False, compare=False)

    # --- reading and writing the URL ------------------------------------------------------------

    @classmethod
    def from_query(cls, query: Mapping[str, str], default_image: str = "given") -> ExploreState:
        """Read a query (``{"kernel": "blur", "stride": "2,1"}``); unknown keys are ignored.

        Raises :class:`QueryError` naming the key and echoing its value.
        """
        get = {key: str(value).strip() for key, value in query.items() if key in FIELDS}
        values: dict = {"image": get.get("image") or default_image}
        if get.get("kernel"):
            values["kernel"] = get["kernel"]
        for key, read in (("size", _int), ("seed", _int), ("sigma", _float), ("bias", _float)):
            if get.get(key):
                values[key] = read(key, get[key])
        for key in ("normalize", "convolve", "transpose"):
            if key in get:
                values[key] = _flag(key, get[key])
        for key in ("stride", "dilation", "output_padding"):
            if get.get(key):
                values[key] = _pair(key, get[key])
        if get.get("padding"):
            values["padding"] = _checked("padding", lambda: check_padding(get["padding"]))
        if get.get("border"):
            values["border"] = _checked("border", lambda: check_border(get["border"]))
        if get.get("range"):
            if get["range"] not in RANGE_MODES:
                raise QueryError(
                    "range",
                    f"range must be one of {', '.join(RANGE_MODES)}. Received: range={get['range']!r}",
                )
            values["range"] = get["range"]
        if get.get("pool"):
            if get["pool"] not in POOLS:
                raise QueryError(
                    "pool", f"pool must be one of {', '.join(POOLS)}. Received: pool={get['pool']!r}"
                )
            values["pool"] = get["pool"]
        state = cls(**values)
        state.op  # noqa: B018 - validate now, with the operation's own messages
        return state

    def to_query(self) -> dict[str, str]:
        """The query that reproduces this view (defaults left out, except the kernel)."""
        query: dict[str, str] = {}
        if self.image != "given":
            query["image"] = self.image
        if self.pool:
            query["pool"] = self.pool
        else:
            query["kernel"] = self.kernel
        for key in ("size", "sigma", "seed"):
            value = getattr(self, key)
            if value is not None:
                query[key] = _number(value)
        for key in ("normalize", "convolve", "transpose"):
            if getattr(self, key):
                query[key] = "1"
        for key in ("stride", "output_padding"):
            value = getattr(self, key)
            if value is not None:
                query[key] = f"{value[0]},{value[1]}"
        if self.dilation != (1, 1):
            query["dilation"] = f"{self.dilation[0]},{self.dilation[1]}"
        if self.padding != "valid":
            query["padding"] = _padding_query(self.padding)
        if self.border != "zero":
            query["border"] = self.border
        if self.bias != 0.0:
            query["bias"] = _number(self.bias)
        if self.range != "auto":
            query["range"] = self.range
        return query

    def with_image(self, image: str) -> ExploreState:
        """The same view of another image."""
        return replace(self, image=image)

    # --- the operation ---------------------------------------------------------------------------

    @property
    def named(self) -> bool:
        """True when ``kernel`` names one of the command line's kernels."""
        return self.kernel in KERNELS

    @cached_property
    def grid(self) -> np.ndarray:
        """The kernel's weights as given (before any ``convolve`` flip)."""
        if self.named:
            if self.normalize:
                raise QueryError(
                    "normalize", f"normalize applies to kernels given as weights, not to {self.kernel}"
                )
            params = {"size": self.size, "sigma": self.sigma, "seed": self.effective_seed}
            kernel = KERNELS[self.kernel]
            params = {k: v for k, v in params.items() if k in kernel.options or v is not None}
            return _checked("kernel", lambda: kernel.grid(**params))
        if self.kernel.startswith("@"):
            raise QueryError(
                "kernel",
                f"the page reads no files: give the weights inline. Received: kernel={self.kernel!r}",
            )
        for key in ("size", "sigma", "seed"):
            if getattr(self, key) is not None:
                raise QueryError(
                    key, f"{key} applies to named kernels; kernel={self.kernel!r} gives its weights"
                )
        grid = _checked("kernel", lambda: parse_kernel(self.kernel))
        return _checked("kernel", lambda: normalize(grid, self.kernel)) if self.normalize else grid

    @property
    def effective_seed(self) -> int | None:
        """``random``'s seed: 0 unless given, so that a link always shows the same weights."""
        if self.kernel == "random" and self.seed is None:
            return 0
        return self.seed

    @property
    def op(self) -> Conv2DSpec | PoolSpec:
        """The operation the command line builds for the same options (validated on first use)."""
        if self._op is None:
            object.__setattr__(self, "_op", self._build())
        return self._op  # type: ignore[return-value]

    def _build(self) -> Conv2DSpec | PoolSpec:
        if self.pool:
            for key, default in (
                ("transpose", False),
                ("convolve", False),
                ("bias", 0.0),
                ("border", "zero"),
            ):
                if getattr(self, key) != default:
                    raise QueryError(key, f"{key} applies to convolutions, not to {self.pool} pooling")
            if self.dilation != (1, 1):
                raise QueryError("dilation", f"dilation applies to convolutions, not to {self.pool} pooling")
            size = 2 if self.size is None else self.size
            return _checked(
                "padding",
                lambda: PoolSpec(self.pool, size, self.stride, self.padding),  # type: ignore[arg-type]
            )
        if self.output_padding is not None and not self.transpose:
            raise QueryError(
                "output_padding", "output_padding applies to a transposed convolution (transpose=1)"
            )
        grid = self.grid
        return _checked(
            "kernel",
            lambda: Conv2DSpec(
                grid,
                stride=self.stride or (1, 1),
                padding=self.padding,
                dilation=self.dilation,
                bias=self.bias,
                border=self.border,
                convolve=self.convolve,
                name=self.kernel if self.named else "custom",
                transpose=self.transpose,
                output_padding=self.output_padding,
            ),
        )

    @property
    def range_mode(self) -> str:
        """``range`` resolved for the operation, as the command line resolves ``--range auto``."""
        return resolve_range(self.range, self.op)

    # --- the equivalent command line -------------------------------------------------------------

    def command_line(self, input_name: str, output_name: str = "out.png") -> str:
        """The ``convfilter`` command that writes the same output pixels."""
        words = ["convfilter"]
        if self.pool:
            words += ["pool", self.pool, input_name, output_name]
            if self.size is not None:
                words += ["--size", str(self.size)]
        else:
            if self.named:
                words += [self.kernel, input_name, output_name]
            else:
                words += ["custom", "--kernel", self.kernel, input_name, output_name]
                if self.normalize:
                    words.append("--normalize")
            for key in ("size", "sigma"):
                if getattr(self, key) is not None:
                    words += [f"--{key}", _number(getattr(self, key))]
            if self.effective_seed is not None:
                words += ["--seed", str(self.effective_seed)]
        if self.stride is not None:
            words += ["--stride", str(self.stride[0]), str(self.stride[1])]
        if self.padding != "valid":
            words += ["--padding", _padding_query(self.padding)]
        if self.pool:
            return shlex.join(words)
        if self.dilation != (1, 1):
            words += ["--dilation", str(self.dilation[0]), str(self.dilation[1])]
        if self.border != "zero":
            words += ["--border", self.border]
        if self.convolve:
            words.append("--convolve")
        if self.bias != 0.0:
            words += ["--bias", _number(self.bias)]
        if self.range != "auto":
            words += ["--range", self.range]
        if self.transpose:
            words.append("--transpose")
            if self.output_padding is not None:
                words += ["--output-padding", str(self.output_padding[0]), str(self.output_padding[1])]
        return shlex.join(words)


def _checked(key: str, build):
    """``build()``, with an :class:`ArgumentError` re-raised as a :class:`QueryError` for ``key``."""
    try:
        return build()
    except QueryError:
        raise
    except ArgumentError as exc:  # the option it names (``--size``) is the query key (``size``)
        named = (exc.param or "").strip("'\"").removeprefix("--").replace("-", "_")
        raise QueryError(named if named in FIELDS else key, str(exc)) from None


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QueryError(key, f"{key} must be an integer. Received: {key}={text!r}") from None


def _float(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise QueryError(key, f"{key} must be a finite number. Received: {key}={text!r}")
    return value


def _flag(key: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise QueryError(key, f"{key} must be 1 or 0. Received: {key}={text!r}")


def _pair(key: str, text: str) -> tuple[int, int]:
    """``"2,1"`` or ``"2"`` as a pair; ``output_padding`` may hold zeros."""
    parts = [part for part in text.replace(" ", ",").split(",") if part]
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if key == "output_padding":
        if len(values) != 2 or min(values) < 0:
            raise QueryError(key, f"{key} must be PY,PX with integers >= 0. Received: {key}={text!r}")
        return values[0], values[1]
    return _checked(key, lambda: standardize_pair(tuple(values) if len(values) == 2 else text, key))


def _number(value: float | int) -> str:
    """A number as short as it reads back exactly: ``2``, ``0.5``, ``-1.25``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _padding_query(padding: str | tuple[int, int, int, int]) -> str:
    """Padding as the query and ``--padding`` write it: ``same``, ``1``, ``1,2`` or ``1,2,3,4``."""
    if isinstance(padding, str):
        return padding
    top, bottom, left, right = padding
    if top == bottom == left == right:
        return str(top)
    if top == bottom and left == right:
        return f"{top},{left}"
    return f"{top},{bottom},{left},{right}"
