"""s3:// against a real HTTP endpoint: moto's ``ThreadedMotoServer`` on 127.0.0.1, as s3fs's own
tests use it. Every command's output equals the same command on local copies, byte for byte.

moto emulates S3's API; it is not S3 (no eventual consistency, no throttling): docs/cluster.md.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, save
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("s3_endpoint")]  # one moto server per run
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("s3fs", reason="s3fs is not installed")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def endpoint():
    """``http://127.0.0.1:PORT`` of a moto S3 server, stopped after the module."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # moto accepts any; the Dask workers inherit them
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def bucket(endpoint):
    """A new bucket: ``(s3fs filesystem, 'bucket-name')``."""
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    name = f"b-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return fs, name


def options(endpoint: str) -> list[str]:
    return ["--storage-options", json.dumps({"endpoint_url": endpoint})]


def test_one_file_equals_the_local_run_with_options_or_environment(endpoint, bucket, tmp_path):
    fs, name = bucket
    save(tmp_path / "in.png", (20, 24), seed=7)
    fs.put(str(tmp_path / "in.png"), f"{name}/in.png")
    assert invoke("blur", tmp_path / "in.png", tmp_path / "local.png", "--stride", 2, 1).exit_code == 0
    result = invoke(
        "blur", f"s3://{name}/in.png", f"s3://{name}/out.png", "--stride", 2, 1, *options(endpoint)
    )
    assert (result.exit_code, result.output) == (0, "")
    assert fs.cat(f"{name}/out.png") == (tmp_path / "local.png").read_bytes()
    env = {"AWS_ENDPOINT_URL": endpoint}
    result = invoke("blur", f"s3://{name}/in.png", f"s3://{name}/env.png", "--stride", 2, 1, env=env)
    assert (result.exit_code, result.output) == (0, "")
    assert fs.cat(f"{name}/env.png") == (tmp_path / "local.png").read_bytes()
    # A second run without --overwrite is refused, the object unchanged.
    before = fs.info(f"{name}/out.png")["ETag"]
    again = invoke("blur", f"s3://{name}/in.png", f"s3://{name}/out.png", *options(endpoint))
    assert again.exit_code == 1
    assert again.output == (
        f"Error: s3://{name}/out.png: already exists (use --overwrite to replace it or --skip-existing to keep it)\n"
    )
    assert fs.info(f"{name}/out.png", refresh=True)["ETag"] == before


def test_the_stores_conditional_write_refuses_a_late_object(endpoint, bucket, tmp_path, monkeypatch):
    from convfilter.run import jobs

    fs, name = bucket
    save(tmp_path / "in.png", (8, 8), seed=1)
    fs.put(str(tmp_path / "in.png"), f"{name}/in.png")
    monkeypatch.setattr(jobs.stores, "existing", lambda urls: fs.pipe(f"{name}/out.png", b"theirs") or set())
    result = invoke("blur", f"s3://{name}/in.png", f"s3://{name}/out.png", *options(endpoint))
    assert result.exit_code == 1 and "already exists" in result.output
    assert fs.cat(f"{name}/out.png") == b"theirs"  # If-None-Match: * kept it


def test_a_50_file_tree_equals_the_local_batch(endpoint, bucket, tmp_path):
    fs, name = bucket
    for i in range(50):
        folder = tmp_path / "in" / f"d{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        save(folder / f"{i:02d}.png", (12, 10 + i % 5), seed=i)
    fs.put(str(tmp_path / "in"), f"{name}/photos", recursive=True)
    assert invoke("blur", tmp_path / "in", "-r", "-o", tmp_path / "out", "-q").exit_code == 0
    result = invoke("blur", f"s3://{name}/photos", "-r", "-o", f"s3://{name}/out", *options(endpoint))
    assert (result.exit_code, result.output) == (0, "50 written, 0 failed, 0 skipped\n")
    local = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert len(local) == 50
    assert sorted(p[len(f"{name}/out/") :] for p in fs.find(f"{name}/out")) == local
    assert fs.cat([f"{name}/out/{p}" for p in local]) == {
        f"{name}/out/{p}": (tmp_path / "out" / p).read_bytes() for p in local
    }
    skipped = invoke(
        "blur", f"s3://{name}/photos", "-r", "-o", f"s3://{name}/out", "--skip-existing", *options(endpoint)
    )
    assert (skipped.exit_code, skipped.output) == (0, "0 written, 0 failed, 50 skipped\n")
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(f"s3://{name}/photos/{p}\n" for p in local[:3]))
    listed = invoke("blur", "--files-from", listing, "-o", f"s3://{name}/listed", *options(endpoint))
    assert (listed.exit_code, listed.output) == (0, "3 written, 0 failed, 0 skipped\n")


