"""Transposed convolution (``--transpose``, Keras ``Conv2DTranspose``) against a scatter-add reference."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_pixels, run
from PIL import Image
from reference import correlate
from reference_transpose import keras_length, scatter_add

from convfilter import ArgumentError, TransposeSpec, filter_array, transpose_array

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"
STRIDES = [(1, 1), (2, 2), (2, 1), (3, 2)]
DILATIONS = [(1, 1), (2, 1), (2, 2)]


def _paddings(stride):
    """Every output padding Keras accepts for ``stride`` (None: Keras's default size)."""
    return [None, (0, 0), (stride[0] - 1, stride[1] - 1)]


def _allowed(kernel_shape, dilation, padding, output_padding) -> bool:
    """False for the one case refused below: 'same', an even dilated kernel, output padding 0."""
    if output_padding is None or padding != "same":
        return True
    return all(
        (d * (k - 1) + 1) % 2 == 1 or p > 0
        for k, d, p in zip(kernel_shape, dilation, output_padding, strict=True)
    )


@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (5, 5)])
@pytest.mark.parametrize("kernel_shape", [(1, 1), (2, 3), (3, 3)])
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("dilation", DILATIONS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_matches_the_scatter_add_reference(shape, kernel_shape, stride, dilation, padding):
    rng = np.random.default_rng(20261207)
    x = rng.integers(-5, 6, shape).astype(np.float64)
    k = rng.integers(-3, 4, kernel_shape).astype(np.float64)
    for output_padding in _paddings(stride):
        if not _allowed(kernel_shape, dilation, padding, output_padding):
            continue
        got = transpose_array(
            x, k, stride=stride, padding=padding, dilation=dilation, output_padding=output_padding
        )
        want = scatter_add(x, k, stride, padding, dilation, output_padding)
        assert got.shape == want.shape, output_padding
        np.testing.assert_array_equal(got, want)  # small integers: float32 sums are exact


@pytest.mark.parametrize(
    "n, k, s, padding, output_padding, expected",
    [
        (5, 3, 2, "valid", None, 11),  # n*s + max(k - s, 0)
        (5, 3, 2, "same", None, 10),  # n*s
        (5, 3, 2, "valid", 1, 12),  # (n - 1)*s + k + p
        (5, 3, 2, "same", 1, 10),  # (n - 1)*s + k - 2*(k // 2) + p
        (5, 3, 2, "same", 0, 9),
        (4, 1, 3, "valid", None, 12),  # a 1x1 kernel leaves gaps: max(1 - 3, 0) = 0
        (255, 3, 2, "valid", None, 511),
        (255, 3, 2, "valid", 1, 512),  # back to the 512 rows that Conv2D(3, strides=2) took to 255
    ],
)
def test_output_length_table(n, k, s, padding, output_padding, expected):
    assert keras_length(n, k, s, 1, padding, output_padding) == expected
    op = TransposeSpec(np.ones((k, k)), (s, s), padding, output_padding=output_padding)
    assert op.output_shape((n, n)) == (expected, expected)


def _adjoint_cases():
    """The parameters where Keras's output-length formula gives x's size back for some n: not
    'same' with an even (dilated) kernel, where no output padding ever does."""
    for kernel_shape in [(3, 3), (2, 3), (1, 4)]:
        for stride in STRIDES:
            for dilation in [(1, 1), (2, 1)]:
                even = any((d * (k - 1) + 1) % 2 == 0 for k, d in zip(kernel_shape, dilation, strict=True))
                for padding in ["valid"] + ([] if even else ["same"]):
                    yield kernel_shape, stride, dilation, padding


@pytest.mark.parametrize("kernel_shape, stride, dilation, padding", list(_adjoint_cases()))
def test_adjoint_identity(kernel_shape, stride, dilation, padding):
    """<conv(x), y> == <x, conv_transpose(y)>, with the output padding that gives x's size back."""
    rng = np.random.default_rng(sum(kernel_shape) + 10 * sum(stride))
    k = rng.integers(-3, 4, kernel_shape).astype(np.float64)
    checked = 0
    for n in range(6, 13):
        x = rng.integers(-4, 5, (n, n + 1)).astype(np.float64)
        conv = filter_array(x, k, stride=stride, padding=padding, dilation=dilation)
        np.testing.assert_array_equal(conv, correlate(x, k, stride, padding, dilation))
        output_padding = []
        for axis in (0, 1):
            kd = dilation[axis] * (kernel_shape[axis] - 1) + 1
            m, s = conv.shape[axis], stride[axis]
            pad = kd // 2 if padding == "same" else 0
            output_padding.append(x.shape[axis] - ((m - 1) * s + kd - 2 * pad))
        fits = all(0 <= p < s for p, s in zip(output_padding, stride, strict=True))
        if not fits or not _allowed(kernel_shape, dilation, padding, tuple(output_padding)):
            continue  # Keras's formula has no output padding that gives x's size back for this n
        y = rng.integers(-4, 5, conv.shape).astype(np.float64)
        back = transpose_array(
            y, k, stride=stride, padding=padding, dilation=dilation, output_padding=tuple(output_padding)
        )
        assert back.shape == x.shape
        assert float(np.sum(conv * y)) == float(np.sum(x * back))
        checked += 1
    assert checked, "Keras's formula should give x's size back for some n"


def test_convolve_and_bias():
    x = np.arange(12.0).reshape(3, 4)
    k = np.array([[1.0, 2.0], [3.0, -1.0]])
    got = transpose_array(x, k, stride=2, convolve=True, bias=0.5)
    np.testing.assert_array_equal(got, scatter_add(x, k[::-1, ::-1], (2, 2), bias=0.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"padding": "full"},
            "The `padding` argument of a transposed convolution must be one of 'valid', 'same' "
            "(as Conv2DTranspose takes). Received: padding='full'",
        ),
        (
            {"stride": (2, 2), "output_padding": (2, 0)},
            "The `output_padding` argument must be smaller than the stride on each axis (it picks one of "
            "the stride's output sizes). Received: output_padding=(2, 0), strides=(2, 2)",
        ),
        (
            {"output_padding": (-1, 0), "stride": 2},
            "The `output_padding` argument must be a tuple of 2 integers >= 0. Received: output_padding=(-1, 0)",
        ),
        (
            {"padding": "same", "output_padding": (0, 0)},
            "output_padding 0 with 'same' padding and a kernel 2 rows wide (even) gives (n - 1) * stride, "
            "which a 'same' convolution does not map back to n; give output padding >= 1 there, or leave it out",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ArgumentError) as info:
        TransposeSpec(np.ones((2, 3)), **kwargs)
    assert str(info.value) == message


# ----------------------------------------------------------------- the command line


def test_custom_matrix_is_exact(tmp_path):
    x = np.random.default_rng(3).normal(size=(6, 7))
    np.save(tmp_path / "x.npy", x)
    result = run(
        "custom",
        "--kernel",
        "1,2,3;4,5,6",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "--transpose",
        "--stride",
        "2",
        "3",
        "--padding",
        "same",
        "--output-padding",
        "1",
        "2",
    )
    assert result.exit_code == 0, result.output
    got = np.load(tmp_path / "y.npy")
    want = scatter_add(x, np.array([[1, 2, 3], [4, 5, 6]]), (2, 3), "same", (1, 1), (1, 2))
    assert got.shape == want.shape == (11, 21)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)


