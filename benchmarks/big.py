"""Huge-image benchmark: an 8192x8192 8-bit 5x5 blur, convfilter against an OpenCV script.

Each command runs as a child process; wall time and peak resident memory
(``ru_maxrss`` from ``os.wait4``) are measured per child. TensorFlow's own
import is measured the same way, since the goal is convfilter's wall time
<= the OpenCV script's + TensorFlow's import, and peak RSS < 1.5 GB.

    pip install -e '.[bench]'
    python benchmarks/big.py [--size 8192] [--tile-size 2048] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_child(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS in MB). Raises if it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {error}")
    return wall, usage.ru_maxrss / 1024


MAKE_IMAGE = """
import sys
import numpy as np
from PIL import Image
size = int(sys.argv[2])
rng = np.random.default_rng(0)
ramp = np.linspace(0, 200, size, dtype=np.float32)
image = ramp[:, None] * 0.5 + ramp[None, :] * 0.5
image += rng.normal(0, 20, (size, size)).astype(np.float32)
Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(sys.argv[1], compress_level=1)
"""

COMPARE = """
import sys
import numpy as np
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in sys.argv[1:3])
d = np.abs(a - b)
print(int(d.max()), int(np.count_nonzero(d)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument(
        "--tile-size", type=int, default=None, help="convfilter --tile-size (default: its own)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--formats", nargs="+", default=["png", "bmp"], help="output formats to time")
    parser.add_argument(
        "--keep", type=Path, default=None, help="directory for the images (default: a temp dir)"
    )
    args = parser.parse_args()
    convfilter = str(Path(sys.executable).with_name("convfilter"))
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / f"scan{args.size}.png"
        if not source.exists():  # made in a child: the parent stays small, as its RSS is the
            # starting point of every child's ru_maxrss on Linux (fork + exec keeps the high-water mark)
            subprocess.run([sys.executable, "-c", MAKE_IMAGE, str(source), str(args.size)], check=True)
        tiles = ["--tile-size", str(args.tile_size)] if args.tile_size else []
        commands = {
            "TensorFlow import (keras, tensorflow)": [sys.executable, "-c", "import keras, tensorflow"]
        }
        for ext in args.formats:
            commands[f"OpenCV script -> .{ext}"] = [
                sys.executable,
                str(HERE / "opencv_blur.py"),
                str(source),
                str(folder / f"opencv.{ext}"),
            ]
            commands[f"convfilter blur --size 5 --padding same -> .{ext}"] = [
                convfilter,
                "blur",
                str(source),
                str(folder / f"convfilter.{ext}"),
                "--size",
                "5",
                "--padding",
                "same",
                "--overwrite",
                *tiles,
            ]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores; image {args.size}x{args.size} 8-bit PNG "
            f"({source.stat().st_size / 1e6:.0f} MB); best wall time, largest peak RSS of {args.repeat} "
            "run(s)"
        )
        print("| command | wall time (s) | peak RSS (MB) |")
        print("|---|---|---|")
        results = {}
        for name, command in commands.items():
            runs = [run_child(command) for _ in range(args.repeat)]
            results[name] = (min(r[0] for r in runs), max(r[1] for r in runs))
            print(f"| {name} | {results[name][0]:.2f} | {results[name][1]:.0f} |", flush=True)
        print()
        tf_import = results["TensorFlow import (keras, tensorflow)"][0]
        for ext in args.formats:
            compared = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    COMPARE,
                    str(folder / f"convfilter.{ext}"),
                    str(folder / f"opencv.{ext}"),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            largest, count = compared.stdout.split()
            budget = results[f"OpenCV script -> .{ext}"][0] + tf_import
            wall, rss = results[f"convfilter blur --size 5 --padding same -> .{ext}"]
            print(
                f".{ext}: convfilter {wall:.2f} s vs OpenCV + TF import {budget:.2f} s "
                f"({'met' if wall <= budget else 'missed'}); peak RSS {rss:.0f} MB "
                f"({'met' if rss < 1536 else 'missed'}: < 1536 MB); outputs differ by at most {largest} "
                f"(in {count} pixels)"
            )


if __name__ == "__main__":
    main()
