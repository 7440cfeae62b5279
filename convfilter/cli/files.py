"""The command line's side of running a job: :func:`filter_paths`, for one file, a batch or a pipe.

Every command that runs a model (the kernels, ``custom``, ``pool``, ``chain``)
takes ``INPUT... [OUTPUT]``: exactly two paths and no
``-o``/``--output-template``/``--files-from`` is the single-file form
``INPUT OUTPUT`` (either may be ``-`` for standard input/output); otherwise
every path is an input and the outputs are named by ``-o DIR``, ``--suffix``,
``--format`` or ``--output-template``. What is printed per file (errors,
``--json`` lines, the summary) is decided here; library exceptions become
Click's in :mod:`convfilter.cli.boundary`.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence

import click

from convfilter.cli.boundary import interrupted_status
from convfilter.cli.options import BatchOptions
from convfilter.cli.streams import check_open, silence_stdout, write_stdout
from convfilter.engine.model import wait_for_preload
from convfilter.engine.tiles import DEFAULT_TILE_SIZE
from convfilter.errors import ExitStatus, printable
from convfilter.io import stores
from convfilter.io.images import nesting
from convfilter.ops.spec import Operation
from convfilter.run.files import FilterResult
from convfilter.run.jobs import (
    FAILED,
    SKIPPED,
    STDIO,
    WRITTEN,
    FileJob,
    FileResult,
    Job,
    OutputSettings,
    check_jobs,
    expand_inputs,
    plan_outputs,
)
from convfilter.run.placement import Placement, choose_placement, is_zarr_path
from convfilter.run.runner import Runner

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP: files being written are finished, nothing partial is left."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def handle_termination() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (exit 130, 143, 129).

    The first one wins: later ones are ignored, so a second Ctrl-C cannot cut
    short the clean-up (files being written are finished, temporary files
    removed, the summary matches the disk). SIGKILL still ends the process.
    """

    def raise_terminated(signum, frame):
        for other in SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum)

    for signum in SIGNALS:
        signal.signal(signum, raise_terminated)


def filter_paths(
    name: str,
    paths: Sequence[str],
    opts: BatchOptions,
    op: Operation,
    output: OutputSettings,
    describe: Callable[[FilterResult], None] | None = None,
    *,
    too_small_param: str | None = None,
    keep_stages: bool = False,
) -> None:
    """Run ``op`` on ``paths``; ``describe`` prints a written file's details (``-v``, side outputs).

    ``name`` fills the ``{kernel}`` field of output templates. In the
    single-file form an image too small for the window is a bad
    ``too_small_param`` (exit 2) when one is named, as for ``custom --kernel``.
    ``keep_stages`` keeps every stage's raw output for ``describe``.
    """
    if opts.overwrite and opts.skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other.")
    if opts.json_lines:
        check_open(1, "there is nowhere to print the --json lines")
    try:
        job = Job([], op, output)
        where = choose_placement(paths, single=is_single(paths, opts), dask=opts.dask)
        if where is Placement.ZARR:
            _zarr(paths[0], paths[1], opts, job)
        elif where is Placement.SINGLE:
            _single(paths[0], paths[1], opts, job, describe, too_small_param, keep_stages)
        else:
            _batch(name, paths, opts, job, describe, cluster=where is Placement.CLUSTER)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP as Terminated: 128 + the signal
        raise click.exceptions.Exit(interrupted_status(exc)) from None
    except BrokenPipeError:
        silence_stdout()  # the reader went away (| head): stop quietly, as shell tools do
        raise click.exceptions.Exit(ExitStatus.ERROR) from None
    finally:
        # TensorFlow may still be importing in the background (started when the first
        # image opened), with standard error silenced: an error Click prints next must wait.
        wait_for_preload()


def _note(message: str) -> None:
    """Print ``message`` to standard error once a background TensorFlow import has restored it."""
    wait_for_preload()
    click.echo(message, err=True)


def is_single(paths: Sequence[str], opts: BatchOptions) -> bool:
    """True for the single-file form ``INPUT OUTPUT``; a usage error when the paths fit neither form."""
    batch = opts.output_dir is not None or opts.output_template is not None or opts.files_from is not None
    if batch:
        return False
    if len(paths) == 2:
        return True
    if len(paths) < 2:
        raise click.UsageError(
            "Missing OUTPUT: give INPUT OUTPUT, or -o DIR (or --output-template) to name the outputs."
        )
    raise click.UsageError(
        f"{len(paths)} inputs need -o DIR or --output-template to name their outputs "
        "(INPUT OUTPUT takes exactly two paths)."
    )


