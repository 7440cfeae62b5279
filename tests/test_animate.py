"""``convfilter animate``: the numbers drawn are the layer's, the frames are the steps, bad input is refused."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import invoke as run
from PIL import Image
from reference import correlate, tf_same_padding
from reference_transpose import scatter_add

from convfilter.animation import draw, steps
from convfilter.ops.spec import Conv2DSpec
from convfilter.ops.transpose import TransposeSpec

KERNEL = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
NUMPY_MODE = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "wrap": "wrap"}


def drawn(texts: dict, shape) -> np.ndarray:
    """The numbers drawn in a grid's cells, as an array (NaN where nothing is drawn)."""
    grid = np.full(shape, np.nan)
    for (r, c), text in texts.items():
        grid[r, c] = float(text)
    return grid


def assert_4_digits(got: np.ndarray, want: np.ndarray) -> None:
    """Numbers are drawn with 4 significant digits."""
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, want, rtol=5e-4, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(
    "stride, padding, dilation, border",
    [
        ((1, 1), "valid", (1, 1), "zero"),
        ((1, 1), "same", (1, 1), "zero"),
        ((2, 2), "valid", (1, 1), "zero"),
        ((1, 1), "valid", (2, 2), "zero"),
        ((2, 1), "same", (1, 2), "reflect"),
        ((1, 1), "full", (1, 1), "zero"),
    ],
)
def test_the_numbers_drawn_are_the_layers(stride, padding, dilation, border):
    rng = np.random.default_rng(stride[0] + 3 * dilation[1])
    x = rng.uniform(-2, 2, (7, 6)).round(2)
    op = Conv2DSpec(KERNEL, stride, padding, dilation, 0.25, border)
    animation = steps.build(op, x)
    if padding == "valid":
        padded = x
    else:
        pads = [
            (dilation[a] * 2,) * 2
            if padding == "full"
            else tf_same_padding(x.shape[a], 3, stride[a], dilation[a])
            for a in (0, 1)
        ]
        padded = np.pad(x, pads, mode=NUMPY_MODE[border])
    want = correlate(padded, KERNEL, stride, "valid", dilation, bias=0.25)
    assert_4_digits(drawn(draw.final_outputs(animation), want.shape), want)
    np.testing.assert_array_equal(animation.source, padded)  # the grid drawn is the padded input
    for step in animation.steps:  # each step's products add up to the value drawn
        assert sum(a * b for a, b in step.terms) + 0.25 == pytest.approx(step.value, abs=1e-4)
    words, sums = draw.step_text(animation, 0)
    assert sums.endswith(f"= {steps.number_text(want[0, 0])}")


@pytest.mark.parametrize(
    "stride, padding, output_padding", [((2, 2), "valid", None), ((2, 1), "same", (1, 0))]
)
def test_the_numbers_drawn_for_a_transposed_convolution(stride, padding, output_padding):
    x = np.array([[1.0, 2, -1], [0, 3, 1]])
    op = TransposeSpec(KERNEL, stride, padding, output_padding=output_padding)
    animation = steps.build(op, x)
    want = scatter_add(x, KERNEL, stride, padding, (1, 1), output_padding)
    assert animation.output_shape == want.shape
    assert_4_digits(drawn(draw.final_outputs(animation), want.shape), want)
    np.testing.assert_allclose(animation.outputs, want)


@pytest.mark.parametrize(
    "name, args, frames",
    [
        ("no_padding", ["--shape", "5", "5", "--kernel-size", "3", "3"], 9 + 2),
        ("same_padding", ["--shape", "5", "5", "--kernel-size", "3", "3", "--padding", "same"], 25 + 2),
        ("strides", ["--shape", "5", "5", "--kernel-size", "3", "3", "--stride", "2", "2"], 4 + 2),
        ("dilation", ["--shape", "7", "7", "--kernel-size", "3", "3", "--dilation", "2", "2"], 9 + 2),
        ("full_padding", ["--shape", "5", "5", "--kernel-size", "3", "3", "--padding", "full"], 49 + 2),
        (
            "transposed",
            ["--shape", "3", "3", "--kernel-size", "3", "3", "--transpose", "--stride", "2", "2"],
            9 + 2,
        ),
    ],
)
def test_the_classic_cases(tmp_path, name, args, frames):
    out = tmp_path / f"{name}.gif"
    result = run("animate", out, *args, "--fps", "4")
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert (gif.format, gif.n_frames) == ("GIF", frames)
        gif.seek(1)
        assert gif.info["duration"] == 250
        rgb = gif.convert("RGB")
        assert rgb.getpixel((2, 2)) == (255, 255, 255)  # a light background
        colours = {colour for _, colour in rgb.getcolors(1 << 16)}
    assert (0xF6, 0xB2, 0x6B) in colours  # the window's taps are drawn


