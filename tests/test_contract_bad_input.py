"""Bad inputs and outputs: exit 1, one line naming the file, no traceback, nothing written.

Each case runs through the library (``filter_file``), Click's CliRunner and
the installed ``convfilter`` command (one shell script for all cases).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convfilter.cli import cli
from convfilter.errors import ConvFilterError
from convfilter.io.images import read_color, read_gray
from convfilter.run.single import filter_file

BLUR = np.full((3, 3), 1 / 9)
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
BOMB = (
    "image is 100000x100000 = 10000000000 pixels, more than the limit of 268435456 "
    "(a guard against decompression bombs); raise it with --max-pixels if you trust the file"
)
MESSAGES = {
    "empty.png": "file is empty",
    "truncated.png": re.compile(r"cannot decode image \(image file is truncated.*\)"),
    "truncated.jpg": re.compile(r"cannot decode image \(image file is truncated.*\)"),
    "random.png": "not an image file Pillow can read",
    "text.jpg": "not an image file Pillow can read",
    "directory.png": "is a directory, not an image file",
    "missing.png": "no such file",
    "unreadable.png": "permission denied",
    "tiny.png": "image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding",
    "bomb.png": BOMB,
    # a matrix input: refused without unpickling (the payload would create a marker file)
    "pickled.npy": "holds Python objects, which need pickle (refused)",
}
CASES = sorted(MESSAGES)


def skip_if_root_can_read(name):
    if name == "unreadable.png" and AS_ROOT:
        pytest.skip("root reads files whatever their permissions")


def check_line(line: str, path, name: str) -> None:
    """``line`` is exactly ``<path>: <expected message>``."""
    expected = MESSAGES[name]
    prefix = f"{path}: "
    assert line.startswith(prefix), line
    rest = line[len(prefix) :]
    if isinstance(expected, str):
        assert rest == expected
    else:
        assert expected.fullmatch(rest), rest
    assert "\n" not in line and "Traceback" not in line


def test_corpus_has_every_bad_case(corpus):
    assert sorted(corpus.bad) == CASES


@pytest.mark.parametrize("name", CASES)
def test_library_raises_one_line_naming_the_file(corpus, name, tmp_path):
    skip_if_root_can_read(name)
    path = corpus.bad[name]
    with pytest.raises(ConvFilterError) as info:
        filter_file(str(path), str(tmp_path / "out.png"), BLUR)
    check_line(str(info.value), path, name)
    assert list(tmp_path.iterdir()) == []
    assert not corpus.marker.exists()


@pytest.mark.parametrize("name", CASES)
def test_cli_exit_1_one_line_and_old_output_untouched(corpus, name, tmp_path):
    skip_if_root_can_read(name)
    path = corpus.bad[name]
    out = tmp_path / "out.png"
    out.write_bytes(b"the old output")
    res = CliRunner().invoke(cli, ["blur", str(path), str(out), "--overwrite"])
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.endswith("\n") and res.stderr.count("\n") == 1
    assert res.stderr.startswith("Error: ")
    check_line(res.stderr[len("Error: ") : -1], path, name)
    assert out.read_bytes() == b"the old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert not corpus.marker.exists()


@pytest.mark.slow
def test_bad_inputs_never_import_tensorflow(corpus, tmp_path):
    """A doomed run costs nothing: every case fails before the model (and TensorFlow) loads."""
    paths = [str(corpus.bad[name]) for name in CASES if not (name == "unreadable.png" and AS_ROOT)]
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from convfilter.errors import ConvFilterError
        from convfilter.run.single import filter_file
        failed = 0
        for path in sys.argv[2:]:
            try:
                filter_file(path, sys.argv[1], np.full((3, 3), 1 / 9))
            except ConvFilterError:
                failed += 1
        print(failed, "tensorflow" in sys.modules, "keras" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out.png"), *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(paths)), "False", "False"]


@pytest.mark.slow
def test_gigantic_header_is_refused_before_allocating(corpus):
    """Under a 1 GiB address-space limit: refused cleanly; without the guard, decoding runs out of memory."""
    script = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from convfilter.errors import ConvFilterError
        from convfilter.io.images import read_gray
        limit = None if sys.argv[2] == "none" else int(sys.argv[2])
        try:
            read_gray(sys.argv[1], max_pixels=limit)
        except ConvFilterError as exc:
            print("refused:", exc)
        except MemoryError:
            print("out of memory")
        """
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    path = str(corpus.bad["bomb.png"])
    runs = {}
    for limit in ("268435456", "none"):
        done = subprocess.run(
            [sys.executable, "-c", script, path, limit], capture_output=True, text=True, timeout=120, env=env
        )
        runs[limit] = done.stdout.strip()
    assert runs["268435456"] == f"refused: {path}: {BOMB}"
    # the control: without the guard, decoding really does try to allocate 10 GB
    assert runs["none"] == f"refused: {path}: not enough memory to decode the image"