def _single(
    input_path: str, output_path: str, opts, job: Job, describe, too_small_param, keep_stages
) -> None:
    if opts.recursive or opts.suffix:
        raise click.UsageError("--recursive and --suffix need -o DIR or --output-template.")
    if opts.dask is not None:
        raise click.UsageError(
            "--dask is for many files or .zarr arrays: name the outputs with -o DIR or --output-template."
        )
    if opts.out_format is not None and output_path != STDIO:
        raise click.UsageError(
            "--format is for -o/--output-template outputs and standard output; "
            f"here the extension of {output_path} chooses the format."
        )
    if opts.json_lines and output_path == STDIO:
        raise click.UsageError("--json and OUTPUT '-' would both write to standard output.")
    if output_path == STDIO:
        check_open(1, "there is nowhere to write the image for '-'")
    if output_path == STDIO and sys.stdout.isatty():
        raise click.UsageError("refusing to write image data to a terminal; redirect standard output.")
    fmt = (opts.out_format or "png") if output_path == STDIO else None
    job.files.append(FileJob(input_path, output_path, format=fmt))
    stdin_data = None
    if input_path == STDIO:
        check_open(0, "there is no image to read from '-'")
        stdin_data = sys.stdin.buffer.read()
        if not stdin_data:
            raise click.ClickException("<stdin>: no image data on standard input")
    check_jobs(job, skip_existing=opts.skip_existing)
    if job.files[0].usage:
        raise click.UsageError(job.files[0].error)
    runner = Runner(job, workers=1, stdin_data=stdin_data, keep_stages=keep_stages)
    for result in runner.run():
        if opts.json_lines:
            write_stdout(json.dumps(result.as_dict()) + "\n")
        if result.status == FAILED:
            if too_small_param is not None and result.too_small:
                raise click.BadParameter(printable(result.error), param_hint=too_small_param)
            raise click.ClickException(printable(result.error))
        if result.data is not None:
            write_stdout(result.data)
        _frame_note(result, job.output)
        if describe is not None and result.detail is not None:
            describe(result.detail)


def _zarr(input_path: str, output_path: str, opts, job: Job) -> None:
    """A Zarr array in, a float32 Zarr array out, tile by tile (with --dask, as tasks on the cluster)."""
    from convfilter.cluster import zarr_arrays

    if not (is_zarr_path(input_path) and is_zarr_path(output_path)):
        raise click.UsageError(
            "a .zarr array is filtered into a .zarr array: give both INPUT and OUTPUT as .zarr"
        )
    if not job.op.tiles:
        raise click.UsageError(
            "Zarr arrays are filtered by the kernel commands and custom (not pool or chain)."
        )
    zarr_arrays.require_zarr()
    problem = nesting(input_path, output_path)
    if problem is not None:  # refused before anything is moved or deleted, --overwrite or not
        raise click.ClickException(f"{output_path}: {problem}; choose another output")
    if opts.skip_existing and _zarr_exists(output_path):
        return
    settings = job.output
    run = functools.partial(
        zarr_arrays.filter_zarr,
        input_path,
        output_path,
        job.op,
        tile_size=settings.tile_size or DEFAULT_TILE_SIZE,
        overwrite=opts.overwrite,
        workers=opts.jobs,
        max_pixels=settings.max_pixels,
    )
    if opts.dask is None:
        shapes = run()
    else:
        from convfilter.cluster.connect import dask_client, resolve_address

        with dask_client(resolve_address(opts.dask), opts.dask_timeout) as client:
            shapes = run(client=client)
    if opts.json_lines:
        result = FileResult(input_path, output_path, WRITTEN, input_shape=shapes[0], output_shape=shapes[1])
        write_stdout(json.dumps(result.as_dict()) + "\n")


def _zarr_exists(path: str) -> bool:
    """True when the Zarr output ``path`` exists (a directory, or an array's metadata at a URL)."""
    if stores.is_url(path):
        from convfilter.cluster import zarr_objects

        return zarr_objects.has_array(path)
    return os.path.lexists(path)


