"""Filter banks (``convfilter bank``): one Conv2D(N, ...) against N single-filter NumPy references."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_pixels, rescale_reference, run
from PIL import Image
from reference import correlate, tf_same_padding

from convfilter import ArgumentError
from convfilter.cli import cli
from convfilter.engine.bank import bank_array

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
SOBEL_Y = SOBEL_X.T
NUMPY_MODE = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "wrap": "wrap"}


def responses(x, kernels, stride=(1, 1), padding="valid", dilation=(1, 1), border="zero", bias=0.0):
    """Every kernel's reference output, stacked on the last axis (the bank's N channels)."""
    outputs = []
    for k in kernels:
        if padding == "valid":
            padded = x
        else:
            pads = []
            for axis in (0, 1):
                n, size, s, d = x.shape[axis], k.shape[axis], stride[axis], dilation[axis]
                pads.append((d * (size - 1),) * 2 if padding == "full" else tf_same_padding(n, size, s, d))
            padded = np.pad(x, pads, mode=NUMPY_MODE[border])
        outputs.append(correlate(padded, k, stride, "valid", dilation, bias))
    return np.stack(outputs, axis=-1)


COMBINE = {
    "stack": lambda r: r,
    "magnitude": lambda r: np.sqrt(np.sum(r**2, axis=-1)),
    "max": lambda r: r.max(axis=-1),
    "sum": lambda r: r.sum(axis=-1),
}


@pytest.mark.parametrize("combine", list(COMBINE))
@pytest.mark.parametrize(
    "stride, padding, dilation, border",
    [
        ((1, 1), "valid", (1, 1), "zero"),
        ((2, 1), "valid", (1, 1), "zero"),
        ((1, 1), "same", (1, 1), "zero"),
        ((2, 2), "same", (1, 1), "reflect"),
        ((1, 1), "full", (2, 1), "replicate"),
        ((2, 2), "same", (2, 2), "wrap"),
        ((3, 2), "valid", (2, 1), "zero"),
    ],
)
def test_matches_each_filter_run_alone(combine, stride, padding, dilation, border):
    rng = np.random.default_rng(len(combine) + stride[0] * 10)
    x = rng.integers(0, 9, (9, 11)).astype(np.float64)
    kernels = [SOBEL_X, SOBEL_Y, rng.integers(-2, 3, (3, 3)).astype(np.float64)]
    got = bank_array(
        x,
        kernels,
        stride=stride,
        padding=padding,
        dilation=dilation,
        border=border,
        combine=combine,
        bias=0.5,
    )
    want = COMBINE[combine](responses(x, kernels, stride, padding, dilation, border, bias=0.5))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


def test_sobel_pair_is_the_gradient_magnitude():
    x = np.zeros((6, 6))
    x[:, 3:] = 10.0  # a vertical edge: only sobel-x responds
    got = bank_array(x, [SOBEL_X, SOBEL_Y], combine="magnitude")
    np.testing.assert_array_equal(got, np.abs(correlate(x, SOBEL_X)))


def test_kernels_of_different_sizes_are_refused():
    with pytest.raises(ArgumentError) as info:
        bank_array(np.ones((5, 5)), [SOBEL_X, np.ones((5, 5))], names=["sobel-x", "box"])
    assert str(info.value) == (
        "the filters of one Conv2D all have one size: sobel-x is 3x3, box is 5x5 "
        "(--size N sets the named kernels that take one)"
    )


# ----------------------------------------------------------------- the command line


def _ascent() -> np.ndarray:
    with Image.open(ASCENT) as img:
        return np.asarray(img.convert("L"), dtype=np.float64)


def test_magnitude_image_and_v(tmp_path):
    result = run("bank", "sobel-x", "sobel-y", ASCENT, tmp_path / "edges.png", "-v")
    assert result.exit_code == 0, result.output
    want = rescale_reference(COMBINE["magnitude"](responses(_ascent(), [SOBEL_X, SOBEL_Y])))
    with Image.open(tmp_path / "edges.png") as img:
        got = np.asarray(img, dtype=np.float64)
    assert got.shape == (510, 510)
    assert_pixels(got, want)
    assert "filters: 2, each 3x3: weights shape (3, 3, 1, 2), 18 trainable (2*3*3)" in result.stderr
    assert (
        "layer:   Conv2D(2, (3, 3), strides=(1, 1), padding='valid', dilation_rate=(1, 1), use_bias=False) "
        "-> sqrt of the sum of the 2 outputs squared" in result.stderr
    )


def test_stack_npy_and_stack_dir(tmp_path):
    npy = tmp_path / "r.npy"
    result = run(
        "bank", "sobel-x", "sobel-y", "1,1;1,1;1,1", ASCENT, npy, "--combine", "stack", "--size", "3"
    )
    assert result.exit_code == 2  # the custom kernel is 3x2, and no kernel takes --size
    result = run("bank", "sobel-x", "sobel-y", ASCENT, npy, "--combine", "stack", "--stride", "2", "2")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        np.load(npy), responses(_ascent(), [SOBEL_X, SOBEL_Y], (2, 2)), rtol=1e-6, atol=1e-3
    )
    again = run("bank", "sobel-x", "sobel-y", ASCENT, npy, "--combine", "stack")
    assert (again.exit_code, again.output) == (
        1,
        f"Error: {npy}: already exists (use --overwrite to replace it)\n",
    )
    out = tmp_path / "filters"
    result = run("bank", "sobel-x", "blur", "sobel-x", ASCENT, "-o", out, "--combine", "stack")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "ascent-blur.png",
        "ascent-sobel-x-2.png",
        "ascent-sobel-x.png",
    ]
    with Image.open(out / "ascent-blur.png") as img:
        blur = np.asarray(img, dtype=np.float64)
    assert_pixels(blur, correlate(_ascent(), np.full((3, 3), 1 / 9)))  # blur alone maps by clip


@pytest.mark.parametrize(
    "args, message",
    [
        (["sobel-x", "gaussian", "IN", "o.png"], "the filters of one Conv2D all have one size"),
        (["sobel-x", "sobel-y", "--sigma", "2", "IN", "o.png"], "none of the kernels takes --sigma"),
        (["IN", "o.png"], "give at least one KERNEL (a name or a SPEC) before the paths"),
        (
            ["sobel-x", "IN", "a.png", "b.npy", "--combine", "stack"],
            "N filters kept apart take INPUT OUTPUT.npy, or INPUT... -o DIR; got 3 path(s)",
        ),
        (["sobel-x", "IN", "o.png", "--combine", "stack"], "only .npy holds"),
        (["sobel-x", "IN", "o.npy", "--padding", "full", "--export", "m.h5"], "use .keras"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    args = [str(ASCENT) if a == "IN" else a for a in args]
    result = CliRunner().invoke(cli, ["bank", *args], prog_name="convfilter")
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(Path.cwd().glob("o.*"))


def test_batch_with_a_combine(tmp_path):
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    result = run(
        "bank",
        "sobel-x",
        "sobel-y",
        tmp_path / "a.png",
        tmp_path / "b.png",
        "-o",
        tmp_path / "out",
        "--combine",
        "max",
        "--json",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["written", "written"]
    with Image.open(tmp_path / "a.png") as img:
        x = np.asarray(img, dtype=np.float64)
    want = rescale_reference(COMBINE["max"](responses(x, [SOBEL_X, SOBEL_Y])))
    with Image.open(tmp_path / "out" / "a.png") as img:
        assert_pixels(np.asarray(img), want)


def test_export_saves_the_n_filter_layer(tmp_path):
    x = np.random.default_rng(5).integers(0, 9, (8, 9)).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    result = run(
        "bank",
        "sobel-x",
        "sobel-y",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "--padding",
        "same",
        "--stride",
        "2",
        "2",
        "--dilation",
        "2",
        "2",
        "--export",
        tmp_path / "m.keras",
    )
    assert result.exit_code == 0, result.output
    from convfilter.engine.model import keras_module

    model = keras_module().saving.load_model(tmp_path / "m.keras")
    conv = model.get_layer("bank")
    assert tuple(conv.kernel.shape) == (3, 3, 1, 2)
    got = np.asarray(model(x[np.newaxis, ..., np.newaxis].astype(np.float32)))[0]
    np.testing.assert_allclose(got, responses(x, [SOBEL_X, SOBEL_Y], (2, 2), "same", (2, 2)), atol=1e-4)


def test_explain_filters():
    result = run("explain", "--shape", "512", "512", "--kernel-size", "3", "3", "--filters", "2", "--json")
    data = json.loads(result.output)
    assert (data["weights_shape"], data["params"], data["filters"]) == ([3, 3, 1, 2], 18, 2)
    text = run("explain", "--shape", "512", "512", "--kernel-size", "3", "3", "--filters", "2", "--bias", "1")
    assert "weights:      20 trainable, shape (3, 3, 1, 2) (2 filters of 3*3 weights" in text.output
    assert "output:       510x510 (tensor 1x510x510x2)" in text.output


@pytest.mark.slow
def test_the_installed_command(convfilter_exe, server_env, tmp_path):
    proc = subprocess.run(
        [
            str(convfilter_exe),
            "bank",
            "sobel-x",
            "sobel-y",
            str(ASCENT),
            str(tmp_path / "r.npy"),
            "--combine",
            "stack",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "r.npy").shape == (510, 510, 2)


def test_stack_of_several_inputs_writes_n_files_each(tmp_path):
    images = {}
    for name in ("a", "b"):
        images[name] = np.random.default_rng(len(name) + ord(name)).integers(0, 256, (9, 11), dtype=np.uint8)
        Image.fromarray(images[name]).save(tmp_path / f"{name}.png")
    args = ["bank", "1,-1", "[[-1,1]]", tmp_path / "a.png", tmp_path / "b.png", "--combine", "stack"]
    result = CliRunner().invoke(cli, [str(a) for a in [*args, "-o", tmp_path / "out", "--range", "clip"]])
    assert result.exit_code == 0, result.output
    assert result.output == f"4 written (one per filter, 2 per input) in {tmp_path / 'out'}\n"
    for name, pixels in images.items():
        diff = correlate(pixels.astype(np.float64), np.array([[1.0, -1.0]]))
        with Image.open(tmp_path / "out" / f"{name}-custom1.png") as img:
            assert np.array_equal(np.asarray(img), np.clip(np.round(diff), 0, 255).astype(np.uint8))
        with Image.open(tmp_path / "out" / f"{name}-custom2.png") as img:
            assert np.array_equal(np.asarray(img), np.clip(np.round(-diff), 0, 255).astype(np.uint8))
