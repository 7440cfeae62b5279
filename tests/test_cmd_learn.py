"""`convfilter learn`: the layer trained back to the kernel that made AFTER, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ASCENT, read, run
from PIL import Image
from reference import correlate

from convfilter.engine.model import keras_module
from convfilter.ops.kernels import KERNELS


def test_learn_recovers_a_gaussian_from_a_16_bit_after_image(tmp_path, crop_png):
    after, kernel_csv = tmp_path / "after.png", tmp_path / "k.csv"
    assert run("gaussian", crop_png, after, "--size", "3", "--sigma", "0.8", "--depth", "16").exit_code == 0
    result = run("learn", crop_png, after, "--size", "3", "-o", kernel_csv)
    assert result.exit_code == 0, result.output
    gaussian = KERNELS["gaussian"].grid(size=3, sigma=0.8)
    learned = np.loadtxt(kernel_csv, delimiter=",")
    assert np.abs(learned - gaussian).max() < 0.01
    lines = result.output.splitlines()
    assert (
        lines[0]
        == "learned 3x3 kernel: BEFORE 40x48 -> AFTER 38x46 (stride 1×1 · padding 'valid' · dilation 1×1)"
    )
    assert lines[4].startswith("final error: mean squared ")
    assert lines[5].startswith("epochs: ") and lines[5].endswith(
        " of 5000, stopped early: the error stopped falling"
    )
    assert lines[6] == f"kernel written to {kernel_csv}"


@pytest.mark.slow
def test_learn_from_matrix_files_with_bias_stride_and_exports(tmp_path, crop_png):
    image = read(crop_png).astype(np.float64)
    kernel = np.random.default_rng(5).uniform(-1, 1, (3, 3))
    np.save(tmp_path / "before.npy", image)
    np.save(tmp_path / "after.npy", correlate(image, kernel, (2, 2), "same", bias=-4.0))
    result = run(
        "learn",
        tmp_path / "before.npy",
        tmp_path / "after.npy",
        "--size",
        "3",
        "--stride",
        "2",
        "2",
        "--padding",
        "same",
        "--bias",
        "-o",
        tmp_path / "k.npy",
        "--export",
        tmp_path / "learned.keras",
        "--compare",
        tmp_path / "fig.png",
    )
    assert result.exit_code == 0, result.output
    learned = np.load(tmp_path / "k.npy", allow_pickle=False)
    assert np.abs(learned - kernel).max() < 0.01
    bias_line = next(line for line in result.output.splitlines() if line.startswith("bias: "))
    assert abs(float(bias_line.split()[1]) + 4.0) < 0.05
    model = keras_module().saving.load_model(tmp_path / "learned.keras")
    np.testing.assert_array_equal(
        model.get_layer("conv").get_weights()[0][..., 0, 0], learned.astype(np.float32)
    )
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_learn_errors(tmp_path, crop_png):
    result = run("learn", crop_png, crop_png, "--size", "3")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {crop_png}: AFTER is 40x48 but a 3x3 kernel with stride 1x1, dilation 1x1 and 'valid' padding "
        "turns the 40x48 BEFORE into 38x46"
    )
    result = run("learn", crop_png, crop_png, "--size", "3", "--padding", "same", "-o", tmp_path / "k.json")
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {tmp_path / 'k.json'}: a kernel is saved as .csv, .npy, .txt, not '.json'"
    )
    result = run("learn", crop_png, tmp_path / "missing.png", "--size", "3")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'missing.png'}: no such file"
    result = run("learn", crop_png, crop_png)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "Error: Missing option '--size'."


def test_learn_with_a_reflect_border(tmp_path, crop_png):
    image = read(crop_png).astype(np.float64)
    kernel = np.array([[0.5, -1.0, 0.25], [0.0, 2.0, -0.75], [0.1, 0.2, 0.3]])
    padded = np.pad(image, 1, mode="reflect")
    np.save(tmp_path / "after.npy", correlate(padded, kernel))
    result = run(
        "learn",
        crop_png,
        tmp_path / "after.npy",
        "--size",
        "3",
        "--padding",
        "same",
        "--border",
        "reflect",
        "-o",
        tmp_path / "k.txt",
    )
    assert result.exit_code == 0, result.output
    assert np.abs(np.loadtxt(tmp_path / "k.txt") - kernel).max() < 0.01
    result = run("learn", crop_png, tmp_path / "after.npy", "--size", "3", "--border", "reflect")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: border 'reflect' has no effect with padding 'valid' (nothing is padded); use padding 'same' or 'full'"
    )


def test_learn_on_a_sample_crop_within_0_01_and_the_kernel_file_reproduces_it(tmp_path):
    before = tmp_path / "before.png"
    Image.fromarray(read(ASCENT)[128:256, 192:320]).save(before)  # 128x128 of real texture
    kernel = "0.2,-0.5,0.3;1.1,0.05,-0.7;-0.25,0.6,0.4"
    assert run("custom", "--kernel", kernel, before, tmp_path / "after.npy").exit_code == 0
    result = run("learn", before, tmp_path / "after.npy", "--size", "3", "-o", tmp_path / "k.csv")
    assert result.exit_code == 0, result.output
    expected = [[0.2, -0.5, 0.3], [1.1, 0.05, -0.7], [-0.25, 0.6, 0.4]]
    assert np.abs(np.loadtxt(tmp_path / "k.csv", delimiter=",") - expected).max() < 0.01
    # The saved kernel is what custom --kernel @FILE reads: it reproduces AFTER.
    assert run("custom", "--kernel", f"@{tmp_path / 'k.csv'}", before, tmp_path / "again.npy").exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), np.load(tmp_path / "after.npy"), atol=0.05)