def test_dask_workers_read_and_write_the_endpoint(endpoint, bucket, tmp_path):
    pytest.importorskip("distributed")
    fs, name = bucket
    (tmp_path / "in").mkdir()
    for i in range(6):
        save(tmp_path / "in" / f"{i}.png", (10, 12), seed=i)
    fs.put(str(tmp_path / "in"), f"{name}/in", recursive=True)
    assert invoke("edge", tmp_path / "in", "-r", "-o", tmp_path / "out", "-q").exit_code == 0
    result = invoke(
        "edge", f"s3://{name}/in", "-r", "-o", f"s3://{name}/out", "--dask", "local:1", *options(endpoint)
    )
    assert result.exit_code == 0, result.output
    assert result.output.endswith("6 written, 0 failed, 0 skipped\n")
    for i in range(6):
        assert fs.cat(f"{name}/out/{i}.png") == (tmp_path / "out" / f"{i}.png").read_bytes()


def test_zarr_in_and_out_equals_the_local_array(endpoint, bucket, tmp_path):
    zarr = pytest.importorskip("zarr")
    fs, name = bucket
    data = np.random.default_rng(8).random((50, 70)).astype(np.float32)
    zarr.create_array(str(tmp_path / "scan.zarr"), shape=data.shape, chunks=(16, 16), dtype="float32")[:] = (
        data
    )
    fs.put(str(tmp_path / "scan.zarr"), f"{name}/scan.zarr", recursive=True)
    args = ("--tile-size", 32, "--padding", "same")
    assert invoke("sobel-x", tmp_path / "scan.zarr", tmp_path / "out.zarr", *args).exit_code == 0
    result = invoke("sobel-x", f"s3://{name}/scan.zarr", f"s3://{name}/out.zarr", *args, *options(endpoint))
    assert (result.exit_code, result.output) == (0, "")
    from convfilter.cluster.zarr_objects import open_array
    from convfilter.io import stores

    stores.configure(stores.parse_storage_options(json.dumps({"endpoint_url": endpoint})))
    try:
        remote = open_array(f"s3://{name}/out.zarr")[:]
    finally:
        stores.configure(None)
    np.testing.assert_array_equal(remote, zarr.open_array(str(tmp_path / "out.zarr"))[:])


def test_a_missing_bucket_is_one_error_line(endpoint, tmp_path):
    result = invoke("blur", "s3://no-such-bucket-here/in.png", tmp_path / "out.png", *options(endpoint))
    assert result.exit_code == 1
    assert result.output == (
        "Error: s3://no-such-bucket-here/in.png: no such bucket (The specified bucket does not exist)\n"
    )
    save(tmp_path / "in.png", (5, 5), seed=0)
    result = invoke("blur", tmp_path / "in.png", "s3://no-such-bucket-here/out.png", *options(endpoint))
    assert result.exit_code == 1
    assert result.output.startswith("Error: s3://no-such-bucket-here/out.png: no such bucket")
    assert "Traceback" not in result.output


def test_an_unreachable_endpoint_is_one_error_line(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = invoke("blur", "s3://bucket/in.png", tmp_path / "out.png", *options(f"http://127.0.0.1:{port}"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: s3://bucket/in.png: cannot reach the store (")
    assert len(result.output.splitlines()) == 1


def test_ctrl_c_during_a_batch_leaves_no_partial_object(endpoint, bucket, tmp_path):
    """A real process, interrupted: every object is a whole PNG (or absent), and the exit is 130."""
    fs, name = bucket
    (tmp_path / "in").mkdir()
    for i in range(40):
        save(tmp_path / "in" / f"{i:02d}.png", (300, 300), seed=i)
    fs.put(str(tmp_path / "in"), f"{name}/in", recursive=True)
    exe = Path(sys.executable).with_name("convfilter")
    command = ["gaussian", f"s3://{name}/in", "-r", "-o", f"s3://{name}/out", "--json", "--size", "9"]
    process = subprocess.Popen(
        [str(exe), "--no-server", *command, *options(endpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()  # one file written: the run is under way
    assert json.loads(first)["status"] == "written"
    process.send_signal(2)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    written = fs.find(f"{name}/out")
    assert 1 <= len(written) <= 40
    for key in written:
        with Image.open(io.BytesIO(fs.cat(key))) as image:
            image.load()  # whole: a truncated PNG raises here