def test_named_kernel_upsamples_the_image_and_v_names_the_layer(tmp_path):
    result = run(
        "blur", ASCENT, tmp_path / "o.png", "--transpose", "--stride", "2", "2", "--padding", "same", "-v"
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o.png") as img:
        pixels = np.asarray(img)
    assert pixels.shape == (1024, 1024)
    with Image.open(ASCENT) as img:
        source = np.asarray(img.convert("L"), dtype=np.float64)
    want = scatter_add(source, np.full((3, 3), 1 / 9), (2, 2), "same")
    assert_pixels(pixels, want)
    assert (
        "layer:   Conv2DTranspose(1, (3, 3), strides=(2, 2), padding='same', output_padding=None, "
        "use_bias=False): the kernel added at every input pixel, 2x2 apart, cropped top 0, bottom 1, "
        "left 0, right 1" in result.stderr
    )


def test_explain_gives_the_size_the_layer_makes(tmp_path):
    args = ["--transpose", "--stride", "2", "3", "--padding", "valid", "--output-padding", "1", "2"]
    explained = run("explain", "--shape", "6", "7", "--kernel", "1,2;3,4", "--json", *args)
    assert explained.exit_code == 0, explained.output
    data = json.loads(explained.output)
    np.save(tmp_path / "x.npy", np.ones((6, 7)))
    assert run("custom", "--kernel", "1,2;3,4", tmp_path / "x.npy", tmp_path / "y.npy", *args).exit_code == 0
    assert list(np.load(tmp_path / "y.npy").shape) == data["output_shape"] == [13, 22]
    assert data["transpose"] is True and data["output_padding"] == [1, 2]
    assert data["formulas"] == {
        "rows": "(6 - 1)*2 + 2 - 2*0 + 1 = 13",
        "cols": "(7 - 1)*3 + 2 - 2*0 + 2 = 22",
    }
    text = run("explain", "--shape", "5", "5", "--kernel-size", "3", "3", "--transpose", "--stride", "2", "2")
    assert "output rows:  5*2 + max(3 - 2, 0) = 11\n" in text.output
    assert (
        "scatter:      every input pixel (i, j) adds the kernel (3x3 with its dilation) times its value"
        in (text.output)
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--output-padding", "1", "1"],
            "Invalid value for '--output-padding': --output-padding needs --transpose",
        ),
        (
            ["--transpose", "--padding", "full"],
            "Invalid value for '--padding': The `padding` argument of a transposed",
        ),
        (
            ["--transpose", "--padding", "same", "--border", "reflect"],
            "Invalid value for '--border': border 'reflect': a transposed convolution pads nothing",
        ),
        (
            ["--transpose", "--stride", "2", "2", "--output-padding", "2", "0"],
            "Invalid value for '--output-padding': The `output_padding` argument must be smaller than the stride",
        ),
    ],
)
def test_bad_options_are_usage_errors_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "o.png"
    for command in (["blur", ASCENT, out], ["explain", "--shape", "4", "4", "--kernel-size", "3", "3"]):
        result = run(*command, *args)
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output
    assert not out.exists()


