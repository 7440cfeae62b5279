"""Named kernels, declared as data next to their grids.

Every kernel is a 2-D float array applied by cross-correlation, as Keras's
``Conv2D`` does: ``out[i, j] = sum(x[i + a, j + b] * k[a, b])``. Row 0 of a
grid is the top row of the window, column 0 its left column; nothing is
flipped. Fixed kernels are built from small parts, the way scikit-image
composes its Sobel weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convfilter.errors import ArgumentError

MAX_KERNEL_SIZE = 101
"""Largest kernel side accepted (a 101x101 kernel already has 10,201 weights)."""

# Parts the 3x3 kernels are composed of.
SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0])
"""Triangle smoothing across the derivative direction."""
SOBEL_EDGE = np.array([-1.0, 0.0, 1.0])
"""Central difference: positive where intensity grows to the right / downwards."""
IDENTITY_3 = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
LAPLACE_4 = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
"""4-neighbour discrete Laplacian."""

SOBEL_X = np.outer(SOBEL_SMOOTH, SOBEL_EDGE)
"""Horizontal gradient (bright where the image gets brighter to the right)::

    -1  0  1
    -2  0  2
    -1  0  1
"""
SOBEL_Y = np.outer(SOBEL_EDGE, SOBEL_SMOOTH)
"""Vertical gradient (bright where the image gets brighter downwards)::

    -1 -2 -1
     0  0  0
     1  2  1
"""
EDGE = 9.0 * IDENTITY_3 - np.ones((3, 3))
"""8-neighbour Laplacian edge detector (sums to 0; flat regions give 0)::

    -1 -1 -1
    -1  8 -1
    -1 -1 -1
"""
SHARPEN = IDENTITY_3 - LAPLACE_4
"""Identity minus the 4-neighbour Laplacian (sums to 1)::

     0 -1  0
    -1  5 -1
     0 -1  0
"""
EMBOSS = np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
"""Directional relief, light from the top left (sums to 1)::

    -2 -1  0
    -1  1  1
     0  1  2
"""


class KernelParameterError(ArgumentError):
    """A kernel parameter has a bad value; ``param`` names its option (``'--size'``, ``'--sigma'``...)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message, f"--{param}")


def _check_size(name: str, size: int, *, odd: bool = False) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise KernelParameterError("size", f"{name}: size must be an integer, got {size!r}")
    if not 1 <= size <= MAX_KERNEL_SIZE:
        raise KernelParameterError(
            "size", f"{name}: size must be between 1 and {MAX_KERNEL_SIZE}, got {size}"
        )
    if odd and size % 2 == 0:
        raise KernelParameterError("size", f"{name}: size must be odd so the kernel has a centre, got {size}")
    return int(size)


def box(size: int = 3, normalize: bool = True) -> np.ndarray:
    """``size x size`` box: every weight ``1/size**2`` (or 1 with ``normalize=False``)."""
    size = _check_size("blur", size)
    weight = 1.0 / size**2 if normalize else 1.0
    return np.full((size, size), weight)


