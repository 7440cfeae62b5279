"""The blocked engine against the independent NumPy reference and the plain Conv2D."""

from __future__ import annotations

import numpy as np
import pytest
from reference import correlate

from convfilter.engine.conv import filter_array
from convfilter.engine.layouts import block_taps, block_weights, convolve, window_block, window_weights


def _relative_error(result: np.ndarray, expected: np.ndarray, kernel: np.ndarray, scale: float) -> float:
    return float(np.abs(result - expected).max() / (np.abs(kernel).sum() * scale))


CONFIGS = [
    # (h, w, kh, kw, stride, dilation, padding)
    (23, 41, 3, 3, (1, 1), (1, 1), "valid"),
    (23, 41, 3, 3, (1, 1), (1, 1), "same"),
    (30, 37, 5, 4, (2, 3), (1, 1), "same"),
    (30, 37, 3, 2, (1, 1), (2, 3), "valid"),
    (31, 50, 3, 3, (2, 2), (2, 3), "same"),
    (31, 50, 2, 3, (3, 1), (2, 1), "valid"),
    (17, 19, 1, 1, (1, 2), (1, 1), "valid"),
    (40, 70, 7, 7, (1, 1), (1, 1), "same"),
    (40, 70, 15, 15, (1, 1), (1, 1), "valid"),
    (12, 9, 4, 6, (1, 1), (1, 1), "same"),  # narrower than one block
]


@pytest.mark.parametrize("h, w, kh, kw, stride, dilation, padding", CONFIGS)
@pytest.mark.parametrize("engine", ["auto", "plain"])
def test_engines_match_reference(h, w, kh, kw, stride, dilation, padding, engine):
    rng = np.random.default_rng(h * w + kh * kw)
    image = (rng.random((h, w)) * 255).astype(np.float32)
    kernel = rng.standard_normal((kh, kw))
    expected = correlate(image, kernel, stride, padding, dilation, bias=1.5)
    result = filter_array(
        image, kernel, stride=stride, padding=padding, dilation=dilation, bias=1.5, engine=engine
    )
    assert result.dtype == np.float32
    assert result.shape == expected.shape
    assert _relative_error(result, expected, kernel, 255) < 1e-6


def test_blocked_and_plain_agree_to_float32_rounding():
    rng = np.random.default_rng(3)
    image = rng.random((64, 96), dtype=np.float32)
    kernel = rng.standard_normal((5, 5))
    fast = filter_array(image, kernel, padding="same", engine="auto")
    plain = filter_array(image, kernel, padding="same", engine="plain")
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5 * np.abs(kernel).sum())


def test_batch_of_images_matches_each_image():
    rng = np.random.default_rng(4)
    batch = rng.random((3, 20, 33), dtype=np.float32)
    kernel = rng.standard_normal((3, 3))
    result = convolve(batch, kernel, pad_y=(1, 1), pad_x=(1, 1), stride=(1, 2))
    for image, out in zip(batch, result, strict=True):
        expected = correlate(image, kernel, (1, 2), "same", (1, 1))
        assert _relative_error(out, expected, kernel, 1) < 1e-6


def test_integer_pixels_give_the_float_result():
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (25, 40), dtype=np.uint8)
    kernel = rng.standard_normal((3, 3))
    as_uint8 = convolve(pixels[np.newaxis], kernel, pad_y=(1, 1), pad_x=(1, 1))
    as_float = convolve(pixels[np.newaxis].astype(np.float32), kernel, pad_y=(1, 1), pad_x=(1, 1))
    assert np.array_equal(as_uint8, as_float)
    expected = correlate(pixels, kernel, padding="same")
    assert _relative_error(as_uint8[0], expected, kernel, 255) < 1e-6


def test_explicit_padding_is_zeros_around_the_array():
    rng = np.random.default_rng(6)
    image = rng.random((10, 14), dtype=np.float32)
    kernel = rng.standard_normal((3, 4))
    result = convolve(image[np.newaxis], kernel, pad_y=(2, 0), pad_x=(0, 3))[0]
    expected = correlate(np.pad(image, ((2, 0), (0, 3))), kernel)
    assert _relative_error(result, expected, kernel, 1) < 1e-6


@pytest.mark.parametrize("block, stride, dilation", [(2, 1, 1), (4, 2, 1), (3, 1, 2), (8, 3, 2)])
def test_block_weights_compute_the_correlation(block, stride, dilation):
    """The layout's arithmetic, without TensorFlow: a blocked row times the weights is the 1-D correlation."""
    rng = np.random.default_rng(block)
    kernel = rng.standard_normal((1, 3))
    weights = block_weights(kernel, block, stride, dilation)
    taps = block_taps(block, 3, stride, dilation)
    assert weights.shape == (1, taps, block * stride, block)
    row = rng.standard_normal(block * stride * (taps + 4))
    blocks = row.reshape(-1, block * stride)
    out = np.concatenate(
        [np.einsum("qp,qpb->b", blocks[j : j + taps], weights[0]) for j in range(len(blocks) - taps + 1)]
    )
    expected = correlate(row[np.newaxis], kernel, (1, stride), "valid", (1, dilation))[0]
    np.testing.assert_allclose(out[: len(expected)], expected[: len(out)], rtol=1e-6, atol=1e-6)
    assert len(out) >= 1


