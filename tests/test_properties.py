"""Property-based tests: ``filter_array`` against the NumPy reference, and --color's alpha geometry.

Shapes, kernels, strides, dilations, paddings and biases are drawn by
hypothesis; every expectation comes from tests/reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_pixels
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from reference import correlate

from convfilter.cli import cli
from convfilter.engine.conv import filter_array
from convfilter.errors import ImageTooSmallError
from convfilter.io.color import resample_alpha


@st.composite
def convolutions(draw, max_side: int = 12):
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    kh = draw(st.integers(1, 5))
    kw = draw(st.integers(1, 5))
    values = st.floats(-100, 100, allow_nan=False, width=32)
    image = draw(arrays(np.float32, (h, w), elements=values))
    kernel = draw(arrays(np.float64, (kh, kw), elements=st.floats(-4, 4, allow_nan=False)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    bias = draw(st.floats(-10, 10, allow_nan=False))
    return image, kernel, stride, padding, dilation, bias


def fits(shape, kernel_shape, dilation) -> bool:
    return all(n >= d * (k - 1) + 1 for n, k, d in zip(shape, kernel_shape, dilation, strict=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(convolutions())
def test_filter_array_matches_the_reference(case):
    image, kernel, stride, padding, dilation, bias = case
    if padding == "valid" and not fits(image.shape, kernel.shape, dilation):
        with pytest.raises(ImageTooSmallError):
            filter_array(image, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
        return
    got = filter_array(image, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    want = correlate(image, kernel, stride, padding, dilation, bias)
    assert got.shape == want.shape
    # float32 accumulation: allow a relative error on the sum of magnitudes involved
    scale = correlate(np.abs(image), np.abs(kernel), stride, padding, dilation) + abs(bias) + 1
    assert np.all(np.abs(got - want) <= 1e-5 * scale)


def sampled_indices(
    n: int, k: int, s: int, d: int, padding: str, axis_len_other: int, axis: int
) -> np.ndarray:
    """Which input row (axis 0) or column (axis 1) the kernel's middle tap reads, via the reference.

    Correlating an image of ``index + 1`` with a one-hot kernel at the middle tap
    returns ``index + 1`` of the pixel under that tap, 0 where it falls in the padding.
    """
    ramp = np.arange(1, n + 1, dtype=np.float64)
    if axis == 0:
        img, onehot = np.repeat(ramp[:, None], axis_len_other, 1), np.zeros((k, 1))
        onehot[(k - 1) // 2, 0] = 1
        got = correlate(img, onehot, (s, 1), padding, (d, 1))[:, 0]
    else:
        img, onehot = np.repeat(ramp[None, :], axis_len_other, 0), np.zeros((1, k))
        onehot[0, (k - 1) // 2] = 1
        got = correlate(img, onehot, (1, s), padding, (1, d))[0]
    return np.clip(got.astype(int) - 1, 0, n - 1)  # a tap in the padding takes the nearest edge pixel


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kernel_shape=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_alpha_is_sampled_under_the_middle_tap(h, w, kernel_shape, stride, dilation, padding, seed):
    assume(padding == "same" or fits((h, w), kernel_shape, dilation))
    alpha = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    rows = sampled_indices(h, kernel_shape[0], stride[0], dilation[0], padding, w, 0)
    cols = sampled_indices(w, kernel_shape[1], stride[1], dilation[1], padding, h, 1)
    got = resample_alpha(alpha, kernel_shape, stride, padding, dilation)
    np.testing.assert_array_equal(got, alpha[rows[:, None], cols[None, :]])


@pytest.mark.parametrize(
    ("args", "stride", "padding", "dilation", "size"),
    [
        (["--stride", "2", "3"], (2, 3), "valid", (1, 1), 3),
        (["--padding", "same", "--stride", "2", "2", "--dilation", "2", "1"], (2, 2), "same", (2, 1), 3),
        (["--size", "4", "--padding", "same", "--dilation", "3", "3"], (1, 1), "same", (3, 3), 4),
    ],
)
def test_color_rgba_through_the_cli(tmp_path, args, stride, padding, dilation, size):
    rng = np.random.default_rng(11)
    rgba = rng.integers(0, 256, (17, 14, 4), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(rgba).save(source)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["blur", str(source), str(out), "--color", "--range", "clip", *args])
    assert res.exit_code == 0, res.output
    with Image.open(out) as img:
        assert img.mode == "RGBA"
        written = np.asarray(img).astype(np.float64)
    kernel = np.full((size, size), 1 / size**2)
    for c in range(3):
        want = correlate(rgba[..., c], kernel, stride, padding, dilation)
        assert written.shape[:2] == want.shape
        assert_pixels(written[..., c], want)
    rows = sampled_indices(17, size, stride[0], dilation[0], padding, 14, 0)
    cols = sampled_indices(14, size, stride[1], dilation[1], padding, 17, 1)
    np.testing.assert_array_equal(written[..., 3], rgba[..., 3][rows[:, None], cols[None, :]])


def test_alpha_never_leaks_into_the_colours(tmp_path):
    rgba = np.zeros((9, 9, 4), np.uint8)
    rgba[..., :3] = (40, 120, 200)
    rgba[..., 3] = np.random.default_rng(5).integers(0, 256, (9, 9))  # wild alpha, flat colour
    source = tmp_path / "in.png"
    Image.fromarray(rgba).save(source)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["gaussian", str(source), str(out), "--color", "--padding", "valid"])
    assert res.exit_code == 0, res.output
    written = np.asarray(Image.open(out))
    assert (written[..., :3] == (40, 120, 200)).all()
