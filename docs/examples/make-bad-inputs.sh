#!/usr/bin/env bash
# The broken inputs that docs/files.md shows convfilter refusing, made in the current directory.
set -euo pipefail
: > empty.jpg                                               # an empty file
head -c 300 "$(dirname "$0")/../../sample_images/ascent.png" > cut.png   # a PNG cut short
echo "not a picture" > notes.png                            # text named .png
python3 - <<'PY'
import struct, zlib
from PIL import Image

Image.new("L", (2, 2)).save("tiny.png")  # smaller than a 3x3 kernel


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A PNG header claiming 100000 x 100000 pixels (a decompression bomb), with almost no data.
header = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
with open("huge.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
PY
