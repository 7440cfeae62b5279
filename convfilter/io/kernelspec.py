"""Parsing the ``--kernel SPEC`` of ``convfilter custom``, strictly and without ``eval``.

A SPEC is one of:

* inline rows: ``"1,0,-1"`` (1x3), ``"1,0.5;0.5,1"`` (2x2): rows split by
  ``;`` (or newlines), values by ``,`` and/or spaces;
* a JSON nested list: ``"[[1,0.5],[0.5,1]]"`` (a flat list is one row);
* ``@path`` to a ``.npy`` (loaded with ``allow_pickle=False``), ``.csv`` or
  ``.txt`` matrix file (see :mod:`convfilter.io.matrices`).

Every problem raises :class:`SpecError` (an
:class:`~convfilter.errors.ArgumentError` of ``--kernel``) with a one-line
message saying what was wrong and echoing what was received.
"""

from __future__ import annotations

import json
import os

import numpy as np

from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io.matrices import MATRIX_EXTENSIONS, MatrixSyntaxError, parse_rows, read_matrix
from convfilter.ops.kernels import MAX_KERNEL_SIZE


class SpecError(ArgumentError):
    """A bad ``--kernel SPEC`` (or, for :func:`normalize`, a kernel ``--normalize`` cannot take)."""

    def __init__(self, message: str, param: str = "--kernel") -> None:
        super().__init__(message, param)


ECHO_LIMIT = 60
"""Received specs longer than this are shortened in error messages."""


def received(spec: str) -> str:
    """``(received '...')`` for error messages, shortened for very long specs."""
    shown = spec if len(spec) <= ECHO_LIMIT else spec[: ECHO_LIMIT - 3] + "..."
    return f"(received {shown!r})"


def parse_kernel(spec: str) -> np.ndarray:
    """Parse a kernel SPEC (inline rows, JSON nested list or ``@file``) into a 2-D float64 array.

    A ``.npy`` file may also hold 4-D ``(kh, kw, C, N)`` weights, as ``Conv2D`` holds them.

    Raises :class:`SpecError` for an empty, ragged, non-numeric, non-finite or
    oversized (more than ``MAX_KERNEL_SIZE`` per side) kernel, and for a
    ``@file`` that cannot be read.
    """
    if not isinstance(spec, str):
        raise SpecError(f"kernel must be given as text {received(repr(spec))}")
    text = spec.strip()
    if not text:
        raise SpecError(f"kernel is empty {received(spec)}")
    if text.startswith("@"):
        grid = _read_file(text[1:], spec)
    elif text.startswith("["):
        grid = _parse_json(text, spec)
    else:
        rows = text.replace("\n", ";").split(";")
        labels = [(f"row {number}", row) for number, row in enumerate(rows, start=1)]
        try:
            grid = parse_rows(labels)
        except MatrixSyntaxError as exc:
            raise SpecError(f"kernel {exc} {received(spec)}") from None
    return check_size(grid, spec)


def check_size(grid: np.ndarray, spec: str) -> np.ndarray:
    """Refuse kernels with more than ``MAX_KERNEL_SIZE`` rows or columns."""
    h, w = grid.shape[:2]
    if max(h, w) > MAX_KERNEL_SIZE:
        raise SpecError(
            f"kernel is {h}x{w}, larger than the {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} maximum {received(spec)}"
        )
    return grid


def _read_file(path: str, spec: str) -> np.ndarray:
    if not path:
        raise SpecError(f"kernel file name is missing after '@' {received(spec)}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in MATRIX_EXTENSIONS:
        shown = repr(ext) if ext else "no extension"
        raise SpecError(f"kernel file must be {', '.join(MATRIX_EXTENSIONS)}, not {shown} {received(spec)}")
    try:
        return read_matrix(path, more=(4,))
    except ConvFilterError as exc:
        raise SpecError(f"kernel file {exc}") from None


class _NonFinite(str):
    """JSON's ``NaN``, ``Infinity`` and ``-Infinity``, kept as text so they can be refused by position."""


def _parse_json(text: str, spec: str) -> np.ndarray:
    try:
        data = json.loads(text, parse_constant=_NonFinite)
    except RecursionError:
        raise SpecError(f"kernel JSON is nested too deeply {received(spec)}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"kernel is not valid JSON: {exc.msg} at column {exc.colno} {received(spec)}"
        ) from None
    if not isinstance(data, list) or not data:
        raise SpecError(f"kernel is empty {received(spec)}")
    rows = data if all(isinstance(row, list) for row in data) else [data]
    width = None
    grid = []
    for number, row in enumerate(rows, start=1):
        where = f"row {number}"
        if not row:
            raise SpecError(f"kernel {where} is empty {received(spec)}")
        values = []
        for item in row:
            if isinstance(item, _NonFinite):
                raise SpecError(f"kernel value {str(item)!r} in {where} is not finite {received(spec)}")
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise SpecError(
                    f"kernel value {json.dumps(item)} in {where} is not a number {received(spec)}"
                )
            values.append(item)
        if width is not None and len(values) != width:
            raise SpecError(
                f"kernel rows differ in length: row 1 has {width} values, {where} has {len(values)} "
                f"{received(spec)}"
            )
        width = len(values)
        grid.append(values)
    try:
        array = np.array(grid, dtype=np.float64)
    except OverflowError:
        raise SpecError(f"kernel has a value too large for a float {received(spec)}") from None
    if not np.isfinite(array).all():
        raise SpecError(f"kernel has a value too large for a float {received(spec)}")
    return array


def normalize(grid: np.ndarray, spec: str = "") -> np.ndarray:
    """Divide ``grid`` by its sum; :class:`SpecError` if the sum is 0 (within rounding)."""
    total = float(grid.sum())
    if abs(total) <= 1e-12 * float(np.abs(grid).sum()) or total == 0.0:
        shown = f" {received(spec)}" if spec else ""
        raise SpecError(f"kernel sums to 0 and cannot be normalized{shown}", "--normalize")
    return grid / total
