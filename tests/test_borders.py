"""'full' padding, --border modes and --convolve through filter_array (the real Keras Conv2D).

Two kinds of expectations, neither computed by convfilter:
* tables of small cases whose outputs were worked out by hand (the kernels
  1, 10, 100... make every output a number whose digits are the inputs it saw);
* every border mode against numpy.pad + the independent NumPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import correlate, tf_same_padding

from convfilter import filter_array
from convfilter.ops.geometry import output_shape, padding_amounts

ROW = [[1, 2, 3, 4]]
K3 = [[1, 10, 100]]
K2 = [[1, 10]]
SQUARE = [[1, 2], [3, 4]]
K22 = [[1, 10], [100, 1000]]

HAND_CASES = [
    # (image, kernel, options, expected)
    # 1-D, 'valid'
    (ROW, K3, {}, [[321, 432]]),
    # 1-D, 'same', odd kernel: pad 1 / 1
    (ROW, K3, {"padding": "same"}, [[210, 321, 432, 43]]),
    (ROW, K3, {"padding": "same", "border": "zero"}, [[210, 321, 432, 43]]),
    (ROW, K3, {"padding": "same", "border": "reflect"}, [[212, 321, 432, 343]]),
    (ROW, K3, {"padding": "same", "border": "symmetric"}, [[211, 321, 432, 443]]),
    (ROW, K3, {"padding": "same", "border": "replicate"}, [[211, 321, 432, 443]]),
    (ROW, K3, {"padding": "same", "border": "wrap"}, [[214, 321, 432, 143]]),
    # 1-D, 'same', even kernel: TensorFlow puts the single padding pixel after
    (ROW, K2, {"padding": "same"}, [[21, 32, 43, 4]]),
    (ROW, K2, {"padding": "same", "border": "reflect"}, [[21, 32, 43, 34]]),
    (ROW, K2, {"padding": "same", "border": "symmetric"}, [[21, 32, 43, 44]]),
    (ROW, K2, {"padding": "same", "border": "replicate"}, [[21, 32, 43, 44]]),
    (ROW, K2, {"padding": "same", "border": "wrap"}, [[21, 32, 43, 14]]),
    # 1-D, 'full': pad k-1 = 2 on both sides
    (ROW, K3, {"padding": "full"}, [[100, 210, 321, 432, 43, 4]]),
    (ROW, K3, {"padding": "full", "border": "reflect"}, [[123, 212, 321, 432, 343, 234]]),
    (ROW, K3, {"padding": "full", "border": "symmetric"}, [[112, 211, 321, 432, 443, 344]]),
    (ROW, K3, {"padding": "full", "border": "replicate"}, [[111, 211, 321, 432, 443, 444]]),
    (ROW, K3, {"padding": "full", "border": "wrap"}, [[143, 214, 321, 432, 143, 214]]),
    # stride 2, 'same': out ceil(4/2) = 2, pad 0 / 1
    (ROW, K3, {"padding": "same", "stride": (1, 2)}, [[321, 43]]),
    (ROW, K3, {"padding": "same", "stride": (1, 2), "border": "reflect"}, [[321, 343]]),
    (ROW, K3, {"padding": "same", "stride": (1, 2), "border": "wrap"}, [[321, 143]]),
    # stride 2, 'full': 8 padded values, windows at 0, 2, 4
    (ROW, K3, {"padding": "full", "stride": (1, 2)}, [[100, 321, 43]]),
    # dilation 2, 'same': the kernel spans 5, pad 2 / 2
    (ROW, K3, {"padding": "same", "dilation": (1, 2)}, [[310, 420, 31, 42]]),
    (ROW, K3, {"padding": "same", "dilation": (1, 2), "border": "reflect"}, [[313, 422, 331, 242]]),
    # dilation 2, 'full': pad d(k-1) = 4 on both sides, 4 + 4 + 4 - 5 + 1 = 8 outputs
    (ROW, K3, {"padding": "full", "dilation": (1, 2)}, [[100, 200, 310, 420, 31, 42, 3, 4]]),
    # stride 2 with dilation 2 (Keras refuses it; the definition gives this): pad 1 / 2
    (ROW, K3, {"padding": "same", "stride": (1, 2), "dilation": (1, 2)}, [[420, 42]]),
    (ROW, K3, {"padding": "same", "stride": (1, 2), "dilation": (1, 2), "border": "wrap"}, [[424, 242]]),
    # --convolve flips the kernel: 100, 10, 1
    (ROW, K3, {"padding": "same", "convolve": True}, [[12, 123, 234, 340]]),
    (ROW, K3, {"convolve": True}, [[123, 234]]),
    ([[1, 1]], [[1, 2]], {"padding": "full", "convolve": True}, [[1, 3, 2]]),
    ([[1, 2, 3]], [[1, 1]], {"padding": "full", "convolve": True}, [[1, 3, 5, 3]]),
    ([[1, 2, 3]], [[0, 1]], {"padding": "full", "convolve": True}, [[0, 1, 2, 3]]),
    # the difference example
    ([[2, 0, 1, 4]], [[1, -1]], {}, [[2, -1, -3]]),
    # a column: the same numbers down the rows
    (
        [[1], [2], [3], [4]],
        [[1], [10], [100]],
        {"padding": "same", "border": "reflect"},
        [[212], [321], [432], [343]],
    ),
    (
        [[1], [2], [3], [4]],
        [[1], [10], [100]],
        {"padding": "full", "border": "wrap"},
        [[143], [214], [321], [432], [143], [214]],
    ),
    # 2-D
    (SQUARE, K22, {}, [[4321]]),
    (SQUARE, K22, {"padding": "same"}, [[4321, 402], [43, 4]]),
    (SQUARE, K22, {"padding": "same", "border": "reflect"}, [[4321, 3412], [2143, 1234]]),
    (SQUARE, K22, {"padding": "same", "border": "symmetric"}, [[4321, 4422], [4343, 4444]]),
    (SQUARE, K22, {"padding": "same", "border": "replicate"}, [[4321, 4422], [4343, 4444]]),
    (SQUARE, K22, {"padding": "same", "border": "wrap"}, [[4321, 3412], [2143, 1234]]),
    (SQUARE, K22, {"padding": "full"}, [[1000, 2100, 200], [3010, 4321, 402], [30, 43, 4]]),
    (
        SQUARE,
        K22,
        {"padding": "full", "border": "wrap"},
        [[1234, 2143, 1234], [3412, 4321, 3412], [1234, 2143, 1234]],
    ),
    (
        SQUARE,
        K22,
        {"padding": "full", "border": "replicate"},
        [[1111, 2121, 2222], [3311, 4321, 4422], [3333, 4343, 4444]],
    ),
    (SQUARE, K22, {"convolve": True}, [[1000 + 200 + 30 + 4]]),
    (SQUARE, K22, {"padding": "full", "convolve": True}, [[1, 12, 20], [103, 1234, 2040], [300, 3400, 4000]]),
    # 2-D stride (rows, columns)
    ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1]], {"stride": (2, 1)}, [[1, 2, 3], [7, 8, 9]]),
    ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1], [10]], {"stride": (1, 2)}, [[41, 63], [74, 96]]),
]


@pytest.mark.parametrize("image,kernel,options,expected", HAND_CASES)
def test_hand_computed(image, kernel, options, expected):
    result = filter_array(np.array(image, dtype=float), np.array(kernel, dtype=float), **options)
    np.testing.assert_array_equal(result, np.array(expected, dtype=np.float32))


def test_full_convolve_2d_is_the_textbook_full_convolution():
    # out[i, j] = sum x[a, b] * k[i - a, j - b]: written out directly from that definition.
    x = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 4.0]])
    k = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])
    expected = np.zeros((x.shape[0] + k.shape[0] - 1, x.shape[1] + k.shape[1] - 1))
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            expected[a : a + k.shape[0], b : b + k.shape[1]] += x[a, b] * k
    np.testing.assert_allclose(filter_array(x, k, padding="full", convolve=True), expected, rtol=0, atol=1e-5)


NUMPY_MODE = {
    "zero": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
}
COMBOS = [
    # (kernel shape, stride, dilation)
    ((3, 3), (1, 1), (1, 1)),
    ((2, 3), (2, 1), (1, 1)),
    ((1, 4), (1, 3), (1, 2)),
    ((3, 2), (1, 1), (2, 1)),
    ((3, 3), (2, 2), (2, 2)),
    ((5, 4), (3, 2), (1, 1)),
]


def _reference_padding(n: int, k: int, s: int, d: int, padding: str) -> tuple[int, int]:
    if padding == "full":
        return d * (k - 1), d * (k - 1)
    return tf_same_padding(n, k, s, d)


@pytest.mark.parametrize("padding", ["same", "full"])
@pytest.mark.parametrize("border", ["zero", "reflect", "symmetric", "replicate", "wrap"])
def test_every_border_matches_numpy_pad_and_reference(border, padding):
    rng = np.random.default_rng(len(border) * 7 + len(padding))
    image = rng.uniform(-1, 1, (7, 9))
    for kernel_shape, stride, dilation in COMBOS:
        kernel = rng.uniform(-1, 1, kernel_shape)
        pads = [
            _reference_padding(image.shape[axis], kernel_shape[axis], stride[axis], dilation[axis], padding)
            for axis in (0, 1)
        ]
        padded = np.pad(image, pads, mode=NUMPY_MODE[border])
        expected = correlate(padded, kernel, stride, "valid", dilation)
        result = filter_array(image, kernel, stride=stride, padding=padding, dilation=dilation, border=border)
        assert result.shape == expected.shape
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-5 * np.abs(kernel).sum())


@pytest.mark.parametrize("border", ["reflect", "symmetric", "replicate", "wrap"])
def test_padding_wider_than_the_image_repeats_like_numpy_pad(border):
    image = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    kernel = np.arange(35.0).reshape(5, 7) / 10
    padded = np.pad(image, ((4, 4), (6, 6)), mode=NUMPY_MODE[border])
    expected = correlate(padded, kernel)
    np.testing.assert_allclose(
        filter_array(image, kernel, padding="full", border=border), expected, atol=1e-3
    )


def test_zero_same_border_is_kerass_own_padding():
    rng = np.random.default_rng(3)
    image, kernel = rng.uniform(0, 1, (6, 5)), rng.uniform(-1, 1, (4, 3))
    expected = correlate(image, kernel, (2, 1), "same")
    np.testing.assert_allclose(
        filter_array(image, kernel, stride=(2, 1), padding="same"), expected, atol=1e-5
    )


def test_reflect_removes_the_dark_frame_of_a_zero_padded_blur():
    flat = np.full((6, 6), 200.0)
    box = np.full((3, 3), 1 / 9)
    zero = filter_array(flat, box, padding="same")
    assert zero[0, 0] == pytest.approx(200 * 4 / 9, abs=1e-3)
    for border in ("reflect", "symmetric", "replicate", "wrap"):
        np.testing.assert_allclose(filter_array(flat, box, padding="same", border=border), flat, atol=1e-3)


@pytest.mark.parametrize(
    "n,k,s,d,expected_length,expected_pads",
    [
        (4, 3, 1, 1, 6, (2, 2)),  # n + k - 1
        (1, 2, 1, 1, 2, (1, 1)),
        (4, 3, 2, 1, 3, (2, 2)),  # floor((4 + 2 - 1) / 2) + 1
        (4, 3, 1, 2, 8, (4, 4)),  # dilation spreads the kernel to 5: 4 + 5 - 1
        (10, 1, 3, 1, 4, (0, 0)),
    ],
)
def test_full_geometry(n, k, s, d, expected_length, expected_pads):
    assert output_shape((n, 1), (k, 1), (s, 1), "full", (d, 1))[0] == expected_length
    assert padding_amounts(n, k, s, d, "full") == expected_pads


@pytest.mark.parametrize(
    "options,message",
    [
        (
            {"border": "mirror"},
            "The `border` argument must be one of 'zero', 'reflect', 'symmetric', 'replicate', 'wrap'. "
            "Received: border='mirror'",
        ),
        (
            {"border": "reflect"},
            "border 'reflect' has no effect with padding 'valid' (nothing is padded); use padding 'same' or 'full'",
        ),
        (
            {"padding": "circular"},
            "The `padding` argument must be one of 'valid', 'same', 'full' or numbers (N, PY,PX or TOP,BOTTOM,LEFT,RIGHT, each 0..65536). Received: padding='circular'",
        ),
    ],
)
def test_bad_border_arguments(options, message):
    with pytest.raises(ValueError) as info:
        filter_array(np.zeros((4, 4)), np.ones((3, 3)), **options)
    assert str(info.value) == message


def test_defaults_unchanged_for_existing_callers():
    rng = np.random.default_rng(11)
    image, kernel = rng.uniform(0, 1, (5, 6)), rng.uniform(-1, 1, (3, 3))
    np.testing.assert_allclose(filter_array(image, kernel), correlate(image, kernel), atol=1e-5)
