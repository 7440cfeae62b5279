"""Zarr arrays in and out: chunk by chunk with halos, equal to the whole-array filter.

The reference is the independent NumPy cross-correlation of ``reference.py``,
on the whole array padded by ``numpy.pad`` with the border's mode and
TensorFlow's 'same' split (or ``d*(k-1)`` on both sides for 'full').
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from reference import correlate, tf_same_padding

zarr = pytest.importorskip("zarr")

from convfilter.cli import cli  # noqa: E402
from convfilter.cluster.zarr_arrays import filter_zarr  # noqa: E402
from convfilter.ops.spec import Conv2DSpec  # noqa: E402

NUMPY_MODES = {
    "zero": "constant",
    "replicate": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "wrap": "wrap",
}
KERNEL = np.random.default_rng(11).normal(size=(3, 4))


def _reference(x, kernel, stride, padding, dilation, border):
    kh, kw = kernel.shape
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        pads = (
            tf_same_padding(x.shape[0], kh, stride[0], dilation[0]),
            tf_same_padding(x.shape[1], kw, stride[1], dilation[1]),
        )
    else:
        pads = ((dilation[0] * (kh - 1),) * 2, (dilation[1] * (kw - 1),) * 2)
    padded = np.pad(x.astype(np.float64), pads, mode=NUMPY_MODES[border])
    return correlate(padded, kernel, stride, "valid", dilation)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 37x41 uint8 array, stored three times with chunks that fit no stride: 5x7, 16x16 and whole."""
    x = np.random.default_rng(2).integers(0, 256, (37, 41)).astype(np.uint8)
    root = tmp_path_factory.mktemp("zarr")
    paths = {}
    for chunks in ((5, 7), (16, 16), (37, 41)):
        path = root / f"in-{chunks[0]}x{chunks[1]}.zarr"
        zarr.create_array(str(path), shape=x.shape, chunks=chunks, dtype="uint8")[:] = x
        paths[chunks] = str(path)
    return x, paths


GRID = [
    (stride, padding, dilation, border)
    for stride, padding, dilation, border in itertools.product(
        [(1, 1), (2, 3), (3, 2)],
        ["valid", "same", "full"],
        [(1, 1), (2, 1)],
        ["zero", "reflect", "wrap", "symmetric"],
    )
    if padding != "valid" or border == "zero"
]


@pytest.mark.parametrize("stride, padding, dilation, border", GRID)
@pytest.mark.parametrize("chunks, tile_size", [((5, 7), 16), ((16, 16), 24), ((37, 41), 2048)])
def test_chunked_result_equals_the_whole_array_reference(
    source, tmp_path, stride, padding, dilation, border, chunks, tile_size
):
    x, paths = source
    op = Conv2DSpec(KERNEL, stride=stride, padding=padding, dilation=dilation, border=border)
    out = tmp_path / "out.zarr"
    filter_zarr(paths[chunks], str(out), op, tile_size=tile_size)
    result = zarr.open_array(str(out))
    assert result.dtype == np.float32
    expected = _reference(x, KERNEL, stride, padding, dilation, border)
    assert result.shape == expected.shape
    assert np.abs(result[:] - expected).max() <= 1e-3


def test_on_a_dask_cluster_the_tiles_are_tasks(source, tmp_path):
    distributed = pytest.importorskip("distributed")
    x, paths = source
    op = Conv2DSpec(KERNEL, stride=(2, 2), padding="same", border="reflect")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            filter_zarr(paths[(5, 7)], str(tmp_path / "out.zarr"), op, tile_size=16, client=client)
    expected = _reference(x, KERNEL, (2, 2), "same", (1, 1), "reflect")
    assert np.abs(zarr.open_array(str(tmp_path / "out.zarr"))[:] - expected).max() <= 1e-3