@pytest.mark.parametrize("width, stride, dilation", [(3, 1, 1), (5, 1, 1), (3, 1, 3), (2, 2, 1), (9, 1, 1)])
def test_window_weights_compute_the_correlation(width, stride, dilation):
    """The windowed layout without TensorFlow: 16-column windows times the weights give the correlation."""
    rng = np.random.default_rng(width * 10 + stride)
    kernel = rng.standard_normal((1, width))
    block = window_block(width, stride, dilation)
    assert block == (16 - dilation * (width - 1) - 1) // stride + 1
    weights = window_weights(kernel, block, 16, stride, dilation)
    row = rng.standard_normal(16 + block * stride * 5)
    windows = np.stack([row[j * block * stride : j * block * stride + 16] for j in range(6)])
    out = np.einsum("jp,pb->jb", windows, weights[0, 0]).ravel()
    expected = correlate(row[np.newaxis], kernel, (1, stride), "valid", (1, dilation))[0]
    assert len(out) <= len(expected)
    np.testing.assert_allclose(out, expected[: len(out)], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels_spoil_only_their_own_windows(bad):
    image = np.ones((12, 40), dtype=np.float32)
    image[5, 20] = bad
    kernel = np.arange(9.0).reshape(3, 3) - 4
    result = filter_array(image, kernel, padding="same")
    with np.errstate(invalid="ignore"):
        expected = correlate(image, kernel, padding="same")
    assert np.array_equal(np.isfinite(result), np.isfinite(expected))
    assert np.isfinite(result).sum() == 12 * 40 - 9
    finite = np.isfinite(expected)
    assert np.abs(result[finite] - expected[finite]).max() < 1e-5


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="The `engine` argument must be one of auto, blocked, plain"):
        filter_array(np.ones((5, 5)), np.ones((3, 3)), engine="fft")


def test_verbose_output_names_the_layout(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from convfilter.cli import cli

    source = tmp_path / "in.png"
    Image.fromarray(np.zeros((30, 40), dtype=np.uint8)).save(source)
    runner = CliRunner()
    narrow = runner.invoke(cli, ["blur", str(source), str(tmp_path / "a.png"), "-v"])
    wide = runner.invoke(cli, ["blur", str(source), str(tmp_path / "b.png"), "-v", "--size", "11"])
    assert narrow.exit_code == wide.exit_code == 0
    # 3 columns: 16-column windows hold 16 - 3 + 1 = 14 outputs.
    assert (
        "engine:  same result, computed fast: rows cut into 16-column windows (16 channels, 14 outputs"
        in (narrow.output)
    )
    # 11 columns: 16-column blocks, each output block reads 2 blocks.
    assert (
        "Conv2D(16, (11, 2), strides=(1, 1), dilation_rate=(1, 1)) with block-Toeplitz weights" in wide.output
    )


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_a_result_survives_the_next_call_reusing_the_input_buffer(bias):
    """1x1 kernels give an output shaped like the reused input buffer: it must not be shared."""
    image = np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64)
    first = convolve(image, np.array([[2.0]]), bias=bias)
    second = convolve(np.ones_like(image), np.array([[2.0]]), bias=bias)
    assert np.array_equal(first[0], 2 * image[0] + bias)
    assert (second == 2 + bias).all()


@pytest.mark.parametrize("kernel_shape, pad_y", [((3, 3), (1, 1)), ((5, 5), (9, 30)), ((7, 7), (40, 0))])
def test_buffers_filled_by_row_bands_in_parallel(monkeypatch, kernel_shape, pad_y):
    """Large buffers are filled by one thread per core; bands may lie wholly in the padding."""
    from convfilter.engine import layouts as engine

    monkeypatch.setattr(engine, "PARALLEL_FILL_FLOATS", 0)
    rng = np.random.default_rng(sum(pad_y))
    image = rng.integers(0, 256, (37, 45), dtype=np.uint8)
    kernel = rng.standard_normal(kernel_shape)
    result = convolve(image[np.newaxis], kernel, pad_y=pad_y, pad_x=(2, 3))[0]
    expected = correlate(np.pad(image.astype(float), (pad_y, (2, 3))), kernel)
    assert result.shape == expected.shape
    assert np.abs(result - expected).max() < 1e-6 * np.abs(kernel).sum() * 255


@pytest.mark.parametrize("engine", ["auto", "plain"])
@pytest.mark.parametrize(
    "kernel_shape, stride, dilation, padding",
    [((3, 3), (7, 5), (1, 1), "valid"), ((2, 3), (9, 1), (2, 1), "same"), ((1, 1), (40, 40), (1, 1), "same")],
)
def test_strides_wider_than_the_window_match_reference(engine, kernel_shape, stride, dilation, padding):
    """Windows that lie apart are gathered first; the sums stay the reference's."""
    rng = np.random.default_rng(sum(stride))
    image = rng.integers(0, 256, (41, 53)).astype(np.float32)
    kernel = rng.standard_normal(kernel_shape)
    result = filter_array(image, kernel, stride=stride, padding=padding, dilation=dilation, engine=engine)
    expected = correlate(image, kernel, stride, padding, dilation)
    assert result.shape == expected.shape
    assert np.abs(result - expected).max() < 1e-5 * np.abs(kernel).sum() * 255


def test_a_huge_stride_costs_what_the_output_needs():
    """A 1x1 output of a 512x512 image: the blocked weights no longer grow with the stride."""
    import tracemalloc

    image = np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)
    tracemalloc.start()
    result = filter_array(image, np.full((3, 3), 1 / 9), stride=(1_000_000, 1_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.shape == (1, 1)
    assert result[0, 0] == pytest.approx(image[:3, :3].mean(), rel=1e-6)
    assert peak < 50 * 2**20