def gaussian(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """Sampled 2-D Gaussian ``exp(-(y**2 + x**2) / (2 sigma**2))`` centred on the grid, sum 1."""
    size = _check_size("gaussian", size)
    if not np.isfinite(sigma) or sigma <= 0:
        raise KernelParameterError("sigma", f"gaussian: sigma must be > 0, got {sigma!r}")
    x = np.arange(size) - (size - 1) / 2.0
    with np.errstate(all="ignore"):
        g = np.exp(-(x**2) / (2.0 * sigma**2))
        if (
            not np.isfinite(g).all() or g.sum() == 0
        ):  # sigma so small that every tap but the nearest underflows
            d = x**2 - (x**2).min()
            g = np.where(d == 0, 1.0, np.exp(-d / (2.0 * sigma**2)))
    grid = np.outer(g, g)
    return grid / grid.sum()


def identity(size: int = 3) -> np.ndarray:
    """``size x size`` zeros with a single 1 at the centre (``size`` odd): output = input."""
    size = _check_size("identity", size, odd=True)
    grid = np.zeros((size, size))
    grid[size // 2, size // 2] = 1.0
    return grid


def glorot_uniform(size: int = 3, seed: int = 0) -> np.ndarray:
    """Random weights drawn like Keras's default ``Conv2D`` initializer, Glorot uniform.

    For one input and one output channel ``fan_in = fan_out = size**2``, so the
    weights are uniform in ``[-limit, limit]`` with
    ``limit = sqrt(6 / (fan_in + fan_out)) = sqrt(3) / size``. The draw uses
    NumPy's PCG64 generator seeded with ``seed``: the same seed gives the same
    kernel on every run and every machine.
    """
    size = _check_size("random", size)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise KernelParameterError("seed", f"random: seed must be an integer >= 0, got {seed!r}")
    limit = np.sqrt(6.0 / (2 * size * size))
    return np.random.default_rng(int(seed)).uniform(-limit, limit, size=(size, size))


@dataclass(frozen=True)
class NamedKernel:
    """A kernel the CLI offers as a subcommand.

    ``options`` lists the builder's keyword parameters the user may set
    (``size``, ``sigma``, ``seed``, ``normalize``); ``build`` takes them as
    keywords and returns the grid.
    """

    name: str
    summary: str
    build: Callable[..., np.ndarray]
    options: tuple[str, ...] = ()
    defaults: dict | None = None

    def grid(self, **params) -> np.ndarray:
        """Build the grid, refusing parameters this kernel does not take."""
        for param, value in params.items():
            if value is not None and param not in self.options:
                raise KernelParameterError(param, _not_supported(self, param))
        given = {k: v for k, v in params.items() if v is not None}
        return np.asarray(self.build(**given), dtype=np.float64)


def _fixed(grid: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: grid.copy()


def _not_supported(kernel: NamedKernel, param: str) -> str:
    if param == "size" and not kernel.options:
        h, w = kernel.build().shape
        return (
            f"{kernel.name} is a fixed {h}x{w} kernel and takes no size "
            "(blur, gaussian, identity and random take --size)"
        )
    return f"{kernel.name} does not take {param}"


KERNELS: dict[str, NamedKernel] = {
    k.name: k
    for k in [
        NamedKernel(
            "blur",
            "box blur: N x N weights of 1/N^2 (--no-normalize: all ones, a sum filter)",
            box,
            ("size", "normalize"),
            {"size": 3},
        ),
        NamedKernel(
            "gaussian",
            "Gaussian blur of --size N and --sigma S, normalized to sum 1",
            gaussian,
            ("size", "sigma"),
            {"size": 5, "sigma": 1.0},
        ),
        NamedKernel("edge", "8-neighbour Laplacian edge detector (3x3, sums to 0)", _fixed(EDGE)),
        NamedKernel("sobel-x", "Sobel horizontal gradient: finds vertical edges (3x3)", _fixed(SOBEL_X)),
        NamedKernel("sobel-y", "Sobel vertical gradient: finds horizontal edges (3x3)", _fixed(SOBEL_Y)),
        NamedKernel("sharpen", "identity minus the 4-neighbour Laplacian (3x3)", _fixed(SHARPEN)),
        NamedKernel("emboss", "relief lit from the top left (3x3)", _fixed(EMBOSS)),
        NamedKernel(
            "identity",
            "a single 1 at the centre of an odd N x N grid: shows stride/padding alone",
            identity,
            ("size",),
            {"size": 3},
        ),
        NamedKernel(
            "random",
            "Glorot-uniform weights, as a fresh Keras Conv2D starts (--seed, --size)",
            glorot_uniform,
            ("size", "seed"),
            {"size": 3},
        ),
    ]
}


def get_kernel(name: str) -> NamedKernel:
    """Return the named kernel or raise :class:`ArgumentError` listing the known names."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ArgumentError(f"unknown kernel {name!r}; known kernels: {', '.join(KERNELS)}") from None


def is_averaging(kernel: np.ndarray) -> bool:
    """True when every weight is >= 0 and they sum to 1, so outputs stay within the input range."""
    kernel = np.asarray(kernel, dtype=np.float64)
    return bool((kernel >= 0).all() and abs(kernel.sum() - 1.0) <= 1e-6)


def format_grid(kernel: np.ndarray) -> str:
    """The grid as aligned rows of numbers, at most 6 significant digits each."""
    kernel = np.asarray(kernel, dtype=np.float64)
    cells = [[f"{v:.6g}" for v in row] for row in kernel]
    width = max(len(c) for row in cells for c in row)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)
