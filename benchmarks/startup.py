"""Start-up benchmark: commands without a model vs TensorFlow's import vs one 512x512 image end to end.

Each command runs ``--repeat`` times as a child process, alternating; the
median wall time is printed. Goals: ``--help``/``--version`` under 0.3 s; a
512x512 image end to end no more than TensorFlow's import + 0.7 s.

    python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKE_IMAGE = """
import sys
import numpy as np
from PIL import Image
Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512), dtype=np.uint8)).save(sys.argv[1])
"""


def wall(command: list[str]) -> float:
    """Seconds ``command`` takes as a child process (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    convfilter = str(Path(sys.executable).with_name("convfilter"))
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "in.png")
        subprocess.run([sys.executable, "-c", MAKE_IMAGE, source], check=True)
        commands = {
            "convfilter --help": [convfilter, "--help"],
            "convfilter --version": [convfilter, "--version"],
            "python -c 'import keras, tensorflow'": [sys.executable, "-c", "import keras, tensorflow"],
            "convfilter blur in.png out.png (512x512)": [
                convfilter,
                "blur",
                source,
                os.path.join(folder, "o.png"),
                "--overwrite",
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, command in commands.items():
                times[name].append(wall(command))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; median of {args.repeat} runs")
    print("| command | median wall time (s) | min (s) |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} |")
    gap = statistics.median(times["convfilter blur in.png out.png (512x512)"]) - statistics.median(
        times["python -c 'import keras, tensorflow'"]
    )
    print(f"\n512x512 end to end minus TensorFlow's import: {gap:+.2f} s (goal <= 0.7 s)")


if __name__ == "__main__":
    main()
