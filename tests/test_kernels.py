"""Named kernel grids and their parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convfilter.ops.kernels import KERNELS, KernelParameterError, format_grid, get_kernel, is_averaging

DOCUMENTED_GRIDS = {
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "blur": [[1 / 9] * 3] * 3,
}


@pytest.mark.parametrize("name,grid", DOCUMENTED_GRIDS.items())
def test_default_grids_are_the_documented_ones(name, grid):
    np.testing.assert_allclose(KERNELS[name].grid(), np.array(grid, dtype=float), rtol=1e-15)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_blur_sizes_odd_and_even(size):
    grid = KERNELS["blur"].grid(size=size)
    assert grid.shape == (size, size)
    np.testing.assert_allclose(grid, 1.0 / size**2)
    np.testing.assert_array_equal(KERNELS["blur"].grid(size=size, normalize=False), np.ones((size, size)))


@pytest.mark.parametrize("size,sigma", [(5, 1.0), (4, 0.7), (9, 3.0), (1, 2.0)])
def test_gaussian_is_normalized_symmetric_and_gaussian(size, sigma):
    grid = KERNELS["gaussian"].grid(size=size, sigma=sigma)
    assert grid.shape == (size, size)
    assert math.isclose(grid.sum(), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(grid, grid[::-1, ::-1])
    np.testing.assert_allclose(grid, grid.T)
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    expected = np.exp(-((y - c) ** 2 + (x - c) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(grid, expected / expected.sum())


def test_identity_sizes_must_be_odd():
    np.testing.assert_array_equal(KERNELS["identity"].grid(size=1), [[1.0]])
    with pytest.raises(
        KernelParameterError, match="identity: size must be odd so the kernel has a centre, got 4"
    ):
        KERNELS["identity"].grid(size=4)


def test_random_is_reproducible_per_seed_and_differs_across_seeds():
    a = KERNELS["random"].grid(size=5, seed=7)
    b = KERNELS["random"].grid(size=5, seed=7)
    c = KERNELS["random"].grid(size=5, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_random_follows_glorot_uniform_limits(size):
    # Keras's GlorotUniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)), fans = size*size*1.
    limit = math.sqrt(6.0 / (size * size + size * size))
    draws = np.concatenate([KERNELS["random"].grid(size=size, seed=s).ravel() for s in range(2000)])
    assert np.abs(draws).max() <= limit
    assert np.abs(draws).max() > 0.95 * limit
    assert abs(draws.mean()) < 0.05 * limit
    # Uniform on [-l, l] has variance l^2 / 3.
    assert math.isclose(draws.var(), limit**2 / 3, rel_tol=0.1)


@pytest.mark.parametrize("name", ["edge", "sobel-x", "sobel-y", "sharpen", "emboss"])
def test_fixed_kernels_refuse_size(name):
    with pytest.raises(KernelParameterError) as info:
        KERNELS[name].grid(size=5)
    assert info.value.param == "--size"
    assert str(info.value) == (
        f"{name} is a fixed 3x3 kernel and takes no size (blur, gaussian, identity and random take --size)"
    )


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("blur", {"size": 0}, "blur: size must be between 1 and 101, got 0"),
        ("blur", {"size": 102}, "blur: size must be between 1 and 101, got 102"),
        ("gaussian", {"sigma": 0.0}, "gaussian: sigma must be > 0, got 0.0"),
        ("random", {"seed": -1}, "random: seed must be an integer >= 0, got -1"),
        ("blur", {"sigma": 1.0}, "blur does not take sigma"),
    ],
)
def test_bad_parameters(name, params, message):
    with pytest.raises(KernelParameterError) as info:
        KERNELS[name].grid(**params)
    assert str(info.value) == message


def test_is_averaging():
    assert is_averaging(KERNELS["blur"].grid(size=4))
    assert is_averaging(KERNELS["gaussian"].grid())
    assert is_averaging(KERNELS["identity"].grid())
    assert not is_averaging(KERNELS["sharpen"].grid())  # sums to 1 but has negative weights
    assert not is_averaging(KERNELS["blur"].grid(normalize=False))
    assert not is_averaging(KERNELS["edge"].grid())


def test_get_kernel_unknown_lists_names():
    with pytest.raises(ValueError, match="unknown kernel 'blurr'; known kernels: blur, gaussian"):
        get_kernel("blurr")


def test_format_grid_aligns_columns():
    assert format_grid(np.array([[1, -0.5], [10, 0]])) == "   1 -0.5\n  10    0"


@pytest.mark.parametrize("sigma", [1e-30, 1e-300, 5e-324])
@pytest.mark.parametrize("size, centre", [(5, [(2, 2)]), (4, [(1, 1), (1, 2), (2, 1), (2, 2)])])
def test_a_tiny_sigma_gives_the_limit_without_warnings(sigma, size, centre, recwarn):
    """As sigma -> 0 the sampled Gaussian puts all its weight on the taps nearest the centre."""
    grid = KERNELS["gaussian"].grid(size=size, sigma=sigma)
    expected = np.zeros((size, size))
    for row, col in centre:
        expected[row, col] = 1 / len(centre)
    np.testing.assert_array_equal(grid, expected)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
