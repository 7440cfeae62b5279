"""The --range mapping from float results to pixels."""

from __future__ import annotations

import numpy as np
import pytest

from convfilter.io.pixels import finite_bounds, resolve_range, to_pixels
from convfilter.ops.spec import Conv2DSpec


def test_clip_rounds_and_clips():
    values = np.array([[-3.0, 0.4, 0.5, 1.5], [127.49, 254.6, 255.0, 300.0]])
    expected = np.array([[0, 0, 0, 2], [127, 255, 255, 255]], dtype=np.uint8)
    out = to_pixels(values, "clip", in_max=255)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_abs_takes_magnitude_then_clips():
    values = np.array([[-3.0, 3.0, -400.0, 10.6]])
    np.testing.assert_array_equal(to_pixels(values, "abs", in_max=255), [[3, 3, 255, 11]])


def test_rescale_maps_min_max_to_full_range():
    values = np.array([[-10.0, 0.0], [10.0, 30.0]])
    # (v + 10) / 40 * 255 -> 0, 63.75, 127.5, 255
    np.testing.assert_array_equal(to_pixels(values, "rescale", in_max=255), [[0, 64], [128, 255]])


def test_rescale_of_constant_is_zero():
    np.testing.assert_array_equal(to_pixels(np.full((2, 2), 7.0), "rescale", in_max=255), np.zeros((2, 2)))


def test_sixteen_bit_output_scales_from_input_range():
    values = np.array([[0.0, 127.5, 255.0]])
    out = to_pixels(values, "clip", in_max=255, depth=16)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[0, 32768, 65535]])  # 127.5 * 257 = 32767.5 -> 32768 (half to even)


def test_sixteen_bit_input_to_eight_bit_output():
    np.testing.assert_array_equal(to_pixels(np.array([[65535.0, 257.0]]), "clip", in_max=65535), [[255, 1]])


def test_nan_becomes_zero():
    out = to_pixels(np.array([[np.nan, 1.0, 3.0]]), "rescale", in_max=255)
    np.testing.assert_array_equal(out, [[0, 0, 255]])


@pytest.mark.parametrize(
    "kernel,expected",
    [
        (np.full((3, 3), 1 / 9), "clip"),
        (np.array([[0.0, 1.0]]), "clip"),
        (np.array([[-1.0, 2.0]]), "rescale"),
        (np.ones((2, 2)), "rescale"),
    ],
)
def test_auto_resolves_by_kernel(kernel, expected):
    assert resolve_range("auto", Conv2DSpec(kernel)) == expected
    assert resolve_range("abs", Conv2DSpec(kernel)) == "abs"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="The `range` argument must be one of auto, clip, rescale, abs"):
        resolve_range("log", Conv2DSpec(np.ones((1, 1))))


def test_to_pixels_refuses_a_depth_or_mode_it_has_no_rule_for():
    values = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"^The `depth` argument must be 8 or 16. Received: depth=12$"):
        to_pixels(values, "clip", in_max=255, depth=12)
    with pytest.raises(ValueError, match=r"^unknown range mode 'auto'$"):  # resolve 'auto' first
        to_pixels(values, "auto", in_max=255)


def test_finite_bounds_skip_nan_and_infinities():
    assert finite_bounds(np.array([np.nan, -np.inf, 3.5, -2.0, np.inf])) == (-2.0, 3.5)
    assert finite_bounds(np.array([np.nan, np.inf, -np.inf])) == (0.0, 0.0)  # none finite


def test_rescale_with_nothing_finite_is_all_zero():
    values = np.array([[np.nan, np.inf], [-np.inf, np.nan]])
    np.testing.assert_array_equal(to_pixels(values, "rescale", in_max=255), np.zeros((2, 2)))


def test_float32_results_are_scaled_in_float64():
    """A float32 result rescaled or scaled to 16 bits in float32 would round some values the wrong
    way: the arithmetic is float64 (witnesses found by search)."""
    values = np.array([[0.0, 150.9835, 196.93501]], dtype=np.float32)
    reference = (values.astype(np.float64) - 0.0) * (255 / np.float64(values[0, 2]))  # 195.49..., 255
    assert to_pixels(values, "rescale", in_max=255)[0, 1] == np.rint(reference[0, 1]) == 195
    sixteen = np.array([[231.65564]], dtype=np.float32)
    assert (
        to_pixels(sixteen, "clip", in_max=255, depth=16)[0, 0]
        == np.rint(np.float64(sixteen[0, 0]) * 257)
        == 59535
    )
    exact = np.array([[0.5, 1.5, 254.49998]], dtype=np.float32)  # unscaled float32 rounds exactly
    np.testing.assert_array_equal(to_pixels(exact, "clip", in_max=255), [[0, 2, 254]])
    wide = np.array([[1.4999999999, 2.5000000001]])  # float64 results are not narrowed to float32 first
    np.testing.assert_array_equal(to_pixels(wide, "clip", in_max=255), [[1, 3]])
