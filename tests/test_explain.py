"""`convfilter explain`: shapes, padding, formulas and counts worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import invoke

from convfilter.errors import ImageTooSmallError
from convfilter.explain import explain


def run(*args):
    """``convfilter explain ARGS`` in-process."""
    return invoke("explain", *args)


@pytest.mark.parametrize(
    "shape,kernel,options,out,pads,params,dense",
    [
        # the issue's example: 25 weights against 28*28*28*28 connections
        ((28, 28), (5, 5), {"padding": "same"}, (28, 28), (2, 2, 2, 2), 25, 614_656),
        ((28, 28), (5, 5), {}, (24, 24), (0, 0, 0, 0), 25, 784 * 576),
        ((28, 28), (5, 5), {"padding": "full"}, (32, 32), (4, 4, 4, 4), 25, 784 * 1024),
        ((28, 28), (5, 5), {"padding": "same", "use_bias": True}, (28, 28), (2, 2, 2, 2), 26, 614_656),
        # even kernel, stride 2: out ceil(5/2) = 3, total (3-1)*2 + 2 - 5 = 1 -> after
        ((5, 5), (2, 2), {"padding": "same", "stride": (2, 2)}, (3, 3), (0, 1, 0, 1), 4, 25 * 9),
        # 'same' with stride 3 and a 1x1 kernel pads nothing: (4-1)*3 + 1 - 10 = 0
        ((10, 10), (1, 1), {"padding": "same", "stride": 3}, (4, 4), (0, 0, 0, 0), 1, 100 * 16),
        # dilation 2 spreads a 3x3 kernel over 5x5
        ((10, 10), (3, 3), {"dilation": 2}, (6, 6), (0, 0, 0, 0), 9, 100 * 36),
        ((10, 10), (3, 3), {"dilation": 2, "padding": "full"}, (14, 14), (4, 4, 4, 4), 9, 100 * 196),
        # a 1-D signal
        ((1, 4), (1, 2), {}, (1, 3), (0, 0, 0, 0), 2, 12),
        ((1, 4), (1, 2), {"padding": "full"}, (1, 5), (0, 0, 1, 1), 2, 20),
        # rows and columns differ: stride 2x1 on 7x9 with 3x2, 'valid'
        ((7, 9), (3, 2), {"stride": (2, 1)}, (3, 8), (0, 0, 0, 0), 6, 63 * 24),
    ],
)
def test_numbers(shape, kernel, options, out, pads, params, dense):
    e = explain(shape, kernel, **options)
    assert e.output_shape == out
    assert (e.padding["top"], e.padding["bottom"], e.padding["left"], e.padding["right"]) == pads
    assert e.params == params
    assert e.dense_connections == dense
    assert e.multiply_adds == out[0] * out[1] * kernel[0] * kernel[1]


@pytest.mark.parametrize(
    "shape,kernel,options,rows,cols",
    [
        ((28, 28), (5, 5), {"padding": "same"}, "ceil(28 / 1) = 28", "ceil(28 / 1) = 28"),
        (
            (28, 20),
            (5, 3),
            {"stride": (2, 3)},
            "floor((28 - 1*(5 - 1) - 1) / 2) + 1 = 12",
            "floor((20 - 1*(3 - 1) - 1) / 3) + 1 = 6",
        ),
        (
            (8, 8),
            (3, 3),
            {"padding": "full", "dilation": (2, 1)},
            "floor((8 + 2*(3 - 1) - 1) / 1) + 1 = 12",
            "floor((8 + 1*(3 - 1) - 1) / 1) + 1 = 10",
        ),
    ],
)
def test_formulas(shape, kernel, options, rows, cols):
    e = explain(shape, kernel, **options)
    assert e.formulas == {"rows": rows, "cols": cols}


def test_too_small_under_valid():
    with pytest.raises(ImageTooSmallError) as info:
        explain((2, 2), (3, 3))
    assert (
        str(info.value) == "image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding"
    )


def test_text_output_of_the_issue_example():
    result = run("--shape", 28, 28, "--kernel-size", 5, 5, "--padding", "same")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "input:        28x28 (tensor 1x28x28x1)",
        "kernel:       5x5, stride 1x1, dilation 1x1: each window covers 5x5 pixels",
        "padding:      'same' (zeros): top 2, bottom 2, left 2, right 2",
        "output rows:  ceil(28 / 1) = 28",
        "output cols:  ceil(28 / 1) = 28",
        "output:       28x28 (tensor 1x28x28x1)",
        "weights:      25 trainable (5*5 kernel weights shared by every window, no bias; 26 with a bias)",
        "work:         19,600 multiply-adds (28*28 outputs x 25 weights)",
        "dense layer:  614,656 connections (28*28 inputs x 28*28 outputs), 24,586 times the convolution's weights",
    ]


def test_json_output():
    result = run("--shape", 28, 28, "--kernel-size", 5, 5, "--padding", "same", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_shape"] == [28, 28]
    assert data["output_shape"] == [28, 28]
    assert data["padding"] == {"top": 2, "bottom": 2, "left": 2, "right": 2}
    assert data["params"] == 25
    assert data["dense_connections"] == 614656
    assert data["kernel_shape"] == [5, 5]
    assert data["padding_mode"] == "same"
    assert "kernel" not in data


def test_image_and_matrix_inputs(tmp_path, gray_png):
    data = json.loads(run(gray_png, "--kernel", "sobel-x", "--stride", 2, 2, "--json").stdout)
    assert data["input_shape"] == [13, 17]  # the fixture's size
    assert data["output_shape"] == [6, 8]  # floor((13-3)/2)+1, floor((17-3)/2)+1
    assert data["kernel_name"] == "sobel-x"
    assert data["kernel"] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    (tmp_path / "signal.csv").write_text("2,0,1,4\n")
    data = json.loads(run(tmp_path / "signal.csv", "--kernel", "1,-1", "--json").stdout)
    assert (data["input_shape"], data["kernel_shape"], data["output_shape"]) == ([1, 4], [1, 2], [1, 3])
    assert data["kernel"] == [[1, -1]]


def test_named_kernel_sizes_and_random():
    data = json.loads(
        run("--shape", 9, 9, "--kernel", "gaussian", "--size", 7, "--sigma", 2, "--json").stdout
    )
    assert data["kernel_shape"] == [7, 7]
    assert np.isclose(np.sum(data["kernel"]), 1.0)
    data = json.loads(run("--shape", 9, 9, "--kernel", "random", "--size", 4, "--json").stdout)
    assert data["kernel_shape"] == [4, 4] and "kernel" not in data
    seeded = json.loads(run("--shape", 9, 9, "--kernel", "random", "--seed", 3, "--json").stdout)
    again = json.loads(run("--shape", 9, 9, "--kernel", "random", "--seed", 3, "--json").stdout)
    assert seeded["kernel"] == again["kernel"]
    limit = np.sqrt(3) / 3  # Glorot uniform for a 3x3 single-filter kernel
    assert np.all(np.abs(seeded["kernel"]) <= limit)


def test_text_shows_weights_and_bias():
    result = run("--shape", 5, 5, "--kernel", "1,0;0,-1", "--bias", 0.5, "--padding", "full")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "kernel:       custom 2x2, stride 1x1, dilation 1x1: each window covers 2x2 pixels"
    assert lines[2:4] == ["               1  0", "               0 -1"]
    assert "padding:      'full' (zeros): top 1, bottom 1, left 1, right 1" in lines
    assert "weights:      5 trainable (2*2 kernel weights shared by every window, plus 1 bias)" in lines


def test_border_and_convolve():
    result = run("--shape", 4, 6, "--kernel", "1,2,3", "--padding", "same", "--border", "wrap", "--convolve")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2:4] == [
        "              flipped for --convolve, the Conv2D's weights:",
        "              3 2 1",
    ]
    assert "padding:      'same' (wrap border): top 0, bottom 0, left 1, right 1" in lines
    data = json.loads(run("--shape", 4, 6, "--kernel", "1,2,3", "--convolve", "--json").stdout)
    assert data["kernel"] == [[3, 2, 1]] and data["convolve"] is True and data["border"] == "zero"


@pytest.mark.parametrize(
    "args,message,code",
    [
        (["--kernel-size", 3, 3], "Error: give the input as IMAGE or as --shape H W (one of them)", 2),
        (
            ["IMG", "--shape", 5, 5, "--kernel-size", 3, 3],
            "Error: give the input as IMAGE or as --shape H W (one of them)",
            2,
        ),
        (
            ["--shape", 5, 5],
            "Error: give the kernel as --kernel-size KH KW or as --kernel NAME|SPEC (one of them)",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel-size", 3, 3, "--kernel", "edge"],
            "Error: give the kernel as --kernel-size KH KW or as --kernel NAME|SPEC (one of them)",
            2,
        ),
        (
            ["--shape", 2, 2, "--kernel-size", 3, 3],
            "Error: Invalid value for '--shape': image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel-size", 3, 3, "--size", 3],
            "Error: Invalid value for '--size': applies to named kernels (--kernel NAME) only",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel", "edge", "--size", 5],
            "Error: Invalid value for '--size': edge is a fixed 3x3 kernel and takes no size (blur, gaussian, identity and random take --size)",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel", "gausian"],
            "Error: Invalid value for '--kernel': unknown kernel 'gausian'; known kernels: blur, gaussian, edge, sobel-x, sobel-y, sharpen, emboss, identity, random (or a SPEC such as \"1,0,-1\")",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel", "1,,1"],
            "Error: Invalid value for '--kernel': kernel row 1 has an empty value (received '1,,1')",
            2,
        ),
        (
            ["--shape", 0, 5, "--kernel-size", 3, 3],
            "Error: Invalid value for '--shape': 0 is not in the range x>=1.",
            2,
        ),
        (
            ["--shape", 5, 5, "--kernel-size", 3, 3, "--padding", "circular"],
            "Error: Invalid value for '--padding': 'circular' is not one of 'valid', 'same', 'full', N, PY,PX or TOP,BOTTOM,LEFT,RIGHT (each 0..65536).",
            2,
        ),
    ],
)
def test_errors(tmp_path, args, message, code):
    args = [tmp_path / "x.png" if a == "IMG" else a for a in args]
    result = run(*args)
    assert result.exit_code == code
    assert result.stderr.splitlines()[-1] == message


def test_image_errors_exit_1(tmp_path):
    result = run(tmp_path / "nope.png", "--kernel-size", 3, 3)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.png'}: no such file\n"
    (tmp_path / "tiny.csv").write_text("1,2\n")
    result = run(tmp_path / "tiny.csv", "--kernel-size", 3, 3)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'tiny.csv'}: image is 1x2 but the 3x3 kernel needs at least 3x3 pixels "
        "under 'valid' padding\n"
    )
