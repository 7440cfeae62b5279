"""Bounded memory: a tiled run holds no full-size float copy of the image (NumPy memory, via tracemalloc)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from convfilter.pipeline import filter_file

HEIGHT, WIDTH = 1200, 1000
FLOAT32_COPY = HEIGHT * WIDTH * 4


def _peak(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("range_mode", ["clip", "rescale"])
def test_small_tiles_keep_numpy_memory_below_one_float_copy(tmp_path, range_mode):
    source = tmp_path / "in.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)).save(source)
    kernel = np.full((5, 5), 1 / 25)

    def run(tile_size: int, name: str):
        return lambda: filter_file(
            str(source),
            str(tmp_path / name),
            kernel,
            padding="same",
            range_mode=range_mode,
            tile_size=tile_size,
        )

    run(128, "warm.png")()  # build the model outside the measurement
    tiled = _peak(run(128, "tiled.png"))
    whole = _peak(run(4096, "whole.png"))
    # uint8 input and output (1.2 MB each) plus one 128x128 tile's buffers ...
    assert tiled < FLOAT32_COPY
    # ... while one whole-image tile holds float copies of it (the measurement can tell).
    assert whole > 2 * FLOAT32_COPY
    a = np.asarray(Image.open(tmp_path / "tiled.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "whole.png")))