def test_max_pixels_sets_the_limit(corpus, tmp_path):
    path = str(corpus.modes["L"].path)  # 7x9 = 63 pixels
    out = tmp_path / "out.png"
    runner = CliRunner()
    res = runner.invoke(cli, ["blur", path, str(out), "--max-pixels", "62"])
    assert res.exit_code == 1
    assert res.stderr == (
        f"Error: {path}: image is 7x9 = 63 pixels, more than the limit of 62 "
        "(a guard against decompression bombs); raise it with --max-pixels if you trust the file\n"
    )
    assert not out.exists()
    res = runner.invoke(cli, ["blur", path, str(out), "--max-pixels", "63"])
    assert res.exit_code == 0 and out.exists()


def test_max_pixels_applies_to_the_chosen_frame(corpus, tmp_path):
    pages = str(corpus.frames["tiff"])  # pages of 4x5, 5x6, 6x7
    res = CliRunner().invoke(
        cli, ["identity", pages, str(tmp_path / "o.png"), "--frame", "2", "--max-pixels", "41"]
    )
    assert res.exit_code == 1
    assert res.stderr == (
        f"Error: {pages}: image is 6x7 = 42 pixels, more than the limit of 41 "
        "(a guard against decompression bombs); raise it with --max-pixels if you trust the file\n"
    )


# --- outputs ----------------------------------------------------------------------------------


