"""Every Pillow mode, EXIF orientation, multi-frame files, depth, quality and DPI.

Expected values come from the arrays the corpus files were made of (see
tests/image_corpus.py) and from tests/reference.py, never from convfilter.
"""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_pixels
from image_corpus import cmyk_to_rgb
from PIL import Image
from reference import correlate

from convfilter.cli import cli
from convfilter.errors import ConvFilterError
from convfilter.io.images import read_color, read_gray
from convfilter.run.single import filter_file

BLUR = np.full((3, 3), 1 / 9)
MODES = [
    "1",
    "L",
    "LA",
    "P",
    "P-transparent",
    "RGB",
    "RGBA",
    "CMYK",
    "I;16",
    "I;16B",
    "I",
    "I-16bit-values",
    "F",
]
HIGH_PRECISION = ("I;16", "I;16B", "I", "I-16bit-values", "F")


def in_output_scale(values: np.ndarray, scale: float, out_max: int) -> np.ndarray:
    """--range clip by its definition, before rounding: the values scaled to the output range."""
    return values * (out_max / scale)


def pixels_of(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).astype(np.float64)


def test_corpus_has_one_file_per_mode_of_the_issue(corpus):
    assert sorted({s.mode for s in corpus.modes.values()}) == sorted(
        ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I", "F"]
    )
    assert sorted(corpus.modes) == sorted(MODES)


@pytest.mark.parametrize("name", MODES)
def test_read_gray_follows_the_documented_rule(corpus, name):
    sample = corpus.modes[name]
    image = read_gray(str(sample.path))
    assert image.mode == sample.mode
    assert image.max_value == sample.scale
    assert image.pixels.dtype == np.float32 and image.pixels.shape == sample.gray.shape
    assert np.abs(image.pixels - sample.gray).max() <= sample.tol
    assert (image.frame, image.frames) == (0, 1)


@pytest.mark.parametrize("name", HIGH_PRECISION)
def test_high_precision_modes_keep_every_value_exactly(corpus, name):
    sample = corpus.modes[name]
    image = read_gray(str(sample.path))
    np.testing.assert_array_equal(image.pixels.astype(np.float64), sample.gray)


@pytest.mark.parametrize("name", MODES)
def test_read_color_splits_channels_and_alpha(corpus, name):
    sample = corpus.modes[name]
    image = read_color(str(sample.path))
    assert image.mode == sample.color_mode
    assert image.source_mode == sample.mode
    np.testing.assert_array_equal(image.channels.astype(np.float64), sample.color)
    if sample.alpha is None:
        assert image.alpha is None
    else:
        np.testing.assert_array_equal(image.alpha, sample.alpha)


@pytest.mark.parametrize("name", MODES)
def test_filter_file_each_mode_matches_the_reference(corpus, name, tmp_path):
    sample = corpus.modes[name]
    out = tmp_path / "out.png"
    result = filter_file(str(sample.path), str(out), BLUR, range_mode="clip")
    out_max = 65535 if name in HIGH_PRECISION else 255
    assert result.depth == (16 if name in HIGH_PRECISION else 8)
    expected = in_output_scale(correlate(sample.gray, BLUR), sample.scale, out_max)
    written = pixels_of(out)
    assert written.shape == (sample.gray.shape[0] - 2, sample.gray.shape[1] - 2)
    assert_pixels(written, expected, out_max)


@pytest.mark.parametrize("name", MODES)
def test_cli_color_filters_each_channel_and_carries_alpha(corpus, name, tmp_path):
    sample = corpus.modes[name]
    out = tmp_path / "out.tif"
    res = CliRunner().invoke(cli, ["blur", str(sample.path), str(out), "--color", "--range", "clip"])
    assert res.exit_code == 0, res.output
    with Image.open(out) as img:
        mode, written = img.mode, np.asarray(img).astype(np.float64)
    high = name in HIGH_PRECISION
    assert mode == ("I;16" if high else sample.color_mode)
    planes = written[np.newaxis] if written.ndim == 2 else np.moveaxis(written, -1, 0)
    if sample.alpha is not None:
        np.testing.assert_array_equal(planes[-1], sample.alpha[1:-1, 1:-1])
        planes = planes[:-1]
    assert len(planes) == len(sample.color)
    for plane, source in zip(planes, sample.color, strict=True):
        out_max = 65535 if high else 255
        assert_pixels(plane, in_output_scale(correlate(source, BLUR), sample.scale, out_max), out_max)


