"""Where a batch's time goes: decode, filter, encode, file system and waiting, with each one's floor.

Runs ``convfilter blur`` in this process (TensorFlow imported before timing)
on a workload and records, for every thread, when it was inside each stage:

* decode: reading and decoding an input (``read_input``);
* filter: the Keras model (``apply``, or the tiled filter of a huge image);
* encode: libpng/zlib (``encode_png``), or Pillow for other formats;
* file system: the temporary file's writes, ``fsync``, link and rename and the directory's ``fsync``;

and prints each stage's busy seconds (summed over threads: the time a thread
was inside the stage, including any wait for a core when there are more
threads than cores), the wall time and the CPU time.
Then it measures each stage's *floor* alone on the same data, one thread:
the decode of every input, the model on the decoded stack, the encode of
every result at the same settings, and the file system writes of those bytes.

    python benchmarks/split.py            # W2: 200 x 512x512 PNGs, 3x3 blur, -r -o
    python benchmarks/split.py --big      # W3: one 8192x8192 PNG, 5x5 blur 'same'
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SPANS: list[tuple[str, int, float, float]] = []
_LOCK = threading.Lock()


def timed(stage: str, function):
    """``function`` wrapped to record (stage, thread, start, end) of every call."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            with _LOCK:
                SPANS.append((stage, threading.get_ident(), start, time.perf_counter()))

    return wrapper


def instrument() -> None:
    """Wrap the stage functions where the runner calls them."""
    import imagecodecs

    import convfilter.io.atomic as atomic
    import convfilter.io.png as png
    import convfilter.run.runner as runner

    runner.read_input = timed("decode", runner.read_input)
    runner.apply = timed("filter", runner.apply)
    runner.filter_pixels = timed("filter", runner.filter_pixels)
    imagecodecs.png_encode = timed("encode", imagecodecs.png_encode)  # io/png.py imports it per call
    png.encode_pieces = timed("encode", png.encode_pieces)
    atomic.os = _TimedOs(os)


class _TimedOs:
    """``os`` for io/atomic.py, with its file system calls recorded."""

    def __init__(self, real):
        self._real = real
        for name in ("fsync", "link", "unlink", "replace", "chmod", "open", "close"):
            setattr(self, name, timed("file system", getattr(real, name)))

    def __getattr__(self, name):
        return getattr(self._real, name)


