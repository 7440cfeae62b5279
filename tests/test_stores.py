"""fsspec URLs wherever a path goes, on fsspec's in-memory store (``memory://``): the same bytes as
local files, the same refusals, no partial object, no credentials in any message.

The S3 endpoint itself (moto's server on 127.0.0.1) is in ``test_stores_s3.py``.
"""

from __future__ import annotations

import uuid

import fsspec
import numpy as np
import pytest
from helpers import invoke, read, save
from reference import correlate

from convfilter.io import stores

BOX = np.full((3, 3), 1 / 9)


@pytest.fixture
def mem():
    """A fresh folder of the in-memory filesystem: ``(fs, 'memory://<id>')``; removed after."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:12]}"
    try:
        yield fs, f"memory:/{root}"
    finally:
        if fs.exists(root):
            fs.rm(root, recursive=True)


def put(fs, url: str, local) -> None:
    fs.pipe(url.removeprefix("memory:/"), local.read_bytes())


def cat(fs, url: str) -> bytes:
    return fs.cat(url.removeprefix("memory:/"))


# --- the module ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, url",
    [
        ("s3://b/k.png", True),
        ("memory://x", True),
        ("file:///tmp/a.png", False),
        ("a.png", False),
        ("-", False),
    ],
)
def test_what_is_a_url(path, url):
    assert stores.is_url(path) is url


def test_credentials_never_show():
    assert stores.shown("s3://AKIA:secret@bucket/in.png") == "s3://bucket/in.png"
    options = stores.parse_storage_options('{"key": "AKIA", "secret": "hunter2", "endpoint_url": "http://x"}')
    assert repr(options) == "StorageOptions(endpoint_url, key, secret; values hidden)"
    assert "hunter2" not in str(options)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "{",
            "storage options must be a JSON object, as fsspec takes them (not valid JSON: Expecting property name enclosed in double quotes at character 1)",
        ),
        ("[1]", "storage options must be a JSON object, as fsspec takes them; got a JSON list"),
    ],
)
def test_bad_storage_options_are_named_not_echoed(text, message):
    with pytest.raises(stores.ArgumentError, match="^") as info:
        stores.parse_storage_options(text)
    assert str(info.value) == message


def test_a_store_failure_is_one_line_naming_the_url():
    botocore = pytest.importorskip("botocore.exceptions")
    url = "s3://user:pw@bucket/in.png"
    cases = [
        (
            FileNotFoundError("The specified bucket does not exist"),
            "s3://bucket/in.png: no such bucket (The specified bucket does not exist)",
        ),
        (FileNotFoundError("bucket/in.png"), "s3://bucket/in.png: no such object"),
        (PermissionError("Access Denied"), "s3://bucket/in.png: access denied (Access Denied)"),
        (
            botocore.NoCredentialsError(),
            "s3://bucket/in.png: no usable credentials (Unable to locate credentials)",
        ),
        (
            botocore.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            's3://bucket/in.png: cannot reach the store (Could not connect to the endpoint URL: "http://127.0.0.1:1")',
        ),
        (
            botocore.ConnectTimeoutError(endpoint_url="http://10.0.0.1"),
            's3://bucket/in.png: the store did not answer in time (Connect timeout on endpoint URL: "http://10.0.0.1")',
        ),
    ]
    for exc, expected in cases:
        assert stores.message(url, exc) == expected


def test_join_keeps_the_scheme():
    assert stores.join("s3://b/out", "sub/../a.png") == "s3://b/out/a.png"
    assert stores.join("out", "sub/a.png") == "out/sub/a.png"


# --- the command line on memory:// ---------------------------------------------------------------


@pytest.mark.parametrize("protocol, extra", [("gs", "gcs"), ("az", "azure")])
def test_a_missing_extra_is_a_usage_error_naming_it(tmp_path, protocol, extra):
    result = invoke("blur", f"{protocol}://bucket/in.png", tmp_path / "out.png")
    assert result.exit_code == 2
    assert f"pip install 'convfilter[{extra}]'" in result.output
    assert not (tmp_path / "out.png").exists()


def test_an_unknown_protocol_is_a_usage_error(tmp_path):
    result = invoke("blur", "nosuch://bucket/in.png", tmp_path / "out.png")
    assert result.exit_code == 2
    assert "Error: nosuch://bucket/in.png: unknown protocol nosuch://" in result.output


def test_one_file_in_and_out_equals_the_local_run(mem, tmp_path):
    fs, root = mem
    pixels = save(tmp_path / "in.png", (9, 11), seed=3)
    put(fs, f"{root}/in.png", tmp_path / "in.png")
    assert invoke("blur", tmp_path / "in.png", tmp_path / "local.png", "--stride", 2, 1).exit_code == 0
    result = invoke("blur", f"{root}/in.png", f"{root}/out.png", "--stride", 2, 1)
    assert (result.exit_code, result.output) == (0, "")
    assert cat(fs, f"{root}/out.png") == (tmp_path / "local.png").read_bytes()
    expected = np.clip(np.rint(correlate(pixels, BOX, (2, 1))), 0, 255)
    assert np.array_equal(read(tmp_path / "local.png"), expected)
    # Mixed: a URL in, a local file out, and the other way round.
    assert invoke("blur", f"{root}/in.png", tmp_path / "mixed.png", "--stride", 2, 1).exit_code == 0
    assert (tmp_path / "mixed.png").read_bytes() == (tmp_path / "local.png").read_bytes()
    assert invoke("blur", tmp_path / "in.png", f"{root}/mixed.png", "--stride", 2, 1).exit_code == 0
    assert cat(fs, f"{root}/mixed.png") == (tmp_path / "local.png").read_bytes()


def test_an_existing_object_is_refused_and_kept(mem, tmp_path):
    fs, root = mem
    save(tmp_path / "in.png", (6, 6), seed=1)
    put(fs, f"{root}/in.png", tmp_path / "in.png")
    fs.pipe(f"{root}/out.png".removeprefix("memory:/"), b"keep me")
    result = invoke("blur", f"{root}/in.png", f"{root}/out.png")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {root}/out.png: already exists (use --overwrite to replace it or --skip-existing to keep it)\n"
    )
    assert cat(fs, f"{root}/out.png") == b"keep me"
    assert invoke("blur", f"{root}/in.png", f"{root}/out.png", "--overwrite").exit_code == 0
    assert cat(fs, f"{root}/out.png").startswith(b"\x89PNG")


def test_an_object_created_after_planning_is_refused_at_write_time(mem, tmp_path, monkeypatch):
    from convfilter.run import jobs

    fs, root = mem
    save(tmp_path / "in.png", (6, 6), seed=1)
    put(fs, f"{root}/in.png", tmp_path / "in.png")
    target = f"{root}/out.png"

    def listing_misses_it(urls):  # the planning check sees nothing; then another writer wins
        fs.pipe(target.removeprefix("memory:/"), b"theirs")
        return set()

    monkeypatch.setattr(jobs.stores, "existing", listing_misses_it)
    result = invoke("blur", f"{root}/in.png", target)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {target}: already exists")
    assert cat(fs, target) == b"theirs"


def test_a_failed_encode_leaves_no_object(mem, tmp_path, monkeypatch):
    from convfilter.io import images

    fs, root = mem
    save(tmp_path / "in.png", (6, 6), seed=1)
    put(fs, f"{root}/in.png", tmp_path / "in.png")

    def half_then_fail(fp, image, fmt, **params):
        fp.write(b"\x89PNG half")
        raise OSError("disk on fire")

    monkeypatch.setattr(images, "save_image", half_then_fail)
    result = invoke("blur", f"{root}/in.png", f"{root}/out.png")
    assert result.exit_code == 1
    assert result.output == f"Error: {root}/out.png: cannot write (disk on fire)\n"
    assert not fs.exists(f"{root}/out.png".removeprefix("memory:/"))


def test_a_missing_object_is_one_error_line(mem, tmp_path):
    _, root = mem
    result = invoke("blur", f"{root}/nope.png", tmp_path / "out.png")
    assert (result.exit_code, result.output) == (1, f"Error: {root}/nope.png: no such object\n")


def test_a_folder_recursive_batch_names_outputs_like_local(mem, tmp_path):
    fs, root = mem
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png", "sub/.hidden.png"):
        save(tmp_path / "in" / name, (7, 8), seed=len(name))
        put(fs, f"{root}/in/{name}", tmp_path / "in" / name)
    assert invoke("edge", tmp_path / "in", "-r", "-o", tmp_path / "out", "-q").exit_code == 0
    result = invoke("edge", f"{root}/in", "-r", "-o", f"{root}/out")
    assert (result.exit_code, result.output) == (0, "2 written, 0 failed, 0 skipped\n")
    for name in ("a.png", "sub/b.png"):
        assert cat(fs, f"{root}/out/{name}") == (tmp_path / "out" / name).read_bytes()
    assert not fs.exists(f"{root}/out/sub/.hidden.png".removeprefix("memory:/"))
    again = invoke("edge", f"{root}/in", "-r", "-o", f"{root}/out", "--skip-existing")
    assert (again.exit_code, again.output) == (0, "0 written, 0 failed, 2 skipped\n")
    refused = invoke("edge", f"{root}/in", "-r", "-o", f"{root}/out")
    assert refused.exit_code == 1 and refused.output.endswith("0 written, 2 failed, 0 skipped\n")


def test_globs_and_files_from_lists_of_urls(mem, tmp_path):
    fs, root = mem
    for name in ("a.png", "b.png", "c.txt"):
        save(tmp_path / "x.png", (5, 6), seed=len(name))
        put(fs, f"{root}/in/{name}", tmp_path / "x.png")
    result = invoke("blur", f"{root}/in/*.png", "-o", f"{root}/glob")
    assert (result.exit_code, result.output) == (0, "2 written, 0 failed, 0 skipped\n")
    assert sorted(fs.ls(f"{root}/glob".removeprefix("memory:/"), detail=False))[-1].endswith("/glob/b.png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{root}/in/a.png\n{root}/in/b.png\n")
    result = invoke("blur", "--files-from", listing, "-o", f"{root}/listed")
    assert (result.exit_code, result.output) == (0, "2 written, 0 failed, 0 skipped\n")
    assert cat(fs, f"{root}/listed/a.png") == cat(fs, f"{root}/glob/a.png")


def test_matrices_kernels_and_side_outputs_at_urls(mem, tmp_path):
    fs, root = mem
    save(tmp_path / "in.png", (8, 9), seed=2)
    put(fs, f"{root}/in.png", tmp_path / "in.png")
    (tmp_path / "k.csv").write_text("1,0,-1\n")
    put(fs, f"{root}/k.csv", tmp_path / "k.csv")
    local = invoke("custom", "--kernel", f"@{tmp_path / 'k.csv'}", tmp_path / "in.png", tmp_path / "out.npy")
    assert local.exit_code == 0
    result = invoke(
        "custom",
        "--kernel",
        f"@{root}/k.csv",
        f"{root}/in.png",
        f"{root}/out.npy",
        "--compare",
        f"{root}/figure.png",
        "--export",
        f"{root}/model.keras",
    )
    assert (result.exit_code, result.output) == (0, "")
    assert cat(fs, f"{root}/out.npy") == (tmp_path / "out.npy").read_bytes()
    assert cat(fs, f"{root}/figure.png").startswith(b"\x89PNG")
    assert cat(fs, f"{root}/model.keras")[:2] == b"PK"  # a .keras file is a zip
    expected = correlate(read(tmp_path / "in.png"), np.array([[1.0, 0, -1]]))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected.astype(np.float32))


def test_storage_options_never_appear(mem, tmp_path):
    _, root = mem
    secret = '{"secret_token": "HUNTER2-DO-NOT-PRINT"}'
    result = invoke("blur", f"{root}/nope.png", f"{root}/out.png", "-v", "--storage-options", secret)
    assert result.exit_code == 1 and "HUNTER2" not in result.output
    result = invoke(
        "blur", f"{root}/nope.png", "-o", f"{root}/o", "--json", env={"CONVFILTER_STORAGE_OPTIONS": secret}
    )
    assert result.exit_code == 1 and "HUNTER2" not in result.output


def test_zarr_at_a_url_equals_the_local_array(mem, tmp_path):
    zarr = pytest.importorskip("zarr")
    fs, root = mem
    data = np.random.default_rng(4).random((70, 90)).astype(np.float32)
    zarr.create_array(str(tmp_path / "scan.zarr"), shape=data.shape, chunks=(32, 32), dtype="float32")[:] = (
        data
    )
    fs.put(str(tmp_path / "scan.zarr"), f"{root}/scan.zarr".removeprefix("memory:/"), recursive=True)
    args = ("--padding", "same", "--tile-size", 40)
    assert invoke("blur", tmp_path / "scan.zarr", tmp_path / "out.zarr", *args).exit_code == 0
    result = invoke("blur", f"{root}/scan.zarr", f"{root}/out.zarr", *args)
    assert (result.exit_code, result.output) == (0, "")
    from convfilter.cluster.zarr_objects import open_array

    remote = open_array(f"{root}/out.zarr")[:]
    np.testing.assert_array_equal(remote, zarr.open_array(str(tmp_path / "out.zarr"))[:])
    np.testing.assert_allclose(remote, correlate(data, BOX, padding="same"), rtol=1e-5, atol=1e-6)
    again = invoke("blur", f"{root}/scan.zarr", f"{root}/out.zarr", *args)
    assert again.exit_code == 1 and "already exists" in again.output


def test_a_zarr_output_shows_no_array_until_its_metadata_lands(mem, tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    from convfilter.cluster import zarr_arrays, zarr_objects

    fs, root = mem
    data = np.arange(60 * 50, dtype=np.float32).reshape(60, 50)
    zarr.create_array(str(tmp_path / "scan.zarr"), shape=data.shape, chunks=(20, 20), dtype="float32")[:] = (
        data
    )
    fs.put(str(tmp_path / "scan.zarr"), f"{root}/scan.zarr".removeprefix("memory:/"), recursive=True)
    real = zarr_arrays.filter_tiles_of
    seen = []

    def interrupted(*args, **kwargs):
        seen.append(zarr_objects.has_array(f"{root}/out.zarr"))
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the first tiles were written
        return real(*args, **kwargs)

    monkeypatch.setattr(zarr_arrays, "filter_tiles_of", interrupted)
    result = invoke("blur", f"{root}/scan.zarr", f"{root}/out.zarr", "--tile-size", 20, "-j", 1)
    assert result.exit_code != 0 and seen == [False, False]
    assert not zarr_objects.has_array(f"{root}/out.zarr")  # chunks maybe, but no array
    assert fs.find(f"{root}/out.zarr".removeprefix("memory:/"))  # the first tiles' chunks are there
    monkeypatch.setattr(zarr_arrays, "filter_tiles_of", real)
    assert invoke("blur", f"{root}/scan.zarr", f"{root}/out.zarr", "--tile-size", 20).exit_code == 0
    np.testing.assert_allclose(
        zarr_objects.open_array(f"{root}/out.zarr")[:], correlate(data, BOX), rtol=1e-6
    )


@pytest.mark.parametrize(
    "args",
    [
        ("pool", "max", "{in}", "{out}.png", "--size", 2),
        ("chain", "{in}", "{out}.png", "blur", "--", "sobel-x", "--padding", "same"),
        ("bank", "sobel-x", "sobel-y", "{in}", "{out}.png"),
        ("bank", "sobel-x", "sobel-y", "{in}", "{out}.npy", "--combine", "stack"),
        ("blur", "{in}", "{out}.png", "--transpose", "--stride", 2, 2),
        ("edge", "{in}", "{out}.png", "--color", "--range", "abs"),
    ],
    ids=["pool", "chain", "bank", "bank-stack", "transpose", "color"],
)
def test_every_command_writes_the_same_bytes_at_a_url(mem, tmp_path, args):
    fs, root = mem
    from PIL import Image

    rgb = np.random.default_rng(6).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    put(fs, f"{root}/in.png", tmp_path / "in.png")

    def filled(source, target):
        return [str(a).format(**{"in": source, "out": target}) for a in args]

    assert invoke(*filled(tmp_path / "in.png", tmp_path / "out")).exit_code == 0
    result = invoke(*filled(f"{root}/in.png", f"{root}/out"))
    assert (result.exit_code, result.output) == (0, "")
    ext = args[args.index("{out}.npy") if "{out}.npy" in args else args.index("{out}.png")][5:]
    assert cat(fs, f"{root}/out{ext}") == (tmp_path / f"out{ext}").read_bytes()


def test_learn_reads_and_writes_urls(mem, tmp_path):
    fs, root = mem
    save(tmp_path / "before.png", (12, 12), seed=2)
    assert invoke("blur", tmp_path / "before.png", tmp_path / "after.png").exit_code == 0
    put(fs, f"{root}/before.png", tmp_path / "before.png")
    put(fs, f"{root}/after.png", tmp_path / "after.png")
    local = invoke(
        "learn", tmp_path / "before.png", tmp_path / "after.png", "--size", 3, "-o", tmp_path / "k.csv"
    )
    result = invoke("learn", f"{root}/before.png", f"{root}/after.png", "--size", 3, "-o", f"{root}/k.csv")
    assert local.exit_code == result.exit_code == 0
    assert cat(fs, f"{root}/k.csv") == (tmp_path / "k.csv").read_bytes()


def test_in_a_batch_a_missing_object_fails_alone(mem, tmp_path):
    fs, root = mem
    save(tmp_path / "a.png", (6, 7), seed=3)
    put(fs, f"{root}/a.png", tmp_path / "a.png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{root}/missing.png\n{root}/a.png\n")
    result = invoke("blur", "--files-from", listing, "-o", f"{root}/out")
    assert result.exit_code == 1
    assert result.output == (f"Error: {root}/missing.png: no such object\n1 written, 1 failed, 0 skipped\n")
    assert fs.exists(f"{root}/out/a.png".removeprefix("memory:/"))