def test_unknown_output_extension_is_refused_before_reading(tmp_path):
    out = tmp_path / "out.xyz"
    res = CliRunner().invoke(cli, ["blur", str(tmp_path / "missing.png"), str(out)])
    assert res.exit_code == 1
    assert res.stderr == (
        f"Error: {out}: unknown output format ('.xyz'); "
        "use one of .png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_output_directory_missing(corpus, tmp_path):
    out = tmp_path / "nowhere" / "out.png"
    res = CliRunner().invoke(cli, ["blur", str(corpus.modes["L"].path), str(out)])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: directory {tmp_path / 'nowhere'} does not exist\n"


def test_output_is_a_directory(corpus, tmp_path):
    out = tmp_path / "dir.png"
    out.mkdir()
    res = CliRunner().invoke(cli, ["blur", str(corpus.modes["L"].path), str(out)])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: is a directory\n"


@pytest.mark.skipif(AS_ROOT, reason="root can write into a read-only directory")
def test_output_directory_not_writable(corpus, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = locked / "out.png"
    try:
        res = CliRunner().invoke(cli, ["blur", str(corpus.modes["L"].path), str(out)])
    finally:
        locked.chmod(0o755)
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: cannot write to directory {locked}\n"
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("link", ["same path", "symlink", "hardlink"])
def test_writing_to_the_input_is_refused(tmp_path, link):
    source = tmp_path / "in.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(source)
    before = source.read_bytes()
    out = tmp_path / "out.png"
    if link == "same path":
        out = source
    elif link == "symlink":
        out.symlink_to(source)
    else:
        os.link(source, out)
    res = CliRunner().invoke(cli, ["blur", str(source), str(out)])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: is the input file; refusing to overwrite it\n"
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"in.png", out.name})


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--max-pixels", "0"], "--max-pixels"),
        (["--depth", "12"], "--depth"),
        (["--frame", "first"], "--frame"),
        (["--quality", "-3"], "--quality"),
    ],
)
def test_bad_option_values_exit_2_with_usage(corpus, tmp_path, args, option):
    res = CliRunner().invoke(
        cli, ["blur", str(corpus.modes["L"].path), str(tmp_path / "o.png"), *args], prog_name="convfilter"
    )
    assert res.exit_code == 2
    assert res.stderr.startswith("Usage: convfilter blur [OPTIONS] INPUT... [OUTPUT]\n")
    assert f"Error: Invalid value for '{option}'" in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_installed_command_on_every_bad_case(corpus, tmp_path, convfilter_exe):
    """One shell script runs the installed command on every case (none imports TensorFlow)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    script = textwrap.dedent(
        """
        exe=$1; logs=$2; out=$3; shift 3
        for f in "$@"; do
            name=$(basename "$f")
            "$exe" blur "$f" "$out/out.png" >"$logs/$name.out" 2>"$logs/$name.err"
            echo $? >"$logs/$name.rc"
        done
        "$exe" blur "$1" "$out/out.xyz" >"$logs/ext.out" 2>"$logs/ext.err"; echo $? >"$logs/ext.rc"
        """
    )
    cases = [name for name in CASES if not (name == "unreadable.png" and AS_ROOT)]
    paths = [str(corpus.bad[name]) for name in cases]
    subprocess.run(
        ["bash", "-c", script, "bash", str(convfilter_exe), str(logs), str(out_dir), *paths],
        check=True,
        timeout=300,
    )
    for name, path in zip(cases, paths, strict=True):
        assert (logs / f"{name}.rc").read_text() == "1\n", name
        assert (logs / f"{name}.out").read_text() == ""
        err = (logs / f"{name}.err").read_text()
        assert err.startswith("Error: ") and err.count("\n") == 1, err
        check_line(err[len("Error: ") : -1], path, name)
    assert (logs / "ext.rc").read_text() == "1\n"
    assert (logs / "ext.err").read_text() == (
        f"Error: {out_dir / 'out.xyz'}: unknown output format ('.xyz'); "
        "use one of .png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp\n"
    )
    assert list(out_dir.iterdir()) == []
    assert not corpus.marker.exists()


def _encoded(fmt: str, mode: str, **params) -> bytes:
    rng = np.random.default_rng(9)
    base = Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    if params.pop("frames", False):
        other = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).convert(mode)
        params.update(save_all=True, append_images=[other])
    base.save(buf, format=fmt, **params)
    return buf.getvalue()


VALID = {
    "png": _encoded("PNG", "L"),
    "rgba.png": _encoded("PNG", "RGBA"),
    "gif": _encoded("GIF", "P", frames=True),
    "tif": _encoded("TIFF", "RGB", frames=True),
    "jpg": _encoded(
        "JPEG",
        "RGB",
        exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00",
    ),
    "bmp": _encoded("BMP", "RGB"),
    "webp": _encoded("WEBP", "RGB"),
}


@st.composite
def corruptions(draw):
    ext = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[ext])
    how = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    else:
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    return ext, bytes(data)


@settings(max_examples=150, deadline=None)
@given(corruptions())
def test_corrupted_files_decode_or_fail_with_one_line(case):
    """Whatever the damage: a clean ConvFilterError naming the file, or a decoded image; nothing else."""
    ext, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"damaged.{ext}")
        with open(path, "wb") as handle:
            handle.write(data)
        for read in (read_gray, read_color):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    image = read(path)
                assert [str(w.message) for w in caught] == []  # nothing may reach the terminal but the error
            except ConvFilterError as exc:
                message = str(exc)
                assert message.startswith(f"{path}: ") and "\n" not in message
            else:
                assert (image.pixels if read is read_gray else image.channels).size > 0
