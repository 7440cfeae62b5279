"""Start-up: commands that run no model never import TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convfilter import __version__

pytestmark = pytest.mark.slow  # servers, clusters and subprocesses: the full suite only

CONVFILTER = Path(sys.executable).with_name("convfilter")

PROBE = """
import json, sys
from convfilter.cli import cli
try:
    cli(sys.argv[1:], prog_name="convfilter")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""


def _probe(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, check=False
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["blur", "--help"],
        ["gaussian", "--help"],
        ["blur"],
        ["nosuchkernel"],
        ["kernels"],
        ["kernels", "show", "sobel-x"],
        ["explain", "--shape", "28", "28", "--kernel", "gaussian", "--size", "5", "--stride", "2", "2"],
        ["explain", "--help"],
    ],
)
def test_commands_without_a_model_do_not_import_tensorflow(args):
    state = _probe(*args)
    assert state["tensorflow"] is False
    assert state["keras"] is False
    usage_errors = (["blur"], ["nosuchkernel"])
    assert state["code"] == (2 if args in usage_errors else 0)


def test_filtering_does_import_tensorflow(tmp_path):
    """The probe itself can see TensorFlow when a model runs."""
    source = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(source)
    state = _probe("blur", str(source), str(tmp_path / "out.png"))
    assert state == {"code": 0, "tensorflow": True, "keras": True}
    assert (tmp_path / "out.png").exists()


def test_installed_command_prints_its_version():
    done = subprocess.run(
        [str(CONVFILTER), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout == f"convfilter, version {__version__}\n"
    assert done.stderr == ""


def test_a_truncated_image_is_reported_after_the_background_import(tmp_path):
    """A large image starts the import as it opens, with stderr silenced; the decode error must still be seen."""
    source = tmp_path / "cut.png"
    pixels = np.random.default_rng(0).integers(0, 256, (2048, 2048), dtype=np.uint8)
    Image.fromarray(pixels).save(source, compress_level=0)
    source.write_bytes(source.read_bytes()[:200_000])
    target = tmp_path / "out.png"
    done = subprocess.run(
        [str(CONVFILTER), "blur", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {source}: cannot decode image (image file is truncated)\n"
    assert not target.exists()


def test_filtering_command_flushes_its_report_before_the_fast_exit(tmp_path):
    """After a model ran the command ends with os._exit (no TensorFlow teardown); -v still arrives."""
    source = tmp_path / "in.png"
    Image.fromarray(np.full((20, 30), 90, dtype=np.uint8)).save(source)
    target = tmp_path / "out.png"
    done = subprocess.run(
        [str(CONVFILTER), "blur", str(source), str(target), "-v"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"input:   {source}: 20x30 (tensor 1x20x30x1)"
    assert lines[-1] == f"output:  {target}: 18x28 (tensor 1x18x28x1), 8-bit, range clip of raw values 90..90"
    assert (np.asarray(Image.open(target)) == 90).all()


def test_batch_errors_during_the_background_import_reach_stderr(tmp_path):
    """In a batch, a file failing while TensorFlow imports (stderr silenced) is still reported, in order."""
    cut = tmp_path / "cut.png"
    pixels = np.random.default_rng(1).integers(0, 256, (2048, 2048), dtype=np.uint8)
    Image.fromarray(pixels).save(cut, compress_level=0)
    cut.write_bytes(cut.read_bytes()[:200_000])
    good = tmp_path / "good.png"
    Image.fromarray(np.full((10, 12), 50, dtype=np.uint8)).save(good)
    out = tmp_path / "out"
    done = subprocess.run(
        [str(CONVFILTER), "blur", str(cut), str(good), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: {cut}: cannot decode image (image file is truncated)\n1 written, 1 failed, 0 skipped\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    assert (np.asarray(Image.open(out / "good.png")) == 50).all()