def test_apng_with_values(tmp_path):
    np.savetxt(tmp_path / "x.csv", np.arange(16.0).reshape(4, 4), delimiter=",")
    out = tmp_path / "a.png"
    result = run("animate", out, "--input", tmp_path / "x.csv", "--kernel", "sobel-x", "--padding", "same")
    assert result.exit_code == 0, result.output
    assert result.stderr == f"{out}: 18 frames, 16 steps\n"
    with Image.open(out) as png:
        assert (png.format, png.n_frames, png.is_animated) == ("PNG", 18, True)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ["o.mp4", "--shape", "5", "5", "--kernel-size", "3", "3"],
            1,
            "o.mp4: an animation is written as .gif or",
        ),
        (
            ["o.gif", "--shape", "40", "40", "--kernel-size", "3", "3"],
            2,
            "the animation would have 1444 frames",
        ),
        (["o.gif", "--shape", "5", "5"], 2, "give the kernel as --kernel-size KH KW or as --kernel"),
        (
            ["o.gif", "--input", "x.csv", "--kernel-size", "3", "3"],
            2,
            "--input FILE needs --kernel NAME|SPEC",
        ),
        (
            ["o.gif", "--kernel-size", "3", "3"],
            2,
            "give the input as --shape H W (geometry) or as --input FILE",
        ),
        (
            ["o.gif", "--shape", "5", "5", "--kernel-size", "3", "3", "--transpose", "--padding", "full"],
            2,
            "The `padding` argument of a transposed convolution must be one of 'valid', 'same'",
        ),
        (["o.gif", "--shape", "5", "5", "--kernel-size", "3", "3", "--stride", "0", "1"], 2, "--stride"),
        (
            ["o.gif", "--shape", "2", "2", "--kernel-size", "3", "3"],
            1,
            "image is 2x2 but the 3x3 kernel needs",
        ),
        (
            [
                "o.gif",
                "--shape",
                "30",
                "30",
                "--kernel-size",
                "31",
                "31",
                "--padding",
                "full",
                "--stride",
                "30",
                "30",
            ],
            2,
            "the frames would be",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    result = run("animate", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("o.*"))


def test_an_existing_file_is_kept(tmp_path):
    out = tmp_path / "o.gif"
    out.write_bytes(b"mine")
    result = run("animate", out, "--shape", "4", "4", "--kernel-size", "3", "3")
    assert (result.exit_code, result.output) == (
        1,
        f"Error: {out}: already exists (use --overwrite to replace it)\n",
    )
    assert out.read_bytes() == b"mine"
    assert run("animate", out, "--shape", "4", "4", "--kernel-size", "3", "3", "--overwrite").exit_code == 0


@pytest.mark.slow
def test_geometry_only_needs_no_tensorflow_and_the_installed_command_runs(convfilter_exe, tmp_path):
    code = (
        "import sys\n"
        "from convfilter.cli import cli\n"
        f"cli(['animate', {str(tmp_path / 'a.gif')!r}, '--shape', '5', '5', '--kernel-size', '3', '3'],"
        " prog_name='convfilter', standalone_mode=False)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "False", proc.stderr
    proc = subprocess.run(
        [
            str(convfilter_exe),
            "--no-server",
            "animate",
            str(tmp_path / "b.gif"),
            "--shape",
            "4",
            "4",
            "--kernel-size",
            "2",
            "2",
            "--stride",
            "2",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "b.gif") as gif:
        assert gif.n_frames == 4 + 2