def _frame_note(result: FileResult, settings: OutputSettings) -> None:
    """Say that a multi-frame input had only its first frame filtered (when no --frame was given)."""
    detail = result.detail
    if settings.frame is None and detail is not None and detail.frames > 1:
        _note(
            f"note: {detail.input} has {detail.frames} frames; filtered frame 0 (pick another with --frame N)"
        )


def _read_list(opts: BatchOptions) -> list[str]:
    if opts.files_from is None:
        return []
    data = opts.files_from.read()
    separator = b"\0" if opts.null else b"\n"
    names = data.split(separator)
    if not opts.null:
        names = [name[:-1] if name.endswith(b"\r") else name for name in names]
    return [name.decode(sys.getfilesystemencoding(), "surrogateescape") for name in names if name]


def _batch(name: str, paths: Sequence[str], opts, job: Job, describe, *, cluster: bool) -> None:
    if opts.output_dir is None and opts.output_template is None:
        raise click.UsageError("--files-from needs -o DIR or --output-template to name the outputs.")
    if opts.output_template is not None and opts.suffix:
        raise click.UsageError(
            "--suffix and --output-template exclude each other (put the suffix in the template)."
        )
    names = list(paths) + _read_list(opts)
    if STDIO in names:
        raise click.UsageError("'-' (standard input) works only in the form INPUT OUTPUT, one image.")
    if not names:
        raise click.UsageError(
            "Missing INPUT: give input files, directories with --recursive, or --files-from."
        )
    if opts.output_dir and os.path.exists(opts.output_dir) and not os.path.isdir(opts.output_dir):
        raise click.ClickException(f"{opts.output_dir}: is not a directory (-o names the output directory)")
    exclude = [opts.output_dir] if opts.output_dir else []
    inputs = expand_inputs(names, recursive=opts.recursive, exclude=exclude)
    job.files = plan_outputs(
        inputs,
        kernel_name=name,
        output_dir=opts.output_dir,
        template=opts.output_template,
        suffix=opts.suffix,
        fmt=opts.out_format,
    )
    address = None
    if cluster:
        from convfilter.cluster.connect import require_dask, resolve_address

        address = resolve_address(opts.dask)
        require_dask()
    check_jobs(job, skip_existing=opts.skip_existing, make_dirs=True)
    if address is None:
        _run_batch(Runner(job, workers=opts.jobs, fail_fast=opts.fail_fast), job, opts, describe)
        return
    from convfilter.cluster.batch import ClusterRunner
    from convfilter.cluster.connect import dask_client

    with dask_client(address, opts.dask_timeout) as client:
        _run_batch(ClusterRunner(job, client, fail_fast=opts.fail_fast), job, opts, describe)


def _run_batch(runner, job: Job, opts, describe) -> None:
    """Run a batch with ``runner`` (local or on a cluster): report files, the progress bar, the summary."""
    counts = {WRITTEN: 0, FAILED: 0, SKIPPED: 0}

    def report(result: FileResult) -> None:
        counts[result.status] += 1
        if opts.json_lines:
            write_stdout(json.dumps(result.as_dict()) + "\n")
        if result.status == FAILED:
            _note(f"Error: {printable(result.error)}")
            return
        if not opts.quiet:
            _frame_note(result, job.output)
        if describe is not None and result.detail is not None:
            describe(result.detail)

    show_bar = not opts.quiet and len(job.files) > 1 and sys.stderr.isatty()
    try:
        with (
            click.progressbar(length=len(job.files), file=sys.stderr, label="Filtering")
            if show_bar
            else _NoBar() as bar
        ):
            for result in runner.run():
                report(result)
                bar.update(1)
    except KeyboardInterrupt:
        for result in runner.unreported:
            report(result)
        if not opts.quiet:
            _note(f"Interrupted: {_summary(counts)}, {len(job.files) - sum(counts.values())} not done")
        raise
    if not opts.quiet:
        stopped = (
            f"; stopped at the first failure, {runner.not_started} not done" if runner.not_started else ""
        )
        _note(_summary(counts) + stopped)
    if counts[FAILED]:
        raise click.exceptions.Exit(ExitStatus.ERROR)


def _summary(counts: dict[str, int]) -> str:
    return f"{counts[WRITTEN]} written, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        """Nothing to show."""
