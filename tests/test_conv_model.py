"""The one convolution description: numeric padding, C input channels, N filters, transposed tiles.

Every value is checked against an independent NumPy reference (``reference.py``,
``reference_transpose.py``) or a textbook's printed numbers, never against convfilter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import invoke as run
from PIL import Image
from reference import correlate, correlate_channels
from reference_transpose import scatter_add

from convfilter.engine.conv import filter_array, filter_batch
from convfilter.engine.tiles import plan_tiles
from convfilter.errors import ArgumentError
from convfilter.ops.bank import BankSpec
from convfilter.ops.conv import Conv2DSpec
from convfilter.ops.geometry import MAX_PADDING, check_padding
from convfilter.ops.transpose import TransposeSpec

RNG = np.random.default_rng(20)


def assert_close(got, expected, scale=1.0):
    """float32 sums against a float64 reference: a few ulps of the largest possible term."""
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * max(scale, 1.0))


# --- numeric padding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,expected",
    [
        (1, (1, 1, 1, 1)),
        ("2", (2, 2, 2, 2)),
        ((0, 1), (0, 0, 1, 1)),
        ("0,1", (0, 0, 1, 1)),
        ("1,2,3,4", (1, 2, 3, 4)),
        ("1 2", (1, 1, 2, 2)),
        (" 1, 2 , 3 4 ", (1, 2, 3, 4)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        ("SAME", "same"),
    ],
)
def test_padding_numbers_as_courses_write_them(given, expected):
    assert check_padding(given) == expected


@pytest.mark.parametrize("given", ["-1", "1,2,3", "a,b", (1.5, 1), True, 70000, "", 1.5])
def test_bad_padding_numbers_are_refused(given):
    with pytest.raises(ArgumentError, match="The `padding` argument must be one of") as refused:
        check_padding(given)
    assert refused.value.param == "--padding"  # the usage error names the option


def test_padding_numbers_go_up_to_the_limit():
    assert check_padding(MAX_PADDING) == (MAX_PADDING,) * 4
    with pytest.raises(ArgumentError, match=rf"Received: padding={MAX_PADDING + 1}$"):
        check_padding(MAX_PADDING + 1)


@pytest.mark.parametrize(
    "shape,kernel,stride,padding,dilation,out",
    [
        ((8, 8), (3, 5), (3, 4), (0, 1), (1, 1), (2, 2)),  # d2l §7.3: padding (0, 1), stride (3, 4)
        ((8, 8), (3, 3), (1, 1), 1, (1, 1), (8, 8)),  # "pad 1" keeps a 3x3's size
        ((7, 9), (3, 3), (2, 2), (1, 0, 2, 1), (1, 1), (3, 5)),
        ((7, 9), (3, 2), (1, 1), (0, 3, 1, 0), (2, 2), (6, 8)),
        ((9, 9), (3, 3), (2, 3), (2, 2), (2, 1), (5, 4)),  # stride with dilation: Keras's refusal, split
    ],
)
def test_numeric_padding_equals_zero_padding_then_valid(shape, kernel, stride, padding, dilation, out):
    image = RNG.integers(0, 256, shape).astype(np.float64)
    grid = RNG.normal(size=kernel)
    pads = check_padding(padding)
    got = filter_array(image, grid, stride=stride, padding=padding, dilation=dilation)
    expected = correlate(np.pad(image, (pads[:2], pads[2:])), grid, stride, "valid", dilation)
    assert got.shape == out == expected.shape
    assert_close(got, expected, 255 * np.abs(grid).sum())


@pytest.mark.parametrize("border", ["reflect", "symmetric", "replicate", "wrap"])
def test_border_with_numeric_padding_pads_with_that_border(border):
    image = RNG.integers(0, 256, (6, 7)).astype(np.float64)
    grid = RNG.normal(size=(3, 3))
    mode = {"replicate": "edge"}.get(border, border)
    got = filter_array(image, grid, padding=(1, 2, 0, 3), border=border)
    expected = correlate(np.pad(image, ((1, 2), (0, 3)), mode=mode), grid)
    assert_close(got, expected, 255 * np.abs(grid).sum())


def test_numeric_padding_through_the_cli_and_explain(tmp_path):
    image = RNG.integers(0, 256, (8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", image)
    grid = "1,2,3,4,5;6,7,8,9,10;11,12,13,14,15"
    result = run(
        "custom",
        "--kernel",
        grid,
        "--padding",
        "0,1",
        "--stride",
        3,
        4,
        tmp_path / "x.npy",
        tmp_path / "y.npy",
    )
    assert result.exit_code == 0, result.output
    kernel = np.arange(1, 16, dtype=np.float64).reshape(3, 5)
    expected = correlate(np.pad(image, ((0, 0), (1, 1))), kernel, (3, 4))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected.astype(np.float32))
    text = run("explain", "--shape", 8, 8, "--kernel-size", 3, 5, "--stride", 3, 4, "--padding", "0,1").output
    assert (
        "padding:      numbers (ZeroPadding2D, then a 'valid' layer): top 0, bottom 0, left 1, right 1"
        in text
    )
    assert "output cols:  floor((8 + 1 + 1 - 1*(5 - 1) - 1) / 4) + 1 = 2" in text
    assert "output:       2x2 (tensor 1x2x2x1)" in text


def test_bad_numeric_padding_is_a_usage_error(tmp_path, gray_png):
    result = run("blur", gray_png, tmp_path / "out.png", "--padding", "1,2,3")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--padding': '1,2,3' is not one of 'valid', 'same', 'full', N, PY,PX or "
        "TOP,BOTTOM,LEFT,RIGHT (each 0..65536)."
    )
    assert not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_export_of_numeric_padding_is_zero_padding_then_conv2d(tmp_path, gray_png):
    import keras

    out, model_path = tmp_path / "out.npy", tmp_path / "m.keras"
    result = run(
        "custom", "--kernel", "1,2;3,4", "--padding", "1,0,2,1", gray_png, out, "--export", model_path
    )
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(model_path)
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["ZeroPadding2D", "Conv2D"]
    pixels = np.asarray(Image.open(gray_png), dtype=np.float32)
    again = np.asarray(model(pixels[np.newaxis, ..., np.newaxis]))[0, ..., 0]
    expected = correlate(np.pad(pixels, ((1, 0), (2, 1))), np.array([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(np.load(out), expected.astype(np.float32))
    np.testing.assert_array_equal(again, expected.astype(np.float32))


# --- channels and filters ----------------------------------------------------------------------------

D2L_X = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=np.float64)
D2L_K = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], dtype=np.float64)


def test_d2l_two_channel_example_gives_the_printed_numbers(tmp_path):
    """d2l §7.4: two input channels into one filter give [[56, 72], [104, 120]]."""
    np.save(tmp_path / "x.npy", D2L_X.transpose(1, 2, 0))  # H x W x C
    np.save(tmp_path / "k.npy", D2L_K.transpose(1, 2, 0)[..., np.newaxis])  # (kh, kw, C, 1)
    result = run("custom", "--kernel", f"@{tmp_path / 'k.npy'}", tmp_path / "x.npy", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [[56, 72], [104, 120]])


@pytest.mark.parametrize("tile_size", [None, 16])
def test_three_channels_into_four_filters_with_stride_and_same(tile_size):
    image = RNG.integers(0, 256, (23, 37, 3)).astype(np.float64)
    weights = RNG.normal(size=(3, 4, 3, 4))
    op = Conv2DSpec(weights, (2, 1), "same", bias=0.5, combine="stack")
    got = filter_batch(np.moveaxis(image, -1, 0), op, tile_size=tile_size)[0]
    # 'same' for n=23, k=3, s=2: out 12, total (12-1)*2+3-23 = 2 -> (1, 1); n=37, k=4, s=1: 3 -> (1, 2)
    expected = correlate_channels(image, weights, (2, 1), (1, 1, 1, 2), bias=0.5)
    assert got.shape == (12, 37, 4) == expected.shape
    assert_close(got, expected, 255 * np.abs(weights).sum())


def test_library_filter_array_takes_channels_last_with_a_4d_kernel():
    image = RNG.integers(0, 256, (9, 8, 2)).astype(np.float64)
    weights = RNG.normal(size=(2, 3, 2, 1))
    got = filter_array(image, weights, padding=1)
    assert_close(got, correlate_channels(image, weights, pads=(1, 1, 1, 1))[..., 0], 255 * 12)


def test_rgb_image_into_one_filter_writes_one_channel(tmp_path):
    rgba = RNG.integers(0, 256, (7, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    weights = RNG.normal(size=(3, 3, 4, 1))
    np.save(tmp_path / "w.npy", weights)
    result = run("custom", "--kernel", f"@{tmp_path / 'w.npy'}", tmp_path / "in.png", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    assert_close(np.load(tmp_path / "out.npy"), correlate_channels(rgba, weights)[..., 0], 255 * 36)


def test_mix_channels_spreads_the_kernel_over_every_channel(tmp_path):
    rgb = RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    result = run("blur", "--mix-channels", tmp_path / "in.png", tmp_path / "out.npy")
    assert result.exit_code == 0, result.output
    expected = correlate_channels(rgb, np.full((3, 3, 3, 1), 1 / 27))[..., 0]
    assert_close(np.load(tmp_path / "out.npy"), expected, 255)


def test_n_filters_write_an_h_w_n_array_and_one_image_per_filter(tmp_path):
    rgb = RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    weights = RNG.normal(size=(2, 2, 3, 2))
    np.save(tmp_path / "w.npy", weights)
    kernel = f"@{tmp_path / 'w.npy'}"
    assert run("custom", "--kernel", kernel, tmp_path / "in.png", tmp_path / "out.npy").exit_code == 0
    assert_close(np.load(tmp_path / "out.npy"), correlate_channels(rgb, weights), 255 * 24)
    result = run("custom", "--kernel", kernel, tmp_path / "in.png", "-o", tmp_path / "each")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["in-custom1.png", "in-custom2.png"]


def test_a_channel_count_that_does_not_match_is_one_error_line(tmp_path, gray_png):
    np.save(tmp_path / "w.npy", np.ones((3, 3, 3, 1)))
    result = run("custom", "--kernel", f"@{tmp_path / 'w.npy'}", gray_png, tmp_path / "out.png")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: {gray_png}: has 1 channel (a L image), but the kernel reads 3 (weights (kh, kw, 3, N))"
    )
    assert not (tmp_path / "out.png").exists()


def test_color_with_a_multi_channel_kernel_is_a_usage_error(tmp_path, gray_png):
    np.save(tmp_path / "w.npy", np.ones((3, 3, 3, 1)))
    result = run("custom", "--kernel", f"@{tmp_path / 'w.npy'}", "--color", gray_png, tmp_path / "o.png")
    assert result.exit_code == 2
    assert "a DepthwiseConv2D" in result.output.splitlines()[-1]


def test_explain_cs231n_conv1():
    """CS231n: 227x227x3, 96 filters of 11x11, stride 4 -> 55x55x96 and 34,944 parameters."""
    args = ["explain", "--shape", 227, 227, "--kernel-size", 11, 11, "--stride", 4, 4]
    result = run(*args, "--channels", 3, "--filters", 96, "--bias", 1, "--json")
    data = json.loads(result.output)
    assert data["output_shape"] == [55, 55] and data["filters"] == 96
    assert data["params"] == 34944 and data["weights_shape"] == [11, 11, 3, 96]
    text = run(*args, "--channels", 3, "--filters", 96, "--bias", 1).output
    assert "output:       55x55 (tensor 1x55x55x96)" in text
    assert "weights:      34,944 trainable, shape (11, 11, 3, 96)" in text


def test_explain_color_names_the_depthwise_layer():
    result = run("explain", "--shape", 5, 5, "--kernel-size", 3, 3, "--color")
    assert result.exit_code == 0
    assert "DepthwiseConv2D" in result.output.splitlines()[-1]


# --- every convolution tiles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stride,padding,dilation,output_padding",
    [((2, 2), "valid", (1, 1), None), ((2, 3), "same", (1, 1), None), ((3, 2), "valid", (2, 1), (1, 0))],
)
def test_transposed_convolution_in_tiles_equals_the_scatter_add(stride, padding, dilation, output_padding):
    image = RNG.integers(0, 256, (19, 23)).astype(np.float64)
    grid = RNG.normal(size=(3, 3))
    op = TransposeSpec(grid, stride, padding, dilation, output_padding, bias=1.5)
    assert len(plan_tiles(image.shape, op, 16)) > 4
    got = filter_batch(image[np.newaxis], op, tile_size=16)[0]
    expected = scatter_add(image, grid, stride, padding, dilation, output_padding, 1.5)
    assert got.shape == expected.shape
    assert_close(got, expected, 255 * np.abs(grid).sum())


def test_bank_in_tiles_equals_per_filter_references():
    image = RNG.integers(0, 256, (40, 50)).astype(np.float64)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    op = BankSpec((sobel_x, sobel_x.T), ("sobel-x", "sobel-y"), padding="same", border="reflect")
    assert len(plan_tiles(image.shape, op, 16)) > 4
    got = filter_batch(image[np.newaxis], op, tile_size=16)[0]
    padded = np.pad(image, 1, mode="reflect")
    gx, gy = correlate(padded, sobel_x), correlate(padded, sobel_x.T)
    assert_close(got, np.sqrt(gx**2 + gy**2), 255 * 8)


def test_every_operation_is_one_description():
    """A bank and a transposed convolution are Conv2DSpec values: filters and direction are fields."""
    bank = BankSpec((np.eye(3), np.ones((3, 3))), ("a", "b"), stride=2)
    up = TransposeSpec(np.ones((2, 2)), 2)
    assert type(bank) is type(up) is Conv2DSpec
    assert (bank.filters, bank.channels, bank.transpose) == (2, 1, False)
    assert (up.filters, up.transpose) == (1, True)
    assert bank.weights4.shape == (3, 3, 1, 2)


# --- everything runs everywhere -------------------------------------------------------------------


def test_transposed_and_bank_on_zarr_arrays_equal_the_references(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    x = RNG.integers(0, 256, (37, 41)).astype(np.uint8)
    zarr.create_array(str(tmp_path / "in.zarr"), shape=x.shape, chunks=(16, 16), dtype="uint8")[:] = x
    monkeypatch.chdir(tmp_path)
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]])
    args = ["custom", "--kernel", "1,2;3,4", "in.zarr", "up.zarr", "--transpose", "--stride", 2, 2]
    result = run(*args, "--tile-size", 16)
    assert result.exit_code == 0, result.output
    assert_close(zarr.open_array("up.zarr")[:], scatter_add(x, kernel, (2, 2)), 255 * 10)
    result = run(
        "bank", "sobel-x", "sobel-y", "in.zarr", "edges.zarr", "--padding", "same", "--tile-size", 16
    )
    assert result.exit_code == 0, result.output
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    padded = np.pad(x.astype(np.float64), 1)
    expected = np.hypot(correlate(padded, sobel), correlate(padded, sobel.T))
    assert_close(zarr.open_array("edges.zarr")[:], expected, 255 * 8)


def test_bank_with_color_filters_each_channel(tmp_path):
    rgb = RNG.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    result = run(
        "bank",
        "1,-1",
        "[[-1,1]]",
        "--combine",
        "max",
        "--range",
        "clip",
        "--color",
        tmp_path / "in.png",
        tmp_path / "o.png",
    )
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "o.png"))
    for channel in range(3):
        plane = rgb[..., channel].astype(np.float64)
        expected = np.abs(correlate(plane, np.array([[1.0, -1.0]])))  # max(d, -d)
        assert np.array_equal(out[..., channel], np.clip(np.round(expected), 0, 255).astype(np.uint8))


def test_chain_stages_may_be_transposed_or_read_the_channels_of_the_stage_before(tmp_path):
    x = RNG.integers(0, 256, (6, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run(
        "chain",
        tmp_path / "x.npy",
        tmp_path / "up.npy",
        "blur",
        "--transpose",
        "--stride",
        2,
        2,
        "--",
        "pool",
        "max",
    )
    assert result.exit_code == 0, result.output
    scattered = scatter_add(x, np.full((3, 3), 1 / 9), (2, 2))
    pooled = scattered[:12, :14].reshape(6, 2, 7, 2).max(axis=(1, 3))
    assert_close(np.load(tmp_path / "up.npy"), pooled, 255)
    two = RNG.normal(size=(3, 3, 1, 2))
    one = RNG.normal(size=(1, 1, 2, 1))
    np.save(tmp_path / "two.npy", two)
    np.save(tmp_path / "one.npy", one)
    result = run(
        "chain",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "custom",
        "--kernel",
        f"@{tmp_path / 'two.npy'}",
        "--",
        "custom",
        "--kernel",
        f"@{tmp_path / 'one.npy'}",
    )
    assert result.exit_code == 0, result.output
    middle = correlate_channels(x[..., np.newaxis], two)
    assert_close(np.load(tmp_path / "y.npy"), correlate_channels(middle, one)[..., 0], 255 * 20)
    result = run(
        "chain", tmp_path / "x.npy", tmp_path / "z.npy", "custom", "--kernel", f"@{tmp_path / 'two.npy'}"
    )
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: the last stage gives 2 channels; a chain writes one: end with a stage that reads them all "
        "(a 4-D kernel of shape (kh, kw, 2, 1))"
    )


def test_weight_mosaic_lays_out_channels_down_and_filters_across():
    from convfilter.figures import weight_mosaic

    weights = np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3)
    grid = weight_mosaic(weights)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)
    for channel in range(2):
        for f in range(3):
            block = grid[channel * 3 : channel * 3 + 2, f * 4 : f * 4 + 3]
            np.testing.assert_array_equal(block, weights[:, :, channel, f])
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all() and np.isnan(grid[:, 7]).all()
    np.testing.assert_array_equal(weight_mosaic(np.eye(3)), np.eye(3))


def test_bank_compare_draws_the_n_kernels_and_the_combined_output(tmp_path, gray_png):
    fig = tmp_path / "fig.png"
    result = run("bank", "sobel-x", "sobel-y", gray_png, tmp_path / "out.png", "--compare", fig)
    assert result.exit_code == 0, result.output
    with Image.open(fig) as figure:
        assert figure.format == "PNG" and figure.size[0] > figure.size[1]
    stacked = run(
        "bank",
        "sobel-x",
        "sobel-y",
        gray_png,
        tmp_path / "o.npy",
        "--combine",
        "stack",
        "--compare",
        tmp_path / "f2.png",
    )
    assert stacked.exit_code == 2
    assert (
        stacked.output.splitlines()[-1]
        == "Error: --compare draws one output; --combine stack keeps N: leave one out"
    )


@pytest.mark.slow
def test_learn_reads_every_channel_and_finds_the_kernel(tmp_path):
    before = RNG.integers(0, 256, (30, 34, 3)).astype(np.float64)
    weights = RNG.normal(size=(3, 3, 3, 1)) / 5
    np.save(tmp_path / "before.npy", before)
    np.save(tmp_path / "after.npy", correlate_channels(before, weights)[..., 0])
    args = ["learn", tmp_path / "before.npy", tmp_path / "after.npy", "--size", 3, "--channels", 3]
    result = run(*args, "-o", tmp_path / "k.npy")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("learned 3x3x3x1 kernel: BEFORE 30x34 -> AFTER 28x32")
    np.testing.assert_allclose(np.load(tmp_path / "k.npy"), weights, atol=1e-3)
    csv = run(*args, "-o", tmp_path / "k.csv")
    assert csv.exit_code == 2
    mismatch = run("learn", tmp_path / "before.npy", tmp_path / "after.npy", "--size", 3, "--channels", 2)
    assert mismatch.exit_code == 1
    assert "has 3 channels (an H x W x 3 array), but the kernel reads 2" in mismatch.output


def test_an_output_beyond_max_pixels_is_refused_before_the_model_runs(tmp_path):
    x = RNG.integers(0, 256, (20, 20)).astype(np.uint8)
    Image.fromarray(x).save(tmp_path / "in.png")
    args = ["blur", tmp_path / "in.png", tmp_path / "up.png", "--transpose", "--stride", 50, 50]
    refused = run(*args, "--max-pixels", 500_000)
    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: {tmp_path / 'in.png'}: the output would be 1000x1000 = 1000000 pixels, more than the "
        "limit of 500000; raise it with --max-pixels if you mean it\n"
    )
    assert not (tmp_path / "up.png").exists()
    raised = run(*args, "--max-pixels", 1_100_000)  # the advised option does what it says
    assert raised.exit_code == 0, raised.output
    with Image.open(tmp_path / "up.png") as img:
        assert img.size == (1000, 1000)


@pytest.mark.slow
def test_export_of_a_multi_channel_layer_reads_every_channel_in_plain_keras(tmp_path):
    import keras

    rgb = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "in.png")
    weights = RNG.normal(size=(3, 3, 3, 1))
    np.save(tmp_path / "w.npy", weights)
    args = ["custom", "--kernel", f"@{tmp_path / 'w.npy'}", tmp_path / "in.png", tmp_path / "out.npy"]
    result = run(*args, "--padding", 1, "--export", tmp_path / "m.keras")
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(tmp_path / "m.keras")
    got = np.asarray(model(rgb[np.newaxis].astype(np.float32)))[0, ..., 0]
    expected = correlate_channels(rgb, weights, pads=(1, 1, 1, 1))[..., 0]
    assert_close(got, expected, 255 * 27)
    assert_close(np.load(tmp_path / "out.npy"), expected, 255 * 27)