def test_the_command_line(source, tmp_path, monkeypatch):
    x, paths = source
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = [
        "custom",
        "--kernel",
        "1,2;3,4",
        paths[(5, 7)],
        "out.zarr",
        "--stride",
        "2",
        "2",
        "--padding",
        "same",
    ]
    done = runner.invoke(cli, [*args, "--json"])
    assert done.exit_code == 0, done.output
    line = json.loads(done.output)
    assert (line["input_shape"], line["output_shape"], line["status"]) == ([37, 41], [19, 21], "written")
    expected = _reference(x, np.array([[1, 2], [3, 4]]), (2, 2), "same", (1, 1), "zero")
    assert np.abs(zarr.open_array("out.zarr")[:] - expected).max() <= 1e-3
    again = runner.invoke(cli, args)
    assert (again.exit_code, again.output) == (
        1,
        "Error: out.zarr: already exists (use --overwrite to replace it or --skip-existing to keep it)\n",
    )
    assert runner.invoke(cli, [*args, "--overwrite"]).exit_code == 0
    assert not list(tmp_path.glob(".convfilter-*"))
    mixed = runner.invoke(cli, ["blur", paths[(5, 7)], "out.png"])
    assert mixed.exit_code == 2
    assert "Error: a .zarr array is filtered into a .zarr array" in mixed.output
    explain = runner.invoke(cli, ["explain", paths[(5, 7)], "--kernel-size", "3", "3", "--json"])
    assert json.loads(explain.output)["input_shape"] == [37, 41]


def test_bad_zarr_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zarr.create_array("cube.zarr", shape=(2, 3, 4), dtype="uint8")
    group = zarr.open_group("group.zarr", mode="w")
    group.create_array("image", shape=(20, 20), dtype="float64")[:] = 1.0
    runner = CliRunner()
    cube = runner.invoke(cli, ["blur", "cube.zarr", "o.zarr"])
    assert (cube.exit_code, cube.output) == (
        1,
        "Error: cube.zarr: a 3-D Zarr array; expected a 2-D one (H x W)\n",
    )
    missing = runner.invoke(cli, ["blur", "missing.zarr", "o.zarr"])
    assert (missing.exit_code, missing.output) == (
        1,
        "Error: missing.zarr: no such Zarr array (a .zarr directory)\n",
    )
    grouped = runner.invoke(cli, ["blur", "group.zarr", "o.zarr"])
    assert grouped.exit_code == 0, grouped.output
    assert np.allclose(zarr.open_array("o.zarr")[:], 1.0)
    assert not (tmp_path / "oo.zarr").exists()


# --- the promises of the single-file path, for arrays ------------------------------------------------


def _array(path, values, chunks=(8, 8)):
    zarr.create_array(str(path), shape=values.shape, chunks=chunks, dtype=values.dtype)[:] = values
    return str(path)


def test_overwrite_never_replaces_an_output_that_holds_or_lies_in_the_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = np.arange(100, dtype=np.float32).reshape(10, 10)
    _array(tmp_path / "outer.zarr", x)
    _array(tmp_path / "outer.zarr" / "inner.zarr", x)
    runner = CliRunner()
    holds = runner.invoke(cli, ["blur", "outer.zarr/inner.zarr", "outer.zarr", "--overwrite"])
    assert (holds.exit_code, holds.output) == (
        1,
        "Error: outer.zarr: holds the input outer.zarr/inner.zarr; choose another output\n",
    )
    inside = runner.invoke(cli, ["blur", "outer.zarr", "outer.zarr/inner.zarr", "--overwrite"])
    assert (inside.exit_code, inside.output) == (
        1,
        "Error: outer.zarr/inner.zarr: lies inside the input outer.zarr; choose another output\n",
    )
    np.testing.assert_array_equal(zarr.open_array("outer.zarr/inner.zarr")[:], x)  # nothing moved
    np.testing.assert_array_equal(zarr.open_array("outer.zarr")[:], x)


