"""Engine benchmark: convfilter's Conv2D engine against OpenCV filter2D and scipy.ndimage.correlate.

Same float32 arrays for everyone (a 4096x4096 image and a 64x512x512 stack),
3x3, 7x7 and 15x15 random kernels, zero borders and same-size output
(convfilter ``padding='same'``, OpenCV ``BORDER_CONSTANT``, scipy
``mode='constant'``). Prints megapixels per second (best of ``--repeat``
runs after a warm-up), the ratios, and convfilter's largest error against a
float64 NumPy reference relative to the kernel's absolute sum (on the first
``--check-rows`` output rows of every image; pixels are uniform in 0..1).

    pip install -e '.[bench]'
    python benchmarks/engine.py            # add --plain to time the literal Conv2D(1) too
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best_time(run, repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def reference(batch: np.ndarray, kernel: np.ndarray, rows: int) -> np.ndarray:
    """Float64 'same' zero-padded cross-correlation of the first ``rows`` output rows, by kernel taps."""
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(batch.astype(np.float64), ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left)))
    width = batch.shape[2]
    out = np.zeros((batch.shape[0], rows, width))
    for a in range(kh):
        for b in range(kw):
            out += kernel[a, b] * padded[:, a : a + rows, b : b + width]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 7, 15])
    parser.add_argument("--check-rows", type=int, default=256)
    parser.add_argument("--plain", action="store_true", help="also time the plain Conv2D(1) engine")
    parser.add_argument("--small", action="store_true", help="quick run on 1024x1024 and 16x256x256")
    args = parser.parse_args()

    import cv2
    import scipy
    import scipy.ndimage as ndi

    from convfilter.engine.layouts import convolve
    from convfilter.engine.model import keras_module

    keras = keras_module()
    rng = np.random.default_rng(0)
    shapes = [(1, 1024, 1024), (16, 256, 256)] if args.small else [(1, 4096, 4096), (64, 512, 512)]
    import tensorflow as tf

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores ({cpu_name()}); TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), "
        f"scipy {scipy.__version__}, NumPy {np.__version__}"
    )
    header = (
        "| array | kernel | convfilter Mpx/s | OpenCV Mpx/s | scipy Mpx/s | vs OpenCV | vs scipy "
        "| max error |" + (" plain Mpx/s |" if args.plain else "")
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for shape in shapes:
        batch = rng.random(shape, dtype=np.float32)
        pixels = batch.size / 1e6
        for size in args.sizes:
            kernel = rng.standard_normal((size, size)).astype(np.float32)
            pad = ((size - 1) // 2, size - 1 - (size - 1) // 2)

            def ours(engine="auto", batch=batch, kernel=kernel, pad=pad):
                return convolve(batch, kernel, pad_y=pad, pad_x=pad, engine=engine)

            def opencv(batch=batch, kernel=kernel):
                return [cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT) for image in batch]

            def scipy_run(batch=batch, kernel=kernel):
                return [ndi.correlate(image, kernel, mode="constant") for image in batch]

            t_ours = best_time(ours, args.repeat)
            t_cv = best_time(opencv, args.repeat)
            t_sp = best_time(scipy_run, max(1, args.repeat - 2) if size > 7 else args.repeat)
            result = ours()
            rows = min(args.check_rows, shape[1])
            expected = reference(batch, kernel.astype(np.float64), rows)
            error = np.abs(result[:, :rows] - expected).max() / np.abs(kernel).sum()
            check = opencv()[0]
            assert np.abs(check - result[0]).max() / np.abs(kernel).sum() < 1e-3, "OpenCV disagrees"
            line = (
                f"| {'x'.join(map(str, shape if shape[0] > 1 else shape[1:]))} | {size}x{size} "
                f"| {pixels / t_ours:.0f} | {pixels / t_cv:.0f} | {pixels / t_sp:.1f} "
                f"| {t_cv / t_ours:.2f}x | {t_sp / t_ours:.1f}x | {error:.1e} |"
            )
            if args.plain:
                t_plain = best_time(lambda: ours("plain"), 1)
                line += f" {pixels / t_plain:.0f} |"
            print(line, flush=True)
    layers_table(shapes[0][1:], args.repeat, cv2)


def upsample(image: np.ndarray, stride: int) -> np.ndarray:
    """Zero insertion: ``stride - 1`` zeros between pixels (the first half of a transposed convolution)."""
    h, w = image.shape
    out = np.zeros(((h - 1) * stride + 1, (w - 1) * stride + 1), dtype=image.dtype)
    out[::stride, ::stride] = image
    return out


def layers_table(shape: tuple[int, int], repeat: int, cv2) -> None:
    """A two-filter bank and a transposed convolution: convfilter's one layer against OpenCV doing the same.

    Bank: Sobel x and y, 'same', gradient magnitude; OpenCV: two ``filter2D`` calls and ``cv2.magnitude``.
    Transposed: a random 3x3 kernel, stride 2, 'valid' (output ``2n + 1``); OpenCV: zero-insertion
    upsampling, then ``filter2D`` with the flipped kernel over a zero border of ``k - 1``.
    """
    from convfilter.engine.conv import filter_batch
    from convfilter.ops.bank import BankSpec
    from convfilter.ops.transpose import TransposeSpec

    rng = np.random.default_rng(1)
    image = (rng.random(shape, dtype=np.float32) * 255).astype(np.float32)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    bank = BankSpec((sobel, sobel.T), ("sobel-x", "sobel-y"), padding="same")
    kernel = rng.standard_normal((3, 3)).astype(np.float32)
    up = TransposeSpec(kernel, (2, 2))

    def ours_bank():
        return filter_batch(image[np.newaxis], bank, tile_size=2048)[0]

    def opencv_bank():
        gx = cv2.filter2D(image, -1, sobel, borderType=cv2.BORDER_CONSTANT)
        gy = cv2.filter2D(image, -1, sobel.T, borderType=cv2.BORDER_CONSTANT)
        return cv2.magnitude(gx, gy)

    def ours_transpose():
        return filter_batch(image[np.newaxis], up, tile_size=2048)[0]

    def opencv_transpose():
        padded = cv2.copyMakeBorder(upsample(image, 2), 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
        return cv2.filter2D(padded, -1, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_CONSTANT)[1:-1, 1:-1]

    print()
    print("| layer | array | convfilter Mpx/s | OpenCV Mpx/s | vs OpenCV | max difference |")
    print("|---|---|---|---|---|---|")
    pixels = image.size / 1e6
    for name, ours, theirs, scale in (
        ("Conv2D(2) Sobel x+y, magnitude", ours_bank, opencv_bank, 8 * 255),
        ("Conv2DTranspose(1) 3x3, stride 2", ours_transpose, opencv_transpose, np.abs(kernel).sum() * 255),
    ):
        t_ours, t_cv = best_time(ours, repeat), best_time(theirs, repeat)
        a, b = ours(), theirs()
        assert a.shape == b.shape, (a.shape, b.shape)
        difference = np.abs(a.astype(np.float64) - b).max() / scale
        print(
            f"| {name} | {shape[0]}x{shape[1]} | {pixels / t_ours:.0f} | {pixels / t_cv:.0f} "
            f"| {t_cv / t_ours:.2f}x | {difference:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
