"""The three workloads of docs/performance.md, whole processes, convfilter through its warm server.

* W1: one 512x512 PNG, 3x3 blur;
* W2: 200 512x512 PNGs in one call (convfilter on the folder, the OpenCV script on the files);
* W3: one 8192x8192 PNG (a noisy ramp), 5x5 blur.

Every program computes the same thing, 'same' size with zero padding
(``cv2.filter2D`` with ``BORDER_CONSTANT``, ImageMagick's ``-convolve`` with a
black virtual pixel), at its own default PNG settings; the outputs are checked
against convfilter's first (at most one step apart, at rounding ties). Runs
alternate between the programs, ``--repeat`` times; the best of each is shown
with the ratio to the OpenCV script. Peers that are not installed are left out
(``pip install opencv-python-headless``, ``apt-get install libvips-tools
imagemagick``).

    python benchmarks/workloads.py            # --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CONVFILTER = Path(sys.executable).with_name("convfilter")
OPENCV = """
import sys, cv2, numpy as np
size, out, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
kernel = np.full((size, size), 1 / size**2, dtype=np.float32)
for path in files:
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    result = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    target = out if len(files) == 1 else out + "/" + path.rsplit("/", 1)[1]
    if not cv2.imwrite(target, result):
        sys.exit("cannot write " + target)
"""
Image.MAX_IMAGE_PIXELS = None


def make_inputs(root: Path, count: int) -> tuple[Path, Path, Path]:
    """W1's image, W2's folder and W3's image."""
    base = np.asarray(Image.open(ROOT / "sample_images" / "ascent.png"))
    folder = root / "w2"
    folder.mkdir()
    for i in range(count):
        Image.fromarray(np.roll(base, 3 * i, axis=1)).save(folder / f"{i:03d}.png")
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 8192, dtype=np.float32)
    big = ramp[:, None] * 0.5 + ramp[None, :] * 0.5 + rng.normal(0, 20, (8192, 8192)).astype(np.float32)
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(root / "w3.png", compress_level=1)
    return folder / "000.png", folder, root / "w3.png"


def is_imagemagick(command: str | None) -> bool:
    """Whether ``command`` is ImageMagick (some machines have a stand-in ``convert``)."""
    if command is None:
        return False
    done = subprocess.run([command, "-version"], capture_output=True, text=True)
    return done.returncode == 0 and "ImageMagick" in done.stdout


def run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: {done.stderr.decode()}")
    return wall


def same_pixels(a: Path, b: Path, interior: bool = False) -> None:
    """At most one step apart (rounding ties), in at most 1 % of the pixels; ``interior``: the border
    left out and any pixel one step apart (vips pads by copying the edge and rounds its integer
    convolution down)."""
    x, y = (np.asarray(Image.open(p).convert("L"), dtype=np.int16) for p in (a, b))
    assert x.shape == y.shape, (a, b, x.shape, y.shape)
    if interior:
        x, y = x[1:-1, 1:-1], y[1:-1, 1:-1]
    diff = np.abs(x - y)
    assert diff.max() <= 1 and (interior or np.count_nonzero(diff) <= 0.01 * diff.size), (a, b, diff.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="convfilter-workloads-"))
    runtime = root / "runtime"
    runtime.mkdir(mode=0o700)
    env = {key: value for key, value in os.environ.items() if key != "CONVFILTER_SERVER"}
    env["CONVFILTER_RUNTIME_DIR"] = str(runtime)
    one, folder, big = make_inputs(root, args.count)
    files = sorted(str(p) for p in folder.iterdir())
    magick = shutil.which("magick") or shutil.which("convert")
    cf = str(CONVFILTER)
    workloads = {  # name -> {program: (command, output to check or None)}
        "W1 one 512x512 PNG, 3x3 blur": {
            "convfilter": ([cf, "blur", str(one), "{out}.png", "--padding", "same", "--overwrite"], True),
            "OpenCV script": ([sys.executable, "-c", OPENCV, "3", "{out}.png", str(one)], True),
            "vips CLI": (["vips", "conv", str(one), "{out}.png", str(root / "box3.mat")], "interior"),
            "ImageMagick": (
                [
                    magick or "",
                    str(one),
                    "-virtual-pixel",
                    "black",
                    "-define",
                    "convolve:scale=!",
                    "-morphology",
                    "Convolve",
                    "3x3:1,1,1,1,1,1,1,1,1",
                    "{out}.png",
                ],
                True,
            ),
        },
        f"W2 {args.count} 512x512 PNGs, one call": {
            "convfilter": (
                [cf, "blur", str(folder), "-r", "-o", "{out}", "--padding", "same", "-q", "--overwrite"],
                True,
            ),
            "OpenCV script": ([sys.executable, "-c", OPENCV, "3", "{out}", *files], True),
        },
        "W3 8192x8192 PNG, 5x5 blur": {
            "convfilter": (
                [cf, "blur", str(big), "{out}.png", "--size", "5", "--padding", "same", "--overwrite"],
                True,
            ),
            "OpenCV script": ([sys.executable, "-c", OPENCV, "5", "{out}.png", str(big)], True),
        },
    }
    (root / "box3.mat").write_text("3 3 9 0\n1 1 1\n1 1 1\n1 1 1\n")
    available = {"vips CLI": shutil.which("vips") is not None, "ImageMagick": is_imagemagick(magick)}
    subprocess.run([cf, "server", "start"], check=True, env=env, stdout=subprocess.DEVNULL)
    try:
        cores = os.cpu_count()
        print(
            f"{cores} CPU cores; best of {args.repeat}, runs alternating; convfilter through its warm server"
        )
        print()
        print("| workload | program | wall s | vs OpenCV script | vs vips CLI |")
        print("|---|---|---:|---:|---:|")
        for name, programs in workloads.items():
            programs = {p: c for p, c in programs.items() if available.get(p, True)}
            outputs = {}
            for program, (command, _) in programs.items():
                out = root / f"out-{name[:2]}-{program.split()[0]}"
                if "{out}" in command:  # a folder: W2's outputs
                    out.mkdir(exist_ok=True)
                outputs[program] = out
            times: dict[str, list[float]] = {p: [] for p in programs}
            for _ in range(args.repeat):
                for program, (command, _) in programs.items():
                    argv = [part.replace("{out}", str(outputs[program])) for part in command]
                    times[program].append(run(argv, env))
            reference = outputs["convfilter"]
            for program, (_, check) in programs.items():
                if check and program != "convfilter":
                    if reference.is_dir():
                        for path in sorted(reference.iterdir())[:20]:
                            same_pixels(path, outputs[program] / path.name)
                    else:
                        same_pixels(
                            Path(f"{reference}.png"),
                            Path(f"{outputs[program]}.png"),
                            interior=check == "interior",
                        )
            cv = min(times["OpenCV script"])
            vips = min(times["vips CLI"]) if "vips CLI" in times else None
            for program, walls in times.items():
                versus_vips = f"{min(walls) / vips:.2f}" if vips else ""
                print(f"| {name} | {program} | {min(walls):.3f} | {min(walls) / cv:.2f} | {versus_vips} |")
    finally:
        subprocess.run([cf, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
