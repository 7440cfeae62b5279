"""`convfilter pool max|avg` and pool_array: Keras pooling layers against hand numbers and NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import invoke
from PIL import Image

from convfilter.engine.pool import pool_array
from convfilter.errors import ImageTooSmallError


def run(*args):
    """``convfilter pool ARGS`` in-process."""
    return invoke("pool", *args)


def reference_pool(x: np.ndarray, kind: str, size: int, stride: tuple[int, int], padding: str) -> np.ndarray:
    """Pooling from the definition: windows clipped to the image (padding never counts)."""
    h, w = x.shape
    (sy, sx) = stride
    if padding == "same":
        out_h, out_w = math.ceil(h / sy), math.ceil(w / sx)
        top = max((out_h - 1) * sy + size - h, 0) // 2
        left = max((out_w - 1) * sx + size - w, 0) // 2
    else:
        out_h, out_w = (h - size) // sy + 1, (w - size) // sx + 1
        top = left = 0
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * sy - top, j * sx - left
            window = x[max(r0, 0) : r0 + size, max(c0, 0) : c0 + size]
            out[i, j] = window.max() if kind == "max" else window.mean()
    return out


GRID = np.arange(1.0, 26.0).reshape(5, 5)  # 1..25, row by row


@pytest.mark.parametrize(
    "kind,size,options,expected",
    [
        ("max", 2, {}, [[7, 9], [17, 19]]),
        ("avg", 2, {}, [[4, 6], [14, 16]]),
        ("max", 2, {"padding": "same"}, [[7, 9, 10], [17, 19, 20], [22, 24, 25]]),
        # the window over the padded last column/row averages only the real pixels
        ("avg", 2, {"padding": "same"}, [[4, 6, 7.5], [14, 16, 17.5], [21.5, 23.5, 25]]),
        ("max", 3, {"stride": (1, 1)}, [[13, 14, 15], [18, 19, 20], [23, 24, 25]]),
        ("avg", 3, {"stride": (2, 2)}, [[7, 9], [17, 19]]),
        ("max", 1, {"stride": (2, 3)}, [[1, 4], [11, 14], [21, 24]]),
        ("avg", 5, {}, [[13]]),
    ],
)
def test_hand_computed(kind, size, options, expected):
    np.testing.assert_allclose(pool_array(GRID, kind, size, **options), np.array(expected), rtol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_against_numpy(kind, padding):
    x = np.random.default_rng(4).normal(0, 10, (9, 11))
    for size, stride in [(2, (2, 2)), (3, (3, 3)), (3, (1, 2)), (4, (2, 3))]:
        result = pool_array(x, kind, size, stride=stride, padding=padding)
        np.testing.assert_allclose(result, reference_pool(x, kind, size, stride, padding), atol=1e-4)


def test_library_errors():
    with pytest.raises(ImageTooSmallError) as info:
        pool_array(np.ones((2, 3)), "max", 3)
    assert str(info.value) == "image is 2x3 but the 3x3 pool needs at least 3x3 pixels under 'valid' padding"
    with pytest.raises(ValueError) as info:
        pool_array(np.ones((4, 4)), "min", 2)
    assert str(info.value) == "The `kind` argument must be one of 'max', 'avg'. Received: kind='min'"
    with pytest.raises(ValueError) as info:
        pool_array(np.ones((4, 4)), "max", 2, padding="full")
    assert (
        str(info.value) == "The `padding` argument must be one of 'valid', 'same'. Received: padding='full'"
    )


def test_cli_matrix(tmp_path):
    (tmp_path / "in.csv").write_text("\n".join(",".join(str(int(v)) for v in row) for row in GRID) + "\n")
    out = tmp_path / "out.csv"
    result = run("avg", tmp_path / "in.csv", out, "--size", 2, "--padding", "same")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "4,6,7.5\n14,16,17.5\n21.5,23.5,25\n"


def test_cli_image_stride_defaults_to_size(tmp_path, gray_png):
    out = tmp_path / "out.png"
    result = run("max", gray_png, out, "--size", 3, "-v")
    assert result.exit_code == 0, result.output
    pixels = np.asarray(Image.open(gray_png), dtype=float)
    expected = reference_pool(pixels, "max", 3, (3, 3), "valid")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected.astype(np.uint8))
    assert (
        result.stderr.splitlines()[1]
        == "layer:   MaxPooling2D(pool_size=(3, 3), strides=(3, 3), padding='valid')"
    )
    avg = tmp_path / "avg.png"
    assert run("avg", gray_png, avg, "--size", 2, "--stride", 1, 2).exit_code == 0
    expected = np.rint(reference_pool(pixels, "avg", 2, (1, 2), "valid"))
    np.testing.assert_array_equal(np.asarray(Image.open(avg), dtype=float), expected)


@pytest.mark.parametrize(
    "args,message,code",
    [
        (["min", "IN", "OUT"], "Error: Invalid value for 'max|avg': 'min' is not one of 'max', 'avg'.", 2),
        (
            ["max", "IN", "OUT", "--size", 0],
            "Error: Invalid value for '--size': 0 is not in the range 1<=x<=101.",
            2,
        ),
        (
            ["max", "IN", "OUT", "--padding", "full"],
            "Error: Invalid value for '--padding': 'full' is not one of 'valid', 'same'.",
            2,
        ),
        (
            ["max", "IN", "OUT", "--size", 4],
            "Error: {inp}: image is 2x3 but the 4x4 pool needs at least 4x4 pixels under 'valid' padding",
            1,
        ),
        (
            ["max", "IN", "OUT", "--depth", 16],
            "Error: {out}: depth applies to image outputs; a matrix file holds raw floats",
            2,
        ),
    ],
)
def test_cli_errors(tmp_path, args, message, code):
    inp, out = tmp_path / "in.csv", tmp_path / "out.csv"
    inp.write_text("1,2,3\n4,5,6\n")
    result = run(*[inp if a == "IN" else out if a == "OUT" else a for a in args])
    assert result.exit_code == code
    assert result.stderr.splitlines()[-1] == message.format(inp=inp, out=out)
    assert not out.exists()
