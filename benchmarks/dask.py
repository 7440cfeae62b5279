"""Benchmark: a folder and a large Zarr array on a Dask cluster (``--dask local:N``) vs one process.

Measures, in one run:

* COUNT seeded SIZE x SIZE PNGs: ``convfilter blur DIR -r -o OUT`` in one
  process, and the same with ``--dask local:N``;
* the fixed costs of a cluster: starting a ``LocalCluster`` of N worker
  processes, and warming each worker up (its TensorFlow import);
* the per-task overhead: the same files sent as tasks of 1, 8, 32 and 128
  files each, on one warm cluster;
* a SIDE x SIDE uint8 Zarr array through ``--dask local:N`` (3x3 blur, stride
  1, 'same'), with each worker's peak resident memory;

and, from the measured costs, the predicted wall time of a million images on
100 workers, with the model behind the figure.

Run: ``python benchmarks/dask.py`` (needs ``pip install -e '.[dask]'``;
``--side 20000`` writes about 2 GB of Zarr chunks to the temporary directory).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# This file is called dask.py: its folder goes to the end of the path, or `import dask` would find it.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE] + [HERE]

from batch import make_images  # noqa: E402

CONVFILTER = Path(sys.executable).with_name("convfilter")


def seconds(command: list[str]) -> float:
    env = {**os.environ, "CONVFILTER_SERVER": "off"}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--side", type=int, default=20000, help="side of the Zarr array (0: skip it)")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    import distributed
    import zarr

    from convfilter.cluster.batch import ClusterRunner
    from convfilter.cluster.tasks import WarmWorker
    from convfilter.ops.spec import Conv2DSpec
    from convfilter.run.jobs import Job, OutputSettings, check_jobs, expand_inputs, plan_outputs

    n, w = args.count, args.workers
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "in", n, args.size, args.seed)
        blur = [str(CONVFILTER), "blur", str(root / "in"), "-r", "-q"]
        one_process = seconds([*blur, "-o", str(root / "local")])
        on_cluster = seconds([*blur, "-o", str(root / "dask"), "--dask", f"local:{w}"])

        start = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=w, threads_per_worker=1, dashboard_address=None)
        client = distributed.Client(cluster)
        started = time.perf_counter() - start
        start = time.perf_counter()
        client.register_plugin(WarmWorker(), name="convfilter-warm")
        warmed = time.perf_counter() - start

        op = Conv2DSpec(np.full((3, 3), 1 / 9))
        per_task = {}
        for files_per_task in (1, 8, 32, 128):
            out = root / f"tasks{files_per_task}"
            inputs = expand_inputs([str(root / "in")], recursive=True)
            job = Job(plan_outputs(inputs, kernel_name="blur", output_dir=str(out)), op, OutputSettings())
            check_jobs(job, skip_existing=False, make_dirs=True)
            runner = ClusterRunner(job, client, task_pixels=1 << 62, max_task_files=files_per_task)
            start = time.perf_counter()
            for _ in runner.run():
                pass
            per_task[files_per_task] = (time.perf_counter() - start, runner.tasks)

        zarr_row = None
        if args.side:
            source = root / "big.zarr"
            shape = (args.side, args.side)
            array = zarr.create_array(str(source), shape=shape, chunks=(2048, 2048), dtype="uint8")
            rng = np.random.default_rng(args.seed)
            for top in range(0, args.side, 2048):
                rows = min(2048, args.side - top)
                array[top : top + rows] = rng.integers(0, 256, (rows, args.side), dtype=np.uint8)
            client.run(lambda: None)
            client.close()
            cluster.close()
            command = [str(CONVFILTER), "blur", str(source), str(root / "big-out.zarr"), "--padding", "same"]
            command += ["--dask", f"local:{w}", "--tile-size", "2048"]
            zarr_seconds = seconds(command)
            zarr_row = (zarr_seconds, measure_zarr_peak(source, root, w))
        else:
            client.close()
            cluster.close()

    t1, tasks1 = per_task[1]
    t128, tasks128 = per_task[128]
    overhead = max(t1 - t128, 0.0) / (tasks1 - tasks128) * w  # seconds of one worker per extra task
    per_file = (t128 / n) * w  # seconds of one worker per file, with the overhead amortised
    print(f"{n} grayscale {args.size}x{args.size} PNGs, 3x3 blur; {os.cpu_count()} CPU cores, {w} workers")
    print()
    print("| run | wall s | ms per image |")
    print("|---|---:|---:|")
    print(f"| one process (`blur DIR -r -o OUT`) | {one_process:.2f} | {one_process / n * 1000:.1f} |")
    print(f"| `--dask local:{w}` (cluster start included) | {on_cluster:.2f} | {on_cluster / n * 1000:.1f} |")
    print()
    print(f"fixed costs: cluster start {started:.2f} s, worker warm-up (TensorFlow import) {warmed:.2f} s")
    print()
    print("| files per task | tasks | wall s (warm cluster) | ms per image |")
    print("|---:|---:|---:|---:|")
    for files_per_task, (wall, tasks) in per_task.items():
        print(f"| {files_per_task} | {tasks} | {wall:.2f} | {wall / n * 1000:.1f} |")
    print()
    print(f"per-task overhead: {overhead * 1000:.1f} ms of a worker; per image: {per_file * 1000:.1f} ms")
    files, workers, files_per_task = 1_000_000, 100, 64
    fixed = started + warmed
    predicted = fixed + files * per_file / workers + (files / files_per_task) * overhead / workers
    print(
        f"predicted, {files:,} such images on {workers} workers, {files_per_task} files per task: "
        f"{predicted / 60:.0f} min = fixed {fixed:.0f} s + {files:,} x {per_file * 1000:.1f} ms / {workers} "
        f"+ {files // files_per_task:,} tasks x {overhead * 1000:.1f} ms / {workers} "
        "(assumes storage that keeps up and one scheduler handling the task rate)"
    )
    if zarr_row is not None:
        wall, peak = zarr_row
        pixels = args.side * args.side
        print()
        print(
            f"Zarr {args.side}x{args.side} uint8 -> float32, 3x3 blur 'same', --dask local:{w}: {wall:.1f} s "
            f"({pixels / wall / 1e6:.0f} Mpixel/s); peak resident memory per worker process: {peak:.0f} MiB "
            f"(the array is {pixels / 2**20:.0f} MiB as uint8, {4 * pixels / 2**20:.0f} MiB as float32)"
        )


def measure_zarr_peak(source: Path, root: Path, workers: int) -> float:
    """Run the Zarr filter again on a fresh cluster in this process and return the workers' peak RSS (MiB)."""
    import distributed

    from convfilter.cluster.zarr_arrays import filter_zarr
    from convfilter.ops.spec import Conv2DSpec

    with (
        distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        op = Conv2DSpec(np.full((3, 3), 1 / 9), padding="same")
        filter_zarr(str(source), str(root / "peak.zarr"), op, tile_size=2048, client=client)
        peaks = client.run(peak_rss_mib)
    return max(peaks.values())


if __name__ == "__main__":
    main()
