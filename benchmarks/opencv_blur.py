"""The OpenCV script benchmarks/big.py compares with: a 5x5 box blur of a grayscale image.

    python benchmarks/opencv_blur.py in.png out.png

Reads grayscale, ``cv2.filter2D`` with a 5x5 kernel of 1/25 on the uint8 pixels
(zero border, same size, rounded), writes the result with ``cv2.imwrite``.
"""

import sys

import cv2
import numpy as np


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    image = cv2.imread(source, cv2.IMREAD_GRAYSCALE)
    kernel = np.full((5, 5), 1 / 25, dtype=np.float32)
    result = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    if not cv2.imwrite(target, result):
        sys.exit(f"cannot write {target}")


if __name__ == "__main__":
    main()
