"""`pool` and `chain` run through the same runner as the kernel commands: many files, -o DIR, pipes,
--json, --skip-existing, --fail-fast and the summary, checked against the NumPy references."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from reference import correlate
from reference_pool import pool

from convfilter.cli import cli

BOX = np.full((3, 3), 1 / 9)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="convfilter")


def save(path, shape, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def clip8(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def test_pool_many_files_into_a_directory(tmp_path):
    a = save(tmp_path / "a.png", (20, 30), 1)
    b = save(tmp_path / "b.png", (17, 9), 2)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = invoke(
        "pool", "max", tmp_path / "a.png", tmp_path / "broken.png", tmp_path / "b.png", "-o", tmp_path / "out"
    )
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'broken.png'}: not an image file Pillow can read" in result.output
    assert "2 written, 1 failed, 0 skipped" in result.output
    for name, pixels in (("a.png", a), ("b.png", b)):
        written = np.asarray(Image.open(tmp_path / "out" / name))
        np.testing.assert_array_equal(written, clip8(pool(pixels.astype(float), "max", 2)))
    assert not (tmp_path / "out" / "broken.png").exists()


def test_pool_json_skip_existing_and_fail_fast(tmp_path):
    save(tmp_path / "a.png", (8, 8), 1)
    save(tmp_path / "b.png", (8, 8), 2)
    args = ["pool", "avg", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out", "--size", "4"]
    first = invoke(*args, "--json")
    lines = [json.loads(line) for line in first.output.splitlines() if line.startswith("{")]
    assert [(line["status"], line["output_shape"]) for line in lines] == [("written", [2, 2])] * 2
    again = invoke(*args)
    assert again.exit_code == 1 and "0 written, 2 failed, 0 skipped" in again.output
    assert "already exists" in again.output
    skipped = invoke(*args, "--skip-existing")
    assert skipped.exit_code == 0 and "0 written, 0 failed, 2 skipped" in skipped.output
    fast = invoke(*args, "--fail-fast")
    assert fast.exit_code == 1 and "stopped at the first failure, 1 not done" in fast.output


def test_chain_many_files_matches_the_references(tmp_path):
    images = {name: save(tmp_path / name, (21, 16), seed) for seed, name in enumerate(["a.png", "b.png"])}
    result = invoke(
        "chain", "-o", tmp_path / "out", *(tmp_path / n for n in images), "blur", "--", "pool", "max"
    )
    assert result.exit_code == 0, result.output
    assert "2 written, 0 failed, 0 skipped" in result.output
    for name, pixels in images.items():
        expected = pool(correlate(pixels, BOX), "max", 2)
        written = np.asarray(Image.open(tmp_path / "out" / name))
        assert written.shape == (9, 7)
        assert np.abs(written.astype(int) - clip8(expected)).max() <= 1  # float32 vs float64 rounding ties


def test_chain_recursive_and_template(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    pixels = save(tmp_path / "in" / "sub" / "x.png", (12, 12), 3)
    result = invoke(
        "chain",
        "-r",
        "--output-template",
        str(tmp_path / "{stem}_{kernel}.{ext}"),
        tmp_path / "in",
        "identity",
        "--size",
        "1",
        "--stride",
        "2",
        "2",
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x_chain.png")), pixels[::2, ::2])


@pytest.mark.slow
def test_pool_and_chain_pipes_as_a_subprocess(tmp_path):
    pixels = save(tmp_path / "a.png", (16, 16), 4)
    command = [sys.executable, "-m", "convfilter"]
    pooled = subprocess.run(
        [*command, "pool", "max", "-", "-"],
        input=(tmp_path / "a.png").read_bytes(),
        capture_output=True,
        check=True,
    )
    chained = subprocess.run(
        [*command, "chain", "-", "-", "identity", "--size", "1"],
        input=pooled.stdout,
        capture_output=True,
        check=True,
    )
    (tmp_path / "out.png").write_bytes(chained.stdout)
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "out.png")), clip8(pool(pixels.astype(float), "max", 2))
    )
