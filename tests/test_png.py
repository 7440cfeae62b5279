"""PNG outputs written by libpng (convfilter.io.png): every layout, every level, row filters, DPI.

Files are read back with Pillow, and their chunks with the small PNG parser
below (zlib inflates the image data), independent of the writer.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from convfilter.cli import cli
from convfilter.io.images import save_image, write_image
from convfilter.io.png import encode_png, png_mode

RNG = np.random.default_rng(11)
LAYOUTS = [  # (pixels, the mode Pillow reads back)
    (RNG.integers(0, 256, (7, 9), dtype=np.uint8), "L"),
    (RNG.integers(0, 65536, (7, 9), dtype=np.uint16), "I;16"),
    (RNG.integers(0, 256, (7, 9, 2), dtype=np.uint8), "LA"),
    (RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8), "RGB"),
    (RNG.integers(0, 256, (7, 9, 4), dtype=np.uint8), "RGBA"),
]
PNG_FILTERS = {"none": 0, "sub": 1}


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) of every chunk of a PNG file, checking the signature and each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        found.append((kind, body))
        at += 12 + length
    return found


def row_filters(data: bytes) -> list[int]:
    """The filter type byte of every row of an 8-bit (non-interlaced) PNG."""
    parts = chunks(data)
    width, _, bit_depth, color_type = struct.unpack(">IIBB", parts[0][1][:10])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    stride = 1 + width * channels * bit_depth // 8
    return list(raw[::stride])


@pytest.mark.parametrize("pixels, mode", LAYOUTS, ids=[mode for _, mode in LAYOUTS])
@pytest.mark.parametrize("level", [None, 0, 1, 2, 6, 9])
def test_every_layout_and_level_reads_back_exactly(pixels, mode, level):
    assert png_mode(pixels) == mode
    with Image.open(io.BytesIO(encode_png(pixels, compress_level=level))) as image:
        assert image.mode == mode
        np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (1, 40), (40, 1)])
def test_tiny_images(shape):
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(pixels, compress_level=1))) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_level_1_uses_the_sub_filter_and_level_0_stores():
    pixels = np.tile(np.arange(200, dtype=np.uint8), (50, 1))
    assert set(row_filters(encode_png(pixels, compress_level=1))) == {PNG_FILTERS["sub"]}
    stored = encode_png(pixels, compress_level=0)
    assert set(row_filters(stored)) == {PNG_FILTERS["none"]}
    assert len(stored) > pixels.size  # no compression
    # a ramp is all 1s after Sub: level 1 packs it far smaller than the stored file
    assert len(encode_png(pixels, compress_level=1)) < pixels.size / 20


def test_dpi_is_the_phys_chunk_pillow_writes():
    pixels = LAYOUTS[0][0]
    pillow = io.BytesIO()
    Image.fromarray(pixels).save(pillow, "PNG", dpi=(300, 72.5))
    ours = encode_png(pixels, dpi=(300, 72.5))
    assert [kind for kind, _ in chunks(ours)][:2] == [b"IHDR", b"pHYs"]
    assert dict(chunks(ours))[b"pHYs"] == dict(chunks(pillow.getvalue()))[b"pHYs"]
    with Image.open(io.BytesIO(ours)) as image:
        np.testing.assert_allclose(image.info["dpi"], (300, 72.5), atol=0.013)
    assert b"pHYs" not in dict(chunks(encode_png(pixels)))


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((3, 3), np.float32), np.zeros((3, 3, 5), np.uint8), np.zeros((3,), np.uint8)],
    ids=["float", "5 bands", "1-D"],
)
def test_layouts_libpng_does_not_take_are_refused(pixels):
    assert png_mode(pixels) is None
    with pytest.raises(ValueError, match="no PNG layout"):
        encode_png(pixels)


def test_sides_beyond_libpng_limit_go_to_pillow():
    """libpng refuses a side over 1,000,000 pixels by default; Pillow writes it."""
    pixels = RNG.integers(0, 256, (1, 1_000_001), dtype=np.uint8)
    assert png_mode(pixels) is None
    buffer = io.BytesIO()
    save_image(buffer, pixels, "PNG", compress_level=1)
    np.testing.assert_array_equal(np.asarray(Image.open(buffer)), pixels)


@pytest.mark.parametrize("mode", ["1", "P", "L", "I;16", "RGB"])
def test_save_image_takes_any_pillow_image(mode):
    """Modes libpng is not used for (1, P) go to Pillow's encoder; the pixels are the same."""
    image = Image.fromarray(RNG.integers(0, 2, (5, 6), dtype=np.uint8) * 255).convert(mode)
    buffer = io.BytesIO()
    save_image(buffer, image, "PNG", compress_level=1)
    with Image.open(buffer) as back:
        assert back.mode == image.mode
        np.testing.assert_array_equal(np.asarray(back), np.asarray(image))


