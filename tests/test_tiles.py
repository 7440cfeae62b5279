"""Tiled filtering: the whole image's sums (to float32 rounding), with small tiles on moderate arrays."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_pixels
from PIL import Image
from reference import correlate
from reference_transpose import scatter_add

from convfilter import BankSpec, TransposeSpec
from convfilter.cli import cli
from convfilter.engine.conv import filter_batch
from convfilter.engine.layouts import convolve
from convfilter.engine.tiles import border_index, check_tile_size, filter_tiled, filter_tiles, plan_tiles
from convfilter.errors import ArgumentError
from convfilter.ops.borders import pad_batch
from convfilter.ops.geometry import padding_amounts
from convfilter.ops.spec import Conv2DSpec
from convfilter.run.single import filter_file

CONFIGS = [
    # (kernel shape, stride, dilation, padding)
    ((3, 3), (1, 1), (1, 1), "same"),
    ((5, 4), (2, 3), (1, 1), "same"),
    ((3, 3), (2, 2), (3, 2), "same"),
    ((4, 2), (3, 1), (1, 2), "valid"),
    ((7, 7), (1, 1), (1, 1), "valid"),
]


def _assemble(image, kernel, stride, padding, dilation, tile_size, engine="auto"):
    shape = None
    parts = []
    op = Conv2DSpec(kernel, stride, padding, dilation, 0.25)
    for tile, values in filter_tiles(image[np.newaxis], op, tile_size=tile_size, engine=engine):
        parts.append((tile, np.array(values[0])))
        shape = (
            (tile.rows.stop, tile.cols.stop)
            if shape is None
            else np.maximum(shape, (tile.rows.stop, tile.cols.stop))
        )
    out = np.full(tuple(shape), np.nan, dtype=np.float32)
    for tile, values in parts:
        assert np.isnan(out[tile.rows, tile.cols]).all(), "tiles overlap"
        out[tile.rows, tile.cols] = values
    return out, len(parts)


def assert_rounding_equal(tiled, whole, kernel):
    """Equal up to float32 rounding: a few ulps of the largest sum the kernel can make of 8-bit pixels.

    The sums are the same products; but oneDNN picks its kernel (and the order of
    additions) by the shape it is given, so on some CPUs (seen on AMD EPYC) a tile
    rounds the last bit differently from the whole image.
    """
    assert tiled.shape == whole.shape
    ulps = 4 * np.finfo(np.float32).eps * (np.abs(kernel).sum() * 255 + 1)
    assert np.abs(tiled.astype(np.float64) - whole).max() <= ulps


@pytest.mark.parametrize("kernel_shape, stride, dilation, padding", CONFIGS)
@pytest.mark.parametrize("engine", ["auto", "plain"])
def test_tiles_equal_the_whole_image(kernel_shape, stride, dilation, padding, engine):
    """Both engines: the same sums, equal to float32 rounding (the plain layer to a looser bound)."""
    rng = np.random.default_rng(sum(kernel_shape) + stride[0])
    image = rng.integers(0, 256, (77, 101), dtype=np.uint8)
    kernel = rng.standard_normal(kernel_shape)
    pad_y = padding_amounts(77, kernel_shape[0], stride[0], dilation[0], padding)
    pad_x = padding_amounts(101, kernel_shape[1], stride[1], dilation[1], padding)
    whole = convolve(
        image[np.newaxis],
        kernel,
        stride=stride,
        dilation=dilation,
        pad_y=pad_y,
        pad_x=pad_x,
        bias=0.25,
        engine=engine,
    )[0]
    tiled, count = _assemble(image, kernel, stride, padding, dilation, 16, engine)
    assert count > 4
    assert tiled.shape == whole.shape
    if engine == "auto":
        assert_rounding_equal(tiled, whole, kernel)
    else:
        np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5 * np.abs(kernel).sum() * 255)
    expected = correlate(image, kernel, stride, padding, dilation, 0.25)
    assert np.abs(tiled - expected).max() < 1e-6 * np.abs(kernel).sum() * 255


def test_plan_covers_the_output_once_with_aligned_columns():
    # A 3-wide kernel runs in 16-column windows of 14 outputs: tile columns step by 28 (>= 20).
    tiles = plan_tiles((100, 130), Conv2DSpec(np.ones((3, 3)), padding="same"), tile_size=20)
    covered = np.zeros((100, 130), dtype=int)
    for tile in tiles:
        covered[tile.rows, tile.cols] += 1
        assert tile.cols.start % 28 == 0
        assert tile.rows.stop - tile.rows.start <= 20
    assert (covered == 1).all()
    # A tile inside the image reads its rows plus a one-pixel halo and needs no zeros.
    inner = next(t for t in tiles if t.rows.start == 20 and t.cols.start == 28)
    assert (inner.in_rows, inner.in_cols) == (slice(19, 41), slice(27, 57))
    assert (inner.pad_y, inner.pad_x) == ((0, 0), (0, 0))
    corner = tiles[0]
    assert (corner.pad_y, corner.pad_x) == ((1, 0), (1, 0))


def test_halo_starts_on_the_stride_grid():
    tiles = plan_tiles((90, 90), Conv2DSpec(np.ones((5, 5)), stride=(3, 2)), tile_size=16)
    for tile in tiles:
        assert tile.in_rows.start == 3 * tile.rows.start
        assert tile.in_cols.start == 2 * tile.cols.start
        assert tile.in_rows.stop == 3 * (tile.rows.stop - 1) + 5


@pytest.mark.parametrize("bad", [0, 15, -3, 16.0, True])
def test_tile_size_must_be_an_integer_of_at_least_16(bad):
    with pytest.raises(ValueError, match=rf"must be an integer >= 16. Received: tile_size={bad!r}$"):
        check_tile_size(bad)


def _save(path, pixels):
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.mark.parametrize("range_mode", ["clip", "rescale", "abs"])
def test_file_tiled_equals_untiled(tmp_path, range_mode):
    rng = np.random.default_rng(11)
    source = _save(tmp_path / "in.png", rng.integers(0, 256, (70, 90), dtype=np.uint8))
    kernel = rng.standard_normal((3, 3))
    small = filter_file(
        source, str(tmp_path / "small.png"), kernel, padding="same", range_mode=range_mode, tile_size=16
    )
    whole = filter_file(source, str(tmp_path / "whole.png"), kernel, padding="same", range_mode=range_mode)
    a = np.asarray(Image.open(tmp_path / "small.png"))
    b = np.asarray(Image.open(tmp_path / "whole.png"))
    assert np.array_equal(a, b)
    assert (small.minimum, small.maximum) == (whole.minimum, whole.maximum)
    raw = correlate(np.asarray(Image.open(source)), kernel, padding="same")
    assert small.minimum == pytest.approx(raw.min(), abs=1e-3)
    assert small.maximum == pytest.approx(raw.max(), abs=1e-3)
    if range_mode == "rescale":
        assert_pixels(a, (raw - raw.min()) * (255 / (raw.max() - raw.min())))


def test_sixteen_bit_file_tiled_equals_untiled(tmp_path):
    rng = np.random.default_rng(12)
    source = _save(tmp_path / "in.png", rng.integers(0, 65536, (50, 60), dtype=np.uint16))
    kernel = np.full((3, 3), 1 / 9)
    filter_file(source, str(tmp_path / "small.png"), kernel, tile_size=16, stride=(2, 1))
    filter_file(source, str(tmp_path / "whole.png"), kernel, stride=(2, 1))
    a = np.asarray(Image.open(tmp_path / "small.png"))
    b = np.asarray(Image.open(tmp_path / "whole.png"))
    assert a.dtype == np.uint16
    assert np.array_equal(a, b)
    assert_pixels(a, correlate(np.asarray(Image.open(source)).astype(float), kernel, (2, 1)), 65535)


def test_cli_tile_size_gives_the_same_file(tmp_path):
    rng = np.random.default_rng(13)
    source = _save(tmp_path / "in.png", rng.integers(0, 256, (60, 80), dtype=np.uint8))
    runner = CliRunner()
    small = runner.invoke(
        cli, ["edge", source, str(tmp_path / "a.png"), "--tile-size", "16", "--padding", "same"]
    )
    whole = runner.invoke(cli, ["edge", source, str(tmp_path / "b.png"), "--padding", "same"])
    assert small.exit_code == whole.exit_code == 0, small.output + whole.output
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    )


def test_cli_refuses_a_tile_size_below_16(tmp_path):
    source = _save(tmp_path / "in.png", np.zeros((20, 20), dtype=np.uint8))
    result = CliRunner().invoke(cli, ["blur", source, str(tmp_path / "out.png"), "--tile-size", "8"])
    assert result.exit_code == 2
    assert "Invalid value for '--tile-size': 8 is not in the range x>=16." in result.output
    assert not (tmp_path / "out.png").exists()


def test_large_png_output_is_lossless(tmp_path):
    """A large image tiled in 1000x1000 tiles comes back pixel for pixel through the identity kernel."""
    rng = np.random.default_rng(14)
    pixels = rng.integers(0, 256, (2050, 2000), dtype=np.uint8)
    source = _save(tmp_path / "in.png", pixels)
    identity = np.zeros((3, 3))
    identity[1, 1] = 1
    filter_file(source, str(tmp_path / "out.png"), identity, padding="same", tile_size=1000)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)


BORDER_CONFIGS = [
    # (kernel shape, stride, dilation, padding, border)
    ((3, 3), (1, 1), (1, 1), "same", "reflect"),
    ((5, 4), (2, 3), (1, 1), "same", "symmetric"),
    ((3, 3), (2, 2), (3, 2), "same", "replicate"),
    ((4, 2), (1, 1), (1, 2), "full", "wrap"),
    ((7, 7), (1, 1), (1, 1), "full", "zero"),
    ((3, 5), (3, 1), (1, 1), "full", "reflect"),
]


@pytest.mark.parametrize("kernel_shape, stride, dilation, padding, border", BORDER_CONFIGS)
def test_tiled_borders_and_full_padding_equal_the_whole_image(
    kernel_shape, stride, dilation, padding, border
):
    """Each tile's window is cut with the border's pixels: the whole image's sums, and numpy.pad's."""
    rng = np.random.default_rng(sum(kernel_shape) + len(border))
    batch = rng.integers(0, 256, (2, 45, 61), dtype=np.uint8)
    kernel = rng.standard_normal(kernel_shape)
    op = Conv2DSpec(kernel, stride, padding, dilation, 0.5, border)
    whole = filter_batch(batch, op)
    tiled = filter_batch(batch, op, tile_size=16)
    assert len(plan_tiles(batch.shape[1:], op, 16)) >= 3
    assert_rounding_equal(tiled, whole, kernel)
    for image, result in zip(batch, tiled, strict=True):
        h, w = image.shape
        pad_y = padding_amounts(h, kernel_shape[0], stride[0], dilation[0], padding)
        pad_x = padding_amounts(w, kernel_shape[1], stride[1], dilation[1], padding)
        padded = pad_batch(image[np.newaxis].astype(float), pad_y, pad_x, border)[0]
        expected = correlate(padded, kernel, stride, "valid", dilation, 0.5)
        assert np.abs(result - expected).max() < 1e-6 * np.abs(kernel).sum() * 255


@pytest.mark.parametrize("border", ["reflect", "symmetric", "replicate", "wrap"])
def test_tiles_smaller_than_the_border_pad(border):
    """A 3x2 image padded by 15 on each side ('full', 16x16 kernel): the pad repeats, as numpy.pad's does."""
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (1, 3, 2), dtype=np.uint8)
    kernel = rng.standard_normal((16, 16))
    op = Conv2DSpec(kernel, padding="full", border=border)
    whole = filter_batch(batch, op)
    tiled = filter_batch(batch, op, tile_size=16)
    assert whole.shape == (1, 18, 17)
    assert_rounding_equal(tiled, whole, kernel)
    padded = pad_batch(batch.astype(float), (15, 15), (15, 15), border)[0]
    expected = correlate(padded, kernel, padding="valid")
    assert np.abs(whole[0] - expected).max() < 1e-6 * np.abs(kernel).sum() * 255


