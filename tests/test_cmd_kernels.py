"""`convfilter kernels` (list, show, --json) and start-up without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import invoke

from convfilter.cli import cli
from convfilter.ops.kernels import KERNELS

SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def run(*args):
    """``convfilter kernels ARGS`` in-process."""
    return invoke("kernels", *args)


def test_list_every_named_kernel_one_line_each():
    result = run()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(KERNELS)
    for line, kernel in zip(lines, KERNELS.values(), strict=True):
        assert line.endswith("  " + kernel.summary)


def test_list_json():
    result = run("--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [entry["name"] for entry in data] == list(KERNELS)
    by_name = {entry["name"]: entry for entry in data}
    assert by_name["sobel-x"]["shape"] == [3, 3] and by_name["sobel-x"]["options"] == []
    assert by_name["gaussian"]["options"] == ["size", "sigma"]
    assert by_name["gaussian"]["defaults"] == {"size": 5, "sigma": 1.0}


def test_show_text_is_a_matrix_file_custom_reads_back(tmp_path):
    result = run("show", "sobel-x")
    assert result.exit_code == 0, result.output
    assert result.stdout == "# sobel-x 3x3, sum 0\n-1  0  1\n-2  0  2\n-1  0  1\n"
    path = tmp_path / "k.txt"
    path.write_text(result.stdout)
    (tmp_path / "in.csv").write_text("0,0,9\n0,0,9\n0,0,9\n")
    out = tmp_path / "out.csv"
    assert (
        CliRunner()
        .invoke(cli, ["custom", "--kernel", f"@{path}", str(tmp_path / "in.csv"), str(out)])
        .exit_code
        == 0
    )
    assert out.read_text() == "36\n"  # 9 * (1 + 2 + 1)


def test_show_json_gaussian_matches_the_formula():
    result = run("show", "gaussian", "--size", 3, "--sigma", 0.8, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    x = np.array([-1.0, 0.0, 1.0])
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 0.8**2))
    np.testing.assert_allclose(data["kernel"], g / g.sum(), rtol=1e-12)
    assert data["shape"] == [3, 3]
    assert data["params"] == {"size": 3, "sigma": 0.8}
    assert data["sum"] == pytest.approx(1.0)
    assert json.loads(run("--json", "show", "sobel-x").stdout)["kernel"] == SOBEL_X


def test_show_blur_and_random():
    data = json.loads(run("show", "blur", "--size", 2, "--no-normalize", "--json").stdout)
    assert data["kernel"] == [[1, 1], [1, 1]]
    first = json.loads(run("show", "random", "--seed", 5, "--size", 4, "--json").stdout)
    again = json.loads(run("show", "random", "--seed", 5, "--size", 4, "--json").stdout)
    assert first["kernel"] == again["kernel"] and np.array(first["kernel"]).shape == (4, 4)
    assert np.all(np.abs(first["kernel"]) <= np.sqrt(6 / 32))
    unseeded = run("show", "random")
    assert unseeded.stdout.startswith("# random 3x3 (seed=")


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["show", "gausian"],
            "Error: Invalid value for 'NAME': unknown kernel 'gausian'; known kernels: blur, gaussian, edge, sobel-x, sobel-y, sharpen, emboss, identity, random",
        ),
        (
            ["show", "edge", "--size", 5],
            "Error: Invalid value for '--size': edge is a fixed 3x3 kernel and takes no size (blur, gaussian, identity and random take --size)",
        ),
        (["show", "gaussian", "--seed", 1], "Error: Invalid value for '--seed': gaussian does not take seed"),
        (
            ["show", "identity", "--size", 4],
            "Error: Invalid value for '--size': identity: size must be odd so the kernel has a centre, got 4",
        ),
        (
            ["show", "blur", "--size", 102],
            "Error: Invalid value for '--size': 102 is not in the range 1<=x<=101.",
        ),
        (["show"], "Error: Missing argument 'NAME'."),
    ],
)
def test_show_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message


NO_TF = """
import sys
from convfilter.cli import cli
try:
    cli({args!r}, prog_name="convfilter", standalone_mode=False)
except SystemExit:
    pass
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["kernels"],
        ["kernels", "--json"],
        ["kernels", "show", "gaussian", "--json"],
        ["explain", "--shape", "28", "28", "--kernel-size", "5", "5", "--padding", "same"],
        ["explain", "--shape", "8", "8", "--kernel", "1,0,-1", "--json"],
        ["explain", "--shape", "8", "8", "--kernel-size", "3", "3", "--transpose", "--stride", "2", "2"],
        ["explain", "--shape", "8", "8", "--kernel-size", "3", "3", "--filters", "4"],
        ["custom", "--help"],
        ["pool", "--help"],
        ["bank", "--help"],
        ["animate", "--help"],
    ],
)
def test_listing_and_explaining_do_not_import_tensorflow(args):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TF.format(args=args)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False False"


@pytest.mark.slow
def test_installed_explain_with_an_image(convfilter_exe, gray_png):
    proc = subprocess.run(
        [convfilter_exe, "explain", gray_png, "--kernel-size", "5", "5", "--padding", "same", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert data["output_shape"] == [13, 17]
    assert data["dense_connections"] == (13 * 17) ** 2
