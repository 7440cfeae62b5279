"""Turning the Conv2D's float results into pixel values (the ``--range`` option).

The float result is in the input's pixel scale (0..255 for an 8-bit input,
0..65535 for a 16-bit one). Modes:

* ``clip``: scale to the output depth, round to the nearest integer, clip to
  ``0..max``;
* ``rescale``: map the result's min..max linearly onto ``0..max`` (what a
  plotting tool such as matplotlib's ``imshow`` shows); a constant result
  becomes 0;
* ``abs``: take the magnitude, then as ``clip``;
* ``auto``: ``clip`` for kernels whose weights are all >= 0 and sum to 1
  (blur, gaussian, identity: the result stays in range), ``rescale`` for
  everything else (edge, sobel, sharpen, emboss, random: negative values).
"""

from __future__ import annotations

import numpy as np

from convfilter.errors import ArgumentError
from convfilter.ops.spec import Operation

RANGE_MODES = ("auto", "clip", "rescale", "abs")
DEPTHS = {8: (np.uint8, 255), 16: (np.uint16, 65535)}


def resolve_range(mode: str, op: Operation) -> str:
    """The concrete mode ``auto`` stands for with this operation; other modes unchanged.

    ``auto`` is ``clip`` when ``op`` keeps values in the input's range
    (:attr:`~convfilter.ops.spec.Operation.averaging`), else ``rescale``.
    """
    if mode not in RANGE_MODES:
        raise ArgumentError(
            f"The `range` argument must be one of {', '.join(RANGE_MODES)}. Received: {mode!r}"
        )
    if mode == "auto":
        return "clip" if op.averaging else "rescale"
    return mode


def to_pixels(
    values: np.ndarray,
    mode: str,
    *,
    in_max: float,
    depth: int = 8,
    bounds: tuple[float, float] | None = None,
) -> np.ndarray:
    """Map float ``values`` (in a ``0..in_max`` scale) to ``uint8``/``uint16`` pixels.

    ``mode`` is ``clip``, ``rescale`` or ``abs`` (resolve ``auto`` first with
    :func:`resolve_range`). NaN becomes 0. ``bounds`` is the ``(min, max)``
    that ``rescale`` maps from; by default the finite min and max of
    ``values`` (give the whole image's when ``values`` is one tile of it).
    """
    if depth not in DEPTHS:
        raise ArgumentError(f"The `depth` argument must be 8 or 16. Received: depth={depth!r}")
    dtype, out_max = DEPTHS[depth]
    if mode not in ("rescale", "clip", "abs"):
        raise ArgumentError(f"unknown range mode {mode!r}")
    # One float64 working copy, changed in place (a full image is large); the
    # arithmetic is (v - lo) * k or v * k, rint, then NaN -> 0 and clipping
    # (fmax/fmin skip NaN, so NaN becomes 0 and +-inf the nearest end).
    values = np.asarray(values)
    # Without scaling, float32 input rounds the same in float32 (rint of a
    # float32 value is a float32 value) at half the memory traffic.
    exact32 = mode != "rescale" and out_max == in_max and values.dtype == np.float32
    scaled = np.array(values, dtype=np.float32 if exact32 else np.float64)
    if mode == "rescale":
        lo, hi = finite_bounds(scaled) if bounds is None else bounds
        if hi > lo:
            scaled -= lo
            scaled *= out_max / (hi - lo)
        else:
            scaled[...] = 0.0  # pragma: no mutate (None would be NaN, which becomes 0 below: equivalent)
    else:
        if mode == "abs":
            np.abs(scaled, out=scaled)
        if out_max != in_max:
            scaled *= out_max / in_max
    np.rint(scaled, out=scaled)
    np.fmax(scaled, 0, out=scaled)
    np.fmin(scaled, out_max, out=scaled)
    return scaled.astype(dtype)


def finite_bounds(values: np.ndarray) -> tuple[float, float]:
    """The min and max of the finite entries of ``values``; ``(0.0, 0.0)`` when there are none."""
    finite = np.asarray(values)[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
