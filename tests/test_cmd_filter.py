"""The command line, in-process through CliRunner and as the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_pixels, read, rescale_reference, run
from PIL import Image
from reference import correlate

from convfilter import __version__
from convfilter.cli import cli
from convfilter.ops.kernels import KERNELS

ASCENT = Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"


def ascent() -> np.ndarray:
    return read(ASCENT).astype(np.float64)


# ---------------------------------------------------------------- success paths


def test_blur_ascent_stride_2_1_is_255x510_and_exact(tmp_path):
    out = tmp_path / "out.png"
    result = run("blur", ASCENT, out, "--stride", "2", "1")
    assert result.exit_code == 0, result.output
    pixels = read(out)
    assert pixels.shape == (255, 510) and pixels.dtype == np.uint8
    expected = np.clip(np.rint(correlate(ascent(), np.full((3, 3), 1 / 9), (2, 1))), 0, 255)
    np.testing.assert_array_equal(pixels, expected)


def test_same_padding_keeps_512x512(tmp_path):
    out = tmp_path / "out.png"
    assert run("blur", ASCENT, out, "--padding", "same").exit_code == 0
    assert read(out).shape == (512, 512)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_kernel_command_matches_reference(tmp_path, gray_png, name):
    out = tmp_path / f"{name}.png"
    args = ["--seed", "5"] if name == "random" else []
    result = run(name, gray_png, out, "--padding", "same", "--stride", "2", "1", *args)
    assert result.exit_code == 0, result.output
    kernel = KERNELS[name].grid(**({"seed": 5} if name == "random" else {}))
    ref = correlate(read(gray_png).astype(float), kernel, (2, 1), "same")
    averaging = (kernel >= 0).all() and abs(kernel.sum() - 1) < 1e-9
    assert_pixels(read(out), ref if averaging else rescale_reference(ref))


def test_dilation_with_stride_through_cli(tmp_path, gray_png):
    out = tmp_path / "out.png"
    result = run("sobel-y", gray_png, out, "--stride", "2", "3", "--dilation", "2", "2", "--range", "abs")
    assert result.exit_code == 0, result.output
    ref = correlate(read(gray_png).astype(float), KERNELS["sobel-y"].grid(), (2, 3), "valid", (2, 2))
    np.testing.assert_array_equal(read(out), np.clip(np.rint(np.abs(ref)), 0, 255))


@pytest.mark.parametrize(
    "mode,transform",
    [
        ("clip", lambda v: v),
        ("abs", np.abs),
        ("rescale", rescale_reference),
    ],
)
def test_range_modes(tmp_path, gray_png, mode, transform):
    out = tmp_path / "out.png"
    assert run("edge", gray_png, out, "--range", mode).exit_code == 0
    ref = correlate(read(gray_png).astype(float), KERNELS["edge"].grid())
    assert_pixels(read(out), transform(ref))


def test_bias_and_no_normalize(tmp_path, gray_png):
    out = tmp_path / "out.png"
    result = run("blur", gray_png, out, "--size", "2", "--no-normalize", "--bias", "-300", "--range", "clip")
    assert result.exit_code == 0, result.output
    ref = correlate(read(gray_png).astype(float), np.ones((2, 2)), bias=-300)
    np.testing.assert_array_equal(read(out), np.clip(np.rint(ref), 0, 255))


def test_random_seed_gives_same_image_and_other_seed_differs(tmp_path, gray_png):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, ["7", "7", "8"], strict=True):
        assert run("random", gray_png, path, "--seed", seed, "--size", "5").exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert not np.array_equal(read(paths[0]), read(paths[2]))


def test_depth_16_png_and_tiff(tmp_path, gray_png):
    for name in ["out.png", "out.tif"]:
        out = tmp_path / name
        assert run("identity", gray_png, out, "--depth", "16").exit_code == 0
        pixels = read(out)
        assert pixels.dtype == np.uint16
        ref = correlate(read(gray_png).astype(float), KERNELS["identity"].grid())
        np.testing.assert_array_equal(pixels, ref * 257)


def test_sixteen_bit_input_keeps_precision(tmp_path):
    src = tmp_path / "deep.png"
    values = (np.arange(20 * 20).reshape(20, 20) * 150).astype(np.uint16)
    Image.fromarray(values).save(src)
    out = tmp_path / "out.png"
    assert run("blur", src, out, "--size", "2").exit_code == 0
    pixels = read(out)
    assert pixels.dtype == np.uint16
    ref = correlate(values.astype(float), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(pixels, np.clip(np.rint(ref), 0, 65535))


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"])
def test_output_formats_by_extension(tmp_path, gray_png, ext):
    out = tmp_path / f"out.{ext}"
    assert run("blur", gray_png, out).exit_code == 0
    with Image.open(out) as img:
        assert img.size == (15, 11)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gray.png", f"out.{ext}"])


def test_output_replaces_existing_file_atomically_and_leaves_no_temp(tmp_path, gray_png):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    assert run("blur", gray_png, out, "--overwrite").exit_code == 0
    assert read(out).shape == (11, 15)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "out.png"]


def test_verbose_reports_shapes_grid_and_weights(tmp_path):
    result = CliRunner().invoke(
        cli, ["blur", str(ASCENT), str(tmp_path / "o.png"), "--stride", "2", "1", "-v"]
    )
    assert result.exit_code == 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"input:   {ASCENT}: 512x512 (tensor 1x512x512x1)"
    assert lines[1] == "kernel:  blur 3x3 (size=3, normalize=True), 9 weights"
    assert lines[2] == "         0.111111 0.111111 0.111111"
    assert lines[5] == (
        "layer:   Conv2D(1, (3, 3), strides=(2, 1), padding='valid', dilation_rate=(1, 1), use_bias=False)"
    )
    assert lines[6] == (
        "engine:  same result, computed fast: rows cut into 16-column windows (16 channels, 14 outputs "
        "each), Conv2D(14, (3, 1), strides=(2, 1), dilation_rate=(1, 1)) with the kernel spread over its weights"
    )
    import tensorflow as tf  # imported by the run above already

    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert lines[7].startswith("device:  GPU:0") if gpu else lines[7] == "device:  CPU"
    assert lines[8].startswith(
        f"output:  {tmp_path / 'o.png'}: 255x510 (tensor 1x255x510x1), 8-bit, range clip"
    )


def test_verbose_shows_random_seed(tmp_path, gray_png):
    result = CliRunner().invoke(cli, ["random", str(gray_png), str(tmp_path / "o.png"), "-v"])
    assert result.exit_code == 0
    assert "(size=3, seed=" in result.stderr


def test_version_and_help():
    assert run("--version").output == f"convfilter, version {__version__}\n"
    help_text = run("--help").output
    assert "convfilter blur sample_images/ascent.png out.png --stride 2 1" in help_text
    for name in KERNELS:
        assert name in help_text
    edge_help = run("edge", "--help").output
    assert "-1 -1 -1" in edge_help and "--size" not in edge_help
    assert "auto (default): clip for kernels with all weights >= 0 summing to 1" in " ".join(
        edge_help.split()
    )


# ---------------------------------------------------------------- errors


def error_run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="convfilter")
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_missing_input(tmp_path):
    out = tmp_path / "out.png"
    result = error_run("blur", tmp_path / "nope.png", out)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.png'}: no such file\n"
    assert not out.exists()


def test_directory_as_input(tmp_path):
    result = error_run("blur", tmp_path, tmp_path / "out.png")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path}: is a directory, not an image file\n"


def test_not_an_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    result = error_run("blur", bad, tmp_path / "out.png")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}: not an image file Pillow can read\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png"]


def test_unknown_output_extension(tmp_path, gray_png):
    out = tmp_path / "out.xyz"
    result = error_run("blur", gray_png, out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out}: unknown output format ('.xyz'); use one of .png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp\n"
    )
    assert not out.exists()


def test_image_smaller_than_kernel(tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((2, 4), np.uint8)).save(tiny)
    out = tmp_path / "out.png"
    result = error_run("blur", tiny, out, "--size", "3")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tiny}: image is 2x4 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding\n"
    )
    assert not out.exists()


def test_output_is_input_is_refused(tmp_path, gray_png):
    before = gray_png.read_bytes()
    result = error_run("blur", gray_png, gray_png)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {gray_png}: is the input file; refusing to overwrite it\n"
    assert gray_png.read_bytes() == before


def test_missing_output_directory(tmp_path, gray_png):
    out = tmp_path / "no" / "out.png"
    result = error_run("blur", gray_png, out)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {out}: directory {tmp_path / 'no'} does not exist\n"


def test_sixteen_bit_jpeg_refused(tmp_path, gray_png):
    out = tmp_path / "out.jpg"
    result = error_run("blur", gray_png, out, "--depth", "16")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {out}: JPEG cannot store 16-bit pixels; use .png or .tif\n"


def test_failure_leaves_existing_output_untouched(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = error_run("blur", bad, out, "--overwrite")
    assert result.exit_code == 1
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "out.png"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--stride", "0", "1"], "Error: Invalid value for '--stride': 0 is not in the range x>=1."),
        (["--dilation", "1", "-2"], "Error: Invalid value for '--dilation': -2 is not in the range x>=1."),
        (
            ["--padding", "circular"],
            "Error: Invalid value for '--padding': 'circular' is not one of 'valid', 'same', 'full', N, PY,PX or TOP,BOTTOM,LEFT,RIGHT (each 0..65536).",
        ),
        (["--size", "0"], "Error: Invalid value for '--size': 0 is not in the range 1<=x<=101."),
        (
            ["--range", "log"],
            "Error: Invalid value for '--range': 'log' is not one of 'auto', 'clip', 'rescale', 'abs'.",
        ),
        (["--stride", "2"], "Error: Option '--stride' requires 2 arguments."),
    ],
)
def test_bad_option_values_exit_2(tmp_path, gray_png, args, message):
    out = tmp_path / "out.png"
    result = error_run("blur", gray_png, out, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message
    if "requires" not in message:  # Click reports a missing option value before it has a usage line
        assert result.stderr.startswith("Usage: convfilter blur [OPTIONS] INPUT... [OUTPUT]\n")
    assert not out.exists()


@pytest.mark.parametrize("name", ["edge", "sobel-x", "sobel-y", "sharpen", "emboss"])
def test_fixed_kernels_reject_size(tmp_path, gray_png, name):
    result = error_run(name, gray_png, tmp_path / "out.png", "--size", "5")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--size': {name} is a fixed 3x3 kernel and takes no size "
        "(blur, gaussian, identity and random take --size)."
    )


def test_identity_even_size_is_a_usage_error(tmp_path, gray_png):
    result = error_run("identity", gray_png, tmp_path / "out.png", "--size", "4")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--size': identity: size must be odd so the kernel has a centre, got 4"
    )


# ---------------------------------------------------------------- the installed command


def _env() -> dict:
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


@pytest.mark.slow
def test_installed_command_filters_ascent_with_a_clean_stderr(tmp_path, convfilter_exe):
    out = tmp_path / "out.png"
    proc = subprocess.run(
        [convfilter_exe, "blur", ASCENT, out, "--stride", "2", "1"],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""  # no TensorFlow log noise
    assert read(out).shape == (255, 510)


@pytest.mark.slow
def test_installed_command_error_is_one_line(tmp_path, convfilter_exe):
    proc = subprocess.run(
        [convfilter_exe, "edge", tmp_path / "missing.png", tmp_path / "out.png"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"Error: {tmp_path / 'missing.png'}: no such file\n"
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_python_dash_m_and_help_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from convfilter.cli import cli\n"
        "for args in (['--help'], ['--version'], ['blur', '--help'], ['edge', '--help']):\n"
        "    try:\n"
        "        cli(args, prog_name='convfilter')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False False"
    version = subprocess.run(
        [sys.executable, "-m", "convfilter", "--version"], capture_output=True, text=True
    )
    assert version.stdout == f"convfilter, version {__version__}\n"


def test_shell_completion_lists_kernels_and_options():
    env = {"_CONVFILTER_COMPLETE": "bash_complete", "COMP_WORDS": "convfilter so", "COMP_CWORD": "1"}
    result = CliRunner().invoke(cli, [], prog_name="convfilter", env=env)
    assert result.output.split() == ["plain,sobel-x", "plain,sobel-y"]
    env.update(COMP_WORDS="convfilter blur --pa", COMP_CWORD="2")
    result = CliRunner().invoke(cli, [], prog_name="convfilter", env=env)
    assert result.output.split() == ["plain,--padding"]
