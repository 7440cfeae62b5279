"""Jobs and the runner (convfilter.run.jobs, convfilter.run.runner): planning outputs, checks before work, the threaded runner.

Pixels are checked against the independent NumPy reference in tests/reference.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import save
from PIL import Image
from reference import correlate

from convfilter.errors import ConvFilterError
from convfilter.io.images import write_image
from convfilter.ops.spec import Conv2DSpec
from convfilter.run.jobs import Job, OutputSettings, PlanError, check_jobs, expand_inputs, plan_outputs
from convfilter.run.runner import Runner

BOX = np.full((3, 3), 1 / 9)


def expected_box(pixels, padding="valid", stride=(1, 1)):
    """The reference 3x3 average as 8-bit pixels (the 'clip' mapping: round, clip)."""
    return np.clip(np.rint(correlate(pixels, BOX, stride, padding)), 0, 255).astype(np.uint8)


def make_settings(kernel, *, overwrite=False, png_compression=1, tile_size=2048, **conv):
    """The operation and the output settings of a run, as the command line builds them."""
    return Conv2DSpec(kernel, **conv), OutputSettings(
        png_compression=png_compression, overwrite=overwrite, tile_size=tile_size
    )


def run(jobs, settings, **kwargs):
    return list(Runner(Job(jobs, *settings), **kwargs).run())


def plan(paths, **kwargs):
    kwargs.setdefault("kernel_name", "blur")
    return plan_outputs(expand_inputs(paths), **kwargs)


def test_mixed_sizes_corrupt_file_in_the_middle(tmp_path):
    sizes = [(20, 30), (31, 17), (20, 30), (8, 9), (20, 30), (31, 17), (5, 40)]
    inputs, pixels = [], {}
    for i, shape in enumerate(sizes):
        path = str(tmp_path / f"img{i}.png")
        pixels[path] = save(path, shape, seed=i)
        inputs.append(path)
    bad = str(tmp_path / "broken.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    inputs.insert(3, bad)
    out = tmp_path / "out"
    jobs = plan(inputs, output_dir=str(out))
    settings = make_settings(BOX, stride=(2, 1), padding="same")
    check_jobs(Job(jobs, *settings), make_dirs=True)
    results = run(jobs, settings, workers=3, batch_size=3)

    by_input = {r.input: r for r in results}
    assert len(results) == len(inputs)
    assert by_input[bad].status == "failed"
    assert by_input[bad].error.startswith(f"{bad}: ")
    assert not (out / "broken.png").exists()
    for path, px in pixels.items():
        result = by_input[path]
        assert result.status == "written", result.error
        written = np.asarray(Image.open(result.output))
        np.testing.assert_array_equal(written, expected_box(px, "same", (2, 1)))
        assert result.input_shape == px.shape
        assert result.output_shape == written.shape
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in pixels)


def test_image_too_small_fails_alone(tmp_path):
    save(tmp_path / "tiny.png", (2, 2), 0)
    px = save(tmp_path / "fine.png", (6, 6), 1)
    jobs = plan([str(tmp_path / "tiny.png"), str(tmp_path / "fine.png")], output_dir=str(tmp_path / "o"))
    settings = make_settings(BOX)
    check_jobs(Job(jobs, *settings), make_dirs=True)
    results = {os.path.basename(r.input): r for r in run(jobs, settings)}
    assert results["tiny.png"].status == "failed"
    assert results["tiny.png"].error == (
        f"{tmp_path / 'tiny.png'}: image is 2x2 but the 3x3 kernel needs at least 3x3 pixels "
        "under 'valid' padding"
    )
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "fine.png")), expected_box(px))


def test_collision_refused_before_any_work(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save(tmp_path / "a" / "x.png", (5, 5), 0)
    save(tmp_path / "b" / "x.png", (5, 5), 1)
    out = tmp_path / "out"
    with pytest.raises(PlanError) as info:
        plan([str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")], output_dir=str(out))
    assert str(info.value) == (
        f"{out / 'x.png'}: would be written by both {tmp_path / 'a' / 'x.png'} "
        f"and {tmp_path / 'b' / 'x.png'}; "
        "nothing was done (change the names with --suffix or --output-template)"
    )
    assert not out.exists()


def test_format_change_collides(tmp_path):
    save(tmp_path / "p.png", (5, 5), 0)
    save(tmp_path / "p.bmp", (5, 5), 1)
    with pytest.raises(PlanError, match="would be written by both"):
        plan([str(tmp_path / "p.png"), str(tmp_path / "p.bmp")], output_dir=str(tmp_path / "o"), fmt="png")


def test_same_input_twice_is_one_job(tmp_path):
    save(tmp_path / "p.png", (5, 5), 0)
    jobs = plan([str(tmp_path / "p.png"), str(tmp_path / ".." / tmp_path.name / "p.png")], output_dir="o")
    assert [job.input for job in jobs] == [str(tmp_path / "p.png")]


def test_names_suffix_format_template(tmp_path):
    inputs = [str(tmp_path / "d" / "cat.photo.jpg"), "dog.png"]
    jobs = plan_outputs(
        [(p, None) for p in inputs], kernel_name="edge", output_dir="out", suffix="_e", fmt="png"
    )
    assert [job.output for job in jobs] == [
        os.path.join("out", "cat.photo_e.png"),
        os.path.join("out", "dog_e.png"),
    ]
    jobs = plan_outputs(
        [(p, None) for p in inputs], kernel_name="edge", template="{dir}/{stem}_{kernel}.{ext}|{name}"
    )
    assert [job.output for job in jobs] == [
        str(tmp_path / "d" / "cat.photo_edge.jpg|cat.photo.jpg"),
        "dog_edge.png|dog.png",
    ]


@pytest.mark.parametrize("template", ["{stem.__class__}", "{path}", "{stem!r}", "{stem:>9}", "{stem"])
def test_bad_templates(template):
    with pytest.raises(PlanError, match="output template"):
        plan_outputs([("a.png", None)], kernel_name="blur", template=template)


def test_recursive_mirrors_tree_and_leaves_out_the_output_dir(tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / ".hidden").mkdir()
    for rel in ["a.png", "sub/b.jpg", "sub/deeper/c.tif", ".hidden/h.png", "sub/.dot.png"]:
        save(src / rel, (4, 4), 0)
    (src / "notes.txt").write_text("not an image")
    (src / "out").mkdir()
    save(src / "out" / "a.png", (4, 4), 0)  # an earlier run's output inside the tree
    jobs = plan_outputs(
        expand_inputs([str(src)], recursive=True, exclude=[str(src / "out")]),
        kernel_name="blur",
        output_dir=str(src / "out"),
    )
    pairs = [(os.path.relpath(j.input, src), os.path.relpath(j.output, src)) for j in jobs]
    assert pairs == [
        ("a.png", "out/a.png"),
        ("sub/b.jpg", "out/sub/b.jpg"),
        ("sub/deeper/c.tif", "out/sub/deeper/c.tif"),
    ]


def test_directory_without_recursive_is_a_failure(tmp_path):
    jobs = plan([str(tmp_path)], output_dir=str(tmp_path / "o"))
    assert jobs[0].error == f"{tmp_path}: is a directory (use --recursive for its images)"


def test_existing_outputs_inputs_and_directories(tmp_path):
    a = save(tmp_path / "a.png", (6, 6), 0)
    save(tmp_path / "b.png", (6, 6), 1)
    save(tmp_path / "c.png", (6, 6), 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old output")
    (out / "c.png").mkdir()  # an output name taken by a directory: unwritable
    settings = make_settings(BOX)
    inputs = [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]

    jobs = plan(inputs, output_dir=str(out))
    check_jobs(Job(jobs, *settings), make_dirs=True)
    errors = {os.path.basename(j.input): j.error for j in jobs}
    assert errors == {
        "a.png": f"{out / 'a.png'}: already exists "
        "(use --overwrite to replace it or --skip-existing to keep it)",
        "b.png": None,
        "c.png": f"{out / 'c.png'}: is a directory",
    }
    results = run(jobs, settings)
    assert [r.status for r in results] == ["failed", "failed", "written"]
    assert (out / "a.png").read_bytes() == b"old output"

    jobs = plan(inputs, output_dir=str(out))
    check_jobs(Job(jobs, *settings), skip_existing=True, make_dirs=True)
    statuses = {os.path.basename(r.input): r.status for r in run(jobs, settings)}
    assert statuses == {"a.png": "skipped", "b.png": "skipped", "c.png": "failed"}
    assert (out / "a.png").read_bytes() == b"old output"

    overwrite = make_settings(BOX, overwrite=True)
    jobs = plan(inputs[:1], output_dir=str(out))
    check_jobs(Job(jobs, *overwrite), make_dirs=True)
    assert [r.status for r in run(jobs, overwrite)] == ["written"]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), expected_box(a))


def test_never_writes_over_an_input(tmp_path):
    save(tmp_path / "a.png", (6, 6), 0)
    save(tmp_path / "a2.png", (6, 6), 1)
    before = {n: (tmp_path / n).read_bytes() for n in ("a.png", "a2.png")}
    settings = make_settings(BOX, overwrite=True)
    jobs = plan([str(tmp_path / "a.png")], output_dir=str(tmp_path))
    check_jobs(Job(jobs, *settings))
    assert jobs[0].error == f"{tmp_path / 'a.png'}: is the input file; refusing to overwrite it"
    jobs = plan([str(tmp_path / "a.png"), str(tmp_path / "a2.png")], output_dir=str(tmp_path), suffix="2")
    check_jobs(Job(jobs, *settings))
    assert jobs[0].error == f"{tmp_path / 'a2.png'}: is an input of this run; refusing to overwrite it"
    assert jobs[1].error is None
    assert [r.status for r in run(jobs, settings)] == ["failed", "written"]
    assert {n: (tmp_path / n).read_bytes() for n in ("a.png", "a2.png")} == before
    assert (tmp_path / "a22.png").exists()


def test_fail_fast_stops_after_first_failure(tmp_path):
    inputs = []
    for i in range(12):
        path = tmp_path / f"i{i:02d}.png"
        if i == 4:
            path.write_bytes(b"junk")
        else:
            save(path, (6, 6), i)
        inputs.append(str(path))
    settings = make_settings(BOX)
    jobs = plan(inputs, output_dir=str(tmp_path / "o"))
    check_jobs(Job(jobs, *settings), make_dirs=True)
    runner = Runner(Job(jobs, *settings), workers=1, batch_size=1, fail_fast=True)
    results = list(runner.run())
    assert [r.status for r in results].count("failed") == 1
    written = sorted(os.listdir(tmp_path / "o"))
    assert written == sorted(os.path.basename(r.output) for r in results if r.status == "written")
    assert len(written) + 1 + runner.not_started == 12
    assert runner.not_started > 0


def test_no_clobber_write_refuses_a_file_created_meanwhile(tmp_path):
    target = tmp_path / "t.png"
    target.write_bytes(b"someone else's")
    with pytest.raises(ConvFilterError, match="already exists"):
        write_image(str(target), np.zeros((3, 3), np.uint8), "PNG", replace=False)
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["t.png"]  # no temporary file left


def test_png_compression_levels_same_pixels(tmp_path):
    px = save(tmp_path / "a.png", (64, 64), 3)
    sizes = {}
    for level in (0, 1, 9):
        settings = make_settings(BOX, png_compression=level)
        jobs = plan([str(tmp_path / "a.png")], output_dir=str(tmp_path / f"l{level}"))
        check_jobs(Job(jobs, *settings), make_dirs=True)
        assert run(jobs, settings)[0].status == "written"
        np.testing.assert_array_equal(np.asarray(Image.open(jobs[0].output)), expected_box(px))
        sizes[level] = os.path.getsize(jobs[0].output)
    assert sizes[0] > sizes[9]
    with pytest.raises(ValueError, match="0..9"):
        make_settings(BOX, png_compression=10)


@pytest.mark.parametrize("budget, peak", [(1, 600), (1800, 1800), (2**27, 6 * 600)])
def test_pixel_budget_bounds_the_images_held_at_once(tmp_path, budget, peak):
    """Images counted by header from decode to report: a budget of 1 pixel runs them one at a time."""
    inputs, pixels = [], {}
    for i in range(6):
        path = str(tmp_path / f"img{i}.png")
        pixels[path] = save(path, (20, 30), seed=i)
        inputs.append(path)
    jobs = plan(inputs, output_dir=str(tmp_path / "out"))
    settings = make_settings(BOX, padding="same")
    check_jobs(Job(jobs, *settings), make_dirs=True)
    runner = Runner(Job(jobs, *settings), workers=2, batch_size=8, max_held_pixels=budget)
    results = list(runner.run())
    assert [r.status for r in results] == ["written"] * 6
    assert runner.peak_held_pixels == peak
    assert runner.held == {}
    for result in results:
        np.testing.assert_array_equal(
            np.asarray(Image.open(result.output)), expected_box(pixels[result.input], "same")
        )


@pytest.mark.parametrize("tile_size, target", [(None, "apply"), (16, "filter_pixels")])
def test_a_failing_model_run_fails_that_file_only(tmp_path, monkeypatch, tile_size, target):
    """A model error (e.g. TensorFlow out of memory) on one image: that file fails, named, nothing written."""
    import convfilter.run.runner

    save(tmp_path / "a.png", (40, 40), 1)

    def boom(*args, **kwargs):
        raise RuntimeError("cannot allocate\nmore")

    monkeypatch.setattr(convfilter.run.runner, target, boom)
    settings = make_settings(BOX, tile_size=tile_size)
    jobs = plan([str(tmp_path / "a.png")], output_dir=str(tmp_path / "out"))
    check_jobs(Job(jobs, *settings), make_dirs=True)
    [result] = run(jobs, settings)
    assert result.status == "failed"
    assert result.error == f"{tmp_path / 'a.png'}: the model failed (cannot allocate)"  # first line only
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder
