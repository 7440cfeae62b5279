"""Object store against local disk: a batch of PNGs and a Zarr array, on an S3 endpoint on loopback.

Starts moto's S3 server (``moto_server``, a separate process on 127.0.0.1),
writes ``--files`` 512x512 PNGs (the sample image, shifted) to a local folder
and to a bucket, and times the same command both ways, alternating, best of
``--repeat``, in this process (TensorFlow imported once, before timing): a
3x3 blur of the folder ``-r -o OUT``, and a 3x3 blur of a 4096x4096 float32
Zarr array in 512x512 chunks. Outputs are checked equal first. It also
prints the CPU seconds each run spent in this process and in the emulator:
on a 2-core machine the emulator competes with convfilter for the same
cores, which a real S3 does not. ``floor`` is the least ratio the S3 run
could have reached with that CPU spread perfectly over the cores.

    pip install -e '.[test]'          # moto[server] and s3fs
    python benchmarks/stores.py       # --files 200 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/moto-api/")
            return server, url
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("moto_server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    server, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="convfilter-stores-"))
    try:
        import s3fs
        import zarr
        from click.testing import CliRunner

        from convfilter.cli import cli

        fs = s3fs.S3FileSystem(endpoint_url=endpoint)
        fs.mkdir("bench")
        base = np.asarray(Image.open(ROOT / "sample_images" / "ascent.png"))
        (work / "in").mkdir()
        for i in range(args.files):
            Image.fromarray(np.roll(base, 3 * i, axis=1)).save(work / "in" / f"{i:03d}.png")
        fs.put(str(work / "in"), "bench/in", recursive=True)
        data = np.random.default_rng(0).random((4096, 4096)).astype(np.float32)
        zarr.create_array(str(work / "scan.zarr"), shape=data.shape, chunks=(512, 512), dtype="float32")[
            :
        ] = data
        fs.put(str(work / "scan.zarr"), "bench/scan.zarr", recursive=True)
        options = ["--storage-options", json.dumps({"endpoint_url": endpoint})]

        def run(argv: list[str]) -> tuple[float, float, float]:
            """Wall seconds, this process's CPU seconds and the emulator's CPU seconds of one run."""
            moto_before, own_before = cpu_seconds(server.pid), time.process_time()
            start = time.perf_counter()
            result = CliRunner().invoke(cli, argv)
            wall = time.perf_counter() - start
            if result.exit_code != 0:
                raise SystemExit(f"{argv}: {result.output}")
            return wall, time.process_time() - own_before, cpu_seconds(server.pid) - moto_before

        def clear(output: Path | str) -> None:
            if isinstance(output, Path):
                shutil.rmtree(output, ignore_errors=True)
            elif fs.exists(output):
                fs.rm(output, recursive=True)

        run(["blur", str(work / "in" / "000.png"), str(work / "warm.png")])  # TensorFlow imported
        cases = {
            f"{args.files} PNGs 512x512, -r -o": (
                ["blur", str(work / "in"), "-r", "-o", str(work / "out"), "-q"],
                ["blur", "s3://bench/in", "-r", "-o", "s3://bench/out", "-q", *options],
                (work / "out", "bench/out"),
            ),
            "Zarr 4096x4096 float32, 512 chunks": (
                ["blur", str(work / "scan.zarr"), str(work / "out.zarr")],
                ["blur", "s3://bench/scan.zarr", "s3://bench/out.zarr", *options],
                (work / "out.zarr", "bench/out.zarr"),
            ),
        }
        cores = len(os.sched_getaffinity(0))
        print(
            f"{'workload':<36} {'local s':>8} {'S3 s':>8} {'ratio':>6} "
            f"{'local cpu':>10} {'S3 cpu':>7} {'moto cpu':>9} {'floor':>6}"
        )
        for name, (local_argv, s3_argv, (local_out, s3_out)) in cases.items():
            local_runs, s3_runs = [], []
            for _ in range(args.repeat):
                clear(local_out)
                local_runs.append(run(local_argv))
                clear(s3_out)
                s3_runs.append(run(s3_argv))
            if local_out.suffix != ".zarr":  # same bytes, every file
                local_files = sorted(p.name for p in local_out.iterdir())
                assert all(fs.cat(f"{s3_out}/{n}") == (local_out / n).read_bytes() for n in local_files)
            local_wall, local_cpu, _ = min(local_runs)
            s3_wall, s3_cpu, emulator = min(s3_runs)
            # No run takes less wall time than its CPU time spread over every core: the S3 run's CPU
            # (convfilter's and the emulator's, on the same cores) sets the least ratio it could reach.
            floor = (s3_cpu + emulator) / cores / local_wall
            print(
                f"{name:<36} {local_wall:>8.2f} {s3_wall:>8.2f} {s3_wall / local_wall:>6.2f} "
                f"{local_cpu:>10.2f} {s3_cpu:>7.2f} {emulator:>9.2f} {floor:>6.2f}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
