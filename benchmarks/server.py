"""Benchmark: ``convfilter`` called once per file from a shell loop, cold and through the warm server.

Builds COUNT seeded SIZE x SIZE grayscale PNGs and measures, in one run, the
wall time per call of a shell loop of separate processes (``--calls`` files):

* ``convfilter --no-server blur IN OUT`` (cold: every call imports TensorFlow;
  ``--cold-calls`` of them, as the cost is the same each time);
* ``convfilter blur IN OUT`` through a warm server (started for the run in a
  private runtime directory, and stopped after);
* ImageMagick ``convert IN -convolve 1,1,1,1,1,1,1,1,1 OUT`` (normalised: a 3x3 box);
* the libvips CLI ``vips conv IN OUT box.mat``;
* a Python OpenCV script per file (``cv2.imread`` -> ``cv2.filter2D`` -> ``cv2.imwrite``);

and the whole COUNT-file folder in one call through the server against the
one-process OpenCV script over the same files. Peers that are not installed
are left out (ImageMagick: ``apt-get install imagemagick``; libvips:
``apt-get install libvips-tools``; OpenCV: ``pip install opencv-python-headless``).

Run: ``python benchmarks/server.py``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch import OPENCV_SCRIPT, make_images

CONVFILTER = Path(sys.executable).with_name("convfilter")

OPENCV_ONE = """
import sys, cv2, numpy as np
image = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE)
cv2.imwrite(sys.argv[2], cv2.filter2D(image, -1, np.full((3, 3), 1 / 9, dtype=np.float32)))
"""


def imagemagick() -> str | None:
    """ImageMagick's ``magick`` or ``convert`` (a stand-in that is not ImageMagick does not count)."""
    for name in ("magick", "convert", "/usr/bin/convert"):
        path = shutil.which(name)
        if path is None:
            continue
        version = subprocess.run([path, "-version"], capture_output=True, text=True).stdout
        if "ImageMagick" in version:
            return path
    return None


def loop_seconds(lines: list[str], env: dict[str, str]) -> float:
    """Wall seconds per line of a shell script that runs ``lines`` one after the other."""
    start = time.perf_counter()
    subprocess.run(["sh", "-e", "-c", "\n".join(lines)], check=True, env=env, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) / len(lines)


def once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="files in the folder")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--calls", type=int, default=50, help="separate processes per warm loop")
    parser.add_argument("--cold-calls", type=int, default=10, help="separate processes in the cold loop")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runtime = root / "runtime"
        runtime.mkdir(mode=0o700)
        env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
        env["CONVFILTER_RUNTIME_DIR"] = str(runtime)
        images = make_images(root / "in", args.count, args.size, args.seed)
        (root / "box.mat").write_text("3 3 9 0\n1 1 1\n1 1 1\n1 1 1\n")
        calls = images[: args.calls]
        q = shlex.quote
        rows: dict[str, float] = {}

        def per_file(name: str, template: str, files: list[Path]) -> None:
            out = root / name.split()[0]
            out.mkdir(exist_ok=True)
            lines = [template.format(i=q(str(p)), o=q(str(out / p.name))) for p in files]
            rows[name] = loop_seconds(lines, env)

        cf = q(str(CONVFILTER))
        per_file(
            "cold convfilter --no-server", f"{cf} --no-server blur {{i}} {{o}}", images[: args.cold_calls]
        )
        subprocess.run([str(CONVFILTER), "server", "start"], check=True, env=env, stdout=subprocess.DEVNULL)
        try:
            per_file("warm convfilter through the server", f"{cf} blur {{i}} {{o}}", calls)
            magick = imagemagick()
            if magick:
                per_file("ImageMagick convert", f"{q(magick)} {{i}} -convolve 1,1,1,1,1,1,1,1,1 {{o}}", calls)
            if shutil.which("vips"):
                per_file("vips CLI", f"vips conv {{i}} {{o}} {q(str(root / 'box.mat'))}", calls)
            has_cv = subprocess.run([sys.executable, "-c", "import cv2"], capture_output=True).returncode == 0
            if has_cv:
                per_file(
                    "OpenCV script per file", f"{q(sys.executable)} -c {q(OPENCV_ONE)} {{i}} {{o}}", calls
                )
            folder = once(
                [str(CONVFILTER), "blur", str(root / "in"), "-r", "-o", str(root / "folder"), "-q"], env
            )
            cv_folder = None
            if has_cv:
                (root / "cvfolder").mkdir()
                cv_folder = once(
                    [sys.executable, "-c", OPENCV_SCRIPT, str(root / "cvfolder"), *map(str, images)], env
                )
            status = subprocess.run(
                [str(CONVFILTER), "server", "status"], env=env, capture_output=True, text=True
            ).stdout
        finally:
            subprocess.run([str(CONVFILTER), "server", "stop"], env=env, stdout=subprocess.DEVNULL)

    print(
        f"grayscale {args.size}x{args.size} PNGs, 3x3 box blur, {os.cpu_count()} CPU cores; a shell loop of "
        f"separate processes per row ({args.calls} calls; cold: {args.cold_calls})"
    )
    print()
    print("| one process per file | ms per call | vs warm convfilter |")
    print("|---|---:|---:|")
    warm = rows["warm convfilter through the server"]
    for name, seconds in rows.items():
        print(f"| {name} | {seconds * 1000:.0f} | {seconds / warm:.2f}x |")
    print()
    print(f"the whole {args.count}-file folder in one call through the server: {folder:.2f} s")
    if cv_folder is not None:
        print(f"the one-process OpenCV script, same files: {cv_folder:.2f} s ({folder / cv_folder:.2f}x)")
    magick_ms = rows.get("ImageMagick convert")
    if magick_ms:
        verdict = "met" if warm <= magick_ms else "NOT met"
        print(f"goal, a warm call no slower than ImageMagick's convert: {warm / magick_ms:.2f}x, {verdict}")
    if "vips CLI" in rows:
        print(f"aim, as fast as the libvips CLI: {warm / rows['vips CLI']:.2f}x")
    if cv_folder is not None:
        verdict = "met" if folder <= cv_folder else "NOT met"
        print(f"goal, the folder through the server no slower than the OpenCV script: {verdict}")
    print()
    print("server status after the run:")
    print(status)


if __name__ == "__main__":
    main()