def test_cli_color_reflect_batch_with_small_tiles_is_identical(tmp_path):
    """--color (RGBA: channels filtered, alpha carried) and --border reflect, as a batch with -o."""
    rng = np.random.default_rng(15)
    sources = []
    for name in ("a.png", "b.png"):
        path = tmp_path / name
        Image.fromarray(rng.integers(0, 256, (50, 70, 4), dtype=np.uint8), "RGBA").save(path)
        sources.append(str(path))
    runner = CliRunner()
    options = ["--color", "--padding", "same", "--border", "reflect", "-q"]
    small = runner.invoke(
        cli, ["gaussian", *sources, "-o", str(tmp_path / "s"), "--tile-size", "16", *options]
    )
    whole = runner.invoke(cli, ["gaussian", *sources, "-o", str(tmp_path / "w"), *options])
    assert small.exit_code == whole.exit_code == 0, small.output + whole.output
    for name in ("a.png", "b.png"):
        a = Image.open(tmp_path / "s" / name)
        b = Image.open(tmp_path / "w" / name)
        assert a.mode == b.mode == "RGBA"
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert np.array_equal(np.asarray(a)[..., 3], np.asarray(Image.open(tmp_path / name))[..., 3])


def test_cli_verbose_and_compare_with_tiles(tmp_path):
    """-v reports the same raw range tiled; --compare (which needs every raw value) still works with tiles."""
    rng = np.random.default_rng(16)
    source = _save(tmp_path / "in.png", rng.integers(0, 256, (40, 50), dtype=np.uint8))
    runner = CliRunner()
    args = ["sobel-x", source, "--padding", "same", "-v"]
    small = runner.invoke(cli, [*args[:2], str(tmp_path / "a.png"), *args[2:], "--tile-size", "16"])
    whole = runner.invoke(cli, [*args[:2], str(tmp_path / "b.png"), *args[2:]])
    assert small.exit_code == whole.exit_code == 0, small.output + whole.output
    raw = correlate(
        np.asarray(Image.open(source)).astype(float), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], padding="same"
    )
    expected = f"range rescale of raw values {raw.min():.6g}..{raw.max():.6g}"
    assert small.stderr.splitlines()[-1].endswith(expected)
    assert whole.stderr.splitlines()[-1].endswith(expected)
    figure = tmp_path / "fig.png"
    compared = runner.invoke(
        cli,
        [
            *args[:2],
            str(tmp_path / "c.png"),
            "--padding",
            "same",
            "--tile-size",
            "16",
            "--compare",
            str(figure),
        ],
    )
    assert compared.exit_code == 0, compared.output
    assert figure.stat().st_size > 0
    for name in ("a.png", "c.png"):
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / name)), np.asarray(Image.open(tmp_path / "b.png"))
        )


