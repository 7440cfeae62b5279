"""What 'same' and 'full' padding pad with: the ``--border`` modes.

For a 1-D row ``a b c d`` padded by 2 on each side:

=============  ==========================  ==========================
border         ``numpy.pad`` mode          padded row
=============  ==========================  ==========================
``zero``       ``constant`` (0)            ``0 0 | a b c d | 0 0``
``reflect``    ``reflect``                 ``c b | a b c d | c b``
``symmetric``  ``symmetric``               ``b a | a b c d | d c``
``replicate``  ``edge``                    ``a a | a b c d | d d``
``wrap``       ``wrap``                    ``c d | a b c d | a b``
=============  ==========================  ==========================

``zero`` padding ('same' or 'full') is written by the engine
(:func:`convfilter.engine.convolve`) straight into its input buffer; every
other border is padded here first, with the amounts of
:func:`convfilter.ops.geometry.padding_amounts`. The Conv2D always runs with
'valid'. Tiles of a large image (:mod:`convfilter.engine.tiles`) take the same
pixels through :func:`convfilter.engine.tiles.border_index`. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from convfilter.errors import ArgumentError

BORDERS = ("zero", "reflect", "symmetric", "replicate", "wrap")
NUMPY_MODES = {
    "zero": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
}


def check_border(border: str) -> str:
    """Return ``border`` lower-cased if it is one of :data:`BORDERS`, else raise ``ValueError``."""
    if not isinstance(border, str) or border.lower() not in BORDERS:
        raise ArgumentError(
            f"The `border` argument must be one of {', '.join(map(repr, BORDERS))}. "
            f"Received: border={border!r}"
        )
    return border.lower()


def pad_batch(
    batch: np.ndarray, pad_y: Sequence[int], pad_x: Sequence[int], border: str = "zero"
) -> np.ndarray:
    """Pad the rows and columns of an ``N x H x W`` (or ``N x H x W x C``) batch by ``border``.

    ``pad_y`` and ``pad_x`` are ``(before, after)`` pairs. Amounts larger than
    the image repeat the pattern, as ``numpy.pad`` does.
    """
    widths = [(0, 0), tuple(pad_y), tuple(pad_x)] + [(0, 0)] * (batch.ndim - 3)
    if not any(before or after for before, after in widths):
        return batch
    return np.pad(batch, widths, mode=NUMPY_MODES[check_border(border)])
