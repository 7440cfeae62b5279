"""--compare FIGURE and --export MODEL.keras on the filtering commands and pool: checked first, written after."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import SOBEL_X, read, rescaled, run
from PIL import Image
from reference import correlate
from reference_pool import pool

from convfilter.engine.model import keras_module


def test_kernel_command_with_compare_and_export(tmp_path, crop_png):
    out, fig, model_path = tmp_path / "out.png", tmp_path / "fig.png", tmp_path / "m.keras"
    result = run("sobel-x", crop_png, out, "--stride", "2", "1", "--compare", fig, "--export", model_path)
    assert result.exit_code == 0, result.output
    with Image.open(fig) as figure:
        figure.load()
        assert figure.size[0] > figure.size[1]
    image = read(crop_png).astype(np.float64)
    expected = correlate(image, SOBEL_X, (2, 1))
    np.testing.assert_array_equal(read(out), rescaled(expected))
    model = keras_module().saving.load_model(model_path)
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0][..., 0, 0], SOBEL_X)
    computed = np.asarray(model(image[np.newaxis, ..., np.newaxis].astype(np.float32)))[0, ..., 0]
    np.testing.assert_allclose(computed, expected, atol=1e-3)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (
            ["--compare", "{tmp}/fig.gif"],
            1,
            "Error: {tmp}/fig.gif: unknown figure format ('.gif'); use one of .png, .pdf, .svg",
        ),
        (
            ["--export", "{tmp}/m.h5"],
            1,
            "Error: {tmp}/m.h5: a model is saved in Keras's native format; use .keras, not '.h5'",
        ),
        (["--export", "{tmp}/no/m.keras"], 1, "Error: {tmp}/no/m.keras: directory {tmp}/no does not exist"),
        (
            ["--compare", "{tmp}/out.png"],
            2,
            "Error: {tmp}/out.png: is also OUTPUT; --compare needs a file of its own",
        ),
    ],
)
def test_side_output_errors_come_before_any_work(tmp_path, crop_png, args, code, message):
    args = [a.format(tmp=tmp_path) for a in args]
    result = run("blur", crop_png, tmp_path / "out.png", *args)
    assert result.exit_code == code
    assert result.output.strip().splitlines()[-1] == message.format(tmp=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["crop.png"]


def test_custom_with_full_padding_exports_a_zero_padding_model(tmp_path):
    x = np.random.default_rng(4).normal(size=(6, 7))
    np.save(tmp_path / "x.npy", x)
    result = run(
        "custom",
        "--kernel",
        "1,-2,1",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "--padding",
        "full",
        "--export",
        tmp_path / "m.keras",
        "--compare",
        tmp_path / "fig.png",
    )
    assert result.exit_code == 0, result.output
    model = keras_module().saving.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "ZeroPadding2D", "Conv2D"]
    computed = np.asarray(model(x[np.newaxis, ..., np.newaxis].astype(np.float32)))[0, ..., 0]
    np.testing.assert_allclose(computed, np.load(tmp_path / "y.npy"), rtol=1e-6)
    np.testing.assert_allclose(
        computed, correlate(np.pad(x, ((0, 0), (2, 2))), [[1.0, -2, 1]]), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--padding", "same", "--border", "wrap", "--export", "m.keras"],
            "Error: --export: border 'wrap' is padded outside Keras (no standard layer does it), so a saved model would not compute this output; use --border zero",
        ),
        (
            ["--color", "--compare", "f.png"],
            "Error: --compare draws single-channel results; leave out --color",
        ),
    ],
)
def test_side_outputs_refused_where_they_would_not_be_true(tmp_path, crop_png, args, message):
    result = run(
        "gaussian",
        crop_png,
        tmp_path / "o.png",
        *[str(tmp_path / a) if a.endswith((".keras", ".png")) else a for a in args],
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == message
    assert sorted(os.listdir(tmp_path)) == ["crop.png"]


def test_pool_command_with_compare_and_export(tmp_path, crop_png):
    out, fig, model_path = tmp_path / "p.npy", tmp_path / "p.svg", tmp_path / "p.keras"
    result = run(
        "pool",
        "avg",
        crop_png,
        out,
        "--size",
        "3",
        "--padding",
        "same",
        "--compare",
        fig,
        "--export",
        model_path,
    )
    assert result.exit_code == 0, result.output
    image = read(crop_png).astype(np.float64)
    expected = pool(image, "avg", 3, None, "same")
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5)
    model = keras_module().saving.load_model(model_path)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "AveragePooling2D"]
    computed = np.asarray(model(image[np.newaxis, ..., np.newaxis].astype(np.float32)))[0, ..., 0]
    np.testing.assert_allclose(computed, expected, rtol=1e-5)
    assert fig.read_bytes().startswith(b"<?xml")
