"""Nothing clobbered, nothing accepted wrong: links between inputs and outputs, side outputs that exist,
weights that overflow the layer's float32, control characters in names."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import invoke, save
from PIL import Image


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_an_input_that_links_to_another_jobs_output_is_never_written(tmp_path):
    save(tmp_path / "a.png", seed=1)
    (tmp_path / "out").mkdir()
    save(tmp_path / "out" / "a.png", seed=2)
    os.symlink(tmp_path / "out" / "a.png", tmp_path / "link.png")
    before = digest(tmp_path / "out" / "a.png")
    result = invoke("blur", tmp_path / "a.png", tmp_path / "link.png", "-o", tmp_path / "out", "--overwrite")
    assert result.exit_code == 1
    assert (
        f"Error: {tmp_path / 'out' / 'a.png'}: is an input of this run; refusing to overwrite it"
        in result.output
    )
    assert digest(tmp_path / "out" / "a.png") == before


def test_hard_links_and_an_output_folder_that_links_to_the_inputs_folder(tmp_path):
    save(tmp_path / "a.png", seed=3)
    before = digest(tmp_path / "a.png")
    os.link(tmp_path / "a.png", tmp_path / "hard.png")
    os.symlink(tmp_path, tmp_path / "here")
    hard = invoke("blur", tmp_path / "hard.png", "-o", tmp_path, "--overwrite")
    here = invoke("blur", tmp_path / "a.png", "-o", tmp_path / "here", "--overwrite")
    template = invoke("blur", tmp_path / "a.png", "--output-template", "{dir}/{name}", "--overwrite")
    for result in (hard, here, template):
        assert result.exit_code == 1
        assert "refusing to overwrite it" in result.output
    assert digest(tmp_path / "a.png") == before


def test_recursive_leaves_out_an_output_folder_reached_through_a_link(tmp_path):
    (tmp_path / "in" / "done").mkdir(parents=True)
    save(tmp_path / "in" / "a.png")
    os.symlink(tmp_path / "in" / "done", tmp_path / "out")
    first = invoke("blur", tmp_path / "in", "-r", "-o", tmp_path / "out")
    assert first.exit_code == 0, first.output
    again = invoke("blur", tmp_path / "in", "-r", "-o", tmp_path / "out", "--skip-existing")
    assert again.exit_code == 0, again.output
    assert "0 written, 0 failed, 1 skipped" in again.output


def test_side_outputs_that_exist_are_refused_before_any_work(tmp_path):
    save(tmp_path / "a.png")
    for option, name in (("--compare", "fig.png"), ("--export", "model.keras")):
        (tmp_path / name).write_bytes(b"keep me")
        result = invoke("blur", tmp_path / "a.png", tmp_path / "o.png", option, tmp_path / name)
        assert result.exit_code == 1
        assert f"Error: {tmp_path / name}: already exists (use --overwrite to replace it)" in result.output
        assert (tmp_path / name).read_bytes() == b"keep me"
        assert not (tmp_path / "o.png").exists()


def test_learn_refuses_an_existing_kernel_file(tmp_path):
    np.save(tmp_path / "before.npy", np.arange(36.0).reshape(6, 6))
    np.save(tmp_path / "after.npy", np.arange(16.0).reshape(4, 4))
    (tmp_path / "k.csv").write_text("keep me")
    result = invoke(
        "learn", tmp_path / "before.npy", tmp_path / "after.npy", "--size", "3", "-o", tmp_path / "k.csv"
    )
    assert result.exit_code == 1
    assert "k.csv: already exists (use --overwrite to replace it)" in result.output
    assert (tmp_path / "k.csv").read_text() == "keep me"


def test_weights_and_bias_that_overflow_float32_are_usage_errors(tmp_path):
    save(tmp_path / "a.png")
    kernel = invoke("custom", "--kernel", "1e39", tmp_path / "a.png", tmp_path / "o.png")
    assert kernel.exit_code == 2
    assert "Error: kernel values must fit the layer's float32 (|w| <= 3.4e38), got 1e+39" in kernel.output
    bias = invoke("blur", "--bias", "1e39", tmp_path / "a.png", tmp_path / "o.png")
    assert bias.exit_code == 2
    assert "Error: bias must fit the layer's float32 (|b| <= 3.4e38), got 1e+39" in bias.output
    assert not (tmp_path / "o.png").exists()


def test_a_result_that_overflows_everywhere_fails_that_file(tmp_path):
    save(tmp_path / "a.png", value=200)
    result = invoke("custom", "--kernel", "3e38,3e38", tmp_path / "a.png", tmp_path / "o.png")
    assert result.exit_code == 1
    assert (
        f"Error: {tmp_path / 'a.png'}: the result is not finite anywhere (the sums overflow float32); "
        "use smaller weights" in result.output
    )
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_a_newline_in_a_file_name_stays_on_one_error_line(tmp_path):
    name = str(tmp_path / "a\nb.png")
    done = subprocess.run(
        [sys.executable, "-m", "convfilter", "blur", name, str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: {tmp_path}/a\\nb.png: no such file\n"


def test_output_folders_are_created_only_when_a_file_is_written(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    failed = invoke("blur", tmp_path / "bad.png", "-o", tmp_path / "new" / "sub")
    assert failed.exit_code == 1
    assert not (tmp_path / "new").exists()
    save(tmp_path / "a.png")
    written = invoke("blur", tmp_path / "a.png", "-o", tmp_path / "new" / "sub")
    assert written.exit_code == 0, written.output
    assert (tmp_path / "new" / "sub" / "a.png").is_file()


@pytest.mark.slow
def test_pipes_the_shell_makes_are_read_as_streams(tmp_path, server_env):
    """`<(cat a.png)` (a /dev/fd path) and a named FIFO work as the same bytes on '-' do."""
    pixels = save(tmp_path / "a.png", (16, 16), 5)
    convfilter = f"{sys.executable} -m convfilter"
    script = (
        f"{convfilter} identity --size 1 <(cat a.png) sub.png && "
        f"mkfifo fifo.png && (cat a.png > fifo.png &) && {convfilter} identity --size 1 fifo.png -o out"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=server_env
    )
    assert done.returncode == 0, done.stderr
    for written in (tmp_path / "sub.png", tmp_path / "out" / "fifo.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(written)), pixels)


def _npy_claiming(path, shape):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + repr(shape) + ", }"
    header += " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(16))


def test_npy_headers_that_claim_absurd_shapes_are_one_error_line(tmp_path):
    save(tmp_path / "a.png")
    _npy_claiming(tmp_path / "huge.npy", (10**20, 2))
    _npy_claiming(tmp_path / "tera.npy", (300000, 300000))
    batch = invoke("blur", tmp_path / "huge.npy", tmp_path / "a.png", "-o", tmp_path / "out")
    assert batch.exit_code == 1
    assert (
        f"Error: {tmp_path / 'huge.npy'}: header claims a {10**20}x2 array ({8 * 10**20} bytes) "
        "but the file holds 16 bytes" in batch.output
    )
    assert (tmp_path / "out" / "a.png").is_file()  # the good file is still written
    for name in ("huge.npy", "tera.npy"):
        kernel = invoke("custom", "--kernel", f"@{tmp_path / name}", tmp_path / "a.png", tmp_path / "o.png")
        assert kernel.exit_code == 2
        assert "header claims a" in kernel.output and "Traceback" not in kernel.output
    assert not (tmp_path / "o.png").exists()


def test_sizes_a_format_cannot_hold_fail_that_file_and_the_batch_goes_on(tmp_path):
    wide = np.random.default_rng(0).integers(0, 256, (3, 70002), dtype=np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    save(tmp_path / "small.png", (8, 8))
    for ext, fmt, limit in (
        ("gif", "GIF", 65535),
        ("tga", "TGA", 65535),
        ("pcx", "PCX", 65535),
        ("sgi", "SGI", 65535),
    ):
        result = invoke(
            "blur", tmp_path / "wide.png", tmp_path / "small.png", "-o", tmp_path / ext, "--format", ext
        )
        assert result.exit_code == 1
        assert (
            f"Error: {tmp_path / ext / ('wide.' + ext)}: the output is 1x70000, but {fmt} holds at most {limit} "
            "pixels a side; use another format (.png, .tif)" in result.output
        )
        assert "1 written, 1 failed, 0 skipped" in result.output
    save(tmp_path / "big.png", (300, 300))
    ico = invoke("identity", "--size", "1", tmp_path / "big.png", tmp_path / "o.ico")
    assert ico.exit_code == 1 and "ICO holds at most 256 pixels a side" in ico.output
    assert not (tmp_path / "o.ico").exists()


def test_a_dpi_no_format_field_can_hold_is_left_out(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "dpi.tif", dpi=(1e9, 1e9))
    for ext in ("png", "bmp", "tif", "jpg"):
        result = invoke("identity", "--size", "1", tmp_path / "dpi.tif", tmp_path / f"o.{ext}")
        assert result.exit_code == 0, result.output
        assert Image.open(tmp_path / f"o.{ext}").size == (8, 8)


def _shell(tmp_path, command):
    convfilter = f"{sys.executable} -m convfilter"
    return subprocess.run(
        ["bash", "-c", command.replace("convfilter", convfilter)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_closed_and_full_standard_streams_are_one_error_line(tmp_path):
    save(tmp_path / "a.png")
    cases = {
        "convfilter blur - o.png <&-": "Error: standard input is closed; there is no image to read from '-'\n",
        "convfilter blur a.png - >&-": "Error: standard output is closed; there is nowhere to write the image for '-'\n",
        "convfilter blur a.png - > /dev/full": "Error: standard output: cannot write (No space left on device)\n",
        "convfilter blur a.png j.png --json > /dev/full": "Error: standard output: cannot write (No space left on device)\n",
    }
    for command, stderr in cases.items():
        done = _shell(tmp_path, command)
        assert (done.returncode, done.stderr) == (1, stderr), command
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_a_valid_run_with_stdout_or_stderr_closed_writes_its_output(tmp_path):
    pixels = save(tmp_path / "a.png")
    for command, out in (
        ("convfilter identity --size 1 a.png o1.png >&-", "o1.png"),
        ("convfilter identity --size 1 a.png o2.png 2>&-", "o2.png"),
        ("convfilter identity --size 1 a.png -o o3 2>&-", "o3/a.png"),
    ):
        done = _shell(tmp_path, command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert done.stdout == ""
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / out)), pixels)


def test_a_rerun_into_the_input_folder_leaves_its_own_outputs_alone(tmp_path):
    save(tmp_path / "a.png")
    first = invoke("blur", tmp_path, "-r", "-o", tmp_path, "--suffix", "_b")
    assert first.exit_code == 0 and "1 written, 0 failed, 0 skipped" in first.output
    again = invoke("blur", tmp_path, "-r", "-o", tmp_path, "--suffix", "_b", "--skip-existing")
    assert again.exit_code == 0, again.output
    assert "0 written, 0 failed, 1 skipped" in again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_b.png"]


def test_matrix_values_that_overflow_float32_are_refused(tmp_path):
    (tmp_path / "m.csv").write_text("1,2\n3,1e39\n")
    result = invoke("blur", tmp_path / "m.csv", tmp_path / "o.csv")
    assert result.exit_code == 1
    assert (
        f"Error: {tmp_path / 'm.csv'}: value at row 2, column 2 (1e+39) does not fit a float32 (|v| <= 3.4e38)"
        in result.output
    )
    assert not (tmp_path / "o.csv").exists()


def test_a_signal_before_the_run_starts_ends_with_its_own_exit_code(monkeypatch):
    import signal

    import convfilter.explain
    from convfilter.cli.files import Terminated

    def terminated(*args, **kwargs):
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(convfilter.explain, "explain", terminated)
    result = invoke("explain", "--shape", "5", "5", "--kernel-size", "3", "3")
    assert result.exit_code == 143
    assert "Aborted" not in result.output