def test_a_damaged_chunk_is_one_error_line_naming_the_array_and_the_chunk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _array(tmp_path / "in.zarr", np.ones((16, 16), dtype=np.float32))
    chunk = next(
        p for p in (tmp_path / "in.zarr").rglob("*") if p.is_file() and p.name == "0" and p.parent.name == "1"
    )
    chunk.write_bytes(b"this is not a compressed chunk")
    done = CliRunner().invoke(cli, ["blur", "in.zarr", "out.zarr", "--tile-size", "16"])
    assert done.exit_code == 1
    assert done.output.startswith("Error: in.zarr: cannot read the chunk(s) of rows 0..15, columns 0..15 (")
    assert len(done.output.splitlines()) == 1
    assert not (tmp_path / "out.zarr").exists() and not list(tmp_path.glob(".convfilter-*"))


def test_values_beyond_float32_are_the_matrix_files_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = np.zeros((10, 12))
    x[3, 5] = 1e39
    _array(tmp_path / "big.zarr", x)
    done = CliRunner().invoke(cli, ["blur", "big.zarr", "out.zarr"])
    assert (done.exit_code, done.output) == (
        1,
        "Error: big.zarr: value at row 4, column 6 (1e+39) does not fit a float32 (|v| <= 3.4e38)\n",
    )
    # Away from the first tile, and through a border: still the array's own row and column.
    y = np.zeros((40, 40))
    y[30, 35] = 1e39
    _array(tmp_path / "far.zarr", y)
    for border in ("zero", "reflect"):
        args = ["blur", "far.zarr", f"o-{border}.zarr", "--tile-size", "16", "--padding", "same"]
        done = CliRunner().invoke(cli, [*args, "--border", border])
        assert (done.exit_code, done.output) == (
            1,
            "Error: far.zarr: value at row 31, column 36 (1e+39) does not fit a float32 (|v| <= 3.4e38)\n",
        )


def test_max_pixels_holds_arrays_to_the_same_guard_up_front(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zarr.create_array("huge.zarr", shape=(200_000, 200_000), chunks=(1000, 1000), dtype="uint8")  # no data
    done = CliRunner().invoke(cli, ["blur", "huge.zarr", "out.zarr"])
    assert (done.exit_code, done.output) == (
        1,
        "Error: huge.zarr: array is 200000x200000 = 40000000000 pixels, more than the limit of 268435456; "
        "raise it with --max-pixels if you mean it\n",
    )
    _array(tmp_path / "small.zarr", np.ones((10, 10), dtype=np.uint8))
    assert CliRunner().invoke(cli, ["blur", "small.zarr", "o.zarr", "--max-pixels", "99"]).exit_code == 1
    assert CliRunner().invoke(cli, ["blur", "small.zarr", "o.zarr", "--max-pixels", "100"]).exit_code == 0


def test_an_output_that_appears_while_the_run_works_is_never_replaced(tmp_path, monkeypatch):
    """Another run into the same folder can create the output after the check at the start."""
    import convfilter.cluster.zarr_arrays as zarr_arrays

    monkeypatch.chdir(tmp_path)
    _array(tmp_path / "in.zarr", np.ones((10, 10), dtype=np.float32))
    theirs = np.full((3, 3), 7.0, dtype=np.float32)
    real_plan = zarr_arrays.plan

    def plan_and_race(*args, **kwargs):  # runs after the up-front existence check
        if not (tmp_path / "out.zarr").exists():
            _array(tmp_path / "out.zarr", theirs)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(zarr_arrays, "plan", plan_and_race)
    done = CliRunner().invoke(cli, ["blur", "in.zarr", "out.zarr"])
    assert (done.exit_code, done.output.splitlines()[-1]) == (
        1,
        "Error: out.zarr: already exists (use --overwrite to replace it or --skip-existing to keep it)",
    )
    np.testing.assert_array_equal(zarr.open_array("out.zarr")[:], theirs)  # the other run's output
    assert not list(tmp_path.glob(".convfilter-*"))
