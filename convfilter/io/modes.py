"""How each Pillow image mode becomes float planes for the Conv2D.

Grayscale rule (``gray_planes``), by the mode Pillow opens the file in; the
scale is what ``--range clip`` maps to black..white:

* ``1``: 0 (black) or 255 (white); scale 0..255.
* ``L``: the value; 0..255.
* ``LA``, ``La``: the L channel, alpha ignored; 0..255.
* ``P``, ``PA``: luma of the palette colour, transparency ignored; 0..255.
* ``RGB``, ``RGBA`` (and other modes): ITU-R 601-2 luma
  ``R*299/1000 + G*587/1000 + B*114/1000`` as Pillow's ``convert("L")``
  computes it (rounded to an integer), alpha ignored; 0..255.
* ``CMYK``: Pillow's CMYK to RGB (``R = (255-C)(255-K)/255``, ...), then luma;
  0..255.
* ``I;16``, ``I;16B`` (16-bit): the value, exactly; 0..65535.
* ``I`` (32-bit integer): the value (float32 holds it exactly up to 2**24);
  0..65535 when every value fits in 16 bits (Pillow opens some 16-bit files
  as ``I``), else 0..2147483647.
* ``F`` (32-bit float): the value, exactly; 0..1.

Colour rule (``color_planes``, the ``--color`` option): the colour channels
are filtered separately and alpha is carried apart from them:

* ``RGB`` -> ``RGB``; ``RGBA`` -> ``RGBA`` (R, G, B filtered, A carried);
* ``L``, ``1`` -> ``L``; ``LA`` -> ``LA`` (L filtered, A carried);
* ``P`` -> ``RGB``, or ``RGBA`` when the palette has a transparent entry;
  ``PA`` -> ``RGBA``;
* ``CMYK`` -> ``CMYK`` (C, M, Y, K filtered);
* ``I;16``, ``I``, ``F`` -> one channel, as in the grayscale rule;
* other 3-channel modes (``YCbCr``, ``LAB``, ``HSV``, ``RGBX``) -> ``RGB``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
INT32_MAX = 2**31 - 1


@dataclass
class Planes:
    """Float planes ready for the Conv2D.

    ``channels`` is ``C x H x W`` float32 in a ``0..max_value`` scale,
    ``alpha`` is ``H x W`` uint8 or ``None``, ``mode`` is the Pillow mode the
    filtered channels form (``L``, ``LA``, ``RGB``, ``RGBA`` or ``CMYK``;
    ``L`` also stands for a single high-precision channel).
    """

    channels: np.ndarray
    alpha: np.ndarray | None
    mode: str
    max_value: float


def gray_planes(img: Image.Image, *, keep_dtype: bool = False) -> Planes:
    """Convert ``img`` to one grayscale channel by the module's rule.

    With ``keep_dtype``, 8-bit and 16-bit values stay ``uint8``/``uint16``
    (same values, less memory); otherwise the channel is float32.
    """
    mode = img.mode
    if mode in SIXTEEN_BIT_MODES:
        values = to_array(img)
        return _single(values.astype(values.dtype.newbyteorder("=") if keep_dtype else np.float32), 65535.0)
    if mode == "I":
        values = np.asarray(img)
        fits = values.size == 0 or (values.min() >= 0 and values.max() <= 65535)
        return _single(values.astype(np.float32), 65535.0 if fits else float(INT32_MAX))
    if mode == "F":
        return _single(to_array(img).astype(np.float32, copy=False), 1.0)
    if mode in ("LA", "La"):
        img = img.convert("LA").getchannel("L")
    else:
        if mode in ("P", "PA"):
            img = img.convert("RGBA")
        elif mode == "CMYK":
            img = img.convert("RGB")
        if img.mode != "L":
            img = img.convert("L")
    values = to_array(img)
    return _single(values if keep_dtype else values.astype(np.float32), 255.0)


BAND_PIXELS = 1 << 24
"""Images above this many pixels are copied out of Pillow in bands of rows (see :func:`to_array`)."""


def to_array(img: Image.Image) -> np.ndarray:
    """``np.asarray(img)`` without its transient copies for large single-band images.

    NumPy reads a Pillow image through ``tobytes()``, which joins encoded
    chunks: about two extra copies of the image at once (800 MB for a
    20000x20000 8-bit scan). Large images are copied band by band instead.
    """
    if img.width * img.height <= BAND_PIXELS:
        return np.asarray(img)
    img.load()
    rows = max(1, BAND_PIXELS // 4 // img.width)
    first = np.asarray(img.crop((0, 0, img.width, min(rows, img.height))))
    pixels = np.empty((img.height, img.width), dtype=first.dtype)
    pixels[: first.shape[0]] = first
    for top in range(first.shape[0], img.height, rows):
        bottom = min(top + rows, img.height)
        pixels[top:bottom] = np.asarray(img.crop((0, top, img.width, bottom)))
    return pixels


def color_planes(img: Image.Image, *, keep_dtype: bool = False) -> Planes:
    """Split ``img`` into colour channels and alpha by the module's colour rule (``keep_dtype``: as above)."""
    mode = img.mode
    if mode in SIXTEEN_BIT_MODES or mode in ("I", "F", "1", "L"):
        return gray_planes(img, keep_dtype=keep_dtype)
    if mode in ("LA", "La"):
        return _split(img.convert("LA"), "LA", keep_dtype)
    if mode == "P":
        return _split(img.convert("RGBA" if "transparency" in img.info else "RGB"), keep_dtype=keep_dtype)
    if mode in ("PA", "RGBA", "RGBa"):
        return _split(img.convert("RGBA"), keep_dtype=keep_dtype)
    if mode == "CMYK":
        return _split(img, keep_dtype=keep_dtype)
    return _split(img.convert("RGB"), keep_dtype=keep_dtype)


def _single(values: np.ndarray, max_value: float) -> Planes:
    return Planes(values[np.newaxis], None, "L", max_value)


def _split(img: Image.Image, mode: str | None = None, keep_dtype: bool = False) -> Planes:
    mode = mode or img.mode
    array = np.asarray(img)
    if mode in ("LA", "RGBA"):
        color, alpha = array[..., :-1], np.ascontiguousarray(array[..., -1])
    else:
        color, alpha = array, None
    channels = np.moveaxis(color, -1, 0)
    channels = np.ascontiguousarray(channels) if keep_dtype else channels.astype(np.float32)
    return Planes(channels, alpha, mode, 255.0)
