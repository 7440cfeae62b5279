"""2-D numeric matrices in files: ``.npy``, ``.csv`` and ``.txt``.

A matrix file is used as it is: no grayscale conversion, no 0..255 scale.
Text files hold one row per line, values separated by commas and/or
whitespace; blank lines and lines starting with ``#`` are skipped (the
header ``numpy.savetxt`` writes). ``.npy`` files are read with
``allow_pickle=False``. A 1-D array (one line of text, or a 1-D ``.npy``) is
a ``1 x N`` matrix. Values are parsed strictly: no NaN, no infinity, nothing
that is not a plain decimal number.

Results are written as raw float32 values (what the Conv2D computes): ``.npy``
as a float32 array, text as the shortest decimal that reads back to the same
float32, integral values without a trailing ``.0``. Writes are atomic.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np

from convfilter.errors import ConvFilterError, input_file_error, one_line
from convfilter.io import stores
from convfilter.io.atomic import atomic_file

MATRIX_EXTENSIONS = (".npy", ".csv", ".txt")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
SEPARATOR = re.compile(r"\s*,\s*|\s+")
MAX_TEXT_BYTES = 256 * 1024 * 1024
NPY_MAGIC = b"\x93NUMPY"


class MatrixSyntaxError(ValueError):
    """Text that is not a rectangular matrix of finite decimal numbers."""


def is_matrix_path(path: str) -> bool:
    """True when ``path`` ends in ``.npy``, ``.csv`` or ``.txt`` (any case)."""
    return os.path.splitext(str(path))[1].lower() in MATRIX_EXTENSIONS


def parse_number(token: str, where: str) -> float:
    """``token`` as a finite float, or :class:`MatrixSyntaxError` naming ``where`` (e.g. ``'row 2'``)."""
    if NOT_FINITE.fullmatch(token):
        raise MatrixSyntaxError(f"value {token!r} in {where} is not finite")
    if not NUMBER.fullmatch(token):
        raise MatrixSyntaxError(f"value {token!r} in {where} is not a number")
    value = float(token)
    if not np.isfinite(value):
        raise MatrixSyntaxError(f"value {token!r} in {where} is too large")
    return value


def parse_rows(rows: list[tuple[str, str]]) -> np.ndarray:
    """Parse ``(label, text)`` rows into a 2-D float64 array.

    Each row's values are separated by commas and/or whitespace; ``label``
    (``'row 1'``, ``'line 3'``) names the row in error messages. Raises
    :class:`MatrixSyntaxError` for empty rows or values, non-numbers,
    non-finite values and rows of different lengths.
    """
    if not rows:
        raise MatrixSyntaxError("no values")
    parsed: list[list[float]] = []
    for label, text in rows:
        text = text.strip()
        if not text:
            raise MatrixSyntaxError(f"{label} is empty")
        tokens = SEPARATOR.split(text)
        if "" in tokens:
            raise MatrixSyntaxError(f"{label} has an empty value")
        values = [parse_number(token, label) for token in tokens]
        if parsed and len(values) != len(parsed[0]):
            raise MatrixSyntaxError(
                f"rows differ in length: {rows[0][0]} has {len(parsed[0])} values, {label} has {len(values)}"
            )
        parsed.append(values)
    return np.array(parsed, dtype=np.float64)


def parse_text(text: str) -> np.ndarray:
    """Parse the text of a ``.csv``/``.txt`` matrix file (blank and ``#`` lines skipped)."""
    rows = [
        (f"line {number}", line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return parse_rows(rows)


def as_matrix(array: np.ndarray, more: tuple[int, ...] = ()) -> np.ndarray:
    """A numeric 1-D or 2-D array as a 2-D float64 matrix (1-D -> ``1 x N``), or ``ValueError``.

    ``more`` names further dimensions accepted as they are (``(3,)``: an
    ``H x W x C`` image; ``(4,)``: ``(kh, kw, C, N)`` weights).
    """
    if array.dtype.kind not in "iuf":
        raise ValueError(f"holds {array.dtype} values, not real numbers")
    if array.ndim == 1:
        array = array[np.newaxis]
    if array.ndim != 2 and array.ndim not in more:
        allowed = "1-D or 2-D" + "".join(f" or {n}-D" for n in more)
        raise ValueError(f"is a {array.ndim}-D array of shape {array.shape}; a matrix must be {allowed}")
    if array.size == 0:
        raise ValueError(f"is empty (shape {array.shape})")
    matrix = array.astype(np.float64)
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        raise ValueError(f"value at {_where(bad[0])} is not finite ({matrix[tuple(bad[0])]})")
    return matrix


def _where(index) -> str:
    """``row 2, column 3`` (and ``channel 1``, ``filter 4`` beyond two dimensions), counted from 1."""
    names = ("row", "column", "channel", "filter")
    return ", ".join(f"{name} {i + 1}" for name, i in zip(names, index, strict=False))


def _fits_float32(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` if every value fits the layer's float32, else a ``ValueError`` naming the first misfit."""
    with np.errstate(over="ignore"):
        bad = np.argwhere(~np.isfinite(matrix.astype(np.float32)))
    if bad.size:
        raise ValueError(
            f"value at {_where(bad[0])} ({matrix[tuple(bad[0])]:g}) does not fit a float32 (|v| <= 3.4e38)"
        )
    return matrix


def _check_npy_size(handle) -> None:
    """Refuse a ``.npy`` whose header claims more data than the file holds, before anything is allocated.

    A header can claim any shape (one that overflows a C long, or terabytes);
    the data that follows it must be that large, so the file's size settles it.
    """
    handle.seek(0)
    try:
        version = np.lib.format.read_magic(handle)
        reader = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = reader(handle, max_header_size=10_000)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise ValueError(f"not a valid .npy file ({one_line(exc)})") from None
    if dtype.hasobject:
        raise ValueError("holds Python objects, which need pickle (refused)")
    claimed = dtype.itemsize
    for side in shape:
        claimed *= int(side)
    size = handle.getbuffer().nbytes if isinstance(handle, io.BytesIO) else os.fstat(handle.fileno()).st_size
    held = size - handle.tell()
    if claimed > held:
        shown = "x".join(str(side) for side in shape)
        raise ValueError(f"header claims a {shown} array ({claimed} bytes) but the file holds {held} bytes")


def read_matrix(path: str, more: tuple[int, ...] = ()) -> np.ndarray:
    """Read the matrix file ``path`` as a 2-D float64 array.

    ``more`` accepts further dimensions from a ``.npy`` (see :func:`as_matrix`).
    Every failure is a :class:`ConvFilterError` whose message starts with ``path``.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in MATRIX_EXTENSIONS:
        raise ConvFilterError(f"{path}: not a matrix file; use {', '.join(MATRIX_EXTENSIONS)}")
    data = stores.read_bytes(path) if stores.is_url(path) else None  # an object: fetched whole, once
    try:
        if ext == ".npy":
            with open(path, "rb") if data is None else io.BytesIO(data) as handle:
                magic = handle.read(len(NPY_MAGIC))
                if magic != NPY_MAGIC:
                    raise ValueError("not a .npy file (no NumPy header)")
                _check_npy_size(handle)
            try:
                array = np.load(path if data is None else io.BytesIO(data), allow_pickle=False)
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise ValueError("holds Python objects, which need pickle (refused)") from None
                raise ValueError(f"not a valid .npy file ({one_line(exc)})") from None
            return _fits_float32(as_matrix(array, more))
        if (os.path.getsize(path) if data is None else len(data)) > MAX_TEXT_BYTES:
            raise ValueError(f"is larger than {MAX_TEXT_BYTES // 2**20} MiB; use .npy for big matrices")
        if data is None:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
        else:
            text = data.decode("utf-8-sig")
        return _fits_float32(parse_text(text))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise input_file_error(path, exc, "a matrix file") from None
    except UnicodeDecodeError:
        raise ConvFilterError(f"{path}: not a text file (it is not UTF-8)") from None
    except (OSError, EOFError, ValueError) as exc:
        raise ConvFilterError(f"{path}: {one_line(exc)}") from None


def format_value(value: float) -> str:
    """The shortest decimal that reads back as the same float32, without a trailing ``.0``."""
    text = str(np.float32(value) + np.float32(0.0))
    return text[:-2] if text.endswith(".0") else text


def format_matrix(matrix: np.ndarray, separator: str) -> str:
    """Rows of :func:`format_value` values joined by ``separator``, one line each."""
    return "".join(separator.join(format_value(v) for v in row) + "\n" for row in np.atleast_2d(matrix))


def write_matrix(path: str, matrix: np.ndarray, *, replace: bool = True, claim: str | None = None) -> None:
    """Write ``matrix`` (2-D) to ``path`` as raw float32 values, atomically (temp file + rename).

    With ``replace=False`` an existing ``path`` is never replaced (see
    :func:`convfilter.io.images.move_into_place`).
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in MATRIX_EXTENSIONS:
        raise ConvFilterError(f"{path}: not a matrix file; use {', '.join(MATRIX_EXTENSIONS)}")
    values = np.asarray(matrix, dtype=np.float32)
    with atomic_file(path, replace=replace, claim=claim) as handle:
        if ext == ".npy":
            np.save(handle, values, allow_pickle=False)
        else:
            handle.write(format_matrix(values, "," if ext == ".csv" else " ").encode("ascii"))
