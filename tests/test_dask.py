"""Folders on a Dask cluster: the same outputs, messages and exit codes as the same command run here.

The module shares one real cluster (a ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1, started once and always stopped): its workers import TensorFlow once, not once per test.
One test starts its own ``LocalCluster`` through ``--dask local:2``. The run on the cluster is the
installed ``convfilter`` as a subprocess; the run it is compared with is the same command in this
process (``CliRunner``), which has TensorFlow loaded already.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import installed_convfilter, invoke
from PIL import Image

# Servers, clusters and subprocesses: the full suite only. One worker runs the module, in order, so
# the shared cluster is started once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask_cluster")]

pytest.importorskip("distributed")

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONVFILTER_SERVER", "DASK_SCHEDULER_ADDRESS")}
    env["CONVFILTER_SERVER"] = "off"
    return env


def _folder(root: Path, count: int = 12, size: tuple[int, int] = (60, 80), broken: bool = True) -> Path:
    folder = root / "in"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for number in range(count):
        shape = size if number % 3 else (size[0] + 7, size[1] - 5)  # two sizes: two model batches
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{number:03d}.png")
    if broken:
        (folder / "broken.png").write_bytes(b"not an image")
    return folder


def _run(args, cwd, timeout=300):
    return subprocess.run(
        [str(installed_convfilter()), *args], cwd=cwd, env=_env(), capture_output=True, timeout=timeout
    )


def _here(args, cwd: Path, monkeypatch) -> tuple[int, bytes, bytes]:
    """The same command in this process, in ``cwd``: (exit code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    result = invoke(*args)
    return result.exit_code, result.stdout_bytes, result.stderr_bytes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(address, worker nannies)`` of a real scheduler and two one-thread workers on 127.0.0.1,
    warmed up (TensorFlow imported on each), shared by the module's tests and always stopped.

    The workers run in a directory of their own: names relative to the client's are still found."""
    dask_cli = BIN / "dask"
    if not dask_cli.exists():
        pytest.skip("the dask command is not installed")
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": _env()}
    quiet["cwd"] = tmp_path_factory.mktemp("workers")
    scheduler = [str(dask_cli), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    worker = [str(dask_cli), "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    processes = [subprocess.Popen(scheduler, **quiet)]
    try:
        processes += [subprocess.Popen(worker, **quiet) for _ in range(2)]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            client.run(__import__, "tensorflow")
        yield address, processes[1:]
    finally:
        _stop(processes)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _twins(tmp_path: Path, **kwargs) -> tuple[Path, Path]:
    here = tmp_path / "here"
    _folder(here, **kwargs)
    there = tmp_path / "there"
    shutil.copytree(here, there)
    return here, there


def test_a_folder_on_a_local_cluster_matches_the_local_run(tmp_path, monkeypatch):
    here, there = _twins(tmp_path)
    args = ["sharpen", "in", "-r", "-o", "out", "--padding", "same", "--json"]
    dask = _run([*args, "--dask", "local:2"], there)
    code, stdout, stderr = _here(args, here, monkeypatch)
    assert dask.returncode == code == 1
    assert sorted(dask.stdout.splitlines()) == sorted(stdout.splitlines())
    assert dask.stderr == stderr
    assert dask.stderr.decode().splitlines() == [
        "Error: in/broken.png: not an image file Pillow can read",
        "12 written, 1 failed, 0 skipped",
    ]
    assert _tree(here) == _tree(there)


@pytest.mark.parametrize(
    "args",
    [
        ["bank", "sobel-x", "sobel-y", "--padding", "same"],
        ["blur", "--transpose", "--stride", "2", "2", "--padding", "same"],
    ],
    ids=["bank", "transpose"],
)
def test_banks_and_transposed_convolutions_give_the_same_bytes_on_dask(tmp_path, monkeypatch, cluster, args):
    here, there = _twins(tmp_path, count=6, broken=False)
    dask = _run([*args, "in", "-r", "-o", "out", "--dask", cluster[0]], there)
    code, _, stderr = _here([*args, "in", "-r", "-o", "out"], here, monkeypatch)
    assert code == dask.returncode == 0, (dask.stderr, stderr)
    assert _tree(here) == _tree(there)
    assert len(list((here / "out").glob("*.png"))) == 6


def test_fail_fast_stops_the_cluster_run(tmp_path, cluster):
    folder = _folder(tmp_path, count=30)
    (folder / "000.png").write_bytes(b"broken too")
    done = _run(["blur", "in", "-r", "-o", "out", "--fail-fast", "--dask", cluster[0]], tmp_path)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert lines[0] in (
        "Error: in/000.png: not an image file Pillow can read",
        "Error: in/broken.png: not an image file Pillow can read",
    )
    written = len(list((tmp_path / "out").glob("*.png"))) if (tmp_path / "out").exists() else 0
    assert lines[-1].startswith(f"{written} written, ")
    if "stopped at the first failure" in lines[-1]:
        not_done = int(lines[-1].split(", ")[-1].split()[0])
        failed = int(lines[-1].split(", ")[1].split()[0])
        assert written + failed + not_done == 31
    assert not list(tmp_path.rglob(".convfilter-*"))


def _descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def test_a_worker_killed_mid_run_has_its_tasks_retried(tmp_path, monkeypatch, cluster):
    address, nannies = cluster
    here, there = _twins(tmp_path, count=40, size=(700, 900), broken=False)
    client = subprocess.Popen(
        [str(installed_convfilter()), "blur", "in", "-r", "-o", "out", "-q", "--dask", address],
        cwd=there,
        env=_env(),
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not ((there / "out").exists() and any((there / "out").glob("*.png"))):
            assert time.monotonic() < deadline and client.poll() is None, "no output appeared"
            time.sleep(0.05)
        # Each nanny runs its worker as a spawned process (the nanny starts a new one when it dies).
        workers = [
            child
            for nanny in nannies
            for child in _descendants(nanny.pid)
            if re.search(r"spawn_main|dask worker", " ".join(child.cmdline()))
        ]
        assert workers, "no worker process found"
        workers[-1].kill()
        assert client.wait(timeout=300) == 0, client.stderr.read()
    finally:
        if client.poll() is None:
            client.kill()
    assert _here(["blur", "in", "-r", "-o", "out", "-q"], here, monkeypatch) == (0, b"", b"")
    assert _tree(here) == _tree(there)


def test_a_real_scheduler_and_workers(tmp_path, monkeypatch, cluster):
    address = cluster[0]
    here, there = _twins(tmp_path)
    remote = _run(["edge", "in", "-r", "-o", "out", "--dask", address, "--dask-timeout", "60"], there)
    code, _, stderr = _here(["edge", "in", "-r", "-o", "out"], here, monkeypatch)
    assert (remote.returncode, remote.stderr) == (code, stderr)
    assert _tree(here) == _tree(there)
    # The workers run in another directory: a Zarr array named relative to the client's is still found.
    zarr = pytest.importorskip("zarr")
    x = np.random.default_rng(4).integers(0, 256, (30, 40)).astype(np.uint8)
    for root in (here, there):
        zarr.create_array(str(root / "scan.zarr"), shape=x.shape, chunks=(16, 16), dtype="uint8")[:] = x
    args = ["blur", "scan.zarr", "out.zarr", "--tile-size", "16"]
    remote = _run([*args, "--dask", address, "--dask-timeout", "60"], there)
    assert (remote.returncode, remote.stderr) == _here(args, here, monkeypatch)[::2] == (0, b"")
    np.testing.assert_array_equal(
        zarr.open_array(str(there / "out.zarr"))[:], zarr.open_array(str(here / "out.zarr"))[:]
    )


@pytest.mark.parametrize(
    "address, message",
    [
        (
            "tls://127.0.0.1:8786",
            "tls://127.0.0.1:8786: the scheme 'tls://' is not one convfilter connects with; give tcp://HOST:PORT "
            "(TLS and UCX need security or network settings that convfilter does not take)",
        ),
        (
            "ucx://10.0.0.1:13337",
            "ucx://10.0.0.1:13337: the scheme 'ucx://' is not one convfilter connects with",
        ),
        ("local:100000", "local:100000 would start 100000 worker processes"),
    ],
)
def test_addresses_convfilter_cannot_use_are_one_usage_line(tmp_path, address, message):
    _folder(tmp_path, count=1, broken=False)
    done = _run(["blur", "in", "-r", "-o", "out", "--dask", address], tmp_path)
    assert done.returncode == 2
    last = done.stderr.decode().splitlines()[-1]
    assert last.startswith("Error: Invalid value for '--dask': " + message), last
    assert "Traceback" not in done.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_is_one_error_line(tmp_path):
    _folder(tmp_path, count=2, broken=False)
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    done = _run(["blur", "in", "-r", "-o", "out", "--dask", address, "--dask-timeout", "2"], tmp_path)
    assert time.monotonic() - started < 60
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {address}: cannot reach the Dask scheduler within 2 s")
    assert not (tmp_path / "out").exists()


def test_a_bare_dask_reads_the_scheduler_address_from_the_environment(tmp_path, monkeypatch):
    from convfilter.cli import cli

    _folder(tmp_path, count=1, broken=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["blur", "in", "-r", "-o", "out", "--dask"])
    assert result.exit_code == 2
    assert (
        "Error: Invalid value for '--dask': give a scheduler address (tcp://HOST:8786) or local:N"
        in result.output
    )
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    result = CliRunner().invoke(cli, ["blur", "in", "-r", "-o", "out", "--dask-timeout", "1", "--dask"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: tcp://127.0.0.1:1: cannot reach the Dask scheduler within 1 s")


def test_without_the_extra_dask_is_a_usage_error_naming_it(tmp_path, monkeypatch):
    from convfilter.cli import cli

    _folder(tmp_path, count=1, broken=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    result = CliRunner().invoke(cli, ["blur", "in", "-r", "-o", "out", "--dask", "local:2"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for '--dask': needs Dask, which is not installed: pip install 'convfilter[dask]'\n"
    )
    assert not (tmp_path / "out").exists()


def test_the_client_process_never_imports_tensorflow(tmp_path, cluster):
    _folder(tmp_path, count=3, broken=False)
    code = (
        "import sys\n"
        "from convfilter.cli import run_command\n"
        f"code = run_command(['blur', 'in', '-r', '-o', 'out', '-q', '--dask', {cluster[0]!r}])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.stdout.splitlines()[-1] == "0 False False", done.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_dask_is_refused_for_a_single_file(tmp_path, gray_png):
    from convfilter.cli import cli

    result = CliRunner().invoke(cli, ["blur", str(gray_png), str(tmp_path / "o.png"), "--dask", "local:2"])
    assert result.exit_code == 2
    assert "Error: --dask is for many files or .zarr arrays" in result.output


def test_ctrl_c_cancels_every_task_and_the_summary_matches_the_disk(tmp_path, cluster):
    _folder(tmp_path, count=40, size=(900, 900), broken=False)
    client = subprocess.Popen(
        [str(installed_convfilter()), "blur", "in", "-r", "-o", "out", "--dask", cluster[0]],
        cwd=tmp_path,
        env=_env(),
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not ((tmp_path / "out").exists() and any((tmp_path / "out").glob("*.png"))):
            assert time.monotonic() < deadline and client.poll() is None, "no output appeared"
            time.sleep(0.05)
        client.send_signal(signal.SIGINT)
        assert client.wait(timeout=120) == 130
    finally:
        if client.poll() is None:
            client.kill()
    line = client.stderr.read().decode().splitlines()[-1]
    written = int(line.split()[1])
    assert line == f"Interrupted: {written} written, 0 failed, 0 skipped, {40 - written} not done"
    time.sleep(2)  # nothing goes on writing after the client has gone
    outputs = sorted((tmp_path / "out").iterdir())
    assert len(outputs) == written < 40
    assert not [p for p in outputs if p.name.startswith(".convfilter-")]
    for path in outputs:
        with Image.open(path) as image:
            image.load()


def test_two_runs_into_one_folder_never_replace_each_others_files(tmp_path, monkeypatch, cluster):
    """A run on Dask and a local run at once, neither with --overwrite: each file written exactly once."""
    import json

    _folder(tmp_path, count=24, broken=False)
    args = ["blur", "in", "-r", "-o", "out", "--json"]
    on_dask = subprocess.Popen(
        [str(installed_convfilter()), *args, "--dask", cluster[0]],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        here = _here(args, tmp_path, monkeypatch)  # meanwhile, in this process
        there = on_dask.communicate(timeout=300)
    finally:
        if on_dask.poll() is None:
            on_dask.kill()
    results = []
    for code, out in ((on_dask.returncode, there[0]), (here[0], here[1])):
        assert code in (0, 1)
        results.append([json.loads(line) for line in out.decode().splitlines()])
    written = [{r["output"] for r in lines if r["status"] == "written"} for lines in results]
    outputs = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "out").rglob("*.png")}
    assert written[0] | written[1] == outputs and len(outputs) == 24
    assert not written[0] & written[1]
    for lines in results:
        for r in lines:
            if r["status"] != "written":
                assert r["status"] == "failed" and "already exists" in r["error"], r
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary file left behind


def test_the_module_runs_on_one_worker_as_one_group(request):
    """The shared cluster is started once only if pytest-xdist keeps the module's tests together."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@dask_cluster"), request.node.nodeid
