"""A corpus of image files built with Pillow (nothing downloaded): one per mode, one per bad input.

Test modules build it with a module-scoped fixture calling :func:`build_corpus`.

Every good sample carries its expected grayscale values and colour planes,
computed here from the arrays the file was made of (ITU-R 601-2 luma in
NumPy, CMYK to RGB by its definition), never by convfilter.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 7, 9


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of an ``H x W x 3`` uint8 array as Pillow computes it (Convert.c's ``L24``:
    weights 19595, 38470, 7471 in 16.16 fixed point, rounded), in float64."""
    r = np.asarray(rgb, dtype=np.int64)
    return ((r[..., 0] * 19595 + r[..., 1] * 38470 + r[..., 2] * 7471 + 0x8000) >> 16).astype(np.float64)


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """Pillow's CMYK -> RGB (Convert.c's ``cmyk2rgb``): ``nk - c * nk / 255`` with ``nk = 255 - k``,
    the product rounded by ``MULDIV255`` in integers."""
    c = np.asarray(cmyk, dtype=np.int64)
    nk = 255 - c[..., 3:]
    product = c[..., :3] * nk + 128
    return nk - (((product >> 8) + product) >> 8)


@dataclass
class Sample:
    """One good image file and what reading it must give."""

    path: Path
    mode: str  # the mode Pillow opens the file in
    gray: np.ndarray  # expected grayscale, float64
    scale: float  # expected max_value (what --range clip maps to white)
    tol: float  # allowed |read - gray|: 0 for every mode (the references are Pillow's own arithmetic)
    color: np.ndarray  # expected C x H x W colour planes under --color
    alpha: np.ndarray | None
    color_mode: str


@dataclass
class Corpus:
    root: Path
    modes: dict[str, Sample]
    bad: dict[str, Path]
    marker: Path  # created if anything ever unpickles the .npy sample
    frames: dict[str, Path]