def test_export_saves_a_conv2dtranspose_that_reproduces_the_output(tmp_path):
    x = np.random.default_rng(1).integers(0, 9, (5, 6)).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    result = run(
        "custom",
        "--kernel",
        "1,0,-1;2,1,0",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "--transpose",
        "--stride",
        "2",
        "2",
        "--dilation",
        "2",
        "1",
        "--bias",
        "0.5",
        "--export",
        tmp_path / "m.keras",
    )
    assert result.exit_code == 0, result.output
    from convfilter.engine.model import keras_module

    model = keras_module().saving.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["Conv2DTranspose"]
    got = np.asarray(model(x[np.newaxis, ..., np.newaxis].astype(np.float32)))[0, ..., 0]
    want = scatter_add(x, np.array([[1, 0, -1], [2, 1, 0]]), (2, 2), "valid", (2, 1), bias=0.5)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_color_with_alpha_upsamples_the_alpha(tmp_path):
    rng = np.random.default_rng(4)
    rgba = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    result = run(
        "identity",
        tmp_path / "in.png",
        tmp_path / "o.png",
        "--size",
        "1",
        "--transpose",
        "--stride",
        "2",
        "2",
        "--color",
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o.png") as img:
        out = np.asarray(img)
    assert out.shape == (8, 10, 4)
    np.testing.assert_array_equal(out[::2, ::2, :3], rgba[..., :3])  # a 1x1 kernel leaves gaps of zeros
    assert not out[1::2, :, :3].any()
    # Alpha is carried, not filtered: where an input pixel lands, its own alpha; between, a neighbour's.
    np.testing.assert_array_equal(out[::2, ::2, 3], rgba[..., 3])
    for row in range(8):
        for col in range(10):
            sources = {
                rgba[min(r, 3), min(c, 4), 3]
                for r in (row // 2, (row + 1) // 2)
                for c in (col // 2, (col + 1) // 2)
            }
            assert out[row, col, 3] in sources


@pytest.mark.slow
def test_the_installed_command(convfilter_exe, server_env, tmp_path):
    np.save(tmp_path / "x.npy", np.eye(3))
    proc = subprocess.run(
        [
            str(convfilter_exe),
            "custom",
            "--kernel",
            "1,1;1,1",
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
            "--transpose",
            "--stride",
            "2",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env,
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "y.npy"), scatter_add(np.eye(3), np.ones((2, 2)), (2, 2))
    )


@pytest.mark.parametrize("kernel_shape", [(1, 2), (3, 4), (5, 3)])
@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("dilation", DILATIONS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_crops_are_where_the_output_lies_in_the_full_scatter_add(kernel_shape, stride, dilation, padding):
    """What the layer cuts off the full scatter-add, before and after each axis (negative: zeros added
    by output padding), as the reference places its output."""
    n = (4, 5)
    for output_padding in _paddings(stride):
        if not _allowed(kernel_shape, dilation, padding, output_padding):
            continue
        spec = TransposeSpec(
            np.ones(kernel_shape),
            stride=stride,
            padding=padding,
            dilation=dilation,
            output_padding=output_padding,
        )
        expected = []
        for axis in (0, 1):
            k, s, d = kernel_shape[axis], stride[axis], dilation[axis]
            full = (n[axis] - 1) * s + d * (k - 1) + 1
            length = keras_length(
                n[axis], k, s, d, padding, None if output_padding is None else output_padding[axis]
            )
            before = max(full - length, 0) // 2 if padding == "same" else 0
            expected.append((before, full - length - before))
        assert spec.crops(n) == tuple(expected), output_padding
