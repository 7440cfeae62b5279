"""Output shapes and padding amounts, as tables (the way Keras's conv_test.py keeps them)."""

from __future__ import annotations

import numpy as np
import pytest
from reference import correlate, tf_same_padding

from convfilter import filter_array
from convfilter.ops.geometry import output_shape, padding_amounts, padding_text, standardize_pair

# (input HxW, kernel, stride, padding, dilation, expected output HxW)
SHAPE_CASES = [
    ((512, 512), (3, 3), (2, 1), "valid", (1, 1), (255, 510)),  # the ascent example
    ((512, 512), (3, 3), (1, 1), "same", (1, 1), (512, 512)),
    ((512, 512), (3, 3), (2, 1), "same", (1, 1), (256, 512)),
    ((7, 9), (3, 3), (1, 1), "valid", (1, 1), (5, 7)),
    ((7, 9), (2, 4), (1, 1), "valid", (1, 1), (6, 6)),
    ((7, 9), (3, 3), (3, 2), "valid", (1, 1), (2, 4)),
    ((7, 9), (3, 3), (3, 2), "same", (1, 1), (3, 5)),
    ((7, 9), (3, 3), (1, 1), "valid", (2, 3), (3, 3)),
    ((7, 9), (3, 3), (2, 2), "valid", (2, 2), (2, 3)),
    ((7, 9), (3, 3), (2, 2), "same", (2, 2), (4, 5)),
    ((1, 1), (1, 1), (1, 1), "valid", (1, 1), (1, 1)),
    ((1, 1), (3, 3), (1, 1), "same", (1, 1), (1, 1)),
    ((2, 2), (3, 3), (1, 1), "valid", (1, 1), (0, 0)),
    # numbers (top, bottom, left, right): each axis takes its own pair
    ((7, 9), (3, 3), (1, 1), (0, 1, 2, 0), (1, 1), (6, 9)),
    ((8, 8), (3, 5), (3, 4), (2, 0, 1, 3), (1, 1), (3, 2)),
]


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,expected", SHAPE_CASES)
def test_output_shape_table(shape, kernel, stride, padding, dilation, expected):
    assert output_shape(shape, kernel, stride, padding, dilation) == expected


def test_output_shape_defaults_to_valid_stride_and_dilation_1():
    assert output_shape((7, 9), (3, 2)) == (5, 8)


def test_output_shape_refuses_a_padding_rule_it_does_not_know():
    with pytest.raises(
        ValueError, match=r"^padding must be 'valid', 'same', 'full' or numbers, got 'VALID'$"
    ):
        output_shape((7, 9), (3, 3), padding="VALID")


@pytest.mark.parametrize(
    "padding, text", [("same", "'same'"), ((1, 1, 2, 0), "(1, 1, 2, 0)"), ((0, 0), "(0, 0)")]
)
def test_padding_text_shows_a_rule_quoted_and_numbers_as_a_tuple(padding, text):
    assert padding_text(padding) == text


@pytest.mark.parametrize(
    "shape,kernel,stride,padding,dilation,expected", [c for c in SHAPE_CASES if min(c[-1]) > 0]
)
def test_model_produces_table_shape(shape, kernel, stride, padding, dilation, expected):
    image = np.zeros(shape, dtype=np.float32)
    result = filter_array(image, np.ones(kernel), stride=stride, padding=padding, dilation=dilation)
    assert result.shape == expected


# (n, k, s, d, expected (before, after)) for 'same': the odd pixel goes after.
PADDING_CASES = [
    (5, 3, 1, 1, (1, 1)),
    (5, 4, 1, 1, (1, 2)),
    (5, 2, 1, 1, (0, 1)),
    (6, 3, 2, 1, (0, 1)),
    (7, 3, 2, 1, (1, 1)),
    (7, 3, 1, 2, (2, 2)),
    (8, 3, 3, 2, (1, 2)),
    (4, 1, 3, 1, (0, 0)),
]


@pytest.mark.parametrize("n,k,s,d,expected", PADDING_CASES)
def test_same_padding_split(n, k, s, d, expected):
    assert padding_amounts(n, k, s, d, "same") == expected
    assert tf_same_padding(n, k, s, d) == expected


def test_valid_pads_nothing():
    assert padding_amounts(9, 5, 2, 2, "valid") == (0, 0)


def test_reference_matches_hand_computed_example():
    # A 3x4 ramp, a 2x2 kernel, 'same': the odd row/column of zeros goes bottom/right.
    x = np.arange(12, dtype=float).reshape(3, 4)
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array(
        [
            [0 + 2 + 12 + 20, 1 + 4 + 15 + 24, 2 + 6 + 18 + 28, 3 + 0 + 21 + 0],
            [4 + 10 + 24 + 36, 5 + 12 + 27 + 40, 6 + 14 + 30 + 44, 7 + 0 + 33 + 0],
            [8 + 18 + 0 + 0, 9 + 20 + 0 + 0, 10 + 22 + 0 + 0, 11 + 0 + 0 + 0],
        ]
    )
    np.testing.assert_array_equal(correlate(x, k, padding="same"), expected)
    np.testing.assert_allclose(filter_array(x, k, padding="same"), expected, rtol=1e-6)


@pytest.mark.parametrize("value,expected", [(1, (1, 1)), (3, (3, 3)), ((2, 1), (2, 1)), ([1, 4], (1, 4))])
def test_standardize_pair_accepts(value, expected):
    assert standardize_pair(value, "stride") == expected


@pytest.mark.parametrize("value", [0, (0, 1), (1, 2, 3), (1.5, 1), "22", True, None, (-1, 1)])
def test_standardize_pair_rejects_and_echoes(value):
    with pytest.raises(ValueError) as info:
        standardize_pair(value, "stride")
    assert str(info.value) == (
        f"The `stride` argument must be a tuple of 2 integers >= 1. Received: stride={value!r}"
    )
