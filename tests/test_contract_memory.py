"""Bounded memory: a tiled run holds no full-size float copy of the image (NumPy memory, via tracemalloc)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from convfilter.run.single import filter_file

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


@pytest.mark.parametrize(
    "mode, dtype, top",
    [("L", np.uint8, 255), ("I;16", np.uint16, 65535), ("F", np.float32, 1.0)],
)
def test_large_images_are_read_in_bands_with_the_same_pixels(tmp_path, monkeypatch, mode, dtype, top):
    from convfilter.io import images as imageio
    from convfilter.io import modes

    rng = np.random.default_rng(1)
    pixels = (rng.random((97, 61)) * top).astype(dtype)
    source = tmp_path / ("in.tif" if mode == "F" else "in.png")
    Image.fromarray(pixels).save(source)
    assert Image.open(source).mode == mode
    monkeypatch.setattr(modes, "BAND_PIXELS", 500)  # bands of 500 // 4 // 61 = 2 rows
    banded = imageio.read_gray(str(source), keep_dtype=True)
    assert banded.pixels.dtype == dtype
    assert np.array_equal(banded.pixels, pixels)
