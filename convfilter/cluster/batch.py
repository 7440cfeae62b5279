"""A many-files job on a Dask cluster, with the local :class:`~convfilter.run.runner.Runner`'s interface."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from typing import Any

from convfilter.cluster.tasks import run_part, split_parts
from convfilter.io import stores
from convfilter.io.atomic import remove_leftovers
from convfilter.io.images import header_pixels
from convfilter.io.matrices import is_matrix_path
from convfilter.run.jobs import FAILED, SKIPPED, FileJob, FileResult, Job

TASK_PIXELS = 1 << 24
"""Pixels per task (64 images of 512x512): enough work that a task is worth its round trip."""
MAX_TASK_FILES = 128
STOP_WAIT = 60.0
"""Seconds to wait, after Ctrl-C or a --fail-fast failure, for running tasks to finish their files."""


class ClusterRunner:
    """Run a checked job as Dask tasks of several files each; iterate :meth:`run` for the results.

    Files that :func:`~convfilter.run.jobs.check_jobs` failed or skipped are
    reported first, as the local runner does; the rest go to the workers, which
    read and write the files themselves. If the iteration stops early (Ctrl-C,
    or the first failure with ``fail_fast``), a Dask event tells every task to
    start no new file, the tasks still running are waited for (up to
    :data:`STOP_WAIT` s), their results are put in :attr:`unreported` (Ctrl-C)
    or yielded (``fail_fast``), and :attr:`not_started` counts the rest.
    """

    def __init__(
        self,
        job: Job,
        client: Any,
        *,
        fail_fast: bool = False,
        task_pixels: int = TASK_PIXELS,
        max_task_files: int = MAX_TASK_FILES,
    ) -> None:
        self.job = job
        self.client = client
        self.fail_fast = fail_fast
        self.task_pixels = task_pixels
        self.max_task_files = max_task_files
        self.unreported: list[FileResult] = []
        self.not_started = 0
        self.tasks = 0

    def run(self) -> Iterator[FileResult]:
        """Yield one :class:`FileResult` per file (see the class docstring for early stops)."""
        todo: list[FileJob] = []
        for index, file in enumerate(self.job.files):
            if file.error is not None:
                yield FileResult(file.input, file.output, FAILED, error=file.error)
                if self.fail_fast:
                    self.not_started = len(self.job.files) - index - 1
                    return
            elif file.skip:
                yield FileResult(file.input, file.output, SKIPPED)
            else:
                todo.append(file)
        if todo:
            yield from self._distribute(todo)

    def _distribute(self, todo: list[FileJob]) -> Iterator[FileResult]:
        from distributed import Event, as_completed, wait

        max_pixels = self.job.output.max_pixels
        sizes = [0 if is_matrix_path(file.input) else header_pixels(file.input, max_pixels) for file in todo]
        parts = split_parts(todo, sizes, self.task_pixels, self.max_task_files)
        self.tasks = len(parts)
        stop_name = f"convfilter-stop-{uuid.uuid4().hex}"
        stop = Event(stop_name, client=self.client)
        claim = uuid.uuid4().hex[:16]
        output = dataclasses.replace(self.job.output, claim=claim)
        futures = [
            self.client.submit(
                run_part,
                dataclasses.replace(self.job, files=[todo[i] for i in part], output=output),
                os.getcwd(),
                stop_name,
                stores.current_options(),  # the worker opens the URLs itself; the repr hides the values
                pure=False,
                key=f"convfilter-{uuid.uuid4().hex}",
            )
            for part in parts
        ]
        reported = 0
        late: list[FileResult] = []
        finished = False
        failed = False
        try:
            for future in as_completed(futures):
                for result in future.result():
                    reported += 1
                    yield result
                    failed = failed or (self.fail_fast and result.status == FAILED)
                if failed:
                    break
            else:
                finished = True
        finally:
            if not finished:
                stop.set()
                done, _ = wait([f for f in futures if not f.done()], timeout=STOP_WAIT)
                late = [r for f in done if f.status == "finished" for r in f.result()]
                self.client.cancel(futures)
                if failed:
                    reported += len(late)
                    self.not_started = len(todo) - reported
                else:
                    self.unreported.extend(late)
            for file in todo:  # this run's markers, and a killed worker's temporary files
                if file.output is not None:
                    remove_leftovers(file.output, claim)
        if failed:
            yield from late
