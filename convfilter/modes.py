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


def gray_planes(img: Image.Image) -> Planes:
    """Convert ``img`` to one grayscale channel by the module's rule."""
    mode = img.mode
    if mode in SIXTEEN_BIT_MODES:
        return _single(np.asarray(img).astype(np.float32), 65535.0)
    if mode == "I":
        values = np.asarray(img)
        fits = values.size == 0 or (values.min() >= 0 and values.max() <= 65535)
        return _single(values.astype(np.float32), 65535.0 if fits else float(INT32_MAX))
    if mode == "F":
        return _single(np.asarray(img, dtype=np.float32), 1.0)
    if mode in ("LA", "La"):
        return _single(np.asarray(img.convert("LA").getchannel("L"), dtype=np.float32), 255.0)
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
    elif mode == "CMYK":
        img = img.convert("RGB")
    return _single(np.asarray(img.convert("L"), dtype=np.float32), 255.0)


def color_planes(img: Image.Image) -> Planes:
    """Split ``img`` into colour channels and alpha by the module's colour rule."""
    mode = img.mode
    if mode in SIXTEEN_BIT_MODES or mode in ("I", "F", "1", "L"):
        return gray_planes(img)
    if mode in ("LA", "La"):
        return _split(img.convert("LA"), "LA")
    if mode == "P":
        return _split(img.convert("RGBA" if "transparency" in img.info else "RGB"))
    if mode in ("PA", "RGBA", "RGBa"):
        return _split(img.convert("RGBA"))
    if mode == "CMYK":
        return _split(img)
    return _split(img.convert("RGB"))


def _single(values: np.ndarray, max_value: float) -> Planes:
    return Planes(values[np.newaxis], None, "L", max_value)


def _split(img: Image.Image, mode: str | None = None) -> Planes:
    mode = mode or img.mode
    array = np.asarray(img)
    if mode in ("LA", "RGBA"):
        color, alpha = array[..., :-1], np.ascontiguousarray(array[..., -1])
    else:
        color, alpha = array, None
    channels = np.moveaxis(color, -1, 0).astype(np.float32)
    return Planes(channels, alpha, mode, 255.0)