def test_transposed_tiles_that_no_input_reaches_hold_the_bias():
    """Stride 20 with a 1x1 kernel leaves 16x16 tiles between the placed pixels: only the bias there."""
    x = np.random.default_rng(11).uniform(0, 255, (2, 3, 3)).astype(np.float32)  # two images
    op = TransposeSpec(np.array([[2.0]]), stride=(20, 20), output_padding=(19, 19), bias=1.5)
    out = filter_tiled(x, op, tile_size=16)
    assert (out.dtype, out.shape) == (np.float32, (2, 60, 60))
    for image, result in zip(x, out, strict=True):
        expected = scatter_add(image, np.array([[2.0]]), (20, 20), output_padding=(19, 19), bias=1.5)
        np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_a_tiled_bank_of_two_kernels_stacks_both_responses_in_float32():
    x = np.random.default_rng(12).uniform(0, 255, (1, 40, 37)).astype(np.float32)
    kernels = [np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]), np.arange(9.0).reshape(3, 3) / 9]
    op = BankSpec(kernels, ["a", "b"], padding="same", combine="stack")
    out = filter_tiled(x, op, tile_size=16)
    assert (out.dtype, out.shape) == (np.float32, (1, 40, 37, 2))
    for index, kernel in enumerate(kernels):
        assert_rounding_equal(out[0, ..., index], correlate(x[0], kernel, padding="same"), kernel)


def test_a_border_without_an_index_rule_is_named():
    with pytest.raises(ArgumentError) as info:
        border_index(np.arange(3), 3, "mirror")
    assert str(info.value) == "no index rule for border 'mirror'"


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_transposed_tiles_with_a_stride_wider_than_the_kernel_equal_the_scatter_add(padding):
    """Tiles that begin in a gap between placed kernels (the bug: their first sums were lost)."""
    x = np.random.default_rng(13).uniform(0, 255, (1, 13, 11)).astype(np.float32)
    kernel = np.array([[1.0, -2.0], [0.5, 3.0]])
    op = TransposeSpec(kernel, stride=(3, 5), padding=padding, bias=0.25)
    out = filter_tiled(x, op, tile_size=16)
    expected = scatter_add(x[0], kernel, (3, 5), padding, bias=0.25)
    assert out.shape == (1, *expected.shape)
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-3)
