"""Every filtering option on every file of a batch: --color, matrix files, custom kernels, borders,
--convolve, --scale, frames, --quality, --max-pixels. Through CliRunner; pixels against tests/reference.py.
"""

from __future__ import annotations

import io
import os

import numpy as np
from helpers import invoke
from PIL import Image
from reference import correlate, tf_same_padding

BOX = np.full((3, 3), 1 / 9)
EXISTS = "already exists (use --overwrite to replace it or --skip-existing to keep it)"


def to_8bit(values):
    """The 'clip' mapping: round, clip to 0..255."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def pixels_of(path_or_bytes):
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as image:
        return image.mode, np.asarray(image)


def test_color_batch_mixed_modes_and_sizes(tmp_path):
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (11, 14, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (11, 14, 4), dtype=np.uint8)  # same size as rgb: one channel batch of 6
    gray = rng.integers(0, 256, (9, 8), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(gray).save(tmp_path / "gray.png")
    out = tmp_path / "out"
    names = ["rgb.png", "rgba.png", "gray.png"]
    result = invoke("blur", *(tmp_path / n for n in names), "-o", out, "--color", "--padding", "same")
    assert (result.exit_code, result.stderr) == (0, "3 written, 0 failed, 0 skipped\n")

    mode, written = pixels_of(out / "rgb.png")
    assert mode == "RGB"
    for c in range(3):
        np.testing.assert_array_equal(written[..., c], to_8bit(correlate(rgb[..., c], BOX, padding="same")))
    mode, written = pixels_of(out / "rgba.png")
    assert mode == "RGBA"
    for c in range(3):
        np.testing.assert_array_equal(written[..., c], to_8bit(correlate(rgba[..., c], BOX, padding="same")))
    np.testing.assert_array_equal(written[..., 3], rgba[..., 3])  # 'same', stride 1: alpha as it was
    mode, written = pixels_of(out / "gray.png")
    assert mode == "L"
    np.testing.assert_array_equal(written, to_8bit(correlate(gray, BOX, padding="same")))


def test_color_batch_alpha_follows_the_stride(tmp_path):
    rgba = np.random.default_rng(8).integers(0, 256, (10, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(rgba[::-1].copy()).save(tmp_path / "b.png")
    result = invoke(
        "blur", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "o", "--color", "--stride", "2", "2"
    )
    assert result.exit_code == 0
    for name, source in (("a.png", rgba), ("b.png", rgba[::-1])):
        _, written = pixels_of(tmp_path / "o" / name)
        # 'valid' 3x3 at stride 2: output (i, j) has its middle tap at (2i + 1, 2j + 1)
        np.testing.assert_array_equal(written[..., 3], source[1:9:2, 1:8:2, 3])
        np.testing.assert_array_equal(written[..., 0], to_8bit(correlate(source[..., 0], BOX, (2, 2))))


def test_matrix_files_in_a_custom_batch_with_a_corrupt_one(tmp_path):
    a = np.arange(20, dtype=np.float64).reshape(4, 5) ** 1.5
    b = np.random.default_rng(1).normal(size=(3, 6))
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "b.csv", b, delimiter=",")
    (tmp_path / "c.csv").write_text("1,2\n3\n")
    gray = np.random.default_rng(2).integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = tmp_path / "out"
    inputs = [tmp_path / n for n in ("a.npy", "c.csv", "b.csv", "g.png")]
    result = invoke("custom", "--kernel", "1,-2;0.5,3", *inputs, "-o", out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'c.csv'}: rows differ in length: line 1 has 2 values, line 2 has 1\n"
        "3 written, 1 failed, 0 skipped\n"
    )
    kernel = np.array([[1, -2], [0.5, 3]])
    np.testing.assert_allclose(np.load(out / "a.npy"), correlate(a, kernel), rtol=1e-5)
    assert np.load(out / "a.npy").dtype == np.float32
    np.testing.assert_allclose(
        np.loadtxt(out / "b.csv", delimiter=","), correlate(b, kernel), rtol=1e-5, atol=1e-5
    )
    _, written = pixels_of(out / "g.png")
    raw = correlate(gray.astype(np.float64), kernel)
    expected = (raw - raw.min()) / (raw.max() - raw.min()) * 255  # 'auto' is rescale for this kernel
    np.testing.assert_allclose(written, expected, atol=0.5 + 1e-6)
    assert not (out / "c.csv").exists()


def test_format_npy_names_and_writes_matrices(tmp_path):
    gray = np.random.default_rng(3).integers(0, 256, (8, 9), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    result = invoke("sharpen", tmp_path / "g.png", "-o", tmp_path / "o", "--format", "npy")
    assert result.exit_code == 0
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_allclose(np.load(tmp_path / "o" / "g.npy"), correlate(gray, sharpen), rtol=1e-6)


def test_range_for_a_matrix_output_fails_that_file_only(tmp_path):
    np.save(tmp_path / "m.npy", np.ones((4, 4)))
    Image.fromarray(np.full((4, 4), 90, np.uint8)).save(tmp_path / "g.png")
    result = invoke("blur", tmp_path / "m.npy", tmp_path / "g.png", "-o", tmp_path / "o", "--range", "abs")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'o' / 'm.npy'}: range 'abs' applies to image outputs; a matrix file holds raw floats\n"
        "1 written, 1 failed, 0 skipped\n"
    )
    assert (pixels_of(tmp_path / "o" / "g.png")[1] == 90).all()


def test_single_form_matrix_option_clash_is_a_usage_error(tmp_path):
    np.save(tmp_path / "m.npy", np.ones((4, 4)))
    result = invoke("blur", tmp_path / "m.npy", tmp_path / "o.npy", "--quality", "50")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: {tmp_path / 'o.npy'}: quality applies to image outputs; a matrix file holds raw floats"
    )
    assert not (tmp_path / "o.npy").exists()


def test_border_convolve_scale_reach_every_file(tmp_path):
    rng = np.random.default_rng(4)
    images = {
        f"i{k}.png": rng.integers(0, 256, shape, dtype=np.uint8)
        for k, shape in enumerate([(7, 9), (10, 5), (7, 9)])
    }
    for name, px in images.items():
        Image.fromarray(px).save(tmp_path / name)
    spec = "1,2,0;0,-1,3"
    args = ["--padding", "same", "--border", "reflect", "--convolve", "--scale", "0.25", "--range", "abs"]
    result = invoke("custom", "--kernel", spec, *(tmp_path / n for n in images), "-o", tmp_path / "o", *args)
    assert result.exit_code == 0, result.stderr
    weights = np.array([[1, 2, 0], [0, -1, 3]])[::-1, ::-1] * 0.25
    for name, px in images.items():
        pads = (tf_same_padding(px.shape[0], 2, 1, 1), tf_same_padding(px.shape[1], 3, 1, 1))
        raw = correlate(np.pad(px.astype(np.float64), pads, mode="reflect"), weights)
        np.testing.assert_array_equal(pixels_of(tmp_path / "o" / name)[1], to_8bit(np.abs(raw)))


def test_stdin_to_stdout_as_npy_and_with_color(tmp_path):
    rgb = np.random.default_rng(5).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    result = invoke("blur", "-", "-", "--color", input=buffer.getvalue())
    assert result.exit_code == 0
    mode, written = pixels_of(result.stdout_bytes)
    assert mode == "RGB"
    for c in range(3):
        np.testing.assert_array_equal(written[..., c], to_8bit(correlate(rgb[..., c], BOX)))
    result = invoke("blur", "-", "-", "--format", "npy", input=buffer.getvalue())
    assert result.exit_code == 0
    luma = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64)
    np.testing.assert_allclose(np.load(io.BytesIO(result.stdout_bytes)), correlate(luma, BOX), rtol=1e-6)
    clash = invoke("blur", "-", "-", "--format", "csv", "--color", input=buffer.getvalue())
    assert clash.exit_code == 2
    assert (
        clash.stderr.splitlines()[-1]
        == "Error: -: color applies to image outputs; a matrix file holds raw floats"
    )


def test_frames_quality_and_max_pixels_in_a_batch(tmp_path):
    frames = [Image.fromarray(np.full((6, 6), v, np.uint8)) for v in (10, 100, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((6, 6), 50, np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "big.png")
    inputs = [tmp_path / n for n in ("anim.gif", "one.png")]
    result = invoke("identity", *inputs, "-o", tmp_path / "o", "--size", "1", "--format", "png")
    assert result.exit_code == 0
    assert result.stderr == (
        f"note: {tmp_path / 'anim.gif'} has 3 frames; filtered frame 0 (pick another with --frame N)\n"
        "2 written, 0 failed, 0 skipped\n"
    )
    assert (pixels_of(tmp_path / "o" / "anim.png")[1] == 10).all()
    result = invoke(
        "identity",
        tmp_path / "anim.gif",
        "-o",
        tmp_path / "f",
        "--size",
        "1",
        "--format",
        "png",
        "--frame",
        "2",
    )
    assert (result.exit_code, result.stderr) == (0, "1 written, 0 failed, 0 skipped\n")
    assert (pixels_of(tmp_path / "f" / "anim.png")[1] == 200).all()

    result = invoke(
        "blur", tmp_path / "one.png", tmp_path / "big.png", "-o", tmp_path / "m", "--max-pixels", "100"
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path / 'big.png'}: image is 30x30 = 900 pixels, more than the limit of 100 "
        "(a guard against decompression bombs); raise it with --max-pixels if you trust the file",
        "1 written, 1 failed, 0 skipped",
    ]

    sizes = {}
    for quality in (5, 95):
        out = tmp_path / f"q{quality}"
        texture = np.random.default_rng(6).integers(0, 256, (40, 40), dtype=np.uint8)
        Image.fromarray(texture).save(tmp_path / "t.png")
        result = invoke(
            "identity", tmp_path / "t.png", "-o", out, "--format", "jpg", "--quality", quality, "--size", "1"
        )
        assert result.exit_code == 0, result.stderr
        sizes[quality] = (out / "t.jpg").stat().st_size
    assert sizes[5] < sizes[95]
    result = invoke("blur", tmp_path / "one.png", "-o", tmp_path / "qq", "--quality", "50")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {tmp_path / 'qq' / 'one.png'}: --quality applies to JPEG and WebP output only, not PNG"
    )


def test_custom_single_form_keeps_too_small_as_kernel_usage_error_but_batch_counts_it(tmp_path):
    (tmp_path / "a.csv").write_text("1,2,3\n")
    (tmp_path / "b.csv").write_text("1,2,3\n4,5,6\n")
    single = invoke("custom", "--kernel", "1;1", tmp_path / "a.csv", tmp_path / "o.csv")
    assert single.exit_code == 2
    assert single.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--kernel': {tmp_path / 'a.csv'}: image is 1x3 but the 2x1 kernel needs "
        "at least 2x1 pixels under 'valid' padding"
    )
    batch = invoke("custom", "--kernel", "1;1", tmp_path / "a.csv", tmp_path / "b.csv", "-o", tmp_path / "o")
    assert batch.exit_code == 1
    assert batch.stderr.splitlines() == [
        f"Error: {tmp_path / 'a.csv'}: image is 1x3 but the 2x1 kernel needs at least 2x1 pixels under 'valid' padding",
        "1 written, 1 failed, 0 skipped",
    ]
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "o" / "b.csv", delimiter=","), [5, 7, 9])


def test_matrix_output_is_never_clobbered(tmp_path):
    (tmp_path / "a.csv").write_text("1,2,3\n")
    (tmp_path / "o.csv").write_text("precious\n")
    result = invoke("custom", "--kernel", "1", tmp_path / "a.csv", tmp_path / "o.csv")
    assert (result.exit_code, result.stderr) == (1, f"Error: {tmp_path / 'o.csv'}: {EXISTS}\n")
    assert (tmp_path / "o.csv").read_text() == "precious\n"
    assert (
        invoke("custom", "--kernel", "1", tmp_path / "a.csv", tmp_path / "o.csv", "--overwrite").exit_code
        == 0
    )
    assert (tmp_path / "o.csv").read_text() == "1,2,3\n"


def test_pool_refuses_an_existing_output_unless_overwrite(tmp_path):
    px = np.random.default_rng(9).integers(0, 256, (6, 8), dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = invoke("pool", "max", tmp_path / "in.png", out)
    assert (result.exit_code, result.stderr) == (1, f"Error: {out}: {EXISTS}\n")
    assert out.read_bytes() == b"precious"
    result = invoke("pool", "max", tmp_path / "in.png", out, "--overwrite")
    assert result.exit_code == 0
    expected = px.reshape(3, 2, 4, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(pixels_of(out)[1], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_reads_in_threads_keep_their_own_pixel_limit_and_restore_pillow(tmp_path):
    """A batch decodes in threads; the process-wide Pillow limit and warning filters must not leak."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from convfilter.errors import ConvFilterError
    from convfilter.io.images import read_gray

    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 30), dtype=np.uint8)).save(path)
    saved_limit, saved_filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)

    def read(i):
        limit = (100, 5000, None)[i % 3]
        try:
            return limit, read_gray(str(path), max_pixels=limit).pixels.shape
        except ConvFilterError as exc:
            return limit, str(exc)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(read, range(300)))
    refused = (
        f"{path}: image is 30x30 = 900 pixels, more than the limit of 100 (a guard against decompression "
        "bombs); raise it with --max-pixels if you trust the file"
    )
    for limit, outcome in outcomes:
        assert outcome == (refused if limit == 100 else (30, 30))
    assert Image.MAX_IMAGE_PIXELS == saved_limit
    assert warnings.filters == saved_filters