def test_write_image_stores_dpi_for_arrays(tmp_path):
    out = tmp_path / "o.png"
    write_image(str(out), LAYOUTS[3][0], "PNG", dpi=(150, 150), compress_level=1)
    with Image.open(out) as image:
        assert image.mode == "RGB"
        np.testing.assert_allclose(image.info["dpi"], (150, 150), atol=0.013)


@pytest.mark.parametrize("level, row_filter", [("0", "none"), ("1", "sub")])
def test_cli_png_compression_picks_the_filter(tmp_path, level, row_filter):
    source = tmp_path / "in.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 3, (32, 1))).save(source)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        cli, ["identity", str(source), str(out), "--padding", "same", "--png-compression", level]
    )
    assert result.exit_code == 0, result.output
    assert set(row_filters(out.read_bytes())) == {PNG_FILTERS[row_filter]}
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(source)))


# Large images: deflated in pieces on several cores (convfilter.io.png_pieces). The piece size is
# made small here, so that a small image already has many pieces.
SAMPLE = np.asarray(Image.open(Path(__file__).resolve().parent.parent / "sample_images" / "ascent.png"))
PIECE_LAYOUTS = [
    (SAMPLE[:61, :83], "L"),
    ((SAMPLE[:61, :83].astype(np.uint16) * 257 + RNG.integers(0, 99, (61, 83))).astype(np.uint16), "I;16"),
    (np.dstack([SAMPLE[:61, :83], SAMPLE[100:161, :83]]), "LA"),
    (np.dstack([SAMPLE[:61, :83], SAMPLE[:61, 83:166], SAMPLE[:61, 166:249]]), "RGB"),
    (RNG.integers(0, 256, (61, 83, 4), dtype=np.uint8), "RGBA"),
]


@pytest.fixture
def small_pieces(monkeypatch):
    """Every PNG deflated in pieces of about 700 bytes."""
    from convfilter.io import png, png_pieces

    monkeypatch.setattr(png, "PIECES_MIN_BYTES", 1)
    monkeypatch.setattr(png_pieces, "PIECE_BYTES", 700)


@pytest.mark.parametrize("pixels, mode", PIECE_LAYOUTS, ids=[mode for _, mode in PIECE_LAYOUTS])
@pytest.mark.parametrize("level", [0, 1])
def test_pieces_read_back_exactly_as_one_zlib_stream(small_pieces, pixels, mode, level):
    data = encode_png(pixels, compress_level=level)
    parts = chunks(data)
    idat = [body for kind, body in parts if kind == b"IDAT"]
    assert [kind for kind, _ in parts] == [b"IHDR", *[b"IDAT"] * len(idat), b"IEND"]
    assert len(idat) > 2
    raw = zlib.decompress(b"".join(idat))  # one stream: header, pieces, and the whole Adler-32
    assert len(raw) == pixels.shape[0] * (1 + pixels[0].nbytes)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_pieces_use_the_levels_filters_and_other_levels_stay_one_libpng_stream(small_pieces):
    pixels = SAMPLE[:50, :120]
    assert set(row_filters(encode_png(pixels, compress_level=0))) == {PNG_FILTERS["none"]}
    assert set(row_filters(encode_png(pixels, compress_level=1))) == {PNG_FILTERS["sub"]}
    for level in (None, 2, 6, 9):  # libpng's adaptive filters, one IDAT
        kinds = [kind for kind, _ in chunks(encode_png(pixels, compress_level=level))]
        assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_pieces_are_the_same_bytes_on_any_number_of_cores(small_pieces):
    from convfilter.io.png_pieces import encode_pieces

    pixels = PIECE_LAYOUTS[3][0]
    assert b"".join(encode_pieces(pixels, 1, 1, [])) == b"".join(encode_pieces(pixels, 1, 3, []))


def test_pieces_keep_the_dpi(small_pieces):
    with Image.open(io.BytesIO(encode_png(SAMPLE[:40, :40], compress_level=1, dpi=(300, 150)))) as image:
        assert tuple(round(v) for v in image.info["dpi"]) == (300, 150)
        np.testing.assert_array_equal(np.asarray(image), SAMPLE[:40, :40])


@pytest.mark.parametrize("level", [0, 1])
def test_pieces_are_no_larger_than_libpngs_file(level):
    """At the real piece size, pieces cost under 1 % more than libpng's one stream."""
    from imagecodecs import png_encode

    from convfilter.io.png import png_options
    from convfilter.io.png_pieces import encode_pieces

    pixels = np.tile(SAMPLE, (2, 4))  # 1024 x 2048: two pieces
    pieces = b"".join(encode_pieces(pixels, level, 2, []))
    assert len(pieces) <= 1.01 * len(png_encode(pixels, **png_options(level)))
    with Image.open(io.BytesIO(pieces)) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)
