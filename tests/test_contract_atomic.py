"""Nothing lost: outputs appear atomically, a failed or killed write leaves the old file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convfilter.errors import ConvFilterError
from convfilter.io.atomic import (
    atomic_file,
    atomic_path,
    exists_message,
    move_into_place,
    remove_leftovers,
    rename_no_replace,
    temp_prefix,
)
from convfilter.io.images import write_image


def parts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_failing_encode_leaves_the_old_file_and_no_temp_files(tmp_path):
    out = tmp_path / "out.png"
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(out)
    before = out.read_bytes()
    with pytest.raises(ConvFilterError) as info:
        write_image(str(out), np.zeros((4, 4), np.float32), "PNG")  # PNG cannot hold mode F
    assert str(info.value) == f"{out}: cannot write (cannot write mode F as PNG)"
    assert out.read_bytes() == before
    assert parts(tmp_path) == []


@pytest.mark.slow
def test_write_failing_half_way_leaves_the_old_file(tmp_path):
    """A real I/O error in the middle of the encode: the file-size limit is hit after 4 KiB."""
    out = tmp_path / "out.png"
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(out)
    before = out.read_bytes()
    script = textwrap.dedent(
        """
        import resource, signal, sys
        import numpy as np
        from convfilter.errors import ConvFilterError
        from convfilter.io.images import write_image
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        noise = np.random.default_rng(0).integers(0, 256, (256, 256), dtype=np.uint8)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_image(sys.argv[1], noise, "PNG")
        except ConvFilterError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == f"{out}: cannot write ([Errno 27] File too large)\n", done.stderr
    assert out.read_bytes() == before
    assert parts(tmp_path) == []


