"""A large image's PNG deflated in independent pieces on every core, as ``pigz`` does.

A PNG's pixels are one zlib stream, which one core compresses at a time. But
deflate can be cut into pieces: each band of rows is filtered and deflated on
its own thread, primed with the last 32 KiB of the band before it (the
window deflate may refer back to), and ended with a sync flush, so the pieces
joined make one valid stream that every decoder reads as usual. The pieces are
stored as consecutive ``IDAT`` chunks; the zlib header and the Adler-32 of the
whole stream frame them.

Levels 0 and 1 only, with libpng's settings for them
(:func:`convfilter.io.png.png_options`): level 0 stores, with no row filter;
level 1 (convfilter's default) uses the ``Sub`` filter and zlib's run-length
strategy. Levels 2..9 try every row filter on every row, which libpng does
faster in C than NumPy can here: they stay one libpng stream. The band height
depends only on the row length, never on the number of cores, so the bytes
written are the same on every machine. Python's zlib releases the GIL on large
buffers, so the threads run in parallel.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PIECE_BYTES = 1 << 21
"""Uncompressed bytes (about) per piece: small enough to keep every core busy, large enough that a
piece's sync flush costs nothing measurable in size."""
LEVELS = (0, 1)
"""The zlib levels written in pieces."""
ZLIB_HEADER = b"\x78\x01"
"""A zlib stream's header for a 32 KiB window at the fastest levels, as zlib writes it at 0 and 1."""
WINDOW = 32 * 1024
"""Deflate's window: how far back a piece's first bytes may refer, into the piece before."""
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
"""Samples per pixel -> PNG colour type (gray, gray + alpha, RGB, RGBA)."""


def encode_pieces(pixels: np.ndarray, level: int, workers: int, extra_chunks: list[bytes]) -> list:
    """The PNG file of ``pixels`` (``H x W`` or ``H x W x C``, uint8 or uint16) in parts, compressed
    at zlib ``level`` 0 or 1 by ``workers`` threads; ``extra_chunks`` (whole chunks) follow ``IHDR``."""
    if level not in LEVELS:
        raise ValueError(f"PNG pieces are written at levels {LEVELS} only, got {level}")
    height, width = pixels.shape[:2]
    samples = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(pixels, dtype=">u2" if depth == 16 else np.uint8).view(np.uint8)
    rows = rows.reshape(height, -1)
    bpp = samples * depth // 8
    band = max(1, PIECE_BYTES // (rows.shape[1] + 1))
    starts = list(range(0, height, band))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, _COLOR_TYPE[samples], 0, 0, 0)
    parts: list = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr), *extra_chunks]

    tail_rows = -(-WINDOW // (rows.shape[1] + 1))  # rows that hold the last 32 KiB of a piece
    strategy = zlib.Z_RLE if level == 1 else zlib.Z_DEFAULT_STRATEGY

    def piece(index: int) -> tuple[bytes, int, int]:
        """Band ``index`` filtered and deflated: its compressed bytes, Adler-32 and length."""
        start = starts[index]
        data = _filter_rows(rows[start : start + band], bpp, level)
        primer = b""
        if start:  # the band before's last rows, filtered exactly as its own piece filters them
            primer = _filter_rows(rows[max(0, start - tail_rows) : start], bpp, level)
        deflate = zlib.compressobj(
            level, zlib.DEFLATED, -15, 8, strategy, *([primer[-WINDOW:]] if primer else [])
        )
        last = index == len(starts) - 1
        compressed = deflate.compress(data) + deflate.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        return compressed, zlib.adler32(data), len(data)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="convfilter-png") as pool:
        results = list(pool.map(piece, range(len(starts))))
    checksum = 1
    for _, adler, length in results:
        checksum = _adler32_combine(checksum, adler, length)
    pieces = [compressed for compressed, _, _ in results]
    pieces[0] = ZLIB_HEADER + pieces[0]
    pieces[-1] = pieces[-1] + struct.pack(">I", checksum)
    parts.extend(_chunk(b"IDAT", piece) for piece in pieces)
    parts.append(_chunk(b"IEND", b""))
    return parts


def _filter_rows(rows: np.ndarray, bpp: int, level: int) -> bytes:
    """``rows`` (uint8, one image row each) as PNG scanlines: a filter-type byte, then the row's bytes
    as they are (level 0) or less the byte one pixel to their left, mod 256 (level 1, ``Sub``)."""
    count, length = rows.shape
    out = np.empty((count, length + 1), dtype=np.uint8)
    out[:, 0] = level
    if level == 0:
        out[:, 1:] = rows
    else:
        out[:, 1 : 1 + bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp :])
    return out.tobytes()


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's (zlib's ``adler32_combine``)."""
    base = 65521
    rem = second_length % base
    sum1 = first & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 += (second & 0xFFFF) + base - 1
    sum2 += (first >> 16) + (second >> 16) + base - rem
    sum1 = sum1 - base if sum1 >= base else sum1
    sum1 = sum1 - base if sum1 >= base else sum1
    sum2 = sum2 - 2 * base if sum2 >= 2 * base else sum2
    sum2 = sum2 - base if sum2 >= base else sum2
    return sum1 | (sum2 << 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
