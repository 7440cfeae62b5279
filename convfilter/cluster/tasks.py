"""What a Dask worker runs: parts of a job, through the same runner as a local batch."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from convfilter.io import stores
from convfilter.io.stores import StorageOptions
from convfilter.run.jobs import FileJob, FileResult, Job

try:
    from distributed import WorkerPlugin
except ImportError:  # the [dask] extra is not installed: nothing here is used then
    WorkerPlugin = object


class WarmWorker(WorkerPlugin):
    """Import TensorFlow when a worker starts, so that no task pays for it (models stay cached)."""

    def setup(self, worker: Any) -> None:
        from convfilter.engine.model import keras_module

        keras_module()


def split_parts(
    files: Sequence[FileJob], sizes: Sequence[int], task_pixels: int, max_files: int
) -> list[list[int]]:
    """Indices of ``files`` grouped into tasks of about ``task_pixels`` pixels, at most ``max_files`` each."""
    parts: list[list[int]] = []
    current: list[int] = []
    pixels = 0
    for index, size in enumerate(sizes):
        if current and (pixels + size > task_pixels or len(current) >= max_files):
            parts.append(current)
            current, pixels = [], 0
        current.append(index)
        pixels += size
    if current:
        parts.append(current)
    return parts


def run_part(
    job: Job, cwd: str, stop_event: str | None = None, options: StorageOptions | None = None
) -> list[FileResult]:
    """Run ``job`` (one task's files) on this worker; results without their pixel arrays.

    Relative paths are the client's, relative to its working directory
    ``cwd``: they are made absolute here (the worker's own directory is
    another), and the results name the files as the client did, so every
    message reads as in a local run.

    Outputs are never written over an existing file (unless ``--overwrite``), as in a
    local run: another run may have created one since the client checked.
    ``job.output.claim`` names this run, so that a task retried after its
    worker died recognises the files its earlier attempt wrote
    (:func:`convfilter.io.atomic.move_into_place`).
    When the Dask event ``stop_event`` is set (Ctrl-C, ``--fail-fast``), no new
    file is started; the files being written are finished. ``options`` are
    the run's storage options: the worker reads and writes URLs itself.
    """
    from convfilter.run.runner import Runner

    stores.configure(options)

    event = None
    if stop_event is not None:
        from distributed import Event

        event = Event(stop_event)
        if event.is_set():
            return []
    names = {}
    files = []
    for file in job.files:
        absolute = _absolute(file, cwd)
        names[absolute.input] = file.input
        names[absolute.output] = file.output
        files.append(absolute)
    runner = Runner(dataclasses.replace(job, files=files))
    results = []
    iterator = runner.run()
    try:
        for result in iterator:
            results.append(_as_client(result, names))
            if event is not None and event.is_set():
                break
    finally:
        iterator.close()
    results.extend(_as_client(result, names) for result in runner.unreported)
    return results


def _absolute(file: FileJob, cwd: str) -> FileJob:
    def absolute(path):
        return path if path is None or stores.is_url(path) else os.path.join(cwd, path)

    plan = file.plan if file.plan is None else dataclasses.replace(file.plan, path=absolute(file.plan.path))
    return dataclasses.replace(file, input=absolute(file.input), output=absolute(file.output), plan=plan)


def _as_client(result: FileResult, names: dict) -> FileResult:
    """``result`` with the client's names for its files, and without pixel arrays (nothing to send back)."""
    error = result.error
    for absolute, given in names.items():
        if error is not None and absolute is not None and absolute != given:
            error = error.replace(absolute, given)
    detail = result.detail
    if detail is not None:
        detail = dataclasses.replace(
            detail,
            input=names.get(detail.input, detail.input),
            output=names.get(detail.output, detail.output),
            input_values=None,
            values=None,
            stage_values=None,
        )
    return dataclasses.replace(
        result,
        input=names.get(result.input, result.input),
        output=names.get(result.output, result.output),
        error=error,
        detail=detail,
    )