def test_many_files_written_in_threads_get_the_umask_permissions(tmp_path):
    old_umask = os.umask(0o027)
    try:
        rng = np.random.default_rng(1)
        for i in range(40):
            Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)).save(tmp_path / f"i{i}.png")
        result = invoke(*["blur", *sorted(tmp_path.glob("i*.png")), "-o", tmp_path / "o", "-j", "8"])
        assert (result.exit_code, result.stderr) == (0, "40 written, 0 failed, 0 skipped\n")
        modes = {(p.stat().st_mode & 0o777) for p in (tmp_path / "o").iterdir()}
        assert modes == {0o640}
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old_umask)


def test_compare_and_export_in_the_single_form_and_refused_in_a_batch(tmp_path):
    px = np.random.default_rng(10).integers(0, 256, (9, 10), dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "in.png")
    fig, model = tmp_path / "fig.png", tmp_path / "m.keras"
    result = invoke("blur", tmp_path / "in.png", tmp_path / "out.png", "--compare", fig, "--export", model)
    assert (result.exit_code, result.stderr) == (0, "")
    np.testing.assert_array_equal(pixels_of(tmp_path / "out.png")[1], to_8bit(correlate(px, BOX)))
    assert pixels_of(fig)[1].ndim == 3 and model.stat().st_size > 0
    import keras

    loaded = keras.saving.load_model(model)
    got = np.asarray(loaded(px[np.newaxis, ..., np.newaxis].astype(np.float32)))[0, ..., 0]
    np.testing.assert_allclose(got, correlate(px, BOX), rtol=1e-5)

    Image.fromarray(px).save(tmp_path / "in2.png")
    batch = invoke(
        "blur",
        tmp_path / "in.png",
        tmp_path / "in2.png",
        "-o",
        tmp_path / "o",
        "--compare",
        tmp_path / "f2.png",
    )
    assert batch.exit_code == 2
    assert (
        batch.stderr.splitlines()[-1]
        == "Error: --compare and --export work on one file: give INPUT OUTPUT, not a batch."
    )
    assert not (tmp_path / "o").exists() and not (tmp_path / "f2.png").exists()


def test_chain_refuses_an_existing_output_unless_overwrite(tmp_path):
    px = np.random.default_rng(11).integers(0, 256, (12, 12), dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    result = invoke("chain", tmp_path / "in.png", out, "blur", "--", "pool", "max")
    assert (result.exit_code, result.stderr) == (1, f"Error: {out}: {EXISTS}\n")
    assert out.read_bytes() == b"precious"
    result = invoke("chain", "--overwrite", tmp_path / "in.png", out, "blur", "--", "pool", "max")
    assert result.exit_code == 0, result.stderr
    blurred = correlate(px, BOX)  # 10x10 float, pooled 2x2 max before rounding
    np.testing.assert_array_equal(pixels_of(out)[1], to_8bit(blurred.reshape(5, 2, 5, 2).max(axis=(1, 3))))
