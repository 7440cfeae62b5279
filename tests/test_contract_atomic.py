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
