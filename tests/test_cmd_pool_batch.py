"""`pool` runs through the same runner as the kernel commands: many files, -o DIR, --json, --skip-existing, --fail-fast."""

from __future__ import annotations

import json

import numpy as np
from helpers import clip8, invoke, save
from PIL import Image
from reference_pool import pool


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