def test_color_same_padding_keeps_alpha_unchanged(corpus, tmp_path):
    sample = corpus.modes["RGBA"]
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["edge", str(sample.path), str(out), "--color", "--padding", "same"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(pixels_of(out)[..., 3], sample.alpha)


def test_color_cmyk_to_png_becomes_rgb(corpus, tmp_path):
    sample = corpus.modes["CMYK"]
    out = tmp_path / "out.png"
    result = filter_file(str(sample.path), str(out), [[1.0]], color=True)
    assert result.mode == "RGB"
    np.testing.assert_array_equal(pixels_of(out), cmyk_to_rgb(np.moveaxis(sample.color, 0, -1)))


# --- EXIF orientation -------------------------------------------------------------------------

UPRIGHT = {  # what a viewer shows for each EXIF orientation value (EXIF 2.3, tag 0x0112)
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "oriented.png"
    Image.fromarray(stored).save(path, exif=exif, dpi=(300, 100))
    image = read_gray(str(path))
    np.testing.assert_array_equal(image.pixels, UPRIGHT[orientation](stored))
    expected_dpi = (100, 300) if orientation >= 5 else (300, 100)
    np.testing.assert_allclose(image.info["dpi"], expected_dpi, atol=0.013)


def test_phone_photo_comes_out_the_right_way_up(tmp_path):
    # a JPEG as a phone stores it: sensor landscape, EXIF says "rotate 90 degrees clockwise"
    stored = np.zeros((32, 48), np.uint8)
    stored[:16, :16] = 255  # bright block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["identity", str(path), str(out), "--size", "1"])
    assert res.exit_code == 0, res.output
    shown = pixels_of(out)
    assert shown.shape == (48, 32)  # portrait
    assert shown[:16, 16:].mean() > 200 and shown[:16, :16].mean() < 50  # block now top-right


# --- multi-frame files ------------------------------------------------------------------------


def test_first_frame_by_default_and_frame_count(corpus):
    image = read_gray(str(corpus.frames["gif"]))
    assert (image.frame, image.frames) == (0, 3)
    assert (image.pixels == 10).all()


@pytest.mark.parametrize(
    ("kind", "frame", "shape", "value"), [("gif", 2, (4, 5), 200), ("tiff", 1, (5, 6), 60)]
)
def test_frame_picks_another(corpus, kind, frame, shape, value):
    image = read_gray(str(corpus.frames[kind]), frame=frame)
    assert image.frame == frame and image.pixels.shape == shape and (image.pixels == value).all()


def test_frame_out_of_range_is_an_error(corpus):
    path = str(corpus.frames["tiff"])
    with pytest.raises(ConvFilterError) as info:
        read_gray(path, frame=3)
    assert str(info.value) == f"{path}: has 3 frames, numbered 0..2; there is no frame 3"


def test_cli_notice_for_multi_frame_and_frame_option(corpus, tmp_path):
    gif = str(corpus.frames["gif"])
    out = tmp_path / "out.png"
    runner = CliRunner()
    res = runner.invoke(cli, ["identity", gif, str(out), "--size", "1"])
    assert res.exit_code == 0
    assert res.stderr == f"note: {gif} has 3 frames; filtered frame 0 (pick another with --frame N)\n"
    assert (pixels_of(out) == 10).all()
    res = runner.invoke(cli, ["identity", gif, str(out), "--frame", "1", "--size", "1", "--overwrite"])
    assert res.exit_code == 0 and res.stderr == ""
    assert (pixels_of(out) == 100).all()
    res = runner.invoke(cli, ["identity", gif, str(out), "--frame", "7", "--size", "1", "--overwrite"])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {gif}: has 3 frames, numbered 0..2; there is no frame 7\n"
    res = runner.invoke(cli, ["identity", gif, str(out), "--frame", "-1", "--size", "1"])
    assert res.exit_code == 2 and "Invalid value for '--frame'" in res.stderr


def test_single_frame_file_gets_no_notice_and_frame_one_is_refused(corpus, tmp_path):
    path = str(corpus.modes["L"].path)
    runner = CliRunner()
    res = runner.invoke(cli, ["identity", path, str(tmp_path / "o.png"), "--size", "1"])
    assert res.exit_code == 0 and res.stderr == ""
    res = runner.invoke(
        cli, ["identity", path, str(tmp_path / "o.png"), "--frame", "1", "--size", "1", "--overwrite"]
    )
    assert res.exit_code == 1
    assert res.stderr == f"Error: {path}: has 1 frame, numbered 0..0; there is no frame 1\n"


# --- output depth, quality, DPI ---------------------------------------------------------------


def test_depth_16_png_and_tiff(corpus, tmp_path):
    sample = corpus.modes["L"]
    for name in ("o16.png", "o16.tif"):
        out = tmp_path / name
        res = CliRunner().invoke(
            cli, ["blur", str(sample.path), str(out), "--depth", "16", "--range", "clip"]
        )
        assert res.exit_code == 0, res.output
        with Image.open(out) as img:
            assert img.mode == "I;16"
        assert_pixels(pixels_of(out), in_output_scale(correlate(sample.gray, BLUR), 255, 65535), 65535)


def test_depth_32f_tiff_holds_the_raw_results(corpus, tmp_path):
    sample = corpus.modes["RGB"]
    out = tmp_path / "raw.tif"
    kernel = [[1.0, -2.0], [0.5, 3.0]]
    result = filter_file(str(sample.path), str(out), kernel, depth="32f", bias=-100.0)
    assert (result.depth, result.mode) == ("32f", "F")
    with Image.open(out) as img:
        assert img.mode == "F"
        raw = np.asarray(img).astype(np.float64)
    gray = np.asarray(Image.open(sample.path).convert("L"), dtype=np.float64)  # Pillow's documented luma
    np.testing.assert_allclose(raw, correlate(gray, np.array(kernel), bias=-100.0), rtol=1e-6, atol=1e-3)
    assert raw.min() < 0  # no clipping, no rescaling


def test_depth_32f_keeps_float_input_values(corpus, tmp_path):
    sample = corpus.modes["F"]
    out = tmp_path / "raw.tif"
    res = CliRunner().invoke(cli, ["identity", str(sample.path), str(out), "--depth", "32f", "--size", "1"])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(pixels_of(out), sample.gray)


@pytest.mark.parametrize(
    ("name", "depth", "message"),
    [
        ("out.png", "32f", "PNG cannot store 32-bit float pixels; use .tif"),
        ("out.jpg", "32f", "JPEG cannot store 32-bit float pixels; use .tif"),
        ("out.jpg", "16", "JPEG cannot store 16-bit pixels; use .png or .tif"),
        ("out.bmp", "16", "BMP cannot store 16-bit pixels; use .png or .tif"),
    ],
)
def test_depth_the_format_cannot_store_is_refused(tmp_path, name, depth, message):
    out = tmp_path / name
    res = CliRunner().invoke(cli, ["blur", str(tmp_path / "missing.png"), str(out), "--depth", depth])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: {message}\n"  # before the (missing) input is even read
    assert list(tmp_path.iterdir()) == []


def test_color_with_16_bit_depth_is_refused_before_work(corpus, tmp_path):
    path = str(corpus.modes["RGB"].path)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["blur", path, str(out), "--color", "--depth", "16"])
    assert res.exit_code == 1
    assert res.stderr == (
        f"Error: {path}: is RGB; only single-channel images can be written at depth 16, "
        "use --depth 8 or leave out --color\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_alpha_into_jpeg_is_refused_before_work(corpus, tmp_path):
    out = tmp_path / "out.jpg"
    res = CliRunner().invoke(cli, ["blur", str(corpus.modes["RGBA"].path), str(out), "--color"])
    assert res.exit_code == 1
    assert res.stderr == f"Error: {out}: JPEG cannot store RGBA pixels; use .png or .tif\n"
    assert list(tmp_path.iterdir()) == []


def test_jpeg_quality_changes_the_file(corpus, tmp_path):
    path = str(corpus.modes["RGB"].path)
    sizes = {}
    for q in (10, 95):
        out = tmp_path / f"q{q}.jpg"
        res = CliRunner().invoke(
            cli, ["identity", path, str(out), "--color", "--quality", str(q), "--size", "1"]
        )
        assert res.exit_code == 0, res.output
        sizes[q] = out.stat().st_size
        # Pillow's quantization tables scale with quality: the q95 file is nearer the input
    err = {
        q: np.abs(pixels_of(tmp_path / f"q{q}.jpg") - np.moveaxis(corpus.modes["RGB"].color, 0, -1)).mean()
        for q in sizes
    }
    assert sizes[95] > sizes[10] and err[95] < err[10]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quality", "0"], "Invalid value for '--quality'"),
        (["--quality", "101"], "Invalid value for '--quality'"),
    ],
)
def test_quality_out_of_range_is_a_usage_error(corpus, tmp_path, args, message):
    res = CliRunner().invoke(cli, ["blur", str(corpus.modes["L"].path), str(tmp_path / "o.jpg"), *args])
    assert res.exit_code == 2 and message in res.stderr