@pytest.mark.slow
def test_a_kill_at_any_moment_leaves_a_whole_file(tmp_path):
    """SIGKILL a writer at several moments: the target is always one complete image, never a mix."""
    out = tmp_path / "out.png"
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (700, 700), dtype=np.uint8) for _ in range(2)]
    np.save(tmp_path / "a.npy", images[0])
    np.save(tmp_path / "b.npy", images[1])
    Image.fromarray(images[0]).save(out)
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from convfilter.io.images import write_image
        images = [np.load(sys.argv[2]), np.load(sys.argv[3])]
        print("ready", flush=True)
        i = 1
        while True:
            write_image(sys.argv[1], images[i % 2], "PNG", compress_level=9)
            i += 1
        """
    )
    for delay in (0.05, 0.23, 0.41, 0.67):
        writer = subprocess.Popen(
            [sys.executable, "-c", script, str(out), str(tmp_path / "a.npy"), str(tmp_path / "b.npy")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout.readline() == "ready\n"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
        with Image.open(out) as img:
            pixels = np.asarray(img)
        assert any(np.array_equal(pixels, image) for image in images), f"mixed file after {delay}s"
    # a killed writer cannot clean up: at most its one temporary file per kill is left behind
    assert all(name.startswith(".convfilter-") for name in parts(tmp_path))


def test_existing_permissions_are_kept(tmp_path):
    out = tmp_path / "out.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(out)
    out.chmod(0o640)
    write_image(str(out), np.ones((3, 3), np.uint8), "PNG")
    assert out.stat().st_mode & 0o777 == 0o640
    assert np.asarray(Image.open(out)).shape == (3, 3)


# The primitives themselves (convfilter.io.atomic): names, modes, refusals and what is left around.


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_a_new_file_appears_whole_with_the_umask_mode_and_nothing_beside_it(tmp_path):
    out = tmp_path / "new.bin"
    previous = os.umask(0o027)
    try:
        with atomic_file(str(out)) as handle:
            handle.write(b"abc")
            assert _listing(tmp_path) != ["new.bin"]  # not under its name until the block ends
    finally:
        os.umask(previous)
    assert out.read_bytes() == b"abc"
    assert out.stat().st_mode & 0o777 == 0o640
    assert _listing(tmp_path) == ["new.bin"]


def test_the_temporary_name_is_beside_the_output_with_prefix_claim_and_suffix(tmp_path):
    out = tmp_path / ("x" * 150 + ".png")
    with atomic_path(str(out), suffix=".tif", claim="RUN") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        name = os.path.basename(tmp)
        assert name.startswith(".convfilter-" + "x" * 100 + ".RUN.") and name.endswith(".tif")
        assert temp_prefix(str(out)) == ".convfilter-" + "x" * 100 + "."
        Path(tmp).write_bytes(b"1")
    assert out.read_bytes() == b"1"
    assert _listing(tmp_path) == [out.name]  # a claim marks only what may not be replaced


def test_replace_false_refuses_an_existing_output_and_true_replaces_it(tmp_path):
    out = tmp_path / "o.bin"
    out.write_bytes(b"old")
    with pytest.raises(ConvFilterError) as info, atomic_file(str(out), replace=False) as handle:
        handle.write(b"new")
    assert str(info.value) == exists_message(str(out))
    assert (
        str(info.value)
        == f"{out}: already exists (use --overwrite to replace it or --skip-existing to keep it)"
    )
    assert (out.read_bytes(), _listing(tmp_path)) == (b"old", ["o.bin"])
    with atomic_file(str(out), replace=True) as handle:
        handle.write(b"new")
    assert (out.read_bytes(), _listing(tmp_path)) == (b"new", ["o.bin"])


def test_errors_of_the_given_types_become_one_line_and_others_pass_through(tmp_path):
    out = tmp_path / "o.bin"
    with pytest.raises(ConvFilterError) as info, atomic_path(str(out), errors=(ValueError,)):
        raise ValueError("bad value\nsecond line")
    assert str(info.value) == f"{out}: cannot write (bad value)"
    with pytest.raises(ValueError), atomic_path(str(out)):  # not a listed type: as it was
        raise ValueError("x")
    with pytest.raises(ConvFilterError) as info, atomic_file(str(out)):
        raise OSError(28, "No space left on device")  # OSError is listed by default
    assert str(info.value) == f"{out}: cannot write ([Errno 28] No space left on device)"
    assert _listing(tmp_path) == []
    missing = tmp_path / "no-such-folder" / "o.bin"
    with pytest.raises(ConvFilterError) as info, atomic_path(str(missing)):
        pass
    assert str(info.value) == f"{missing}: cannot write (No such file or directory)"


def test_a_runs_claim_marker_lets_its_retry_find_its_own_file_and_refuses_other_runs(tmp_path):
    """A Dask task run again after its worker died finds its own file done; another run is refused."""
    out = tmp_path / "a.png"
    with atomic_file(str(out), replace=False, claim="R1") as handle:
        handle.write(b"first")
    marker = tmp_path / ".convfilter-a.png.R1.done"
    assert os.path.samefile(marker, out)
    with atomic_file(str(out), replace=False, claim="R1") as handle:  # the retry: done already
        handle.write(b"again")
    assert out.read_bytes() == b"first"
    with pytest.raises(ConvFilterError) as info, atomic_file(str(out), replace=False, claim="R2") as handle:
        handle.write(b"other")
    assert str(info.value) == exists_message(str(out))
    assert out.read_bytes() == b"first"
    # A marker left by an attempt that died before it took the name is not the file: it is replaced.
    stale = tmp_path / ".convfilter-b.png.R1.done"
    stale.write_bytes(b"stale")
    with atomic_file(str(tmp_path / "b.png"), replace=False, claim="R1") as handle:
        handle.write(b"b")
    assert (tmp_path / "b.png").read_bytes() == b"b" and os.path.samefile(stale, tmp_path / "b.png")


def test_remove_leftovers_removes_this_runs_files_of_that_output_only(tmp_path):
    names = [
        ".convfilter-a.png.R1.k2x.part",  # this run's temporary file (its worker was killed)
        ".convfilter-a.png.R1.done",  # this run's marker
        ".convfilter-a.png.R2.done",  # another run's
        ".convfilter-a.png.R10.done",  # another run whose name begins the same
        ".convfilter-b.png.R1.done",  # another output's
        "a.png",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert remove_leftovers(str(tmp_path / "a.png"), "R1") == 2
    assert _listing(tmp_path) == sorted(names[2:])
    assert remove_leftovers(str(tmp_path / "a.png"), "R1") == 0
    assert remove_leftovers(str(tmp_path / "gone" / "a.png"), "R1") == 0
    assert remove_leftovers("s3://bucket/a.png", "R1") == 0  # an object store leaves no temporary object


def test_rename_no_replace_moves_a_folder_and_never_replaces(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_bytes(b"1")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConvFilterError) as info:
        rename_no_replace(str(tmp_path / "new"), str(tmp_path / "taken"))
    assert str(info.value) == exists_message(str(tmp_path / "taken"))
    assert (tmp_path / "new" / "f").exists()
    rename_no_replace(str(tmp_path / "new"), str(tmp_path / "moved"))
    assert _listing(tmp_path) == ["moved", "taken"] and (tmp_path / "moved" / "f").read_bytes() == b"1"


def test_new_files_get_0666_less_the_umask_like_open(tmp_path):
    previous = os.umask(0)
    try:
        for umask, mode in ((0, 0o666), (0o002, 0o664), (0o077, 0o600)):
            os.umask(umask)
            out = tmp_path / f"{umask:o}.bin"
            with atomic_file(str(out)) as handle:
                handle.write(b"x")
            assert out.stat().st_mode & 0o7777 == mode, oct(umask)
    finally:
        os.umask(previous)


def test_move_into_place_replaces_by_default_and_falls_back_where_there_are_no_hard_links(
    tmp_path, monkeypatch
):
    out = tmp_path / "o.bin"
    out.write_bytes(b"old")
    (tmp_path / "t1").write_bytes(b"new")
    move_into_place(str(tmp_path / "t1"), str(out))
    assert (out.read_bytes(), _listing(tmp_path)) == (b"new", ["o.bin"])

    def no_links(source, target):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # a file system without hard links: check, then rename
    (tmp_path / "t2").write_bytes(b"newer")
    with pytest.raises(ConvFilterError) as info:
        move_into_place(str(tmp_path / "t2"), str(out), replace=False)
    assert str(info.value) == exists_message(str(out))
    assert out.read_bytes() == b"new" and (tmp_path / "t2").exists()  # left for the caller
    move_into_place(str(tmp_path / "t2"), str(tmp_path / "fresh.bin"), replace=False)
    assert _listing(tmp_path) == ["fresh.bin", "o.bin"] and (tmp_path / "fresh.bin").read_bytes() == b"newer"


def test_remove_leftovers_skips_what_it_cannot_remove_and_never_reads_a_url_as_a_path(tmp_path, monkeypatch):
    (tmp_path / ".convfilter-a.png.R1.dir.part").mkdir()  # cannot be unlinked: skipped, not counted
    (tmp_path / ".convfilter-a.png.R1.done").write_bytes(b"")
    assert remove_leftovers(str(tmp_path / "a.png"), "R1") == 1
    assert _listing(tmp_path) == [".convfilter-a.png.R1.dir.part"]
    monkeypatch.chdir(tmp_path)
    lookalike = tmp_path / "s3:" / "bucket"  # where the URL would point if it were a local path
    lookalike.mkdir(parents=True)
    (lookalike / ".convfilter-a.png.R1.done").write_bytes(b"")
    assert remove_leftovers("s3://bucket/a.png", "R1") == 0
    assert _listing(lookalike) == [".convfilter-a.png.R1.done"]


def test_rename_no_replace_is_one_atomic_call_with_relative_names(tmp_path, monkeypatch):
    """Linux's renameat2(RENAME_NOREPLACE): no check-then-rename, so nothing can slip in between."""
    monkeypatch.chdir(tmp_path)

    def no_rename(source, target):
        raise AssertionError("os.rename used: the check and the rename are two steps")

    monkeypatch.setattr(os, "rename", no_rename)
    (tmp_path / "a").mkdir()
    rename_no_replace("a", "b")
    assert _listing(tmp_path) == ["b"]
    (tmp_path / "c").mkdir()
    with pytest.raises(ConvFilterError) as info:
        rename_no_replace("c", "b")
    assert str(info.value) == exists_message("b")
    with pytest.raises(FileNotFoundError) as missing:
        rename_no_replace("gone", "d")
    assert (missing.value.filename, missing.value.strerror) == ("d", "No such file or directory")


def test_rename_no_replace_without_renameat2_checks_then_renames(tmp_path, monkeypatch):
    import ctypes

    def no_libc(*args, **kwargs):
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    (tmp_path / "a").mkdir()
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConvFilterError) as info:
        rename_no_replace(str(tmp_path / "a"), str(tmp_path / "taken"))
    assert str(info.value) == exists_message(str(tmp_path / "taken"))
    rename_no_replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert _listing(tmp_path) == ["b", "taken"]


def test_a_folder_that_cannot_be_synced_still_gets_its_file(tmp_path, monkeypatch):
    """Not every file system lets a directory be fsynced: the rename is done, the sync is best effort."""

    def refused(fd):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "fsync", refused)
    out = tmp_path / "o.bin"
    with atomic_path(str(out)) as tmp:
        Path(tmp).write_bytes(b"1")
    assert (out.read_bytes(), _listing(tmp_path)) == (b"1", ["o.bin"])