def make_inputs(folder: Path, count: int, size: int, big: bool = False) -> list[Path]:
    """``count`` grayscale PNGs of ``size`` x ``size``: the sample image tiled and shifted; ``big``:
    one noisy ramp (as ``benchmarks/big.py`` and ``benchmarks/workloads.py`` make it)."""
    folder.mkdir(parents=True)
    if big:
        rng = np.random.default_rng(0)
        ramp = np.linspace(0, 200, size, dtype=np.float32)
        image = ramp[:, None] * 0.5 + ramp[None, :] * 0.5 + rng.normal(0, 20, (size, size)).astype(np.float32)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "big.png", compress_level=1)
        return [folder / "big.png"]
    base = np.asarray(Image.open(ROOT / "sample_images" / "ascent.png"))
    reps = -(-size // base.shape[0])
    tiled = np.tile(base, (reps, reps))[:size, :size]
    paths = []
    for i in range(count):
        path = folder / f"{i:03d}.png"
        Image.fromarray(np.roll(tiled, 3 * i, axis=1)).save(path)
        paths.append(path)
    return paths


def busy_by_stage() -> dict[str, float]:
    busy: dict[str, float] = defaultdict(float)
    for stage, _, start, end in SPANS:
        busy[stage] += end - start
    return busy


def floors(inputs: list[Path], argv_options: list[str], level: int | None, kernel: str, work: Path) -> dict:
    """Each stage alone, one thread, on the same data."""
    from convfilter.engine.apply import apply
    from convfilter.engine.tiles import DEFAULT_TILE_SIZE
    from convfilter.io.atomic import atomic_file
    from convfilter.io.png import encode_png
    from convfilter.ops.kernels import box
    from convfilter.ops.spec import Conv2DSpec
    from convfilter.run.files import read_input

    result = {}
    start = time.perf_counter()
    decoded = [read_input(str(p), keep_dtype=True).channels for p in inputs]
    result["decode"] = time.perf_counter() - start
    size = 5 if kernel == "blur5" else 3
    padding = "same" if "same" in argv_options else "valid"
    op = Conv2DSpec(box(size), padding=padding)
    outputs = []  # the model once per batch of 8 (one image when it is huge), as the runner runs it
    filtering = 0.0
    for i in range(0, len(decoded), 8):
        stack = np.concatenate(decoded[i : i + 8]).astype(np.float32)
        start = time.perf_counter()
        values = apply(op, stack, tile_size=DEFAULT_TILE_SIZE)[-1]
        filtering += time.perf_counter() - start
        outputs.extend(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    result["filter"] = filtering
    start = time.perf_counter()
    encoded = [encode_png(o, compress_level=level) for o in outputs]
    result["encode"] = time.perf_counter() - start
    target = work / "floor"
    target.mkdir()
    start = time.perf_counter()
    for i, data in enumerate(encoded):
        with atomic_file(str(target / f"{i:03d}.png"), replace=False) as handle:
            handle.write(data)
    result["file system"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="W3: one 8192x8192 PNG, 5x5 blur 'same'")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--png-compression", type=int, default=None)
    parser.add_argument("-j", "--jobs", type=int, default=None, help="convfilter --jobs (default: its own)")
    args = parser.parse_args()
    count, size = (1, 8192) if args.big else (args.count, args.size)
    work = Path(tempfile.mkdtemp(prefix="convfilter-split-"))
    try:
        from click.testing import CliRunner

        from convfilter.cli import cli

        inputs = make_inputs(work / "in", count, size, big=args.big)
        options = ["--size", "5", "--padding", "same"] if args.big else []
        if args.png_compression is not None:
            options += ["--png-compression", str(args.png_compression)]
        if args.jobs is not None and not args.big:
            options += ["--jobs", str(args.jobs)]
        warm = CliRunner().invoke(cli, ["blur", str(inputs[0]), str(work / "warm.png"), *options])
        assert warm.exit_code == 0, warm.output
        instrument()
        source = str(inputs[0]) if args.big else str(work / "in")
        target = ["-o", str(work / "out")] if not args.big else [str(work / "out.png")]
        argv = ["blur", source, *(["-r"] if not args.big else []), *target, "-q", *options]
        SPANS.clear()
        cpu = time.process_time()
        start = time.perf_counter()
        result = CliRunner().invoke(cli, argv)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        assert result.exit_code == 0, result.output
        busy = busy_by_stage()
        threads = len({thread for _, thread, _, _ in SPANS})
        cores = len(os.sched_getaffinity(0))
        title = (
            "W3: 8192x8192 PNG, 5x5 blur 'same'" if args.big else f"W2: {count} {size}x{size} PNGs, 3x3 blur"
        )
        print(title)
        print(f"wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / wall:.2f} of {cores} cores), {threads} threads")
        print()
        print("| stage | busy s (all threads) | floor s (alone) |")
        print("|---|---:|---:|")
        from convfilter.cli.options import DEFAULT_PNG_COMPRESSION

        level = DEFAULT_PNG_COMPRESSION if args.png_compression is None else args.png_compression
        floor = floors(inputs, options, level, "blur5" if args.big else "blur3", work)
        for stage in ("decode", "filter", "encode", "file system"):
            print(f"| {stage} | {busy.get(stage, 0.0):.2f} | {floor[stage]:.2f} |")
        total_floor = sum(floor.values())
        print(f"| sum | {sum(busy.values()):.2f} | {total_floor:.2f} |")
        print()
        print(
            f"floor on {cores} cores if every stage overlapped perfectly: {total_floor / cores:.2f} s; "
            f"the run took {wall:.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
