"""The command line's side of batches and pipes: ``batch_options`` and :func:`filter_paths`.

A kernel command takes ``INPUT... [OUTPUT]``: exactly two paths and no
``-o``/``--output-template``/``--files-from`` is the single-file form
``INPUT OUTPUT`` (either may be ``-`` for standard input/output); otherwise
every path is an input and the outputs are named by ``-o DIR``, ``--suffix``,
``--format`` or ``--output-template``. Library errors become Click's
exceptions here, as in :mod:`convfilter.cli`.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click

from convfilter.run.batch import (
    FAILED,
    SKIPPED,
    STDIO,
    TEMPLATE_FIELDS,
    WRITTEN,
    BatchRunner,
    FileResult,
    Job,
    PlanError,
    Settings,
    check_jobs,
    expand_inputs,
    plan_outputs,
)
from convfilter.errors import ConvFilterError, ImageTooSmallError
from convfilter.io.images import output_format
from convfilter.io.matrices import is_matrix_path
from convfilter.engine.model import wait_for_preload
from convfilter.run.files import FilterResult

EXIT_INTERRUPTED = 130
DEFAULT_PNG_COMPRESSION = 1


@dataclass
class BatchOptions:
    """The values of the options :func:`batch_options` adds."""

    output_dir: str | None
    output_template: str | None
    suffix: str
    out_format: str | None
    recursive: bool
    files_from: object
    null: bool
    overwrite: bool
    skip_existing: bool
    fail_fast: bool
    json_lines: bool
    quiet: bool
    jobs: int | None
    png_compression: int


def _check_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    ext = value.lower().lstrip(".")
    if is_matrix_path(f"x.{ext}"):
        return ext
    try:
        output_format(f"x.{ext}")
    except ConvFilterError:
        raise click.BadParameter(
            f"{value!r} is not a format Pillow can write (png, jpg, tif, bmp, webp ...) "
            "nor a matrix file (npy, csv, txt)"
        ) from None
    return ext


def batch_options(command: Callable) -> Callable:
    """Options for many files and pipes; their values reach ``command`` as one ``batch`` argument."""
    fields = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
    options = [
        click.option(
            "-o",
            "--output-dir",
            metavar="DIR",
            help="Write one output per input into DIR (created if missing), named like the input.",
        ),
        click.option(
            "--output-template",
            metavar="TEMPLATE",
            help=f"Name each output from the input's fields {fields}, "
            "e.g. '{dir}/{stem}_{kernel}.{ext}' (relative to -o DIR if given).",
        ),
        click.option(
            "--suffix",
            default="",
            metavar="TEXT",
            help="Add TEXT to each output's name (--suffix _blur: a.png -> a_blur.png).",
        ),
        click.option(
            "--format",
            "out_format",
            metavar="EXT",
            callback=_check_format,
            help="Output format by extension (png, jpg, tif ..., or npy, csv, txt for raw float "
            "matrices) for -o/--output-template outputs and standard output (default there: png).",
        ),
        click.option("-r", "--recursive", is_flag=True, help="Filter the images in directories, and below."),
        click.option(
            "--files-from",
            type=click.File("rb"),
            metavar="FILE",
            help="Read input paths from FILE, one per line ('-': standard input).",
        ),
        click.option(
            "--null", "-0", is_flag=True, help="--files-from paths end with NUL, not newline (find -print0)."
        ),
        click.option("--overwrite", is_flag=True, help="Replace outputs that exist (never an input)."),
        click.option("--skip-existing", is_flag=True, help="Leave outputs that exist alone (resume a run)."),
        click.option("--fail-fast", is_flag=True, help="Stop at the first file that fails."),
        click.option(
            "--json", "json_lines", is_flag=True, help="Print one JSON line per file on standard output."
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line."),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=None,
            metavar="N",
            help="Threads decoding and encoding images. Default: the number of CPU cores.",
        ),
        click.option(
            "--png-compression",
            type=click.IntRange(0, 9),
            default=DEFAULT_PNG_COMPRESSION,
            show_default=True,
            metavar="0..9",
            help="PNG outputs: 0 no compression; 1 fastest (the Sub row filter and zlib's run-length "
            "strategy, as OpenCV does); 2..9 zlib levels with every row filter tried, slower, smaller.",
        ),
    ]
    names = list(BatchOptions.__dataclass_fields__)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        batch = BatchOptions(**{name: kwargs.pop(name) for name in names})
        return command(*args, batch=batch, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def filter_paths(
    kernel_name: str,
    paths: Sequence[str],
    opts: BatchOptions,
    settings: Settings,
    describe: Callable[[FilterResult], None] | None = None,
    *,
    too_small_param: str | None = None,
) -> None:
    """Run a kernel command on ``paths``; ``describe`` prints a written file's details (``-v``).

    In the single-file form an image too small for the kernel is a bad
    ``too_small_param`` (exit 2) when one is named, as for ``custom --kernel``.
    """
    if opts.overwrite and opts.skip_existing:
        raise click.UsageError("--overwrite and --skip-existing exclude each other.")
    try:
        if is_single(paths, opts):
            _single(paths[0], paths[1], opts, settings, describe, too_small_param)
        else:
            _batch(kernel_name, paths, opts, settings, describe)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (| head): stop quietly, as shell tools do
        raise click.exceptions.Exit(1) from None
    finally:
        # TensorFlow may still be importing in the background (started when the first
        # image opened), with standard error silenced: an error Click prints next must wait.
        wait_for_preload()


def _note(message: str) -> None:
    """Print ``message`` to standard error once a background TensorFlow import has restored it."""
    wait_for_preload()
    click.echo(message, err=True)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


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


def _single(input_path: str, output_path: str, opts, settings, describe, too_small_param) -> None:
    if opts.recursive or opts.suffix:
        raise click.UsageError("--recursive and --suffix need -o DIR or --output-template.")
    if opts.out_format is not None and output_path != STDIO:
        raise click.UsageError(
            "--format is for -o/--output-template outputs and standard output; "
            f"here the extension of {output_path} chooses the format."
        )
    if opts.json_lines and output_path == STDIO:
        raise click.UsageError("--json and OUTPUT '-' would both write to standard output.")
    if output_path == STDIO and sys.stdout.isatty():
        raise click.UsageError("refusing to write image data to a terminal; redirect standard output.")
    job = Job(input_path, output_path, format=(opts.out_format or "png") if output_path == STDIO else None)
    stdin_data = None
    if input_path == STDIO:
        stdin_data = sys.stdin.buffer.read()
        if not stdin_data:
            raise click.ClickException("<stdin>: no image data on standard input")
    check_jobs([job], settings, skip_existing=opts.skip_existing)
    if job.usage:
        raise click.UsageError(job.error)
    runner = BatchRunner([job], settings, workers=1, stdin_data=stdin_data)
    for result in runner.run():
        if opts.json_lines:
            click.echo(json.dumps(result.as_dict()))
        if result.status == FAILED:
            if too_small_param is not None and isinstance(result.exception, ImageTooSmallError):
                raise click.BadParameter(result.error, param_hint=too_small_param)
            raise click.ClickException(result.error)
        if result.data is not None:
            stdout = sys.stdout.buffer
            stdout.write(result.data)
            stdout.flush()
        _frame_note(result, settings)
        if describe is not None and result.detail is not None:
            describe(result.detail)


def _frame_note(result: FileResult, settings: Settings) -> None:
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


def _batch(kernel_name: str, paths: Sequence[str], opts, settings, describe) -> None:
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
    try:
        jobs = plan_outputs(
            inputs,
            kernel_name=kernel_name,
            output_dir=opts.output_dir,
            template=opts.output_template,
            suffix=opts.suffix,
            fmt=opts.out_format,
        )
    except PlanError as exc:
        raise click.UsageError(str(exc)) from None
    check_jobs(jobs, settings, skip_existing=opts.skip_existing, make_dirs=True)
    runner = BatchRunner(jobs, settings, workers=opts.jobs, fail_fast=opts.fail_fast)
    counts = {WRITTEN: 0, FAILED: 0, SKIPPED: 0}

    def report(result: FileResult) -> None:
        counts[result.status] += 1
        if opts.json_lines:
            click.echo(json.dumps(result.as_dict()))
        if result.status == FAILED:
            _note(f"Error: {result.error}")
            return
        if not opts.quiet:
            _frame_note(result, settings)
        if describe is not None and result.detail is not None:
            describe(result.detail)

    show_bar = not opts.quiet and len(jobs) > 1 and sys.stderr.isatty()
    try:
        with (
            click.progressbar(length=len(jobs), file=sys.stderr, label="Filtering")
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
            _note(f"Interrupted: {_summary(counts)}, {len(jobs) - sum(counts.values())} not done")
        raise
    if not opts.quiet:
        stopped = (
            f"; stopped at the first failure, {runner.not_started} not done" if runner.not_started else ""
        )
        _note(_summary(counts) + stopped)
    if counts[FAILED]:
        raise click.exceptions.Exit(1)


def _summary(counts: dict[str, int]) -> str:
    return f"{counts[WRITTEN]} written, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        """Nothing to show."""
