"""`chain` runs through the same runner as the kernel commands: many files, -r, templates and pipes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import BOX, assert_pixels, clip8, invoke, save
from PIL import Image
from reference import correlate
from reference_pool import pool


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
        assert_pixels(written, expected)


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
def test_pool_and_chain_pipes_as_a_subprocess(tmp_path, server_env):
    pixels = save(tmp_path / "a.png", (16, 16), 4)
    command = [sys.executable, "-m", "convfilter"]
    pooled = subprocess.run(
        [*command, "pool", "max", "-", "-"],
        input=(tmp_path / "a.png").read_bytes(),
        capture_output=True,
        check=True,
        env=server_env,
    )
    chained = subprocess.run(
        [*command, "chain", "-", "-", "identity", "--size", "1"],
        input=pooled.stdout,
        capture_output=True,
        check=True,
        env=server_env,
    )
    (tmp_path / "out.png").write_bytes(chained.stdout)
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "out.png")), clip8(pool(pixels.astype(float), "max", 2))
    )
