"""learn: recovering a kernel from BEFORE and AFTER by training the Conv2D with model.fit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SAMPLES
from PIL import Image
from reference import correlate

from convfilter.errors import ConvFilterError
from convfilter.learn import check_kernel_path, learn_kernel, read_pair, save_kernel

RNG = np.random.default_rng(2024)


def ascent_crop(size: int = 128) -> np.ndarray:
    with Image.open(SAMPLES / "ascent.png") as img:
        return np.asarray(img.convert("L"), dtype=np.float64)[100 : 100 + size, 150 : 150 + size]


@pytest.mark.slow
def test_recovers_a_random_3x3_kernel_within_0_01_on_the_sample():
    before = ascent_crop()
    kernel = RNG.uniform(-1, 1, (3, 3))
    result = learn_kernel(before, correlate(before, kernel), 3)
    assert np.abs(result.kernel - kernel).max() < 0.01
    assert result.bias is None
    assert result.error < 1e-3 and result.stopped_early and result.epochs < result.max_epochs


@pytest.mark.slow
def test_recovers_kernel_and_bias_with_stride_and_same_padding():
    before = ascent_crop()
    kernel = RNG.uniform(-1, 1, (5, 5))
    after = correlate(before, kernel, (2, 2), "same", bias=7.5)
    assert after.shape == (64, 64)
    result = learn_kernel(before, after, 5, stride=2, padding="same", learn_bias=True)
    assert np.abs(result.kernel - kernel).max() < 0.01
    assert abs(result.bias - 7.5) < 0.05
    assert result.output_shape == (64, 64)


def test_recovers_through_stride_with_dilation():
    before = ascent_crop(64)
    kernel = RNG.uniform(-1, 1, (3, 3))
    after = correlate(before, kernel, (2, 2), "same", (2, 2))
    result = learn_kernel(before, after, 3, stride=(2, 2), padding="same", dilation=(2, 2))
    assert np.abs(result.kernel - kernel).max() < 0.01


def test_epochs_cap_and_progress_reports():
    before = ascent_crop(32)
    reports = []
    result = learn_kernel(
        before,
        correlate(before, RNG.uniform(-1, 1, (3, 3))),
        3,
        epochs=100,
        progress=lambda *a: reports.append(a),
    )
    assert result.epochs == 100 and result.max_epochs == 100 and not result.stopped_early
    assert [(done, total) for done, total, _ in reports] == [(50, 100), (100, 100)]
    assert reports[1][2] < reports[0][2]


def test_seed_fixes_the_result():
    before = ascent_crop(32)
    after = correlate(before, RNG.uniform(-1, 1, (3, 3)))
    a = learn_kernel(before, after, 3, epochs=50, seed=1)
    b = learn_kernel(before, after, 3, epochs=50, seed=1)
    c = learn_kernel(before, after, 3, epochs=50, seed=2)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    assert not np.array_equal(a.kernel, c.kernel)


def test_shape_mismatch_says_what_was_expected():
    with pytest.raises(ValueError) as info:
        learn_kernel(np.zeros((10, 12)), np.zeros((10, 12)), 3)
    assert str(info.value) == (
        "AFTER is 10x12 but a 3x3 kernel with stride 1x1, dilation 1x1 and 'valid' padding "
        "turns the 10x12 BEFORE into 8x10"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"learning_rate": -1.0}, "learning rate must be a positive number, got -1.0"),
        ({"stride": 0}, "The `stride` argument must be a tuple of 2 integers >= 1. Received: stride=0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        learn_kernel(np.zeros((6, 6)), np.zeros((4, 4)), 3, **kwargs)
    assert str(info.value) == message


def test_kernel_files_round_trip(tmp_path):
    kernel = RNG.normal(size=(3, 4)).astype(np.float32).astype(np.float64)
    save_kernel(str(tmp_path / "k.csv"), kernel)
    save_kernel(str(tmp_path / "k.txt"), kernel)
    save_kernel(str(tmp_path / "k.npy"), kernel)
    text = (tmp_path / "k.csv").read_text()
    assert len(text.splitlines()) == 3 and all(line.count(",") == 3 for line in text.splitlines())
    # Text keeps 9 significant digits: exact for float32, the precision of the layer's weights.
    f32 = kernel.astype(np.float32)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "k.csv", delimiter=",").astype(np.float32), f32)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "k.txt").astype(np.float32), f32)
    np.testing.assert_array_equal(np.load(tmp_path / "k.npy", allow_pickle=False), kernel)


def test_kernel_path_checks(tmp_path):
    with pytest.raises(ConvFilterError) as info:
        check_kernel_path(str(tmp_path / "k.png"))
    assert str(info.value) == f"{tmp_path / 'k.png'}: a kernel is saved as .csv, .npy, .txt, not '.png'"


def test_read_pair_puts_a_16_bit_after_in_the_8_bit_scale(tmp_path):
    before = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(before).save(tmp_path / "b.png")
    after = (before.astype(np.uint16) * 257)[1:, 2:]
    Image.fromarray(after).save(tmp_path / "a.png")
    x, y = read_pair(str(tmp_path / "b.png"), str(tmp_path / "a.png"))
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(y, before[1:, 2:])


def test_read_pair_takes_matrix_values_as_they_are(tmp_path):
    np.save(tmp_path / "b.npy", np.arange(12.0).reshape(3, 4))
    (tmp_path / "a.csv").write_text("1.5,-2\n3,4e3\n")
    x, y = read_pair(str(tmp_path / "b.npy"), str(tmp_path / "a.csv"))
    np.testing.assert_array_equal(x, np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(y, [[1.5, -2], [3, 4000]])


def test_read_pair_refuses_pickles_and_bad_matrices(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConvFilterError) as info:
        read_pair(str(tmp_path / "obj.npy"), str(tmp_path / "obj.npy"))
    assert str(info.value) == f"{tmp_path / 'obj.npy'}: holds Python objects, which need pickle (refused)"
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ConvFilterError) as info:
        read_pair(str(tmp_path / "cube.npy"), str(tmp_path / "cube.npy"))
    assert (
        str(info.value)
        == f"{tmp_path / 'cube.npy'}: is a 3-D array of shape (2, 2, 2); a matrix must be 1-D or 2-D"
    )
    with pytest.raises(ConvFilterError) as info:
        read_pair(str(tmp_path / "none.npy"), str(tmp_path / "cube.npy"))
    assert str(info.value) == f"{tmp_path / 'none.npy'}: no such file"


def test_an_all_zero_after_gives_the_zero_kernel():
    before = ascent_crop(16)
    result = learn_kernel(before, np.zeros((14, 14)), 3)
    np.testing.assert_array_equal(result.kernel, np.zeros((3, 3)))
    assert result.error == 0.0 and result.epochs == 0 and result.stopped_early
