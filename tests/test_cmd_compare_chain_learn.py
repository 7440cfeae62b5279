"""The CLI of --compare, --export, chain and learn: CliRunner in-process, and the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from reference import correlate
from reference_pool import pool

from convfilter.cli import cli
from convfilter.engine.model import keras_module
from convfilter.ops.kernels import KERNELS

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, prog_name="convfilter")


def read(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def rescaled(values: np.ndarray) -> np.ndarray:
    return np.rint((values - values.min()) / (values.max() - values.min()) * 255)


@pytest.fixture
def crop_png(tmp_path) -> Path:
    """A 40x48 crop of the sample image: real texture, small enough to be fast."""
    path = tmp_path / "crop.png"
    Image.fromarray(read(ASCENT)[200:240, 100:148]).save(path)
    return path


# ---------------------------------------------------------------- --compare / --export


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


# ---------------------------------------------------------------- chain


def test_chain_equals_stage_by_stage(tmp_path, crop_png):
    out = tmp_path / "out.png"
    result = run(
        "chain",
        crop_png,
        out,
        "gaussian",
        "--size",
        "5",
        "--",
        "sobel-x",
        "--padding",
        "same",
        "--",
        "pool",
        "max",
        "--size",
        "2",
    )
    assert result.exit_code == 0, result.output
    image = read(crop_png).astype(np.float64)
    gaussian = KERNELS["gaussian"].grid(size=5, sigma=1.0)
    expected = pool(correlate(correlate(image, gaussian), SOBEL_X, padding="same"), "max", 2)
    assert read(out).shape == (18, 22)
    assert np.abs(read(out).astype(float) - rescaled(expected)).max() <= 1


def test_chain_of_averaging_stages_is_clipped_and_every_option_works(tmp_path, crop_png):
    out, fig, model_path = tmp_path / "out.png", tmp_path / "fig.png", tmp_path / "chain.keras"
    result = run(
        "chain",
        "--compare",
        fig,
        "--export",
        model_path,
        "-v",
        crop_png,
        out,
        "blur",
        "--size",
        "2",
        "--stride",
        "2",
        "2",
        "--",
        "pool",
        "avg",
        "--size",
        "3",
        "--stride",
        "1",
        "2",
        "--padding",
        "same",
    )
    assert result.exit_code == 0, result.output
    image = read(crop_png).astype(np.float64)
    expected = pool(correlate(image, np.full((2, 2), 0.25), (2, 2)), "avg", 3, (1, 2), "same")
    np.testing.assert_array_equal(read(out), np.clip(np.rint(expected), 0, 255))
    assert (
        "stage 2: AveragePooling2D(pool_size=(3, 3), strides=(1, 2), padding='same') -> 20×12, no weights"
        in result.output
    )
    assert "range clip" in result.output and "4 weights in all" in result.output
    model = keras_module().saving.load_model(model_path)
    assert [layer.name for layer in model.layers] == ["image", "stage1_blur", "stage2_avg_pool"]
    with Image.open(fig) as figure:
        assert figure.size[0] > figure.size[1]


@pytest.mark.parametrize(
    "stages, message",
    [
        (["blur", "--", "--", "edge"], "Error: stage 2 is empty (two '--' in a row, or one at an end)"),
        (
            ["blur", "--", "median"],
            "Error: stage 2: unknown stage 'median'; use one of: blur, gaussian, edge, sobel-x, sobel-y, sharpen, emboss, identity, random, custom, pool",
        ),
        (
            ["blur", "--compare", "f.png"],
            "Error: stage 1 (blur): --compare is an option of 'chain' itself; give it before INPUT",
        ),
        (
            ["sobel-x", "--size", "5"],
            "Error: stage 1 (sobel-x): Invalid value for '--size': sobel-x is a fixed 3x3 kernel and takes no size (blur, gaussian, identity and random take --size).",
        ),
        (
            ["pool", "min"],
            "Error: stage 1 (pool): Invalid value for '{max|avg}': 'min' is not one of 'max', 'avg'.",
        ),
        (
            ["edge", "--stride", "0", "1"],
            "Error: stage 1 (edge): Invalid value for '--stride': 0 is not in the range x>=1.",
        ),
    ],
)
def test_chain_stage_errors(tmp_path, crop_png, stages, message):
    result = run("chain", crop_png, tmp_path / "out.png", *stages)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == message
    assert not (tmp_path / "out.png").exists()


def test_chain_stage_that_does_not_fit_names_the_stage(tmp_path, crop_png):
    result = run(
        "chain", crop_png, tmp_path / "out.png", "pool", "max", "--size", "20", "--", "blur", "--size", "3"
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {crop_png}: stage 2 (blur): image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding"
    )
    assert not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------- learn


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


# ---------------------------------------------------------------- the installed command


@pytest.mark.slow
def test_installed_chain_and_learn_commands(tmp_path, crop_png, convfilter_exe):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out, model_path = tmp_path / "out.png", tmp_path / "m.keras"
    done = subprocess.run(
        [convfilter_exe, "chain", "--export", model_path, crop_png, out, "edge", "--", "pool", "max"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    image = read(crop_png).astype(np.float64)
    expected = pool(correlate(image, KERNELS["edge"].build()), "max", 2)
    assert np.abs(read(out).astype(float) - rescaled(expected)).max() <= 1
    after = tmp_path / "after.npy"
    np.save(after, correlate(image, np.array([[0.25, -0.5], [1.0, 0.125]])))
    done = subprocess.run(
        [convfilter_exe, "learn", crop_png, after, "--size", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""  # not a terminal: no progress lines
    grid = np.array([[float(v) for v in line.split()] for line in done.stdout.splitlines()[1:3]])
    assert np.abs(grid - [[0.25, -0.5], [1.0, 0.125]]).max() < 0.01


# ---------------------------------------------------------------- with custom kernels, matrices, full padding, borders


def test_chain_of_matrices_with_custom_full_padding_and_convolve(tmp_path):
    x = np.arange(30.0).reshape(5, 6) ** 1.5
    np.save(tmp_path / "x.npy", x)
    result = run(
        "chain",
        tmp_path / "x.npy",
        tmp_path / "y.npy",
        "custom",
        "--kernel",
        "1,2;0,-1",
        "--padding",
        "full",
        "--convolve",
        "--",
        "blur",
        "--size",
        "2",
        "--scale",
        "4",
        "--stride",
        "2",
        "2",
        "--dilation",
        "1",
        "2",
    )
    assert result.exit_code == 0, result.output
    flipped = np.array([[-1.0, 0], [2, 1]])
    first = correlate(np.pad(x, 1), flipped)  # 'full' for a 2x2 kernel: one zero on every side
    expected = correlate(first, np.ones((2, 2)), (2, 2), "valid", (1, 2))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6)


def test_chain_refuses_borders_that_keras_cannot_pad(tmp_path, crop_png):
    result = run("chain", crop_png, tmp_path / "o.png", "blur", "--padding", "same", "--border", "reflect")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: stage 1 (blur): border 'reflect' is padded outside Keras and cannot be part of one model; use --border zero"
    )


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


@pytest.mark.slow
def test_help_and_stage_errors_import_neither_tensorflow_nor_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "from convfilter.cli import cli\n"
        "runs = [['chain', '--help'], ['learn', '--help'], ['chain', 'a.png', 'b.png', 'blur', '--', 'nope']]\n"
        "for args in runs:\n"
        "    try:\n"
        "        cli(args, prog_name='convfilter')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, 2), exc.code\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False False False"


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


def test_chain_equals_the_stages_run_one_by_one_with_matrix_outputs(tmp_path, crop_png):
    steps = [
        ["gaussian", "--size", "5", "--sigma", "1.5"],
        ["sobel-y", "--padding", "same", "--stride", "1", "2"],
        ["pool", "avg", "--size", "2"],
        ["custom", "--kernel", "1,-1", "--padding", "full", "--convolve"],
    ]
    current = crop_png
    for number, step in enumerate(steps, start=1):
        out = tmp_path / f"step{number}.npy"
        if step[0] == "pool":
            args = ["pool", step[1], current, out, *step[2:]]
        else:
            args = [step[0], current, out, *step[1:]]
        assert run(*args).exit_code == 0
        current = out
    chained = []
    for step in steps:
        chained += [*step, "--"]
    result = run("chain", crop_png, tmp_path / "chain.npy", *chained[:-1])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "chain.npy"), np.load(current), rtol=1e-5, atol=1e-3)


@pytest.mark.slow
def test_learn_on_the_full_sample_image_within_0_01(tmp_path):
    kernel = "0.2,-0.5,0.3;1.1,0.05,-0.7;-0.25,0.6,0.4"
    assert run("custom", "--kernel", kernel, ASCENT, tmp_path / "after.npy").exit_code == 0
    result = run("learn", ASCENT, tmp_path / "after.npy", "--size", "3", "-o", tmp_path / "k.csv")
    assert result.exit_code == 0, result.output
    expected = [[0.2, -0.5, 0.3], [1.1, 0.05, -0.7], [-0.25, 0.6, 0.4]]
    assert np.abs(np.loadtxt(tmp_path / "k.csv", delimiter=",") - expected).max() < 0.01
    # The saved kernel is what custom --kernel @FILE reads: it reproduces AFTER.
    assert run("custom", "--kernel", f"@{tmp_path / 'k.csv'}", ASCENT, tmp_path / "again.npy").exit_code == 0
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), np.load(tmp_path / "after.npy"), atol=0.05)