def test_quality_for_png_is_a_usage_error(corpus, tmp_path):
    out = tmp_path / "o.png"
    res = CliRunner().invoke(cli, ["blur", str(corpus.modes["L"].path), str(out), "--quality", "80"])
    assert res.exit_code == 2
    assert res.stderr.endswith(f"Error: {out}: --quality applies to JPEG and WebP output only, not PNG\n")
    assert not out.exists()


@pytest.mark.parametrize("ext", ["png", "tif", "jpg", "bmp"])
def test_outputs_carry_the_input_dpi(tmp_path, ext):
    source = tmp_path / "in.tif"
    Image.fromarray(np.full((6, 6), 90, np.uint8)).save(source, dpi=(300, 150))
    out = tmp_path / f"out.{ext}"
    res = CliRunner().invoke(cli, ["blur", str(source), str(out)])
    assert res.exit_code == 0, res.output
    with Image.open(out) as img:
        np.testing.assert_allclose(
            [float(v) for v in img.info["dpi"]], (300, 150), atol=0.013
        )  # PNG stores whole pixels per metre


def test_no_dpi_in_no_dpi_out(corpus, tmp_path):
    out = tmp_path / "out.png"
    filter_file(str(corpus.modes["L"].path), str(out), BLUR)
    with Image.open(out) as img:
        assert "dpi" not in img.info


