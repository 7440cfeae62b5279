"""Each no-clobber layer on its own, through the command line.

Two layers keep an existing file: planning refuses an output that exists before any work is done
(no input decoded, no model run), and the write itself never replaces a file that appeared since
(a hard link that fails when the name is taken; an exclusive create at a URL). Each test here takes
one layer away from the situation: a file that exists at planning (the write-time layer would
refuse too, so the test checks that no work was done), or a file that appears after planning (so
only the write-time layer can refuse it). Removing either layer from the code fails a test here.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import invoke, save

import convfilter.run.runner as runner_module

EXISTS = "already exists (use --overwrite to replace it or --skip-existing to keep it)"
SIDE_EXISTS = "already exists (use --overwrite to replace it)"


@pytest.fixture
def no_work(monkeypatch):
    """Decoding an input or running the model fails the test: the record of any attempt."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise AssertionError("work was done for an output that planning should have refused")

    monkeypatch.setattr(runner_module, "read_input", refuse)
    monkeypatch.setattr(runner_module, "apply", refuse)
    return attempts


@pytest.fixture
def appears_while_running(monkeypatch):
    """Make the given paths appear (holding ``b"theirs"``) while the model runs, after planning."""
    paths = []
    real = runner_module.apply

    def apply_then_create(*args, **kwargs):
        for path in paths:
            if not path.exists():
                path.write_bytes(b"theirs")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner_module, "apply", apply_then_create)
    return paths


# --- planning: refused before any work -----------------------------------------------------------


def test_an_existing_output_is_refused_before_decoding(tmp_path, no_work):
    save(tmp_path / "in.png", (6, 7), seed=1)
    (tmp_path / "out.png").write_bytes(b"mine")
    result = invoke("blur", tmp_path / "in.png", tmp_path / "out.png")
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path / 'out.png'}: {EXISTS}\n")
    assert no_work == [] and (tmp_path / "out.png").read_bytes() == b"mine"


def test_a_batch_refuses_existing_outputs_before_decoding(tmp_path, no_work):
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png"):
        save(tmp_path / name, (6, 7), seed=len(name))
        (tmp_path / "out" / name).write_bytes(b"mine")
    result = invoke("blur", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.endswith("0 written, 2 failed, 0 skipped\n")
    assert no_work == []
    assert {p.read_bytes() for p in (tmp_path / "out").iterdir()} == {b"mine"}


@pytest.mark.parametrize("option, name", [("--compare", "fig.png"), ("--export", "model.keras")])
def test_an_existing_side_output_is_refused_before_decoding(tmp_path, no_work, option, name):
    save(tmp_path / "in.png", (6, 7), seed=1)
    (tmp_path / name).write_bytes(b"mine")
    result = invoke("blur", tmp_path / "in.png", tmp_path / "out.png", option, tmp_path / name)
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path / name}: {SIDE_EXISTS}\n")
    assert no_work == [] and not (tmp_path / "out.png").exists()


def test_an_existing_zarr_output_is_refused_before_any_tile(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from convfilter.cluster import zarr_arrays

    zarr.create_array(str(tmp_path / "in.zarr"), shape=(8, 8), chunks=(4, 4), dtype="float32")[:] = 1.0
    (tmp_path / "out.zarr").mkdir()
    (tmp_path / "out.zarr" / "mine").write_bytes(b"mine")
    monkeypatch.setattr(zarr_arrays, "filter_tiles_of", lambda *a, **k: pytest.fail("a tile was filtered"))
    result = invoke("blur", tmp_path / "in.zarr", tmp_path / "out.zarr")
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path / 'out.zarr'}: {EXISTS}\n")
    assert (tmp_path / "out.zarr" / "mine").read_bytes() == b"mine"


# --- the write: a file that appeared after planning is never replaced ---------------------------


def test_a_file_created_after_planning_is_refused_at_write_time(tmp_path, appears_while_running):
    save(tmp_path / "in.png", (6, 7), seed=1)
    appears_while_running.append(tmp_path / "out.png")
    result = invoke("blur", tmp_path / "in.png", tmp_path / "out.png")
    assert (result.exit_code, result.output) == (1, f"Error: {tmp_path / 'out.png'}: {EXISTS}\n")
    assert (tmp_path / "out.png").read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]  # no temporary file left


def test_a_batch_refuses_files_created_after_planning(tmp_path, appears_while_running):
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png", "c.npy"):
        if name.endswith(".png"):
            save(tmp_path / name, (6, 7), seed=len(name))
        else:
            np.save(tmp_path / name, np.ones((4, 5)))
        appears_while_running.append(tmp_path / "out" / name)
    result = invoke(
        "blur", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.npy", "-o", tmp_path / "out"
    )
    assert result.exit_code == 1
    assert result.output.endswith("0 written, 3 failed, 0 skipped\n")
    assert {p.read_bytes() for p in (tmp_path / "out").iterdir()} == {b"theirs"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.npy"]


@pytest.mark.parametrize("option, name", [("--compare", "fig.png"), ("--export", "model.keras")])
def test_a_side_output_created_after_planning_is_refused(tmp_path, appears_while_running, option, name):
    save(tmp_path / "in.png", (6, 7), seed=1)
    appears_while_running.append(tmp_path / name)
    result = invoke("blur", tmp_path / "in.png", tmp_path / "out.png", option, tmp_path / name)
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / name}: {EXISTS}\n"
    assert (tmp_path / name).read_bytes() == b"theirs"


def test_a_zarr_output_created_after_planning_is_refused(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from convfilter.cluster import zarr_arrays

    zarr.create_array(str(tmp_path / "in.zarr"), shape=(8, 8), chunks=(4, 4), dtype="float32")[:] = 1.0
    real = zarr_arrays.filter_tiles_of

    def tiles_then_appear(*args, **kwargs):
        (tmp_path / "out.zarr").mkdir(exist_ok=True)
        (tmp_path / "out.zarr" / "theirs").write_bytes(b"theirs")
        return real(*args, **kwargs)

    monkeypatch.setattr(zarr_arrays, "filter_tiles_of", tiles_then_appear)
    result = invoke("blur", tmp_path / "in.zarr", tmp_path / "out.zarr", "-j", 1)
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'out.zarr'}: {EXISTS}\n"
    assert sorted(p.name for p in (tmp_path / "out.zarr").iterdir()) == ["theirs"]
