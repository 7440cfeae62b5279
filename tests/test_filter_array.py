"""filter_array against the independent NumPy reference, for every kernel and setting."""

from __future__ import annotations

import numpy as np
import pytest
from reference import correlate

from convfilter import ImageTooSmallError, filter_array
from convfilter.ops.kernels import KERNELS

# Every named kernel, with odd and even sizes where the kernel takes a size.
KERNEL_CASES = [
    ("blur", {"size": 2}),
    ("blur", {"size": 3}),
    ("blur", {"size": 4, "normalize": False}),
    ("gaussian", {"size": 4, "sigma": 1.5}),
    ("gaussian", {"size": 5}),
    ("identity", {"size": 1}),
    ("identity", {"size": 3}),
    ("random", {"size": 2, "seed": 1}),
    ("random", {"size": 3, "seed": 2}),
    ("edge", {}),
    ("sobel-x", {}),
    ("sobel-y", {}),
    ("sharpen", {}),
    ("emboss", {}),
]
STRIDES = [(1, 1), (2, 2), (3, 1), (1, 3), (2, 3)]
DILATIONS = [(1, 1), (2, 2), (1, 3)]
PADDINGS = ["valid", "same"]
# Non-square images, taller and wider.
IMAGES = {
    "tall": np.random.default_rng(0).uniform(0, 255, (23, 16)),
    "wide": np.random.default_rng(1).uniform(0, 255, (15, 26)),
}


def _close(actual: np.ndarray, expected: np.ndarray, kernel: np.ndarray) -> None:
    # float32 inside the model: allow 1e-5 of the largest possible output magnitude.
    scale = 255.0 * np.abs(kernel).sum()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dilation", DILATIONS, ids=lambda d: f"d{d[0]}x{d[1]}")
@pytest.mark.parametrize("stride", STRIDES, ids=lambda s: f"s{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "name,params", KERNEL_CASES, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in KERNEL_CASES]
)
def test_named_kernel_matches_reference(name, params, stride, dilation, padding):
    kernel = KERNELS[name].grid(**params)
    image = IMAGES["tall" if (stride[0] + dilation[1]) % 2 else "wide"]
    result = filter_array(image, kernel, stride=stride, padding=padding, dilation=dilation)
    assert result.dtype == np.float32
    _close(result, correlate(image, kernel, stride, padding, dilation), kernel)


@pytest.mark.parametrize("bias", [0.0, 2.5, -100.0])
def test_bias_is_added(bias):
    image = IMAGES["wide"]
    kernel = KERNELS["sobel-x"].grid()
    result = filter_array(image, kernel, padding="same", bias=bias)
    _close(result, correlate(image, kernel, padding="same", bias=bias), kernel)


def test_cross_correlation_does_not_flip_the_kernel():
    # An impulse at (2, 2) through a 3x3 kernel, 'same': cross-correlation places
    # k[a, b] at out[2 - (a - 1), 2 - (b - 1)], i.e. the kernel appears rotated 180 degrees.
    image = np.zeros((5, 5))
    image[2, 2] = 1.0
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    result = filter_array(image, kernel, padding="same")
    np.testing.assert_array_equal(result[1:4, 1:4], kernel[::-1, ::-1])


def test_hand_computed_stride_and_dilation_together():
    # 5x5 ramp, 2x2 kernel [[1, 0], [0, -1]], stride 2, dilation 2, 'valid':
    # out[i, j] = x[2i, 2j] - x[2i + 2, 2j + 2] = -(2*5 + 2) = -12 everywhere; output 2x2.
    image = np.arange(25.0).reshape(5, 5)
    result = filter_array(image, [[1, 0], [0, -1]], stride=2, dilation=2)
    np.testing.assert_array_equal(result, np.full((2, 2), -12.0))


def test_accepts_integer_and_float64_inputs():
    image = np.arange(30).reshape(5, 6)
    result = filter_array(image, np.ones((2, 2)), stride=(1, 2))
    np.testing.assert_array_equal(result, correlate(image, np.ones((2, 2)), (1, 2)))


def test_same_model_serves_any_image_size():
    kernel = KERNELS["blur"].grid(size=3)
    for shape in [(3, 3), (10, 4), (4, 25)]:
        image = np.random.default_rng(shape[1]).uniform(0, 1, shape)
        _close(filter_array(image, kernel), correlate(image, kernel), kernel)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"stride": (0, 1)},
            "The `stride` argument must be a tuple of 2 integers >= 1. Received: stride=(0, 1)",
        ),
        ({"dilation": 0}, "The `dilation` argument must be a tuple of 2 integers >= 1. Received: dilation=0"),
        (
            {"padding": "full-ish"},
            "The `padding` argument must be one of 'valid', 'same', 'full' or numbers (N, PY,PX or TOP,BOTTOM,LEFT,RIGHT, each 0..65536). Received: padding='full-ish'",
        ),
        ({"bias": float("nan")}, "bias must be a finite number, got nan"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError) as info:
        filter_array(np.zeros((5, 5)), np.ones((3, 3)), **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "image,kernel,message",
    [
        (np.zeros((5,)), np.ones((3, 3)), "image must be a non-empty 2-D array, got shape (5,)"),
        (np.zeros((0, 4)), np.ones((3, 3)), "image must be a non-empty 2-D array, got shape (0, 4)"),
        (np.zeros((5, 5)), np.ones((0, 3)), "kernel must be a non-empty 2-D array, got shape (0, 3)"),
        (
            np.zeros((5, 5)),
            [[1, np.inf]],
            "kernel values must be finite (no NaN or infinity)",
        ),
        (np.zeros((5, 5)), np.ones((102, 1)), "kernel must be at most 101x101, got 102x1"),
    ],
)
def test_bad_arrays_raise_value_error(image, kernel, message):
    with pytest.raises(ValueError) as info:
        filter_array(image, kernel)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "shape,kwargs,message",
    [
        ((2, 2), {}, "image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding"),
        (
            (6, 9),
            {"dilation": (3, 1)},
            "image is 6x9 but the 3x3 kernel with dilation 3x1 needs at least 7x3 pixels under 'valid' padding",
        ),
    ],
)
def test_image_too_small_for_valid(shape, kwargs, message):
    with pytest.raises(ImageTooSmallError) as info:
        filter_array(np.zeros(shape), np.ones((3, 3)), **kwargs)
    assert str(info.value) == message


def test_same_padding_accepts_images_smaller_than_the_kernel():
    image = np.array([[1.0, 2.0], [3.0, 4.0]])
    kernel = np.ones((5, 5))
    np.testing.assert_array_equal(filter_array(image, kernel, padding="same"), np.full((2, 2), 10.0))
