"""Batches and pipes from the command line: in-process through CliRunner, and a few real subprocesses.

Pixels are checked against the independent NumPy reference in tests/reference.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import invoke, read, save
from reference import correlate

from convfilter.cli import cli

CONVFILTER = Path(sys.executable).with_name("convfilter")
BOX = np.full((3, 3), 1 / 9)
EXISTS = "already exists (use --overwrite to replace it or --skip-existing to keep it)"


def blurred(pixels, padding="valid"):
    """The reference 3x3 average as 8-bit pixels (round, clip)."""
    return np.clip(np.rint(correlate(pixels, BOX, padding=padding)), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    """Five PNGs of three sizes and a corrupt file in the middle; returns (dir, {name: pixels})."""
    src = tmp_path / "src"
    src.mkdir()
    shapes = [(12, 15), (9, 9), (12, 15), (20, 7), (9, 9)]
    images = {f"p{i}.png": save(src / f"p{i}.png", shape, i) for i, shape in enumerate(shapes)}
    (src / "p2_bad.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    return src, images


def test_single_file_form_refuses_to_overwrite(tmp_path):
    px = save(tmp_path / "in.png", (10, 11), 0)
    out = tmp_path / "out.png"
    assert invoke("blur", tmp_path / "in.png", out).exit_code == 0
    np.testing.assert_array_equal(read(out), blurred(px))
    out.write_bytes(b"keep me")
    result = invoke("blur", tmp_path / "in.png", out)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {out}: {EXISTS}\n"
    assert out.read_bytes() == b"keep me"
    result = invoke("blur", tmp_path / "in.png", out, "--skip-existing")
    assert (result.exit_code, result.output, out.read_bytes()) == (0, "", b"keep me")
    assert invoke("blur", tmp_path / "in.png", out, "--overwrite").exit_code == 0
    np.testing.assert_array_equal(read(out), blurred(px))


def test_batch_with_corrupt_file_and_json(folder, tmp_path):
    src, images = folder
    out = tmp_path / "out"
    names = sorted(os.listdir(src))
    result = invoke("blur", *(src / n for n in names), "-o", out, "--json", "--jobs", "2")
    assert result.exit_code == 1
    bad = src / "p2_bad.png"
    assert (
        result.stderr
        == (
            f"Error: {bad}: cannot decode image (Truncated File Read)\n"
            if "Truncated" in result.stderr
            else f"Error: {bad}: not an image file Pillow can read\n"
        )
        + "5 written, 1 failed, 0 skipped\n"
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["input"] for line in lines) == sorted(str(src / n) for n in names)
    for line in lines:
        name = Path(line["input"]).name
        assert line["output"] == str(out / name)
        if name in images:
            assert line["status"] == "written" and line["error"] is None
            assert line["input_shape"] == list(images[name].shape)
            np.testing.assert_array_equal(read(out / name), blurred(images[name]))
            assert line["output_shape"] == list(blurred(images[name]).shape)
        else:
            assert line["status"] == "failed" and line["input_shape"] is None
            assert line["error"] == result.stderr.splitlines()[0].removeprefix("Error: ")
    assert sorted(os.listdir(out)) == sorted(images)


def test_skip_existing_resumes(folder, tmp_path):
    src, images = folder
    (src / "p2_bad.png").unlink()
    out = tmp_path / "out"
    assert invoke("blur", src, "-r", "-o", out, "-q").exit_code == 0
    (out / "p1.png").unlink()
    (out / "p4.png").unlink()
    (out / "p0.png").write_bytes(b"left alone")

    again = invoke("blur", src, "-r", "-o", out)
    assert again.exit_code == 1
    assert again.stderr.splitlines()[-1] == "2 written, 3 failed, 0 skipped"
    assert f"Error: {out / 'p0.png'}: {EXISTS}" in again.stderr.splitlines()

    (out / "p1.png").unlink()
    resumed = invoke("blur", src, "-r", "-o", out, "--skip-existing")
    assert (resumed.exit_code, resumed.stderr) == (0, "1 written, 0 failed, 4 skipped\n")
    assert (out / "p0.png").read_bytes() == b"left alone"
    np.testing.assert_array_equal(read(out / "p1.png"), blurred(images["p1.png"]))


def test_fail_fast(folder, tmp_path):
    src, _ = folder
    names = ["p2_bad.png", "p0.png", "p1.png"]
    result = invoke("blur", *(src / n for n in names), "-o", tmp_path / "out", "--fail-fast", "-j", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        "0 written, 1 failed, 0 skipped; stopped at the first failure"
    )
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_collision_refused_before_work(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        save(tmp_path / d / "x.png", (5, 5), 0)
    out = tmp_path / "out"
    result = invoke("blur", tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: {out / 'x.png'}: would be written by both {tmp_path / 'a' / 'x.png'} and "
        f"{tmp_path / 'b' / 'x.png'}; nothing was done (change the names with --suffix or --output-template)"
    )
    assert not out.exists()
    ok = invoke(
        "blur",
        tmp_path / "a" / "x.png",
        tmp_path / "b" / "x.png",
        "--output-template",
        "{dir}/{stem}_{kernel}.{ext}",
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a" / "x_blur.png").exists() and (tmp_path / "b" / "x_blur.png").exists()


def test_unwritable_output_fails_alone(tmp_path):
    px = save(tmp_path / "a.png", (6, 6), 0)
    save(tmp_path / "b.png", (6, 6), 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b_s.png").mkdir()
    (tmp_path / "file").write_text("not a directory")
    result = invoke("blur", tmp_path / "a.png", tmp_path / "b.png", "-o", out, "--suffix", "_s")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {out / 'b_s.png'}: is a directory\n1 written, 1 failed, 0 skipped\n"
    np.testing.assert_array_equal(read(out / "a_s.png"), blurred(px))
    result = invoke("blur", tmp_path / "a.png", "-o", tmp_path / "file" / "sub")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'file' / 'sub' / 'a.png'}: cannot create directory ")
    result = invoke("blur", tmp_path / "a.png", "-o", tmp_path / "file")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {tmp_path / 'file'}: is not a directory (-o names the output directory)\n",
    )


def test_files_from_nul_with_spaces_and_newlines(tmp_path):
    names = ["with space.png", "new\nline.png", "plain.png"]
    images = {n: save(tmp_path / n, (7, 8), i) for i, n in enumerate(names)}
    listing = b"\0".join(os.fsencode(tmp_path / n) for n in names) + b"\0"
    out = tmp_path / "out"
    result = invoke("blur", "--files-from", "-", "--null", "-o", out, "--format", "bmp", input=listing)
    assert (result.exit_code, result.stderr) == (0, "3 written, 0 failed, 0 skipped\n")
    for name, px in images.items():
        np.testing.assert_array_equal(read(out / name.replace(".png", ".bmp")), blurred(px))
    (tmp_path / "list.txt").write_bytes(b"\n".join(os.fsencode(tmp_path / n) for n in names[::2]) + b"\n")
    lines = invoke("blur", "--files-from", tmp_path / "list.txt", "-o", out, "--suffix", "_2")
    assert (lines.exit_code, lines.stderr) == (0, "2 written, 0 failed, 0 skipped\n")


def test_stdin_stdout_in_process(tmp_path):
    px = save(tmp_path / "a.png", (9, 12), 5)
    data = (tmp_path / "a.png").read_bytes()
    result = invoke("blur", "-", "-", "--padding", "same", input=data)
    assert result.exit_code == 0
    np.testing.assert_array_equal(read(result.stdout_bytes), blurred(px, "same"))
    to_file = invoke("blur", "-", tmp_path / "o.tif", input=data)
    assert to_file.exit_code == 0
    np.testing.assert_array_equal(read(tmp_path / "o.tif"), blurred(px))
    as_bmp = invoke("blur", tmp_path / "a.png", "-", "--format", "bmp")
    assert read(as_bmp.stdout_bytes).shape == (7, 10) and as_bmp.stdout_bytes[:2] == b"BM"
    bad = invoke("blur", "-", "-", input=b"not an image")
    assert (bad.exit_code, bad.stderr, bad.stdout) == (
        1,
        "Error: <stdin>: not an image file Pillow can read\n",
        "",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["a.png"],
            "Missing OUTPUT: give INPUT OUTPUT, or -o DIR (or --output-template) to name the outputs.",
        ),
        (["a.png", "b.png", "c.png"], "3 inputs need -o DIR or --output-template to name their outputs"),
        (["a.png", "-", "--json"], "--json and OUTPUT '-' would both write to standard output."),
        (
            ["-", "b.png", "c.png", "-o", "d"],
            "'-' (standard input) works only in the form INPUT OUTPUT, one image.",
        ),
        (
            ["a.png", "-o", "d", "--overwrite", "--skip-existing"],
            "--overwrite and --skip-existing exclude each other.",
        ),
        (
            ["a.png", "b.png", "--format", "png"],
            "--format is for -o/--output-template outputs and standard output",
        ),
        (["a.png", "-o", "d", "--output-template", "{nope}.png"], "unknown field {nope}"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["blur", *args])
    assert result.exit_code == 2
    assert message in result.stderr.splitlines()[-1]


def test_bad_option_values():
    assert invoke("blur", "a.png", "-o", "d", "--png-compression", "10").exit_code == 2
    result = invoke("blur", "a.png", "-o", "d", "--format", "xyz")
    assert result.exit_code == 2
    assert "'xyz' is not a format Pillow can write" in result.stderr


def test_verbose_reports_every_file(folder, tmp_path):
    src, images = folder
    (src / "p2_bad.png").unlink()
    result = invoke("blur", src, "-r", "-o", tmp_path / "o", "-v", "-q")
    assert result.exit_code == 0
    assert sum(line.startswith("input:   ") for line in result.stderr.splitlines()) == len(images)


# Real subprocesses: each pays TensorFlow's start-up, so only a few.


@pytest.mark.slow
def test_subprocess_pipe_round_trip(tmp_path, server_env):
    px = save(tmp_path / "a.png", (16, 20), 9)
    first = subprocess.run(
        [CONVFILTER, "blur", "-", "-", "--format", "tif"],
        input=(tmp_path / "a.png").read_bytes(),
        capture_output=True,
        check=False,
        env=server_env,
    )
    assert (first.returncode, first.stderr) == (0, b"")
    np.testing.assert_array_equal(read(first.stdout), blurred(px))


@pytest.mark.slow
def test_subprocess_find_print0(tmp_path, server_env):
    src = tmp_path / "my photos"
    src.mkdir()
    images = {n: save(src / n, (6, 9), i) for i, n in enumerate(["a 1.png", "b\n2.png"])}
    script = f"find {str(src)!r} -name '*.png' -print0 | {CONVFILTER} blur --files-from - --null -o out"
    done = subprocess.run(
        script, shell=True, cwd=tmp_path, capture_output=True, text=True, check=False, env=server_env
    )
    assert (done.returncode, done.stderr) == (0, "2 written, 0 failed, 0 skipped\n")
    for name, px in images.items():
        np.testing.assert_array_equal(read(tmp_path / "out" / name), blurred(px))


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, code, twice",
    [
        (signal.SIGINT, 130, False),
        (signal.SIGINT, 130, True),
        (signal.SIGTERM, 143, False),
        (signal.SIGHUP, 129, True),
    ],
)
def test_subprocess_interrupt_leaves_only_complete_files(tmp_path, signum, code, twice):
    """Ctrl-C (once or twice), a cancelled CI job (SIGTERM) and a closed terminal (SIGHUP) end alike."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    count = 150
    images = {
        f"i{i:03d}.png": save(src / f"i{i:03d}.png", (256, 320), i, compress_level=0) for i in range(count)
    }
    proc = subprocess.Popen(
        [CONVFILTER, "blur", src, "-r", "-o", out, "--png-compression", "9", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(n.endswith(".png") and not n.startswith(".") for n in os.listdir(out))):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.005)
    proc.send_signal(signum)
    while twice and proc.poll() is None:  # more of them while the first is being handled
        time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)  # an event wait with a generous ceiling, no timing
    assert proc.returncode == code, stderr
    written = sorted(os.listdir(out))
    assert all(n.endswith(".png") and not n.startswith(".") for n in written), written  # no temporary files
    assert 0 < len(written) < count
    summary = stderr.splitlines()[-1]
    assert summary.startswith(
        f"Interrupted: {len(written)} written, 0 failed, 0 skipped, {count - len(written)}"
    )
    for name in written:
        np.testing.assert_array_equal(read(out / name), blurred(images[name]))


@pytest.mark.slow
def test_subprocess_progress_bar_only_on_a_terminal(tmp_path):
    import pty

    for i in range(3):
        save(tmp_path / f"p{i}.png", (8, 8), i)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [CONVFILTER, "blur", *sorted(tmp_path.glob("p*.png")), "-o", tmp_path / "out"],
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = shown.decode()
    assert "Filtering" in text and "100%" in text
    assert text.rstrip().endswith("3 written, 0 failed, 0 skipped")
    assert proc.stdout.read() == b""
