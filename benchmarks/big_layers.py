"""Huge-image benchmark for the layers beyond one filter: a transposed convolution and a filter bank.

An 8192x8192 8-bit PNG through ``blur --transpose --stride 2 2`` (16385x16385 out) and through a
two-filter Sobel ``bank --combine magnitude``, each against an OpenCV script that does the same job
(zero-insertion upsampling then ``filter2D``; two ``filter2D`` and ``cv2.magnitude``). Each runs as a
child process: wall time and peak resident memory (``ru_maxrss``). The outputs are compared pixel by
pixel (OpenCV's float32 result is the independent reference; a difference of 1 can only come from a
rounding tie). The goal is a peak RSS under ~1.5 GB for each.

    pip install -e '.[bench]'
    python benchmarks/big_layers.py [--size 8192] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big import COMPARE, MAKE_IMAGE, run_child  # noqa: E402

OPENCV = """
import sys
import cv2
import numpy as np
source, target, job = sys.argv[1:4]
image = cv2.imread(source, cv2.IMREAD_GRAYSCALE).astype(np.float32)
if job == "transpose":
    up = np.zeros(((image.shape[0] - 1) * 2 + 1, (image.shape[1] - 1) * 2 + 1), np.float32)
    up[::2, ::2] = image
    del image
    up = cv2.copyMakeBorder(up, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    box = np.full((3, 3), 1 / 9, np.float32)
    result = cv2.filter2D(up, -1, box, borderType=cv2.BORDER_CONSTANT)[1:-1, 1:-1]
else:
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    gx = cv2.filter2D(image, -1, sobel, borderType=cv2.BORDER_CONSTANT)
    gy = cv2.filter2D(image, -1, sobel.T.copy(), borderType=cv2.BORDER_CONSTANT)
    result = cv2.magnitude(gx, gy)
cv2.imwrite(target, np.clip(np.rint(result), 0, 255).astype(np.uint8))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--keep", type=Path, default=None, help="directory for the images (default: temp)")
    args = parser.parse_args()
    convfilter = str(Path(sys.executable).with_name("convfilter"))
    env = {**os.environ, "CONVFILTER_SERVER": "off"}  # the process's own memory, not a server's
    with tempfile.TemporaryDirectory() as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / f"scan{args.size}.png"
        if not source.exists():
            subprocess.run([sys.executable, "-c", MAKE_IMAGE, str(source), str(args.size)], check=True)
        jobs = {
            "transpose": ["blur", "--transpose", "--stride", "2", "2"],
            "bank": ["bank", "sobel-x", "sobel-y", "--padding", "same", "--range", "clip"],
        }
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.size}x{args.size} 8-bit PNG")
        print(
            "| job | convfilter s | convfilter peak RSS MB | OpenCV s | OpenCV peak RSS MB "
            "| max diff (pixels) |"
        )
        print("|---|---|---|---|---|---|")
        for name, options in jobs.items():
            ours, theirs = folder / f"convfilter-{name}.png", folder / f"opencv-{name}.png"
            if name == "bank":
                command = [convfilter, *options[:3], str(source), str(ours), *options[3:], "--overwrite"]
            else:
                command = [convfilter, options[0], str(source), str(ours), *options[1:], "--overwrite"]
            os.environ.update(env)
            wall, rss = run_child(command)
            cv_wall, cv_rss = run_child([sys.executable, "-c", OPENCV, str(source), str(theirs), name])
            compared = subprocess.run(
                [sys.executable, "-c", COMPARE, str(ours), str(theirs)],
                capture_output=True,
                text=True,
                check=True,
            )
            largest, count = compared.stdout.split()
            print(
                f"| {name} | {wall:.1f} | {rss:.0f} | {cv_wall:.1f} | {cv_rss:.0f} | {largest} ({count} px) |"
            )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