class _CreatesMarker:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` 8-bit gray pixels, with a tiny IDAT (valid CRCs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def _good(root: Path, rng: np.random.Generator) -> dict[str, Sample]:
    s: dict[str, Sample] = {}
    u8 = lambda *shape: rng.integers(0, 256, shape, dtype=np.uint8)  # noqa: E731

    bits = rng.integers(0, 2, (H, W)).astype(bool)
    Image.fromarray(bits).save(root / "mode-1.png")
    s["1"] = Sample(root / "mode-1.png", "1", bits * 255.0, 255, 0, bits[None] * 255.0, None, "L")

    gray = u8(H, W)
    Image.fromarray(gray).save(root / "mode-L.png")
    s["L"] = Sample(root / "mode-L.png", "L", gray * 1.0, 255, 0, gray[None] * 1.0, None, "L")

    la = u8(H, W, 2)
    Image.merge("LA", [Image.fromarray(la[..., i].copy()) for i in range(2)]).save(root / "mode-LA.png")
    s["LA"] = Sample(
        root / "mode-LA.png", "LA", la[..., 0] * 1.0, 255, 0, la[None, ..., 0] * 1.0, la[..., 1], "LA"
    )

    palette = u8(16, 3)
    index = rng.integers(0, 16, (H, W)).astype(np.uint8)
    for name, transparent in (("P", None), ("P-transparent", 3)):
        img = Image.new("P", (W, H))
        img.putpalette(palette.flatten().tolist())
        img.putdata(index.flatten().tolist())
        params = {} if transparent is None else {"transparency": transparent}
        img.save(root / f"mode-{name}.png", **params)
        rgb = palette[index]
        if transparent is None:
            alpha, cmode = None, "RGB"
        else:
            alpha, cmode = np.where(index == transparent, 0, 255).astype(np.uint8), "RGBA"
        s[name] = Sample(
            root / f"mode-{name}.png", "P", luma(rgb), 255, 0, np.moveaxis(rgb, -1, 0) * 1.0, alpha, cmode
        )

    rgb = u8(H, W, 3)
    Image.fromarray(rgb).save(root / "mode-RGB.png")
    s["RGB"] = Sample(
        root / "mode-RGB.png", "RGB", luma(rgb), 255, 0, np.moveaxis(rgb, -1, 0) * 1.0, None, "RGB"
    )

    rgba = u8(H, W, 4)
    Image.fromarray(rgba).save(root / "mode-RGBA.png")
    s["RGBA"] = Sample(
        root / "mode-RGBA.png",
        "RGBA",
        luma(rgba[..., :3]),
        255,
        0,
        np.moveaxis(rgba[..., :3], -1, 0) * 1.0,
        rgba[..., 3],
        "RGBA",
    )

    cmyk = u8(H, W, 4)
    Image.merge("CMYK", [Image.fromarray(cmyk[..., i].copy()) for i in range(4)]).save(root / "mode-CMYK.tif")
    c = cmyk.astype(np.float64)
    s["CMYK"] = Sample(
        root / "mode-CMYK.tif", "CMYK", luma(cmyk_to_rgb(cmyk)), 255, 0, np.moveaxis(c, -1, 0), None, "CMYK"
    )

    v16 = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    Image.fromarray(v16).save(root / "mode-I16.png")
    s["I;16"] = Sample(root / "mode-I16.png", "I;16", v16 * 1.0, 65535, 0, v16[None] * 1.0, None, "L")

    v16b = rng.integers(0, 65536, (H, W), dtype=np.uint16)
    Image.frombytes("I;16B", (W, H), v16b.astype(">u2").tobytes()).save(root / "mode-I16B.tif")
    s["I;16B"] = Sample(root / "mode-I16B.tif", "I;16B", v16b * 1.0, 65535, 0, v16b[None] * 1.0, None, "L")

    v32 = rng.integers(-(2**20), 2**24, (H, W), dtype=np.int32)
    Image.fromarray(v32).save(root / "mode-I.tif")
    s["I"] = Sample(root / "mode-I.tif", "I", v32 * 1.0, 2**31 - 1, 0, v32[None] * 1.0, None, "L")

    v32s = rng.integers(0, 65536, (H, W), dtype=np.int32)
    Image.fromarray(v32s).save(root / "mode-I-16bit-values.tif")
    s["I-16bit-values"] = Sample(
        root / "mode-I-16bit-values.tif", "I", v32s * 1.0, 65535, 0, v32s[None] * 1.0, None, "L"
    )

    fl = rng.uniform(-0.5, 1.5, (H, W)).astype(np.float32)
    Image.fromarray(fl).save(root / "mode-F.tif")
    s["F"] = Sample(
        root / "mode-F.tif", "F", fl.astype(np.float64), 1.0, 0, fl[None].astype(np.float64), None, "L"
    )
    return s


def _frames(root: Path) -> dict[str, Path]:
    gif = [Image.fromarray(np.full((4, 5), v, np.uint8)) for v in (10, 100, 200)]
    gif[0].save(root / "anim.gif", save_all=True, append_images=gif[1:])
    pages = [Image.fromarray(np.full((4 + i, 5 + i), v, np.uint8)) for i, v in enumerate((30, 60, 90))]
    pages[0].save(root / "pages.tif", save_all=True, append_images=pages[1:])
    return {"gif": root / "anim.gif", "tiff": root / "pages.tif"}


def _bad(root: Path, marker: Path) -> dict[str, Path]:
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    whole = (Path(__file__).parent.parent / "sample_images" / "ascent.png").read_bytes()
    (bad / "truncated.png").write_bytes(whole[: len(whole) // 2])
    buf = bad / "full.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        buf, quality=90
    )
    jpeg = buf.read_bytes()
    buf.unlink()
    (bad / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (bad / "random.png").write_bytes(
        np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    )
    (bad / "text.jpg").write_text("This is not a picture.\nJust some words.\n")
    (bad / "directory.png").mkdir()
    unreadable = bad / "unreadable.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(unreadable)
    unreadable.chmod(0)
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(bad / "tiny.png")
    (bad / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    objects = np.array([_CreatesMarker(str(marker))], dtype=object)
    with open(bad / "pickled.npy", "wb") as handle:
        np.lib.format.write_array(handle, objects, allow_pickle=True)
    paths = {p.name: p for p in bad.iterdir()}
    paths["missing.png"] = bad / "missing.png"
    return paths


def build_corpus(root: Path) -> Corpus:
    """Write the corpus under ``root``; checks that each file opens in the mode it claims.

    Test modules wrap this in a module-scoped fixture (``corpus``).
    """
    marker = root / "UNPICKLED"
    modes = _good(root, np.random.default_rng(6))
    for name, sample in modes.items():
        with Image.open(sample.path) as img:
            assert img.mode == sample.mode, name
    # the pickle really would run code when loaded: that is what the .npy tests guard against
    pickle.loads(pickle.dumps(_CreatesMarker(str(root / "probe")))).close()
    assert (root / "probe").exists()
    return Corpus(root, modes, _bad(root, marker), marker, _frames(root))
