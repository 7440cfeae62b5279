"""Benchmark: one convfilter call on a folder vs. one call per file vs. an OpenCV script.

Builds COUNT seeded SIZE x SIZE grayscale PNGs in a temporary directory and
measures, in one run:

* ``convfilter blur DIR -r -o OUT`` (the whole folder, one call);
* a shell loop calling ``convfilter blur IN OUT`` once per file, on a subset
  (``--loop-files``), scaled to COUNT;
* ``convfilter`` on one file, the start-up cost that one call pays once;
* an equivalent one-process OpenCV script (``cv2.imread`` -> ``cv2.filter2D``
  -> ``cv2.imwrite``) on all files and on one file.

All use the 3x3 blur with 'same' zero padding, which ``cv2.filter2D`` computes
with ``BORDER_CONSTANT``; the outputs are compared, so the work is the same.

Run: ``python benchmarks/batch.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CONVFILTER = Path(sys.executable).with_name("convfilter")

OPENCV_SCRIPT = """
import sys, cv2, numpy as np
kernel = np.full((3, 3), 1 / 9, dtype=np.float32)
out = sys.argv[1]
for path in sys.argv[2:]:
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    result = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    cv2.imwrite(out + "/" + path.rsplit("/", 1)[-1], result)
"""


def make_images(folder: Path, count: int, size: int, seed: int) -> list[Path]:
    """``count`` seeded grayscale PNGs that look like photos (smooth shapes plus grain)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    paths = []
    for i in range(count):
        coarse = rng.uniform(0, 255, (size // 32, size // 32))
        smooth = np.kron(coarse, np.ones((32, 32)))
        grain = rng.normal(0, 12, (size, size))
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        path = folder / f"img_{i:04d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@dataclass
class Timing:
    """Wall and CPU (user + system, all processes) seconds of one command."""

    wall: float
    cpu: float


def timed(
    command: list[str] | str, *, shell: bool = False, repeat: int = 1, clean: Path | None = None
) -> Timing:
    """The fastest of ``repeat`` runs of a command, which must succeed (``clean``: emptied before each)."""
    best = Timing(float("inf"), float("inf"))
    for _ in range(repeat):
        if clean is not None:
            for old in clean.iterdir():
                old.unlink()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, shell=shell, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if wall < best.wall:
            best = Timing(wall, cpu)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--loop-files", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each one-process measurement (best)")
    parser.add_argument("--jobs", type=int, default=None, help="convfilter --jobs (default: its own)")
    args = parser.parse_args()
    n = args.count
    load_before = ", ".join(f"{v:.2f}" for v in os.getloadavg())

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = make_images(root / "in", n, args.size, args.seed)
        for name in ("batch", "loop", "one", "cv", "cv1"):
            (root / name).mkdir()
        common = ["--padding", "same", "-q"] + ([] if args.jobs is None else ["--jobs", str(args.jobs)])
        rep = args.repeat

        one_cmd = [str(CONVFILTER), "blur", str(images[0]), str(root / "one" / "x.png"), *common]
        one = timed(one_cmd, repeat=rep, clean=root / "one")
        batch_cmd = [str(CONVFILTER), "blur", str(root / "in"), "-r", "-o", str(root / "batch"), *common]
        batch = timed(batch_cmd, repeat=rep, clean=root / "batch")
        subset = images[: args.loop_files]
        loop_script = "\n".join(
            shlex.join([str(CONVFILTER), "blur", str(p), str(root / "loop" / p.name), "--padding", "same"])
            for p in subset
        )
        loop = timed(loop_script, shell=True)
        loop = Timing(loop.wall * n / len(subset), loop.cpu * n / len(subset))
        cv_cmd = [sys.executable, "-c", OPENCV_SCRIPT]
        cv = timed([*cv_cmd, str(root / "cv"), *map(str, images)], repeat=rep, clean=root / "cv")
        cv1 = timed([*cv_cmd, str(root / "cv1"), str(images[0])], repeat=rep, clean=root / "cv1")

        def pixels(path: Path) -> np.ndarray:
            return np.asarray(Image.open(path), dtype=int)

        worst = max(
            int(np.abs(pixels(root / "batch" / p.name) - pixels(root / "cv" / p.name)).max()) for p in images
        )

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value * 1000:.1f}"

    def after(full: Timing, start: Timing) -> Timing:
        return Timing((full.wall - start.wall) / (n - 1), (full.cpu - start.cpu) / (n - 1))

    batch_after, cv_after = after(batch, one), after(cv, cv1)
    rows = [
        ("convfilter, one call on the folder", batch, batch.wall / n, batch_after),
        (f"convfilter, once per file ({len(subset)} files, scaled)", loop, loop.wall / n, None),
        ("convfilter, one file (start-up)", one, None, None),
        ("OpenCV script, one process", cv, cv.wall / n, cv_after),
        ("OpenCV script, one file (start-up)", cv1, None, None),
    ]
    print(
        f"{n} grayscale {args.size}x{args.size} PNGs, 3x3 blur, 'same' padding, {os.cpu_count()} CPU cores, "
        f"fastest of {rep} runs (the per-file loop: one run); load average before: {load_before}"
    )
    print(f"largest pixel difference convfilter vs OpenCV: {worst}")
    print()
    print("| run | wall s | CPU s | ms per image | after start-up: ms per image | CPU ms per image |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, timing, per, rest in rows:
        rest_wall, rest_cpu = (None, None) if rest is None else (rest.wall, rest.cpu)
        cells = [name, f"{timing.wall:.2f}", f"{timing.cpu:.2f}", ms(per), ms(rest_wall), ms(rest_cpu)]
        print("| " + " | ".join(cells) + " |")
    print()
    speedup = loop.wall / batch.wall
    ratio = batch_after.wall / cv_after.wall
    cpu_ratio = batch_after.cpu / cv_after.cpu
    print(
        f"one call vs once per file: {speedup:.1f}x faster per image (goal >= 10x): "
        + ("met" if speedup >= 10 else "NOT met")
    )
    print(
        f"wall time per image after start-up vs OpenCV: {ratio:.2f}x (goal <= 1.5x): "
        + ("met" if ratio <= 1.5 else "NOT met")
        + f"; CPU time per image: {cpu_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
