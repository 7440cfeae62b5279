"""`convfilter custom --kernel SPEC`, --normalize/--scale, and matrix files in and out of the CLI."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from helpers import invoke as run
from PIL import Image
from reference import correlate

from convfilter.io.kernelspec import normalize, parse_kernel


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


# --- the parser -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("1,0,-1", [[1, 0, -1]]),
        ("1,0.5;0.5,1", [[1, 0.5], [0.5, 1]]),
        ("1 0.5; 0.5 1", [[1, 0.5], [0.5, 1]]),
        (" 1 , 2 ", [[1, 2]]),
        ("1\t2\n3 4", [[1, 2], [3, 4]]),
        ("-1e-1,+.5,2.", [[-0.1, 0.5, 2]]),
        ("1;2;3", [[1], [2], [3]]),
        ("[[1,0.5],[0.5,1]]", [[1, 0.5], [0.5, 1]]),
        ("[1, -1]", [[1, -1]]),
        ("[[1e-3]]", [[0.001]]),
    ],
)
def test_parse_valid(spec, expected):
    grid = parse_kernel(spec)
    assert grid.dtype == np.float64
    np.testing.assert_array_equal(grid, np.array(expected, dtype=float))


LONG = ",".join(["0"] * 102)

PARSE_ERRORS = [
    ("", "kernel is empty (received '')"),
    ("   ", "kernel is empty (received '   ')"),
    ("1,,2", "kernel row 1 has an empty value (received '1,,2')"),
    ("1,2;", "kernel row 2 is empty (received '1,2;')"),
    ("1,2;3", "kernel rows differ in length: row 1 has 2 values, row 2 has 1 (received '1,2;3')"),
    ("1,abc", "kernel value 'abc' in row 1 is not a number (received '1,abc')"),
    ("1,2;3,nan", "kernel value 'nan' in row 2 is not finite (received '1,2;3,nan')"),
    ("inf", "kernel value 'inf' in row 1 is not finite (received 'inf')"),
    ("1e999", "kernel value '1e999' in row 1 is too large (received '1e999')"),
    ("1/9,1/9", "kernel value '1/9' in row 1 is not a number (received '1/9,1/9')"),
    (
        "__import__('os')",
        "kernel value \"__import__('os')\" in row 1 is not a number (received \"__import__('os')\")",
    ),
    ("[]", "kernel is empty (received '[]')"),
    ("[[]]", "kernel row 1 is empty (received '[[]]')"),
    ("[[1,2],[3]]", "kernel rows differ in length: row 1 has 2 values, row 2 has 1 (received '[[1,2],[3]]')"),
    ("[[1,2],[3,NaN]]", "kernel value 'NaN' in row 2 is not finite (received '[[1,2],[3,NaN]]')"),
    ("[Infinity]", "kernel value 'Infinity' in row 1 is not finite (received '[Infinity]')"),
    ("[true]", "kernel value true in row 1 is not a number (received '[true]')"),
    ('["1"]', 'kernel value "1" in row 1 is not a number (received \'["1"]\')'),
    ("[[[1]]]", "kernel value [1] in row 1 is not a number (received '[[[1]]]')"),
    ("[1e999]", "kernel has a value too large for a float (received '[1e999]')"),
    ("[[1,2]", "kernel is not valid JSON: Expecting ',' delimiter at column 7 (received '[[1,2]')"),
    ("[" * 100000, "kernel JSON is nested too deeply (received '" + "[" * 57 + "...')"),
    (LONG, f"kernel is 1x102, larger than the 101x101 maximum (received '{LONG[:57]}...')"),
    ("@", "kernel file name is missing after '@' (received '@')"),
    ("@k.png", "kernel file must be .npy, .csv, .txt, not '.png' (received '@k.png')"),
    ("@kernel", "kernel file must be .npy, .csv, .txt, not no extension (received '@kernel')"),
    ("@/nonexistent/k.csv", "kernel file /nonexistent/k.csv: no such file"),
]


@pytest.mark.parametrize("spec,message", PARSE_ERRORS)
def test_parse_errors(spec, message):
    with pytest.raises(ValueError) as info:
        parse_kernel(spec)
    assert str(info.value) == message


def test_kernel_files(tmp_path):
    np.save(tmp_path / "k.npy", np.array([[1, 2], [3, 4]], dtype=np.int32))
    (tmp_path / "k.csv").write_text("1,2\n3,4\n")
    (tmp_path / "k.txt").write_text("# a comment\n1 2\n3 4\n")
    for name in ("k.npy", "k.csv", "k.txt"):
        np.testing.assert_array_equal(parse_kernel(f"@{tmp_path / name}"), [[1, 2], [3, 4]])
    (tmp_path / "big.csv").write_text(("1," * 101 + "1\n") * 2)
    with pytest.raises(ValueError) as info:
        parse_kernel(f"@{tmp_path / 'big.csv'}")
    assert str(info.value).startswith("kernel is 2x102, larger than the 101x101 maximum (received '@")
    np.save(tmp_path / "obj.npy", np.array([None]), allow_pickle=True)
    with pytest.raises(ValueError) as info:
        parse_kernel(f"@{tmp_path / 'obj.npy'}")
    assert (
        str(info.value)
        == f"kernel file {tmp_path / 'obj.npy'}: holds Python objects, which need pickle (refused)"
    )


def test_normalize():
    np.testing.assert_array_equal(normalize(np.array([[1.0, 3.0]])), [[0.25, 0.75]])
    np.testing.assert_array_equal(normalize(np.array([[-2.0, -2.0]])), [[0.5, 0.5]])
    for zero_sum in ([[1.0, -1.0]], [[0.1, 0.2, -0.3]], [[0.0]]):
        with pytest.raises(ValueError) as info:
            normalize(np.array(zero_sum), "spec")
        assert str(info.value) == "kernel sums to 0 and cannot be normalized (received 'spec')"


# --- the command ------------------------------------------------------------------------------


def test_issue_example_difference(tmp_path):
    (tmp_path / "signal.csv").write_text("2,0,1,4\n")
    out = tmp_path / "diff.csv"
    result = run("custom", "--kernel", "1,-1", tmp_path / "signal.csv", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "2,-1,-3\n"


def test_issue_example_full_convolution(tmp_path):
    (tmp_path / "a.txt").write_text("1 1\n")
    out = tmp_path / "out.txt"
    result = run("custom", "--kernel", "1,2", "--padding", "full", "--convolve", tmp_path / "a.txt", out)
    assert result.exit_code == 0, result.output
    assert out.read_text() == "1 3 2\n"


@pytest.mark.parametrize(
    "spec,options,expected",
    [
        ("[[1,0.5],[0.5,1]]", [], [[1 + 1 + 2 + 5, 2 + 1.5 + 2.5 + 6]]),
        ("1,1;1,1", ["--normalize"], [[3, 4]]),
        ("1,1;1,1", ["--normalize", "--scale", "4"], [[12, 16]]),
        ("1,0;0,0", ["--scale", "-0.5"], [[-0.5, -1]]),
        ("1,0;0,0", ["--bias", "0.25"], [[1.25, 2.25]]),
        ("1,0;0,0", ["--convolve"], [[5, 6]]),
        ("0,0;0,1", ["--padding", "same", "--border", "replicate"], [[5, 6, 6], [5, 6, 6]]),
        ("0,0;0,1", ["--padding", "same"], [[5, 6, 0], [0, 0, 0]]),
    ],
)
def test_matrix_in_matrix_out(tmp_path, spec, options, expected):
    # input 1 2 3 / 4 5 6, worked out by hand for each kernel
    (tmp_path / "in.csv").write_text("1,2,3\n4,5,6\n")
    out = tmp_path / "out.npy"
    result = run("custom", "--kernel", spec, tmp_path / "in.csv", out, *options)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out), np.array(expected, dtype=np.float32), rtol=1e-6)


def test_kernel_from_file_matches_reference_on_an_image(tmp_path, gray_png):
    kernel = np.random.default_rng(9).uniform(-1, 1, (3, 4))
    np.save(tmp_path / "k.npy", kernel)
    out = tmp_path / "out.npy"
    result = run("custom", "--kernel", f"@{tmp_path / 'k.npy'}", gray_png, out, "--stride", "2", "1")
    assert result.exit_code == 0, result.output
    pixels = np.asarray(Image.open(gray_png), dtype=float)
    np.testing.assert_allclose(np.load(out), correlate(pixels, kernel, (2, 1)), atol=1e-3)


def test_image_to_matrix_keeps_raw_values_and_matrix_to_image_maps_them(tmp_path, gray_png):
    raw = tmp_path / "raw.csv"
    assert run("custom", "--kernel", "2", gray_png, raw).exit_code == 0
    pixels = np.asarray(Image.open(gray_png), dtype=float)
    np.testing.assert_array_equal(np.loadtxt(raw, delimiter=","), pixels * 2)  # no clipping at 255
    back = tmp_path / "back.png"
    result = run("custom", "--kernel", "0.5", raw, back, "--range", "clip")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(back)), pixels)


def test_named_kernel_scale(tmp_path):
    (tmp_path / "in.csv").write_text("1,2,3\n4,5,6\n7,8,9\n")
    out = tmp_path / "out.csv"
    result = run("blur", tmp_path / "in.csv", out, "--scale", "9")
    assert result.exit_code == 0, result.output
    assert out.read_text() == "45\n"  # 9 * mean of 1..9


def test_verbose_report_for_matrix_output(tmp_path):
    (tmp_path / "in.csv").write_text("2,0,1,4\n")
    result = run("custom", "--kernel", "1,-1", tmp_path / "in.csv", tmp_path / "o.csv", "-v", "--convolve")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"input:   {tmp_path / 'in.csv'}: 1x4 (tensor 1x1x4x1)"
    assert lines[1] == "kernel:  custom 1x2 (kernel=1,-1), 2 weights"
    assert "flipped in both axes for --convolve, the Conv2D's weights are:" in result.stderr
    assert lines[-1] == f"output:  {tmp_path / 'o.csv'}: 1x3, raw float32 values -2..3"


# --- errors: exact messages, exit codes, nothing written --------------------------------------


@pytest.mark.parametrize("spec,message", PARSE_ERRORS[:8] + PARSE_ERRORS[-6:-3])
def test_bad_kernel_is_a_usage_error(tmp_path, spec, message):
    (tmp_path / "in.csv").write_text("1,2,3\n")
    out = tmp_path / "out.csv"
    result = run("custom", "--kernel", spec, tmp_path / "in.csv", out)
    assert result.exit_code == 2
    assert last_line(result) == f"Error: Invalid value for '--kernel': {message}"
    assert result.stderr.startswith("Usage: convfilter custom [OPTIONS] INPUT... [OUTPUT]\n")
    assert not out.exists()


@pytest.mark.parametrize(
    "args,message,code",
    [
        (
            ["--kernel", "1,1,1,1"],
            "Error: Invalid value for '--kernel': {inp}: image is 2x3 but the 1x4 kernel needs at least 1x4 pixels under 'valid' padding",
            2,
        ),
        (
            ["--kernel", "1;1;1"],
            "Error: Invalid value for '--kernel': {inp}: image is 2x3 but the 3x1 kernel needs at least 3x1 pixels under 'valid' padding",
            2,
        ),
        (
            ["--kernel", "1,-1", "--normalize"],
            "Error: Invalid value for '--normalize': kernel sums to 0 and cannot be normalized (received '1,-1')",
            2,
        ),
        (
            ["--kernel", "1", "--scale", "nan"],
            "Error: Invalid value for '--scale': nan is not a finite number.",
            2,
        ),
        ([], "Error: Missing option '--kernel'.", 2),
        (
            ["--kernel", "1", "--border", "wrap"],
            "Error: border 'wrap' has no effect with padding 'valid' (nothing is padded); use padding 'same' or 'full'",
            2,
        ),
        (
            ["--kernel", "1", "--depth", "16"],
            "Error: {out}: depth applies to image outputs; a matrix file holds raw floats",
            2,
        ),
        (
            ["--kernel", "1", "--range", "clip"],
            "Error: {out}: range 'clip' applies to image outputs; a matrix file holds raw floats",
            2,
        ),
        (
            ["--kernel", "1", "--border", "mirror", "--padding", "same"],
            "Error: Invalid value for '--border': 'mirror' is not one of 'zero', 'reflect', 'symmetric', 'replicate', 'wrap'.",
            2,
        ),
    ],
)
def test_command_errors(tmp_path, args, message, code):
    inp = tmp_path / "in.csv"
    inp.write_text("1,2,3\n4,5,6\n")
    out = tmp_path / "out.csv"
    result = run("custom", inp, out, *args)
    assert result.exit_code == code
    assert last_line(result) == message.format(inp=inp, out=out)
    assert not out.exists()


@pytest.mark.parametrize(
    "content,message",
    [
        ("1,2\n3\n", "rows differ in length: line 1 has 2 values, line 2 has 1"),
        ("1,x\n", "value 'x' in line 1 is not a number"),
        ("", "no values"),
    ],
)
def test_bad_matrix_input_exit_1_and_existing_output_untouched(tmp_path, content, message):
    inp = tmp_path / "in.csv"
    inp.write_text(content)
    out = tmp_path / "out.csv"
    out.write_text("precious")
    result = run("custom", "--kernel", "1", inp, out, "--overwrite")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {inp}: {message}\n"
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


@pytest.mark.slow
def test_installed_command_custom_on_a_matrix(tmp_path, convfilter_exe, server_env):
    exe = convfilter_exe
    (tmp_path / "signal.csv").write_text("2,0,1,4\n")
    proc = subprocess.run(
        [exe, "custom", "--kernel", "1,-1", tmp_path / "signal.csv", tmp_path / "diff.csv"],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "diff.csv").read_text() == "2,-1,-3\n"
    proc = subprocess.run(
        [exe, "custom", "--kernel", "1,2;3", tmp_path / "signal.csv", tmp_path / "x.csv"],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--kernel': kernel rows differ in length: row 1 has 2 values, row 2 has 1 "
        "(received '1,2;3')"
    )
    assert not (tmp_path / "x.csv").exists()