@pytest.mark.slow
def test_installed_command_on_modes(corpus, tmp_path, convfilter_exe, server_env):
    """The real ``convfilter`` command (one shell script, four runs, through a warm server)."""
    m = corpus.modes
    script = textwrap.dedent(
        """
        exe=$1; out=$2
        "$exe" blur "$3" "$out/o16.png" --range clip 2>"$out/o16.err" || exit 11
        "$exe" blur "$4" "$out/orgba.png" --color --range clip 2>"$out/orgba.err" || exit 12
        "$exe" identity "$5" "$out/of.tif" --size 1 --depth 32f 2>"$out/of.err" || exit 13
        "$exe" identity "$6" "$out/og.png" --size 1 2>"$out/og.err" || exit 14
        """
    )
    gif = corpus.frames["gif"]
    paths = [m["I;16"].path, m["RGBA"].path, m["F"].path, gif]
    subprocess.run(
        ["bash", "-c", script, "bash", str(convfilter_exe), str(tmp_path), *map(str, paths)],
        check=True,
        timeout=300,
        env=server_env,
    )
    for name in ("o16", "orgba", "of"):
        assert (tmp_path / f"{name}.err").read_text() == ""  # no TensorFlow start-up noise
    assert (tmp_path / "og.err").read_text() == (
        f"note: {gif} has 3 frames; filtered frame 0 (pick another with --frame N)\n"
    )
    with Image.open(tmp_path / "o16.png") as img:
        assert img.mode == "I;16"
    assert_pixels(pixels_of(tmp_path / "o16.png"), correlate(m["I;16"].gray, BLUR), 65535)
    rgba = pixels_of(tmp_path / "orgba.png")
    for c in range(3):
        assert_pixels(rgba[..., c], correlate(m["RGBA"].color[c], BLUR))
    np.testing.assert_array_equal(rgba[..., 3], m["RGBA"].alpha[1:-1, 1:-1])
    np.testing.assert_array_equal(pixels_of(tmp_path / "of.tif"), m["F"].gray)
    assert (pixels_of(tmp_path / "og.png") == 10).all()


def test_verbose_shows_the_channel_batch(corpus, tmp_path):
    sample = corpus.modes["RGBA"]
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["blur", str(sample.path), str(out), "--color", "-v", "--range", "clip"])
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert lines[0] == f"input:   {sample.path}: 7x9 (tensor 3x7x9x1)"
    assert lines[-1].startswith(
        f"output:  {out}: 5x7 (tensor 3x5x7x1), 8-bit RGBA, range clip of raw values "
    )
