"""PNG outputs through libpng (via imagecodecs), with the row filter chosen by the compression level.

Pillow's PNG encoder tries every row filter on every row and keeps the best
one, with no option to choose; on a large photograph that choice alone costs
more than the convolution (the README's Performance section has the figures).
libpng lets the writer pick:

* level 0: no compression, no filter (the fastest write, the largest file);
* level 1: zlib level 1 with the run-length strategy and the ``Sub`` filter,
  OpenCV's default (several times faster than Pillow, files somewhat larger);
* levels 2..9: zlib's level with libpng's adaptive filter choice, like Pillow.

Pixels arrive as NumPy arrays in the layout of :func:`png_mode`; the input's
DPI is stored in a ``pHYs`` chunk, as Pillow stores it. At levels 0 and 1,
an image of :data:`PIECES_MIN_BYTES` or more is filtered and deflated in pieces
on every core instead (:mod:`convfilter.io.png_pieces`: the same filter and
zlib settings, one zlib stream that every decoder reads).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

import numpy as np
from PIL import PngImagePlugin

from convfilter.io.cores import usable_cores
from convfilter.io.png_pieces import LEVELS as PIECES_LEVELS
from convfilter.io.png_pieces import encode_pieces

PILLOW_DEFAULT_LEVEL = 6
"""The level used when none is given, as in Pillow's ``Image.save(..., "PNG")``."""
_LAYOUTS = {
    (1, np.dtype(np.uint8)): "L",
    (1, np.dtype(np.uint16)): "I;16",
    (2, np.dtype(np.uint8)): "LA",
    (3, np.dtype(np.uint8)): "RGB",
    (4, np.dtype(np.uint8)): "RGBA",
}
"""(bands, dtype) -> the Pillow mode libpng writes them as."""
PNG_MODES = tuple(_LAYOUTS.values())
"""The Pillow modes written by libpng."""
LIBPNG_MAX_SIDE = 1_000_000
"""libpng's default limit on a PNG's width and height; longer images are left to Pillow."""
PIECES_MIN_BYTES = 1 << 22
"""Pixel bytes from which a PNG is deflated in pieces on several cores (two pieces or more)."""
_SIGNATURE_AND_IHDR = 8 + 4 + 4 + 13 + 4  # PNG signature, then the IHDR chunk (length, type, data, CRC)
_METERS_PER_INCH = 0.0254


def png_mode(pixels: np.ndarray) -> str | None:
    """The Pillow mode a pixel array is written as, or ``None`` if libpng is not used for it.

    ``H x W`` uint8 is ``L`` and uint16 ``I;16``; ``H x W x 2|3|4`` uint8 is
    ``LA``, ``RGB``, ``RGBA``; neither side may exceed :data:`LIBPNG_MAX_SIDE`.
    """
    if pixels.ndim not in (2, 3) or max(pixels.shape[:2]) > LIBPNG_MAX_SIDE:
        return None
    if pixels.ndim == 2:
        return layout_mode(1, pixels.dtype)
    return layout_mode(pixels.shape[2], pixels.dtype) if pixels.shape[2] > 1 else None


def layout_mode(bands: int, dtype: np.dtype) -> str | None:
    """The mode of :func:`png_mode` for ``bands`` bands of ``dtype``, or ``None``."""
    return _LAYOUTS.get((bands, np.dtype(dtype)))


def png_options(level: int | None) -> dict:
    """imagecodecs' ``png_encode`` options for zlib ``level`` 0..9 (``None``: Pillow's default, 6)."""
    from imagecodecs import PNG

    level = PILLOW_DEFAULT_LEVEL if level is None else level
    if level == 0:
        return {"level": 0, "filter": PNG.FILTER.NONE}
    if level == 1:
        return {"level": 1, "strategy": PNG.STRATEGY.RLE, "filter": PNG.FILTER.SUB}
    return {"level": level, "filter": PNG.FILTER.ALL}


def encode_png(pixels: np.ndarray, *, compress_level: int | None = None, dpi: tuple | None = None) -> bytes:
    """The PNG file of ``pixels`` (a layout :func:`png_mode` accepts), with ``dpi`` stored if given.

    The keyword names are Pillow's PNG save options. Raises ``ValueError``
    for a layout libpng is not used for.
    """
    return b"".join(_png_parts(pixels, compress_level, dpi))


def write_png(fp: BinaryIO, pixels: np.ndarray, **params) -> None:
    """Write the PNG file of ``pixels`` to ``fp``; ``params`` as in :func:`encode_png`."""
    for part in _png_parts(pixels, **params):
        fp.write(part)


def _png_parts(pixels: np.ndarray, compress_level: int | None = None, dpi: tuple | None = None) -> list:
    """The PNG file in pieces: libpng's file, or with ``dpi`` its head, a ``pHYs`` chunk, the rest
    (views, so a huge file is not copied to insert 21 bytes)."""
    if png_mode(pixels) is None:
        raise ValueError(f"no PNG layout for {pixels.dtype} pixels of shape {pixels.shape}")
    level = PILLOW_DEFAULT_LEVEL if compress_level is None else compress_level
    if pixels.nbytes >= PIECES_MIN_BYTES and level in PIECES_LEVELS:
        return encode_pieces(pixels, level, usable_cores(), [_phys_chunk(dpi)] if dpi else [])
    from imagecodecs import png_encode

    encoded = memoryview(png_encode(np.ascontiguousarray(pixels), **png_options(compress_level)))
    if not dpi:
        return [encoded]
    if encoded[12:16] != b"IHDR":
        raise ValueError("libpng wrote no IHDR chunk first")
    return [encoded[:_SIGNATURE_AND_IHDR], _phys_chunk(dpi), encoded[_SIGNATURE_AND_IHDR:]]


def _phys_chunk(dpi: tuple) -> bytes:
    """A ``pHYs`` chunk for ``(x, y)`` dots per inch: pixels per metre, unit metre, as Pillow writes it."""
    chunk = io.BytesIO()
    x, y = (int(value / _METERS_PER_INCH + 0.5) for value in dpi)
    PngImagePlugin.putchunk(chunk, b"pHYs", struct.pack(">IIB", x, y, 1))
    return chunk.getvalue()
