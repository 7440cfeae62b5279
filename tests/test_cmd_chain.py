"""`convfilter chain`: stages in one Keras model against the stages run one by one and NumPy references."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import SOBEL_X, assert_pixels, read, rescale_reference, run
from PIL import Image
from reference import correlate
from reference_pool import pool

from convfilter.engine.model import keras_module
from convfilter.ops.kernels import KERNELS


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
    assert_pixels(read(out), rescale_reference(expected))


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


@pytest.mark.slow
def test_installed_chain_and_learn_commands(tmp_path, crop_png, convfilter_exe, server_env):
    env = {**server_env, "PYTHONWARNINGS": "ignore"}
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
    assert_pixels(read(out), rescale_reference(expected))
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
